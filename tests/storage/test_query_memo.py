"""The decoded cache's memo (issue 14): what a repeated selection does not derive again.

Which chunk rows and which cached series a set of matchers selects does not depend on the
time range; a store keeps those answers beside its decoded entries, so a warm query only
compares times. Answers must equal the memory copy's whether the memo answers or not.
"""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage import querier as querier_module
from promlab.storage.blockfs import BlockFS
from promlab.storage.blocks import Block
from promlab.storage.cache import MEMO_BYTES, DecodedCache
from promlab.storage.interface import SelectHints
from promlab.storage.postings import LabelIndex

from .conftest import HOUR, T0, assert_same, four_hour_block, make_series

ONE = [Matcher(MatchType.EQUAL, "__name__", "metric_1"),
       Matcher(MatchType.REGEX, "instance", "h1.*")]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, MemoryStorage]]:
    path = str(tmp_path_factory.mktemp("memo-store"))
    yield path, four_hour_block(path)


def _count(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int]:
    """Calls of ``cls.name`` (the real method still answers) from now on."""
    calls: list[int] = []
    real = getattr(cls, name)

    def counting(self: object, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, counting)
    return calls


WINDOWS = [
    pytest.param([(T0 + HOUR + k * 15_000, T0 + HOUR + 300_000 + k * 15_000) for k in range(8)],
                 id="moving-5m"),
    pytest.param([(T0 + 2 * HOUR - 60_000, T0 + 2 * HOUR + 60_000)] * 4, id="across-buckets"),
    pytest.param([(0, 2**62), (T0, T0 + 4 * HOUR)], id="whole"),
]
ORDERS = [pytest.param(ONE, id="name-first"), pytest.param(ONE[::-1], id="name-last"),
          pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_2")], id="name-only"),
          pytest.param([Matcher(MatchType.EQUAL, "instance", "h4")], id="no-name-matcher"),
          pytest.param([Matcher(MatchType.EQUAL, "__name__", "nope")], id="unknown")]


@pytest.mark.parametrize("windows", WINDOWS)
@pytest.mark.parametrize("matchers", ORDERS)
def test_memoised_selections_match_memory(store: tuple[str, MemoryStorage],
                                          matchers: Sequence[Matcher],
                                          windows: list[tuple[int, int]]) -> None:
    path, mem = store
    with open_store(path, readonly=True) as ro:
        for views in (True, False):
            for lo, hi in windows:
                hints = SelectHints(start_ms=lo, end_ms=hi, views=views)
                got = ro.querier(lo, hi).select(matchers, hints).compact()
                assert_same(got, mem.querier(lo, hi).select(matchers).compact())


def test_repeated_selection_does_not_match_or_list_chunks_again(
        store: tuple[str, MemoryStorage], monkeypatch: pytest.MonkeyPatch) -> None:
    path, mem = store
    lo, hi = T0 + HOUR + 1, T0 + HOUR + 300_000
    with open_store(path, readonly=True) as ro:
        # The first query derives its answers directly (a cold query builds no memo), the
        # second memoises them, later ones reuse them.
        first = ro.querier(lo, hi).select(ONE, SelectHints(views=True))
        cold = _count(monkeypatch, Block, "metric_chunks")
        ro.querier(lo, hi).select(ONE, SelectHints(views=True))
        assert len(cold) == 1  # the second: once, to memoise
        monkeypatch.undo()
        chunks = _count(monkeypatch, Block, "metric_chunks")
        matches = _count(monkeypatch, LabelIndex, "match")
        for k in range(5):  # moving windows, the matchers in either order
            m = ONE if k % 2 else ONE[::-1]
            got = ro.querier(lo + k * 1000, hi + k * 1000).select(m, SelectHints(views=True))
            assert_same(got.compact(),
                        mem.querier(lo + k * 1000, hi + k * 1000).select(ONE).compact())
        assert chunks == [] and matches == []
        assert first.num_samples > 0


