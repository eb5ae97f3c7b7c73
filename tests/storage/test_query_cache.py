"""Read paths over the decoded-block cache: same answers cached or not, bounded, invalidated."""

from __future__ import annotations

import os

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage.cache import DecodedCache, window

from .conftest import HOUR, T0, assert_same, grid, make_series

ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]
ODD = [Labels({"job": "noname", "instance": "x"}),  # no metric name
       Labels({"__name__": "metric_0", "A": "upper", "instance": "h0"})]  # sorts before __name__

MATCHERS = [
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1")], id="one-metric"),
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1"),
                  Matcher(MatchType.REGEX, "instance", "h1.*")], id="metric-and-regex"),
    pytest.param([Matcher(MatchType.REGEX, "instance", "h1.*|x")], id="across-metrics"),
    pytest.param([Matcher(MatchType.EQUAL, "job", "noname")], id="no-name"),
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "missing")], id="unknown-metric"),
    pytest.param(ALL, id="everything"),
]
RANGES = [
    pytest.param((0, 2**62), id="all"),
    pytest.param((T0 + 5 * HOUR, T0 + 5 * HOUR + 300_000), id="5m-window"),
    pytest.param((T0 + 2 * HOUR - 7_000, T0 + 9 * HOUR + 30_000), id="across-blocks-and-head"),
    pytest.param((T0 - HOUR, T0 - 1), id="before-data"),
]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[str, MemoryStorage]:
    """A store with compacted blocks, overlapping out-of-order blocks and a WAL head."""
    path = str(tmp_path_factory.mktemp("cache-store"))
    mem = MemoryStorage()
    series = [*make_series(24), *ODD]
    st = open_store(path, block_duration="1h", max_block_duration="4h", bucket_duration="1h",
                    ooo_window=None, wal_fsync=False)
    idx, ts, vals = grid(series, T0, 10 * 240)
    order = np.argsort(ts, kind="stable")
    for part in np.array_split(order, 10):
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx[part], ts[part], vals[part])
            app.commit()
    # Late corrections of an old hour: they land in a block overlapping the compacted ones.
    late = (ts >= T0 + 2 * HOUR) & (ts < T0 + 3 * HOUR) & (idx % 5 == 0)
    for s in (st, mem):
        app = s.appender()
        app.append_batch(series, idx[late], ts[late], vals[late] + 0.5)
        app.commit()
    st.flush()
    app = st.appender()  # and a head again (WAL only: readers replay it)
    more = T0 + 10 * HOUR + np.arange(40, dtype=np.int64) * 15_000
    for s in (st, mem):
        app = s.appender()
        app.append_batch(series, np.zeros(40, np.int64) + 3, more, np.arange(40.0))
        app.commit()
    assert len(st.blocks()) >= 3
    yield path, mem
    st.close()


@pytest.mark.parametrize("lohi", RANGES)
@pytest.mark.parametrize("matchers", MATCHERS)
def test_cached_and_uncached_reads_match_memory(stores: tuple[str, MemoryStorage],
                                                matchers: list[Matcher],
                                                lohi: tuple[int, int]) -> None:
    path, mem = stores
    lo, hi = lohi
    want = mem.querier(lo, hi).select(matchers)
    with open_store(path, readonly=True, cache_size=0) as plain, \
            open_store(path, readonly=True) as cached:
        assert_same(plain.querier(lo, hi).select(matchers), want)
        for _ in range(3):  # miss (partial or whole), then whole, then hit
            assert_same(cached.querier(lo, hi).select(matchers), want)
        if want.num_samples and matchers is not ALL:
            assert len(cached.cache) > 0 and cached.cache.hits > 0


