"""The Parquet store end to end: appends, queries, flush, compaction, reopen, bad input."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest

from promlab.errors import BadData, StorageError
from promlab.model import STALE_NAN, Labels, Matcher, MatchType, stale_mask
from promlab.storage import (
    Appender,
    MemoryStorage,
    ParquetStore,
    Querier,
    SelectHints,
    Storage,
    open_store,
)

from .conftest import HOUR, T0, assert_same, grid, make_series

ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]


def _load(st: Storage, mem: MemoryStorage, series: list[Labels], start: int, steps: int,
          commits: int = 4, seed: int = 0) -> None:
    idx, ts, vals = grid(series, start, steps, seed=seed)
    order = np.argsort(ts, kind="stable")  # time-ordered, as a scraper would send
    for part in np.array_split(order, commits):
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx[part], ts[part], vals[part])
            app.commit()


def test_protocols(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path) as st:
        assert isinstance(st, Storage) and isinstance(st.appender(), Appender)
        assert isinstance(st.querier(0, 1), Querier)


QUERIES = [
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1")], id="one-metric"),
    pytest.param([Matcher(MatchType.REGEX, "instance", "h1.*")], id="regex"),
    pytest.param([Matcher(MatchType.NOT_EQUAL, "__name__", "metric_0"),
                  Matcher(MatchType.NOT_REGEX, "instance", "h2|h3")], id="negative"),
    pytest.param([Matcher(MatchType.EQUAL, "job", "nope")], id="none"),
]
RANGES = [(0, 2**62), (T0 + HOUR, T0 + 2 * HOUR), (T0 + 3 * HOUR - 7_000, T0 + 3 * HOUR + 30_000)]


@pytest.mark.parametrize("matchers", QUERIES)
def test_matches_memory_storage_across_head_blocks_and_reopen(
        tmp_path: os.PathLike[str], mem: MemoryStorage, matchers: list[Matcher]) -> None:
    series = make_series(30)
    st = open_store(tmp_path, block_duration="1h", max_block_duration="4h", bucket_duration="1h",
                    wal_fsync=False)
    _load(st, mem, series, T0, 6 * 240, commits=12)  # 6 h: flushes and compacts on the way
    assert len(st.blocks()) >= 2 and st.head_samples > 0
    for lo, hi in RANGES:
        assert_same(st.querier(lo, hi).select(matchers), mem.querier(lo, hi).select(matchers))
    st.close()
    with open_store(tmp_path, readonly=True) as ro:
        assert ro.head_samples == 0
        for lo, hi in RANGES:
            got = ro.querier(lo, hi).select(matchers)
            assert_same(got, mem.querier(lo, hi).select(matchers))


def test_metadata_queries_and_hints(tmp_path: os.PathLike[str], mem: MemoryStorage) -> None:
    series = [*make_series(6), Labels({"__name__": "other", "zone": "z1"})]
    with open_store(tmp_path, block_duration="1h") as st:
        _load(st, mem, series, T0, 4 * 240)
        q, mq = st.querier(T0, T0 + 10 * HOUR), mem.querier(T0, T0 + 10 * HOUR)
        assert q.label_names() == mq.label_names() == ["__name__", "instance", "job", "zone"]
        m = [Matcher(MatchType.EQUAL, "__name__", "metric_1")]
        assert q.label_names(m) == ["__name__", "instance", "job"]
        assert q.label_values("instance", m) == mq.label_values("instance", m)
        assert q.label_values("zone") == ["z1"]
        assert q.series(m) == mq.series(m) == sorted(s for s in series if s.name == "metric_1")
        hints = SelectHints(start_ms=T0 + HOUR, end_ms=T0 + HOUR + 60_000)
        assert_same(q.select(m, hints), mq.select(m, hints))
        assert st.querier(0, T0 - 1).series(m) == []
        assert st.querier(0, T0 - 1).select(m).num_samples == 0


def test_special_values_and_huge_labels_roundtrip(tmp_path: os.PathLike[str]) -> None:
    big = Labels({"__name__": "big", **{f"l{i:03d}": "v" * 200 + str(i) for i in range(200)}})
    odd = Labels({"__name__": "odd", "series_id": "collides", "row_count": "too", "ü": "✓"})
    vals = np.array([1.0, np.nan, STALE_NAN, np.inf, -np.inf, -0.0, 1e300, 5e-324, 0.1])
    ts = T0 + np.arange(vals.shape[0], dtype=np.int64) * 1000
    with open_store(tmp_path) as st:
        app = st.appender()
        for ls in (big, odd):
            app.append_batch([ls], np.zeros(vals.shape[0], np.int64), ts, vals)
        assert app.commit().appended == 2 * vals.shape[0]
    with open_store(tmp_path, readonly=True) as ro:
        ss = ro.querier(0, 2**62).select(ALL)
    assert ss.labels == [big, odd]
    for i in range(2):
        _, got_ts, got = ss.series(i)
        assert np.array_equal(got_ts, ts)
        assert np.array_equal(got.view(np.int64), vals.view(np.int64))
        assert stale_mask(got).tolist() == [False, False, True] + [False] * 6


def test_single_appends_rollback_and_empty_labels(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path) as st:
        app = st.appender()
        app.append(Labels({"__name__": "up"}), T0, 1.0)
        app.rollback()
        assert app.commit().appended == 0
        app.append(Labels({"__name__": "up"}), T0, 1.0)
        app.append(Labels(), T0, 2.0)
        stats = app.commit()
        assert stats.appended == 1 and stats.new_series == 1 and stats.errors
        with pytest.raises(StorageError):
            app.append_batch([Labels({"__name__": "x"})], np.array([1]), np.array([T0]), np.array([1.0]))
        assert st.querier(0, 2**62).select(ALL).values.tolist() == [1.0]


def test_readonly_and_lock(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(StorageError, match="no such store"):
        open_store(os.path.join(tmp_path, "missing"), readonly=True)
    st = open_store(tmp_path)
    with pytest.raises(StorageError, match="locked"):
        open_store(tmp_path)
    app = st.appender()
    app.append(Labels({"__name__": "up"}), T0, 1.0)
    app.commit()
    ro = open_store(tmp_path, readonly=True)
    assert ro.querier(0, 2**62).select(ALL).values.tolist() == [1.0]  # from the WAL
    for call in (ro.appender, ro.flush, ro.compact, ro.apply_retention):
        with pytest.raises(StorageError, match="read-only"):
            call()
    app.append(Labels({"__name__": "up"}), T0 + 1000, 2.0)
    app.commit()
    assert ro.querier(0, 2**62).select(ALL).values.tolist() == [1.0, 2.0]  # followed
    st.close()
    assert ro.querier(0, 2**62).select(ALL).values.tolist() == [1.0, 2.0]  # now from a block
    ro.close()
    with pytest.raises(StorageError, match="closed"):
        ro.querier(0, 1)
    open_store(tmp_path).close()  # lock released


def test_corrupt_blocks_are_ignored_with_an_error(tmp_path: os.PathLike[str],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with open_store(tmp_path) as st:
        app = st.appender()
        app.append(Labels({"__name__": "up"}), T0, 1.0)
        app.commit()
    blocks = os.path.join(tmp_path, "blocks")
    os.makedirs(os.path.join(blocks, "0-1-halfwritten"))  # no meta.json
    os.makedirs(os.path.join(blocks, ".tmp-abc"))  # an interrupted write
    bad = os.path.join(blocks, "0-2-badmeta")
    os.makedirs(bad)
    with open(os.path.join(bad, "meta.json"), "w") as f:
        f.write("{not json")
    with caplog.at_level(logging.ERROR, "promlab.storage"), open_store(tmp_path) as st:
        assert st.querier(0, 2**62).select(ALL).values.tolist() == [1.0]
    msgs = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("halfwritten" in m for m in msgs) and any("badmeta" in m for m in msgs)
    assert not os.path.exists(os.path.join(blocks, ".tmp-abc"))  # the writer cleans up


def test_corrupt_wal_tail_is_truncated(tmp_path: os.PathLike[str]) -> None:
    st = open_store(tmp_path)
    app = st.appender()
    for i in range(3):
        app.append(Labels({"__name__": "up"}), T0 + i, float(i))
        app.commit()
    seg = os.path.join(tmp_path, "wal", f"{st._wal.segment:08d}")  # type: ignore[union-attr]
    st._wal.close()  # type: ignore[union-attr]  # simulate a crash: no flush
    st._release_lock()
    with open(seg, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage")
    with open_store(tmp_path) as st2:
        assert st2.querier(0, 2**62).select(ALL).values.tolist() == [0.0, 1.0, 2.0]


def test_flush_compaction_layout(tmp_path: os.PathLike[str], mem: MemoryStorage) -> None:
    series = make_series(5)
    st = open_store(tmp_path, block_duration="1h", max_block_duration="4h", bucket_duration="90m")
    _load(st, mem, series, T0, 9 * 240, commits=9)
    st.flush()
    metas = sorted((b.meta for b in st.blocks()), key=lambda m: m.start)
    # Complete 4 h windows were compacted to one block each; the head is empty after flush().
    assert [(m.start - T0) // HOUR for m in metas] == [0, 4, 8]
    assert [m.level for m in metas][:2] == [2, 2] and st.head_samples == 0
    assert_same(st.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))
    assert isinstance(st, ParquetStore)
    st.close()
    for name in os.listdir(os.path.join(tmp_path, "blocks")):
        assert sorted(os.listdir(os.path.join(tmp_path, "blocks", name))) == [
            "meta.json", "recent.arrow", "samples.parquet", "series.arrow", "series.parquet",
            "tail.arrow"]


@pytest.mark.parametrize(("kw", "attr", "value"), [
    pytest.param({"ooo_window": 60}, "ooo_window_ms", 60_000, id="number-is-seconds"),
    pytest.param({"ooo_window": "90s"}, "ooo_window_ms", 90_000, id="duration-string"),
    pytest.param({"retention_time": 86_400.0}, "retention_time_ms", 86_400_000, id="float-seconds"),
    pytest.param({"block_duration": "1h"}, "block_duration_ms", 3_600_000, id="block"),
    pytest.param({"retention_size": "1GiB"}, "retention_bytes", 1 << 30, id="size-string"),
    pytest.param({"retention_size": 4096}, "retention_bytes", 4096, id="int-is-bytes"),
])
def test_open_store_options_follow_the_convention(tmp_path: os.PathLike[str], kw: dict[str, object],
                                                  attr: str, value: int) -> None:
    with open_store(tmp_path, **kw) as st:  # type: ignore[arg-type]
        assert getattr(st, attr) == value


@pytest.mark.parametrize("kw", [
    pytest.param({"ooo_window": "1.5h"}, id="fractional-duration"),
    pytest.param({"retention_size": "10kB"}, id="si-size"),
])
def test_open_store_rejects_bad_options(tmp_path: os.PathLike[str], kw: dict[str, object]) -> None:
    with pytest.raises(BadData):
        open_store(tmp_path, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("start", "end"), [
    pytest.param(T0 + 3 * HOUR, T0 + 3 * HOUR + 60_000, id="after-the-querier-range"),
    pytest.param(T0, T0 + 60_000, id="before-the-querier-range"),
])
def test_hints_outside_the_querier_range_select_nothing(
        tmp_path: os.PathLike[str], mem: MemoryStorage, start: int, end: int) -> None:
    # The engine may read just past a planned range (a subquery without a step in its window
    # evaluates its step-invariant parts at the next grid time): no series, not negative runs.
    series = make_series(3)
    with open_store(tmp_path, block_duration="1h") as st:
        _load(st, mem, series, T0, 4 * 240)  # 4 h of samples around the querier's 1 h
        hints = SelectHints(start_ms=start, end_ms=end, views=True)
        for s in (st, mem):
            got = s.querier(T0 + HOUR, T0 + 2 * HOUR).select(ALL, hints)
            assert (len(got.labels), got.num_samples) == (0, 0)
