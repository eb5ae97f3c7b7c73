"""Incremental block writer: samples handed over metric by metric, written row group by row group.

:func:`write_block` hands everything over in one :meth:`BlockWriter.add`;
compaction (:mod:`promlab.storage.compact`) hands over one metric at a time so its memory is
bounded by the largest metric, not the window. Either way the file is the same: rows sorted by
(metric, time bucket, series in label order, time), row groups of up to 32 Ki rows ending at
time slice ends where they can, the encodings of
``docs/storage.md``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from promlab import progress as _progress
from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.storage import blocks as _blocks
from promlab.storage.blocks import (
    CHUNK_COLUMNS,
    INDEX_FILE,
    META_FILE,
    RESERVED,
    SAMPLES_FILE,
    SERIES_FILE,
    TS_TYPE,
    BlockMeta,
    new_ulid,
)
from promlab.storage.checksum import file_record
from promlab.storage.encoding import decimal_scales, encode_values
from promlab.storage.indexwrite import write_index_copy
from promlab.storage.merge import gather_runs
from promlab.storage.objectstore import LOCAL, BlockFS, ObjectStoreFS
from promlab.storage.recent import RECENT_MINT_KEY
from promlab.storage.recent import WINDOWS as RECENT_WINDOWS
from promlab.storage.recentwrite import RecentCollector, write_recent
from promlab.storage.seriesindex import label_columns
from promlab.storage.slices import (
    BUCKET_MS_KEY,
    GROUPS_KEY,
    SLICE_COLUMN,
    SLICES,
    row_group_cuts,
    slice_ends,
    slice_order,
)
from promlab.storage.wal import fsync_path

__all__ = ["BlockWriter", "write_block", "write_windows"]

_WRITE_OPTIONS: dict[str, object] = {
    "compression": "zstd",
    "use_dictionary": ["__name__", "series_id", "scale"],
    "column_encoding": {"timestamp": "DELTA_BINARY_PACKED", "value": "BYTE_STREAM_SPLIT",
                        "value_int": "DELTA_BINARY_PACKED"},
    "write_page_checksum": True,
}


def _series_table(labels: Sequence[Labels], sids: npt.NDArray[np.int64],
                  mins: npt.NDArray[np.int64], maxs: npt.NDArray[np.int64],
                  row_start: npt.NDArray[np.int64], counts: npt.NDArray[np.int64],
                  ranks: npt.NDArray[np.int64], *, slice_rows: npt.NDArray[np.int64],
                  bucket_ms: int, groups: npt.NDArray[np.int64]) -> pa.Table:
    """The series index (format 4): one row per series in label order, its chunks as lists.

    ``labels`` ... ``ranks`` are per chunk; ``ranks`` (the series' label-order position) runs
    over ``0 .. nseries - 1``. Format 6 adds ``slice_rows`` (chunks x slices) as a list of
    ``slices`` values per chunk, and ``groups``, the first row of each (metric, bucket)
    (:mod:`promlab.storage.slices`).
    """
    order = np.lexsort((mins, ranks))
    ranks = ranks[order]
    new = np.ones(ranks.shape[0], bool)
    new[1:] = ranks[1:] != ranks[:-1]
    first = np.flatnonzero(new)
    nser = int(first.shape[0])
    if nser and not np.array_equal(ranks[first], np.arange(nser)):
        raise ValueError("series ranks are not 0 .. n-1")
    ser_labels = [labels[int(i)] for i in order[first].tolist()]
    cols, colmap = label_columns(ser_labels, RESERVED)
    data: dict[str, Any] = {"series_id": pa.array(sids[order[first]], pa.int64())}
    for cname, vals in cols.items():
        data[cname] = pa.array(vals, pa.string())
    offsets = pa.array(np.append(first, ranks.shape[0]).astype(np.int32))
    for cname, arr, typ in zip(CHUNK_COLUMNS, (mins, maxs, row_start, counts),
                               (TS_TYPE, TS_TYPE, pa.int64(), pa.int64()), strict=True):
        data[cname] = pa.ListArray.from_arrays(offsets, pa.array(arr[order]).cast(typ))
    ns = int(slice_rows.shape[1]) if slice_rows.ndim == 2 else SLICES
    data[SLICE_COLUMN] = pa.ListArray.from_arrays(
        pa.array(np.append(first, ranks.shape[0]).astype(np.int32) * ns),
        pa.array(slice_rows[order].reshape(-1), pa.int32()))
    table = pa.table(data)
    return table.replace_schema_metadata({"promlab.label_columns": json.dumps(colmap),
                                          BUCKET_MS_KEY: str(bucket_ms),
                                          GROUPS_KEY: base64.b64encode(
                                              groups.astype("<i8").tobytes())})


def _series_sort_key(ls: Labels) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ls.name, ls.pairs


class BlockWriter:
    """Write one block under ``blocks/.tmp-<id>``; :meth:`finish` renames it into place.

    Parameters
    ----------
    blocks_dir
        The store's ``blocks`` directory.
    name_dict
        Every metric name the block will hold, sorted (the ``__name__`` column's dictionary:
        it must not change between row groups).
    start, end
        The block's range ``[start, end)``.
    bucket_ms
        Time bucket width (rows grouped by bucket after the metric), or None.
    fs
        Where ``blocks_dir`` is; over object storage the block is written in the local staging
        directory and uploaded by :meth:`finish` (``meta.json`` last).

    Memory: the pending rows (below two row groups) plus what one ``add`` is given; the
    series table (one row per chunk) is kept until :meth:`finish`.
    """

    def __init__(self, blocks_dir: str, name_dict: Sequence[str], *, start: int, end: int,
                 bucket_ms: int | None = None, fs: BlockFS = LOCAL) -> None:
        self.blocks_dir = blocks_dir
        self.fs = fs
        self.start, self.end, self.bucket_ms = start, end, bucket_ms
        #: The bucket width the rows are sliced in (the block's range when it is one bucket).
        self.slice_bucket_ms = (bucket_ms if bucket_ms and end - start > bucket_ms
                                else max(1, end - start))
        self._dict = pa.array(list(name_dict), pa.string())
        self._code = {n: i for i, n in enumerate(name_dict)}
        self.ulid = new_ulid()
        self.tmp = os.path.join(fs.staging_root(blocks_dir), f".tmp-{self.ulid}")
        os.makedirs(self.tmp)
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._groups: list[npt.NDArray[np.int64]] = []  # first rows of (metric, bucket)s
        self._ends: list[npt.NDArray[np.int64]] = []  # where pending rows' slices end
        self._rows = 0
        self._nser = 0
        self._mint: int | None = None
        self._maxt: int | None = None
        self._ser: list[tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64],
                              npt.NDArray[np.int64], npt.NDArray[np.int64],
                              npt.NDArray[np.int64], npt.NDArray[np.int64],
                              npt.NDArray[np.int64]]] = []
        self._recent = RecentCollector()  # the block's last minutes (recent.arrow, format 8)

    def add(self, labels: Sequence[Labels], sids: npt.NDArray[np.int64],
            group: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
            values: npt.NDArray[np.float64]) -> None:
        """Append whole metrics, after those already added (names in ``name_dict`` order).

        ``group`` indexes ``labels``/``sids``; samples must be sorted by ``(group, ts)`` and
        unique. Series without samples are left out.
        """
        self.add_owned(labels, sids, [group, ts, values])

    def add_owned(self, labels: Sequence[Labels], sids: npt.NDArray[np.int64],
                  arrays: list[npt.NDArray[Any]]) -> None:
        """:meth:`add` of ``arrays = [group, ts, values]``, which it empties.

        A caller that keeps no other reference lets the inputs be freed as soon as they have
        been reordered: the peak is about two copies of the samples instead of three.
        """
        group, ts, values = arrays
        arrays.clear()
        used = np.flatnonzero(np.bincount(group, minlength=len(labels))) if group.shape[0] else group
        order = sorted(range(used.shape[0]), key=lambda i: _series_sort_key(labels[int(used[i])]))
        ser_idx = used[np.array(order, np.int64)] if order else used
        nser = int(ser_idx.shape[0])
        rank_of = np.full(len(labels), -1, np.int64)
        rank_of[ser_idx] = np.arange(nser)
        ser_labels = [labels[int(i)] for i in ser_idx]
        ser_sids = sids[ser_idx]
        name_code = np.array([self._code[ls.name] for ls in ser_labels], np.int64)
        self._recent.add(ser_labels, ser_sids, rank_of, group, ts, values)

        # Row order: metric, time bucket, chunk, time. A chunk is one series in one bucket: the
        # input is sorted by (group, ts), so chunks are its runs of equal (group, bucket) and
        # only the chunks are sorted (then the rows gathered once).
        n = int(ts.shape[0])
        start, end, bucket_ms = self.start, self.end, self.bucket_ms
        if bucket_ms and end - start > bucket_ms and n:
            bucket = (ts - start) // bucket_ms
            np.maximum(bucket, 0, out=bucket)
        else:
            bucket = None
        if n:
            flag = np.empty(n, bool)
            flag[0] = True
            np.not_equal(group[1:], group[:-1], out=flag[1:])
            if bucket is not None:
                flag[1:] |= bucket[1:] != bucket[:-1]
            row_start = np.flatnonzero(flag)
            del flag
        else:
            row_start = np.zeros(0, np.int64)
        counts = np.diff(np.append(row_start, n)).astype(np.int64)
        chunk_rank = rank_of[group[row_start]]
        del group
        chunk_name = name_code[chunk_rank]
        if bucket is not None:
            # Within a (metric, bucket), chunks by first value: the jumps between neighbouring
            # chunks shrink, and so does the delta encoding of value_int (a third of the file,
            # measured). Readers order series by ``series_rank``, not by row position.
            co = np.lexsort((chunk_rank, values[row_start], bucket[row_start], chunk_name))
        else:
            co = np.lexsort((chunk_rank, chunk_name))
        del bucket
        if co.shape[0] and not bool((co[1:] > co[:-1]).all()):
            take = gather_runs(row_start[co], counts[co])
            ts, values = ts[take], values[take]
            del take
            counts, chunk_rank = counts[co], chunk_rank[co]
            row_start = np.zeros(counts.shape[0], np.int64)
            np.cumsum(counts[:-1], out=row_start[1:])
        if n:
            mins = ts[row_start]
            maxs = ts[row_start + counts - 1]
            lo, hi = int(ts.min()), int(ts.max())
            self._mint = lo if self._mint is None else min(self._mint, lo)
            self._maxt = hi if self._maxt is None else max(self._maxt, hi)
        else:
            mins = maxs = np.zeros(0, np.int64)
        scales = decimal_scales(values, row_start, counts)
        row_scale = np.repeat(scales, counts)
        row_sid = np.repeat(ser_sids[chunk_rank], counts)
        # Format 6: inside each (metric, bucket), rows by (slice, chunk, time). ``row_start``
        # stays each chunk's place in its bucket as if unsliced (it orders the chunks); the
        # rows per slice of each chunk locate its pieces (promlab.storage.slices).
        slice_rows, perm, firsts = slice_order(
            ts, row_start, counts, name_code[chunk_rank], start=start,
            bucket_ms=self.slice_bucket_ms, nslices=SLICES)
        self._groups.append(firsts + self._rows)
        self._ends.append(slice_ends(slice_rows, row_start, firsts) + self._rows)
        if perm is not None:
            ts, values, row_scale, row_sid = ts[perm], values[perm], row_scale[perm], row_sid[perm]
            del perm
        value_col, int_col = encode_values(values, row_scale)
        samples = pa.table({
            "__name__": pa.DictionaryArray.from_arrays(
                pa.array(np.repeat(name_code[chunk_rank], counts).astype(np.int32)), self._dict),
            "series_id": pa.array(row_sid),
            "timestamp": pa.array(ts).cast(TS_TYPE),
            "value": value_col,
            "value_int": int_col,
            "scale": pa.array(row_scale),
        })
        self._ser.append(([ser_labels[int(r)] for r in chunk_rank], ser_sids[chunk_rank],
                          mins, maxs, row_start.astype(np.int64) + self._rows, counts,
                          chunk_rank + self._nser, slice_rows))
        self._rows += n
        self._nser += nser
        self._pending.append(samples)
        self._pending_rows += n
        self._write_pending(final=False)

    def _write_pending(self, *, final: bool) -> None:
        """Write whole row groups of the pending rows (and the rest when ``final``)."""
        rg = _blocks.ROW_GROUP_ROWS  # read at write time (tests shrink it)
        if (self._pending_rows < rg and not final) or not self._pending:
            return
        table = pa.concat_tables(self._pending) if len(self._pending) > 1 else self._pending[0]
        if self._writer is None:
            self._writer = pq.ParquetWriter(os.path.join(self.tmp, SAMPLES_FILE), table.schema,
                                            **_WRITE_OPTIONS)
        # Row groups end at slice ends where they can (promlab.storage.slices.row_group_cuts).
        base = self._rows - self._pending_rows  # the pending rows' first row
        ends = np.concatenate(self._ends) if self._ends else np.zeros(0, np.int64)
        done = base
        for end in row_group_cuts(ends, base, self._rows, rg, final=final):
            self._writer.write_table(table.slice(done - base, end - done),
                                     row_group_size=end - done)
            done = end
        if table.num_rows == 0:
            self._writer.write_table(table)
        self._ends = [ends[ends > done]]
        rest = table.slice(done - base)
        if rest.num_rows:
            # A slice would pin the whole of the last add()'s arrays (pa.array shares numpy
            # memory): copy the tail (below one row group) so they are freed.
            rest = rest.take(pa.array(np.arange(rest.num_rows, dtype=np.int64)))
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def finish(self, *, seq: int, level: int = 1, sources: Sequence[str] = ()) -> BlockMeta:
        """Close the files, fsync and rename the block into place; returns its meta."""
        try:
            if self._writer is None and not self._pending:
                e = np.zeros(0, np.int64)
                self.add([], e, e, e, np.zeros(0, np.float64))
            self._write_pending(final=True)
            assert self._writer is not None
            self._writer.close()
            self._writer = None
            parts = self._ser
            labels = [ls for p in parts for ls in p[0]]
            cols = [np.concatenate([p[k] for p in parts]).astype(np.int64) for k in range(1, 7)]
            slice_rows = np.concatenate([p[7] for p in parts]).astype(np.int64)
            series = _series_table(labels, *cols, slice_rows=slice_rows,
                                   bucket_ms=self.slice_bucket_ms,
                                   groups=np.concatenate(self._groups).astype(np.int64))
            start = self.start
            tmp = self.tmp
            # One row group: each label column has one dictionary, read back as the index's
            # codes and values without re-encoding (``read_dictionary``).
            pq.write_table(series, os.path.join(tmp, SERIES_FILE), compression="zstd",
                           write_page_checksum=True, row_group_size=max(1, series.num_rows),
                           use_dictionary=[c for c in series.column_names
                                           if c not in (*CHUNK_COLUMNS, SLICE_COLUMN)],
                           # Nested columns are named by their leaf path (a bare list
                           # name is silently ignored): delta-packed, the lists decode in
                           # less time and take 40% less space than plain.
                           column_encoding={f"{c}.list.element": "DELTA_BINARY_PACKED"
                                            for c in (*CHUNK_COLUMNS, SLICE_COLUMN)})
            pieces = write_index_copy(series, os.path.join(tmp, INDEX_FILE), start,
                                       os.path.join(tmp, SAMPLES_FILE))
            files = {SAMPLES_FILE: file_record(os.path.join(tmp, SAMPLES_FILE), row_groups=True),
                     SERIES_FILE: file_record(os.path.join(tmp, SERIES_FILE)),
                     INDEX_FILE: file_record(os.path.join(tmp, INDEX_FILE), pieces=pieces)}
            maxt = start if self._maxt is None else self._maxt
            for fname, window_ms in RECENT_WINDOWS:  # (tail.arrow, recent.arrow)
                recent = self._recent.table(maxt, window_ms)
                recent_pieces, first_metrics, recent_map = write_recent(
                    recent, os.path.join(tmp, fname))
                files[fname] = {**file_record(os.path.join(tmp, fname), pieces=recent_pieces),
                                "mint": int(recent.schema.metadata[RECENT_MINT_KEY]),
                                "first_metrics": first_metrics, "buffers": recent_map}
            self._recent = RecentCollector()
            meta = BlockMeta(self.ulid, start, self.end,
                             start if self._mint is None else self._mint,
                             start if self._maxt is None else self._maxt,
                             self._nser, self._rows, seq, level, tuple(sources), files)
            with open(os.path.join(tmp, META_FILE), "w") as f:
                json.dump(meta.to_json(), f, indent=1)
            if isinstance(self.fs, ObjectStoreFS):
                self.fs.publish(tmp, self.fs.join(self.blocks_dir, meta.dirname))
                shutil.rmtree(tmp, ignore_errors=True)
                return meta
            for name in (SAMPLES_FILE, SERIES_FILE, INDEX_FILE, *(f for f, _ in RECENT_WINDOWS),
                         META_FILE):
                fsync_path(os.path.join(tmp, name))
            fsync_path(tmp)
            os.rename(tmp, os.path.join(self.blocks_dir, meta.dirname))
            fsync_path(self.blocks_dir)
        except BaseException:
            self.abort()
            raise
        return meta

    def abort(self) -> None:
        """Drop the half-written block."""
        if self._writer is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                self._writer.close()
            self._writer = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_block(blocks_dir: str, labels: Sequence[Labels], sids: npt.NDArray[np.int64],
                group: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                values: npt.NDArray[np.float64], *, start: int, end: int, seq: int,
                level: int = 1, sources: Sequence[str] = (),
                bucket_ms: int | None = None, fs: BlockFS = LOCAL) -> BlockMeta:
    """Write one block atomically and return its meta.

    ``group`` indexes ``labels``/``sids``; samples must be sorted by ``(group, ts)`` and unique.
    With ``bucket_ms``, rows are grouped by time bucket (after the metric name, before the
    series) so a short query on a long block reads only its buckets' row groups. This is one
    :meth:`BlockWriter.add` of everything (compaction adds metric by
    metric).
    """
    writer = BlockWriter(blocks_dir, sorted({ls.name for ls in labels}), start=start, end=end,
                         bucket_ms=bucket_ms, fs=fs)
    try:
        writer.add(labels, sids, group, ts, values)
    except BaseException:
        writer.abort()
        raise
    return writer.finish(seq=seq, level=level, sources=sources)


def write_windows(blocks_dir: str, labels: Sequence[Labels], sids: npt.NDArray[np.int64],
                  group: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                  values: npt.NDArray[np.float64], *, width: int, seq: int,
                  bucket_ms: int | None, progress: bool | None,
                  fs: BlockFS = LOCAL) -> Iterator[BlockMeta]:
    """:func:`write_block` for each ``width``-aligned window the samples fall in, oldest first.

    Samples are sorted as for :func:`write_block` (and non-empty). Yields each block's meta once
    it is written; the k-th block gets sequence number ``seq + k``.
    """
    lo, hi = int(ts.min()) // width, int(ts.max()) // width
    window = ts // width if hi > lo else None
    if window is None:
        used = [lo]
    elif hi - lo < 1 << 16:
        used = (np.flatnonzero(np.bincount(window - lo)) + lo).tolist()
    else:
        used = unique(window).tolist()
    for k, w in enumerate(_progress.iterate(progress, used, desc="writing blocks", unit="block")):
        if window is None:
            r, t, v = group, ts, values
        else:
            m = window == w
            r, t, v = group[m], ts[m], values[m]
        yield write_block(blocks_dir, labels, sids, r, t, v, start=w * width, end=(w + 1) * width,
                          seq=seq + k, bucket_ms=bucket_ms, fs=fs)
