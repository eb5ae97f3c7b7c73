"""Bulk backfill straight to blocks, and the out-of-order / duplicate counters of commits."""

from __future__ import annotations

import os

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import MemoryStorage, open_store

from .conftest import HOUR, T0, assert_same, grid, make_series

DAY = 24 * HOUR
ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]
UP = Labels({"__name__": "up"})


def test_backfill_matches_appending(tmp_path: os.PathLike[str], mem: MemoryStorage) -> None:
    series = make_series(12)
    idx, ts, vals = grid(series, T0 + 20 * HOUR, 8 * 240, 15_000)  # 8 h: crosses a day boundary
    with open_store(tmp_path) as st:
        bf = st.backfill()
        for part in np.array_split(np.arange(ts.shape[0]), 5):  # five "chunks" of an import
            res = bf.add(series, idx[part], ts[part], vals[part])
            assert res is not None and res.appended == part.shape[0]
            app = mem.appender()
            app.append_batch(series, idx[part], ts[part], vals[part])
            app.commit()
        assert st.head_samples == 0 and not st.blocks()  # nothing visible before finish
        made = bf.finish()
        assert len(made) == 2  # one block per max_block_duration window, nothing to compact
        blocks = st.blocks()
        assert [(b.meta.start, b.meta.end) for b in blocks] == [
            (T0, T0 + DAY), (T0 + DAY, T0 + 2 * DAY)]
        assert_same(st.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))
        assert st.head_samples == 0
    assert not [n for n in os.listdir(os.path.join(tmp_path, "wal")) if n.isdigit()
                and os.path.getsize(os.path.join(tmp_path, "wal", n)) > 8]


def test_backfill_refuses_the_heads_range_and_later_writes_win(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path, ooo_window=None) as st:
        app = st.appender()
        app.append(UP, T0 + 10 * HOUR, 1.0)
        app.commit()
        bf = st.backfill()
        assert bf.add([UP], np.array([0]), np.array([T0 + 10 * HOUR]), np.array([2.0])) is None
        assert bf.add([UP], np.array([0, 0]), np.array([T0, T0 + HOUR]), np.array([3.0, 4.0])) is not None
        bf.finish()
        ss = st.querier(0, 2**62).select(ALL)
        assert (ss.ts_ms - T0).tolist() == [0, HOUR, 10 * HOUR] and ss.values.tolist() == [3.0, 4.0, 1.0]
        # A second backfill over the same range: the newer block wins on equal timestamps.
        bf = st.backfill()
        bf.add([UP], np.array([0]), np.array([T0]), np.array([9.0]))
        bf.finish()
        assert st.querier(0, 2**62).select(ALL).values.tolist() == [9.0, 4.0, 1.0]
        assert len(st.blocks()) == 2  # the window still holds the head: not compacted yet
    with open_store(tmp_path, readonly=True) as ro:  # closing flushed the head and compacted
        assert ro.querier(0, 2**62).select(ALL).values.tolist() == [9.0, 4.0, 1.0]
        assert len(ro.blocks()) == 1


def test_backfill_buffer_limit_writes_early(tmp_path: os.PathLike[str], mem: MemoryStorage) -> None:
    series = make_series(4)
    idx, ts, vals = grid(series, T0, 400, 15_000)
    with open_store(tmp_path, auto_compact=False) as st:
        bf = st.backfill(max_samples=500)
        for part in np.array_split(np.arange(ts.shape[0]), 4):
            bf.add(series, idx[part], ts[part], vals[part])
        assert len(st.blocks()) >= 2  # written before finish, overlapping in one window
        bf.finish()
        app = mem.appender()
        app.append_batch(series, idx, ts, vals)
        app.commit()
        assert_same(st.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))


# The backfill counts samples older than its window as out of order (refused, as promtool's
# backfill drops them) and repeated timestamps as duplicates (within the import the last write
# wins); the head counts refusals only, as Prometheus (out of order, duplicate of another
# value, out of bounds, too old): an identical repeat and an out-of-order sample inside the
# window are taken silently.
@pytest.mark.parametrize(("batches", "backfill_counts", "append_counts"), [
    pytest.param([[10, 20, 30]], [0, 0, 0], [0, 0, 0, 0], id="in-order"),
    pytest.param([[10, 20], [20]], [0, 1, 0], [0, 0, 0, 0], id="same-ts-again"),
    pytest.param([[10, 20, 20]], [0, 1, 0], [0, 0, 0, 0], id="same-ts-within-batch"),
    pytest.param([[10, 30], [20]], [0, 0, 0], [0, 0, 0, 0], id="out-of-order-accepted"),
    pytest.param([[HOUR + 100], [50, 60]], [2, 0, 0], [0, 0, 0, 2], id="older-than-window"),
])
@pytest.mark.parametrize("path", ["append", "backfill"])
def test_append_stats_counts(tmp_path: os.PathLike[str], batches: list[list[int]],
                             backfill_counts: list[int], append_counts: list[int], path: str) -> None:
    with open_store(tmp_path, ooo_window="1h") as st:
        bf = st.backfill() if path == "backfill" else None
        got = [0, 0, 0, 0]
        for ts in batches:
            t = np.array([T0 + x for x in ts], np.int64)
            i, v = np.zeros(t.shape[0], np.int64), np.ones(t.shape[0])
            if bf is not None:
                res = bf.add([UP], i, t, v)
                assert res is not None
            else:
                app = st.appender()
                app.append_batch([UP], i, t, v)
                res = app.commit()
            got = [got[0] + res.out_of_order, got[1] + res.duplicates, got[2] + res.out_of_bounds,
                   got[3] + res.too_old]
        if bf is not None:
            bf.finish()
        assert got == ([*backfill_counts, 0] if bf is not None else append_counts)