def test_memo_is_bounded_dropped_with_its_block_and_not_an_entry() -> None:
    cache = DecodedCache(1 << 20)
    big = np.zeros(MEMO_BYTES // 8 // 3, np.int64)
    for i in range(4):
        cache.memo_put((f"b{i % 2}", "chunks", i), big, big.nbytes)
    assert cache.memo_get(("b0", "chunks", 0)) is None  # the oldest went past the budget
    assert cache.memo_get(("b1", "chunks", 3)) is big
    assert len(cache) == 0 and cache.nbytes == 0 and cache.hits == cache.misses == 0
    cache.evict_block("b1")
    assert cache.memo_get(("b1", "chunks", 3)) is None
    assert cache.memo_get(("b0", "chunks", 2)) is big
    cache.clear()
    assert cache.memo_get(("b0", "chunks", 2)) is None
    off = DecodedCache(0)
    off.memo_put(("b", "x"), big, 8)
    assert off.memo_get(("b", "x")) is None


def test_disabled_cache_still_answers(store: tuple[str, MemoryStorage]) -> None:
    path, mem = store
    lo, hi = T0 + HOUR, T0 + HOUR + 300_000
    with open_store(path, readonly=True, cache_size=0) as ro:
        for _ in range(2):
            assert_same(ro.querier(lo, hi).select(ONE), mem.querier(lo, hi).select(ONE))


@pytest.fixture(scope="module")
def ragged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, MemoryStorage]]:
    """Series with jittered intervals, late starts, early ends and gaps, in 1-h buckets."""
    path = str(tmp_path_factory.mktemp("ragged-store"))
    rng = np.random.default_rng(14)
    mem = MemoryStorage()
    series = make_series(20, metrics=2)
    parts = []
    for i in range(len(series)):
        start = T0 + int(rng.integers(0, HOUR))
        stop = T0 + 4 * HOUR - int(rng.integers(0, 2 * HOUR))
        ts = np.cumsum(rng.integers(1, 40_000, 2000)) + start
        ts = ts[(ts < stop) & ((ts < T0 + HOUR + 600_000 * (i % 3)) | (ts > T0 + 2 * HOUR))]
        parts.append((np.full(ts.shape[0], i), ts))
    idx = np.concatenate([p[0] for p in parts])
    ts = np.concatenate([p[1] for p in parts]).astype(np.int64)
    vals = np.round(rng.normal(size=ts.shape[0]), 2)
    with open_store(path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx, ts, vals)
            app.commit()
        st.flush()
    yield path, mem


def test_random_windows_over_ragged_series_match_memory(ragged: tuple[str, MemoryStorage],
                                                        ) -> None:
    path, mem = ragged
    rng = np.random.default_rng(7)
    matchers = [[Matcher(MatchType.EQUAL, "__name__", "metric_0")],
                [Matcher(MatchType.EQUAL, "__name__", "metric_1"),
                 Matcher(MatchType.NOT_EQUAL, "instance", "h3")]]
    with open_store(path, readonly=True) as ro:
        for k in range(300):
            lo = T0 - 60_000 + int(rng.integers(0, 4 * HOUR + 120_000))
            hi = lo + int(rng.choice([0, 1, 14_999, 300_000, HOUR, 3 * HOUR]))
            m = matchers[k % 2]
            got = ro.querier(lo, hi).select(m, SelectHints(views=True)).compact()
            assert_same(got, mem.querier(lo, hi).select(m).compact())


def _listdir_calls(monkeypatch: pytest.MonkeyPatch, only: str) -> list[str]:
    """Listings of directory ``only`` from now on (other threads left running by earlier tests
    list other directories)."""
    calls: list[str] = []
    real = os.listdir

    def counting(path: str) -> list[str]:
        if os.fspath(path) == only:
            calls.append(path)
        return real(path)

    monkeypatch.setattr(os, "listdir", counting)
    return calls


