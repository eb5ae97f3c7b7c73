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
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from promlab.storage.crc import crc32

__all__ = ["FooterPieces", "file_footer", "file_spans", "footer_ends", "piece_crcs",
           "row_group_spans", "subset"]

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
    return _assemble(footer[:head], [footer[int(starts[i]):int(starts[i + 1])] for i in rgs],
                     footer[int(starts[-1]):])


def _assemble(head: bytes | memoryview, groups: Sequence[bytes | memoryview],
              rest: bytes | memoryview) -> pq.FileMetaData:
    """The metadata of a footer: ``head`` (up to the row-group list), ``groups`` (the row
    groups' bytes, under a new list header) and ``rest`` (after the list)."""
    k = len(groups)
    hdr = bytes([(k << 4) | _STRUCT]) if k < 15 else bytes([0xF0 | _STRUCT]) + _varint(k)
    body = b"".join([head, hdr, *groups, rest])
    tail = struct.pack("<I", len(body)) + b"PAR1"
    return pq.read_metadata(pa.BufferReader(pa.py_buffer(body + tail)))


def piece_crcs(footer: bytes, spans: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """CRC-32 of each row group's bytes in ``footer`` (``spans``: :func:`row_group_spans`)."""
    mv = memoryview(footer)
    return np.array([crc32(mv[a:b]) for a, b in pairwise(spans[1:].tolist())], np.int64)


def footer_ends(footer: bytes, spans: npt.NDArray[np.int64]) -> bytes:
    """``footer`` without its row groups: what precedes the first (the row-group list's header
    included) and what follows the last."""
    return footer[:int(spans[1])] + footer[int(spans[-1]):]


#: Reads back-to-back pieces from a file offset, each ``(length, crc, what)`` checked:
#: :func:`promlab.storage.checksum.read_runs` of an open file.
ReadRuns = Callable[[int, Sequence[tuple[int, int, str]]], list[memoryview]]


class FooterPieces:
    """A samples file's footer read one row group's piece at a time.

    The block's series index holds the footer's ends (:func:`footer_ends`: schema, key-value
    metadata) and each row group's piece CRC-32 (:func:`piece_crcs`); a read fetches and
    checks the pieces of its row groups only (kept for later reads), not the whole footer.

    Parameters
    ----------
    ends, spans, crcs
        :func:`footer_ends`, :func:`row_group_spans` and :func:`piece_crcs` of the footer.
    size
        The file's size (the footer, its 4-byte length and the magic end it).

    Raises ValueError when they do not fit together.
    """

    def __init__(self, ends: bytes, spans: npt.NDArray[np.int64], crcs: npt.NDArray[np.int64],
                 size: int) -> None:
        head, first, last = int(spans[0]), int(spans[1]), int(spans[-1])
        n = len(ends) - first + last  # the footer's length
        if (not 0 <= head < first <= len(ends) or crcs.shape[0] != spans.shape[0] - 2
                or n + 8 > size or not bool((np.diff(spans[1:]) >= 0).all())):
            raise ValueError("footer pieces do not fit the footer")
        self.ends, self.spans, self.crcs = ends, spans, crcs
        self.offset = size - 8 - n  # the footer's place in the file
        self._pieces: dict[int, memoryview] = {}

    def span(self) -> tuple[int, int]:
        """Where the row groups' pieces lie in the file: (offset, length)."""
        first, last = int(self.spans[1]), int(self.spans[-1])
        return self.offset + first, last - first

    def runs(self, rgs: Sequence[int]) -> list[list[int]]:
        """The row groups of ``rgs`` whose pieces are not read yet, in runs of consecutive
        ones (a run's pieces lie back to back: one read)."""
        out: list[list[int]] = []
        for r in sorted(set(rgs) - self._pieces.keys()):
            if out and out[-1][-1] == r - 1:
                out[-1].append(r)
            else:
                out.append([r])
        return out

    def run_span(self, run: Sequence[int]) -> tuple[int, int]:
        """Where the pieces of a run of consecutive row groups lie: (offset, length)."""
        s = self.spans
        return self.offset + int(s[run[0] + 1]), int(s[run[-1] + 2] - s[run[0] + 1])

    def metadata(self, rgs: Sequence[int], read: ReadRuns) -> pq.FileMetaData:
        """The parsed metadata of row groups ``rgs`` only (renumbered ``0..k-1``), their pieces
        not read yet fetched by ``read`` (consecutive row groups at once)."""
        s = self.spans
        for run in self.runs(rgs):
            got = read(self.run_span(run)[0],
                       [(int(s[r + 2] - s[r + 1]), int(self.crcs[r]), f"footer of row group {r}")
                        for r in run])
            self._pieces.update(zip(run, got, strict=True))
        first = int(s[1])
        return _assemble(self.ends[:int(s[0])], [self._pieces[r] for r in rgs],
                         self.ends[first:])


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
    md = pq.read_metadata(path)
    rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)], np.int64)
    return row_group_spans(file_footer(path)), rows


def file_footer(path: str) -> bytes:
    """The Thrift ``FileMetaData`` bytes of the Parquet file ``path``."""
    with open(path, "rb") as f:
        f.seek(-8, 2)
        (n,) = struct.unpack("<I", f.read(4))
        f.seek(-(n + 8), 2)
        return f.read(n)
