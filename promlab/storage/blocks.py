"""Parquet blocks: immutable, time-partitioned directories of two Parquet files.

``<dir>/blocks/<start>-<end>-<id>/`` holds ``series.parquet`` (the series index: one row per
chunk — a series in one time bucket — with its labels as columns, its rows in the samples file
and its label-order rank), ``samples.parquet`` (sorted by metric name, time bucket, series,
timestamp) and ``meta.json``. A
block is written under ``blocks/.tmp-<id>`` and renamed into place, so a reader never sees half a
block. The schema and encodings are described in ``docs/storage.md``.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.storage import checksum as _ck
from promlab.storage import footer as _footer
from promlab.storage import pool
from promlab.storage.blockmeta import (
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    READABLE_VERSIONS,
    RESERVED,
    SAMPLES_FILE,
    SERIES_FILE,
    BlockMeta,
    new_ulid,
)
from promlab.storage.cache import MetricColumns, window
from promlab.storage.encoding import decode_table, flat, value_columns
from promlab.storage.objectstore import LOCAL, BlockFS
from promlab.storage.postings import LabelColumn, LabelIndex
from promlab.storage.seriesindex import (
    CHUNK_COLUMNS,
    FOOTER_SPANS_KEY,
    ROW_GROUP_ROWS_KEY,
    SeriesIndexFile,
    chunk_lists,
    footer_pieces,
    int_array,
    label_codes,
)
from promlab.storage.slices import SliceIndex, slice_index

# Re-exported: the block format's names, imported from here by the writer and tools.
__all__ = ["CHUNK_COLUMNS", "FOOTER_SPANS_KEY", "FORMAT_VERSION", "INDEX_FILE", "META_FILE",
           "READABLE_VERSIONS", "RESERVED", "ROW_GROUP_ROWS_KEY", "SAMPLES_FILE", "SERIES_FILE",
           "Block", "BlockMeta", "new_ulid"]

log = logging.getLogger("promlab.storage")

ROW_GROUP_ROWS = 32 * 1024
#: A series index file up to this size is read (and checked) whole in one read, even when a
#: query decodes one metric's batch of it: one read from disk costs less than three dependent
#: ones (first piece and footer, then the batch) below a megabyte.
WHOLE_INDEX_READ = 1 << 20
#: Reads of fewer rows decode on the calling thread (Arrow's pool costs more than it saves).
THREADED_READ_ROWS = 1 << 20
TS_TYPE = pa.timestamp("ms", tz="UTC")


def _tiles(pieces: Any, rec: dict[str, Any] | None) -> bool:
    """Whether ``pieces`` (a ``meta.json`` file record's) are ``[offset, length, crc]``
    triples tiling the file, at least a first and a last."""
    if rec is None or not isinstance(pieces, list) or len(pieces) < 2:
        return False
    try:
        arr = np.array(pieces, dtype=np.int64)
    except (ValueError, TypeError, OverflowError):
        return False
    if arr.ndim != 2 or arr.shape[1] != 3 or int(arr[:, 1].min()) < 0:
        return False
    ends = np.cumsum(arr[:, 1])
    return (int(arr[0, 0]) == 0 and bool((arr[1:, 0] == ends[:-1]).all())
            and int(ends[-1]) == rec.get("size"))


class _BlockState:
    """What a block and its metric parts share: the damage found, if any."""

    __slots__ = ("damaged",)

    def __init__(self) -> None:
        self.damaged: str | None = None


class Block:
    """Read access to one block directory; loads its series table on first use."""

    def __init__(self, path: str, fs: BlockFS = LOCAL) -> None:
        self.path, self.fs = path, fs  # where the block lives (promlab.storage.objectstore)
        try:
            self.meta = BlockMeta.from_json(json.loads(fs.read_bytes(fs.join(path, META_FILE)).decode()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StorageError(f"block {path}: bad {META_FILE}: {exc}") from exc
        if os.path.basename(os.path.normpath(path)) not in (self.meta.dirname, ""):
            raise StorageError(f"block {path}: {META_FILE} describes {self.meta.dirname}")
        #: A format-5 block whose ``series.arrow`` is missing (a tool copied only the Parquet
        #: files): its series index is read from ``series.parquet`` instead, with a warning.
        self.index_missing = False
        if INDEX_FILE in self.meta.files:
            try:
                fs.size(fs.join(path, INDEX_FILE))
            except OSError:
                self.index_missing = True
                log.warning("block %s: %s missing, reading the series index from %s", path,
                            INDEX_FILE, SERIES_FILE)
        for fname, rec in self.meta.files.items():
            if not (self.index_missing and fname == INDEX_FILE):
                _ck.check_size(fs.join(path, fname), rec, fs.size)
        # Shared with the block's metric parts (:meth:`metric_part`): damage found through a
        # part marks the block.
        self._state = _BlockState()
        self._owner: Block = self
        self._parts: dict[str, Block | None] = {}
        self._series_file: SeriesIndexFile | None = None
        self._verified: set[int] = set()  # row groups whose checksum passed
        # Open both files now: a compaction or retention deleting the block later cannot pull
        # them from under a reader that already listed it. Arrow-native files, not Python file
        # objects: Arrow would wrap those and own Python bytes in the buffers it reads, which its
        # thread pool then releases (taking the GIL) after a read returns, even while the
        # interpreter is exiting, which aborts the process (issue 13).
        # The series index is read from its Arrow copy from version 5 on.
        self._series_name = (INDEX_FILE if self.meta.version >= 5 and not self.index_missing
                             else SERIES_FILE)
        try:
            self._series_fh: Any = fs.open_input(
                fs.join(path, self._series_name),
                self.meta.files.get(self._series_name, {}).get("size"))
        except OSError as exc:
            raise StorageError(f"block {path}: missing {self._series_name}: {exc}") from exc
        try:
            self._fh: Any = fs.open_input(fs.join(path, SAMPLES_FILE),
                                          self.meta.files.get(SAMPLES_FILE, {}).get("size"))
        except OSError as exc:
            self._series_fh.close()
            raise StorageError(f"block {path}: missing {SAMPLES_FILE}: {exc}") from exc
        # Read by the first query: its I/O starts now. A series.arrow recorded in pieces is
        # read a few at a time: its first piece and footer are asked for first (a whole-file
        # readahead alone would queue them behind the rest).
        rec = self.meta.files.get(self._series_name)
        pieces = rec.get("pieces") if rec is not None and self._series_name == INDEX_FILE else None
        if rec is not None and _tiles(pieces, rec) and int(rec["size"]) > WHOLE_INDEX_READ:
            assert pieces is not None
            fs.prefetch(self._series_fh, 0, int(pieces[0][1]))
            fs.prefetch(self._series_fh, int(pieces[-1][0]), int(pieces[-1][1]))
        fs.prefetch(self._series_fh)
        self._index: LabelIndex | None = None
        self._labels: dict[int, Labels] = {}  # by series (rank), or chunk row before v3
        self._pf: pq.ParquetFile | None = None
        self._io = threading.Lock()  # the file objects are shared by querying threads
        empty = np.zeros(0, np.int64)  # per chunk (loaded with the series index):
        self.sids, self.row_start, self.row_count, self.min_time, self.max_time = (empty,) * 5
        self.rank: npt.NDArray[np.int64] | None = None  # label order of chunks' series (v3)
        self._rg_rows: npt.NDArray[np.int64] | None = None
        self._footer: Any = None  # the samples file's checked footer bytes
        self._pieces: _footer.FooterPieces | None = None  # or its pieces (issue 14)
        self._samples_path = os.path.join(path, SAMPLES_FILE)
        self._spans: npt.NDArray[np.int64] | None = None  # its row groups' places (format 5)
        self.slices: SliceIndex | None = None  # chunks' pieces (format 6)

    @property
    def damaged(self) -> str | None:
        """Why this block cannot be read (set when a read finds damage), or None."""
        return self._state.damaged

    @damaged.setter
    def damaged(self, why: str | None) -> None:
        self._state.damaged = why

    def size_bytes(self) -> int:
        return self.fs.dir_size(self.path)

    def index(self) -> LabelIndex:
        if self._index is None:
            with self._io:
                if self._index is None:
                    self._load_series()
        assert self._index is not None
        return self._index

    def _open_series(self) -> SeriesIndexFile:
        """The series index file, read and checked once, with the samples footer's places it
        records (hold ``_io``)."""
        if self._series_file is not None:
            return self._series_file
        if self._fh is None:
            raise StorageError(f"block {self.path}: closed")
        files = self.meta.files
        try:
            buf, fill = self._series_source(files.get(self._series_name))
            sf = SeriesIndexFile(buf, arrow=self._series_name == INDEX_FILE, fill=fill)
            if fill is not None and len(files[self._series_name]["pieces"]) != sf.num_batches + 1:
                raise ValueError("series index pieces do not match its record batches")
            kv = sf.kv
            rec = files.get(SAMPLES_FILE)
            if FOOTER_SPANS_KEY in kv and rec is not None:
                # Format 5: where each row group lies in the footer, and its rows: a read
                # parses the footer of the row groups it reads only (promlab.storage.footer).
                self._spans = int_array(kv[FOOTER_SPANS_KEY])
                self._rg_rows = int_array(kv[ROW_GROUP_ROWS_KEY])
                nrg = len(rec.get("row_groups", ()))
                if self._spans.shape[0] != nrg + 2 or self._rg_rows.shape[0] != nrg:
                    raise ValueError("footer spans do not match the row groups")
                # Recorded by newer writers: the footer checked a row group's piece at a time.
                self._pieces = footer_pieces(kv, self._spans, int(rec["size"]))
                if self._pieces is not None:  # the first read's pieces: their I/O starts now
                    self.fs.prefetch(self._fh, *self._pieces.span())
                else:
                    self._footer = _ck.verify_footer(self._fh, self._samples_path, rec)
            else:
                self._full_reader()
        except StorageError as exc:
            self.damaged = str(exc)
            raise
        except (OSError, pa.ArrowException, ValueError, KeyError, UnicodeDecodeError) as exc:
            self.damaged = f"block {self.path}: unreadable: {exc}"
            raise StorageError(self.damaged) from exc
        self._series_file = sf
        return sf

    def _series_source(self, rec: dict[str, Any] | None
                       ) -> tuple[pa.Buffer, Callable[[int | None], pa.Buffer | None] | None]:
        """The series index file's bytes and, when ``meta.json`` records its pieces (record
        batches) and the file is larger than :data:`WHOLE_INDEX_READ`, the function that reads
        the others (:class:`SeriesIndexFile`'s ``fill``): then only the first piece (schema and
        dictionaries) and the last (the footer) are read now, each checked against its CRC;
        else the whole file, checked (hold ``_io``)."""
        path = os.path.join(self.path, self._series_name)
        fh = self._series_fh
        pieces = rec.get("pieces") if rec is not None and self._series_name == INDEX_FILE else None
        if rec is None or not _tiles(pieces, rec) or int(rec["size"]) <= WHOLE_INDEX_READ:
            buf = _ck.read_checked(fh, path, rec)
            fh.close()
            return buf, None
        assert pieces is not None
        buf = pa.allocate_buffer(int(rec["size"]))
        view = memoryview(buf).cast("B")
        done = [False] * len(pieces)

        def fill(k: int | None) -> pa.Buffer | None:
            if k is None:  # the whole file: read at once and checked whole
                whole = _ck.read_checked(fh, path, rec)
                fh.close()
                return whole
            if not done[k]:
                off, ln, crc = (int(x) for x in pieces[k])
                (got,) = _ck.read_runs(fh, path, off, [(ln, crc, f"record batch {k}")])
                view[off:off + ln] = got
                done[k] = True
            return None

        fill(0)
        fill(len(pieces) - 1)
        return buf, fill

    def _load_series(self) -> None:
        sf = self._open_series()
        self._install(sf, sf.table)

    def _install(self, sf: SeriesIndexFile,
                 read: Callable[[], tuple[pa.Table, npt.NDArray[np.int64] | None]]) -> None:
        """Take the series table ``read()`` returns (the whole index, or one metric's rows)
        and its slice groups (format 7) as this object's index and chunk arrays (hold
        ``_io``)."""
        colmap = sf.colmap
        try:
            table, groups = read()
            kv = sf.kv
            v4 = self.meta.version >= 4
            if self.meta.version == 3:
                table.column("series_rank")
            for cname in ("series_id", *(CHUNK_COLUMNS if v4 else (
                    "row_start", "row_count", "min_time", "max_time")), *colmap):
                table.column(cname)
            if v4:
                # series.arrow holds chunk times as ms since its time base.
                chunk_series, chunk_cols = chunk_lists(table, int(kv[b"promlab.time_base"])
                                                       if self._series_name == INDEX_FILE else 0)
                self.slices = slice_index(table, chunk_cols, self.meta.start, self.meta.version,
                                          groups)
        except StorageError as exc:
            self.damaged = str(exc)
            raise
        except (OSError, pa.ArrowException, ValueError, KeyError, UnicodeDecodeError) as exc:
            self.damaged = f"block {self.path}: unreadable: {exc}"
            raise StorageError(self.damaged) from exc
        if v4:
            # One row per series in label order: chunk i belongs to series chunk_series[i],
            # whose position is its rank; label codes are gathered per chunk (numpy only).
            n = int(chunk_series.shape[0])
            self.sids = table["series_id"].to_numpy()[chunk_series]
            self.min_time, self.max_time, self.row_start, self.row_count = chunk_cols
            self.rank = chunk_series
        else:
            n = table.num_rows
            self.sids = table["series_id"].to_numpy()
            self.row_start = table["row_start"].to_numpy()
            self.row_count = table["row_count"].to_numpy()
            self.min_time = table["min_time"].cast(pa.int64()).to_numpy()
            self.max_time = table["max_time"].cast(pa.int64()).to_numpy()
            if self.meta.version >= 3:
                self.rank = table["series_rank"].to_numpy()
        cols = {}
        for cname, lname in colmap.items():
            col = table[cname]
            if not pa.types.is_dictionary(col.type) or col.num_chunks != 1:
                col = pc.dictionary_encode(col)
            enc = col.combine_chunks()
            codes = label_codes(enc.indices)
            # Format 4 stores codes per series: each chunk's are gathered when first matched.
            cols[lname] = LabelColumn(codes, enc.dictionary.to_pylist(),
                                      rows=chunk_series if v4 else None)
        self._index = LabelIndex(n, cols)

    @property
    def index_loaded(self) -> bool:
        """Whether the whole series index is loaded (not only metric parts)."""
        return self._index is not None

    def indexed_metrics(self) -> dict[str, int] | None:
        """The metric names the series index holds in batches of their own (format 7; name ->
        record batch), or None when it is one batch (earlier writers)."""
        with self._io:
            return self._open_series().metric_batch

    def metric_part(self, name: str) -> Block | None:
        """This block restricted to metric ``name``'s series: its series index batch only is
        read and its rows decoded, so a first query on one metric does not pay for the whole
        index (issue 14). The block itself when its whole index is loaded already or it is
        one batch; None when the metric has no series here.

        A part reads the block's files (shared, never closed by it) and numbers its chunks
        ``0 ..`` among the metric's own: its chunk rows are not the block's.
        """
        if self._index is not None:
            return self
        with self._io:
            if self._index is not None:
                return self
            if name in self._parts:
                return self._parts[name]
            sf = self._open_series()
            if sf.metric_batch is None:
                self._load_series()
                return self
            if name not in sf.metric_batch:
                self._parts[name] = None
                return None
            rows = self._guard(functools.partial(sf.metric_rows, name))
            if rows is None:
                self._parts[name] = None
                return None
            part = copy.copy(self)
            part._owner, part._parts, part._labels, part._pf = self, {}, {}, None
            part._index = None
            part._install(sf, lambda: rows)
            self._parts[name] = part
            return part

    def _guard(self, read: Callable[[], Any]) -> Any:
        """``read()``, its failures marking the block damaged (as :class:`StorageError`)."""
        try:
            return read()
        except StorageError as exc:
            self.damaged = str(exc)
            raise
        except (OSError, pa.ArrowException, ValueError, KeyError, UnicodeDecodeError) as exc:
            self.damaged = f"block {self.path}: unreadable: {exc}"
            raise StorageError(self.damaged) from exc

    def labels_at(self, i: int) -> Labels:
        """The label set of chunk row ``i`` (cached per series: shared by its chunks)."""
        return self.labels_of(np.array([i], np.int64))[0]

    def labels_of(self, rows: npt.NDArray[np.int64]) -> list[Labels]:
        """:meth:`labels_at` of many chunk rows, the sets not cached yet built in one pass
        (:meth:`LabelIndex.labels_of`); every chunk of a series gets the same object."""
        idx = self.index()
        keys = rows if self.rank is None else self.rank[rows]  # the series of each chunk
        klist = keys.tolist()
        known = self._labels
        if known:
            miss = np.fromiter((k not in known for k in klist), bool, len(klist))
            todo, tkeys = rows[miss], keys[miss]
        else:
            todo, tkeys = rows, keys
        if todo.shape[0]:
            ukeys, first = np.unique(tkeys, return_index=True)
            known.update(zip(ukeys.tolist(), idx.labels_of(todo[first]), strict=True))
        return list(map(known.__getitem__, klist))

    def select(self, mask: npt.NDArray[np.bool_], mint: int, maxt: int
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples in ``[mint, maxt]`` of the series in ``mask``: (series row, ts, value)."""
        self.index()
        sel = np.flatnonzero(mask & (self.min_time <= maxt) & (self.max_time >= mint))
        if sel.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        return self.read_rows(sel, mint, maxt)

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
            md = _footer.subset(memoryview(self._footer)[:n], self._spans, rgs)
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

    def read_chunks(self, sel: npt.NDArray[np.int64], mint: int, maxt: int
                    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples in ``[mint, maxt]`` of chunks ``sel`` in that order: (count per chunk, ts, value).

        Only the row groups holding the chunks are read; chunks partly in range are cut by a
        binary search on their (sorted) timestamps, so no per-sample mask is built.
        """
        if self._rg_rows is None:
            self._rg_rows = np.array(self.row_group_rows(), np.int64)
        rg_rows = self._rg_rows
        rg_start = np.concatenate([[0], np.cumsum(rg_rows)])
        starts, counts, chunk_of = self.pieces(sel, mint, maxt)
        if starts.shape[0] and (int(starts.min()) < 0 or int((starts + counts).max()) > rg_start[-1]
                                or int(counts.min()) < 0):
            raise StorageError(f"block {self.path}: series table points outside {SAMPLES_FILE}")
        if not starts.shape[0]:  # no piece in range
            return np.zeros(sel.shape[0], np.int64), np.zeros(0, np.int64), np.zeros(0)
        first = np.searchsorted(rg_start, starts, "right") - 1
        last = np.searchsorted(rg_start, np.maximum(starts + counts - 1, starts), "right") - 1
        # Mark every row group between first and last of each series (usually the same).
        span = np.zeros(rg_rows.shape[0] + 1, np.int64)
        np.add.at(span, first, 1)
        np.add.at(span, last + 1, -1)
        rgs = np.flatnonzero(np.cumsum(span[:-1]) > 0)
        try:
            with self._io:
                self._verify_row_groups(rgs.tolist())
                reader, which = self._reader_of(rgs.tolist())
                table = reader.read_row_groups(  # value columns null throughout are not read
                    which, columns=["timestamp", *value_columns(reader.metadata, which)],
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
        vals = decode_table(table, idx)
        return kept, ts, vals

    def metric_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        """Metric names of this block's series matching ``matchers`` with data in range.

        ``""`` stands for series without a name. An equality matcher on the name answers
        without touching the series.
        """
        for m in matchers:
            if m.name == "__name__" and m.type is MatchType.EQUAL and m.value:
                if self._index is None and (names := self.indexed_metrics()) is not None:
                    return [m.value] if m.value in names else []  # without loading the index
                col = self.index().columns.get("__name__")
                return [m.value] if col is not None and col.code_of(m.value) is not None else []
        idx = self.index()
        col = idx.columns.get("__name__")
        mask = idx.match(matchers) & (self.min_time <= maxt) & (self.max_time >= mint)
        if col is None:
            return [""] if mask.any() else []
        return [col.uniques[c] if c >= 0 else "" for c in np.unique(col.codes[mask]).tolist()]

    def metric_chunks(self, name: str, matchers: Sequence[Matcher] = (), mint: int | None = None,
                      maxt: int | None = None) -> npt.NDArray[np.int64]:
        """Chunk rows of metric ``name`` (``""``: series without a name) matching ``matchers``
        with data in ``[mint, maxt]`` (``None``: unbounded), in series-index order."""
        idx = self.index()
        col = idx.columns.get("__name__")
        code = None if col is None else -1 if not name else col.code_of(name)
        span = None if col is None or code is None else col.span(code)  # rows lo:hi (sorted)
        at = slice(0, idx.n) if span is None else slice(*span)
        chunk = None if span is not None else np.full(idx.n, not name) if col is None else (
            col.codes == (-2 if code is None else code))
        rest = [m for m in matchers if m.name != "__name__"]
        for keep in (None if mint is None else self.max_time[at] >= mint,
                     None if maxt is None else self.min_time[at] <= maxt,
                     idx.match(rest, at) if rest else None):
            if keep is not None:
                chunk = keep if chunk is None else np.logical_and(chunk, keep, out=chunk)
        return np.arange(at.start, at.stop) if chunk is None else np.flatnonzero(chunk) + at.start

    def metric_columns(self, name: str, mint: int | None = None, maxt: int | None = None, *,
                       chunks: npt.NDArray[np.int64] | None = None) -> MetricColumns:
        """Decode metric ``name``'s samples (all, or those in ``[mint, maxt]``), series in label order.

        ``chunks`` (rows of :meth:`metric_chunks`) limits the decode to those chunks: what a
        query selects, not the whole metric.
        """
        idx = self.index()
        lo = np.iinfo(np.int64).min if mint is None else mint
        hi = np.iinfo(np.int64).max if maxt is None else maxt
        sel = self.metric_chunks(name, (), mint, maxt) if chunks is None else chunks
        if self.rank is not None:
            # Format 3: the series index carries each series' label-order rank: no sorting of
            # label sets, and chunks come out in (series, time) order with one integer sort.
            co = np.lexsort((self.min_time[sel], self.rank[sel]))
            sel = sel[co]
            r = self.rank[sel]
            new = np.ones(sel.shape[0], bool)
            new[1:] = r[1:] != r[:-1]
            starts = np.flatnonzero(new)
            rep = sel[starts]
            series_of = np.cumsum(new) - 1
            uniq = self.sids[rep]
            labels = self.labels_of(rep)
        else:
            uniq, first, inv = np.unique(self.sids[sel], return_index=True, return_inverse=True)
            rep = sel[first]  # one chunk per series, for its labels
            labels = [self.labels_at(int(r)) for r in rep.tolist()]
            order = np.array(sorted(range(len(labels)), key=labels.__getitem__), np.int64)
            rank = np.empty(order.shape[0], np.int64)
            rank[order] = np.arange(order.shape[0])
            # Chunks by (series rank, start time): the samples come out in (series, ts) order.
            co = np.lexsort((self.min_time[sel], rank[inv]))
            sel = sel[co]
            series_of = rank[inv[co]]
            rep, uniq = rep[order], uniq[order]
            labels = [labels[i] for i in order.tolist()]
        nser = int(rep.shape[0])
        if sel.shape[0]:
            kept, ts, vals = self.read_chunks(sel, lo, hi)
            counts = np.bincount(series_of, weights=kept, minlength=nser).astype(np.int64)
        else:
            ts, vals = np.zeros(0, np.int64), np.zeros(0, np.float64)
            counts = np.zeros(nser, np.int64)
        offsets = np.zeros(nser + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        sub = LabelIndex(nser, {k: c.take(rep) for k, c in idx.columns.items()})
        for a in (offsets, ts, vals):
            a.flags.writeable = False
        return MetricColumns(uniq, labels, sub, offsets, ts, vals,
                             int(ts.min()) if ts.shape[0] else 0,
                             int(ts.max()) if ts.shape[0] else -1)

    def read_all(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Every sample: (series row, ts, value)."""
        self.index()
        sel = np.arange(self.sids.shape[0], dtype=np.int64)
        if sel.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        return self.read_rows(sel, np.iinfo(np.int64).min, np.iinfo(np.int64).max)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_owner", self) is not self:
            return  # a metric part: the files are its block's
        if getattr(self, "_fh", None) is not None:
            self._fh.close()
            self._series_fh.close()
            self._fh = None
            self._pf = None
