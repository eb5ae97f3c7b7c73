"""SeriesSet view form: runs read in place from cached blocks, same answers as the copy."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import FloatHistogram
from promlab.promql.distributed.shard import take_series
from promlab.promql.eval.selectors import count_at_or_before, run_counts
from promlab.storage import MemoryStorage, open_store
from promlab.storage.interface import SelectHints, SeriesSet

from .conftest import HOUR, T0, assert_same, grid, make_series

ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]
MATCHERS = [
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1")], id="one-metric"),
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1"),
                  Matcher(MatchType.REGEX, "instance", "h1.*")], id="metric-and-regex"),
    pytest.param([Matcher(MatchType.REGEX, "instance", "h1.*")], id="across-metrics"),
    pytest.param(ALL, id="everything"),
]
RANGES = [
    pytest.param((0, 2**62), id="all"),
    pytest.param((T0 + 5 * HOUR, T0 + 5 * HOUR + 300_000), id="5m-window"),
    pytest.param((T0 + HOUR + 7_000, T0 + 7 * HOUR - 30_000), id="cuts-both-ends"),
    pytest.param((T0 - HOUR, T0 - 1), id="before-data"),
]


@pytest.fixture(scope="module", params=["one-block", "blocks-and-head"])
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, MemoryStorage]]:
    """One 8h block (the view path) or several blocks plus a WAL head (the copying merge)."""
    path = str(tmp_path_factory.mktemp("view-store"))
    mem = MemoryStorage()
    series = make_series(12)
    one = request.param == "one-block"
    st = open_store(path, block_duration="8h" if one else "1h", max_block_duration="8h",
                    bucket_duration="1h", ooo_window=None, wal_fsync=False)
    idx, ts, vals = grid(series, T0, 8 * 240)
    for s in (st, mem):
        app = s.appender()
        app.append_batch(series, idx, ts, vals)
        app.commit()
    st.flush()
    if not one:
        more = T0 + 8 * HOUR + np.arange(40, dtype=np.int64) * 15_000
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, np.zeros(40, np.int64) + 3, more, np.arange(40.0))
            app.commit()
    yield path, mem
    st.close()


@pytest.mark.parametrize("lohi", RANGES)
@pytest.mark.parametrize("matchers", MATCHERS)
def test_view_reads_match_copied_reads(stores: tuple[str, MemoryStorage],
                                       matchers: list[Matcher], lohi: tuple[int, int]) -> None:
    path, mem = stores
    lo, hi = lohi
    want = mem.querier(lo, hi).select(matchers)
    with open_store(path, readonly=True) as ro:
        for _ in range(2):  # a miss, then a cache hit
            got = ro.querier(lo, hi).select(matchers, SelectHints(views=True))
            assert got.num_samples == want.num_samples
            assert got.lengths().tolist() == want.lengths().tolist()
            for i in range(len(got)):
                ts, vals = got.run(i)
                assert np.array_equal(ts, want.series(i)[1])
                assert np.array_equal(vals.view(np.int64), want.series(i)[2].view(np.int64))
            assert_same(got.compact(), want)
            assert_same(ro.querier(lo, hi).select(matchers), want)  # not asked: contiguous


def test_view_of_a_cut_cached_block_shares_its_arrays(
        stores: tuple[str, MemoryStorage]) -> None:
    path, _ = stores
    m = [Matcher(MatchType.EQUAL, "__name__", "metric_2")]
    lo, hi = T0 + HOUR + 7_000, T0 + 6 * HOUR
    with open_store(path, readonly=True) as ro:
        if len(ro.blocks()) != 1:
            pytest.skip("several sources are merged (copied) by design")
        ro.querier(0, 2**62).select(m)  # the whole metric decoded into the cache
        a = ro.querier(lo, hi).select(m, SelectHints(views=True))
        b = ro.querier(lo + 60_000, hi).select(m, SelectHints(views=True))
        copied = ro.querier(lo, hi).select(m)
        assert a.is_view and b.is_view and not copied.is_view
        assert a.ts_ms is b.ts_ms and a.values is b.values  # the cached arrays, no copy
        assert a.num_samples < a.ts_ms.shape[0]
        assert not np.shares_memory(copied.ts_ms, a.ts_ms)
        assert a.offsets.shape[0] == 0  # code indexing offsets fails instead of misreading


def _sample_set() -> SeriesSet:
    """Three series in view form inside 12 shared samples (gaps between and around runs)."""
    ts = np.arange(12, dtype=np.int64) * 10
    vals = np.arange(12, dtype=np.float64)
    hs = np.full(12, None, object)
    hs[5] = FloatHistogram(count=3.0, sum=1.0)
    st = np.arange(12, dtype=np.int64) + 100
    labels = [Labels({"s": str(i)}) for i in range(3)]
    return SeriesSet(labels, np.zeros(0, np.int64), ts, vals, hs, st,
                     starts=np.array([1, 4, 9], np.int64), ends=np.array([3, 7, 12], np.int64))


def test_compact_copies_runs_with_histograms_and_start_timestamps() -> None:
    ss = _sample_set()
    c = ss.compact()
    assert not c.is_view and c.compact() is c
    assert c.offsets.tolist() == [0, 2, 5, 8]
    assert c.ts_ms.tolist() == [10, 20, 40, 50, 60, 90, 100, 110]
    assert c.values.tolist() == [1.0, 2.0, 4.0, 5.0, 6.0, 9.0, 10.0, 11.0]
    assert c.start_ts_ms is not None and c.start_ts_ms.tolist() == [101, 102, 104, 105, 106,
                                                                    109, 110, 111]
    assert c.histograms is not None and [h is not None for h in c.histograms] == [
        False, False, False, True, False, False, False, False]
    assert ss.num_samples == 8 and ss.lengths().tolist() == [2, 3, 3]
    hs = ss.series_histograms(1)
    assert hs is not None and hs[1] is not None
    assert ss.series(2)[1].tolist() == [90, 100, 110]


def test_take_series_keeps_the_view_form() -> None:
    ss = _sample_set()
    t = take_series(ss, [0, 2])
    assert t.is_view and t.ts_ms is ss.ts_ms
    assert [ls["s"] for ls in t.labels] == ["0", "2"]
    assert t.compact().ts_ms.tolist() == [10, 20, 90, 100, 110]


RUNS = [
    pytest.param([1, 4, 9], [3, 7, 12], id="small-gaps"),
    pytest.param([0, 3, 6], [3, 6, 12], id="adjacent"),
    pytest.param([0, 10], [2, 12], id="wide-gap-gathered"),
    pytest.param([9, 1], [12, 3], id="out-of-order-gathered"),
    pytest.param([2, 2, 5], [2, 5, 5], id="empty-runs"),
]


@pytest.mark.parametrize(("starts", "ends"), RUNS)
def test_run_counts_matches_counts_over_the_compacted_runs(starts: list[int],
                                                           ends: list[int]) -> None:
    ts = np.arange(12, dtype=np.int64) * 10
    s, e = np.array(starts, np.int64), np.array(ends, np.int64)
    ref = np.array([-5, 15, 45, 60, 95, 200], np.int64)
    ss = SeriesSet.view([Labels({"s": str(i)}) for i in range(len(starts))], s, e, ts,
                        np.zeros(12))
    c = ss.compact()
    want = count_at_or_before(c.ts_ms, c.offsets, ref)
    assert run_counts(ts, s, e, ref).tolist() == want.tolist()
