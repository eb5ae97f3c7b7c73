"""A memory-bounded LRU of decoded block columns: the analogue of Prometheus's page-cached chunks.

Blocks are immutable, so an entry — the decoded samples of one metric in one block, series in
label order (CSR) — is keyed by ``(block id, metric name)`` (the whole metric) or ``(block id,
metric name, digest of the chunks)`` (the series × time buckets one query selected) and never
goes stale; it is dropped when the block is deleted (compaction, retention) or when the cache is
over its byte budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.storage.postings import LabelIndex

__all__ = ["DEFAULT_CACHE_BYTES", "CacheEntry", "DecodedCache", "MetricColumns", "window"]

#: Default budget: 1 GiB, or a quarter of physical memory when that is smaller.
DEFAULT_CACHE_BYTES = 1 << 30
#: Most bytes of memoised answers (:meth:`DecodedCache.memo_get`) kept beside the entries.
MEMO_BYTES = 16 << 20
#: Memo keys :meth:`DecodedCache.memo_seen` remembers having seen (least recently seen first out).
SEEN_KEYS = 4096


def default_cache_bytes() -> int:
    """1 GiB, capped at a quarter of physical memory."""
    try:
        import os

        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return DEFAULT_CACHE_BYTES
    return int(min(DEFAULT_CACHE_BYTES, ram // 4))


class CacheEntry(Protocol):
    """What the cache holds: immutable decoded data that knows its size in bytes."""

    @property
    def nbytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class MetricColumns:
    """Samples of one metric in one block (or a time slice of it), series sorted by labels.

    Series ``i`` (id ``sids[i]``, labels ``labels[i]``) has samples
    ``ts[offsets[i]:offsets[i+1]]`` in increasing time order; ``index`` matches these series.
    """

    sids: npt.NDArray[np.int64]
    labels: list[Labels]
    index: LabelIndex
    offsets: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    mint: int
    maxt: int

    @property
    def nbytes(self) -> int:
        per_series = 200 * len(self.labels)  # label objects, index codes (rough)
        return int(self.ts.nbytes + self.values.nbytes + self.offsets.nbytes + self.sids.nbytes
                   + per_series)


def window(ts: npt.NDArray[np.int64], starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64],
           mint: int, maxt: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per run ``ts[starts[i]:ends[i]]`` (sorted): the bounds of its samples in ``[mint, maxt]``.

    A vectorised binary search over all runs at once (``log2(longest run)`` numpy steps), of
    the bounds that cut some run only: a query at the end of the data (``maxt`` past every
    run's last sample) searches for ``mint`` alone.
    """
    full = bool((ends > starts).all())
    if full and bool((ts[starts] >= mint).all()):
        lo = starts.copy()
    else:
        lo = _lower_bound(ts, starts.copy(), ends.copy(), mint, strict=False)
    if full and bool((ts[ends - 1] <= maxt).all()):
        hi = ends.copy()
    else:
        hi = _lower_bound(ts, lo.copy(), ends.copy(), maxt, strict=True)
    return lo, hi


def _lower_bound(ts: npt.NDArray[np.int64], lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64],
                 x: int, *, strict: bool) -> npt.NDArray[np.int64]:
    """First position in each ``[lo, hi)`` with ``ts >= x`` (``ts > x`` when ``strict``).

    The first probe of each run is where ``x`` falls between the run's first and last times
    (samples scraped at a steady interval are spread evenly: the probe or its neighbour is
    the answer); the runs it does not settle are bisected.
    """
    if ts.shape[0] == 0:
        return lo
    last = ts.shape[0] - 1
    open_ = lo < hi
    if open_.any():
        a = ts[np.minimum(lo, last)].astype(np.float64)
        b = ts[np.clip(hi - 1, 0, last)].astype(np.float64)
        frac = np.clip((float(x) - a) / np.maximum(b - a, 1.0), 0.0, 1.0)
        g = np.clip(lo + (frac * (hi - 1 - lo)).astype(np.int64), lo, np.maximum(hi - 1, lo))
        v = ts[np.minimum(g, last)]
        here = (v > x) if strict else (v >= x)  # the answer is g or before it
        nb = ts[np.clip(np.where(here, g - 1, g + 1), 0, last)]
        there = (nb > x) if strict else (nb >= x)
        at_g = here & ((g == lo) | ~there)  # g holds, the one before does not
        at_next = ~here & (g + 1 < hi) & there  # g fails, the one after holds
        new_lo = np.where(here, np.where(at_g, g, lo), g + 1)
        new_hi = np.where(here, np.where(at_g, g, g - 1), np.where(at_next, g + 1, hi))
        lo = np.where(open_, new_lo, lo)
        hi = np.where(open_, new_hi, hi)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) >> 1
        v = ts[np.minimum(mid, last)]
        go_right = (v <= x) if strict else (v < x)
        go_right &= open_
        go_left = open_ & ~go_right
        lo = np.where(go_right, mid + 1, lo)
        hi = np.where(go_left, mid, hi)


