"""Rules written back out: rule files as YAML and promtool-style tests of them over history.

:func:`rules_yaml` writes groups (or a single rule) in Prometheus's rule-file format, the way
:func:`~promlab.rules.load.parse_rules` reads it back. :func:`write_rule_test` writes a rule file
and a ``promtool test rules`` file whose ``input_series`` are a slice of stored history and
whose expected alerts are what the rules fire over it
(:func:`~promlab.rules.unittest.history.history_test_file`); the rule lab's export buttons call
both.

Examples
--------
>>> rule = AlertingRule(name="Down", expr="up == 0", for_ms=300_000, labels={"severity": "page"})
>>> print(rules_yaml(rule, group="demo"), end="")
groups:
- name: demo
  rules:
  - alert: Down
    expr: up == 0
    for: 5m
    labels:
      severity: page
>>> from promlab.rules.load import parse_rules
>>> parse_rules(rules_yaml(rule))[0].rules == (rule,)
True
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from promlab.model import format_duration
from promlab.rules.rule import DEFAULT_INTERVAL_MS, AlertingRule, RecordingRule, Rule, RuleGroup
from promlab.rules.unittest.history import history_test_file
from promlab.storage.interface import Queryable

__all__ = ["group_dict", "rule_dict", "rules_yaml", "write_rule_test"]


def rule_dict(rule: Rule) -> dict[str, Any]:
    """One rule as the mapping a rule file holds (defaults left out)."""
    out: dict[str, Any]
    if isinstance(rule, RecordingRule):
        out = {"record": rule.name, "expr": rule.expr}
    else:
        out = {"alert": rule.name, "expr": rule.expr}
        if rule.for_ms:
            out["for"] = format_duration(rule.for_ms)
        if rule.keep_firing_for_ms:
            out["keep_firing_for"] = format_duration(rule.keep_firing_for_ms)
    if rule.labels:
        out["labels"] = dict(rule.labels)
    if isinstance(rule, AlertingRule) and rule.annotations:
        out["annotations"] = dict(rule.annotations)
    return out


def group_dict(group: RuleGroup) -> dict[str, Any]:
    """One group as the mapping a rule file holds (``interval`` left out when it is the
    default)."""
    out: dict[str, Any] = {"name": group.name}
    if group.interval_ms != DEFAULT_INTERVAL_MS:
        out["interval"] = format_duration(group.interval_ms)
    if group.query_offset_ms:
        out["query_offset"] = format_duration(group.query_offset_ms)
    if group.limit:
        out["limit"] = group.limit
    if group.labels:
        out["labels"] = dict(group.labels)
    out["rules"] = [rule_dict(r) for r in group.rules]
    return out


def rules_yaml(rules: Rule | RuleGroup | Iterable[RuleGroup], *, group: str = "promlab",
               interval_ms: int | None = None) -> str:
    """A rule file's text: the groups, or one rule in a group named ``group`` (evaluated every
    ``interval_ms``, default Prometheus's 1m)."""
    if isinstance(rules, AlertingRule | RecordingRule):
        groups = [RuleGroup(name=group, rules=(rules,), interval_ms=interval_ms or DEFAULT_INTERVAL_MS)]
    elif isinstance(rules, RuleGroup):
        groups = [rules]
    else:
        groups = list(rules)
    doc = {"groups": [group_dict(g) for g in groups]}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000)


def write_rule_test(rules: Rule | RuleGroup | Iterable[RuleGroup], data: Queryable, *, start_ms: int,
                    end_ms: int, out_dir: str | os.PathLike[str], name: str = "rule",
                    interval_ms: int = 60_000, eval_times_ms: Iterable[int] | None = None,
                    absolute: bool = False) -> tuple[Path, Path]:
    """Write ``<name>.rules.yml`` and ``<name>.test.yml`` into ``out_dir``: the rules, and a
    promtool-style test whose input is ``data`` over ``[start_ms, end_ms]`` sampled every
    ``interval_ms`` and whose expected alerts are those the rules fire at ``eval_times_ms``
    (offsets from ``start_ms``; default the end). Run it with ``promlab test rules`` or
    ``promtool test rules``; returns both paths.

    ``absolute=False`` (the default) starts the test's series at time 0, as promtool 2.x needs.

    Raises
    ------
    ConfigError
        The rules fail over this data.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rule_file = out / f"{name}.rules.yml"
    rule_file.write_text(rules_yaml(rules, interval_ms=interval_ms), encoding="utf-8")
    text = history_test_file(data, [str(rule_file)], start_ms=start_ms, end_ms=end_ms,
                             interval_ms=interval_ms,
                             eval_times_ms=None if eval_times_ms is None else list(eval_times_ms),
                             out_dir=str(out), absolute=absolute, name=name)
    test_file = out / f"{name}.test.yml"
    test_file.write_text(text, encoding="utf-8")
    return rule_file, test_file
