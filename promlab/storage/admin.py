"""Admin operations on a Parquet store: snapshots and series deletion (Prometheus's
``/api/v1/admin/tsdb/snapshot`` and ``delete_series``).

- :func:`snapshot` hard-links every file of the store's blocks (and native histogram files)
  into a new directory: instant, no extra space, and safe because a block's files are never
  rewritten in place (compaction and deletion write new blocks and remove old ones).
- :func:`delete_series` rewrites each block holding matching samples in the time range without
  them (the staged write of compaction: the new block is renamed into place, then the old one
  removed), so no tombstones are kept and cleaning them is a no-op. Native histogram samples
  are deleted by the store beside it, from its histogram head, WAL and files
  (:func:`promlab.storage.histdir.delete_samples`).

The store calls these under its lock, after flushing its head (:meth:`ParquetStore.snapshot`,
:meth:`ParquetStore.delete_series`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError
from promlab.model import Labels, Matcher
from promlab.storage.blocks import Block
from promlab.storage.compact import CompactTarget, merge_blocks

__all__ = ["delete_series", "matching", "snapshot"]


def matching(labels: Sequence[Labels], matcher_sets: Sequence[Sequence[Matcher]],
             ) -> npt.NDArray[np.bool_]:
    """Which label sets match any of ``matcher_sets`` (all matchers of one set)."""
    return np.array([any(all(m.matches(ls.get(m.name, "")) for m in ms) for ms in matcher_sets)
                     for ls in labels], bool)


def snapshot(store: CompactTarget, blocks: Sequence[Block], dest: str, *,
             extra_dirs: Sequence[str] = ()) -> int:
    """Hard-link the files of ``blocks`` (and of ``extra_dirs``, under their own names) into
    ``dest`` laid out as the store is (``dest`` opens as a store); returns the number of files
    linked. Written under ``dest.tmp`` and renamed: a snapshot directory is always complete.

    Raises
    ------
    StorageError
        The store is in object storage (no hard links there), or ``dest`` exists.
    """
    if store.fs.remote:
        raise StorageError("snapshots of a store in object storage are not supported "
                           "(copy the bucket's blocks/ prefix instead)")
    if os.path.exists(dest):
        raise StorageError(f"{dest}: snapshot directory exists")
    tmp = dest + ".tmp"
    linked = 0
    os.makedirs(tmp)
    # The store's own layout (blocks/<block>/..., histograms/...): a snapshot opens as a store.
    under = os.path.basename(store.blocks_dir.rstrip("/"))
    sources = [(b.path, os.path.join(under, os.path.basename(b.path.rstrip("/"))))
               for b in blocks]
    sources += [(d, os.path.basename(d.rstrip("/"))) for d in extra_dirs if os.path.isdir(d)]
    for src, name in sources:
        for root, _dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            out = os.path.normpath(os.path.join(tmp, name, rel))
            os.makedirs(out, exist_ok=True)
            for f in files:
                os.link(os.path.join(root, f), os.path.join(out, f))
                linked += 1
    os.rename(tmp, dest)
    return linked


def delete_series(store: CompactTarget, blocks: Sequence[Block],
                  matcher_sets: Sequence[Sequence[Matcher]], mint_ms: int, maxt_ms: int) -> int:
    """Rewrite the blocks with samples of series matching ``matcher_sets`` in
    ``[mint_ms, maxt_ms]`` without those samples; returns the number of blocks rewritten.

    A block left with no samples at all is removed instead.
    """
    rewritten = 0
    for blk in blocks:
        if blk.meta.end <= mint_ms or blk.meta.start > maxt_ms:
            continue
        blk.index()  # loads blk.sids (empty until a block is first read)
        _, first = np.unique(blk.sids, return_index=True)
        if not matching([blk.labels_at(i) for i in first.tolist()], matcher_sets).any():
            continue

        def drop(labels: Sequence[Labels], group: npt.NDArray[np.int64],
                 ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            hit = matching(labels, matcher_sets)
            out: npt.NDArray[np.bool_] = hit[group] & (ts >= mint_ms) & (ts <= maxt_ms)
            return out

        merge_blocks(store, [blk], start=blk.meta.start, end=blk.meta.end, drop=drop,
                     level=blk.meta.level)
        rewritten += 1
    return rewritten
