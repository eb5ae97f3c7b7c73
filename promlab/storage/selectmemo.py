"""What a warm selection does not derive again (issue 14: a warm query's fixed costs).

The answers live in the :class:`~promlab.storage.cache.DecodedCache`'s memo, keyed by block:

- :func:`matching_chunks`: the chunk rows a set of matchers selects in a block (part) at any
  time; a query only compares their time ranges;
- :func:`boxed_get` / :func:`boxed_put`: the last answer about a block part that depends on a
  query's range only through which chunks it selects and which slices its ends fall in
  (:func:`chunk_box`), kept with the box of ranges it holds for: a query moving within it
  compares four integers;
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

__all__ = ["KEYED_SAMPLES", "Box", "Picked", "RunKeys", "boxed_get", "boxed_put", "chunk_box",
           "keyed_bounds", "matched_series", "matching_chunks", "run_keys"]

#: Entries of at most this many samples get the sorted run keys of :func:`run_keys`.
KEYED_SAMPLES = 1 << 17

#: Series of an entry: their positions and their labels (see :func:`matched_series`).
Picked = tuple[npt.NDArray[np.intp], list[Labels]]

#: An entry's samples as one sorted key array: ``(keys, base, width)`` (see :func:`run_keys`).
RunKeys = tuple[npt.NDArray[np.int64], int, int]

#: Ranges ``(mint_lo, mint_hi, maxt_lo, maxt_hi)`` (inclusive): every ``[mint, maxt]`` with
#: ``mint`` and ``maxt`` in theirs (see :func:`chunk_box`).
Box = tuple[int, int, int, int]

_NO_LOWER, _NO_UPPER = -(1 << 63), (1 << 63) - 1


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


def _chunks_key(blk: Block, src: Block, name: str, which: frozenset[Matcher],
                ) -> tuple[Hashable, ...]:
    # A part numbers its chunks among the metric's own, the block among all: keyed apart.
    return blk.meta.ulid, "chunks", name, src is not blk, which


def matching_chunks(memo: DecodedCache | None, blk: Block, src: Block, name: str,
                    matchers: Sequence[Matcher], which: frozenset[Matcher], mint: int,
                    maxt: int) -> npt.NDArray[np.int64]:
    """``src.metric_chunks(name, matchers, mint, maxt)``: with a ``memo``, the chunks the
    matchers select at any time are found once per block part, and only their time ranges
    are compared by each query."""
    if memo is None:
        return src.metric_chunks(name, matchers, mint, maxt)
    key = _chunks_key(blk, src, name, which)
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


def chunk_box(memo: DecodedCache, blk: Block, src: Block, name: str,
              which: frozenset[Matcher], mint: int, maxt: int) -> Box | None:
    """The ranges around ``(mint, maxt)`` where :func:`matching_chunks` selects the same chunks
    and ``src``'s slice window (:meth:`~promlab.storage.slices.SliceIndex.bounds`) is the same;
    None before the chunks are memoised.

    A chunk is selected while its last time is ``>= mint`` and its first ``<= maxt``: ``mint``
    may move up to the next last time at or after it and down to just past the one before;
    ``maxt`` likewise between first times.
    """
    hit: tuple[npt.NDArray[np.int64], ...] | None = memo.memo_get(
        _chunks_key(blk, src, name, which))  # type: ignore[assignment]
    if hit is None:
        return None
    _, first, last = hit
    ends_before, ends_after = last[last < mint], last[last >= mint]
    starts_below, starts_above = first[first <= maxt], first[first > maxt]
    box = [int(ends_before.max()) + 1 if ends_before.shape[0] else _NO_LOWER,
           int(ends_after.min()) if ends_after.shape[0] else _NO_UPPER,
           int(starts_below.max()) if starts_below.shape[0] else _NO_LOWER,
           int(starts_above.min()) - 1 if starts_above.shape[0] else _NO_UPPER]
    if src.slices is not None:
        sb = src.slices.bounds_box(mint, maxt)
        box = [max(box[0], sb[0]), min(box[1], sb[1]), max(box[2], sb[2]), min(box[3], sb[3])]
    return box[0], box[1], box[2], box[3]


def boxed_get(memo: DecodedCache, key: tuple[Hashable, ...], mint: int, maxt: int,
              ) -> object | None:
    """The answer :func:`boxed_put` kept under ``key`` when its box holds ``[mint, maxt]``."""
    hit: tuple[Box, object] | None = memo.memo_get(key)  # type: ignore[assignment]
    if hit is None:
        return None
    (a, b, c, d), answer = hit
    return answer if a <= mint <= b and c <= maxt <= d else None


def boxed_put(memo: DecodedCache, key: tuple[Hashable, ...], box: Box, answer: object,
              nbytes: int) -> None:
    """Keep ``answer`` for the ranges of ``box`` under ``key`` (the last one only)."""
    memo.memo_put(key, (box, answer), nbytes + 200)


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
