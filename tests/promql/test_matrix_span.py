"""matrixspan: a view-form selection's span as CSR arrays, checked and equivalent to a copy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from promlab.model import STALE_NAN, Labels
from promlab.promql.eval.matrixspan import MIN_RUN_SAMPLES, MIN_SPAN_SAMPLES, spanned_arrays
from promlab.promql.values import Matrix
from promlab.storage.interface import SeriesSet

STEP = 15_000
N_SERIES = 40
PER_SERIES = MIN_SPAN_SAMPLES // 32  # the runs together just pass MIN_SPAN_SAMPLES
LO_MS = 20 * STEP + 1
HI_MS = (PER_SERIES - 20) * STEP


def _block(rng: np.random.Generator, jitter: bool = True) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """A decoded block: N_SERIES series of PER_SERIES samples, one after the other."""
    ts = np.tile(np.arange(PER_SERIES, dtype=np.int64) * STEP, N_SERIES)
    if jitter:
        ts += rng.integers(0, 100, ts.shape[0])
    offsets = np.arange(N_SERIES + 1, dtype=np.int64) * PER_SERIES
    return offsets, ts, rng.random(ts.shape[0]) * 100


def _cut(offsets: np.ndarray, ts: np.ndarray, lo_ms: int, hi_ms: int,
         ) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array([a + np.searchsorted(ts[a:b], lo_ms) for a, b in
                       itertools.pairwise(offsets)], np.int64)
    ends = np.array([a + np.searchsorted(ts[a:b], hi_ms, side="right") for a, b in
                     itertools.pairwise(offsets)], np.int64)
    return starts, ends


def _view(ts: np.ndarray, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> SeriesSet:
    labels = [Labels({"__name__": "c_total", "i": f"{i:02d}"}) for i in range(starts.shape[0])]
    return SeriesSet.view(labels, starts, ends, ts, values)


def _spanned(seed: int) -> tuple[SeriesSet, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """A view selection of a random block cut to [LO_MS, HI_MS], the block's timestamps, and
    its in-place arrays (which must be given)."""
    offsets, ts, values = _block(np.random.default_rng(seed))
    starts, ends = _cut(offsets, ts, LO_MS, HI_MS)
    ss = _view(ts, values, starts, ends)
    got = spanned_arrays(ss, LO_MS, HI_MS)
    assert got is not None
    return ss, ts, got


def test_span_equals_copied_runs_inside_the_range() -> None:
    ss, ts, (offs, span_ts, span_vals) = _spanned(1)
    assert np.shares_memory(span_ts, ts)  # in place, not copied
    compact = ss.compact()
    for i in range(N_SERIES):
        row_ts = span_ts[offs[i]:offs[i + 1]]
        assert (np.diff(row_ts) > 0).all()
        inside = (row_ts >= LO_MS) & (row_ts <= HI_MS)
        want_ts, want_vals = compact.run(i)
        np.testing.assert_array_equal(row_ts[inside], want_ts)
        np.testing.assert_array_equal(span_vals[offs[i]:offs[i + 1]][inside], want_vals)


def test_span_gives_the_same_windows_as_a_copy() -> None:
    ss, _, got = _spanned(2)
    steps = np.arange(LO_MS + 600_000, HI_MS, 60_000, dtype=np.int64)
    c = ss.compact()
    a = Matrix(list(ss.labels), *got, steps - 300_000, steps, 300_000)
    b = Matrix(list(c.labels), c.offsets, c.ts_ms, c.values, steps - 300_000, steps, 300_000)
    (alo, ahi), (blo, bhi) = a.window_bounds(), b.window_bounds()
    np.testing.assert_array_equal(a.ts_ms[alo], b.ts_ms[blo])
    np.testing.assert_array_equal(a.values[ahi - 1], b.values[bhi - 1])
    np.testing.assert_array_equal(ahi - alo, bhi - blo)


def _other_series_in_gap(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    keep = np.ones(N_SERIES, bool)
    keep[5] = False  # a series the matchers did not select sits between two runs
    return ts, values, starts[keep], ends[keep]


def _post_after_pre(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    ts = ts.copy()
    gap = slice(int(ends[3]), int(starts[4]))
    ts[gap] = ts[gap][::-1].copy()  # the gap's parts in the wrong order
    return ts, values, starts, ends


def _in_range_after(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    ts = ts.copy()
    ts[int(ends[6])] = HI_MS  # a gap's first sample still rises from the run but is in range
    return ts, values, starts, ends


def _in_range_before(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    ts = ts.copy()
    ts[int(starts[6]) - 1] = LO_MS  # a gap's last sample, below the next run, in range
    return ts, values, starts, ends


def _stale(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    values = values.copy()
    values[int(starts[2]) + 7] = STALE_NAN
    return ts, values, starts, ends


def _small(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    return ts, values, starts[:2], ends[:2]


def _empty_run(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    ends = ends.copy()
    ends[4] = starts[4]
    return ts, values, starts, ends


def _wide_gaps(ts, values, starts, ends):  # type: ignore[no-untyped-def]
    return ts, values, starts + 3 * PER_SERIES // 4, ends  # most of every run cut off


REFUSED = {"other-series-in-gap": _other_series_in_gap, "post-after-pre": _post_after_pre,
           "in-range-after": _in_range_after, "in-range-before": _in_range_before,
           "stale-marker": _stale, "small": _small, "empty-run": _empty_run,
           "wide-gaps": _wide_gaps}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_span_refused(case: str) -> None:
    offsets, ts, values = _block(np.random.default_rng(3))
    starts, ends = _cut(offsets, ts, LO_MS, HI_MS)
    ts, values, starts, ends = REFUSED[case](ts, values, starts, ends)
    lo = LO_MS if case != "wide-gaps" else int(ts[starts[0]])
    assert spanned_arrays(_view(ts, values, starts, ends), lo, HI_MS) is None


@pytest.mark.parametrize("run", [MIN_RUN_SAMPLES - 1, MIN_RUN_SAMPLES],
                         ids=["short-runs-copied", "long-runs-kept"])
def test_span_only_for_long_runs(run: int) -> None:
    """Many series whose runs are short: copying them is one cheap gather, so no span."""
    n_series = MIN_SPAN_SAMPLES // run + 1
    per = run + run // 4  # gaps of a quarter of a run: within MAX_EXTRA_FRACTION
    ts = np.tile(np.arange(per, dtype=np.int64) * STEP, n_series)
    offsets = np.arange(n_series + 1, dtype=np.int64) * per
    lo_ms, hi_ms = (run // 8) * STEP, (run // 8 + run - 1) * STEP
    starts, ends = _cut(offsets, ts, lo_ms, hi_ms)
    assert ((ends - starts) == run).all()
    got = spanned_arrays(_view(ts, np.ones(ts.shape[0]), starts, ends), lo_ms, hi_ms)
    assert (got is not None) == (run >= MIN_RUN_SAMPLES)


def test_span_refuses_compact_sets() -> None:
    offsets, ts, values = _block(np.random.default_rng(4))
    labels = [Labels({"i": str(i)}) for i in range(N_SERIES)]
    assert spanned_arrays(SeriesSet(labels, offsets, ts, values), 0, 1 << 62) is None


# --- through the engine: a store whose selections come back in view form --------------------

HOURS = 24
STORE_SERIES = 40


def _store_data() -> tuple[list[Labels], np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    n = HOURS * 240
    labels = [Labels({"__name__": "c_total", "i": f"{i:02d}"}) for i in range(STORE_SERIES)]
    index = np.repeat(np.arange(STORE_SERIES), n)
    ts = np.tile(np.arange(n, dtype=np.int64) * STEP, STORE_SERIES) + rng.integers(0, 50, n * 40)
    vals = np.cumsum(rng.random(n * STORE_SERIES) * 10).astype(np.float64)
    vals[n * 7 + 500:] -= vals[n * 7 + 500]  # a counter reset in series 7
    return labels, index, ts, vals


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from promlab.storage import MemoryStorage, open_store

    labels, index, ts, vals = _store_data()
    path = tmp_path_factory.mktemp("span") / "data"
    with open_store(path, ooo_window=None, block_duration="24h") as st:
        app = st.appender()
        app.append_batch(labels, index, ts, vals)
        app.commit()
        st.flush()
    mem = MemoryStorage()
    for i, ls in enumerate(labels):
        mem.add_series(ls, ts[index == i], vals[index == i])
    with open_store(path, readonly=True) as st:
        yield st, mem


SPAN_QUERIES = [
    "rate(c_total[5m])", "increase(c_total[7m])", "delta(c_total[5m])", "irate(c_total[5m])",
    "deriv(c_total[10m])", "changes(c_total[5m])", "resets(c_total[30m])",
    "avg_over_time(c_total[10m])", "max_over_time(c_total[1h])", "count_over_time(c_total[5m])",
    "last_over_time(c_total[5m])", "stddev_over_time(c_total[10m])",
    "quantile_over_time(0.9, c_total[10m])", "sum by (i) (rate(c_total[5m]))",
]


@pytest.mark.parametrize("expr", SPAN_QUERIES, ids=SPAN_QUERIES)
def test_store_in_place_matches_memory(stores, expr: str) -> None:  # type: ignore[no-untyped-def]
    from promlab.model import Matcher, MatchType
    from promlab.promql.engine import Engine
    from promlab.storage.interface import SelectHints

    store, mem = stores
    end = HOURS * 3_600_000 - 30_000
    start = 3_600_000 + 30_000
    # The selection of this range is in view form and its span holds: the path is taken.
    lo_ms = start - 3_600_000 + 1
    ss = store.querier(lo_ms, end).select([Matcher(MatchType.EQUAL, "__name__", "c_total")],
                                          SelectHints(start_ms=lo_ms, end_ms=end, views=True))
    assert spanned_arrays(ss, lo_ms, end) is not None
    engine = Engine()
    got = engine.range(store, expr, start, end, 60_000).value
    want = engine.range(mem, expr, start, end, 60_000).value
    assert got.labels == want.labels
    np.testing.assert_array_equal(got.present, want.present)
    np.testing.assert_array_equal(got.values, want.values)


# The sample limit counts a span-kept selection's runs, not the gap samples its arrays keep
# (the evaluator's own memory guard: its floor is lifted so that the limit reaches it).
LIMIT_QUERIES = ["count_over_time(c_total[23h30m])", "max_over_time(c_total[23h30m])"]


@pytest.mark.parametrize("expr", LIMIT_QUERIES, ids=LIMIT_QUERIES)
def test_sample_limit_counts_the_runs_exactly(stores, expr: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from promlab.errors import TooManySamples
    from promlab.model import Matcher, MatchType
    from promlab.promql import engine as engine_mod
    from promlab.promql.engine import Engine
    from promlab.storage.interface import SelectHints

    monkeypatch.setattr(engine_mod, "MIN_MEMORY_BUDGET", 0)

    store, _ = stores
    at = HOURS * 3_600_000 - 30_000
    lo_ms = at - (23 * 3_600_000 + 1_800_000) + 1
    ss = store.querier(lo_ms, at).select([Matcher(MatchType.EQUAL, "__name__", "c_total")],
                                         SelectHints(start_ms=lo_ms, end_ms=at, views=True))
    span = spanned_arrays(ss, lo_ms, at)
    assert span is not None
    exact = ss.num_samples
    assert span[1].shape[0] > exact  # the span keeps gap samples: the case under test
    got = Engine(max_samples=exact).instant(store, expr, at)
    assert len(got.value.labels) == STORE_SERIES
    with pytest.raises(TooManySamples):
        Engine(max_samples=exact - 1).instant(store, expr, at)
