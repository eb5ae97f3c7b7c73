"""Shard-split reads: the client's series split and storage reading one shard before decoding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.promql.distributed.shard import ShardMap, shard_of, take_series
from promlab.storage import open_store
from promlab.storage.interface import SelectHints, SeriesSet, SeriesShard
from promlab.storage.store import ParquetStore

STEP_MS = 15_000
HOURS = 2
SERIES = 300  # 300 x 240 samples an hour: three 32 Ki-row groups per metric and hour
HEAD_END = HOURS * 3_600_000 + 600_000


def _labels(name: str, i: int) -> Labels:
    return Labels({"__name__": name, "instance": f"h{i:03d}", "job": "api" if i % 3 else "web"})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Two metrics of 300 series over two hours and ten minutes, in a block.

    Counters of equal rates starting at shuffled values: the block stores a bucket's series by
    first value, so its row order is not label order.
    """
    path = str(tmp_path_factory.mktemp("shards") / "data")
    start = np.random.default_rng(3).permutation(SERIES) * 1000.0
    with open_store(path) as st:
        for lo, hi in ((0, HOURS * 3_600_000), (HOURS * 3_600_000, HEAD_END)):
            ts = np.arange(lo, hi, STEP_MS, dtype=np.int64)
            app = st.appender()
            for name in ("cpu", "mem"):
                series = [_labels(name, i) for i in range(SERIES)]
                idx = np.repeat(np.arange(SERIES), ts.shape[0])
                app.append_batch(series, idx, np.tile(ts, SERIES),
                                 start[idx] + np.tile(ts, SERIES) / STEP_MS)
            app.commit()
            if lo == 0:
                st.flush()
    return path


@pytest.fixture
def store(data_dir: str) -> Iterator[ParquetStore]:
    """A fresh read-only reader: nothing decoded yet."""
    with open_store(data_dir, readonly=True) as st:
        yield st


def _select(st: ParquetStore, matchers: list[Matcher], shard: SeriesShard | None = None
            ) -> SeriesSet:
    q = st.querier(0, HEAD_END)
    try:
        return q.select(matchers, SelectHints(shard=shard))
    finally:
        q.close()


CPU = [Matcher(MatchType.EQUAL, "__name__", "cpu")]
BOTH = [Matcher(MatchType.REGEX, "__name__", "cpu|mem")]


@pytest.mark.parametrize(("matchers", "count"), [
    pytest.param(CPU, 2, id="one-metric-2-shards"),
    pytest.param(CPU, 3, id="one-metric-3-shards"),
    pytest.param(BOTH, 2, id="two-metrics-2-shards"),
])
def test_shards_partition_the_selection(store: ParquetStore, matchers: list[Matcher],
                                        count: int) -> None:
    whole = _select(store, matchers)
    split = ShardMap.split(whole.labels, count)
    seen: list[Labels] = []
    for k in range(count):
        part = _select(store, matchers, split.hint(k))
        assert part.labels and all(split.shard_of(ls) == k for ls in part.labels)
        for i, ls in enumerate(part.labels):
            _, t, v = part.series(i)
            _, wt, wv = whole.series(whole.labels.index(ls))
            np.testing.assert_array_equal(t, wt)
            np.testing.assert_array_equal(v, wv)
        seen += part.labels
    assert sorted(seen) == whole.labels


def test_one_shard_decodes_about_its_share(data_dir: str) -> None:
    with open_store(data_dir, readonly=True) as st:
        whole = _select(st, CPU)
        full = st.cache.nbytes
    split = ShardMap.split(whole.labels, 2)
    with open_store(data_dir, readonly=True) as st:
        part = _select(st, CPU, split.hint(0))
        half = st.cache.nbytes
    assert len(part.labels) == SERIES // 2
    assert 0 < half < 0.7 * full


def _row_groups(st: ParquetStore, series: list[Labels], maxt: int) -> int:
    """Row groups of the samples files holding ``series``' chunks up to ``maxt``."""
    ids = np.array([ls.hash for ls in series], np.int64)
    touched = 0
    for blk in st.blocks():
        rows = np.flatnonzero(np.isin(blk.sids, ids) & (blk.min_time <= maxt))
        rg_start = np.cumsum([0, *blk.row_group_rows()])
        first = np.searchsorted(rg_start, blk.row_start[rows], "right") - 1
        last = np.searchsorted(rg_start, blk.row_start[rows] + blk.row_count[rows] - 1, "right") - 1
        span = np.zeros(rg_start.shape[0], np.int64)
        np.add.at(span, first, 1)
        np.add.at(span, last + 1, -1)
        touched += int((np.cumsum(span) > 0).sum())
    return touched


