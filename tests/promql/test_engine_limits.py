"""Cooperative limits inside long-running evaluation: timeout, cancel and max_samples.

A large :class:`MemoryStorage` (2,000 series x 20,000 samples) must be interruptible inside one
selector, and ``max_samples`` must refuse it before the whole selection is loaded. Chunked and
unchunked evaluation must give identical results.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc

import numpy as np
import pytest

import promlab.promql.eval.evaluator as evaluator_mod
import promlab.promql.eval.selectors as selectors_mod
from promlab.errors import QueryCanceled, QueryTimeout, TooManySamples
from promlab.model import STALE_NAN, Labels
from promlab.promql.engine import Engine
from promlab.storage import MemoryStorage
from promlab.storage.interface import SeriesSet

N_SERIES = 2_000
N_SAMPLES = 20_000
SCRAPE_MS = 15_000
END_MS = (N_SAMPLES - 1) * SCRAPE_MS
FULL_BYTES = N_SERIES * N_SAMPLES * 16  # ts + values of the whole selection


@pytest.fixture(scope="module")
def big() -> MemoryStorage:
    st = MemoryStorage()
    ts = np.arange(N_SAMPLES, dtype=np.int64) * SCRAPE_MS
    vs = np.arange(N_SAMPLES, dtype=np.float64)
    for i in range(N_SERIES):
        st.add_series(Labels({"__name__": "big", "i": str(i)}), ts, vs)
    st.add_series(Labels({"__name__": "small"}), [0, 15_000], [1.0, 2.0])
    return st


def _small_query_works(engine: Engine, st: MemoryStorage) -> None:
    res = engine.instant(st, "small", 20_000)
    assert res.value.values.tolist() == [[2.0]]


@pytest.mark.parametrize("query", [
    pytest.param("big", id="vector-selector"),
    pytest.param("rate(big[1h])", id="range-function"),
    pytest.param("count_over_time(big[10d])", id="huge-window"),
])
def test_timeout_inside_selector(big, query):
    engine = Engine(timeout="50ms")
    t0 = time.monotonic()
    with pytest.raises(QueryTimeout, match="query timed out"):
        engine.range(big, query, 0, END_MS, 60_000)
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, elapsed  # ~0.1-0.3 s on an idle machine
    _small_query_works(engine, big)


def test_cancel_from_other_thread(big):
    engine = Engine(timeout=None)
    cancel = threading.Event()
    timer = threading.Timer(0.05, cancel.set)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(QueryCanceled, match="query was canceled"):
            engine.range(big, "rate(big[1h])", 0, END_MS, 60_000, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 1.0
    _small_query_works(engine, big)


@pytest.mark.parametrize("query", [
    pytest.param("big", id="vector-selector"),
    pytest.param("sum(rate(big[5m]))", id="range-function"),
])
def test_max_samples_before_allocating(big, query):
    engine = Engine(max_samples=1_000_000, timeout=None)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with pytest.raises(TooManySamples, match="too many samples"):
            engine.range(big, query, 0, END_MS, 60_000)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < FULL_BYTES // 8, (peak - base, FULL_BYTES)
    assert current - base < 16 * 2**20  # everything the failed query held is released
    _small_query_works(engine, big)


def test_dense_frame_refused_in_chunks(monkeypatch):
    # Few raw samples, but each is held at many steps: the dense frame is what is too big.
    monkeypatch.setattr(selectors_mod, "DENSE_CHUNK_CELLS", 1_000)
    st = MemoryStorage()
    for i in range(200):
        st.add_series(Labels({"__name__": "x", "i": str(i)}), [0], [1.0])
    engine = Engine(max_samples=5_000, lookback_delta="1h")
    with pytest.raises(TooManySamples):
        engine.range(st, "x", 0, 3_600_000 - 1, 60_000)  # 200 x 60 = 12,000 points held
    assert engine.range(st, "x", 0, 600_000, 60_000).value.present.sum() == 200 * 11


@pytest.fixture(scope="module")
def mixed() -> MemoryStorage:
    rng = np.random.default_rng(7)
    st = MemoryStorage()
    for i in range(60):
        n = int(rng.integers(1, 400))
        ts = np.sort(rng.choice(np.arange(0, 6 * 3_600_000, 5_000), n, replace=False))
        vs = np.cumsum(rng.random(n))
        vs[rng.random(n) < 0.05] = STALE_NAN
        if i % 7 == 0:  # some series only in the second half
            keep = ts > 3 * 3_600_000
            ts, vs = ts[keep], vs[keep]
        if ts.size:
            st.add_series(Labels({"__name__": "m", "i": str(i), "g": str(i % 3)}), ts, vs)
    return st


@pytest.mark.parametrize("query", [
    pytest.param("m", id="selector"),
    pytest.param("rate(m[10m])", id="rate"),
    pytest.param("sum by (g) (count_over_time(m[30m]))", id="aggregation"),
    pytest.param("max_over_time(m[20m:1m])", id="subquery"),
    pytest.param("m offset 30m", id="offset"),
])
def test_chunked_equals_unchunked(mixed, monkeypatch, query):
    engine = Engine()
    want = engine.range(mixed, query, 0, 6 * 3_600_000, 30_000)
    monkeypatch.setattr(evaluator_mod, "SELECT_CHUNK_SAMPLES", 300)
    monkeypatch.setattr(selectors_mod, "DENSE_CHUNK_CELLS", 2_000)
    got = engine.range(mixed, query, 0, 6 * 3_600_000, 30_000)
    assert got.value.labels == want.value.labels
    np.testing.assert_array_equal(got.value.present, want.value.present)
    np.testing.assert_array_equal(got.value.values, want.value.values)


@pytest.mark.parametrize(("parts", "want"), [
    pytest.param([], [], id="none"),
    pytest.param([[("a", [1, 2])]], [("a", [1, 2])], id="one"),
    pytest.param([[("b", [1]), ("c", [2])], [("a", [5]), ("c", [6, 7])], [("b", [9])]],
                 [("a", [5]), ("b", [1, 9]), ("c", [2, 6, 7])], id="interleave"),
])
def test_concat_time_slices(parts, want):
    def mk(rows: list[tuple[str, list[int]]]) -> SeriesSet:
        if not rows:
            return SeriesSet.empty()
        lengths = [len(t) for _, t in rows]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        ts = np.array([x for _, t in rows for x in t], np.int64)
        return SeriesSet([Labels({"s": n}) for n, _ in rows], offsets, ts, ts.astype(float))

    got = selectors_mod.concat_time_slices([mk(p) for p in parts])
    assert [(ls.get("s", ""), got.series(i)[1].tolist()) for i, ls in enumerate(got.labels)] \
        == want
    np.testing.assert_array_equal(got.ts_ms.astype(float), got.values)


class _SlowQueryable:
    """A queryable whose every select takes ``delay`` seconds (to trip the timeout)."""

    def __init__(self, inner: MemoryStorage, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def querier(self, mint_ms: int, maxt_ms: int):
        q = self.inner.querier(mint_ms, maxt_ms)
        delay = self.delay

        class _Q:
            def select(self, matchers, hints=None):
                time.sleep(delay)
                return q.select(matchers, hints)

            def close(self) -> None:
                q.close()

        return _Q()


@pytest.mark.parametrize(("engine_kw", "cancelled", "exc", "msg"), [
    pytest.param({"timeout": "10ms"}, False, QueryTimeout,
                 "query timed out in expression evaluation", id="timeout"),
    pytest.param({}, True, QueryCanceled,
                 "query was canceled in expression evaluation", id="canceled"),
    pytest.param({"max_samples": 3}, False, TooManySamples,
                 "query processing would load too many samples into memory in query execution",
                 id="too-many-samples"),
])
def test_limit_messages(engine_kw, cancelled, exc, msg):
    st = MemoryStorage()
    for i in range(4):
        st.add_series(Labels({"__name__": "x", "i": str(i)}), [0, 60_000], [1.0, 2.0])
    cancel = threading.Event()
    if cancelled:
        cancel.set()
    engine = Engine(**engine_kw)
    with pytest.raises(exc) as info:
        engine.range(_SlowQueryable(st, 0.02), "sum(x) + sum(x offset 1m)", 0, 120_000, 60_000,
                     cancel=cancel)
    assert str(info.value) == msg


@pytest.mark.parametrize(("flags", "msg"), [
    pytest.param(["--max-samples", "1"], "query processing would load too many samples into "
                 "memory in query execution", id="too-many-samples"),
    pytest.param(["--timeout", "0s"], "query timed out in expression evaluation", id="timeout"),
])
def test_cli_prints_limit_errors(tmp_path, capsys, flags, msg):
    from promlab.cli import main
    from promlab.storage import open_store

    with open_store(tmp_path / "data") as st:
        app = st.appender()
        for i in range(3):
            app.append(Labels({"__name__": "x", "i": str(i)}), 1_000, 1.0)
        app.commit()
        st.flush()
    rc = main(["query", "--data", str(tmp_path / "data"), "--time", "2", *flags, "x"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert out == ""
    assert err == f"promlab query: {msg}\n"



@pytest.mark.parametrize(("kw", "attr", "ms"), [
    pytest.param({"timeout": 2}, "timeout_ms", 2000, id="number-is-seconds"),
    pytest.param({"timeout": 0.5}, "timeout_ms", 500, id="float-seconds"),
    pytest.param({"timeout": "150ms"}, "timeout_ms", 150, id="duration-string"),
    pytest.param({"lookback_delta": 300}, "lookback_ms", 300_000, id="lookback-seconds"),
    pytest.param({"default_subquery_step": "30s"}, "default_subquery_step_ms", 30_000, id="subquery-step"),
])
def test_engine_durations_follow_the_seconds_convention(kw, attr, ms):
    assert getattr(Engine(**kw), attr) == ms


@pytest.mark.parametrize("kw", [
    pytest.param({"timeout": "banana"}, id="bad-string"),
    pytest.param({"lookback_delta": "1.5m"}, id="fractional-duration-string"),
])
def test_engine_rejects_bad_options_as_bad_data(kw):
    from promlab.errors import BadData, error_type

    with pytest.raises(BadData) as info:
        Engine(**kw)
    assert error_type(info.value) == "bad_data"
