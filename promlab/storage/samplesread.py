"""Reading a block's samples file: the row groups a read needs, checked, decoded into arrays.

:class:`SamplesReader` is the samples side of :class:`~promlab.storage.blocks.Block` (which
loads the series index that says where each chunk's rows lie): it parses only the footer of
the row groups it reads (format 5), verifies their CRC-32 first, reads format 6's slice pieces
of the chunks asked for and cuts them to the time range. See ``docs/storage.md``.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from promlab.errors import StorageError
from promlab.storage import checksum as _ck
from promlab.storage import footer as footers
from promlab.storage import pool
from promlab.storage.blockmeta import SAMPLES_FILE, BlockMeta
from promlab.storage.cache import window
from promlab.storage.encoding import decode_table, flat, value_columns
from promlab.storage.objectstore import BlockFS
from promlab.storage.postings import LabelIndex
from promlab.storage.slices import SliceIndex

__all__ = ["THREADED_READ_ROWS", "WHOLE_FOOTER_PREFETCH", "BlockState", "SamplesReader"]

#: Reads of fewer rows decode on the calling thread (Arrow's pool costs more than it saves).
THREADED_READ_ROWS = 1 << 20
#: On object storage, a samples footer up to this size is fetched whole by the first read
#: (one GET serves every later read's footer pieces); a larger one a piece at a time.
WHOLE_FOOTER_PREFETCH = 64 * 1024


class BlockState:
    """What a block and its metric parts share: the damage found, if any."""

    __slots__ = ("damaged",)

    def __init__(self) -> None:
        self.damaged: str | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where a read's samples lie (:meth:`SamplesReader._plan`)."""

    starts: npt.NDArray[np.int64]
    counts: npt.NDArray[np.int64]
    chunk_of: npt.NDArray[np.int64] | None
    first: npt.NDArray[np.int64]
    rgs: npt.NDArray[np.int64]
    rg_start: npt.NDArray[np.int64]


