"""Writing ``series.arrow``: the series table again as an Arrow IPC file, in record batches of
whole metrics (format 7), with what a reader needs to read a row group of the samples file
without parsing its whole footer. See ``docs/storage.md``, formats 5 and 7.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from promlab.storage.footer import file_footer, file_spans, footer_ends, piece_crcs
from promlab.storage.seriesindex import (
    CHUNK_COLUMNS,
    FOOTER_CRCS_KEY,
    FOOTER_ENDS_KEY,
    FOOTER_SPANS_KEY,
    METRIC_BATCHES_KEY,
    ROW_GROUP_ROWS_KEY,
    metric_batches,
    metric_runs,
)
from promlab.storage.slices import GROUPS_KEY, SLICE_COLUMN

__all__ = ["empty_batch", "write_batches", "write_index_copy"]


def write_index_copy(series: pa.Table, path: str, start: int, samples_path: str) -> list[int]:
    """``series.arrow``: the series table again as an Arrow IPC file, LZ4-compressed.

    Label columns dictionary-encoded, the chunk lists as int32 where they fit (chunk times as
    ms since ``start``, recorded as ``promlab.time_base``): a reader takes its arrays as they
    are in the file, where Parquet decodes and decompresses the list columns.
    The buffers are LZ4-frame compressed (Arrow IPC buffer compression, read by any Arrow
    reader): on the standard dataset 2.06 MB -> 0.44 MB, which a first query after the page
    cache was dropped reads in 0.3 ms instead of 1.5 ms and decompresses in 0.14 ms. The schema
    metadata also records where each row group of ``samples_path`` lies in its footer and its
    rows (:mod:`promlab.storage.footer`), so a read parses the footer of the row groups it reads
    only. See ``docs/storage.md``, format 5.

    The table is written in record batches of whole metrics (at least
    :data:`~promlab.storage.seriesindex.MIN_BATCH_SERIES` series each) after an empty first one
    (the schema and the dictionaries come with it). Returns the file's piece offsets (0, the end of each batch,
    the file's size): ``meta.json`` records each piece's CRC, so a reader of one metric's batch
    reads and checks that batch, the first piece and the footer only.
    """
    cols = {}
    i32 = pa.list_(pa.int32())
    for name in series.column_names:
        col = series[name].combine_chunks()
        if pa.types.is_string(col.type):
            col = col.dictionary_encode()
        elif name == SLICE_COLUMN:
            vals = col.values.to_numpy()
            # Rows per 15-min slice fit 16 bits unless samples come faster than 73 a second.
            small = not vals.shape[0] or int(vals.max()) < 1 << 16
            typ = pa.uint16() if small else pa.int32()
            col = pa.ListArray.from_arrays(col.offsets, pa.array(vals, typ),
                                           type=pa.list_(typ))
        elif name in CHUNK_COLUMNS:
            vals = col.values.cast(pa.int64()).to_numpy()
            if name in ("chunk_min_time", "chunk_max_time"):
                vals = vals - start
            wide = bool(vals.shape[0]) and (int(vals.min()) < -(1 << 31)
                                            or int(vals.max()) >= 1 << 31)
            col = pa.ListArray.from_arrays(col.offsets, pa.array(vals, pa.int64() if wide else
                                                                 pa.int32()),
                                           type=pa.list_(pa.int64()) if wide else i32)
        cols[name] = col
    md = dict(series.schema.metadata or {})
    # Format 7: each batch carries the slice groups of its metrics (a reader of one metric's
    # batch reads the schema, so it holds nothing per (metric, bucket)).
    raw_groups = md.pop(GROUPS_KEY, None)
    groups = (np.zeros(0, np.int64) if raw_groups is None else
              np.frombuffer(base64.b64decode(raw_groups), "<i8").astype(np.int64))
    md[b"promlab.time_base"] = str(start).encode()
    spans, rows = file_spans(samples_path)
    md[FOOTER_SPANS_KEY] = base64.b64encode(spans.astype("<i8").tobytes())
    md[ROW_GROUP_ROWS_KEY] = base64.b64encode(rows.astype("<i8").tobytes())
    footer = file_footer(samples_path)
    md[FOOTER_CRCS_KEY] = base64.b64encode(piece_crcs(footer, spans).astype("<i8").tobytes())
    md[FOOTER_ENDS_KEY] = base64.b64encode(footer_ends(footer, spans))
    # Record batches of whole metrics (the rows are in label order, so a metric's series are a
    # run): a first query reads and decodes its metric's batch only (issue 14). The batches'
    # metric names are recorded in order; the label columns share one dictionary each.
    table = pa.table(cols)
    batches = metric_batches(*metric_runs(table)) if table.num_rows else []
    md[METRIC_BATCHES_KEY] = json.dumps([names for _, _, names in batches]).encode()
    table = table.replace_schema_metadata(md).combine_chunks()
    rs = table["chunk_row_start"].combine_chunks()

    def carried(lo: int, hi: int) -> dict[bytes, bytes]:
        # The groups its chunks' rows lie in: from its first chunk's row (the groups tile
        # the samples file) to its last row.
        starts = rs.slice(lo, hi - lo).flatten().to_numpy().astype(np.int64)
        a, b = np.searchsorted(groups, [int(starts.min()), int(starts.max())], "right")
        mine = groups[max(int(a) - 1, 0):int(b)]
        return {GROUPS_KEY: base64.b64encode(mine.astype("<i8").tobytes())}

    return write_batches(table, path, batches, carried)


def write_batches(table: pa.Table, path: str, batches: list[tuple[int, int, list[str]]],
                  carried: Callable[[int, int], dict[bytes, bytes]] | None = None, *,
                  compression: str | None = "lz4") -> list[int]:
    """Write ``table`` (one chunk per column) as an Arrow IPC file, its buffers
    ``compression``-compressed (LZ4 by default, None: as they are): an empty
    first batch (the schema and the dictionaries come with it), then rows ``lo:hi`` of each
    of ``batches`` (:func:`~promlab.storage.seriesindex.metric_batches`), each with the
    message metadata ``carried(lo, hi)`` when given. Returns the piece offsets (0, the end of
    each batch, the file's size) for ``meta.json``."""
    batch = pa.RecordBatch.from_arrays([c.chunk(0) if c.num_chunks else pa.array([], c.type)
                                        for c in table.columns], schema=table.schema)
    opts = pa.ipc.IpcWriteOptions(compression=compression)
    ends = [0]
    with pa.OSFile(path, "wb") as sink:
        with pa.ipc.new_file(sink, table.schema, options=opts) as w:
            # Batch 0 is empty: the schema and the dictionaries come with it, so a reader
            # of one metric's batch reads this piece, its batch and the footer only.
            w.write_batch(empty_batch(batch))
            ends.append(sink.tell())
            for lo, hi, _ in batches:
                w.write_batch(batch.slice(lo, hi - lo),
                              custom_metadata=None if carried is None else carried(lo, hi))
                ends.append(sink.tell())
        ends.append(sink.tell())
    return ends


def empty_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """No rows of ``batch``'s schema, its dictionary columns with their dictionaries (a slice
    of no rows would still carry its list columns' values into the IPC file)."""
    cols = []
    for col in batch.columns:
        if pa.types.is_dictionary(col.type):
            cols.append(pa.DictionaryArray.from_arrays(pa.array([], col.type.index_type),
                                                       col.dictionary))
        else:
            cols.append(pa.array([], col.type))
    return pa.RecordBatch.from_arrays(cols, schema=batch.schema)
