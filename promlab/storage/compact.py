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
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab import progress as _progress
from promlab.errors import StorageError
from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.storage.blocks import Block
from promlab.storage.encoding import decode_values
from promlab.storage.merge import gather_runs, merge_parts, runs_order
from promlab.storage.objectstore import BlockFS
from promlab.storage.writer import BlockWriter

__all__ = ["CompactTarget", "apply_retention", "compact", "delete_block"]

log = logging.getLogger("promlab.storage")

_EMPTY = np.zeros(0, np.int64)


class CompactTarget(Protocol):
    """What compaction and retention need of the store (:class:`~promlab.storage.ParquetStore`).

    Declared here, below the store, so the store imports this module and not the reverse.
    """

    @property
    def blocks_dir(self) -> str: ...
    @property
    def wal_dir(self) -> str: ...
    @property
    def max_block_duration_ms(self) -> int: ...
    @property
    def bucket_duration_ms(self) -> int: ...
    @property
    def retention_time_ms(self) -> int | None: ...
    @property
    def retention_bytes(self) -> int | None: ...
    @property
    def progress(self) -> bool: ...
    @property
    def fs(self) -> BlockFS: ...


def delete_block(blk: Block) -> None:
    """Remove a block directory: out of sight first (renamed; over object storage its
    ``meta.json`` deleted), then deleted."""
    blk.fs.remove_block(blk.path)


def compact(store: CompactTarget, blocks: Sequence[Block], *, head_mint: int | None) -> list[str]:
    """Merge each complete window's blocks; returns the new block directories."""
    width = store.max_block_duration_ms
    windows: dict[int, list[Block]] = defaultdict(list)
    for blk in blocks:
        w = blk.meta.start // width
        if (blk.meta.end - 1) // width != w:
            continue  # spans windows (max_block_duration changed): leave it alone
        windows[w].append(blk)
    todo = [(w, group) for w, group in sorted(windows.items())
            if len(group) >= 2 and (head_mint is None or (w + 1) * width <= head_mint)]
    progress = store.progress
    return [merge_blocks(store, group, start=w * width, end=(w + 1) * width)
            for w, group in _progress.iterate(progress, todo, desc="compacting", unit="window")]


#: ``drop(labels, group, ts)``: which samples of one metric to leave out (series delete).
DropFn = Callable[[Sequence[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64]],
                  npt.NDArray[np.bool_]]


def merge_blocks(store: CompactTarget, group: Sequence[Block], *, start: int, end: int,
                 drop: DropFn | None = None, level: int | None = None) -> str:
    """Write the union of ``group`` as one block over ``[start, end)`` and delete the sources.

    ``drop`` leaves samples out (:func:`promlab.storage.admin.delete_series`); when none are
    left the sources are deleted and no block is written (returns ``""``). ``level``: the new
    block's compaction level (default: one above the sources').

    Streams metric by metric: every source block is sorted by metric first, so each is read
    forward once, one row group at a time, and each metric's merged samples are handed to a
    :class:`~promlab.storage.writer.BlockWriter`, which writes whole row groups as they fill.

    Peak memory is bounded by the largest metric in the window, not by the window: about
    50 B per sample of that metric (its decoded parts, then their merge, then the writer's
    reordered and encoded copy; measured with tracemalloc), plus one decoded row group per source
    block and under two pending row groups in the writer (128 Ki rows each, ~40 B per row), plus
    the labels and series tables (per series and chunk, small).
    """
    group = sorted(group, key=lambda b: (b.meta.seq, b.meta.ulid))
    labels_by_sid: dict[int, Labels] = {}
    codes: list[npt.NDArray[np.int64]] = []
    names: set[str] = set()
    for blk in group:
        idx = blk.index()
        _, first = np.unique(blk.sids, return_index=True)
        for i in first.tolist():
            sid = int(blk.sids[i])
            if sid not in labels_by_sid:
                labels_by_sid[sid] = blk.labels_at(i)
        col = idx.columns.get("__name__")
        if col is None:
            names.add("")
        else:
            names.update(col.uniques)
            if bool((col.codes < 0).any()):
                names.add("")
    name_dict = sorted(names)
    pos = {n: i for i, n in enumerate(name_dict)}
    for blk in group:
        col = blk.index().columns.get("__name__")
        if col is None:
            codes.append(np.full(blk.sids.shape[0], pos.get("", 0), np.int64))
        else:
            remap = np.array([pos[u] for u in col.uniques] + [pos.get("", 0)], np.int64)
            codes.append(remap[col.codes.astype(np.int64)])  # code -1 picks the last: ""
    bucket = store.bucket_duration_ms
    writer = BlockWriter(store.blocks_dir, name_dict, start=start, end=end, bucket_ms=bucket,
                         fs=store.fs)
    kept = 0
    try:
        cursors = [_Cursor(blk) for blk in group]
        # Each block's chunk rows grouped by metric code (stable: row order kept inside).
        orders = [np.argsort(c, kind="stable") for c in codes]
        bounds = [np.searchsorted(c[o], np.arange(len(name_dict) + 1)) for c, o in
                  zip(codes, orders, strict=True)]
        for code in _progress.iterate(store.progress, range(len(name_dict)),
                                      desc="merging metrics", unit="metric"):
            sels = [o[bd[code]:bd[code + 1]] for o, bd in zip(orders, bounds, strict=True)]
            # The metric's series come from the series tables: no per-sample id arrays.
            uniq = unique(np.concatenate([blk.sids[sel] for blk, sel in
                                             zip(group, sels, strict=True)]))
            if uniq.shape[0] == 0:
                continue
            parts = []
            for blk, cur, sel in zip(group, cursors, sels, strict=True):
                if sel.shape[0]:
                    counts, ts, vals = cur.take(sel)
                    parts.append([np.repeat(np.searchsorted(uniq, blk.sids[sel]), counts), ts, vals])
            metric_labels = [labels_by_sid[s] for s in uniq.tolist()]
            k, t, v = _merge_consuming(parts)
            if drop is not None:
                keep = ~drop(metric_labels, k, t)
                k, t, v = k[keep], t[keep], v[keep]
                kept += int(t.shape[0])
            merged: list[npt.NDArray[Any]] = [k, t, v]
            del k, t, v
            writer.add_owned(metric_labels, uniq, merged)
        if drop is not None and not kept:
            writer.abort()
            for blk in group:
                delete_block(blk)
            return ""
        meta = writer.finish(seq=max(b.meta.seq for b in group),
                             level=level if level is not None else
                             max(b.meta.level for b in group) + 1,
                             sources=[b.meta.ulid for b in group])
    except BaseException:
        writer.abort()
        raise
    for blk in group:
        delete_block(blk)
    log.info("compacted %d blocks into %s", len(group), meta.dirname)
    return store.fs.join(store.blocks_dir, meta.dirname)


