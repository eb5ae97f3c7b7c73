"""Backtests over MemoryStorage with the real Engine: episodes, recorded series, sweeps, scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promlab.cli import main
from promlab.model import Labels
from promlab.rules import AlertingRule, RecordingRule, RuleGroup, backtest, backtest_sweep, score
from promlab.storage import MemoryStorage

MIN = 60_000
# errors for two instances over 20 minutes, one sample a minute
PATTERNS = {"a": [0, 0, 5, 6, 7, 8, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "b": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 0, 0, 0, 0]}


@pytest.fixture
def store() -> MemoryStorage:
    st = MemoryStorage()
    for inst, vals in PATTERNS.items():
        st.add_series(Labels({"__name__": "errors", "instance": inst, "job": "api"}),
                      np.arange(len(vals)) * MIN, [float(v) for v in vals])
    return st


def ts(minute: float) -> pd.Timestamp:
    return pd.Timestamp(int(minute * MIN), unit="ms", tz="UTC")


def test_episodes(store: MemoryStorage) -> None:
    rule = AlertingRule(name="HighErrors", expr="errors > 3", for_ms=2 * MIN, labels={"severity": "page"})
    ep = backtest(rule, 0, 20 * MIN, data=store, step="1m")
    got = ep[["instance", "pending_at", "firing_at", "resolved_at", "duration", "peak_value"]]
    want = pd.DataFrame({
        "instance": ["a", "a", "b"],
        "pending_at": [ts(2), ts(9), ts(11)],
        "firing_at": [ts(4), pd.NaT, ts(13)],
        "resolved_at": [ts(6), ts(10), ts(17)],
        "duration": [pd.Timedelta(minutes=2), pd.NaT, pd.Timedelta(minutes=4)],
        "peak_value": [8.0, 9.0, 4.0],
    })
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False)
    assert ep["labels"][0] == {"alertname": "HighErrors", "instance": "a", "job": "api", "severity": "page"}


def test_recording_rules_feed_later_rules(store: MemoryStorage) -> None:
    group = RuleGroup(name="g", interval_ms=MIN, rules=(
        RecordingRule(name="job:errors:sum", expr="sum by (job) (errors)"),
        AlertingRule(name="JobErrors", expr="job:errors:sum > 5"),
    ))
    ep = backtest(group, 0, 20 * MIN, data=store)
    assert ep[["job", "firing_at", "resolved_at"]].values.tolist() == [
        ["api", ts(3), ts(6)], ["api", ts(9), ts(10)]]


def test_sweep(store: MemoryStorage) -> None:
    rule = AlertingRule(name="HighErrors", expr="errors > 3")
    table = backtest_sweep(rule, 0, 20 * MIN, data=store, thresholds=[3, 6], for_=["0s", "3m"], flap="2m")
    assert table[["threshold", "alerts", "flapping"]].values.tolist() == [
        [3.0, 3, 1], [3.0, 2, 1], [6.0, 2, 1], [6.0, 0, 0]]
    assert table["firing_time"].iloc[0] == pd.Timedelta(minutes=4 + 1 + 6)


def test_score(store: MemoryStorage) -> None:
    ep = backtest(AlertingRule(name="E", expr="errors > 3", for_ms=MIN), 0, 20 * MIN, data=store, step="1m")
    incidents = pd.DataFrame({"start": [ts(1), ts(12), ts(18)], "end": [ts(5), ts(15), ts(19)]})
    s = score(ep, incidents)
    assert (s.caught, s.missed, s.false_alerts) == (2, 1, 0)
    assert s.incidents["time_to_detect"].tolist()[:2] == [pd.Timedelta(minutes=2), pd.Timedelta(0)]


def test_cli_backtest_json(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from promlab.storage import open_store

    with open_store(tmp_path / "data") as st:
        app = st.appender()
        for i, v in enumerate(PATTERNS["a"]):
            app.append(Labels({"__name__": "errors", "instance": "a"}), i * MIN, float(v))
        app.commit()
    rules = tmp_path / "r.yml"
    rules.write_text("groups:\n- name: g\n  interval: 1m\n  rules:\n  - alert: E\n    expr: errors > 3\n")
    code = main(["rules", "backtest", str(rules), "--data", str(tmp_path / "data"), "--start", "0",
                 "--end", "1200", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    import json
    rows = json.loads(out)
    assert [(r["alertname"], r["labels"]["instance"]) for r in rows] == [("E", "a"), ("E", "a")]
    assert rows[0]["firing_at"].startswith("1970-01-01T00:02:00")


def test_cli_check(capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    data = Path(__file__).parent / "data"
    assert main(["rules", "check", str(data / "good.yml")]) == 0
    assert main(["rules", "check", str(data / "good.yml"), str(data / "bad_expr.yml")]) == 1
    assert "SUCCESS: 2 rules found" in capsys.readouterr().out
