"""Recording-rule backfill: series written into MemoryStorage and Parquet stores, read back by
queries; chains of rules, chunking, query offsets, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from promlab.cli import main
from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.rules import AlertingRule, RecordingRule, RuleGroup
from promlab.rules.backfill import backfill
from promlab.session import Session
from promlab.storage import MemoryStorage, open_store

MIN = 60_000
N = 31  # minutes of data: samples at 0..30 min


def _series() -> list[tuple[Labels, np.ndarray, np.ndarray]]:
    t = np.arange(N, dtype=np.int64) * MIN
    return [(Labels({"__name__": "reqs_total", "instance": inst, "job": "api"}), t,
             (np.arange(N) * k).astype(np.float64)) for inst, k in (("a", 60.0), ("b", 120.0))]


def _points(st, expr: str, start_ms: int, end_ms: int) -> dict[str, list[float]]:
    res = Engine().range(st, expr, start_ms, end_ms, MIN)
    return {str(ls): np.where(res.value.present[i], res.value.values[i], np.nan).tolist()
            for i, ls in enumerate(res.value.labels)}


GROUPS = [
    pytest.param(RuleGroup(name="g", interval_ms=MIN, rules=(
        RecordingRule(name="instance:reqs:rate5m", expr="rate(reqs_total[5m])"),)),
        "instance:reqs:rate5m", {'instance:reqs:rate5m{instance="a", job="api"}': 1.0,
                                 'instance:reqs:rate5m{instance="b", job="api"}': 2.0},
        42, id="rate"),
    pytest.param(RuleGroup(name="g", interval_ms=MIN, labels={"team": "x"}, rules=(
        RecordingRule(name="instance:reqs:rate5m", expr="rate(reqs_total[5m])"),
        RecordingRule(name="job:reqs:rate5m", expr="sum by (job) (instance:reqs:rate5m)",
                      labels={"team": "y"}),)),
        "job:reqs:rate5m", {'job:reqs:rate5m{job="api", team="y"}': 3.0},
        42 + 21, id="chain-and-labels"),
    pytest.param(RuleGroup(name="g", interval_ms=MIN, rules=(
        RecordingRule(name="r1", expr="reqs_total / 60"),
        RecordingRule(name="r2", expr="rate(r1[3m]) * 60"),)),
        "r2", {'r2{instance="a", job="api"}': 1.0,
               'r2{instance="b", job="api"}': 2.0},
        # r1 starts at the first evaluation: rate() over it needs a second sample
        42 + 40, id="range-over-recorded"),
]


@pytest.mark.parametrize("chunk_steps", [1440, 4, 1], ids=["one-chunk", "chunks-of-4", "chunks-of-1"])
@pytest.mark.parametrize(("group", "metric", "want", "samples"), GROUPS)
def test_backfill_memory(group: RuleGroup, metric: str, want: dict[str, float], samples: int,
                         chunk_steps: int) -> None:
    st = MemoryStorage()
    for ls, t, v in _series():
        st.add_series(ls, t, v)
    stats = backfill(group, 10 * MIN, 30 * MIN, data=st, chunk_steps=chunk_steps)
    got = _points(st, metric, 10 * MIN, 30 * MIN)
    assert {k: v[-1] for k, v in got.items()} == pytest.approx(want)
    # one sample per evaluation (21) and series; chunks see the previous chunk's output
    assert stats.samples == samples
    assert sum(int((~np.isnan(v)).sum()) for v in got.values()) == stats.per_rule[f"g/{metric}"]


def test_backfill_skips_alerts_and_honours_offset() -> None:
    st = MemoryStorage()
    for ls, t, v in _series():
        st.add_series(ls, t, v)
    g = RuleGroup(name="g", interval_ms=5 * MIN, query_offset_ms=MIN, rules=(
        RecordingRule(name="copy", expr="reqs_total"), AlertingRule(name="A", expr="reqs_total > 0")))
    stats = backfill(g, 10 * MIN, 30 * MIN, data=st)
    assert stats.per_rule == {"g/copy": 10}
    sel = Engine().range(st, "count_over_time(copy[1h])", 30 * MIN, 30 * MIN, MIN)
    assert sel.value.values.ravel().tolist() == [5.0, 5.0]
    # samples at evaluation time minus the offset, with the value seen there
    raw = Engine().instant(st, "copy[1h]", 30 * MIN).value
    assert raw.ts_ms.tolist()[:5] == [9 * MIN, 14 * MIN, 19 * MIN, 24 * MIN, 29 * MIN]  # type: ignore[union-attr]
    assert Engine().instant(st, "ALERTS", 30 * MIN).value.labels == []  # type: ignore[union-attr]


def test_backfill_parquet_blocks_then_session_query(tmp_path: Path) -> None:
    with open_store(tmp_path / "data") as store:
        bf = store.backfill()
        for ls, t, v in _series():
            bf.add([ls], np.zeros(N, np.int64), t, v)
        bf.finish()
    g = RuleGroup(name="g", interval_ms=MIN, rules=(
        RecordingRule(name="job:reqs:rate5m", expr="sum by (job) (rate(reqs_total[5m]))"),))
    stats = backfill(g, 10 * MIN, 30 * MIN, data=tmp_path / "data")
    assert stats.samples == 21 and stats.series == 1 and stats.blocks
    with Session(tmp_path / "data", read_only=True) as s:
        df = s.query_range("job:reqs:rate5m", 10 * 60, 30 * 60, 60)
    assert len(df) == 21 and set(df["value"]) == {3.0}


def test_cli_backfill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(tmp_path / "data") as store:
        app = store.appender()
        for ls, t, v in _series():
            app.append_batch([ls], np.zeros(N, np.int64), t, v)
        app.commit()
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: g\n  interval: 1m\n  rules:\n"
                     "  - record: job:reqs:rate5m\n    expr: sum by (job) (rate(reqs_total[5m]))\n"
                     "  - alert: Ignored\n    expr: reqs_total > 0\n")
    code = main(["rules", "backfill", str(rules), "--data", str(tmp_path / "data"),
                 "--start", "600", "--end", "1800", "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "samples=21" in out and "g/job:reqs:rate5m: 21 samples" in out
    code = main(["query", "job:reqs:rate5m", "--data", str(tmp_path / "data"), "--time", "1800",
                 "--format", "csv", "-q"])
    assert code == 0
    assert capsys.readouterr().out.strip().splitlines()[1].endswith(",3.0")


def test_cli_backfill_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(\n")
    assert main(["rules", "backfill", str(rules), "--data", str(tmp_path / "d"), "--start", "0",
                 "--end", "60", "-q"]) == 1
    assert "promlab rules backfill:" in capsys.readouterr().err
