"""Compaction (merge the blocks of a time window into one) and retention (delete old blocks).

Blocks are grouped by the aligned window of ``max_block_duration`` they fall in. A window is
compacted once the head has moved past it (no new flush will land there, bar out-of-order
samples) and it holds two or more blocks. Merging resolves overlaps the way reads do: the block
written last (highest ``seq``) wins. The new block is renamed into place before its sources are
deleted, so a concurrent reader sees the data at least once (reads de-duplicate).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from promlab.model import Labels
from promlab.storage.blocks import Block, write_block
from promlab.storage.merge import merge_parts

if TYPE_CHECKING:
    from promlab.storage.store import ParquetStore

__all__ = ["apply_retention", "compact", "delete_block"]

log = logging.getLogger("promlab.storage")


def delete_block(blk: Block) -> None:
    """Remove a block directory: rename it out of sight first, then delete it."""
    parent, name = os.path.split(blk.path)
    trash = os.path.join(parent, f".deleted-{name}")
    try:
        os.rename(blk.path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def compact(store: ParquetStore, blocks: Sequence[Block], *, head_mint: int | None) -> list[str]:
    """Merge each complete window's blocks; returns the new block directories."""
    width = store.max_block_duration
    windows: dict[int, list[Block]] = defaultdict(list)
    for blk in blocks:
        w = blk.meta.start // width
        if (blk.meta.end - 1) // width != w:
            continue  # spans windows (max_block_duration changed): leave it alone
        windows[w].append(blk)
    made = []
    for w, group in sorted(windows.items()):
        end = (w + 1) * width
        if len(group) < 2 or (head_mint is not None and end > head_mint):
            continue
        made.append(merge_blocks(store, group, start=w * width, end=end))
    return made


def merge_blocks(store: ParquetStore, group: Sequence[Block], *, start: int, end: int) -> str:
    """Write the union of ``group`` as one block over ``[start, end)`` and delete the sources."""
    group = sorted(group, key=lambda b: (b.meta.seq, b.meta.ulid))
    sid_parts, ts_parts, v_parts = [], [], []
    labels_by_sid: dict[int, Labels] = {}
    for blk in group:
        rows, ts, vals = blk.read_all()
        sid_parts.append(blk.sids[rows])  # contiguous runs per series
        ts_parts.append(ts)
        v_parts.append(vals)
        for i, sid in enumerate(blk.sids.tolist()):
            if sid not in labels_by_sid:
                labels_by_sid[sid] = blk.labels_at(i)
    uniq = np.unique(np.concatenate([b.sids for b in group]))
    g, t, v = merge_parts([(np.searchsorted(uniq, s), t, v)
                           for s, t, v in zip(sid_parts, ts_parts, v_parts, strict=True)])
    labels = [labels_by_sid[int(s)] for s in uniq.tolist()]
    meta = write_block(store.blocks_dir, labels, uniq, g, t, v, start=start, end=end,
                       seq=max(b.meta.seq for b in group),
                       level=max(b.meta.level for b in group) + 1,
                       sources=[b.meta.ulid for b in group], bucket_ms=store.bucket_duration)
    for blk in group:
        delete_block(blk)
    log.info("compacted %d blocks into %s", len(group), meta.dirname)
    return os.path.join(store.blocks_dir, meta.dirname)


def apply_retention(store: ParquetStore, blocks: Sequence[Block], *,
                    head_maxt: int | None) -> list[str]:
    """Delete blocks past ``retention_time`` or, oldest first, beyond ``retention_size``."""
    deleted: list[str] = []
    live = sorted(blocks, key=lambda b: (b.meta.maxt, b.meta.seq))
    if store.retention_time is not None and live:
        newest = max([b.meta.maxt for b in live] + ([head_maxt] if head_maxt is not None else []))
        limit = newest - store.retention_time
        for blk in [b for b in live if b.meta.maxt < limit]:
            delete_block(blk)
            deleted.append(blk.path)
        live = [b for b in live if b.meta.maxt >= limit]
    if store.retention_size is not None and live:
        sizes = [b.size_bytes() for b in live]
        total = sum(sizes) + _dir_size(store.wal_dir)
        for blk, size in zip(list(live), sizes, strict=True):
            if total <= store.retention_size:
                break
            delete_block(blk)
            deleted.append(blk.path)
            total -= size
    for path in deleted:
        log.info("retention deleted block %s", os.path.basename(path))
    return deleted


def _dir_size(path: str) -> int:
    try:
        return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))
    except FileNotFoundError:
        return 0
