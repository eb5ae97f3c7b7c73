"""Bulk backfill: imported history written straight to blocks, bypassing the WAL and the head.

Like ``promtool tsdb create-blocks-from``, a bulk import of data older than everything in the
head does not need the write-ahead log (nothing is lost that the input file does not still hold)
nor the head (the data is complete, not still arriving). :class:`Backfill` buffers the imported
columns and, at :meth:`Backfill.finish` (or when the buffer exceeds ``max_samples``), sorts them
once and writes one block per ``max_block_duration`` window — the size compaction would produce —
so nothing has to be flushed or compacted afterwards.

Semantics match appending and committing the same batches: the out-of-order window applies in
append order (per series, against the latest sample before it), equal ``(series, timestamp)``
keep the last write (with ``block_order_ms``, promtool's rule instead:
:mod:`promlab.storage.blockorder`), and a new block gets a higher ``seq`` than every block already on disk, so it
wins over older data on overlap. A batch that reaches into the head's time range is refused
(``add`` returns ``None``) and should go through an appender instead. Data buffered but not yet
written is neither durable nor visible.

A *staged* backfill (``staged=True``, what a file import uses) writes its blocks into a hidden
``blocks/.tmp-import-*`` directory and publishes them (a rename each) only in :meth:`finish`;
:meth:`abort` deletes them, so a failed import leaves nothing behind (and a crashed one leaves a
``.tmp-`` directory the store removes when it next opens).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError
from promlab.model import Labels
from promlab.storage.accept import NO_TS, latest_before
from promlab.storage.blockorder import block_order_filter
from promlab.storage.blocks import BlockMeta
from promlab.storage.interface import AppendStats
from promlab.storage.merge import sort_dedup
from promlab.storage.objectstore import BlockFS
from promlab.storage.wal import fsync_path

__all__ = ["Backfill", "BackfillTarget", "check_order"]

log = logging.getLogger("promlab.storage")


class BackfillTarget(Protocol):
    """What a backfill needs of the store (:class:`~promlab.storage.ParquetStore`).

    Declared here, below the store, so the store imports this module and not the reverse.
    """

    blocks_dir: str

    @property
    def fs(self) -> BlockFS: ...
    @property
    def ooo_window_ms(self) -> int | None: ...
    @property
    def auto_compact(self) -> bool: ...

    def head_mint(self) -> int | None:
        """Oldest timestamp in the head, or None when the head is empty."""
        ...

    def write_history(self, labels: Sequence[Labels], sids: npt.NDArray[np.int64],
                      refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                      vals: npt.NDArray[np.float64],
                      on_block: Callable[[BlockMeta], object], blocks_dir: str | None = None) -> None:
        """Write samples sorted by (ref, ts) straight to blocks; ``on_block`` sees each one.

        ``blocks_dir`` overrides where the blocks go (a staging directory).
        """
        ...

    def compact_and_retain(self) -> None:
        """Compact complete windows and apply retention."""
        ...


class Backfill:
    """Buffers batches older than the head and writes them as blocks (see the module docstring).

    Parameters
    ----------
    store
        The writable store.
    max_samples
        Write blocks whenever this many samples are buffered (bounds memory: ~24 bytes each,
        about three times that while writing). Overlapping blocks of one window are merged by
        the next compaction.
    staged
        Write blocks to a staging directory and publish them only in :meth:`finish` (see the
        module docstring).
    block_order_ms
        Check the order as ``promtool tsdb create-blocks-from`` does
        (:mod:`promlab.storage.blockorder`): per series within each aligned range of this
        length, in append order, the first write winning; checked when the buffer is written,
        so :meth:`add` counts no refusals and :meth:`settle` tells them. ``None``: per series
        across all time, at :meth:`add` (last write wins), as appending would.
    appender_batch
        With ``block_order_ms``: promtool's commit size (5000), to find the sample its appender
        refuses (:attr:`refusal`: labels, timestamp and promtool's reason), which fails
        promtool's whole import. ``0``: not looked for.
    """

    def __init__(self, store: BackfillTarget, *, max_samples: int = 40_000_000,
                 staged: bool = False, block_order_ms: int | None = None,
                 appender_batch: int = 0) -> None:
        self._store = store
        self._block_order_ms = block_order_ms
        self._batch = appender_batch
        self._seen: dict[int, int] = {}  # samples per block range written so far
        self.refusal: tuple[Labels, int, str] | None = None
        self._drop_before: int | None = None
        self.refused = AppendStats()  # block_order_ms: what the written buffers refused
        self._max = max_samples
        self._staging: str | None = (
            os.path.join(store.fs.staging_root(store.blocks_dir), f".tmp-import-{uuid.uuid4().hex}")
            if staged else None)
        self._labels: list[Labels] = []  # the backfill's own series refs
        self._ref: dict[Labels, int] = {}
        self._mapped: Sequence[Labels] | None = None  # the caller's list mapped last
        self._map = np.zeros(0, np.int64)  # its indices -> own refs
        self._latest = np.zeros(0, np.int64)
        self._parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                npt.NDArray[np.float64]]] = []
        self._buffered = 0
        self.blocks_written: list[str] = []

    def add(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
            ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> AppendStats | None:
        """Buffer one batch (same arguments as ``Appender.append_batch``).

        Returns what a commit of the batch would report, or ``None`` (nothing buffered) when
        the batch reaches the head's time range. ``series`` should be the same growing list
        for every call (a parser's ``series``); another list writes out what is buffered first.
        """
        idx = np.asarray(index, np.int64)
        ts = np.asarray(ts_ms, np.int64)
        vals = np.asarray(values, np.float64)
        if not idx.shape == ts.shape == vals.shape or idx.ndim != 1:
            raise StorageError("backfill: index, ts_ms and values must be 1-d of equal length")
        stats = AppendStats()
        if idx.shape[0] == 0:
            return stats
        if int(idx.min()) < 0 or int(idx.max()) >= len(series):
            raise StorageError("backfill: index out of range of series")
        st = self._store
        head_mint = st.head_mint()
        if head_mint is not None and int(ts.max()) >= head_mint:
            return None
        idx = self._local(series)[idx]
        if self._block_order_ms is not None:
            self._buffer(idx, ts, vals)
            stats.appended = int(idx.shape[0])
            return stats
        # Counted as the head counts (storage.accept): refusals only. A sample older than the
        # store's out-of-order window allows is refused as out of order (promtool's backfill
        # drops such lines too); one inside it is sorted in; a repeated timestamp counts as a
        # duplicate (within the import the last write wins).
        ok, _, stats.duplicates = check_order(idx, ts, self._latest, st.ooo_window_ms,
                                              update=True)
        if not ok.all():
            stats.out_of_order = int((~ok).sum())
            idx, ts, vals = idx[ok], ts[ok], vals[ok]
        self._buffer(idx, ts, vals)
        stats.appended = int(idx.shape[0])
        return stats

    def _buffer(self, idx: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                vals: npt.NDArray[np.float64]) -> None:
        if idx.shape[0]:
            self._parts.append((idx, ts, vals))
            self._buffered += idx.shape[0]
        if self._buffered >= self._max:
            self._write()

    def _local(self, series: Sequence[Labels]) -> npt.NDArray[np.int64]:
        """Own refs of ``series`` (for the list mapped last, only its new tail is looked up)."""
        if series is not self._mapped:
            self._mapped, self._map = series, np.zeros(0, np.int64)
        k = self._map.shape[0]
        if len(series) > k:
            new = []
            for ls in series[k:]:
                if not isinstance(ls, Labels):
                    ls = Labels(ls)
                r = self._ref.get(ls)
                if r is None:
                    r = self._ref[ls] = len(self._labels)
                    self._labels.append(ls)
                new.append(r)
            self._map = np.concatenate([self._map, np.array(new, np.int64)])
            self._latest = np.concatenate(
                [self._latest, np.full(len(self._labels) - self._latest.shape[0], NO_TS)])
        return self._map

    def settle(self, drop_before_ms: int | None = None) -> AppendStats:
        """Write what is buffered (staged blocks stay unpublished) and return the refusals
        counted when writing (``block_order_ms``; ``appended`` is negative: to be taken off
        what :meth:`add` reported). Buffered samples before ``drop_before_ms`` are dropped
        (counted out of bounds)."""
        self._drop_before = drop_before_ms
        self._write()
        return self.refused

    def finish(self) -> list[str]:
        """Write everything buffered as blocks, compact and apply retention; returns new block dirs."""
        self._write()
        st = self._store
        if self._staging is not None:
            self._publish()
        if self.blocks_written and st.auto_compact:
            st.compact_and_retain()
        out, self.blocks_written = self.blocks_written, []
        return out

    def abort(self) -> None:
        """Drop what is buffered and, when staged, every block written so far."""
        self._parts, self._buffered, self.blocks_written = [], 0, []
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    def _publish(self) -> None:
        """Move the staged blocks into the store (one rename each), then drop the staging dir."""
        assert self._staging is not None
        if not os.path.isdir(self._staging):
            return
        fs = self._store.fs
        for name in self.blocks_written:  # over object storage: uploaded, meta.json last
            fs.publish(os.path.join(self._staging, name), fs.join(self._store.blocks_dir, name))
        if not fs.remote:
            fsync_path(self._store.blocks_dir)
        shutil.rmtree(self._staging, ignore_errors=True)

    def _write(self) -> None:
        if not self._parts:
            return
        parts, self._parts, self._buffered = self._parts, [], 0
        series = self._labels
        if len(parts) == 1:
            refs, ts, vals = parts[0]
        else:
            refs = np.concatenate([p[0] for p in parts])
            ts = np.concatenate([p[1] for p in parts])
            vals = np.concatenate([p[2] for p in parts])
        del parts
        if self._drop_before is not None and int(ts.min()) < self._drop_before:
            early = ts < self._drop_before
            self.refused.out_of_bounds += int(early.sum())
            self.refused.appended -= int(early.sum())
            refs, ts, vals = refs[~early], ts[~early], vals[~early]
            if not refs.shape[0]:
                return
        if self._block_order_ms is not None:
            res = block_order_filter(refs, ts, self._block_order_ms, self._latest,
                                     self._store.ooo_window_ms, values=vals, batch=self._batch,
                                     seen=self._seen)
            if res.refusal is not None and self.refusal is None:
                i, why = res.refusal
                self.refusal = (series[int(refs[i])], int(ts[i]), why)
            if not res.keep.all():
                refs, ts, vals = refs[res.keep], ts[res.keep], vals[res.keep]
            self.refused.out_of_order += res.out_of_order
            self.refused.duplicates += res.duplicates
            self.refused.appended -= int((~res.keep).sum())
        refs, ts, vals = sort_dedup(refs, ts, vals)
        sids = np.fromiter((ls.hash for ls in series), np.int64, len(series))
        if self._staging is not None:
            os.makedirs(self._staging, exist_ok=True)
        self._store.write_history(series, sids, refs, ts, vals, self._wrote, blocks_dir=self._staging)

    def _wrote(self, meta: BlockMeta) -> None:
        self.blocks_written.append(meta.dirname)
        log.info("backfill wrote block %s (%d samples)", meta.dirname, meta.num_samples)


def check_order(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                latest: npt.NDArray[np.int64], ooo_ms: int | None, *, update: bool = False
                ) -> tuple[npt.NDArray[np.bool_], int, int]:
    """Which samples are within ``ooo_ms`` of their series' latest so far, and counts.

    The backfill's (import's) order check; the head's own acceptance is Prometheus's
    (:mod:`promlab.storage.accept`, :meth:`Head.accept`).

    "So far" is in append order: ``latest[ref]`` (the stored latest sample) and the batch's
    earlier samples of the same series. In-order samples are therefore always accepted;
    ``ooo_ms=None`` accepts everything.

    Returns ``(ok, out_of_order, duplicates)``: among the accepted samples, how many are older
    than their series' latest so far (merged on read) and how many have exactly its timestamp
    (they overwrite it: last write wins). With ``update``, ``latest`` is raised in place to
    include the accepted samples.
    """
    n = refs.shape[0]
    if n == 0:
        return np.zeros(0, bool), 0, 0
    # The latest before each sample: the stored one, and the batch's earlier ones.
    order, r, t, first, running, before = latest_before(refs, ts, latest)
    ok_sorted = (np.ones(n, bool) if ooo_ms is None
                 else t >= np.maximum(before, t) - np.int64(ooo_ms))
    n_ooo = int((ok_sorted & (t < before)).sum())
    n_dup = int((ok_sorted & (t == before)).sum())
    if update:
        # A refused sample is never its group's maximum (it is older than an earlier one).
        last = np.flatnonzero(np.append(first[1:], True))
        latest[r[last]] = np.maximum(latest[r[last]], running[last])
    if order is None:
        return ok_sorted, n_ooo, n_dup
    ok = np.empty(n, bool)
    ok[order] = ok_sorted
    return ok, n_ooo, n_dup
