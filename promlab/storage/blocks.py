"""Parquet blocks: immutable, time-partitioned directories of two Parquet files.

``<dir>/blocks/<start>-<end>-<id>/`` holds ``series.parquet`` (the series index: one row per
chunk — a series in one time bucket — with its labels as columns, its rows in the samples file
and its label-order rank), ``samples.parquet`` (sorted by metric name, time bucket, series,
timestamp) and ``meta.json``. A
block is written under ``blocks/.tmp-<id>`` and renamed into place, so a reader never sees half a
block. The schema and encodings are described in ``docs/storage.md``.
"""

from __future__ import annotations

import contextlib
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
import pyarrow.parquet as pq

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.model.arrays import unique
from promlab.storage import checksum as _ck
from promlab.storage import footer as _footer
from promlab.storage import indexfile, pool
from promlab.storage.blockmeta import (
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    READABLE_VERSIONS,
    RECENT_FILE,
    RESERVED,
    SAMPLES_FILE,
    SERIES_FILE,
    TAIL_FILE,
    BlockMeta,
    new_ulid,
)
from promlab.storage.cache import MetricColumns
from promlab.storage.indexfile import index_arrays, read_index_file, tiles
from promlab.storage.objectstore import LOCAL, BlockFS
from promlab.storage.postings import LabelIndex
from promlab.storage.recent import WINDOWS as RECENT_WINDOWS
from promlab.storage.recent import MappedRecentFile, RecentFile, RecentMetric, batch_of, open_recent
from promlab.storage.samplesread import BlockState, SamplesReader
from promlab.storage.seriesindex import (
    CHUNK_COLUMNS,
    FOOTER_SPANS_KEY,
    ROW_GROUP_ROWS_KEY,
    SeriesIndexFile,
    footer_pieces,
    int_array,
)
from promlab.storage.slices import SliceIndex

# Re-exported: the block format's names, imported from here by the writer and tools.
__all__ = ["CHUNK_COLUMNS", "FOOTER_SPANS_KEY", "FORMAT_VERSION", "INDEX_FILE", "META_FILE",
           "READABLE_VERSIONS", "RECENT_FILE", "RESERVED", "ROW_GROUP_ROWS_KEY", "SAMPLES_FILE",
           "SERIES_FILE", "TAIL_FILE", "Block", "BlockMeta", "new_ulid"]

log = logging.getLogger("promlab.storage")

ROW_GROUP_ROWS = 32 * 1024
TS_TYPE = pa.timestamp("ms", tz="UTC")


