"""Series in the order the blocks store them, for reads split into runs of series.

Inside a block's samples file a (metric, time bucket) is a run of chunks (one series each)
ordered by first value, not by labels (smaller value deltas: see ``storage.writer``), and a
read fetches whole row groups. A worker that reads a run of label-ordered series therefore
touches nearly every row group of the selection. Ordered by their chunks' rows in the middle
bucket of the range (the buckets nearest to it breaking ties, for series absent there), a
contiguous run of series is a contiguous run of rows there and, since first-value order
drifts slowly between neighbouring buckets, nearly one in the others. (Measured on the
benchmark's 6-hour selections: the middle bucket leaves a shard fewer row groups than the
oldest or newest one, or the mean position over buckets.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.storage.blocks import Block

__all__ = ["storage_order"]

#: Time buckets are told apart by their chunks' start hour (a heuristic: the order only
#: affects how many row groups a run of series touches, never which series are read).
_BUCKET_MS = 3_600_000


def storage_order(blocks: Sequence[Block], series: Sequence[Labels], mint: int, maxt: int
                  ) -> list[Labels]:
    """``series`` sorted by the rows of their chunks in ``[mint, maxt]`` of ``blocks``.

    The middle (block, bucket) in time order decides first, then the others by their distance
    from it; series without a chunk there (the head's) come last. Ties keep the order of
    ``series``.
    """
    n = len(series)
    if n < 2 or not blocks:
        return list(series)
    ids = np.fromiter((ls.hash for ls in series), np.int64, n)
    by_id = np.argsort(ids, kind="stable")
    sorted_ids = ids[by_id]
    columns: dict[tuple[int, int], np.ndarray] = {}
    for b, blk in enumerate(sorted(blocks, key=lambda x: (x.meta.mint, x.meta.seq))):
        blk.index()
        rows = np.flatnonzero((blk.min_time <= maxt) & (blk.max_time >= mint))
        if rows.shape[0] == 0:
            continue
        pos = np.minimum(np.searchsorted(sorted_ids, blk.sids[rows]), n - 1)
        hit = sorted_ids[pos] == blk.sids[rows]
        rows, who = rows[hit], by_id[pos[hit]]
        if rows.shape[0] == 0:
            continue
        start = blk.row_start[rows]
        bucket = blk.min_time[rows] // _BUCKET_MS
        for bk in unique(bucket).tolist():
            sel = bucket == bk
            col = np.full(n, np.iinfo(np.int64).max, np.int64)
            col[who[sel]] = start[sel]
            columns[(b, bk)] = col
    if not columns:
        return list(series)
    cols = sorted(columns)
    mid = len(cols) // 2
    priority = sorted(range(len(cols)), key=lambda i: (abs(i - mid), i))
    keys = [np.arange(n)] + [columns[cols[i]] for i in reversed(priority)]
    order = np.lexsort(keys)  # the last key is the primary one: the middle bucket
    return [series[i] for i in order.tolist()]
