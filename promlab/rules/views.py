"""Rule groups and alerts in the JSON shapes of Prometheus's ``/api/v1/rules`` and
``/api/v1/alerts`` (the ``data`` part), built from :class:`~promlab.rules.group.GroupState`.

Times are RFC 3339 strings as Go's ``time.Time`` marshals them (``RFC3339Nano``: the fraction
without trailing zeros, none for a whole second); a group or rule never evaluated shows Go's zero
time ``0001-01-01T00:00:00Z`` and, an alerting rule, the state ``"unknown"`` (Prometheus 3; 2.42
said ``"inactive"``); durations are float seconds; an alert's ``value`` is Go's shortest ``%e``
(``strconv.FormatFloat(v, 'e', -1, 64)``: ``"1e+00"``, ``"2.5e-01"``); rule labels and
annotations are sorted by name, as Prometheus's label sets are.
"""

from __future__ import annotations

import functools
from typing import Any

from promlab.errors import PromlabError
from promlab.rules.alerting import Alert
from promlab.rules.group import GroupState
from promlab.rules.notifier import format_rfc3339_ms
from promlab.rules.rule import AlertingRule
from promlab.rules.template.gofmt import format_float

__all__ = ["ZERO_TIME", "alert_json", "format_time", "group_json", "query_string"]

ZERO_TIME = "0001-01-01T00:00:00Z"


def format_time(ms: int | None) -> str:
    """Go's ``RFC3339Nano`` of a ms time (``...:05.1Z``, ``...:05Z``); None: the zero time."""
    if ms is None:
        return ZERO_TIME
    text = format_rfc3339_ms(ms)
    return text[:-1].rstrip("0").rstrip(".") + "Z"


@functools.lru_cache(maxsize=4096)
def query_string(expr: str) -> str:
    """The expression as Prometheus shows it (re-printed from its parse; as written if it
    does not parse). Cached: ``/api/v1/rules`` shows every rule's on every request."""
    from promlab.promql.parser import parse_expr
    from promlab.promql.parser.printer import to_string

    try:
        return to_string(parse_expr(expr))
    except PromlabError:
        return expr


def alert_json(a: Alert) -> dict[str, Any]:
    """One alert of ``/api/v1/alerts`` and of a rule's ``alerts``."""
    out: dict[str, Any] = {"labels": a.labels.to_dict(),
                           "annotations": dict(sorted(a.annotations.items())),
                           "state": str(a.state), "activeAt": format_time(a.active_at_ms)}
    if a.keep_firing_since_ms is not None:
        out["keepFiringSince"] = format_time(a.keep_firing_since_ms)
    out["value"] = format_float(a.value, "e", -1)
    return out


def group_json(state: GroupState) -> dict[str, Any]:
    """One group of ``/api/v1/rules``: name, file, rules with health and alerts, interval."""
    g = state.group
    with state.lock:
        rules: list[dict[str, Any]] = []
        for rule, status, ast in state.rule_states():
            r: dict[str, Any]
            if isinstance(rule, AlertingRule):
                alerts = ast.active_alerts() if ast is not None else []
                shown = "unknown" if status.last_evaluation_ms is None or ast is None \
                    else str(ast.state)
                r = {"state": shown,
                     "name": rule.name, "query": query_string(rule.expr),
                     "duration": rule.for_ms / 1000,
                     "keepFiringFor": rule.keep_firing_for_ms / 1000,
                     "labels": dict(sorted(rule.labels.items())),
                     "annotations": dict(sorted(rule.annotations.items())),
                     "alerts": [alert_json(a) for a in alerts]}
            else:
                r = {"name": rule.name, "query": query_string(rule.expr),
                     "labels": dict(sorted(rule.labels.items()))}
            r["health"] = status.health
            if status.last_error:
                r["lastError"] = status.last_error
            r["evaluationTime"] = status.evaluation_seconds
            r["lastEvaluation"] = format_time(status.last_evaluation_ms)
            r["type"] = rule.kind
            rules.append(r)
        return {"name": g.name, "file": g.file, "rules": rules, "interval": g.interval_ms / 1000,
                "limit": g.limit, "evaluationTime": state.last_duration_seconds,
                "lastEvaluation": format_time(state.last_evaluation_ms)}
