"""Rule unit tests evaluated rule by rule (:mod:`promlab.rules.unittest.rulewise`) against the
real ``promtool test rules`` (Prometheus 2.42): same exit code, stdout and stderr.

A long generated test (``benchmarks.rules_unittest``: recording rules over rates and
histogram buckets feeding alerts with ``for``, ``keep_firing_for`` and templates) must take
the rule-by-rule path; with its alerts group first, the step-by-step path with the recording
rules' results computed up front; hand-written cases where the rule-by-rule path gives up
part-way (a step fails) must still answer as promtool, from the step-by-step run.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.rules_unittest import write_case
from promlab.rules.unittest import rules_unit_test, rulewise


def _compare(base: Path, promtool: str, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Run both tools on ``base/test.yml``, assert identical output; what each rule-by-rule
    attempt returned."""
    real = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=base, capture_output=True,
                          text=True, timeout=120, check=False)
    attempts: list[bool] = []
    evaluate = rulewise.evaluate

    def counted(*args: Any, **kwargs: Any) -> bool:
        attempts.append(evaluate(*args, **kwargs))
        return attempts[-1]

    monkeypatch.setattr(rulewise, "evaluate", counted)
    monkeypatch.chdir(base)
    out, err = io.StringIO(), io.StringIO()
    code = rules_unit_test(["test.yml"], stdout=out, stderr=err)
    assert (code, out.getvalue(), _as_set(err.getvalue())) == (real.returncode, real.stdout,
                                                                _as_set(real.stderr))
    return attempts


def _as_set(text: str) -> str:
    """A matching error's series sorted: Go lists them in map order (random)."""
    return re.sub(r"operation: \[(.*?)\];",
                  lambda m: str(sorted(re.findall(r"\{[^{}]*\}", m.group(1)))), text)