class Block(SamplesReader):
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
        self.index_missing = self._copy_missing(INDEX_FILE, "reading the series index from "
                                                + SERIES_FILE)
        #: The block's recent-samples files (``recent.arrow``, ``tail.arrow``: copies of its
        #: last minutes) that are missing, or not to be used: queries read the samples file.
        self.unused_recent = {fname for fname, _ in RECENT_WINDOWS if self._copy_missing(
            fname, "answering from " + SAMPLES_FILE)}
        for fname, rec in self.meta.files.items():
            if not ((self.index_missing and fname == INDEX_FILE) or fname in self.unused_recent):
                _ck.check_size(fs.join(path, fname), rec, fs.size)
        # Shared with the block's metric parts (:meth:`metric_part`): damage found through a
        # part marks the block.
        self._state = BlockState()
        self._owner: Block = self
        self._parts: dict[str, Block | None] = {}
        self._series_file: SeriesIndexFile | None = None
        # recent.arrow, tail.arrow, each opened at first use (the narrowest locally opened
        # with the block).
        self._recent: dict[str, RecentFile | MappedRecentFile] = {}
        self._recent_fh: dict[str, Any] = {}
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
        # Read by the first query: locally, its I/O starts now (on object storage, when the
        # first query reads the index: opening a store makes no GET).
        if not fs.remote:
            first = self.recent_window(self.meta.maxt)
            if first is not None:
                # The narrowest window's first piece (schema, dictionaries), asked for first (a
                # few KB, ahead of the series index's hundreds): a query at the end of the data
                # then reads its metric's batch only (storage.recent).
                with contextlib.suppress(OSError, pa.ArrowException):
                    # Mapped: read in place from the page cache (storage.recent).
                    fh = self._recent_fh[first] = pa.memory_map(fs.join(path, first))
                    for off, ln, _ in (self.meta.files[first].get("pieces") or [])[:1]:
                        fs.prefetch(fh, int(off), int(ln))
            self._prefetch_index()
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
        self._series_file = self._guard(self._read_series)
        return self._series_file

    def _prefetch_index(self) -> None:
        """Ask for a series.arrow recorded in pieces a few pieces at a time: its first piece and
        footer first, together (a whole-file readahead alone would queue them behind the rest;
        on object storage, two GETs in flight at once)."""
        rec = self.meta.files.get(self._series_name)
        pieces = rec.get("pieces") if rec is not None and self._series_name == INDEX_FILE else None
        if rec is not None and tiles(pieces, rec) and int(rec["size"]) > indexfile.WHOLE_INDEX_READ:
            assert pieces is not None
            self.fs.prefetch(self._series_fh, 0, int(pieces[0][1]))
            self.fs.prefetch(self._series_fh, int(pieces[-1][0]), int(pieces[-1][1]))

    def _read_series(self) -> SeriesIndexFile:
        """Read the series index file (see :meth:`_open_series`); raises on damage."""
        if self.fs.remote:
            self._prefetch_index()
        files = self.meta.files
        buf, fill = read_index_file(self._series_fh, os.path.join(self.path, self._series_name),
                                    files.get(self._series_name),
                                    pieces=self._series_name == INDEX_FILE)
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
            if self._pieces is None:
                self._footer = _ck.verify_footer(self._fh, self._samples_path, rec)
            # Else the pieces a read needs are asked for with its row groups
            # (SamplesReader._prefetch_reads): not the whole footer (400 KB for 615 row
            # groups, of which a first query reads two pieces), whose readahead would queue
            # ahead of the row groups' on the disk.
        else:
            self._full_reader()
        return sf

    def _load_series(self) -> None:
        sf = self._open_series()
        self._install(sf, sf.table)

    def _install(self, sf: SeriesIndexFile,
                 read: Callable[[], tuple[pa.Table, npt.NDArray[np.int64] | None]]) -> None:
        """Take the series table ``read()`` returns (the whole index, or one metric's rows)
        and its slice groups (format 7) as this object's index and chunk arrays (hold
        ``_io``)."""
        a = self._guard(lambda: index_arrays(*read(), sf, version=self.meta.version,
                                             start=self.meta.start,
                                             arrow=self._series_name == INDEX_FILE))
        self.sids, self.rank, self.slices = a.sids, a.rank, a.slices
        self.min_time, self.max_time, self.row_start, self.row_count = (
            a.min_time, a.max_time, a.row_start, a.row_count)
        self._index = a.index

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

    def _copy_missing(self, fname: str, instead: str) -> bool:
        """Whether ``fname``, a file the block's ``meta.json`` lists that only copies data of
        its other files, is missing (logged, with what is done ``instead``)."""
        if fname not in self.meta.files:
            return False
        try:
            self.fs.size(self.fs.join(self.path, fname))
        except OSError:
            log.warning("block %s: %s missing, %s", self.path, fname, instead)
            return True
        return False

    @property
    def recent_missing(self) -> bool:
        """Whether no recent-samples file of the block is used (each missing, or none: before
        format 8); set it to make queries read the samples file."""
        return all(f in self.unused_recent for f, _ in RECENT_WINDOWS if f in self.meta.files)

    @recent_missing.setter
    def recent_missing(self, missing: bool) -> None:
        self.unused_recent = {f for f, _ in RECENT_WINDOWS} if missing else set()

    def recent_window(self, mint: int) -> str | None:
        """The narrowest recent-samples file (``tail.arrow``, ``recent.arrow``: format 9, 8;
        :mod:`promlab.storage.recent`) holding every sample of the block at or after ``mint``,
        or None: told by ``meta.json``, nothing read."""
        for fname, _ in RECENT_WINDOWS:
            rec = self.meta.files.get(fname)
            if rec is not None and fname not in self.unused_recent and mint >= rec["mint"]:
                return fname
        return None

    def recent_covers(self, mint: int) -> bool:
        """Whether a recent-samples file holds every sample of the block at or after ``mint``
        (:meth:`recent_window`)."""
        return self.recent_window(mint) is not None

    def recent_metric(self, name: str, fname: str = RECENT_FILE) -> RecentMetric | None:
        """Metric ``name``'s samples in the recent-samples file ``fname`` (read and checked on
        first use; the block's own, shared by its parts), None when it has none there. Call
        only when :meth:`recent_window` named it (or a wider one); damage raises
        :class:`StorageError` and marks the block."""
        own = self._owner
        with own._io:
            opened = own._recent.get(fname)
            if opened is None:
                if own._fh is None:
                    raise StorageError(f"block {self.path}: closed")
                rec = self.meta.files[fname]
                where = self.fs.join(self.path, fname)
                fh = own._recent_fh.pop(fname, None)
                # The metric's batch asked for now, found from meta.json: its read overlaps
                # the first piece's (asked for when a local block was opened; on object
                # storage both now, one round trip).
                firsts = rec.get("first_metrics")
                pieces = rec.get("pieces") or []
                k = batch_of(firsts, name) if isinstance(firsts, list) else None
                ask = [] if k is None or k >= len(pieces) - 1 else [k]
                if fh is None:  # (mapped locally: read in place, as at the open)
                    fh = (self.fs.open_input(where, rec.get("size")) if self.fs.remote
                          else pa.memory_map(where))
                    ask = [0, *ask]
                for i in ask:
                    self.fs.prefetch(fh, int(pieces[i][0]), int(pieces[i][1]))
                opened = own._recent[fname] = own._guard(lambda: open_recent(fh, where, rec))
            return own._guard(functools.partial(opened.metric, name))  # type: ignore[no-any-return]

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
        if not known and (keys.shape[0] < 2 or bool((keys[1:] > keys[:-1]).all())):
            # A first query's series, one row each, in order: built as they are asked for.
            made = idx.labels_of(rows)
            known.update(zip(klist, made, strict=True))
            return made
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
        return [col.uniques[c] if c >= 0 else "" for c in unique(col.codes[mask]).tolist()]

    def metric_chunks(self, name: str, matchers: Sequence[Matcher] = (), mint: int | None = None,
                      maxt: int | None = None) -> npt.NDArray[np.int64]:
        """Chunk rows of metric ``name`` (``""``: series without a name) matching ``matchers``
        with data in ``[mint, maxt]`` (``None``: unbounded), in series-index order."""
        idx = self.index()
        col = idx.columns.get("__name__")
        code = None if col is None else -1 if not name else col.code_of(name)
        span = None if col is None or code is None else col.span(code)  # rows lo:hi (sorted)
        at = slice(0, idx.n) if span is None else slice(*span)
        rest = [m for m in matchers if m.name != "__name__"]
        if span is not None and rest and (got := idx.match_groups(rest)) is not None:
            return _group_chunks(*got, at, self.min_time, self.max_time, mint, maxt)
        chunk = None if span is not None else np.full(idx.n, not name) if col is None else (
            col.codes == (-2 if code is None else code))
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
            # Their samples' I/O starts now: it overlaps the label sets built next.
            self.prefetch_chunks(sel, lo, hi)
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
            for opened in self._recent.values():
                opened.close()
            for fh in self._recent_fh.values():
                fh.close()
            self._fh = None
            self._pf = None


