"""The decoded cache's memo (issue 14): what a repeated selection does not derive again.

Which chunk rows and which cached series a set of matchers selects does not depend on the
time range; a store keeps those answers beside its decoded entries, so a warm query only
compares times. Answers must equal the memory copy's whether the memo answers or not.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage.blocks import Block
from promlab.storage.cache import MEMO_BYTES, DecodedCache
from promlab.storage.interface import SelectHints
from promlab.storage.postings import LabelIndex

from .conftest import HOUR, T0, assert_same, four_hour_block

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
        first = ro.querier(lo, hi).select(ONE, SelectHints(views=True))
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