def test_long_test_with_alerts_first_is_evaluated_rule_by_rule(
        tmp_path: Path, require_binary: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The alerts group first: its rules see the recording rules' output of the step before
    (read lagged, rule by rule)."""
    promtool = require_binary("promtool")
    write_case(tmp_path, 24, 2_000, "15s", "1m", seed=8, alerts_first=True)
    assert _compare(tmp_path, promtool, monkeypatch) == [True]


def test_long_test_with_a_rule_reading_itself_precomputes_the_others(
        tmp_path: Path, require_binary: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule reading its own output (a step counter): the test runs step by step, the
    results of the other rules computed up front."""
    promtool = require_binary("promtool")
    write_case(tmp_path, 24, 2_000, "15s", "1m", seed=8, alerts_first=True)
    rules = (tmp_path / "rules.yml").read_text()
    counter = "  - record: steps:count\n    expr: sum(steps:count offset 1m) + 1 or vector(0)\n"
    (tmp_path / "rules.yml").write_text(rules.replace("- name: recording\n  rules:\n",
                                                      "- name: recording\n  rules:\n" + counter))
    with (tmp_path / "test.yml").open("a") as f:
        f.write("  - {eval_time: 1000m, expr: 'steps:count', exp_samples: []}\n")
    precomputed: list[int] = []
    precompute = rulewise.precompute

    def counted(*args: Any, **kwargs: Any) -> Any:
        out = precompute(*args, **kwargs)
        precomputed.append(len(out))
        return out

    monkeypatch.setattr(rulewise, "precompute", counted)
    assert _compare(tmp_path, promtool, monkeypatch) == []
    assert precomputed == [8]  # all but the counter (the alerts read the recording rules lagged)


def test_long_generated_test_is_evaluated_rule_by_rule(
        tmp_path: Path, require_binary: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = require_binary("promtool")
    write_case(tmp_path, 24, 4_000, "15s", "1m", seed=7)
    assert _compare(tmp_path, promtool, monkeypatch) == [True]


RULES = """
groups:
- name: g
  limit: {limit}
  rules:
  - record: job:m:sum
    expr: sum by (job) (m)
  - record: m:relabelled
    expr: {relabel}
  - alert: High
    expr: m > 5
    for: 1m
    annotations: {{v: '{{{{ $value }}}}'}}
  - alert: Pair
    expr: m * on (i) group_left n > 10
  - record: alerts:count
    expr: count by (alertstate) (ALERTS)
"""

TEST = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - {{series: 'm{{i="1", job="a"}}', values: '1 3 6 9 12 15 18 21 24 27'}}
  - {{series: 'm{{i="2", job="a"}}', values: '7 8 9 _ _ 4 9 9 9 9'}}
  - {{series: 'n{{i="1"}}', values: '1x9'}}
  - {{series: 'n{{i="2"}}', values: '2x9'}}
  - {{series: 'n{{i="2", x="late"}}', values: '{n2}'}}
  alert_rule_test:
  - {{eval_time: 3m, alertname: High}}
  - {{eval_time: 9m, alertname: Pair}}
  promql_expr_test:
  - {{expr: alerts:count, eval_time: 9m}}
  - {{expr: job:m:sum, eval_time: 8m}}
"""

#: (id, rules.yml's limit and relabelling rule, n{i="2",x="late"}'s values, the rule-by-rule
#: outcome: done, or given up after writing)
CASES = [
    ("all-steps", 0, "m", "_x9", [True]),
    # Two series relabelled alike from the step both are above 5 (2m): the rule fails there.
    ("duplicate-labelset-late", 0, 'label_replace(m > 5, "i", "x", "i", ".*")', "_x9", [False]),
    # More series than the limit (alerts:count at 0s, after the rules before it were written).
    ("limit", 1, "m > 5", "_x9", [False]),
    # A second n series for i="2" from 5m on: Pair's one side has duplicates there.
    ("duplicate-match-late", 0, "m", "_x5 3 3 3 3", [False]),
]


@pytest.mark.parametrize(("limit", "relabel", "n2", "want"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_rule_by_rule_or_step_by_step_as_promtool(
        limit: int, relabel: str, n2: str, want: list[bool], tmp_path: Path,
        require_binary: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = require_binary("promtool")
    (tmp_path / "rules.yml").write_text(RULES.format(limit=limit, relabel=relabel))
    (tmp_path / "test.yml").write_text(TEST.format(n2=n2))
    assert _compare(tmp_path, promtool, monkeypatch) == want


LAGGED_RULES = """
groups:
- name: alerts
  rules:
  - alert: Seen
    expr: count_over_time(r[3m7s]) >= 2 and max_over_time(r[3m7s]) > 4
    annotations: {v: '{{ $value }}'}
  - alert: Now
    expr: r > 4
    for: 1m
  - record: lagged
    expr: r + 0
  - record: counted
    expr: count_over_time(r[2m37s]) * 10 + changes(r[2m37s])
- name: rec
  rules:
  - record: r
    expr: m * 2
"""

LAGGED_TEST = """
rule_files: [rules.yml]
evaluation_interval: 30s
group_eval_order: [alerts, rec]
tests:
- interval: 30s
  input_series:
  - {series: 'm{i="1"}', values: '1 2 3 _ _ 3 4 5 _x8 6 7 8 9 1x6'}
  - {series: 'm{i="2"}', values: '0 0 5 5 5 _x8 2 3'}
  alert_rule_test:
  - {eval_time: 2m, alertname: Seen}
  - {eval_time: 3m30s, alertname: Now}
  - {eval_time: 10m, alertname: Seen}
  promql_expr_test:
  - {expr: lagged, eval_time: 9m}
  - {expr: 'lagged offset 30s', eval_time: 9m}
  - {expr: counted, eval_time: 4m}
  - {expr: 'counted offset 3m', eval_time: 12m}
"""


def test_later_rules_output_read_lagged_as_promtool(
        tmp_path: Path, require_binary: Callable[[str], str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules reading a later rule's output (instant and sample-only range selectors) see it up
    to the step before, gaps and staleness markers included. (Ranges end 7s off the 30s grid
    and gaps stay under the lookback: 2.42's windows are closed on the left, Prometheus 3's
    open.)"""
    promtool = require_binary("promtool")
    (tmp_path / "rules.yml").write_text(LAGGED_RULES)
    (tmp_path / "test.yml").write_text(LAGGED_TEST)
    assert _compare(tmp_path, promtool, monkeypatch) == [True]
