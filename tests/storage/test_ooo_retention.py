"""Out-of-order and duplicate samples; retention by time and size."""

from __future__ import annotations

import os

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store

from .conftest import HOUR, T0

UP = Labels({"__name__": "up"})
ALL = [Matcher(MatchType.EQUAL, "__name__", "up")]


def _commit(st, ts: list[int], vals: list[float]):  # type: ignore[no-untyped-def]
    app = st.appender()
    app.append_batch([UP], np.zeros(len(ts), np.int64), np.array(ts, np.int64), np.array(vals))
    return app.commit()


def _read(st) -> tuple[list[int], list[float]]:  # type: ignore[no-untyped-def]
    ss = st.querier(0, 2**62).select(ALL)
    return (ss.ts_ms - T0).tolist(), ss.values.tolist()


@pytest.mark.parametrize(("batches", "want_ts", "want_vals", "rejected"), [
    pytest.param([([10, 20], [1, 2]), ([15], [9])], [10, 15, 20], [1, 9, 2], 0, id="ooo-inside-window"),
    pytest.param([([10, 20], [1, 2]), ([20], [7])], [10, 20], [1, 2], 1, id="duplicate-first-wins"),
    pytest.param([([10, 20], [1, 2]), ([20], [2])], [10, 20], [1, 2], 0, id="same-value-again"),
    pytest.param([([20, 20], [1, 2])], [20], [1], 1, id="duplicate-within-batch"),
    pytest.param([([10, 20], [1, 2]), ([10], [5])], [10, 20], [1, 2], 0, id="ooo-at-held-time-dropped"),
    pytest.param([([HOUR + 100], [1]), ([99], [2]), ([100], [3])], [100, HOUR + 100], [3, 1], 1,
                 id="older-than-window-rejected"),
    pytest.param([([HOUR + 100, 50], [1, 2])], [HOUR + 100], [1], 1, id="window-from-batch-max"),
])
def test_out_of_order_and_duplicates(tmp_path: os.PathLike[str], batches, want_ts, want_vals,  # type: ignore[no-untyped-def]
                                     rejected: int) -> None:
    with open_store(tmp_path, ooo_window="1h") as st:
        n_rejected = 0
        for ts, vals in batches:
            stats = _commit(st, [T0 + t for t in ts], [float(v) for v in vals])
            n_rejected += stats.out_of_bounds + stats.too_old + stats.out_of_order + stats.duplicates
        assert n_rejected == rejected
        assert _read(st) == (want_ts, [float(v) for v in want_vals])
    with open_store(tmp_path, readonly=True) as ro:  # the same after a flush to a block
        assert _read(ro) == (want_ts, [float(v) for v in want_vals])


def test_unlimited_ooo_window_backfills(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path, ooo_window=None) as st:
        _commit(st, [T0 + 10 * HOUR], [1.0])
        assert _commit(st, [T0], [2.0]).out_of_bounds == 0
        assert _read(st) == ([0, 10 * HOUR], [2.0, 1.0])
    with open_store(tmp_path, ooo_window=0) as st:
        # Reopened: the close flushed everything, and the series' latest sample is read back
        # from the blocks, so these are a duplicate and an out-of-order sample, as Prometheus,
        # which keeps them in its head, refuses them.
        stats = _commit(st, [T0 + 10 * HOUR, T0 + 10 * HOUR - 1], [3.0, 4.0])
        assert (stats.duplicates, stats.out_of_order, stats.appended) == (1, 1, 0)
        assert _commit(st, [T0], [2.0]).out_of_bounds == 1  # 10 h back: before the head
        assert _commit(st, [T0 + 10 * HOUR + 1], [5.0]).appended == 1


def test_overwrites_across_head_and_blocks(tmp_path: os.PathLike[str]) -> None:
    # Backfill mode (ooo_window=None): a sample at a time already held replaces it. (With a
    # window, the flushed samples are read back and the rewrite is dropped, as in the head.)
    with open_store(tmp_path, ooo_window=None, block_duration="1h", auto_compact=False) as st:
        _commit(st, [T0 + i * 60_000 for i in range(60)], [1.0] * 60)
        st.flush()
        _commit(st, [T0 + 30 * 60_000], [2.0])  # rewrites a sample now in a block
        assert _read(st)[1][30] == 2.0
        st.flush()  # second, overlapping block: the later one wins
        assert len(st.blocks()) == 2
        assert _read(st)[1][29:32] == [1.0, 2.0, 1.0]
        _commit(st, [T0 + 30 * 60_000], [3.0])
        assert _read(st)[1][30] == 3.0
        st.flush()
        st.compact()
    with open_store(tmp_path, readonly=True) as ro:
        ts, vals = _read(ro)
        assert len(ts) == 60 and vals[30] == 3.0 and vals.count(1.0) == 59
        assert len(ro.blocks()) == 1


def _fill_hours(st, hours: int) -> None:  # type: ignore[no-untyped-def]
    for h in range(hours):
        _commit(st, [T0 + h * HOUR + i * 60_000 for i in range(60)], [float(h)] * 60)


def test_retention_time(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path, block_duration="1h", max_block_duration="1h",
                    retention_time="3h") as st:
        _fill_hours(st, 8)
        st.flush()
        ts, _ = _read(st)
        # Blocks ending more than 3 h before the newest sample are gone, whole.
        assert min(ts) == 4 * HOUR and max(ts) == 8 * HOUR - 60_000
        assert st.apply_retention() == []


def test_retention_size(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path, block_duration="1h", max_block_duration="1h") as st:
        _fill_hours(st, 6)
        st.flush()
        sizes = [b.size_bytes() for b in st.blocks()]
    limit = sum(sizes[-2:]) + 1024
    with open_store(tmp_path, block_duration="1h", max_block_duration="1h",
                    retention_size=limit) as st:
        deleted = st.apply_retention()
        assert len(deleted) >= 3
        assert sum(b.size_bytes() for b in st.blocks()) <= limit
        ts, _ = _read(st)
        assert max(ts) == 6 * HOUR - 60_000 and min(ts) >= 3 * HOUR  # oldest went first


@pytest.mark.parametrize(("text", "ok"), [
    pytest.param("10GB", True, id="gb"), pytest.param("512MB", True, id="mb"),
    pytest.param("1.5KB", True, id="fraction"), pytest.param("lots", False, id="bad"),
])
def test_retention_size_parsing(tmp_path: os.PathLike[str], text: str, ok: bool) -> None:
    from promlab.errors import BadData
    if ok:
        open_store(tmp_path, retention_size=text).close()
    else:
        with pytest.raises(BadData):
            open_store(tmp_path, retention_size=text)
