"""The write path: the per-list ref cache, incremental series registration, head cuts."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import MemoryStorage, Storage, open_store
from promlab.storage.head import UNRESOLVED, Head, RefCache

from .conftest import HOUR, T0, assert_same

ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]


def _ls(i: int, name: str = "m") -> Labels:
    return Labels({"__name__": name, "i": str(i)})


# Each scenario: a function (series list, commit number) -> the list to pass for that commit.
def _grow(series: list[Labels], c: int) -> list[Labels]:
    series.extend(_ls(len(series) + j) for j in range(3))  # the parser's list: append-only
    return series


def _replace(series: list[Labels], c: int) -> list[Labels]:
    if not series:
        series.extend(_ls(j) for j in range(5))
    else:
        series[c % 5] = _ls(100 + c)  # mutated in place: the cached refs no longer hold
    return series


def _fresh_equal(series: list[Labels], c: int) -> list[Labels]:
    return [_ls(j) for j in range(4 + c)]  # a new object each time, equal prefix


def _shrink(series: list[Labels], c: int) -> list[Labels]:
    if not series:
        series.extend(_ls(j) for j in range(8))
    else:
        del series[-1]
        series.reverse()
    return series


def _dicts(series: list[Labels], c: int) -> list[Labels]:
    series.append({"__name__": "d", "i": str(c)})  # type: ignore[arg-type]  # mappings are accepted
    return series


def _with_empty(series: list[Labels], c: int) -> list[Labels]:
    series.extend([Labels(), _ls(c)])
    return series


@pytest.mark.parametrize("step", [
    pytest.param(_grow, id="append-only"),
    pytest.param(_replace, id="mutated-in-place"),
    pytest.param(_fresh_equal, id="new-object-equal-prefix"),
    pytest.param(_shrink, id="shrunk-and-reordered"),
    pytest.param(_dicts, id="not-labels"),
    pytest.param(_with_empty, id="empty-labels"),
])
def test_commits_match_memory_storage(tmp_path: os.PathLike[str],
                                      step: Callable[[list[Labels], int], list[Labels]]) -> None:
    mem = MemoryStorage()
    series: list[Labels] = []
    with open_store(tmp_path, wal_fsync=False) as st:
        for c in range(6):
            cur = step(series, c)
            idx = np.arange(len(cur), dtype=np.int64)[::-1].copy()
            ts = np.full(len(cur), T0 + c * 15_000, np.int64)
            vals = np.arange(len(cur), dtype=np.float64) + c
            app = st.appender()
            app.append_batch(cur, idx, ts, vals)
            stats = app.commit()
            # The reference: the same data as Labels, without the series with no labels.
            clean = [Labels(x) for x in cur]
            keep = np.array([len(x) > 0 for x in clean], bool)[idx]
            mapp = mem.appender()
            mapp.append_batch(clean, idx[keep], ts[keep], vals[keep])
            assert stats.appended == mapp.commit().appended
            assert len(stats.errors) == int(not keep.all())
            assert_same(st.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))
        assert st._head._sorted is None  # the write path never builds the sorted id index
    with open_store(tmp_path, readonly=True) as ro:
        assert_same(ro.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))


def test_caller_may_change_its_list_before_commit(tmp_path: os.PathLike[str]) -> None:
    series = [_ls(0), _ls(1)]
    with open_store(tmp_path) as st:
        app = st.appender()
        app.append_batch(series, np.array([0, 1]), np.array([T0, T0]), np.array([1.0, 2.0]))
        series[0] = _ls(7)
        assert app.commit().new_series == 2
        got = st.querier(0, 2**62).select(ALL)
        assert got.labels == [_ls(0), _ls(1)]


def _head_with(n: int, t: int = 1000) -> tuple[Head, list[Labels]]:
    head = Head()
    series = [_ls(i) for i in range(n)]
    head.add_series([(ls.hash, ls) for ls in series])
    head.append(np.arange(n, dtype=np.int64), np.full(n, t, np.int64), np.zeros(n))
    return head, series


def test_ref_cache_steady_state_and_growth() -> None:
    head, series = _head_with(10)
    cache = RefCache()
    lst = list(series)
    r, new = cache.resolve(head, 1, lst, np.array([3, 3, 0], np.int64))
    assert r.tolist() == [3, 3, 0] and new == []
    grown = [*lst, _ls(50), _ls(51), _ls(50)]
    r, new = cache.resolve(head, 1, grown, np.array([11, 12, 10], np.int64))
    assert r.tolist() == [11, 10, 10] and [ls for _, ls in new] == [_ls(50), _ls(51)]
    assert len(head) == 12 and head.sids.tolist()[10:] == [_ls(50).hash, _ls(51).hash]


def test_ref_cache_follows_a_cut() -> None:
    head, series = _head_with(6)
    head.append(np.array([1, 4], np.int64), np.array([5000, 5000], np.int64), np.zeros(2))
    cache = RefCache()
    cache.resolve(head, 1, list(series), np.arange(6, dtype=np.int64))
    head.cut(2000)  # only series 1 and 4 stay: refs 0 and 1
    assert head.last_remap.tolist() == [-1, 0, -1, -1, 1, -1]
    r, new = cache.resolve(head, 1, list(series), np.array([4, 1], np.int64))
    assert r.tolist() == [1, 0] and new == []
    assert cache._entries[1].refs.tolist() == [UNRESOLVED, 0, UNRESOLVED, UNRESOLVED, 1, UNRESOLVED]
    r, new = cache.resolve(head, 1, list(series), np.array([0, 4], np.int64))
    assert r.tolist() == [2, 1] and [ls for _, ls in new] == [series[0]]
    head.cut(2000)
    head.cut(2000)  # two generations behind: the entry is dropped and rebuilt
    r, _ = cache.resolve(head, 1, list(series), np.array([1, 4], np.int64))
    assert r.tolist() == [head.ref(series[1].hash), head.ref(series[4].hash)]


def test_ref_cache_is_bounded() -> None:
    head, series = _head_with(3)
    cache = RefCache(max_lists=4)
    for key in range(10):
        cache.resolve(head, key, list(series), np.arange(3, dtype=np.int64))
    assert len(cache) == 4 and sorted(cache._entries) == [6, 7, 8, 9]


@pytest.mark.parametrize("batch", [pytest.param(1, id="one"), pytest.param(700, id="700"),
                                   pytest.param(5000, id="5000")])
def test_refs_of_stays_correct_while_series_are_added(batch: int) -> None:
    head = Head()
    rng = np.random.default_rng(batch)
    added: list[int] = []
    for b in range(12):
        sids = rng.integers(-(2**63), 2**63 - 1, size=batch, dtype=np.int64).tolist()
        head.add_series([(s, _ls(b)) for s in sids])
        added.extend(sids)
        probe = np.array([*added[:: max(1, len(added) // 50)], 12345], np.int64)
        want = [added.index(s) if s in added else -1 for s in probe.tolist()]
        assert head.refs_of(probe).tolist() == want
    assert head.sids.tolist() == added and head.latest.shape == (len(added),)


def test_wal_replay_after_many_small_commits(tmp_path: os.PathLike[str]) -> None:
    mem = MemoryStorage()
    st: Storage = open_store(tmp_path, wal_fsync=False)
    series: list[Labels] = []
    for c in range(40):
        series.extend(_ls(len(series) + j) for j in range(50))
        idx = np.arange(len(series), dtype=np.int64)
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx, np.full(idx.shape, T0 + c * HOUR // 40, np.int64),
                             idx.astype(np.float64))
            app.commit()
    with open_store(tmp_path, readonly=True) as ro:  # the writer is still open: WAL replay
        assert_same(ro.querier(0, 2**62).select(ALL), mem.querier(0, 2**62).select(ALL))
    st.close()


def test_single_appends_are_not_remembered(tmp_path: os.PathLike[str]) -> None:
    with open_store(tmp_path) as st:
        for c in range(3):
            app = st.appender()
            app.append(_ls(c), T0 + c, 1.0)
            assert app.commit().appended == 1
        assert len(st._refs) == 0 and len(st._head) == 3
