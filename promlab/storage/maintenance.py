"""Flushing, compaction, retention and the admin operations of
:class:`~promlab.storage.store.ParquetStore`.

Split out of :mod:`promlab.storage.store` as a mixin: :class:`StoreMaintenance` holds the
methods that turn the head into blocks and keep the blocks compacted and within retention;
``ParquetStore`` inherits them and sets the attributes declared below in its constructor.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from promlab.model import Labels, Matcher
from promlab.storage import admin as _admin
from promlab.storage import compact as _compact
from promlab.storage import histstore as _hist
from promlab.storage.blocks import Block
from promlab.storage.cache import DecodedCache
from promlab.storage.commit import persisted_floor
from promlab.storage.exfollow import ExemplarFollower
from promlab.storage.exwal import ExemplarWal
from promlab.storage.head import Head
from promlab.storage.histstore import HistogramHead
from promlab.storage.histwal import HistogramWal
from promlab.storage.objectstore import BlockFS
from promlab.storage.seed import read_persisted
from promlab.storage.wal import WalWriter, encode_checkpoint
from promlab.storage.writer import write_windows

__all__ = ["StoreMaintenance"]


class StoreMaintenance:
    """The store's flush/compaction/retention driver and its ``snapshot``/``delete_series``.

    A mixin: every attribute below is set by :class:`~promlab.storage.store.ParquetStore`,
    which also provides :meth:`blocks` and :meth:`_check_open`. Callers hold no lock; the
    public methods take the store's.
    """

    path: str
    blocks_dir: str
    wal_dir: str
    hist_dir: str
    hist_staging: str
    fs: BlockFS
    cache: DecodedCache
    progress: bool
    auto_compact: bool
    block_duration_ms: int
    max_block_duration_ms: int
    bucket_duration_ms: int
    retention_time_ms: int | None
    retention_bytes: int | None
    _lock: threading.RLock
    _head: Head
    _hhead: HistogramHead
    _wal: WalWriter | None
    _hwal: HistogramWal | None
    _xwal: ExemplarWal | None = None  # set by a writer's open (see exwal's truncation rule)
    _xfollow: ExemplarFollower | None = None  # set by a read-only store's open
    _seq: int
    _last_cut: int
    ooo_window_ms: int | None
    _min_valid: int | None = None  # the head's floor (see commit.persisted_floor)
    _persisted_maxt: int | None = None  # a writer's newest persisted sample (see seed.py)
    _seed_pending = False  # the head's seed of persisted samples is to be read (_seeded_head)

    def blocks(self, span: tuple[int, int] | None = None) -> list[Block]:
        """The complete blocks on disk (the store's implementation)."""
        raise NotImplementedError

    def _check_open(self, write: bool = False) -> None:
        raise NotImplementedError

    def compact_and_retain(self) -> None:
        """Compact and apply retention as one step (what auto-compaction does after writes)."""
        with self._lock:
            self._compact()
            self._apply_retention()

    def _head_span(self) -> tuple[int | None, int | None]:
        """``(mint, maxt)`` over both heads (floats and native histograms); None when empty."""
        mint = min((t for t in (self._head.mint, self._hhead.mint) if t is not None), default=None)
        maxt = max((t for t in (self._head.maxt, self._hhead.maxt) if t is not None), default=None)
        return mint, maxt

    def _maybe_flush(self) -> None:
        # Over both heads: a store of only native histograms flushes like one of floats.
        mint, maxt = self._head_span()
        if mint is None or maxt is None:
            return
        bd = self.block_duration_ms
        if maxt - mint > bd * 3 // 2:
            cut = (maxt - bd // 2) // bd * bd
            # Only when the cut moved on since the last flush: a far-future or far-past sample
            # stretches the head's span for good, and flushing on every commit then (issue 15's
            # compaction storm) would gain nothing; stragglers below the cut go with the next one.
            if cut > mint and cut > self._last_cut:
                self._last_cut = cut
                # As Prometheus's head truncation raises its minimum valid time to the new head
                # start: samples before the cut are out of bounds from now on (unless the
                # out-of-order window takes them). An explicit flush() (or a snapshot, a
                # delete) writes the newest samples too, which Prometheus never persists while
                # running: it leaves the floor alone, and the next open sets it (store.py).
                self._min_valid = cut if self._min_valid is None else max(self._min_valid, cut)
                seed = self._head.seed
                if seed is not None and cut - (self.ooo_window_ms or 0) > seed.end:
                    self._head.set_seed(None)  # all of it out of bounds and beyond the window
                self._flush_before(cut)

    def flush(self) -> None:
        """Write everything in the head to blocks (then compact and apply retention)."""
        with self._lock:
            self._check_open(write=True)
            maxt = self._head_span()[1]
            if maxt is not None:
                # Everything goes: one block per compaction window, not per block_duration
                # (what compaction would make of them anyway, without writing them twice).
                self._flush_before(maxt + 1, self.max_block_duration_ms)
                # The head forgot its series' latest samples: read them back from the blocks
                # at the next commit, as after a reopen (the floor stays: see _maybe_flush).
                self._persisted_maxt = max(maxt, self._persisted_maxt or maxt)
                self._seed_pending = True

    def _open_floor(self, persisted_maxts: Sequence[int]) -> None:
        """A writer's open: the floor from the newest persisted sample (the blocks' and the
        histogram files' newest times), the head's seed read at the first commit."""
        self._persisted_maxt = max(persisted_maxts, default=None)
        self._min_valid = persisted_floor(self._persisted_maxt, self.block_duration_ms)
        self._seed_pending = self._persisted_maxt is not None

    def _seeded_head(self) -> Head:
        """The head, first given each series' latest persisted sample when that is pending (not
        in backfill mode, ``ooo_window=None``, which takes any sample)."""
        if self._seed_pending and self.ooo_window_ms is not None:
            self._seed_head()
        return self._head

    def _seed_head(self) -> None:
        """Give the head each series' latest persisted sample (:mod:`promlab.storage.seed`) of
        the last half block range (or out-of-order window, if longer) before the newest
        persisted sample: what Prometheus's head, replayed from its WAL, would still hold."""
        self._seed_pending = False
        end = self._persisted_maxt
        if end is None:
            return
        start = end - max(self.block_duration_ms // 2, self.ooo_window_ms or 0)
        hist_files = _hist.list_files(self.hist_dir, self.fs)
        self._head.set_seed(read_persisted(self.blocks((start, end)), hist_files, start=start,
                                           end=end, cache=self.cache, fs=self.fs))

    def _flush_before(self, cut: int, width: int | None = None) -> None:
        assert self._wal is not None
        h = self._head
        maxt = self._head_span()[1]
        width = width or self.block_duration_ms
        refs, ts, vals = h.samples()
        old = ts < cut
        if old.any():
            everything = bool(old.all())
            refs_o, ts_o, vals_o = (refs, ts, vals) if everything else (refs[old], ts[old], vals[old])
            for _ in write_windows(self.blocks_dir, h.labels, h.sids, refs_o, ts_o, vals_o,
                                   width=width, seq=self._seq, bucket_ms=self.bucket_duration_ms,
                                   progress=self.progress, fs=self.fs):
                self._seq += 1
        h.cut(cut)
        if _hist.write_file(self.hist_dir, self._hhead.cut(cut), self._seq, fs=self.fs,
                            staging=self.hist_staging):
            self._seq += 1
        hist_rest = self._hhead.items()
        if self._hwal is not None:
            self._hwal.checkpoint(_hist.encode_payload(hist_rest) if hist_rest else None)
        self._checkpoint()
        if self._xwal is not None and maxt is not None:
            self._xwal.checkpoint(maxt - self.block_duration_ms * 3 // 2)
        if self.auto_compact:
            self._compact()
            self._apply_retention()

    def _checkpoint(self) -> None:
        """Checkpoint the WAL with the head's series and samples (in chunks: see walrec)."""
        assert self._wal is not None
        h = self._head
        refs, ts, vals = h.samples()
        self._wal.checkpoint(*encode_checkpoint(list(zip(h.sids.tolist(), h.labels, strict=True)),
                                                h.sids[refs], ts, vals))

    def snapshot(self, dest: str, *, with_head: bool = True) -> None:
        """Hard-link the store's blocks into ``dest`` (:func:`promlab.storage.admin.snapshot`),
        the head flushed to blocks first unless ``with_head`` is False."""
        with self._lock:
            self._check_open(write=with_head)
            if with_head:
                self.flush()
            _admin.snapshot(self, self.blocks(), dest, extra_dirs=[self.hist_dir])

    def delete_series(self, matcher_sets: Sequence[Sequence[Matcher]], mint_ms: int,
                      maxt_ms: int) -> int:
        """Delete the samples, float and native histogram, of series matching any of
        ``matcher_sets`` in ``[mint_ms, maxt_ms]``.

        The heads are flushed (their WALs checkpointed), then the blocks holding such samples
        rewritten (:func:`promlab.storage.admin.delete_series`) and the histogram files too
        (:func:`promlab.storage.histdir.delete_samples`): nothing to replay or compact later
        brings them back. Returns the number of blocks and histogram files rewritten or removed.
        """
        with self._lock:
            self._check_open(write=True)
            self.flush()
            n = _admin.delete_series(self, self.blocks(), matcher_sets, mint_ms, maxt_ms)
            return n + self._delete_histograms(matcher_sets, mint_ms, maxt_ms)

    def _delete_histograms(self, matcher_sets: Sequence[Sequence[Matcher]], mint_ms: int,
                           maxt_ms: int) -> int:
        def hit(ls: Labels) -> bool:
            return bool(_admin.matching([ls], matcher_sets)[0])

        # The flush before this empties the head (commits wait for the store's lock); the head
        # is still cleared here, its WAL checkpointed with the rest, so that the delete does not
        # rest on how much a flush writes.
        if self._hhead.delete(hit, mint_ms, maxt_ms) and self._hwal is not None:
            rest = self._hhead.items()
            self._hwal.checkpoint(_hist.encode_payload(rest) if rest else None)
        changed, self._seq = _hist.delete_samples(self.hist_dir, hit, mint_ms, maxt_ms, self._seq,
                                                  cache=self.cache, fs=self.fs,
                                                  staging=self.hist_staging)
        return changed

    def compact(self) -> list[str]:
        """Merge blocks of each complete ``max_block_duration`` window; returns new block dirs."""
        with self._lock:
            self._check_open(write=True)
            return self._compact()

    def _compact(self) -> list[str]:
        merged = _compact.compact(self, self.blocks(), head_mint=self._head.mint)
        self._seq += _hist.compact_files(self.hist_dir, self.max_block_duration_ms,
                                         self._hhead.mint, self._seq, cache=self.cache,
                                         fs=self.fs, staging=self.hist_staging)
        return merged

    def apply_retention(self) -> list[str]:
        """Delete blocks beyond the retention time/size; returns the deleted block dirs."""
        with self._lock:
            self._check_open(write=True)
            return self._apply_retention()

    def _apply_retention(self) -> list[str]:
        deleted = _compact.apply_retention(self, self.blocks(), head_maxt=self._head.maxt)
        if self.retention_time_ms is not None and self._head.maxt is not None:
            _hist.drop_before(self.hist_dir, self._head.maxt - self.retention_time_ms,
                              cache=self.cache, fs=self.fs)
        return deleted
