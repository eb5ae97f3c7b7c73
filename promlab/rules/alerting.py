"""The alert state machine, one evaluation at a time (the live loop's driver).

inactive → pending → firing → resolved, exactly as Prometheus's ``AlertingRule.Eval``:

* every element of the result vector is one alert; its labels are the element's labels without
  ``__name__``, then the rule's (and group's) labels, templated, then ``alertname``;
  annotations are templated too. Two elements with one label set fail the evaluation
  (:class:`~promlab.errors.RuleError`) and change nothing;
* a new alert is *pending* with ``active_at`` = the evaluation time, and *fires* at the first
  evaluation with ``t - active_at >= for``; an alert missing from the result is dropped if
  pending, and resolved if firing — unless ``keep_firing_for`` holds it firing until
  ``keep_firing_for`` has passed since the first evaluation that missed it;
* a firing alert younger than ``for`` (a reload raised it) is pending again (Prometheus 3);
* resolved alerts stay 15 minutes (so the sender can repeat the resolution) and are replaced
  by a new pending alert if their labels come back;
* more active alerts than the group's ``limit`` fail the evaluation and clear every alert;
* each active alert writes ``ALERTS{alertstate="pending"|"firing", ...} 1`` and
  ``ALERTS_FOR_STATE{...} <active_at in unix seconds>`` at ``t - query_offset``.

Staleness markers for series that stop are the group's business (the live manager), not the
rule's. :mod:`promlab.rules.timeline` is the same machine vectorised over all evaluation times.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from promlab.errors import RuleError
from promlab.model import METRIC_NAME, Labels
from promlab.model.histogram import FloatHistogram
from promlab.promql.values import Vector
from promlab.rules.query import QueryFunc
from promlab.rules.rule import (
    ALERT_NAME_LABEL,
    ALERT_STATE_LABEL,
    ALERTS_FOR_STATE_METRIC,
    ALERTS_METRIC,
    AlertingRule,
)
from promlab.rules.templating import expand_rule_template

__all__ = [
    "RESOLVED_RETENTION_MS",
    "Alert",
    "AlertState",
    "AlertingRuleState",
    "Sample",
    "alerts_labels",
    "for_state_labels",
    "for_state_value",
]

# How long a resolved alert is kept (and re-sent as resolved), as in Prometheus.
RESOLVED_RETENTION_MS = 15 * 60 * 1000

DUPLICATE_ALERT_MSG = "vector contains metrics with the same labelset after applying alert labels"


class AlertState(enum.IntEnum):
    """An alert's state; the order is the one ``max`` should use for a rule's state."""

    INACTIVE = 0
    PENDING = 1
    FIRING = 2

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(slots=True)
class Alert:
    """One alert instance of a rule (mutable: the state machine updates it in place).

    Times are int ms; ``None`` means not (yet) set. ``last_sent_ms`` and ``valid_until_ms``
    belong to the sender (Alertmanager notifications) and are left alone here.
    """

    labels: Labels
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at_ms: int
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    keep_firing_since_ms: int | None = None
    last_sent_ms: int | None = None
    valid_until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample to write back to storage: a float, or a native histogram (``value`` NaN)."""

    labels: Labels
    t_ms: int
    value: float
    histogram: FloatHistogram | None = None


def alerts_labels(alert_labels: Labels, state: AlertState) -> Labels:
    """Labels of the ``ALERTS`` series of an alert in ``state`` (pending or firing)."""
    return alert_labels.update({METRIC_NAME: ALERTS_METRIC, ALERT_STATE_LABEL: str(state)})


def for_state_labels(alert_labels: Labels) -> Labels:
    """Labels of the ``ALERTS_FOR_STATE`` series of an alert."""
    return alert_labels.set(METRIC_NAME, ALERTS_FOR_STATE_METRIC)


