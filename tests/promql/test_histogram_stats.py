"""The histogram-stats reader's selectors and counter-reset hints (promql/eval/histstats.py)."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.model import Labels
from promlab.model.histogram import CounterResetHint, FloatHistogram, from_bucket_map
from promlab.promql.eval import histstats
from promlab.promql.parser import ast, parse_expr
from promlab.storage.interface import SeriesSet

U, N, R = CounterResetHint.UNKNOWN, CounterResetHint.NOT_COUNTER_RESET, CounterResetHint.COUNTER_RESET


def _selectors(node: ast.Expr) -> list[ast.VectorSelector]:
    out: list[ast.VectorSelector] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.VectorSelector):
            out.append(n)
        stack.extend(ast.children(n))
    return out


@pytest.mark.parametrize(("query", "stats"), [
    pytest.param("histogram_count(sum(m))", True, id="through-aggregation"),
    pytest.param("histogram_sum(rate(m[5m]))", True, id="range-selector"),
    pytest.param("histogram_avg(m) + histogram_count(m)", True, id="both-sides"),
    pytest.param("sum(m)", False, id="no-stats-function"),
    pytest.param("histogram_count(increase(m[40m:9m]))", False, id="subquery-in-between"),
    pytest.param("histogram_count(last_over_time(m[40m:9m]))", False, id="subquery-below"),
    pytest.param("histogram_quantile(0.5, histogram_count(m))", False, id="quantile-above"),
    pytest.param("histogram_count(m </ 5)", False, id="trim-in-between"),
])
def test_stats_selectors(query: str, stats: bool) -> None:
    node = parse_expr(query)
    found = histstats.stats_selectors(node)
    assert {id(s) in found for s in _selectors(node)} == {stats}


def _h(count: float, hint: CounterResetHint = U) -> FloatHistogram:
    return from_bucket_map(0, {0: count}, count=count, sum=count).with_hint(hint)


def _hints(ss: SeriesSet) -> list[CounterResetHint]:
    assert ss.histograms is not None
    return [h.counter_reset_hint for h in ss.histograms]


@pytest.mark.parametrize(("counts", "seeks", "vector", "want"), [
    # One instant read at 3m with 5m lookback: everything from 0 is read, in order.
    pytest.param([3, 2, 2, 3], [(180_000, 300_000)], True, [U, R, N, N], id="vector-all-read"),
    # Lookback 1m from 3m: reading starts at 2m, so 2m stays unknown; 3m compares with it.
    pytest.param([3, 2, 2, 1], [(180_000, 60_000)], True, [U, U, U, R], id="vector-short-lookback"),
    # A window (1m, 3m]: the sample at exactly 1m is read first (and stays unknown).
    pytest.param([3, 1, 2, 1], [(180_000, 120_000)], False, [U, U, N, R], id="matrix-window"),
    # Two far-apart steps: the reader jumps forward and forgets what it read before.
    pytest.param([3, 2, 2, 1], [(60_000, 60_000), (180_000, 60_000)], False, [U, R, U, R],
                 id="matrix-seek-forgets"),
])
def test_redetect(counts: list[float], seeks: list[tuple[int, int]], vector: bool,
                  want: list[CounterResetHint]) -> None:
    hs = np.array([_h(c) for c in counts], object)
    ts = np.arange(len(counts), dtype=np.int64) * 60_000
    ss = SeriesSet([Labels({"__name__": "m"})], np.array([0, len(counts)]), ts,
                   np.full(len(counts), np.nan), hs)
    assert _hints(histstats.redetect(ss, seeks, vector=vector)) == want


def test_stored_hints_are_kept() -> None:
    hs = np.array([_h(3), _h(1, N)], object)
    ss = SeriesSet([Labels({"__name__": "m"})], np.array([0, 2]), np.array([0, 60_000]),
                   np.full(2, np.nan), hs)
    assert _hints(histstats.redetect(ss, [(60_000, 300_000)], vector=True)) == [U, N]


# --- start timestamps (promql/eval/functions/starttime.py, promqltest @st lines) ----------------
@pytest.mark.parametrize(("prev_st", "prev_t", "cur_st", "cur_t", "reset"), [
    pytest.param(0, 60, 0, 120, False, id="unknown"),
    pytest.param(0, 60, 90, 120, True, id="start-after-previous"),
    pytest.param(0, 60, 30, 120, False, id="start-before-previous"),
    pytest.param(0, 60, 120, 120, False, id="start-equals-time"),
    pytest.param(0, 60, 60, 120, False, id="cumulative-unknown-start"),
    pytest.param(30, 60, 60, 120, True, id="delta"),
    pytest.param(90, 60, 60, 120, False, id="invalid-previous-start"),
])
def test_st_reset(prev_st: int, prev_t: int, cur_st: int, cur_t: int, reset: bool) -> None:
    from promlab.promql.eval.functions.starttime import st_reset

    assert st_reset(prev_st, prev_t, cur_st, cur_t) is reset


def test_st_line_offsets() -> None:
    from promlab.promql.promqltest.dsl import parse_script

    s = parse_script("load 1m\n  m@st _ -30s-1mx1 1msx1 _x1\n  m 1 2 3 4 5 6\n")
    series = next(iter(s.commands[0].series.values()))  # type: ignore[union-attr]
    assert series.start_ts == {60_000: 30_000, 120_000: 30_000, 180_000: 180_001, 240_000: 240_001}
