"""How rules use the template engine: the names, data and error text Prometheus uses.

A label or annotation value without ``{{`` is returned as is (most are), so plain rules never
touch :mod:`promlab.rules.template`. A template that fails to expand becomes
``<error expanding template: ...>`` in the alert, as in Prometheus, and never fails the rule.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from promlab.errors import PromlabError
from promlab.promql.values import Vector

__all__ = ["check_rule_template", "expand_rule_template", "is_template", "template_name"]


@dataclass(frozen=True, slots=True)
class _QuerySample:
    labels: Mapping[str, str]
    value: float


def _sample_query(query_func: Callable[..., Any]) -> Callable[[str, int], Any]:
    """The template engine's ``query`` wants a list of samples; rules' QueryFuncs return a
    :class:`~promlab.promql.values.Vector` (its last column is the instant)."""

    def run(expr: str, time_ms: int) -> Any:
        res = query_func(expr, time_ms)
        if not isinstance(res, Vector):
            return res
        if res.values.ndim != 2 or res.values.shape[1] == 0:
            return []
        return [_QuerySample(ls, float(res.values[i, -1])) for i, ls in enumerate(res.labels)
                if bool(res.present[i, -1])]

    return run


def is_template(text: str) -> bool:
    """Whether ``text`` has any template action (otherwise it expands to itself)."""
    return "{{" in text


def template_name(alertname: str) -> str:
    """The template name Prometheus gives an alert's templates (shown in errors)."""
    return "__alert_" + alertname


def check_rule_template(text: str, *, alertname: str) -> None:
    """Parse ``text`` as a template of alert ``alertname``; raise ``TemplateError`` if bad."""
    if not is_template(text):
        return
    from promlab.rules.template import check_template

    check_template(text, name=template_name(alertname))


def expand_rule_template(text: str, *, alertname: str, labels: Mapping[str, str], value: float,
                         external_labels: Mapping[str, str] | None = None,
                         external_url: str = "", timestamp_ms: int = 0,
                         query_func: Callable[..., Any] | None = None) -> str:
    """Expand one label or annotation value for one alert instance.

    Errors are rendered into the result as Prometheus does (``<error expanding template:
    ...>``) so one bad template never stops the rule or its group.
    """
    if not is_template(text):
        return text
    fast = _simple_template(text)
    if fast is not None:
        got = _expand_simple(fast, labels, value)
        if got is not None:
            return got
    from promlab.rules.template import expand_template

    try:
        return expand_template(text, name=template_name(alertname), labels=dict(labels),
                               value=value, external_labels=dict(external_labels or {}),
                               external_url=external_url, timestamp_ms=timestamp_ms,
                               query_func=None if query_func is None else _sample_query(query_func))
    except PromlabError as e:
        # Prometheus: "<error expanding template: error executing template __alert_X: template: ...>"
        return f"<error expanding template: {getattr(e, 'prometheus_message', e)}>"


# Most annotations only print labels and the value ("{{ $labels.instance }} at {{ $value }}").
# Those are expanded by concatenation: a backtest renders one per episode, tens of thousands.
_SIMPLE_ACTION = re.compile(r"\{\{ *(?:(\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)|(\$value|\.Value)) *\}\}")


@functools.lru_cache(maxsize=1024)
def _simple_template(text: str) -> tuple[tuple[str, str | None], ...] | None:
    """``text`` as (literal, label name or "" for the value or None) parts, or None when it has
    any action besides ``$labels.NAME``/``.Labels.NAME``/``$value``/``.Value``."""
    parts: list[tuple[str, str | None]] = []
    pos = 0
    for m in _SIMPLE_ACTION.finditer(text):
        parts.append((text[pos:m.start()], m.group(2) if m.group(2) is not None else ""))
        pos = m.end()
    tail = text[pos:]
    if any("{{" in lit for lit, _ in parts) or "{{" in tail:
        return None
    parts.append((tail, None))
    return tuple(parts)


def _expand_simple(parts: tuple[tuple[str, str | None], ...], labels: Mapping[str, str],
                   value: float) -> str | None:
    """The expansion, or None when a label is missing (left to the engine's rules)."""
    from promlab.rules.template.gofmt import format_value

    out: list[str] = []
    for lit, ref in parts:
        out.append(lit)
        if ref == "":
            out.append(format_value(float(value)))
        elif ref is not None:
            got = labels.get(ref)
            if got is None:
                return None
            out.append(got)
    return "".join(out)