def for_state_value(active_at_ms: int) -> float:
    """``ALERTS_FOR_STATE``'s value: ``active_at`` in whole unix seconds (Go's ``Unix()``)."""
    return float(active_at_ms // 1000)


class AlertingRuleState:
    """The runtime state of one alerting rule: its alerts, kept between evaluations.

    Parameters
    ----------
    rule
        The frozen definition.
    group_labels
        The group's ``labels`` (the rule's own labels override them).
    limit
        The group's ``limit`` on active alerts (0: none).
    query_offset_ms
        The group's ``query_offset``: the query runs at ``t - query_offset_ms`` and the series
        are written there; ``active_at`` and ``for`` use ``t``.
    external_labels, external_url
        For ``$externalLabels`` and ``$externalURL`` in templates (never added to ``ALERTS``).
    """

    def __init__(self, rule: AlertingRule, *, group_labels: Mapping[str, str] | None = None,
                 limit: int = 0, query_offset_ms: int = 0,
                 external_labels: Mapping[str, str] | None = None, external_url: str = "") -> None:
        self.rule = rule
        self.labels: dict[str, str] = {**(group_labels or {}), **rule.labels}
        self.limit = int(limit)
        self.query_offset_ms = int(query_offset_ms)
        self.external_labels = dict(external_labels or {})
        self.external_url = external_url
        self.alerts: dict[Labels, Alert] = {}
        # False until ALERTS_FOR_STATE has been read back after a restart (the live manager
        # sets it); no series are written before, as in Prometheus.
        self.restored = True

    # --- evaluation -----------------------------------------------------------------------------
    def eval_query(self, query: QueryFunc, t_ms: int) -> tuple[list[Alert], list[Sample]]:
        """Run the rule's query at ``t_ms - query_offset_ms`` and :meth:`eval` its result."""
        vec = query(self.rule.expr, t_ms - self.query_offset_ms)
        return self.eval(vec, t_ms, query_func=query)

    def eval(self, vector: Vector, t_ms: int, *,
             query_func: QueryFunc | None = None) -> tuple[list[Alert], list[Sample]]:
        """Advance the state machine with the rule's result at evaluation time ``t_ms``.

        ``vector`` is the instant vector of the rule's expression at ``t_ms -
        query_offset_ms`` (its last column is used). Returns the alerts kept after this
        evaluation (active and recently resolved, sorted by labels) and the ``ALERTS`` /
        ``ALERTS_FOR_STATE`` samples to write.

        Raises
        ------
        RuleError
            Duplicate alert label sets (nothing changes) or more alerts than ``limit`` (all
            alerts are cleared).
        """
        t = int(t_ms)
        fresh = self._build(vector, t, query_func)
        for key, a in fresh.items():
            cur = self.alerts.get(key)
            if cur is not None and cur.state != AlertState.INACTIVE:
                cur.value = a.value
                cur.annotations = a.annotations
            else:
                self.alerts[key] = a
        samples: list[Sample] = []
        n_active = 0
        write_t = t - self.query_offset_ms
        for key in sorted(self.alerts):
            a = self.alerts[key]
            if key not in fresh:
                keep = False
                if a.state == AlertState.FIRING and self.rule.keep_firing_for_ms > 0:
                    if a.keep_firing_since_ms is None:
                        a.keep_firing_since_ms = t
                    keep = t - a.keep_firing_since_ms < self.rule.keep_firing_for_ms
                if a.state == AlertState.PENDING or (
                        a.resolved_at_ms is not None and t - a.resolved_at_ms > RESOLVED_RETENTION_MS):
                    del self.alerts[key]
                if a.state != AlertState.INACTIVE and not keep:
                    a.state = AlertState.INACTIVE
                    a.resolved_at_ms = t
                if not keep:
                    continue
            else:
                a.keep_firing_since_ms = None
            n_active += 1
            if a.state == AlertState.PENDING and t - a.active_at_ms >= self.rule.for_ms:
                a.state = AlertState.FIRING
                a.fired_at_ms = t
            elif a.state == AlertState.FIRING and t - a.active_at_ms < self.rule.for_ms:
                # A reload raised ``for`` past the alert's age: pending again (Prometheus 3;
                # 2.42 kept it firing), sent afresh when it fires.
                a.state = AlertState.PENDING
                a.fired_at_ms = a.last_sent_ms = a.keep_firing_since_ms = None
            if self.restored:
                base = self.series_labels(a.labels)
                samples.append(Sample(alerts_labels(base, a.state), write_t, 1.0))
                samples.append(Sample(for_state_labels(base), write_t,
                                      for_state_value(a.active_at_ms)))
        if self.limit > 0 and n_active > self.limit:
            self.alerts.clear()
            raise RuleError(f"exceeded limit of {self.limit} with {n_active} alerts",
                            rule=self.rule.name)
        return [self.alerts[k] for k in sorted(self.alerts)], samples

    def _build(self, vector: Vector, t: int, query_func: QueryFunc | None) -> dict[Labels, Alert]:
        out: dict[Labels, Alert] = {}
        col = vector.values.shape[1] - 1 if vector.values.ndim == 2 and vector.values.shape[1] else 0
        for i, ls in enumerate(vector.labels):
            if vector.values.shape[1] == 0 or not bool(vector.present[i, col]):
                continue
            value = float(vector.values[i, col])
            key, annotations = self.instance(ls, value, t, query_func)
            if key in out:
                raise RuleError(DUPLICATE_ALERT_MSG, rule=self.rule.name)
            out[key] = Alert(labels=key, annotations=annotations, state=AlertState.PENDING,
                             value=value, active_at_ms=t)
        return out

    def series_labels(self, alert_labels: Labels) -> Labels:
        """The labels ``ALERTS`` / ``ALERTS_FOR_STATE`` of an alert start from (before the
        name and state): Prometheus builds these series on the rule's unexpanded labels, so a
        templated label that expanded to "" (the alert lacks it) keeps its template text."""
        missing = {k: v for k, v in self.labels.items() if k not in alert_labels}
        return alert_labels.update(missing) if missing else alert_labels

    def instance(self, sample_labels: Labels, value: float, t_ms: int,
                 query_func: QueryFunc | None = None, *,
                 annotations: bool = True) -> tuple[Labels, dict[str, str]]:
        """The alert labels and annotations one result element produces (templates expanded;
        ``annotations=False``: labels only, the annotations are ``{}``)."""
        data = sample_labels.to_dict()

        def expand(text: str) -> str:
            return expand_rule_template(text, alertname=self.rule.name, labels=data, value=value,
                                        external_labels=self.external_labels,
                                        external_url=self.external_url, timestamp_ms=t_ms,
                                        query_func=query_func)

        lbls = {k: v for k, v in data.items() if k != METRIC_NAME}
        for k, v in self.labels.items():
            lbls[k] = expand(v)
        lbls[ALERT_NAME_LABEL] = self.rule.name
        lbls = {k: v for k, v in lbls.items() if v != ""}  # empty values mean "no label"
        if not annotations:
            return Labels(lbls), {}
        return Labels(lbls), self.annotations(sample_labels, value, t_ms, query_func)

    def annotations(self, sample_labels: Labels, value: float, t_ms: int,
                    query_func: QueryFunc | None = None) -> dict[str, str]:
        """The annotations one result element produces (templates expanded)."""
        data = sample_labels.to_dict()
        return {k: expand_rule_template(v, alertname=self.rule.name, labels=data, value=value,
                                        external_labels=self.external_labels,
                                        external_url=self.external_url, timestamp_ms=t_ms,
                                        query_func=query_func)
                for k, v in self.rule.annotations.items()}

    # --- inspection -----------------------------------------------------------------------------
    def active_alerts(self) -> list[Alert]:
        """Pending and firing alerts (not the resolved ones kept for the sender)."""
        return [self.alerts[k] for k in sorted(self.alerts) if self.alerts[k].resolved_at_ms is None]

    @property
    def state(self) -> AlertState:
        """The rule's state: the highest of its alerts' states."""
        return max((a.state for a in self.alerts.values()), default=AlertState.INACTIVE)