def test_runs_of_storage_order_touch_their_share_of_row_groups(store: ParquetStore) -> None:
    maxt = HOURS * 3_600_000 - 1
    q = store.querier(0, maxt)
    try:
        layout = q.series_layout(CPU)
        labelled = q.series(CPU)
    finally:
        q.close()
    assert sorted(layout) == labelled and layout != labelled
    total = _row_groups(store, labelled, maxt)
    by_layout = [_row_groups(store, layout[:SERIES // 2], maxt),
                 _row_groups(store, layout[SERIES // 2:], maxt)]
    by_labels = _row_groups(store, labelled[:SERIES // 2], maxt)
    assert by_labels == total  # label runs are spread over every row group
    assert max(by_layout) <= total // 2 + HOURS  # at most one shared row group per bucket


def test_series_unknown_to_the_split_are_kept(store: ParquetStore) -> None:
    whole = _select(store, CPU)
    known = whole.labels[: SERIES // 2]  # the rest "appeared" after the client resolved
    split = ShardMap.split(known, 2)
    part = _select(store, CPU, split.hint(1))
    mine = {ls for ls in known if split.shard_of(ls) == 1}
    assert mine < set(part.labels)
    assert set(whole.labels[SERIES // 2:]) <= set(part.labels)


def _ls(name: str, **kw: str) -> Labels:
    return Labels({"__name__": name, **kw})


@pytest.mark.parametrize(("series", "count", "want"), [
    pytest.param([_ls("a", i=str(i)) for i in range(6)], 3, [0, 0, 1, 1, 2, 2], id="even-runs"),
    pytest.param([_ls("a", i=str(i)) for i in range(5)], 2, [0, 0, 1, 1, 1], id="odd-count"),
    pytest.param([_ls("a", i="1"), _ls("a", i="2"), _ls("b", i="1"), _ls("b", i="2")], 2,
                 [0, 1, 0, 1], id="same-labels-without-name-share-a-shard"),
    pytest.param([_ls("a", i="1")], 4, [2], id="fewer-series-than-shards-middle"),
])
def test_split(series: list[Labels], count: int, want: list[int]) -> None:
    m = ShardMap.split(sorted(series), count)
    assert [m.shard_of(ls) for ls in series] == want
    assert sorted(m.rows(series, 0) + m.rows(series, 1)) == [
        i for i, w in enumerate(want) if w in (0, 1)]


def test_unknown_series_follow_their_name_less_labels() -> None:
    m = ShardMap.split([_ls("a", i=str(i)) for i in range(4)], 2)
    assert m.shard_of(_ls("other", i="3")) == 1  # its name-less set is known: shard of a{i="3"}
    new = _ls("a", i="new")
    assert m.shard_of(new) == shard_of(new, 2)  # unknown set: the hash rule
    assert m.rows([_ls("z", i="0"), new, _ls("z", i="3")], 1) == (
        [1, 2] if shard_of(new, 2) == 1 else [2])


def test_shard_hint_keeps_unknown_ids() -> None:
    shard = SeriesShard(np.array([10, 20, 30], np.int64), np.array([0, 1, 0], np.int32), 0)
    got = shard.keep(np.array([10, 20, 30, 25, 99, -5], np.int64))
    assert got.tolist() == [True, False, True, True, True, True]


def test_empty_hint_keeps_everything() -> None:
    shard = SeriesShard(np.zeros(0, np.int64), np.zeros(0, np.int32), 1)
    assert shard.keep(np.array([1, 2], np.int64)).tolist() == [True, True]


def test_head_series_are_split_too(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "data")) as st:  # nothing flushed: every sample in the head
        series = [_labels("cpu", i) for i in range(20)]
        ts = np.arange(0, 600_000, STEP_MS, dtype=np.int64)
        idx = np.repeat(np.arange(20), ts.shape[0])
        app = st.appender()
        app.append_batch(series, idx, np.tile(ts, 20), idx.astype(np.float64))
        app.commit()
        whole = _select(st, CPU)
        split = ShardMap.split(whole.labels, 2)
        parts = [_select(st, CPU, split.hint(k)).labels for k in range(2)]
    assert len(whole.labels) == 20
    assert [len(p) for p in parts] == [10, 10]
    assert sorted(parts[0] + parts[1]) == whole.labels


@pytest.mark.parametrize("extra", [
    pytest.param("start_ts_ms", id="start-timestamps"),
    pytest.param("histograms", id="native-histograms"),
])
def test_take_series_keeps_per_sample_extras(extra: str) -> None:
    arr = (np.array([10, 11, 20, 30, 31], np.int64) if extra == "start_ts_ms"
           else np.array(["a0", "a1", None, "c0", "c1"], dtype=object))
    ss = SeriesSet([_ls("m", i=str(i)) for i in range(3)], np.array([0, 2, 3, 5], np.int64),
                   np.arange(5, dtype=np.int64), np.arange(5, dtype=np.float64), **{extra: arr})
    got = take_series(ss, [0, 2])
    assert getattr(got, extra).tolist() == [arr[0], arr[1], arr[3], arr[4]]
    assert got.ts_ms.tolist() == [0, 1, 3, 4]