def test_local_listing_reused_while_the_directory_is_unchanged(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = BlockFS()
    d = tmp_path / "blocks"
    d.mkdir()
    (d / "a").mkdir()
    old = time.time_ns() - 3600 * 10**9
    os.utime(d, ns=(old, old))
    calls = _listdir_calls(monkeypatch, str(d))
    assert fs.listdir(str(d), cached=True) == ["a"]
    assert fs.listdir(str(d), cached=True) == ["a"]
    assert len(calls) == 1
    assert fs.listdir(str(d)) == ["a"] and len(calls) == 2  # not cached: always listed
    (d / "b").mkdir()  # the directory's time moves on: listed again
    assert sorted(fs.listdir(str(d), cached=True)) == ["a", "b"] and len(calls) == 3
    # changed within the racy window: never reused
    assert sorted(fs.listdir(str(d), cached=True)) == ["a", "b"] and len(calls) == 4


def test_readonly_store_sees_a_block_flushed_after_its_queries(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "st")
    series = make_series(3)
    with open_store(path, block_duration="1h", wal_fsync=False) as w:
        app = w.appender()
        app.append_batch(series, np.array([0, 1, 2]), np.full(3, T0), np.ones(3))
        app.commit()
        w.flush()
        with open_store(path, readonly=True) as ro:
            m = [Matcher(MatchType.EQUAL, "job", "j")]
            for _ in range(2):
                assert ro.querier(0, 2**62).select(m).num_samples == 3
            app = w.appender()
            app.append_batch(series, np.array([0, 1, 2]), np.full(3, T0 + 2 * HOUR), np.ones(3))
            app.commit()
            w.flush()
            assert ro.querier(0, 2**62).select(m).num_samples == 6


def test_a_first_selection_memoises_nothing(store: tuple[str, MemoryStorage]) -> None:
    """A cold query pays for no memo: only keys seen before get memoised answers."""
    path, _ = store
    lo, hi = T0 + HOUR + 1, T0 + HOUR + 300_000
    with open_store(path, readonly=True) as ro:
        ro.querier(lo, hi).select(ONE, SelectHints(views=True))
        held = ro.cache.memo_bytes
        ro.querier(lo, hi).select(ONE, SelectHints(views=True))
        assert held == 0 < ro.cache.memo_bytes


def test_windows_moving_in_small_steps_match_memory(ragged: tuple[str, MemoryStorage],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # A warm query keeps the last plan of a block part with the box of ranges it holds for:
    # small moves stay in it (no new plan), others cross chunk ends, starts and slices.
    path, mem = ragged
    rng = np.random.default_rng(11)
    m = [Matcher(MatchType.EQUAL, "__name__", "metric_1"),
         Matcher(MatchType.NOT_EQUAL, "instance", "h3")]
    plans: list[int] = []
    real_plan = querier_module._part_plan

    def counting_plan(*args: Any, **kwargs: Any) -> Any:
        plans.append(1)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(querier_module, "_part_plan", counting_plan)
    with open_store(path, readonly=True) as ro:
        for width in (300_000, 0, 2 * HOUR):
            lo = T0 - 120_000
            for _ in range(2):
                ro.querier(lo, lo + width).select(m, SelectHints(views=True))
            plans.clear()
            steps = 0
            while lo < T0 + 4 * HOUR:
                hi = lo + width
                got = ro.querier(lo, hi).select(m, SelectHints(views=True)).compact()
                assert_same(got, mem.querier(lo, hi).select(m).compact())
                lo += int(rng.integers(1, 90_000))
                steps += 1
            assert steps > 100 and 0 < len(plans) < steps // 2  # crossings only


def test_local_file_listing_reused_while_the_directory_is_unchanged(
        tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = BlockFS()
    d = tmp_path / "histograms"
    assert fs.list_files(str(d), cached=True) == {}  # no directory yet
    d.mkdir()
    (d / "a.parquet").write_bytes(b"12")
    old = time.time_ns() - 3600 * 10**9
    os.utime(d, ns=(old, old))
    scans: list[str] = []
    real = os.scandir

    def counting(path: str) -> object:
        if os.fspath(path) == str(d):
            scans.append(path)
        return real(path)

    monkeypatch.setattr(os, "scandir", counting)
    assert fs.list_files(str(d), cached=True) == {"a.parquet": 2}
    assert fs.list_files(str(d), cached=True) == {"a.parquet": 2} and len(scans) == 1
    assert fs.list_files(str(d)) == {"a.parquet": 2} and len(scans) == 2  # not cached
    (d / "b.parquet").write_bytes(b"123")  # the directory's time moves on: listed again
    assert fs.list_files(str(d), cached=True) == {"a.parquet": 2, "b.parquet": 3}
    assert len(scans) == 3
    # changed within the racy window: never reused
    assert fs.list_files(str(d), cached=True) == {"a.parquet": 2, "b.parquet": 3}
    assert len(scans) == 4
    (d / "a.parquet").unlink()
    (d / "b.parquet").unlink()
    d.rmdir()
    assert fs.list_files(str(d), cached=True) == {}
