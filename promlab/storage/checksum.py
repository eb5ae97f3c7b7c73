"""Checksums of block files, recorded in ``meta.json`` and checked when the files are read.

A block of format version 2 records, per file, its size and CRC-32; for ``samples.parquet`` also
the CRC-32 of its footer (the Parquet metadata) and of each row group's byte range, so a query
verifies exactly the bytes it reads (cost proportional to what it reads, not to the file).
``meta.json`` carries the CRC-32 of its own content (``checksum``: its other fields as compact,
key-sorted JSON). Parquet page checksums are written as well (any Parquet reader can verify
them). All checksums are the zlib CRC-32 (``zlib.crc32``'s values, computed by :mod:`promlab.storage.crc`),
written as unsigned integers.
"""

from __future__ import annotations

import itertools
import json
import mmap
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from promlab.errors import StorageError
from promlab.storage.crc import crc32

__all__ = ["file_record", "json_checksum", "read_checked", "read_runs", "row_group_ranges",
           "verify_range", "verify_row_groups"]


def json_checksum(d: dict[str, Any]) -> int:
    """CRC-32 of ``d`` without its ``checksum`` key, as compact key-sorted JSON."""
    body = {k: v for k, v in d.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return crc32(text.encode())


def _crc_of(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while buf := f.read(1 << 20):
            crc = crc32(buf, crc)
    return crc


def row_group_ranges(md: pq.FileMetaData) -> list[tuple[int, int]]:
    """Per row group: ``(offset, length)`` of its column chunks (contiguous in the file)."""
    out = []
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        lo, hi = None, 0
        for j in range(rg.num_columns):
            c = rg.column(j)
            start = c.data_page_offset
            if c.has_dictionary_page and c.dictionary_page_offset is not None:
                start = min(start, c.dictionary_page_offset)
            lo = start if lo is None else min(lo, start)
            hi = max(hi, start + c.total_compressed_size)
        out.append((lo or 0, hi - (lo or 0)))
    return out


def _footer_of(path: str, tail: bytes, size: int) -> tuple[int, int]:
    """``(offset, length)`` of the Parquet footer (metadata, its length and the magic) of a
    ``size``-byte file whose last 8 bytes are ``tail``."""
    if len(tail) != 8 or tail[4:] != b"PAR1":
        raise StorageError(f"{path}: bad Parquet footer")
    (n,) = struct.unpack("<I", tail[:4])
    if n + 12 > size:
        raise StorageError(f"{path}: bad Parquet footer length")
    return size - 8 - n, n + 8


def file_record(path: str, *, row_groups: bool = False, pieces: Sequence[int] = ()
                ) -> dict[str, Any]:
    """The checksum record of one file for ``meta.json``.

    With ``row_groups`` (a Parquet file) the file is mapped once and every CRC (whole file,
    footer, each row group) taken from that one mapping. ``pieces`` (ascending offsets from 0,
    the file's size last) also records each piece between them as ``[offset, length, crc32]``
    (``series.arrow``: its record batches, read one at a time).
    """
    size = os.path.getsize(path)
    if not row_groups:
        whole: dict[str, Any] = {"size": size, "crc32": _crc_of(path)}
        if pieces:
            if list(pieces) != sorted(pieces) or pieces[0] != 0 or pieces[-1] != size:
                raise ValueError(f"{path}: pieces {list(pieces)} do not tile {size} bytes")
            with open(path, "rb") as f:
                data = f.read()
            whole["pieces"] = [[a, b - a, crc32(data[a:b])]
                               for a, b in itertools.pairwise(pieces)]
        return whole
    if size < 12:
        raise StorageError(f"{path}: too short for Parquet ({size} bytes)")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        mv = memoryview(mm)
        try:
            off, n = _footer_of(path, bytes(mv[size - 8:]), size)
            rec: dict[str, Any] = {"size": size, "crc32": crc32(mv),
                                   "footer_crc32": crc32(mv[off:off + n])}
            md = pq.read_metadata(path)
            rec["row_groups"] = [[o, ln, crc32(mv[o:o + ln])] for o, ln in row_group_ranges(md)]
        finally:
            mv.release()
    return rec


def check_size(path: str, rec: dict[str, Any], size_of: Callable[[str], int] = os.path.getsize) -> None:
    """Raise :class:`StorageError` when the file's size is not the recorded one.

    ``size_of`` finds the size (a remote filesystem's, see :mod:`promlab.storage.objectstore`).
    """
    try:
        size = size_of(path)
    except OSError as exc:
        raise StorageError(f"{path}: missing: {exc}") from exc
    if size != rec.get("size"):
        raise StorageError(f"{path}: size {size} bytes, meta.json records {rec.get('size')}")


def verify_range(fh: Any, path: str, offset: int, length: int, crc: int, what: str) -> Any:
    """Check the CRC-32 of ``length`` bytes at ``offset`` of the Arrow file ``fh``; the bytes."""
    try:
        buf = fh.read_at(length, offset)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"{path}: unreadable {what}: {exc}") from exc
    if len(buf) != length or crc32(memoryview(buf)) != crc:
        raise StorageError(f"{path}: checksum mismatch in {what}")
    return buf


def read_runs(fh: Any, path: str, offset: int, pieces: Sequence[tuple[int, int, str]]
              ) -> list[memoryview]:
    """Read back-to-back byte ranges of the Arrow file ``fh`` from ``offset`` in one read, each
    (``(length, crc, what)``) checked against its CRC-32; their bytes."""
    total = sum(ln for ln, _, _ in pieces)
    try:
        buf = fh.read_at(total, offset)
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"{path}: unreadable {pieces[0][2]}: {exc}") from exc
    if len(buf) != total:
        raise StorageError(f"{path}: unreadable {pieces[0][2]}: short read")
    mv = memoryview(buf)
    out, pos = [], 0
    for ln, crc, what in pieces:
        part = mv[pos:pos + ln]
        if crc32(part) != crc:
            raise StorageError(f"{path}: checksum mismatch in {what}")
        out.append(part)
        pos += ln
    return out