def _group_chunks(groups: npt.NDArray[np.bool_], rows: npt.NDArray[np.int64], at: slice,
                  min_time: npt.NDArray[np.int64], max_time: npt.NDArray[np.int64],
                  mint: int | None, maxt: int | None) -> npt.NDArray[np.int64]:
    """The rows in ``at`` of the matching ``groups`` (``rows``: each row's group, ascending)
    with data in ``[mint, maxt]``: the matching series are found per series and only their
    chunks are looked at, so a selective matcher on a metric of many series and buckets costs
    the series it selects, not every chunk (issue 14)."""
    if at.stop <= at.start:
        return np.zeros(0, np.int64)
    sub = rows[at]
    g0, g1 = int(sub[0]), int(sub[-1]) + 1
    hit = np.flatnonzero(groups[g0:g1]) + g0
    lo = np.searchsorted(sub, hit, "left")
    cand = pool.run_index(lo, np.searchsorted(sub, hit, "right") - lo) + at.start
    keep: npt.NDArray[np.bool_] | None = None
    if mint is not None:
        keep = max_time[cand] >= mint
    if maxt is not None:
        k2 = min_time[cand] <= maxt
        keep = k2 if keep is None else np.logical_and(keep, k2, out=keep)
    out: npt.NDArray[np.int64] = cand if keep is None else cand[keep]
    return out

