"""A block's series index file read whole or a piece at a time, and its table made into the
arrays and label index a :class:`~promlab.storage.blocks.Block` queries.

From format 7, ``series.arrow`` is written in record batches of whole metrics and ``meta.json``
records each piece's CRC (``pieces``: the first batch with the schema and dictionaries, each
metric batch, the footer), so a query on one metric reads and checks those pieces only
(:func:`read_index_file`). See ``docs/storage.md``, format 7.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from promlab.errors import StorageError
from promlab.storage import checksum as _ck
from promlab.storage.crc import crc32
from promlab.storage.postings import LabelColumn, LabelIndex
from promlab.storage.seriesindex import CHUNK_COLUMNS, SeriesIndexFile, chunk_lists, label_codes
from promlab.storage.slices import SliceIndex, slice_index

__all__ = ["WHOLE_INDEX_READ", "Fill", "IndexArrays", "index_arrays", "read_index_file", "tiles"]

#: A series index file up to this size is read (and checked) whole in one read, even when a
#: query decodes one metric's batch of it: one read from disk costs less than three dependent
#: ones (first piece and footer, then the batch) below a megabyte.
WHOLE_INDEX_READ = 1 << 20

#: Reads record batch ``k`` of a partly read index file into its buffer (``None``: returns the
#: whole file, checked): :class:`~promlab.storage.seriesindex.SeriesIndexFile`'s ``fill``.
Fill = Callable[[int | None], pa.Buffer | None]
_I64 = npt.NDArray[np.int64]


def tiles(pieces: Any, rec: dict[str, Any] | None) -> bool:
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


def read_index_file(fh: Any, path: str, rec: dict[str, Any] | None, *, pieces: bool,
                    whole_read: int = WHOLE_INDEX_READ) -> tuple[pa.Buffer, Fill | None]:
    """The bytes of the index file open as ``fh`` and, when ``pieces`` (``series.arrow``) and
    ``meta.json``'s record ``rec`` lists its pieces, the :data:`Fill` that reads or checks the
    others: only the first piece (schema and dictionaries) and the last (the footer) are
    checked now, each against its CRC; a file larger than :data:`WHOLE_INDEX_READ` is read a
    piece at a time, a smaller one whole in one read (its other pieces checked when a batch of
    theirs is first read: a query on one metric checks that metric's bytes, not the file's).
    Without pieces, the whole file, checked. ``fh`` is closed once the whole file is read.
    ``whole_read``: the size up to which the file is read whole (0: always a piece at a time)."""
    listed = rec.get("pieces") if rec is not None and pieces else None
    if rec is None or not tiles(listed, rec):
        buf = _ck.read_checked(fh, path, rec)
        fh.close()
        return buf, None
    assert listed is not None
    if int(rec["size"]) <= whole_read:
        return _checked_lazily(fh, path, rec, listed)
    buf = pa.allocate_buffer(int(rec["size"]))
    view = memoryview(buf).cast("B")
    done = [False] * len(listed)

    def fill(k: int | None) -> pa.Buffer | None:
        if k is None:  # the whole file: read at once and checked whole
            whole = _ck.read_checked(fh, path, rec)
            fh.close()
            return whole
        if not done[k]:
            off, ln, crc = (int(x) for x in listed[k])
            (got,) = _ck.read_runs(fh, path, off, [(ln, crc, f"record batch {k}")])
            view[off:off + ln] = got
            done[k] = True
        return None

    fill(0)
    fill(len(listed) - 1)
    return buf, fill


def _checked_lazily(fh: Any, path: str, rec: dict[str, Any], listed: list[Any]
                    ) -> tuple[pa.Buffer, Fill]:
    """The whole file read at once, its first and last pieces checked, the :data:`Fill` that
    checks the others in place (``None``: all of them; returns the buffer)."""
    buf = _ck.read_checked(fh, path, None)
    fh.close()
    if buf.size != int(rec["size"]):
        raise StorageError(f"{path}: size {buf.size} bytes, meta.json records {rec['size']}")
    view = memoryview(buf)
    done = [False] * len(listed)

    def check(k: int | None) -> pa.Buffer | None:
        for i in range(len(listed)) if k is None else (k,):
            if not done[i]:
                off, ln, crc = (int(x) for x in listed[i])
                if crc32(view[off:off + ln]) != crc:
                    raise StorageError(f"{path}: checksum mismatch in record batch {i}")
                done[i] = True
        return buf if k is None else None

    check(0)
    check(len(listed) - 1)
    return buf, check


@dataclass(frozen=True, slots=True)
class IndexArrays:
    """A series table as a block queries it: per chunk its series id, first/last time, rows
    in the samples file and series rank (label order; None before format 3), its slice pieces
    (format 6 on), and the label index over the chunks."""

    sids: _I64
    min_time: _I64
    max_time: _I64
    row_start: _I64
    row_count: _I64
    rank: _I64 | None
    slices: SliceIndex | None
    index: LabelIndex


def index_arrays(table: pa.Table, groups: _I64 | None, sf: SeriesIndexFile, *, version: int,
                 start: int, arrow: bool) -> IndexArrays:
    """:class:`IndexArrays` of series table ``table`` of file ``sf`` (its slice ``groups``
    from format 7 on) in a block of format ``version`` starting at ``start`` (``arrow``: read
    from ``series.arrow``, whose chunk times count from its time base). Raises
    KeyError/ValueError/ArrowException when the table is damaged."""
    colmap = sf.colmap
    v4 = version >= 4
    if version == 3:
        table.column("series_rank")
    for cname in ("series_id", *(CHUNK_COLUMNS if v4 else (
            "row_start", "row_count", "min_time", "max_time")), *colmap):
        table.column(cname)
    chunk_series: _I64 | None = None
    slices = None
    rank: _I64 | None = None
    if v4:
        # One row per series in label order: chunk i belongs to series chunk_series[i], whose
        # position is its rank; label codes are gathered per chunk (numpy only).
        chunk_series, chunk_cols = chunk_lists(table, int(sf.kv[b"promlab.time_base"])
                                               if arrow else 0)
        slices = slice_index(table, chunk_cols, start, version, groups)
        n = int(chunk_series.shape[0])
        sids = table["series_id"].to_numpy()[chunk_series]
        min_time, max_time, row_start, row_count = chunk_cols
        rank = chunk_series
    else:
        n = table.num_rows
        sids = table["series_id"].to_numpy()
        row_start = table["row_start"].to_numpy()
        row_count = table["row_count"].to_numpy()
        min_time = table["min_time"].cast(pa.int64()).to_numpy()
        max_time = table["max_time"].cast(pa.int64()).to_numpy()
        if version >= 3:
            rank = table["series_rank"].to_numpy()
    cols = {}
    for cname, lname in colmap.items():
        col = table[cname]
        if not pa.types.is_dictionary(col.type) or col.num_chunks != 1:
            col = pc.dictionary_encode(col)
        enc = col.combine_chunks()
        codes = label_codes(enc.indices)
        # Format 4 stores codes per series: each chunk's are gathered when first matched.
        cols[lname] = LabelColumn(codes, enc.dictionary.to_pylist(), rows=chunk_series)
    return IndexArrays(sids, min_time, max_time, row_start, row_count, rank, slices,
                       LabelIndex(n, cols))
