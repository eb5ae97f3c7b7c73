"""Bounded-memory evaluation paths give the same answers as the whole-frame ones.

A long range query is evaluated over step slices sized by the samples they read
(:func:`promlab.promql.eval.limits.eval_in_slices`), range functions run over blocks of series (:mod:`promlab.promql.eval.serieschunks`), vector
selectors fill their frames in sample-bounded chunks, range ``topk``/``bottomk`` select by a
partition threshold (:mod:`promlab.promql.eval.kselect`), and selections read once are not
cached. Each is compared here with the path it replaces (blocks as large as the data, the
instant query's sort at every step), and the peak memory of a range ``rate`` is bounded.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.promql.eval import limits, selectors, serieschunks
from promlab.promql.values import Vector
from promlab.storage import MemoryStorage

M = 60_000
STEPS = 120


def _store(n_series: int = 40, seed: int = 7) -> MemoryStorage:
    """Counters (with resets), gauges with ties, NaN and infinities, and gappy series."""
    rng = np.random.default_rng(seed)
    st = MemoryStorage()
    ts_all = np.arange(0, (STEPS + 10) * M, 15_000, dtype=np.int64)
    for i in range(n_series):
        keep = rng.random(ts_all.shape[0]) > (0.5 if i % 5 == 0 else 0.05)
        ts = ts_all[keep]
        c = np.cumsum(rng.integers(0, 10, ts.shape[0])).astype(np.float64)
        if i % 3 == 0:
            c[ts.shape[0] // 2:] -= c[ts.shape[0] // 2]  # a counter reset
        st.add_series(Labels({"__name__": "c_total", "i": str(i), "g": str(i % 3)}), ts, c)
        g = rng.choice([0.0, 1.0, 2.0, 5.0, np.nan, np.inf, -np.inf], ts.shape[0],
                       p=[0.3, 0.2, 0.2, 0.2, 0.04, 0.03, 0.03])
        st.add_series(Labels({"__name__": "g", "i": str(i), "g": str(i % 3)}), ts, g)
    return st


def _frame(v: object) -> dict[Labels, tuple[list[bool], list[float]]]:
    assert isinstance(v, Vector)
    return {ls: (v.present[r].tolist(), np.where(v.present[r], v.values[r], 0.0).tolist())
            for r, ls in enumerate(v.labels)}


def _same(a: object, b: object) -> None:
    fa, fb = _frame(a), _frame(b)
    assert fa.keys() == fb.keys()
    for ls, (pa, va) in fa.items():
        pb, vb = fb[ls]
        assert pa == pb, ls
        np.testing.assert_array_equal(np.array(va), np.array(vb), err_msg=str(ls))


RANGE_QUERIES = [
    pytest.param("rate(c_total[5m])", id="rate"),
    pytest.param("increase(c_total[10m])", id="increase"),
    pytest.param("delta(g[5m])", id="delta"),
    pytest.param("irate(c_total[5m])", id="irate"),
    pytest.param("resets(c_total[30m])", id="resets"),
    pytest.param("changes(g[10m])", id="changes"),
    pytest.param("deriv(c_total[10m])", id="deriv"),
    pytest.param("predict_linear(c_total[10m], 60)", id="predict_linear"),
    pytest.param("avg_over_time(g[10m])", id="avg_over_time"),
    pytest.param("max_over_time(g[1h])", id="max_over_time"),
    pytest.param("min_over_time(g[7m])", id="min_over_time"),
    pytest.param("sum_over_time(c_total[5m])", id="sum_over_time"),
    pytest.param("count_over_time(g[5m])", id="count_over_time"),
    pytest.param("last_over_time(g[5m])", id="last_over_time"),
    pytest.param("stddev_over_time(c_total[10m])", id="stddev_over_time"),
    pytest.param("quantile_over_time(0.3, g[10m])", id="quantile_over_time"),
    pytest.param("absent_over_time(nothing[5m])", id="absent_over_time"),
    pytest.param("max_over_time(rate(c_total[5m])[30m:1m])", id="subquery"),
    pytest.param("sum by (g) (rate(c_total[5m]))", id="sum-by-rate"),
]


@pytest.mark.parametrize("query", RANGE_QUERIES)
def test_series_blocks_match_whole_frame(monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    st = _store()
    whole = Engine().range(st, query, 10 * M, STEPS * M, M)
    monkeypatch.setattr(serieschunks, "BLOCK_CELLS", 2 * STEPS)   # two series a block
    monkeypatch.setattr(serieschunks, "BLOCK_SAMPLES", 1_000)
    blocked = Engine().range(st, query, 10 * M, STEPS * M, M)
    _same(whole.value, blocked.value)
    assert whole.annotations.infos == blocked.annotations.infos


def test_series_blocks_are_views_covering_every_series(monkeypatch: pytest.MonkeyPatch) -> None:
    st = _store(n_series=9)
    ev_m = Engine().instant(st, "c_total[30m]", 60 * M).value
    monkeypatch.setattr(serieschunks, "BLOCK_CELLS", 2)
    blocks = list(serieschunks.series_blocks(ev_m))
    assert [ls for b in blocks for ls in b.labels] == ev_m.labels
    assert all(len(b.labels) <= 2 for b in blocks)
    assert all(np.shares_memory(b.values, ev_m.values) for b in blocks if b.values.size)
    assert sum(b.values.shape[0] for b in blocks) == ev_m.values.shape[0]


@pytest.mark.parametrize("query", [
    pytest.param("g", id="bare-selector"),
    pytest.param("g * 2", id="arith"),
    pytest.param("timestamp(g)", id="timestamp"),
    pytest.param("c_total / c_total", id="same-selector-twice"),
    pytest.param("count by (g) (c_total > 100)", id="count-by-filter"),
])
def test_vector_selector_chunks_match_one_frame(monkeypatch: pytest.MonkeyPatch,
                                                query: str) -> None:
    st = _store()
    whole = Engine().range(st, query, 10 * M, STEPS * M, M)
    monkeypatch.setattr(selectors, "CHUNK_SAMPLES", 50)
    monkeypatch.setattr(selectors, "DENSE_CHUNK_CELLS", 3 * STEPS)
    chunked = Engine().range(st, query, 10 * M, STEPS * M, M)
    _same(whole.value, chunked.value)


@pytest.mark.parametrize(("query", "kept"), [
    pytest.param("g", True, id="bare-selector-keeps"),
    pytest.param("(g)", True, id="parenthesised-keeps"),
    pytest.param("g * 2", False, id="arith-drops"),
])
def test_sample_timestamps_kept_only_when_read(query: str, kept: bool) -> None:
    res = Engine().instant(_store(n_series=3), query, 60 * M)
    assert isinstance(res.value, Vector)
    assert (res.value.timestamps_ms is not None) is kept


def test_timestamp_reads_sample_times_inside_an_expression() -> None:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "x"}), [10_000, 70_000], [1.0, 2.0])
    res = Engine().instant(st, "timestamp(x) + 0 * x", 100_000)
    assert res.value.values.tolist() == [[70.0]]


@pytest.mark.parametrize("query", [
    pytest.param("topk(3, g)", id="topk"),
    pytest.param("bottomk(2, g)", id="bottomk"),
    pytest.param("topk by (g) (4, g)", id="topk-by"),
    pytest.param("bottomk without (i) (1, c_total)", id="bottomk-without"),
    pytest.param("topk(100, g)", id="k-above-group-size"),
    pytest.param("topk(0, g)", id="k-zero"),
])
def test_range_topk_matches_instant_topk_at_every_step(query: str) -> None:
    st = _store()
    rng_res = Engine().range(st, query, 10 * M, 40 * M, M)
    assert isinstance(rng_res.value, Vector)
    for j, t in enumerate(range(10 * M, 41 * M, M)):
        inst = Engine().instant(st, query, t).value
        assert isinstance(inst, Vector)
        want = {ls: inst.values[r, 0] for r, ls in enumerate(inst.labels) if inst.present[r, 0]}
        got = {ls: rng_res.value.values[r, j] for r, ls in enumerate(rng_res.value.labels)
               if rng_res.value.present[r, j]}
        assert got.keys() == want.keys(), t
        np.testing.assert_array_equal([got[k] for k in want], list(want.values()))


def test_range_rate_peak_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Peak traced memory of a range rate stays within the samples plus a few output frames
    when blocks are small next to the frame (the whole-frame path held about twenty
    (series x steps) temporaries at once)."""
    monkeypatch.setattr(serieschunks, "BLOCK_CELLS", 20_000)
    n_series, n_steps = 200, 1_000
    st = MemoryStorage()
    ts = np.arange(0, (n_steps + 10) * 15_000, 15_000, dtype=np.int64)
    for i in range(n_series):
        st.add_series(Labels({"__name__": "c_total", "i": str(i)}), ts,
                      np.arange(ts.shape[0], dtype=np.float64) * (i + 1))
    samples_bytes = n_series * ts.shape[0] * 16
    frame_bytes = n_series * n_steps * 9  # float64 values + bool mask
    eng = Engine()
    eng.range(st, "rate(c_total[1m])", 600_000, 600_000 + (n_steps - 1) * 15_000, 15_000)
    tracemalloc.start()
    try:
        eng.range(st, "rate(c_total[1m])", 600_000, 600_000 + (n_steps - 1) * 15_000, 15_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < samples_bytes + 3 * frame_bytes, (peak, samples_bytes, frame_bytes)


SLICED_QUERIES = [
    *RANGE_QUERIES,
    pytest.param("g * 2 > 3", id="filter"),
    pytest.param("timestamp(g)", id="timestamp"),
    pytest.param("topk by (g) (2, g)", id="topk"),
    pytest.param("count_values(\"v\", g)", id="count_values"),
    pytest.param("sum without (i) (rate(c_total[5m]))", id="sum-without"),
    pytest.param("time()", id="scalar"),
    # a subquery is one range evaluation in Prometheus, whichever slice asks: a moving @ in a
    # parameter starts at its first step, an invariant aggregation takes k there
    pytest.param('count_over_time((quantile(scalar(c_total{i="1"} @ 1800) / 100, g) > -Inf)'
                 '[20m:1m])', id="subquery-param-drift"),
    pytest.param('count_over_time((topk(scalar(sum(c_total)) % 4, g @ 3000))[5m:1m])',
                 id="subquery-param-first-step"),
]


@pytest.mark.parametrize("query", SLICED_QUERIES)
def test_memory_slices_match_one_evaluation(monkeypatch: pytest.MonkeyPatch, query: str) -> None:
    st = _store()
    monkeypatch.setattr(limits, "SLICE_FIRST_STEPS", 4)
    whole = Engine().range(st, query, 10 * M, STEPS * M, M)
    monkeypatch.setattr(limits, "SLICE_SAMPLES", 500)  # slices of a few steps
    sliced = Engine().range(st, query, 10 * M, STEPS * M, M)
    if isinstance(whole.value, Vector):
        _same(whole.value, sliced.value)
        assert whole.value.labels == sliced.value.labels
    else:
        np.testing.assert_array_equal(whole.value.values, sliced.value.values)


def test_memory_slices_bound_the_samples_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """With slices of a tenth of the samples, the peak is far below the samples' size."""
    n_series, n_steps = 100, 2_000
    st = MemoryStorage()
    ts = np.arange(0, (n_steps + 10) * 15_000, 15_000, dtype=np.int64)
    for i in range(n_series):
        st.add_series(Labels({"__name__": "c_total", "i": str(i)}), ts,
                      np.arange(ts.shape[0], dtype=np.float64) * (i + 1))
    samples = n_series * ts.shape[0]
    monkeypatch.setattr(limits, "SLICE_SAMPLES", samples // 10)
    end = 600_000 + (n_steps - 1) * 15_000

    def peak_of(query: str) -> int:
        tracemalloc.start()
        try:
            Engine().range(st, query, 600_000, end, 15_000)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # Unsliced, the selection's samples (16 B each) and their per-sample temporaries are all
    # held at once (about 1.4 times their size); the result is one row.
    assert peak_of("sum(c_total)") < samples * 16 // 2
