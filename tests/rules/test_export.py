"""Rules written back out (:mod:`promlab.rules.export`): rule files that load back identical, and
promtool-style tests from history that pass under promlab and under the real ``promtool``; the
threshold helpers the sweep and the rule lab use; the sweep's progress bar."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from promlab import progress
from promlab.model import Labels
from promlab.rules import AlertingRule, RecordingRule, RuleGroup, backtest_sweep, parse_rules
from promlab.rules.backtest import split_threshold, threshold_of, with_threshold
from promlab.rules.export import rules_yaml, write_rule_test
from promlab.rules.unittest import run_rule_tests
from promlab.storage import MemoryStorage

MIN = 60_000
PROMTOOL = "/usr/bin/promtool"

GROUPS = {
    "alert-defaults": RuleGroup(name="g", rules=(AlertingRule(name="A", expr="up == 0"),)),
    "alert-full": RuleGroup(name="g", interval_ms=15_000, query_offset_ms=30_000, limit=3,
                            labels={"team": "x"}, rules=(
        AlertingRule(name="A", expr='rate(x{job="a"}[5m]) > 0.5', for_ms=300_000, keep_firing_for_ms=60_000,
                     labels={"severity": "page"}, annotations={"summary": "{{ $value | humanize }}: 'quoted'"}),)),
    "recording-then-alert": RuleGroup(name="g", rules=(
        RecordingRule(name="job:x:sum", expr="sum by (job) (x)", labels={"kind": "sum"}),
        AlertingRule(name="B", expr="job:x:sum > 10"))),
}


@pytest.mark.parametrize("group", list(GROUPS.values()), ids=list(GROUPS))
def test_rules_yaml_loads_back_identical(group: RuleGroup) -> None:
    assert parse_rules(rules_yaml(group)) == [group]


@pytest.mark.parametrize(("expr", "threshold", "parts", "replaced"), [
    pytest.param("up > 1", 1.0, ("up", ">", 1.0), "up > 2", id="plain"),
    pytest.param("(sum(x) / sum(y) <= 0.25)", 0.25, ("sum(x) / sum(y)", "<=", 0.25), "sum(x) / sum(y) <= 2",
                 id="parenthesised"),
    pytest.param("up", None, None, None, id="no-comparison"),
    pytest.param("1 < up", None, None, None, id="number-on-the-left"),
])
def test_threshold_helpers(expr: str, threshold: float | None, parts: tuple[str, str, float] | None,
                           replaced: str | None) -> None:
    assert threshold_of(expr) == threshold
    assert split_threshold(expr) == parts
    if replaced is None:
        with pytest.raises(ValueError, match="cannot vary the threshold"):
            with_threshold(expr, 2)
    else:
        assert with_threshold(expr, 2) == replaced


def _store() -> MemoryStorage:
    st = MemoryStorage()
    ts = np.arange(0, 60 * MIN + 1, 15_000)
    for inst, lo, hi in (("a", 10, 25), ("b", 40, 50)):
        v = np.where((ts >= lo * MIN) & (ts < hi * MIN), 5.0, 0.0)
        st.add_series(Labels({"__name__": "errors", "instance": inst}), ts.tolist(), v.tolist())
    return st


RULE = AlertingRule(name="Errors", expr="errors > 1", for_ms=2 * MIN, labels={"severity": "page"},
                    annotations={"summary": "{{ $labels.instance }} at {{ $value }}"})


def test_rule_test_from_history_passes_and_expects_the_alert(tmp_path: Path) -> None:
    rules, test = write_rule_test(RULE, _store(), start_ms=0, end_ms=60 * MIN, out_dir=tmp_path, name="errors",
                                  eval_times_ms=[15 * MIN, 30 * MIN, 45 * MIN])
    assert parse_rules(rules.read_text())[0].rules == (RULE,)
    doc = yaml.safe_load(test.read_text())
    assert doc["rule_files"] == ["errors.rules.yml"] and "start_timestamp" not in doc["tests"][0]
    expected = {c["eval_time"]: [a["exp_labels"]["instance"] for a in c["exp_alerts"]]
                for c in doc["tests"][0]["alert_rule_test"]}
    assert expected == {"15m": ["a"], "30m": [], "45m": ["b"]}
    assert [(r.ok, r.failures) for r in run_rule_tests(test)] == [(True, [])]


def test_rule_test_from_history_passes_under_promtool(tmp_path: Path) -> None:
    if not os.access(PROMTOOL, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PROMTOOL} is missing (Debian package prometheus)")
        pytest.skip(f"{PROMTOOL} is missing")
    _, test = write_rule_test(RULE, _store(), start_ms=0, end_ms=60 * MIN, out_dir=tmp_path, name="errors",
                              eval_times_ms=[15 * MIN, 45 * MIN])
    proc = subprocess.run([PROMTOOL, "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    # and it fails when the rule changes: the test guards the rule
    (tmp_path / "errors.rules.yml").write_text(rules_yaml(RuleGroup(name="backtest", rules=(
        AlertingRule(name="Errors", expr="errors > 10", for_ms=2 * MIN, labels={"severity": "page"},
                     annotations=RULE.annotations),))))
    proc = subprocess.run([PROMTOOL, "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert shutil.which(PROMTOOL) is not None


@pytest.mark.parametrize("on", [True, False], ids=["progress", "quiet"])
def test_sweep_progress_bar(on: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    table = backtest_sweep(RULE, 0, 60 * MIN, data=_store(), thresholds=[1, 10], for_=["0s", "2m"], progress=on)
    assert table["alerts"].tolist() == [2, 2, 0, 0]
    err = capsys.readouterr().err
    assert ("backtest sweep" in err) == on
    assert ("/4 " in err) == on  # the total: 2 thresholds x 2 for
