"""The persistent store: WAL + head + Parquet blocks in one directory.

See ``docs/storage.md`` for the layout, the schema and the policies.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from promlab import progress as _progress
from promlab.errors import BadData, StorageError
from promlab.model import Labels
from promlab.model.time import DurationLike, SizeLike, parse_duration, parse_size
from promlab.storage import histstore as _hist
from promlab.storage import objectstore as _obj
from promlab.storage.appender import Batch, ParquetAppender
from promlab.storage.backfill import Backfill
from promlab.storage.blocklist import list_blocks, recent_span, skipped
from promlab.storage.blocks import Block, BlockMeta
from promlab.storage.cache import DecodedCache, default_cache_bytes
from promlab.storage.commit import take, take_histograms
from promlab.storage.exemplars import DEFAULT_MAX_EXEMPLARS
from promlab.storage.exfollow import follow_exemplars
from promlab.storage.exwal import open_exemplar_wal
from promlab.storage.head import Head, RefCache
from promlab.storage.histstore import HistogramBatch, HistogramHead, HistogramQuerier
from promlab.storage.histwal import FILE_NAME as HIST_WAL_FILE
from promlab.storage.histwal import HistogramWal
from promlab.storage.interface import AppendStats
from promlab.storage.maintenance import StoreMaintenance
from promlab.storage.querier import ParquetQuerier
from promlab.storage.wal import (
    SamplesRecord,
    SeriesRecord,
    WalFollower,
    WalLosses,
    WalWriter,
    encode_samples,
    encode_series,
)
from promlab.storage.walwatch import WalWatch
from promlab.storage.writer import write_windows

__all__ = ["ParquetAppender", "ParquetStore", "open_store"]

log = logging.getLogger("promlab.storage")

LOCK_FILE = "lock"


def _ms(value: DurationLike | None, what: str) -> int | None:
    """A store option in ms; a bare number is seconds (the public convention)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BadData(f"bad {what}: {value!r}: {exc}") from exc


