"""Rule definitions: frozen data read from rule files, with no evaluation state.

A rule never changes once loaded; what an evaluation learns (alerts, their states, the series
written last time) lives in :mod:`promlab.rules.state` and :mod:`promlab.rules.alerting`, so
one definition can drive a live loop and any number of backtests at once.

Examples
--------
>>> r = AlertingRule(name="Down", expr="up == 0", for_ms=300_000)
>>> g = RuleGroup(name="g", rules=(r,), labels={"team": "a"})
>>> g.rule_labels(r)
{'team': 'a'}
>>> g.num_rules, g.alerting_rules()[0].name
(1, 'Down')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "ALERTS_FOR_STATE_METRIC",
    "ALERTS_METRIC",
    "ALERT_NAME_LABEL",
    "ALERT_STATE_LABEL",
    "DEFAULT_INTERVAL_MS",
    "AlertingRule",
    "RecordingRule",
    "Rule",
    "RuleGroup",
]

ALERTS_METRIC = "ALERTS"
ALERTS_FOR_STATE_METRIC = "ALERTS_FOR_STATE"
ALERT_NAME_LABEL = "alertname"
ALERT_STATE_LABEL = "alertstate"
DEFAULT_INTERVAL_MS = 60_000  # Prometheus's global.evaluation_interval default

_EMPTY: Mapping[str, str] = MappingProxyType({})


def _frozen(d: Mapping[str, str] | None) -> Mapping[str, str]:
    return _EMPTY if not d else MappingProxyType(dict(d))


@dataclass(frozen=True, slots=True)
class RecordingRule:
    """``record: name`` / ``expr`` / ``labels``: store ``expr``'s result as series ``name``."""

    name: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))

    @property
    def kind(self) -> str:
        return "recording"


@dataclass(frozen=True, slots=True)
class AlertingRule:
    """``alert: name`` / ``expr`` / ``for`` / ``keep_firing_for`` / ``labels`` / ``annotations``.

    ``labels`` and ``annotations`` values are template strings (Prometheus's Go-template
    dialect); times are int milliseconds.
    """

    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "annotations", _frozen(self.annotations))

    @property
    def kind(self) -> str:
        return "alerting"


Rule = RecordingRule | AlertingRule


@dataclass(frozen=True, slots=True)
class RuleGroup:
    """A list of rules evaluated in order at one timestamp every ``interval_ms``.

    ``limit`` caps the alerts of each alerting rule and the series of each recording rule
    (0: no limit). ``query_offset_ms`` moves every query of the group into the past.
    ``labels`` are added to every rule's labels (a rule's own labels win). ``file`` is where the
    group was read from ("" when built in code).
    """

    name: str
    rules: tuple[Rule, ...] = ()
    interval_ms: int = DEFAULT_INTERVAL_MS
    limit: int = 0
    query_offset_ms: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    file: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "rules", tuple(self.rules))

    @property
    def num_rules(self) -> int:
        return len(self.rules)

    def rule_labels(self, rule: Rule) -> dict[str, str]:
        """The labels ``rule`` applies: the group's labels overridden by the rule's own."""
        return {**self.labels, **rule.labels}

    def alerting_rules(self) -> list[AlertingRule]:
        return [r for r in self.rules if isinstance(r, AlertingRule)]
