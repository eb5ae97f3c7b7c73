"""What a warm selection does not derive again (issue 14: a warm query's fixed costs).

The answers live in the :class:`~promlab.storage.cache.DecodedCache`'s memo, keyed by block:

- :func:`matching_chunks`: the chunk rows a set of matchers selects in a block (part) at any
  time; a query only compares their time ranges;
- :func:`matched_series`: the series of a cached entry a set of matchers selects;
- :func:`run_keys`: an entry's samples as one sorted key array, so a time range's bounds in all
  its runs are two ``searchsorted`` calls (:func:`keyed_bounds`).

A cached :class:`~promlab.storage.cache.MetricColumns` holds one sorted run of timestamps per
series; ``run * width + (ts - base)`` (``width`` wider than the entry's time span) increases
over the whole entry. The keys are memoised beside the cache's entries (8 bytes a sample, for
entries of at most :data:`KEYED_SAMPLES` samples).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher
from promlab.storage.blocks import Block
from promlab.storage.cache import DecodedCache, MetricColumns

__all__ = ["KEYED_SAMPLES", "Picked", "RunKeys", "keyed_bounds", "matched_series", "matching_chunks",
           "run_keys"]

#: Entries of at most this many samples get the sorted run keys of :func:`run_keys`.
KEYED_SAMPLES = 1 << 17

#: Series of an entry: their positions and their labels (see :func:`matched_series`).
Picked = tuple[npt.NDArray[np.intp], list[Labels]]

#: An entry's samples as one sorted key array: ``(keys, base, width)`` (see :func:`run_keys`).
RunKeys = tuple[npt.NDArray[np.int64], int, int]


def run_keys(memo: DecodedCache, key: tuple[Hashable, ...], entry: MetricColumns,
             ) -> RunKeys | None:
    """``run * width + (ts - base)`` for every sample of ``entry`` (memoised under ``key``):
    increasing over the whole entry, so the bounds of a time range in all runs are one
    ``searchsorted`` each (:func:`keyed_bounds`); None when the entry is not one CSR run per
    series or its keys would not fit in int64."""
    hit = memo.memo_get(key)
    if hit is not None:
        return hit  # type: ignore[return-value]
    if not memo.memo_seen(key):
        return None  # a first cut searches its runs directly
    ts, off = entry.ts, entry.offsets
    n = off.shape[0] - 1
    if ts.shape[0] == 0 or n <= 0 or int(off[0]) != 0 or int(off[-1]) != ts.shape[0]:
        return None
    base = int(ts.min())
    width = int(ts.max()) - base + 2  # room for -1 and ``width - 1`` around a run's times
    if n * width >= 1 << 62:
        return None
    keys = np.repeat(np.arange(n, dtype=np.int64) * width, np.diff(off))
    keys += ts
    keys -= base
    keys.flags.writeable = False
    out = (keys, base, width)
    memo.memo_put(key, out, keys.nbytes + 200)
    return out


def keyed_bounds(keyed: RunKeys, sel: npt.NDArray[np.intp], mint: int, maxt: int,
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Per run ``sel``: the first sample at or after ``mint`` and the first after ``maxt``.

    A time before a run's first sample is searched as ``-1`` (the run's start: the previous
    run's keys end at ``-2``), one after its last as ``width - 1`` (its end).
    """
    keys, base, width = keyed
    row = sel * width
    lo = keys.searchsorted(row + min(max(mint - base, -1), width - 1), "left")
    hi = keys.searchsorted(row + min(max(maxt - base, -1), width - 1), "right")
    return lo, hi


def matching_chunks(memo: DecodedCache | None, blk: Block, src: Block, name: str,
                    matchers: Sequence[Matcher], which: frozenset[Matcher], mint: int,
                    maxt: int) -> npt.NDArray[np.int64]:
    """``src.metric_chunks(name, matchers, mint, maxt)``: with a ``memo``, the chunks the
    matchers select at any time are found once per block part, and only their time ranges
    are compared by each query."""
    if memo is None:
        return src.metric_chunks(name, matchers, mint, maxt)
    # A part numbers its chunks among the metric's own, the block among all: keyed apart.
    key = (blk.meta.ulid, "chunks", name, src is not blk, which)
    hit: tuple[npt.NDArray[np.int64], ...] | None = memo.memo_get(key)  # type: ignore[assignment]
    if hit is None and not memo.memo_seen(key):
        return src.metric_chunks(name, matchers, mint, maxt)  # a first query: directly
    if hit is None:
        rows = src.metric_chunks(name, matchers)
        # with their time ranges gathered (src.index() loaded them with the rows)
        hit = (rows, src.min_time[rows], src.max_time[rows])
        for a in hit:
            a.flags.writeable = False
        memo.memo_put(key, hit, 3 * rows.nbytes + 200)
    rows, lo, hi = hit
    keep = hi >= mint
    keep &= lo <= maxt
    out: npt.NDArray[np.int64] = rows[keep]
    return out


def matched_series(memo: DecodedCache, key: tuple[Hashable, ...], entry: MetricColumns,
                   matchers: Sequence[Matcher]) -> Picked | None:
    """Positions of ``entry``'s series matching ``matchers`` and their labels (memoised under
    ``key``; the list is shared: copy it before handing it out); None the first time ``key``
    is asked about (the caller matches directly)."""
    hit: Picked | None = memo.memo_get(key)  # type: ignore[assignment]
    if hit is None:
        if not memo.memo_seen(key):
            return None
        sel = np.flatnonzero(entry.index.match(matchers))
        sel.flags.writeable = False
        hit = (sel, list(map(entry.labels.__getitem__, sel.tolist())))
        memo.memo_put(key, hit, sel.nbytes + 8 * sel.shape[0] + 200)
    return hit