def test_short_window_decodes_only_its_chunks_even_when_asked_again(
        stores: tuple[str, MemoryStorage]) -> None:
    path, _ = stores
    m = [Matcher(MatchType.EQUAL, "__name__", "metric_2")]
    lo, hi = T0 + 6 * HOUR, T0 + 6 * HOUR + 300_000
    with open_store(path, readonly=True) as ro:
        (blk,) = [b for b in ro.blocks() if b.meta.mint <= lo <= b.meta.maxt]
        wanted = blk.metric_chunks("metric_2", (), lo, hi)
        assert 0 < wanted.shape[0] < blk.metric_chunks("metric_2").shape[0]
        q = ro.querier(lo, hi)
        first = q.select(m)
        assert len(ro.cache) == 1  # the selected chunks (series x 1h buckets), not the metric
        decoded = ro.cache.nbytes
        assert decoded < blk.metric_columns("metric_2").nbytes
        hits = ro.cache.hits
        again = q.select(m)
        assert ro.cache.hits == hits + 1 and len(ro.cache) == 1 and ro.cache.nbytes == decoded
        np.testing.assert_array_equal(again.ts_ms, first.ts_ms)
        whole = ro.querier(0, 2**62).select(m)
        assert not whole.ts_ms.flags.writeable and not whole.values.flags.writeable


def test_cache_is_bounded_and_dropped_with_deleted_blocks(tmp_path: os.PathLike[str]) -> None:
    mem = MemoryStorage()
    series = make_series(12)
    st = open_store(tmp_path, block_duration="1h", max_block_duration="4h", auto_compact=False,
                    wal_fsync=False, cache_size="40KB")
    idx, ts, vals = grid(series, T0, 4 * 240)
    for s in (st, mem):
        app = s.appender()
        app.append_batch(series, idx, ts, vals)
        app.commit()
    st.flush()
    before = {b.meta.ulid for b in st.blocks()}
    assert len(before) >= 3
    for name in ("metric_0", "metric_1", "metric_2"):
        m = [Matcher(MatchType.EQUAL, "__name__", name)]
        for _ in range(2):
            assert_same(st.querier(0, 2**62).select(m), mem.querier(0, 2**62).select(m))
    assert 0 < st.cache.nbytes <= st.cache.max_bytes
    assert st.compact()
    after = {b.meta.ulid for b in st.blocks()}
    assert not before & after
    assert all(k[0] in after for k in st.cache._entries)
    for _ in range(2):
        assert_same(st.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))
    st.close()


@pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed{s}") for s in range(4)])
def test_window_matches_searchsorted(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, 40, 50)
    ts = np.concatenate([np.sort(rng.choice(1000, n, replace=False)) for n in lens]).astype(np.int64)
    ends = np.cumsum(lens)
    starts = ends - lens
    for mint, maxt in [(-5, 2000), (100, 200), (500, 499), (37, 37)]:
        lo, hi = window(ts, starts, ends, mint, maxt)
        for i in range(lens.shape[0]):
            run = ts[starts[i]:ends[i]]
            assert lo[i] == starts[i] + np.searchsorted(run, mint, "left")
            assert hi[i] == max(lo[i], starts[i] + np.searchsorted(run, maxt, "right"))


def test_lru_evicts_least_recently_used() -> None:
    from promlab.storage.cache import MetricColumns
    from promlab.storage.postings import LabelIndex

    def entry(n: int) -> MetricColumns:
        return MetricColumns(np.zeros(1, np.int64), [Labels({"a": "b"})], LabelIndex(1, {}),
                             np.array([0, n]), np.zeros(n, np.int64), np.zeros(n), 0, 0)

    c = DecodedCache(3 * entry(100).nbytes)
    for k in "abc":
        c.put(("blk", k), entry(100))
    assert c.get(("blk", "a")) is not None
    c.put(("blk", "d"), entry(100))
    assert c.get(("blk", "b")) is None and c.get(("blk", "a")) is not None
    c.put(("big", "x"), entry(10_000))  # larger than the whole budget: not kept
    assert c.get(("big", "x")) is None and len(c) == 3
    c.evict_block("blk")
    assert len(c) == 0 and c.nbytes == 0
