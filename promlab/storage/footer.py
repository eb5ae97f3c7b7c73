"""Parquet footers cut down to the row groups a read needs.

A block's ``samples.parquet`` has hundreds of row groups; parsing its whole footer (the Thrift
``FileMetaData``) costs more than reading the few row groups a short query touches. The footer
serialises its row groups one after another in one list (field 4), so a footer holding only
some of them is the original bytes with that list's header rewritten and the other row groups
left out. Column chunk offsets in a ``RowGroup`` are absolute file positions: the cut footer
reads the same file. :func:`row_group_spans` finds where each row group's bytes lie (once, when
the block is written); :func:`subset` builds the cut footer from them.

Only the Thrift compact protocol is walked here (type ids and varints), never a field's meaning.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["file_spans", "row_group_spans", "subset"]

_ROW_GROUPS_FIELD = 4
_STRUCT = 12
_LIST, _SET, _MAP = 9, 10, 11
_FIXED = {3: 1, 7: 8}  # byte, double
_VARINT = (4, 5, 6)  # i16, i32, i64 (zigzag varints)


class _Reader:
    """A cursor over compact-protocol bytes."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        out = shift = 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def list_header(self) -> tuple[int, int]:
        """(element type, size) of a list or set."""
        b = self.byte()
        size = b >> 4
        if size == 15:
            size = self.varint()
        return b & 0x0F, size

    def skip(self, ttype: int) -> None:
        if ttype in (1, 2):  # a bool field: the value is in the type id
            return
        if ttype in _FIXED:
            self.pos += _FIXED[ttype]
        elif ttype in _VARINT:
            self.varint()
        elif ttype == 8:  # binary / string
            n = self.varint()
            self.pos += n
        elif ttype in (_LIST, _SET):
            etype, n = self.list_header()
            for _ in range(n):
                if etype in (1, 2):
                    self.pos += 1  # a bool element takes one byte
                else:
                    self.skip(etype)
        elif ttype == _MAP:
            n = self.varint()
            if n:
                kv = self.byte()
                for _ in range(n):
                    self.skip(kv >> 4)
                    self.skip(kv & 0x0F)
        elif ttype == _STRUCT:
            self.skip_struct()
        else:
            raise ValueError(f"bad Thrift type {ttype} at byte {self.pos}")

    def field(self, last: int) -> tuple[int, int] | None:
        """The next field's (id, type), or None at the end of the struct."""
        b = self.byte()
        if b == 0:
            return None
        delta = b >> 4
        if delta:
            return last + delta, b & 0x0F
        z = self.varint()
        return (z >> 1) ^ -(z & 1), b & 0x0F

    def skip_struct(self) -> None:
        last = 0
        while (f := self.field(last)) is not None:
            last = f[0]
            self.skip(f[1])


def row_group_spans(footer: bytes) -> npt.NDArray[np.int64]:
    """Where each row group of the Thrift ``FileMetaData`` ``footer`` lies in it.

    Returns ``[h, s_0, s_1, ..., s_n]``: the row-group list's header starts at ``h``, row group
    ``i`` is ``footer[s_i:s_i+1]``, and the list ends at ``s_n``.
    """
    r = _Reader(footer)
    last = 0
    while (f := r.field(last)) is not None:
        last, ttype = f
        if last == _ROW_GROUPS_FIELD and ttype == _LIST:
            head = r.pos
            etype, n = r.list_header()
            if etype != _STRUCT:
                raise ValueError("row groups are not structs")
            spans = [head]
            for _ in range(n):
                spans.append(r.pos)
                r.skip_struct()
            spans.append(r.pos)
            return np.array(spans, np.int64)
        r.skip(ttype)
    raise ValueError("no row groups in the footer")


def subset(footer: bytes | pa.Buffer, spans: npt.NDArray[np.int64], rgs: Sequence[int]
           ) -> pq.FileMetaData:
    """The parsed metadata of ``footer`` with row groups ``rgs`` only (renumbered ``0..k-1``).

    ``spans`` is :func:`row_group_spans` of ``footer``. A read through it
    (``pq.ParquetFile(file, metadata=...)``) reads the same bytes of the same file.
    """
    footer = memoryview(footer)
    head, starts = int(spans[0]), spans[1:]
    if head >= int(starts[0]) or int(starts[-1]) > len(footer):
        raise ValueError("row group spans do not fit the footer")
    k = len(rgs)
    hdr = bytes([(k << 4) | _STRUCT]) if k < 15 else bytes([0xF0 | _STRUCT]) + _varint(k)
    parts: list[bytes | memoryview] = [footer[:head], hdr]
    parts += [footer[int(starts[i]):int(starts[i + 1])] for i in rgs]
    parts.append(footer[int(starts[-1]):])
    body = b"".join(parts)
    tail = struct.pack("<I", len(body)) + b"PAR1"
    return pq.read_metadata(pa.BufferReader(pa.py_buffer(body + tail)))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def file_spans(path: str) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """:func:`row_group_spans` of the Parquet file ``path``'s footer, and its row groups' rows."""
    with open(path, "rb") as f:
        f.seek(-8, 2)
        (n,) = struct.unpack("<I", f.read(4))
        f.seek(-(n + 8), 2)
        footer = f.read(n)
    md = pq.read_metadata(path)
    rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)], np.int64)
    return row_group_spans(footer), rows
