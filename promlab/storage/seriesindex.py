"""The series index's helpers: chunk lists, schema metadata arrays, reading the series table.

A block's series table (``series.parquet``, or from format 5 on its Arrow copy ``series.arrow``)
has one row per series (format 4 on) with each series' chunks as list columns
(:data:`CHUNK_COLUMNS`); :mod:`promlab.storage.blocks` loads it through these functions and
:mod:`promlab.storage.writer` writes it with the same names.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from promlab.model import Labels
from promlab.storage import pool
from promlab.storage.footer import FooterPieces
from promlab.storage.slices import GROUPS_KEY

__all__ = ["CHUNK_COLUMNS", "FOOTER_CRCS_KEY", "FOOTER_ENDS_KEY", "FOOTER_SPANS_KEY",
           "METRIC_BATCHES_KEY", "MIN_BATCH_SERIES", "ROW_GROUP_ROWS_KEY", "SeriesIndexFile",
           "chunk_lists", "footer_pieces", "int_array", "label_codes", "label_columns", "metric_batches",
           "metric_runs", "read_series_table"]

#: ``series.arrow`` schema metadata (format 5): :func:`promlab.storage.footer.row_group_spans`
#: of the samples file's footer and its row groups' rows, as base64 little-endian int64s.
FOOTER_SPANS_KEY = b"promlab.samples_footer_spans"
ROW_GROUP_ROWS_KEY = b"promlab.samples_row_group_rows"
#: Also (format 6 writers from issue 14 on): each row group's footer piece CRC-32 (int64s as
#: above) and the footer without its row groups (base64 bytes): a first read checks and parses
#: the pieces of its row groups only (:class:`promlab.storage.footer.FooterPieces`).
FOOTER_CRCS_KEY = b"promlab.samples_footer_crcs"
FOOTER_ENDS_KEY = b"promlab.samples_footer_ends"
#: ``series.arrow`` written in record batches of whole metrics (format 7): the metric names of
#: each batch after the first (empty) one, in order, a JSON list of lists (``""`` for series
#: without a name). Older files have one batch.
METRIC_BATCHES_KEY = b"promlab.metric_batches"
#: Metrics are put together in a batch until it holds this many series: a part decompresses
#: about a thousand rows beyond its own (~0.06 ms), while a whole read stays a few batches
#: (500 metrics x 20 series: 10 batches, read whole in 0.49 ms against 0.23 ms as one batch,
#: 1% larger; a batch per metric took 4.9 ms and 55% more bytes).
MIN_BATCH_SERIES = 1024
#: Format 4's per-series lists: each chunk's time range and row range in the samples file.
CHUNK_COLUMNS = ("chunk_min_time", "chunk_max_time", "chunk_row_start", "chunk_row_count")


def label_columns(labels: Sequence[Labels], reserved: frozenset[str]
                  ) -> tuple[dict[str, list[str | None]], dict[str, str]]:
    """The label sets ``labels`` as one column of values per label name (None where a set
    lacks it), in name order, each under its column name (``label:<name>`` for a name in
    ``reserved`` or one starting with ``label:``), and the column -> label name map."""
    values: dict[str, list[str | None]] = {}
    n = len(labels)
    for i, ls in enumerate(labels):
        for k, v in ls.pairs:
            col = values.get(k)
            if col is None:
                col = values[k] = [None] * n
            col[i] = v
    cols, colmap = {}, {}
    for k in sorted(values):
        cname = f"label:{k}" if k in reserved or k.startswith("label:") else k
        colmap[cname] = k
        cols[cname] = values[k]
    return cols, colmap


def chunk_lists(table: pa.Table, time_base: int = 0
                ) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.int64]]]:
    """Format 4's chunk lists: each chunk's series row, and its min/max time (plus
    ``time_base``: ``series.arrow`` stores them from the block's start), row start/count.

    The lists' values are read in place from the table's buffers and widened to int64 into
    arrays of Arrow's pool (:mod:`promlab.storage.pool`), adding the time base on the way:
    one pass per column.
    """
    offsets = None
    out = []
    for k, cname in enumerate(CHUNK_COLUMNS):
        col = table.column(cname)
        arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
        if arr.null_count or arr.values.null_count:
            raise ValueError(f"null in {cname}")
        raw = _offsets(arr)
        off = raw - raw[0]
        if offsets is None:
            offsets = off
        elif not np.array_equal(off, offsets):
            raise ValueError(f"{cname}: chunk lists of different lengths")
        vals = _values(arr.values)[int(raw[0]):int(raw[-1])]
        wide = pool.empty(vals.shape[0], np.int64)
        if k < 2 and time_base:
            np.add(vals, np.int64(time_base), out=wide)
        else:
            wide[:] = vals
        out.append(wide)
    assert offsets is not None
    lens = np.diff(offsets)
    if lens.shape[0] and int(lens.min()) < 0:
        raise ValueError("bad chunk list offsets")
    series = np.repeat(np.arange(lens.shape[0], dtype=np.int64), lens)
    return series, out


def _offsets(arr: pa.Array) -> npt.NDArray[np.integer[Any]]:
    """A list array's offsets into its values, in place."""
    if not len(arr):  # an empty array may come without an offsets buffer
        return np.zeros(1, np.int64)
    width = "<i8" if pa.types.is_large_list(arr.type) else "<i4"
    off: npt.NDArray[np.integer[Any]] = np.frombuffer(arr.buffers()[1], np.dtype(width),
                                                     arr.offset + len(arr) + 1)[arr.offset:]
    return off


def _values(arr: pa.Array) -> npt.NDArray[np.integer[Any]]:
    """An integer or timestamp array's values, in place."""
    typ = arr.type
    if pa.types.is_timestamp(typ):
        typ = pa.int64()
    if not pa.types.is_integer(typ):
        raise ValueError(f"chunk list of {arr.type}")
    if not len(arr):
        return np.zeros(0, np.int64)
    return np.frombuffer(arr.buffers()[1], typ.to_pandas_dtype(), arr.offset + len(arr))[arr.offset:]


def label_codes(indices: pa.Array) -> npt.NDArray[np.int32]:
    """A dictionary column's codes as int32, ``-1`` where null (the series lacks the label);
    read from the buffers with numpy (Arrow's compute functions cost milliseconds to set up
    on their first call in a process)."""
    typ = indices.type
    if not pa.types.is_integer(typ):
        raise ValueError(f"dictionary indices of {typ}")
    n, off = len(indices), indices.offset
    if not n:
        return np.zeros(0, np.int32)
    codes = np.frombuffer(indices.buffers()[1], typ.to_pandas_dtype(), off + n)[off:].astype(np.int32)
    if indices.null_count:
        bits = np.frombuffer(indices.buffers()[0], np.uint8)
        valid = np.unpackbits(bits, bitorder="little", count=off + n)[off:].astype(bool)
        codes[~valid] = -1
    return codes


def footer_pieces(kv: dict[bytes, bytes], spans: npt.NDArray[np.int64], size: int
                  ) -> FooterPieces | None:
    """The samples footer's pieces recorded in series table metadata ``kv`` (``spans`` its
    :data:`FOOTER_SPANS_KEY`, ``size`` the samples file's), or None when it records none.
    Raises ValueError when they do not fit."""
    if FOOTER_CRCS_KEY not in kv or FOOTER_ENDS_KEY not in kv:
        return None
    return FooterPieces(base64.b64decode(kv[FOOTER_ENDS_KEY], validate=True), spans,
                        int_array(kv[FOOTER_CRCS_KEY]), size)


def int_array(b64: bytes) -> npt.NDArray[np.int64]:
    """Little-endian int64s written base64-encoded in a schema metadata value."""
    return np.frombuffer(base64.b64decode(b64, validate=True), "<i8").astype(np.int64)


def metric_runs(table: pa.Table) -> tuple[list[int], list[str]]:
    """The runs of rows of one metric name in a series table in label order: their bounds
    (``0 .. num_rows``) and names (``""``: no name). An empty table is one empty run."""
    n = table.num_rows
    if "__name__" not in table.column_names or n == 0:
        return [0, n], [""]
    col = table["__name__"].combine_chunks()
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    codes = label_codes(col.indices)
    cuts = (np.flatnonzero(codes[1:] != codes[:-1]) + 1).tolist()
    bounds = [0, *cuts, n]
    uniques = col.dictionary.to_pylist()
    names = ["" if c < 0 else str(uniques[c]) for c in codes[bounds[:-1]].tolist()]
    if len(set(names)) != len(names):
        raise ValueError("series table rows are not grouped by metric name")
    return bounds, names


def metric_batches(bounds: list[int], names: list[str], min_series: int | None = None
                   ) -> list[tuple[int, int, list[str]]]:
    """Consecutive metric runs (:func:`metric_runs`) put together into batches of at least
    ``min_series`` rows (default :data:`MIN_BATCH_SERIES`; the last may hold fewer):
    ``(first row, end row, names)`` each."""
    if min_series is None:
        min_series = MIN_BATCH_SERIES
    out: list[tuple[int, int, list[str]]] = []
    lo, group = 0, []
    for name, hi in zip(names, bounds[1:], strict=True):
        group.append(name)
        if hi - lo >= min_series:
            out.append((lo, hi, group))
            lo, group = hi, []
    if group:
        out.append((lo, bounds[-1], group))
    return out


class SeriesIndexFile:
    """A block's series table opened from ``buf`` (``series.arrow`` when ``arrow``, else
    ``series.parquet``): its schema metadata ``kv``, label column map ``colmap`` (column name
    -> label name) and, for a ``series.arrow`` written in batches of whole metrics (format 7),
    ``metric_batch`` (metric name -> its record batch; else None), each batch readable on its
    own with :meth:`batch`.

    ``fill``, when given, makes ``buf`` a partly read file: ``fill(k)`` reads (and checks)
    record batch ``k`` into it before the batch is read; ``fill(None)`` returns the whole file,
    checked, which then replaces ``buf``. ``grouped=False`` reads a file whose batches carry
    no slice groups (a block's ``recent.arrow``, :mod:`promlab.storage.recent`).
    """

    def __init__(self, buf: pa.Buffer, *, arrow: bool,
                 fill: Callable[[int | None], pa.Buffer | None] | None = None,
                 grouped: bool = True) -> None:
        self._buf, self._arrow, self._fill = buf, arrow, fill
        self._grouped = grouped  # batches carry slice groups (not a block's recent.arrow)
        self._last: tuple[int, tuple[pa.RecordBatch, npt.NDArray[np.int64]]] | None = None
        self._smd: Any = None
        self.metric_batch: dict[str, int] | None = None
        if arrow:
            self._reader: Any = self._open(buf)
            self.kv: dict[bytes, bytes] = self._reader.schema.metadata or {}
            self.num_batches = int(self._reader.num_record_batches)
            raw = self.kv.get(METRIC_BATCHES_KEY)
            if raw is not None:
                groups = json.loads(raw)
                if not isinstance(groups, list) or not all(
                        isinstance(g, list) and g and all(isinstance(x, str) for x in g)
                        for g in groups):
                    raise ValueError(f"bad {METRIC_BATCHES_KEY.decode()}")
                where = {name: k for k, g in enumerate(groups, 1) for name in g}
                if len(where) != sum(len(g) for g in groups):
                    raise ValueError(f"{METRIC_BATCHES_KEY.decode()}: a metric twice")
                # Batch 0 is empty (the schema and dictionaries); batch k holds groups[k - 1].
                if groups and len(groups) + 1 == self.num_batches:
                    self.metric_batch = where
        else:
            # The footer is parsed once: its key-value metadata names the label columns, and
            # the same parsed metadata opens the file for reading.
            self._smd = pq.read_metadata(pa.BufferReader(buf))
            self.kv = self._smd.metadata or {}
            self.num_batches = 1
        colmap = json.loads(self.kv.get(b"promlab.label_columns", b"{}"))
        if not isinstance(colmap, dict):
            raise ValueError("bad promlab.label_columns")
        self.colmap: dict[str, str] = colmap

    @staticmethod
    def _open(buf: pa.Buffer) -> Any:
        # Decompressed (LZ4, from format 6 writers on) on the calling thread: Arrow's pool
        # costs more than it saves on a few hundred KB.
        opts = pa.ipc.IpcReadOptions(use_threads=False)
        return pa.ipc.open_file(pa.BufferReader(buf), options=opts)

    def table(self) -> tuple[pa.Table, npt.NDArray[np.int64] | None]:
        """The whole table, and (format 7) the slice groups its batches carry."""
        if self._arrow:
            if self._fill is not None:
                whole = self._fill(None)
                assert whole is not None
                self._buf, self._fill = whole, None
                self._reader = self._open(whole)
            if self.metric_batch is None:
                return self._reader.read_all(), None
            batches, groups = [], []
            for k in range(1, self.num_batches):
                batch, g = self._batch(k)
                batches.append(batch)
                groups.append(g)
            # One chunk per column (a label column's batches share its dictionary).
            table = pa.Table.from_batches(batches, self._reader.schema).combine_chunks()
            return table, np.concatenate(groups) if groups else np.zeros(0, np.int64)
        # Label columns come back dictionary-encoded as stored: the index's codes and values
        # without hashing every row again.
        return pq.ParquetFile(pa.BufferReader(self._buf), metadata=self._smd,
                              read_dictionary=list(self.colmap)).read(use_threads=False), None

    def _batch(self, k: int) -> tuple[pa.RecordBatch, npt.NDArray[np.int64]]:
        """Record batch ``k`` and the slice groups it carries (format 7); the last one read is
        kept (the metrics sharing a batch are often queried together: decompressed once)."""
        last = self._last
        if last is not None and last[0] == k:
            return last[1]
        got = self._reader.get_batch_with_custom_metadata(k)
        md = got.custom_metadata or {}
        raw = md.get(GROUPS_KEY)
        if not self._grouped:
            out = got.batch, np.zeros(0, np.int64)
        elif raw is None:
            raise ValueError(f"record batch {k}: no {GROUPS_KEY.decode()}")
        else:
            out = got.batch, int_array(raw)
        self._last = (k, out)
        return out

    def metric_rows(self, name: str) -> tuple[pa.Table, npt.NDArray[np.int64]] | None:
        """The rows of metric ``name`` (from its batch only) and the slice groups of its
        batch, or None when it has none."""
        assert self.metric_batch is not None
        k = self.metric_batch.get(name)
        if k is None:
            return None
        if self._fill is not None:
            self._fill(k)
        batch, groups = self._batch(k)
        table = pa.Table.from_batches([batch], self._reader.schema)
        cname = next((c for c, lname in self.colmap.items() if lname == "__name__"), None)
        if cname is None:
            return (table, groups) if name == "" else None
        col = table[cname].combine_chunks()
        codes = label_codes(col.indices)
        try:
            code = -1 if name == "" else col.dictionary.to_pylist().index(name)
        except ValueError:
            return None
        rows = np.flatnonzero(codes == code)
        if not rows.shape[0]:
            return None
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo != rows.shape[0]:
            raise ValueError(f"metric {name!r}: its rows are not a run")
        return table.slice(lo, hi - lo), groups


def read_series_table(buf: pa.Buffer, *, arrow: bool) -> tuple[pa.Table, dict[str, str]]:
    """The series table in ``buf`` (``series.arrow`` when ``arrow``, else ``series.parquet``)
    and its label column map (column name -> label name)."""
    f = SeriesIndexFile(buf, arrow=arrow)
    return f.table(), f.colmap