def _bytes(value: SizeLike | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise BadData(f"bad {what}: {value!r} (use bytes or a size such as 512MB, 2GiB): {exc}") from exc


def open_store(path: str | os.PathLike[str], *, readonly: bool = False,
               retention_time: DurationLike | None = None, retention_size: SizeLike | None = None,
               ooo_window: DurationLike | None = 0, block_duration: DurationLike = "2h",
               max_block_duration: DurationLike = "24h", bucket_duration: DurationLike = "1h",
               wal_fsync: bool = True, max_exemplars: int = DEFAULT_MAX_EXEMPLARS,
               wal_segment_bytes: int = 64 << 20, auto_compact: bool = True,
               cache_size: SizeLike | None = None, progress: bool | None = None,
               storage_options: dict[str, Any] | None = None,
               local_dir: str | os.PathLike[str] | None = None) -> ParquetStore:
    """Open (creating if needed) the store in directory ``path``.

    Parameters
    ----------
    path
        The data directory, or an fsspec URL (``s3://bucket/prefix``) where the blocks live
        (see :mod:`promlab.storage.objectstore`).
    readonly
        Open as a follower: blocks plus the WAL's recent samples, refreshed at every
        :meth:`ParquetStore.querier`, and the writer's exemplars (:mod:`.exfollow`, refreshed
        at every read); writing raises :class:`~promlab.errors.StorageError`.
    retention_time, retention_size
        Delete whole blocks older than this (``"15d"``) / beyond this total size (``"10GB"``).
        Durations here and below are ``"1h"``-style strings, timedeltas or numbers of seconds;
        sizes are ``"512MB"``-style strings (powers of 1024) or ints of bytes.
    ooo_window
        Prometheus's ``out_of_order_time_window``: samples older than their series' latest are
        taken (merged on read) back to this long before the head's newest sample; the default,
        0, is Prometheus's: they are refused. None takes any timestamp (backfilling history
        into a live store). The other rules are Prometheus's too (:mod:`.accept`): a sample
        before the head's minimum valid time (its newest sample minus half ``block_duration``)
        is refused for any series, and at a series' latest timestamp the first write wins
        (a Session with a config sets it to ``storage.tsdb.out_of_order_time_window``).
    block_duration
        Range of the blocks the head is flushed into; the head is flushed once it spans 1.5×.
    max_block_duration
        Compaction merges blocks into aligned ranges of this length.
    bucket_duration
        Inside a block, rows are grouped by time buckets this long (after the metric name), so
        a short query reads only its buckets' row groups; shorter costs a little size.
    wal_fsync
        fsync the WAL at every commit (the durability guarantee); False is faster.
    max_exemplars
        Size of the exemplar storage a writer replays its exemplar WAL into (:mod:`.exwal`;
        ``prometheus.yml``'s ``storage.exemplars`` resizes it), or a read-only store mirrors.
    auto_compact
        Compact and apply retention after every flush.
    cache_size
        Memory budget of the decoded-block cache (``"512MB"``, bytes, 0 to disable); default
        1 GiB or a quarter of physical memory, whichever is smaller. Repeated queries over
        blocks read their decoded columns from it instead of the Parquet files.
    progress
        Show ``tqdm`` progress bars (stderr, after a second) for the WAL replay on opening,
        flushes, compactions and backfill writes; None uses :data:`promlab.progress.DEFAULT`
        (False: library calls are quiet; the CLI and notebooks pass True).
    storage_options
        For a URL ``path``: the fsspec filesystem's options (``s3fs``: ``key``, ``secret``,
        ``endpoint_url``, ``client_kwargs``, ...); the environment (``AWS_*``) works too.
    local_dir
        For a URL ``path``: the local directory of the WAL, the writer's lock and the upload
        staging area (blocks and native histogram files are written there, then uploaded); default
        :func:`~promlab.storage.objectstore.default_local_dir` of the URL.

    Examples
    --------
    >>> import tempfile
    >>> from promlab.model import Labels, Matcher
    >>> with open_store(tempfile.mkdtemp()) as st:
    ...     app = st.appender(); app.append(Labels({"__name__": "up"}), 1000, 1.0)
    ...     app.commit().appended
    1
    """
    return ParquetStore(os.fspath(path), readonly=readonly, retention_time_ms=_ms(retention_time, "retention_time"),
                        retention_bytes=_bytes(retention_size, "retention size"),
                        ooo_window_ms=_ms(ooo_window, "ooo_window"),
                        block_duration_ms=_ms(block_duration, "block_duration") or 7_200_000,
                        max_block_duration_ms=_ms(max_block_duration, "max_block_duration") or 86_400_000,
                        bucket_duration_ms=_ms(bucket_duration, "bucket_duration") or 3_600_000,
                        wal_fsync=wal_fsync, wal_segment_bytes=wal_segment_bytes, max_exemplars=max_exemplars,
                        auto_compact=auto_compact, progress=_progress.enabled(progress),
                        cache_bytes=default_cache_bytes() if cache_size is None
                        else _bytes(cache_size, "cache size"),
                        storage_options=storage_options,
                        local_dir=None if local_dir is None else os.fspath(local_dir))


class ParquetStore(StoreMaintenance):
    """A directory store implementing :class:`~promlab.storage.interface.Storage`.

    Thread-safe: appenders may commit from several threads; queriers see committed data.
    """

    def __init__(self, path: str, *, readonly: bool, retention_time_ms: int | None,
                 retention_bytes: int | None, ooo_window_ms: int | None, block_duration_ms: int,
                 max_block_duration_ms: int, bucket_duration_ms: int, wal_fsync: bool, wal_segment_bytes: int,
                 auto_compact: bool, cache_bytes: int | None = None, progress: bool = False,
                 storage_options: dict[str, Any] | None = None, local_dir: str | None = None,
                 max_exemplars: int = DEFAULT_MAX_EXEMPLARS) -> None:
        self.path = path
        remote = _obj.is_url(path)
        if storage_options is not None and not remote:
            raise BadData(f"storage_options apply to stores at URLs, not {path!r}")
        #: Local: the data directory; at a URL: the WAL, lock and staging areas.
        self.local_dir = (local_dir or _obj.default_local_dir(path)) if remote else path
        self.fs: _obj.BlockFS = (_obj.open_fs(path, storage_options,
                                              staging_dir=os.path.join(self.local_dir, "staging"))
                                 if remote else _obj.LOCAL)
        self.progress = progress
        self.readonly = readonly
        self.retention_time_ms = retention_time_ms
        self.retention_bytes = retention_bytes
        self.ooo_window_ms = ooo_window_ms
        self.block_duration_ms = block_duration_ms
        self.max_block_duration_ms = max(max_block_duration_ms, block_duration_ms)
        self.bucket_duration_ms = bucket_duration_ms
        self.auto_compact = auto_compact
        self.blocks_dir = self.fs.join(path, "blocks")
        self.wal_dir = os.path.join(self.local_dir, "wal")
        # Native histogram files (histstore/histdir): beside the blocks (in the object store for
        # a URL), written in the local staging directory first.
        self.hist_dir = self.fs.join(path, "histograms")
        self.hist_staging = os.path.join(self.local_dir, "histograms")
        self._hhead = HistogramHead()
        self._lock = threading.RLock()
        self._block_cache: dict[str, Block] = {}
        self.cache = DecodedCache(default_cache_bytes() if cache_bytes is None else cache_bytes)
        self._bad_blocks: dict[str, str] = {}  # damaged block path -> reason
        self._head = Head()
        self._refs = RefCache()
        self._wal: WalWriter | None = None
        self._hwal: HistogramWal | None = None
        self._lock_fd = -1
        self._closed = False
        self._last_cut = -(1 << 62)  # the automatic flushes' last cut (see _maybe_flush)
        if readonly:
            if not (_obj.store_exists(self.fs, path) if remote else os.path.isdir(path)):
                raise StorageError(f"{path}: no such store directory")
            self._follower = WalFollower(self.wal_dir, repair=False)
            self._wal_watch = WalWatch(self.wal_dir)
            state = self._wal_watch.state()  # as a querier's poll: the first one reads the
            self._replay()                   # WAL again only when it changed since
            self._wal_watch.seen = state
            self._xfollow = follow_exemplars(self, self.wal_dir, max_exemplars=max_exemplars)
            # Open the newest blocks now (a first query, usually on recent data, does not pay
            # for it), as a writer's open does every block; older ones when a query reaches them.
            span = recent_span(self.fs, self.blocks_dir, self.max_block_duration_ms)
            if span is not None:
                self.blocks(span, cached=True)  # the listing just made
            return
        if remote:
            _obj.mark_store(self.fs, path)
        else:
            os.makedirs(self.blocks_dir, exist_ok=True)
        os.makedirs(self.wal_dir, exist_ok=True)
        self._take_lock()
        try:
            self._cleanup_tmp()
            self._follower = WalFollower(self.wal_dir, repair=True)
            self._replay()
            self._wal = WalWriter(self.wal_dir, start_segment=WalWriter.next_segment_number(self.wal_dir),
                                  fsync=wal_fsync, segment_bytes=wal_segment_bytes)
            if self._follower.needs_checkpoint:
                self._checkpoint()  # later opens no longer read the damaged WAL files
            self._hwal = HistogramWal(self.wal_dir, fsync=wal_fsync)
            self._xwal = open_exemplar_wal(self, self.wal_dir, fsync=wal_fsync, max_exemplars=max_exemplars)
            blocks = self.blocks()
            self._seq = max((b.meta.seq for b in blocks), default=0) + 1
            if remote:  # files an interrupted upload (or an older version) left local
                _hist.upload_local(self.hist_staging, self.hist_dir, self.fs)
            hist_files = _hist.list_files(self.hist_dir, self.fs)
            self._seq = max([self._seq, *(f[2] + 1 for f in hist_files)])
            self._open_floor([b.meta.maxt for b in blocks] + [f[1] for f in hist_files])
            self._maybe_flush()
        except BaseException:
            self._release_lock()
            raise

    # --- lifecycle --------------------------------------------------------------------------
    def _take_lock(self) -> None:
        fd = os.open(os.path.join(self.local_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StorageError(f"{self.path}: store is locked by another writer "
                               "(open it with readonly=True to read)") from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _cleanup_tmp(self) -> None:
        if isinstance(self.fs, _obj.ObjectStoreFS):
            shutil.rmtree(self.fs.staging_dir, ignore_errors=True)
            self.fs.cleanup(self.blocks_dir)
        for name in os.listdir(self.blocks_dir) if not self.fs.remote else ():
            if name.startswith((".tmp-", ".deleted-")):
                shutil.rmtree(os.path.join(self.blocks_dir, name), ignore_errors=True)
        for name in os.listdir(self.wal_dir):
            if name.endswith(".tmp"):
                os.unlink(os.path.join(self.wal_dir, name))

    def close(self) -> None:
        """Flush the head to blocks (writer), release the lock and file handles."""
        with self._lock:
            if self._closed:
                return
            try:
                if not self.readonly:
                    self.flush()
            finally:
                self._closed = True
                for wal in (self._wal, self._hwal, self._xwal, self._xfollow):
                    if wal is not None:
                        wal.close()
                if self.readonly:
                    self._wal_watch.close()
                for blk in self._block_cache.values():
                    blk.close()
                self._block_cache.clear()
                self.cache.clear()
                self._release_lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> ParquetStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_open(self, write: bool = False) -> None:
        if self._closed:
            raise StorageError(f"{self.path}: store is closed")
        if write and self.readonly:
            raise StorageError(f"{self.path}: store is open read-only")

    # --- reading ----------------------------------------------------------------------------
    def blocks(self, span: tuple[int, int] | None = None, *, cached: bool = False) -> list[Block]:
        """The complete blocks on disk (refreshed from the directory); with ``span``
        (``(mint, maxt)``), those whose range overlaps it only (the others are not opened).
        ``cached``: an object store's listing a moment old will do (what a query uses: see
        ``ObjectStoreFS.list_ttl_s``)."""
        listed: set[str] = set()
        blocks = list_blocks(self.blocks_dir, self._block_cache, self._bad_blocks,
                             quarantine=not self.readonly, fs=self.fs, span=span, seen=listed,
                             cached=cached)
        opened = {b.path for b in blocks}
        others = [p for p in self._block_cache if p not in opened]
        live = opened | skipped(listed, span) if others else opened  # cached blocks kept
        for p in [p for p in others if p not in live]:
            # Not closed here: a querier may still read it (its files stay readable after
            # deletion while open); it closes when garbage-collected.
            self.cache.evict_block(self._block_cache.pop(p).meta.ulid)
        return blocks

    def damaged_blocks(self) -> dict[str, str]:
        """Blocks found damaged (path -> reason): skipped by queries, quarantined by writers."""
        with self._lock:
            return dict(self._bad_blocks)

    def _replay(self) -> None:
        """The first WAL read on opening, with a progress bar over the WAL's bytes."""
        if not _progress.enabled(self.progress):
            self._refresh()  # no bar: tqdm is not even imported (~20 ms in a fresh process)
            return
        total = 0
        if self.progress and os.path.isdir(self.wal_dir):
            total = sum(e.stat().st_size for e in os.scandir(self.wal_dir) if e.is_file())
        with _progress.bar(self.progress, total=total, desc="replaying WAL", unit="B",
                           unit_scale=True, unit_divisor=1024) as bar:
            self._refresh(bar.update)

    def _refresh(self, on_read: Any = None) -> None:
        reset, records = self._follower.poll(on_read)
        if reset:
            self._head = Head()
            self._refs.clear()
        self._apply(records)
        self._load_histograms()

    def _load_histograms(self) -> None:
        """The histogram head from its WAL file (see :mod:`promlab.storage.histwal`)."""
        self._hhead, self._hist_losses = _hist.load_head(os.path.join(self.wal_dir, HIST_WAL_FILE))

    def _apply(self, records: Sequence[SeriesRecord | SamplesRecord]) -> None:
        for rec in records:
            if isinstance(rec, SeriesRecord):
                self._head.add_series(rec.series)
            else:
                self._head.apply_samples(rec.sids, rec.ts_ms, rec.values)

    def querier(self, mint_ms: int, maxt_ms: int) -> ParquetQuerier | HistogramQuerier:
        """A querier over ``[mint_ms, maxt_ms]`` of everything committed so far.

        A read-only store first reads what the writer logged since (its WAL is polled only
        when the WAL's files changed).
        """
        with self._lock:
            self._check_open()
            # A listing a moment old will do (object storage: each is a round trip), unless
            # the writer's WAL moved on: it may have dropped what a new block holds.
            cached = True
            if self.readonly:
                state = self._wal_watch.state()  # before the poll: a later change differs
                if self._wal_watch.changed(state):
                    self._refresh()
                    self._wal_watch.seen = state
                    # (no WAL here at all: a follower on another machine than the writer)
                    cached = state is None and not os.path.isdir(self.wal_dir)
            view = self._head.view()
            # Blocks are listed after the WAL was read: a block flushed meanwhile is seen.
            blocks = self.blocks((int(mint_ms), int(maxt_ms)), cached=cached)
        q = ParquetQuerier(int(mint_ms), int(maxt_ms), view, blocks, self.cache,
                           warnings=[f"damaged block skipped: {r}" for r in self._bad_blocks.values()])
        hist_files = _hist.list_files(self.hist_dir, self.fs, cached=True)
        if hist_files or self._hhead.has_samples():
            return HistogramQuerier(q, self._hhead, self.hist_dir, int(mint_ms), int(maxt_ms),
                                    cache=self.cache, fs=self.fs, files=hist_files)
        return q

    @property
    def head_samples(self) -> int:
        return self._head.num_samples

    # --- writing ----------------------------------------------------------------------------
    def appender(self) -> ParquetAppender:
        self._check_open(write=True)
        return ParquetAppender(self._commit)

    def _commit(self, batches: list[Batch], hists: HistogramBatch | None = None) -> AppendStats:
        stats = AppendStats()
        with self._lock:
            self._check_open(write=True)
            assert self._wal is not None
            head = self._seeded_head()  # before new series are registered: they take the seed
            new: list[tuple[int, Labels]] = []
            parts = []
            for series, key, index, ts, vals, units, atomic in batches:
                # Vectorised via the ref cache: Python only loops over series not seen before.
                r, added = self._refs.resolve(head, key, series, index)
                new.extend(added)
                bad = r < 0
                if bad.any():
                    stats.errors.append(f"{int(bad.sum())} samples of a series with no labels dropped")
                    ok = ~bad
                    r, index, ts, vals = r[ok], index[ok], ts[ok], vals[ok]
                    units = None if units is None else units[ok]
                parts.append((series, r, index, ts, vals, units, atomic))
            stats.new_series = len(new)
            if sum(int(p[1].shape[0]) for p in parts) == 0 and hists is None:
                if new:
                    self._wal.log(encode_series(new))
                return stats
            got = take(head, self._hhead, parts, hists, stats, block_ms=self.block_duration_ms,
                       floor=self._min_valid, ooo_ms=self.ooo_window_ms,
                       persisted_maxt=self._persisted_maxt)
            refs_a, ts_a, vals_a = got.refs, got.ts, got.vals
            # WAL before visibility: the head's new series have no samples until logged.
            # Refused samples are never logged, so a replay rebuilds exactly what was taken.
            records = []
            if new:
                records.append(encode_series(new))
            if ts_a.shape[0]:
                records.append(encode_samples(head.sids[refs_a], ts_a, vals_a))
            self._wal.log(*records)
            head.append(refs_a, ts_a, vals_a)
            stats.appended = int(ts_a.shape[0])
            if hists is not None:
                items = take_histograms(head, self._hhead, hists.items, got.hist_keep, stats,
                                        head_maxt=got.head_maxt, min_valid=got.min_valid,
                                        ooo_ms=self.ooo_window_ms)
                if items:  # logged and added after the floats
                    assert self._hwal is not None
                    self._hwal.log(_hist.encode_payload(items))
                    stats.new_series += self._hhead.add(items)
                    stats.appended += len(items)
            self._maybe_flush()
        return stats

    def backfill(self, *, max_samples: int = 40_000_000, staged: bool = False,
                 block_order_ms: int | None = None, appender_batch: int = 0) -> Backfill:
        """A bulk writer of history older than the head, straight to blocks (no WAL, no head).

        See :mod:`promlab.storage.backfill`; :func:`promlab.importer.import_file` uses it.
        """
        self._check_open(write=True)
        return Backfill(self, max_samples=max_samples, staged=staged, block_order_ms=block_order_ms,
                        appender_batch=appender_batch)

    def head_mint(self) -> int | None:
        """The head's oldest sample timestamp (None when empty); the store must be writable."""
        with self._lock:
            self._check_open(write=True)
            return self._head.mint

    def write_history(self, labels: Sequence[Labels], sids: npt.NDArray[np.int64],
                      refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                      vals: npt.NDArray[np.float64], on_block: Callable[[BlockMeta], object],
                      blocks_dir: str | None = None) -> None:
        """Write samples sorted by (ref, ts) straight to blocks, one per compaction window.

        For :class:`~promlab.storage.backfill.Backfill`; ``on_block`` is called after each block.
        ``blocks_dir``: write there instead (a staging directory the backfill publishes from).
        """
        with self._lock:
            self._check_open(write=True)
            for meta in write_windows(blocks_dir or self.blocks_dir, labels, sids, refs, ts, vals,
                                      width=self.max_block_duration_ms, seq=self._seq,
                                      bucket_ms=self.bucket_duration_ms, progress=self.progress,
                                      fs=self.fs if blocks_dir is None else _obj.LOCAL):
                self._seq += 1
                on_block(meta)

    @property
    def wal_losses(self) -> WalLosses:
        """What WAL damage cost when this store read its WAL (all zero when none was found)."""
        a, b = self._follower.losses, self._hist_losses  # the float WAL's and the histogram WAL's
        return WalLosses(**{k: v + getattr(b, k) for k, v in a.to_dict().items()})

    def stats(self) -> dict[str, Any]:
        """Sizes and counts, for benchmarks and the CLI."""
        with self._lock:
            blocks = self.blocks()
            return {"blocks": len(blocks),
                    "block_bytes": sum(b.size_bytes() for b in blocks),
                    "block_samples": sum(b.meta.num_samples for b in blocks),
                    "head_series": len(self._head), "head_samples": self._head.num_samples}