class DecodedCache:
    """Thread-safe LRU of :class:`MetricColumns` bounded by ``max_bytes`` (0 disables it).

    :meth:`get_entry`/:meth:`put_entry` hold any other :class:`CacheEntry` (the native
    histogram files' decoded samples) under the same budget; their keys must not collide with
    blocks' (``key[0]`` is what :meth:`evict_block` matches).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple[str, ...], CacheEntry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # Small answers derived from blocks' immutable data: key -> (answer, bytes).
        self._memo: OrderedDict[tuple[Hashable, ...], tuple[object, int]] = OrderedDict()
        self._memo_bytes = 0
        self._seen: OrderedDict[tuple[Hashable, ...], None] = OrderedDict()

    @property
    def nbytes(self) -> int:
        return self._bytes

    @property
    def memo_bytes(self) -> int:
        """Bytes the memoised answers hold (:meth:`memo_put`; not counted in :attr:`nbytes`)."""
        return self._memo_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, ...]) -> MetricColumns | None:
        entry = self.get_entry(key)
        return entry if isinstance(entry, MetricColumns) else None

    def get_entry(self, key: tuple[str, ...]) -> CacheEntry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, ...], entry: MetricColumns) -> None:
        self.put_entry(key, entry)

    def put_entry(self, key: tuple[str, ...], entry: CacheEntry) -> None:
        size = entry.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = entry
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, ev = self._entries.popitem(last=False)
                self._bytes -= ev.nbytes

    def memo_get(self, key: tuple[Hashable, ...]) -> object | None:
        """An answer :meth:`memo_put` kept under ``key``, or None.

        The memo holds small answers derived from a block's immutable data (which chunk rows
        or series a set of matchers selects), so repeated queries do not derive them again;
        ``key[0]`` is the block id (:meth:`evict_block` drops them with the block's entries).
        Memoised answers are not entries: they count neither in ``len``, ``nbytes`` nor as
        hits or misses.
        """
        with self._lock:
            hit = self._memo.get(key)
            if hit is None:
                return None
            self._memo.move_to_end(key)
            return hit[0]

    def memo_put(self, key: tuple[Hashable, ...], answer: object, nbytes: int) -> None:
        """Keep ``answer`` (about ``nbytes`` large) under ``key`` (see :meth:`memo_get`); the
        least recently used answers go beyond :data:`MEMO_BYTES`; nothing is kept when the
        cache is disabled."""
        if self.max_bytes <= 0 or nbytes > MEMO_BYTES:
            return
        with self._lock:
            old = self._memo.pop(key, None)
            if old is not None:
                self._memo_bytes -= old[1]
            self._memo[key] = (answer, nbytes)
            self._memo_bytes += nbytes
            while self._memo_bytes > MEMO_BYTES:
                _, (_, n) = self._memo.popitem(last=False)
                self._memo_bytes -= n

    def memo_seen(self, key: tuple[Hashable, ...]) -> bool:
        """Whether ``key`` was asked about before (then it is worth memoising an answer for
        it); records it. A first query derives its answers the direct way, so a cold query
        pays nothing for memos only repeated queries use (issue 14)."""
        if self.max_bytes <= 0:
            return False
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return True
            self._seen[key] = None
            if len(self._seen) > SEEN_KEYS:
                self._seen.popitem(last=False)
            return False

    def evict_block(self, block_id: str) -> None:
        """Drop every entry (and memoised answer) of a block (deleted or replaced by
        compaction)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == block_id]:
                self._bytes -= self._entries.pop(key).nbytes
            for mkey in [k for k in self._memo if k[0] == block_id]:
                self._memo_bytes -= self._memo.pop(mkey)[1]
            for skey in [k for k in self._seen if k[0] == block_id]:
                del self._seen[skey]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._memo.clear()
            self._memo_bytes = 0
            self._seen.clear()