def _merge_consuming(parts: list[list[npt.NDArray[Any]]]
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """:func:`merge_parts` of ``[key, ts, value]`` parts (oldest first), emptying ``parts``.

    When the parts do not overlap in time (the usual case: consecutive blocks) each input array
    is dropped as soon as it is copied, so the peak is ~2 copies of the metric, not ~4.
    """
    spans = sorted((int(p[1].min()), int(p[1].max()), i) for i, p in enumerate(parts)
                   if p[1].shape[0])
    if len(spans) != len(parts) or any(spans[k][1] >= spans[k + 1][0]
                                       for k in range(len(spans) - 1)):
        tuples = [(p[0], p[1], p[2]) for p in parts]
        parts.clear()
        return merge_parts(tuples)
    ordered = [parts[i] for _, _, i in spans]
    parts.clear()
    cols = []
    for j in range(3):
        cols.append(np.concatenate([p[j] for p in ordered]))
        for p in ordered:
            p[j] = _EMPTY
    k, t, v = cols
    del cols, ordered
    perm = runs_order(k)
    if perm is not None:
        k = k[perm]
        t = t[perm]
        v = v[perm]
    return k, t, v


class _Cursor:
    """Reads one block's samples forward, a row group at a time, keeping only the unread tail."""

    def __init__(self, blk: Block) -> None:
        self.blk = blk
        self.rg_rows = blk.row_group_rows()
        self.next_rg = 0
        self.buf: pa.Table | None = None
        self.buf_lo = 0  # sample row of the buffer's first row
        self.buf_hi = 0

    def take(self, sel: npt.NDArray[np.int64]
             ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """The samples of chunk rows ``sel`` (ascending, after those taken before).

        Returns the rows per chunk of ``sel``, then the timestamps and values.
        """
        blk = self.blk
        every = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        starts, counts, _ = blk.pieces(sel, *every)  # format 6: a chunk's pieces
        lo, hi = int(starts.min()), int((starts + counts).max())
        if lo < self.buf_lo:  # not forward (never for blocks written by promlab): random access
            _, ts, vals = blk.read_rows(sel, *every)
            return blk.row_count[sel], ts, vals
        cols = ["timestamp", "value", "value_int", "scale"]
        tables = [] if self.buf is None else [self.buf]
        while self.buf_hi < hi:
            try:
                tables.append(blk.read_row_group(self.next_rg, cols))
            except (OSError, pa.ArrowException) as exc:
                raise StorageError(f"block {blk.path}: unreadable samples: {exc}") from exc
            self.buf_hi += self.rg_rows[self.next_rg]
            self.next_rg += 1
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        table = table.slice(lo - self.buf_lo, hi - lo)
        rest = self.buf_hi - hi
        self.buf = None if rest == 0 else (tables[-1].slice(tables[-1].num_rows - rest)
                                           if rest <= tables[-1].num_rows
                                           else pa.concat_tables(tables).slice(hi - self.buf_lo))
        self.buf_lo = hi
        ts = table["timestamp"].cast(pa.int64()).to_numpy()
        idx = None
        if int(counts.sum()) != hi - lo or not bool((starts[1:] > starts[:-1]).all()):
            idx = gather_runs(starts - lo, counts)  # not the whole range, in order: pick rows
            ts = ts[idx]
        elif not ts.flags.owndata:
            ts = np.array(ts)  # detach from the Arrow buffer
        vals = decode_values(table["value"], table["value_int"], table["scale"], idx)
        return blk.row_count[sel], ts, vals


def apply_retention(store: CompactTarget, blocks: Sequence[Block], *,
                    head_maxt: int | None) -> list[str]:
    """Delete blocks past ``retention_time`` or, oldest first, beyond ``retention_size``."""
    deleted: list[str] = []
    live = sorted(blocks, key=lambda b: (b.meta.maxt, b.meta.seq))
    if store.retention_time_ms is not None and live:
        newest = max([b.meta.maxt for b in live] + ([head_maxt] if head_maxt is not None else []))
        limit = newest - store.retention_time_ms
        for blk in [b for b in live if b.meta.maxt < limit]:
            delete_block(blk)
            deleted.append(blk.path)
        live = [b for b in live if b.meta.maxt >= limit]
    if store.retention_bytes is not None and live:
        sizes = [b.size_bytes() for b in live]
        total = sum(sizes) + _dir_size(store.wal_dir)
        for blk, size in zip(list(live), sizes, strict=True):
            if total <= store.retention_bytes:
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