class SamplesReader:
    """The samples-file reads of a block (the attributes are the block's: its files, footer
    places and, once its series index is loaded, each chunk's rows and times)."""

    path: str
    fs: BlockFS
    meta: BlockMeta
    slices: SliceIndex | None
    min_time: npt.NDArray[np.int64]
    max_time: npt.NDArray[np.int64]
    row_start: npt.NDArray[np.int64]
    row_count: npt.NDArray[np.int64]
    _state: BlockState
    _fh: Any
    _pf: pq.ParquetFile | None
    _io: threading.Lock
    _footer: Any
    _pieces: footers.FooterPieces | None
    _spans: npt.NDArray[np.int64] | None
    _rg_rows: npt.NDArray[np.int64] | None
    _verified: set[int]
    _samples_path: str
    _last_plan: tuple[tuple[bytes, int, int], _Plan | None] | None = None

    @property
    def damaged(self) -> str | None:
        """Why this block cannot be read (set when a read finds damage), or None."""
        return self._state.damaged

    @damaged.setter
    def damaged(self, why: str | None) -> None:
        self._state.damaged = why

    def index(self) -> LabelIndex:  # the block's series index (loaded on first use)
        raise NotImplementedError

    def _full_reader(self) -> pq.ParquetFile:
        """The samples file with its whole footer parsed (made on first use; hold ``_io``)."""
        if self._pf is None:
            if self._fh is None:
                raise StorageError(f"block {self.path}: closed")
            rec = self.meta.files.get(SAMPLES_FILE)
            if self._footer is None and rec is not None:
                self._footer = _ck.verify_footer(self._fh, self._samples_path, rec)
            md = None if rec is None else pq.read_metadata(pa.BufferReader(self._footer))
            # Row groups are checked against their recorded CRC-32 before they are read
            # (:meth:`_verify_row_groups`), so Parquet's page checksums (the same bytes) are
            # verified only in version 1 blocks, which record none. No pre-buffering: a query
            # reads a few whole row groups, already coalesced.
            self._pf = pq.ParquetFile(self._fh, metadata=md, pre_buffer=False,
                                      page_checksum_verification=rec is None)
        return self._pf

    def _reader_of(self, rgs: list[int]) -> tuple[pq.ParquetFile, list[int]]:
        """A reader of row groups ``rgs`` and their numbers in it (hold ``_io``): a footer cut
        down to them when the block records where they lie and they are few."""
        if self._spans is None or len(rgs) * 4 > self._spans.shape[0]:
            return self._full_reader(), rgs
        if self._fh is None:
            raise StorageError(f"block {self.path}: closed")
        if self._pieces is not None:
            md = self._pieces.metadata(rgs, functools.partial(_ck.read_runs, self._fh,
                                                              self._samples_path))
        else:
            n = len(self._footer) - 8  # the Thrift metadata, without its length and magic
            md = footers.subset(memoryview(self._footer)[:n], self._spans, rgs)
        return pq.ParquetFile(self._fh, metadata=md, pre_buffer=False), list(range(len(rgs)))

    def row_group_rows(self) -> list[int]:
        """Rows per row group of the samples file."""
        self.index()
        if self._rg_rows is not None:
            return [int(x) for x in self._rg_rows.tolist()]
        with self._io:
            md = self._full_reader().metadata
        return [md.row_group(i).num_rows for i in range(md.num_row_groups)]

    def read_row_group(self, i: int, columns: list[str]) -> pa.Table:
        """Row group ``i`` of the samples file, raw ``columns`` (call after :meth:`index`)."""
        try:
            with self._io:
                self._verify_row_groups([i])
                return self._full_reader().read_row_group(i, columns=columns)
        except StorageError as exc:
            self.damaged = str(exc)
            raise
        except (OSError, pa.ArrowException) as exc:
            self.damaged = f"block {self.path}: unreadable {SAMPLES_FILE}: {exc}"
            raise StorageError(self.damaged) from exc

    def _prefetch_reads(self, rgs: list[int]) -> None:
        """Start every read of row groups ``rgs`` at once (hold ``_io``): their bytes not
        checked yet (back-to-back ones as one range, as :meth:`_verify_row_groups` reads them)
        and their footer pieces not read yet (as :meth:`_reader_of` reads them). On object
        storage one round trip, not one per read; locally the kernel reads ahead
        (:meth:`BlockFS.prefetch`)."""
        rec = self.meta.files.get(SAMPLES_FILE)
        ranges = rec.get("row_groups", []) if rec is not None else []
        spans: list[tuple[int, int]] = []
        for i in sorted(set(rgs) - self._verified):
            if i >= len(ranges):
                break  # reported by the check itself
            off, length = int(ranges[i][0]), int(ranges[i][1])
            if spans and spans[-1][0] + spans[-1][1] == off:
                spans[-1] = (spans[-1][0], spans[-1][1] + length)
            else:
                spans.append((off, length))
        if (self._pieces is not None and self._spans is not None
                and len(rgs) * 4 <= self._spans.shape[0]):
            whole = self._pieces.span()
            # A small footer is fetched whole once (later reads find their pieces in it).
            spans += ([whole] if whole[1] <= WHOLE_FOOTER_PREFETCH else
                      [self._pieces.run_span(run) for run in self._pieces.runs(rgs)])
        for off, length in spans:
            self.fs.prefetch(self._fh, off, length)

    def _verify_row_groups(self, rgs: list[int]) -> None:
        """Check the recorded CRC of each row group not checked yet (hold ``_io``)."""
        if self.damaged is not None:
            raise StorageError(self.damaged)
        rec = self.meta.files.get(SAMPLES_FILE)
        if rec is not None:  # else a version 1 block: no checksums
            _ck.verify_row_groups(self._fh, self._samples_path, rec.get("row_groups", []), rgs,
                                  self._verified)

    def read_rows(self, sel: npt.NDArray[np.int64], mint: int, maxt: int
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples in ``[mint, maxt]`` of series rows ``sel``: (row, ts, value)."""
        kept, ts, vals = self.read_chunks(sel, mint, maxt)
        return np.repeat(sel, kept), ts, vals

    def pieces(self, sel: npt.NDArray[np.int64], mint: int, maxt: int
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
        """Row runs (format 6: slice pieces) of chunks ``sel`` in range: starts, counts, chunk."""
        if self.slices is None:
            return self.row_start[sel], self.row_count[sel], None
        try:
            return self.slices.pieces(sel, mint, maxt)
        except ValueError as exc:  # checked per (metric, bucket) when first read
            self.damaged = f"block {self.path}: unreadable: {exc}"
            raise StorageError(self.damaged) from exc

    def slice_window(self, sel: npt.NDArray[np.int64], mint: int, maxt: int
                     ) -> tuple[int, int] | None:  # format 6: SliceIndex.window; else whole
        return None if self.slices is None else self.slices.window(sel, mint, maxt)

    def _plan(self, sel: npt.NDArray[np.int64], mint: int, maxt: int) -> _Plan | None:
        """Where the samples of chunks ``sel`` in ``[mint, maxt]`` lie: their pieces, the row
        groups holding them and each piece's first and last row group (None: no piece in
        range). The last plan is kept: :meth:`prefetch_chunks` makes it for the read after."""
        key = (sel.tobytes(), mint, maxt)
        last = self._last_plan
        if last is not None and last[0] == key:
            return last[1]
        if self._rg_rows is None:
            self._rg_rows = np.array(self.row_group_rows(), np.int64)
        rg_rows = self._rg_rows
        rg_start = np.concatenate([[0], np.cumsum(rg_rows)])
        starts, counts, chunk_of = self.pieces(sel, mint, maxt)
        if starts.shape[0] and (int(starts.min()) < 0 or int((starts + counts).max()) > rg_start[-1]
                                or int(counts.min()) < 0):
            raise StorageError(f"block {self.path}: series table points outside {SAMPLES_FILE}")
        plan = None
        if starts.shape[0]:
            first = np.searchsorted(rg_start, starts, "right") - 1
            last_rg = np.searchsorted(rg_start, np.maximum(starts + counts - 1, starts), "right") - 1
            # Mark every row group between first and last of each series (usually the same).
            span = np.zeros(rg_rows.shape[0] + 1, np.int64)
            np.add.at(span, first, 1)
            np.add.at(span, last_rg + 1, -1)
            rgs = np.flatnonzero(np.cumsum(span[:-1]) > 0)
            plan = _Plan(starts, counts, chunk_of, first, rgs, rg_start)
        self._last_plan = (key, plan)
        return plan

    def prefetch_chunks(self, sel: npt.NDArray[np.int64], mint: int, maxt: int) -> None:
        """Start the I/O of a :meth:`read_chunks` of the same arguments now (its row groups
        and footer pieces asked for in the background), so it overlaps whatever the caller
        does before that read (building the series' label sets, say)."""
        if self.slices is None or not sel.shape[0]:
            return
        plan = self._plan(sel, mint, maxt)
        if plan is not None:
            with self._io:
                self._prefetch_reads(plan.rgs.tolist())

    def read_chunks(self, sel: npt.NDArray[np.int64], mint: int, maxt: int
                    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples in ``[mint, maxt]`` of chunks ``sel`` in that order: (count per chunk, ts, value).

        Only the row groups holding the chunks are read; chunks partly in range are cut by a
        binary search on their (sorted) timestamps, so no per-sample mask is built.
        """
        plan = self._plan(sel, mint, maxt)
        self._last_plan = None
        if plan is None:  # no piece in range
            return np.zeros(sel.shape[0], np.int64), np.zeros(0, np.int64), np.zeros(0)
        starts, counts, chunk_of, first, rgs, rg_start = (
            plan.starts, plan.counts, plan.chunk_of, plan.first, plan.rgs, plan.rg_start)
        rg_rows = self._rg_rows
        assert rg_rows is not None
        try:
            with self._io:
                self._prefetch_reads(rgs.tolist())
                # The footer first: its parse overlaps the row groups' I/O just asked for.
                reader, which = self._reader_of(rgs.tolist())
                self._verify_row_groups(rgs.tolist())
                # Value columns null throughout are not read, nor a scale the same throughout.
                columns, scale = value_columns(reader.metadata, which)
                table = reader.read_row_groups(
                    which, columns=["timestamp", *columns],
                    use_threads=int(rg_rows[rgs].sum()) >= THREADED_READ_ROWS)
            if table.num_rows != int(rg_rows[rgs].sum()):
                raise StorageError(f"block {self.path}: {SAMPLES_FILE} row count mismatch")
        except StorageError as exc:
            self.damaged = str(exc)
            raise
        except (OSError, pa.ArrowException, ValueError) as exc:
            self.damaged = f"block {self.path}: unreadable {SAMPLES_FILE}: {exc}"
            raise StorageError(self.damaged) from exc
        # Position of each needed row group's first row inside the table just read.
        local = np.zeros(rg_rows.shape[0], np.int64)
        local[rgs] = np.concatenate([[0], np.cumsum(rg_rows[rgs])[:-1]])
        lo = local[first] + (starts - rg_start[first])
        hi = lo + counts
        ts_all = flat(table["timestamp"], np.int64)
        cut = (self.min_time[sel] < mint) | (self.max_time[sel] > maxt)
        partial = np.flatnonzero(cut if chunk_of is None else cut[chunk_of])
        if partial.shape[0]:
            plo, phi = window(ts_all, lo[partial], hi[partial], mint, maxt)
            lo, hi = lo.copy(), hi.copy()
            lo[partial], hi[partial] = plo, phi
        kept_pieces = kept = hi - lo
        if chunk_of is not None:  # format 6: the pieces' rows added up per chunk
            kept = np.bincount(chunk_of, weights=kept_pieces, minlength=sel.shape[0]).astype(np.int64)
        n = ts_all.shape[0]
        if lo.shape[0] and int(lo[0]) == 0 and int(hi[-1]) == n and bool((lo[1:] == hi[:-1]).all()):
            idx = None  # every row read is wanted, in order
            ts = pool.copy(ts_all)
        else:  # arrays of the read's size come from Arrow's pool (promlab.storage.pool)
            idx = pool.run_index(lo, kept_pieces)
            ts = pool.take(ts_all, idx)
        vals = decode_table(table, idx, scale=scale)
        return kept, ts, vals
