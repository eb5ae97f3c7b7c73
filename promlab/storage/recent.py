"""A block's recent samples: ``recent.arrow`` (format 8, issue 14) and ``tail.arrow`` (format 9),
and reading them.

A person exploring a store asks first about *now*: an instant query at the end of the data,
with five minutes of lookback or a ``rate(...[5m])``. Prometheus answers those from its
in-memory head. A freshly opened promlab store had to load the metric's part of the series
index (chunk lists, slice pieces), plan the samples file's row groups, read and decode them
and assemble the series: about 4 ms of fixed work before the first answer, whatever its size.

So each block also keeps its last :data:`RECENT_MS` (every sample at or after ``mint``, the
block's newest sample minus :data:`RECENT_MS`, recorded in ``meta.json`` and in the schema
metadata ``promlab.recent_mint``) as an Arrow IPC file in the layout of ``series.arrow``
(format 7: record batches of whole metrics after an empty first batch with the schema and
dictionaries, each piece's CRC in ``meta.json``, plus each batch's first metric name): one row
per series, in label order, with its label columns (dictionary-encoded), ``series_id``, its
times as a first time and steps, and its values as float64 or, for an exact decimal series,
as a first scaled integer and steps, uncompressed (column by column in ``docs/storage.md``;
written by :mod:`promlab.storage.recentwrite`). A selection whose range starts at or after
``mint`` is answered from its metric's batch alone (:class:`RecentFile`), bit for bit as from
the samples file, decoding the series it selects only (:func:`recent_columns`).

``tail.arrow`` (format 9) is the same file for the block's last :data:`TAIL_MS`: a first query
reads its metric's batch from disk, and the usual one (five minutes back from about the end)
then reads and decodes half the bytes (:data:`WINDOWS`: the narrowest window that reaches back
far enough answers).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.errors import StorageError
from promlab.storage import checksum as _ck
from promlab.storage import pool
from promlab.storage.blockmeta import RECENT_FILE, TAIL_FILE
from promlab.storage.cache import MetricColumns
from promlab.storage.crc import crc32
from promlab.storage.encoding import MAX_SCALE, POW10, flat
from promlab.storage.merge import gather_runs
from promlab.storage.pool import take
from promlab.storage.postings import LabelColumn, LabelIndex
from promlab.storage.recentmap import batch_arrays, check_map, dictionary_values
from promlab.storage.seriesindex import (
    METRIC_BATCHES_KEY,
    label_codes,
)

__all__ = ["FIRST_INT_COLUMN", "FIRST_TS_COLUMN", "INT_COLUMN", "RECENT_FILE", "RECENT_MINT_KEY",
           "RECENT_MS", "SCALE_COLUMN", "TAIL_FILE", "TAIL_MS", "TS_COLUMN", "VALUE_COLUMN",
           "WINDOWS", "MappedRecentFile", "RecentFile", "RecentMetric", "batch_of", "open_recent",
           "recent_columns"]

#: How far back from a block's newest sample ``recent.arrow`` reaches: five minutes of lookback
#: or a ``[10m]`` range at the end of the data, with room to spare.
RECENT_MS = 15 * 60_000
#: How far back ``tail.arrow`` (format 9) reaches: five minutes of lookback or a ``[5m]``
#: window, evaluated anywhere in the block's last two minutes. Reading a batch of it costs
#: half of ``recent.arrow``'s (its bytes, which a first query reads from disk, and its decode).
TAIL_MS = 7 * 60_000
#: Each recent-samples file of a block and its window, narrowest first: a selection is answered
#: from the first that reaches back to its start.
WINDOWS: tuple[tuple[str, int], ...] = ((TAIL_FILE, TAIL_MS), (RECENT_FILE, RECENT_MS))
RECENT_MINT_KEY = b"promlab.recent_mint"
TS_COLUMN = "recent_ts"
VALUE_COLUMN = "recent_value"
INT_COLUMN = "recent_int"
SCALE_COLUMN = "recent_scale"
FIRST_TS_COLUMN = "recent_first_ts"
FIRST_INT_COLUMN = "recent_first_int"
_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]
_TS_TYPES = (pa.uint16(), pa.int32())
_FLOAT_TYPES = (pa.float64(),)
_INT_TYPES = (pa.int8(), pa.int16(), pa.int32(), pa.int64())
# (Decompressed, if ever, on the reading thread: Arrow's pool costs ten times the work here.)
_READ_OPTIONS = pa.ipc.IpcReadOptions(use_threads=False)


def batch_of(first_metrics: list[str], name: str) -> int | None:
    """The record batch (1 ..) that would hold metric ``name``, from each batch's first metric
    name (``meta.json``'s ``first_metrics``, in name order), or None before the first."""
    k = bisect.bisect_right(first_metrics, name)
    return k if k else None


@dataclass(frozen=True, slots=True)
class RecentMetric:
    """One metric's recent samples as stored, series in label order (matched by ``index``):
    series ``i`` (id ``sids[i]``) has times ``first_ts[i]`` (the stored first time plus the
    file's ``mint``) plus the running sum of ``ts[offsets[i]:offsets[i+1]]`` and, when
    ``scales[i] >= 0``, the values ``first_int[i]`` plus the running sum of
    ``ints[ioff[i]:ioff[i+1]]``, over ``10**scales[i]``, else ``floats[foff[i]:foff[i+1]]``
    (``ioff`` is ``offsets`` itself when every series is decimal). Decoded per selection
    (:func:`recent_columns`): a query of a few series of a large metric decodes theirs only."""

    sids: _I64
    index: LabelIndex
    offsets: _I64
    ts: npt.NDArray[Any]
    first_ts: _I64
    scales: npt.NDArray[np.int8]
    ioff: _I64
    ints: npt.NDArray[Any]
    first_int: _I64
    foff: _I64
    floats: _F64


class _PieceReader:
    """Checked pieces of a ``recent.arrow`` opened from ``_fh``."""

    _fh: Any
    _path: str
    _pieces: list[tuple[int, int, int]]
    _mapped: bool

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def _piece(self, k: int, what: str) -> pa.Buffer:
        """Piece ``k`` of the file, checked against its CRC."""
        off, ln, crc = self._pieces[k]
        if not self._mapped:
            (raw,) = _ck.read_runs(self._fh, self._path, off, [(ln, crc, what)])
            return pa.py_buffer(raw)
        self._fh.seek(off)  # (callers hold the block's lock)
        part = self._fh.read_buffer(ln)
        if part.size != ln or crc32(memoryview(part)) != crc:
            raise StorageError(f"{self._path}: checksum mismatch in {what}")
        return part


class RecentFile(_PieceReader):
    """A block's ``recent.arrow`` opened from ``fh`` (``rec``: its ``meta.json`` record, with
    its pieces). Its first piece (the schema with its metadata, the dictionaries, the empty
    first batch) is read and checked now, a metric's record batch when :meth:`metric` first
    asks for it: each read as an IPC message on its own (the file's footer is not needed,
    nor a copy of the file's bytes; label columns come back as their dictionary codes).
    Raises ValueError, ``pyarrow.ArrowException`` or :class:`~promlab.errors.StorageError`
    on damage."""

    def __init__(self, fh: Any, path: str, rec: dict[str, Any]) -> None:
        self._fh, self._path = fh, path
        try:
            self._pieces = _pieces(rec)
            # A memory-mapped file (a local block's) is read in place: its pages come from
            # the page cache, never copied (its mapping lives as long as any of its buffers).
            self._mapped = isinstance(fh, pa.MemoryMappedFile)
            first = self._piece(0, "schema and dictionaries")
            if first.slice(0, 6).to_pybytes() != b"ARROW1":
                raise ValueError("not an Arrow IPC file")
            # After the file's magic, the messages are an IPC stream: the schema, the
            # dictionaries, the empty first batch (which carries them).
            # (Decompressed on this thread: Arrow's pool costs ten times the work here.)
            reader = pa.ipc.open_stream(first.slice(8), options=_READ_OPTIONS)
            self._empty = reader.read_next_batch()
            schema = self._empty.schema
            kv = schema.metadata or {}
            self.mint = int(kv[RECENT_MINT_KEY])
            if self.mint != rec.get("mint"):
                raise ValueError(f"recent mint {self.mint} is not meta.json's {rec.get('mint')}")
            groups = json.loads(kv[METRIC_BATCHES_KEY])
            if not isinstance(groups, list) or len(groups) + 2 != len(self._pieces):
                raise ValueError("recent samples pieces do not match the record batches")
            self._batch_of = {str(n): k for k, g in enumerate(groups, 1) for n in g}
            self._alone = {k for k, g in enumerate(groups, 1) if len(g) == 1}
            colmap = json.loads(kv.get(b"promlab.label_columns", b"{}"))
            if not isinstance(colmap, dict):
                raise ValueError("bad promlab.label_columns")
            self._colmap: dict[str, str] = colmap
            # Batches are read with each label column as its codes (the body is the same);
            # a column's dictionary is taken from the first batch when a metric needs it.
            types = schema.types
            fields = []
            for k, cname in enumerate(schema.names):
                if cname in colmap:
                    typ = types[k]
                    if not pa.types.is_dictionary(typ):
                        raise ValueError(f"recent samples: label column {cname!r} of {typ}")
                    fields.append(pa.field(cname, typ.index_type))
                else:
                    fields.append(schema.field(k))
            self._plain = pa.schema(fields)
        except BaseException:
            self.close()
            raise
        self._metrics: dict[str, RecentMetric | None] = {}
        self._batch: tuple[int, pa.RecordBatch] | None = None  # the last one read
        # A label column's dictionary is the file's (shared by every batch): its values and
        # their codes are made once, when a metric first needs them.
        self._uniques: dict[str, tuple[list[str], dict[str, int]]] = {}

    def metric(self, name: str) -> RecentMetric | None:
        """Metric ``name``'s recent samples (read and decoded once), None when it has none."""
        if name in self._metrics:
            return self._metrics[name]
        got = None
        k = self._batch_of.get(name)
        if k is not None:
            batch = self._read_batch(k)
            if k in self._alone:  # the metric's own batch: all of its rows
                got = self._decode(batch) if batch.num_rows else None
            else:
                codes = label_codes(batch.column(self._name_column()))
                rows = np.flatnonzero(codes == self._code(self._name_column(), name))
                if rows.shape[0]:
                    lo, hi = int(rows[0]), int(rows[-1]) + 1
                    if hi - lo != rows.shape[0]:
                        raise ValueError(f"metric {name!r}: its rows are not a run")
                    got = self._decode(batch.slice(lo, hi - lo))
        self._metrics[name] = got
        return got

    def _name_column(self) -> str:
        for cname, lname in self._colmap.items():
            if lname == "__name__":
                return cname
        raise ValueError("recent samples without metric names")

    def _values(self, cname: str) -> tuple[list[str], dict[str, int]]:
        """Label column ``cname``'s dictionary values and (filled on first use) their codes."""
        known = self._uniques.get(cname)
        if known is None:
            dictionary = self._empty.column(cname).dictionary
            if not pa.types.is_string(dictionary.type) or dictionary.null_count:
                raise ValueError(f"recent samples: a dictionary of {dictionary.type}")
            known = self._uniques[cname] = (dictionary.to_pylist(), {})
        return known

    def _code(self, cname: str, value: str) -> int:
        known = self._values(cname)
        lookup = known[1]
        if not lookup:
            lookup.update(zip(known[0], range(len(known[0])), strict=True))
        return lookup.get(value, -2)

    def _read_batch(self, k: int) -> pa.RecordBatch:
        last = self._batch
        if last is not None and last[0] == k:
            return last[1]
        msg = pa.ipc.read_message(self._piece(k, f"record batch {k}"))
        batch = pa.ipc.read_record_batch(msg, self._plain)
        self._batch = (k, batch)
        return batch

    def _decode(self, table: pa.RecordBatch) -> RecentMetric:
        n = table.num_rows
        cols = {}
        for cname, lname in self._colmap.items():
            col = table.column(cname)
            if col.null_count == n:
                continue  # another metric's label (a missing column matches as "")
            values, lookup = self._values(cname)
            cols[lname] = LabelColumn(label_codes(col), values, lookup)
        offsets, ts = _list_values(table.column(TS_COLUMN), n, _TS_TYPES)
        foff, floats = _list_values(table.column(VALUE_COLUMN), n, _FLOAT_TYPES)
        ioff, ints = _list_values(table.column(INT_COLUMN), n, _INT_TYPES)
        return _assemble(LabelIndex(n, cols), self.mint, flat(table.column("series_id"), np.int64),
                         flat(table.column(SCALE_COLUMN), np.int8),
                         flat(table.column(FIRST_TS_COLUMN), np.int32),
                         flat(table.column(FIRST_INT_COLUMN), np.int64),
                         offsets, ts, foff, floats, ioff, ints)


class MappedRecentFile(_PieceReader):
    """A block's ``recent.arrow`` read through its buffer map (:mod:`~promlab.storage.recentmap`,
    ``rec["buffers"]``): a metric's record batch is one checked piece of the file whose columns
    are taken as numpy arrays at the offsets the map gives; the first piece (the dictionaries)
    is read when a metric first needs a label's values. Nothing is read when it is opened.
    The same interface as :class:`RecentFile`; damage raises as there."""

    def __init__(self, fh: Any, path: str, rec: dict[str, Any]) -> None:
        self._fh, self._path = fh, path
        try:
            self._pieces = _pieces(rec)
            self._mapped = isinstance(fh, pa.MemoryMappedFile)
            self._map = check_map(rec["buffers"], len(self._pieces) - 2)
            self.mint = int(rec["mint"])
            firsts = rec.get("first_metrics")
            if not isinstance(firsts, list) or len(firsts) != len(self._pieces) - 2:
                raise ValueError("recent samples: first_metrics do not match the batches")
            self._firsts: list[str] = firsts
        except BaseException:
            self.close()
            raise
        self._dict_at = {lname: k for k, (_, lname) in enumerate(self._map["labels"])}
        self._metrics: dict[str, RecentMetric | None] = {}
        self._first: pa.Buffer | None = None
        self._uniques: dict[str, tuple[list[str], dict[str, int]]] = {}

    def metric(self, name: str) -> RecentMetric | None:
        """Metric ``name``'s recent samples (read and decoded once), None when it has none."""
        if name in self._metrics:
            return self._metrics[name]
        got = None
        k = batch_of(self._firsts, name)
        if k is not None:
            row = self._map["batches"][k - 1]
            if row[1] != 1 or self._firsts[k - 1] == name:  # (alone: the batch is name's)
                piece = self._piece(k, f"record batch {k}")
                codes, (sids, scales, first_ts, first_int, *lists) = batch_arrays(
                    piece, self._pieces[k][0], row, self._map)
                lo, hi = 0, row[0]
                if row[1] != 1:
                    lo, hi = self._run(codes, name)
                if hi > lo:
                    got = self._decode(codes, lo, hi, sids, scales, first_ts, first_int, lists)
        self._metrics[name] = got
        return got

    def _run(self, codes: dict[str, npt.NDArray[np.int32]], name: str) -> tuple[int, int]:
        """The rows of metric ``name`` in a batch of several (``codes``: its label codes)."""
        names = codes.get("__name__")
        if names is None:
            raise ValueError("recent samples without metric names")
        rows = np.flatnonzero(names == self._lookup("__name__").get(name, -2))
        if not rows.shape[0]:
            return 0, 0
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo != rows.shape[0]:
            raise ValueError(f"metric {name!r}: its rows are not a run")
        return lo, hi

    def _values(self, lname: str) -> tuple[list[str], dict[str, int]]:
        """Label ``lname``'s dictionary values and (filled on first use) their codes."""
        known = self._uniques.get(lname)
        if known is None:
            if self._first is None:
                self._first = self._piece(0, "schema and dictionaries")
            vals = dictionary_values(self._first, 0, self._map["dicts"][self._dict_at[lname]])
            known = self._uniques[lname] = (vals, {})
        return known

    def _lookup(self, lname: str) -> dict[str, int]:
        values, lookup = self._values(lname)
        if not lookup:
            lookup.update(zip(values, range(len(values)), strict=True))
        return lookup

    def _decode(self, codes: dict[str, npt.NDArray[np.int32]], lo: int, hi: int,
                sids: _I64, scales: npt.NDArray[np.int8], first_ts: npt.NDArray[np.int32],
                first_int: _I64, lists: list[npt.NDArray[Any]]) -> RecentMetric:
        """Rows ``lo:hi`` of a batch's arrays, as a metric."""
        cols = {}
        for lname, c in codes.items():
            part = c[lo:hi]
            if int(part.max()) < 0:
                continue  # (another metric's label)
            values, lookup = self._values(lname)
            if int(part.max()) >= len(values):
                raise ValueError(f"recent samples: a code of {lname!r} past its dictionary")
            cols[lname] = LabelColumn(part, values, lookup)
        cut = []
        for off, vals in zip(lists[0::2], lists[1::2], strict=True):
            o = off[lo:hi + 1].astype(np.int64)
            a, b = int(o[0]) - int(off[0]), int(o[-1]) - int(off[0])
            if not 0 <= a <= b <= vals.shape[0]:
                raise ValueError("recent samples: a list past its values")
            got = vals[a:b]
            o -= o[0]
            cut += [o, got]
        return _assemble(LabelIndex(hi - lo, cols), self.mint, sids[lo:hi], scales[lo:hi],
                         first_ts[lo:hi], first_int[lo:hi], *cut)


def open_recent(fh: Any, path: str, rec: dict[str, Any]) -> RecentFile | MappedRecentFile:
    """A block's ``recent.arrow`` from ``fh``: through its buffer map when ``meta.json`` has
    one, else through Arrow's IPC reader."""
    if "buffers" in rec:
        return MappedRecentFile(fh, path, rec)
    return RecentFile(fh, path, rec)


def _assemble(index: LabelIndex, mint: int, sids: _I64, scales: npt.NDArray[np.int8],
              first_ts: npt.NDArray[np.int32], first_int: _I64, offsets: _I64,
              ts: npt.NDArray[Any], foff: _I64, floats: _F64, ioff: _I64,
              ints: npt.NDArray[Any]) -> RecentMetric:
    """A metric's recent samples from its columns (list offsets from 0), checked: each
    series' values are its decimals' or its floats', as many as its times."""
    n = index.n
    lens = np.diff(offsets)
    ilens = lens * (scales >= 0)
    if (offsets.shape[0] != n + 1 or sids.shape[0] != n
            or not np.array_equal(np.diff(ioff), ilens)
            or not np.array_equal(np.diff(foff), lens - ilens)
            or (n and (int(scales.max()) > MAX_SCALE or int(lens.min()) < 1))):
        raise ValueError("recent samples: value lists do not match the time lists")
    if ioff[-1] == offsets[-1]:
        ioff = offsets  # (all decimal: the same lists, gathered once by recent_columns)
    abs_ts = first_ts.astype(np.int64)
    abs_ts += mint
    return RecentMetric(sids, index, offsets, ts, abs_ts, scales, ioff, ints, first_int, foff,
                        floats)


def _pieces(rec: dict[str, Any]) -> list[tuple[int, int, int]]:
    """``meta.json``'s pieces of the file (``rec``): ``(offset, length, crc)`` each, tiling it
    (a first piece, a batch per group of metrics, the footer); raises ValueError if not."""
    out, end = [], 0
    try:
        for off, ln, crc in rec["pieces"]:
            if int(off) != end or int(ln) < 0:
                raise ValueError
            out.append((int(off), int(ln), int(crc)))
            end += int(ln)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("recent samples: bad pieces in meta.json") from exc
    if len(out) < 2 or end != rec.get("size"):
        raise ValueError("recent samples: pieces do not tile the file")
    return out


def _list_values(arr: pa.Array, n: int, types: tuple[pa.DataType, ...]
                 ) -> tuple[_I64, npt.NDArray[Any]]:
    """A list array's offsets (from 0, int64; ``n + 1`` of them) and its values (in place), of
    one of ``types``; read from its buffers (a batch's list column has no nulls)."""
    typ = arr.type
    if not pa.types.is_list(typ) or typ.value_type not in types or len(arr) != n or (
            arr.null_count or arr.values.null_count):
        raise ValueError(f"recent samples: a list column of {typ}")
    raw = np.frombuffer(arr.buffers()[1], np.int32, arr.offset + n + 1)[arr.offset:].astype(np.int64)
    vals = flat(arr.values, typ.value_type.to_pandas_dtype())[int(raw[0]):int(raw[-1])]
    raw -= raw[0]
    return raw, vals


def _rows(off: _I64, sel: npt.NDArray[np.intp]) -> tuple[slice | _I64, _I64]:
    """Where the lists ``sel`` (increasing) of the list offsets ``off`` are: one slice when
    they are consecutive (a whole metric, say), else the rows gathered; and their lengths."""
    lo = off[sel]
    lens = off[sel + 1] - lo
    if int(sel[-1]) - int(sel[0]) + 1 == sel.shape[0]:
        return slice(int(lo[0]), int(off[sel[-1] + 1])), lens
    return gather_runs(lo, lens), lens


def _pick(a: npt.NDArray[Any], rows: slice | _I64) -> npt.NDArray[Any]:
    """``a[rows]``: a view of a slice, a gather into an array of Arrow's pool (storage.pool)."""
    return a[rows] if isinstance(rows, slice) else take(a, rows)


def _running(steps: npt.NDArray[Any], rows: slice | _I64, lens: _I64,
             firsts: npt.NDArray[Any]) -> _I64:
    """Runs ``rows`` of ``steps`` (``lens`` long, none empty), each made its values: its
    ``firsts`` value plus the running sum of its steps (0 at its start), in an array of
    Arrow's pool."""
    run = pool.empty(int(lens.sum()), np.int64)
    run[:] = steps[rows]
    starts = np.zeros(lens.shape[0], np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    run[starts] = firsts
    if starts.shape[0] > 1:
        # Less the previous run's last value (the sum of its first and steps), one running sum
        # over all of them gives each run its own values.
        sums = np.add.reduceat(run, starts)
        run[starts[1:]] -= sums[:-1]
    np.cumsum(run, out=run)
    return run


def _decimals(rm: RecentMetric, sel: npt.NDArray[np.intp],
              at: tuple[slice | _I64, _I64] | None = None) -> _F64:
    """The values of decimal series ``sel`` of ``rm``, in order, over ``10**scale``: what the
    samples file decodes to, bit for bit. ``at``: their runs of ``rm.ioff`` when known."""
    rows, lens = _rows(rm.ioff, sel) if at is None else at
    run = _running(rm.ints, rows, lens, rm.first_int[sel])
    scales = rm.scales[sel]
    out = pool.empty(run.shape[0], np.float64)
    lo, hi = (int(scales.min()), int(scales.max())) if scales.shape[0] else (0, 0)
    if lo == hi:  # one scale: no divisor per row
        if hi == 0:
            out[:] = run
        else:
            np.divide(run, POW10[hi], out=out)
    else:
        np.divide(run, POW10[np.repeat(scales, lens)], out=out)
    return out


def recent_columns(rm: RecentMetric, sel: npt.NDArray[np.intp]) -> MetricColumns:
    """Series ``sel`` (increasing positions, some) of ``rm`` and their samples, decoded."""
    at = _rows(rm.offsets, sel)
    rows, lens = at
    firsts = rm.first_ts[sel]
    ts = _running(rm.ts, rows, lens, firsts)
    offsets = np.zeros(sel.shape[0] + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    if rm.ioff is rm.offsets:  # every series decimal, its values where its times are
        values = _decimals(rm, sel, at)
    else:
        dec = rm.scales[sel] >= 0
        ndec = int(np.count_nonzero(dec))
        if ndec == sel.shape[0]:
            values = _decimals(rm, sel)
        elif ndec == 0:
            values = _pick(rm.floats, _rows(rm.foff, sel)[0])
        else:  # some of each: placed by their series
            values = pool.empty(ts.shape[0], np.float64)
            row_dec = np.repeat(dec, lens)
            values[row_dec] = _decimals(rm, sel[dec])
            values[~row_dec] = _pick(rm.floats, _rows(rm.foff, sel[~dec])[0])
    index = rm.index if sel.shape[0] == rm.sids.shape[0] else rm.index.subset(sel)
    labels = index.labels_of(None)
    for a in (offsets, ts, values):
        if a.flags.writeable:
            a.flags.writeable = False
    # (Each run's times increase: the first is its least, the last its greatest.)
    return MetricColumns(rm.sids[sel], labels, index, offsets, ts, values,
                         int(firsts.min()), int(ts[offsets[1:] - 1].max()))