def verify_row_groups(fh: Any, path: str, ranges: Sequence[Sequence[int]], rgs: Sequence[int],
                      done: set[int]) -> None:
    """Check the recorded CRC (``ranges``: meta.json's ``[offset, length, crc]`` per row group)
    of each row group of ``rgs`` not in ``done`` (then added to it); row groups lying back to
    back in the file are read at once."""
    run: list[tuple[int, int, str]] = []
    start = end = 0
    for i in sorted(set(rgs) - done):
        if i >= len(ranges):
            raise StorageError(f"{path}: row group {i} has no checksum")
        off, length, crc = (int(x) for x in ranges[i])
        if run and off != end:
            read_runs(fh, path, start, run)
            run = []
        if not run:
            start = off
        run.append((length, crc, f"row group {i}"))
        end = off + length
    if run:
        read_runs(fh, path, start, run)
    done.update(rgs)


def verify_footer(fh: Any, path: str, rec: dict[str, Any]) -> Any:
    """Check the footer CRC of the open samples file ``fh``; the checked bytes (the Thrift
    metadata, its length and the magic: ``pq.read_metadata`` parses them as a file of their own,
    so the footer is read and checked once)."""
    size = int(rec["size"])
    try:
        tail = bytes(fh.read_at(8, size - 8)) if size >= 12 else b""
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"{path}: unreadable Parquet footer: {exc}") from exc
    off, n = _footer_of(path, tail, size)
    return verify_range(fh, path, off, n, int(rec["footer_crc32"]), "Parquet footer")


def read_checked(fh: Any, path: str, rec: dict[str, Any] | None) -> pa.Buffer:
    """The whole of the open Arrow file ``fh`` as a buffer, checked against ``rec`` (when given)."""
    try:
        fh.seek(0)
        buf = fh.read_buffer()
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"{path}: unreadable: {exc}") from exc
    if rec is not None:
        if buf.size != rec.get("size"):
            raise StorageError(f"{path}: size {buf.size} bytes, meta.json records {rec.get('size')}")
        if crc32(memoryview(buf)) != rec.get("crc32"):
            raise StorageError(f"{path}: checksum mismatch")
    return buf


def verify_file(path: str, rec: dict[str, Any]) -> None:
    """Full check of one file against its record (``promlab tsdb verify``)."""
    check_size(path, rec)
    if _crc_of(path) != rec.get("crc32"):
        raise StorageError(f"{path}: checksum mismatch")
