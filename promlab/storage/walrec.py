"""WAL record framing: encoding, decoding and resynchronising scans (see :mod:`promlab.storage.wal`).

Format 2 (written since issue 15) frames every record as::

    <4-byte SYNC><u8 type><u32 payload length><u32 crc32(type + length + payload)> payload

The CRC covers the type and length bytes too, so a damaged length field is caught like a damaged
payload. After a bad stretch of bytes, :func:`scan` resynchronises: it searches forward for the
next ``SYNC`` whose record verifies and goes on from there, so one damaged record costs that
record, not the rest of the file. A stray ``SYNC`` inside a payload only matters if a damaged
header sends the scan into that payload, and even then it is used only if a whole record behind
it passes the CRC.

Format 1 (``<u32 length><u32 crc32(type + payload)><u8 type>`` payload, no sync marker) is still
read; it cannot resynchronise, so its first bad record ends the file, as before.

Payloads:

* ``SERIES`` (1): UTF-8 JSON ``[[series_id, [name, value, name, value, ...]], ...]``.
* ``SAMPLES`` (2): ``<u32 n>`` then ``n`` little-endian int64 series ids, ``n`` int64
  timestamps (ms) and ``n`` float64 values (raw bits, so the staleness NaN survives).
"""

from __future__ import annotations

import itertools
import json
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.storage.crc import crc32

__all__ = ["MAGIC", "MAGIC_V1", "Damage", "SamplesRecord", "Scan", "SeriesRecord", "decode",
           "encode_checkpoint", "encode_samples", "encode_series", "scan"]

MAGIC_V1 = b"PLWAL\x00\x00\x01"
#: The header of every segment and checkpoint written now (format 2).
MAGIC = b"PLWAL\x00\x00\x02"
SYNC = b"\xa7PL\x5e"
_HDR = struct.Struct("<4sBII")
_HDR_V1 = struct.Struct("<IIB")
REC_SERIES = 1
REC_SAMPLES = 2
_KINDS = (REC_SERIES, REC_SAMPLES)
#: A length above this is damage, not a record still being written.
MAX_RECORD = 1 << 34

# Checkpoints are written in chunks so that one damaged record loses one chunk.
CKPT_SERIES_CHUNK = 4096
CKPT_SAMPLES_CHUNK = 65536


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    series: list[tuple[int, Labels]]


@dataclass(frozen=True, slots=True)
class SamplesRecord:
    sids: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


Record = SeriesRecord | SamplesRecord


@dataclass(frozen=True, slots=True)
class Damage:
    """A stretch of bytes ``[start, end)`` of a file that held no verifiable record.

    ``records`` is how many records it seems to have held (at least 1), ``samples`` and
    ``series`` what they held where the surviving header bytes tell (else 0), ``torn`` whether
    it is an incomplete last record (a write cut short) rather than damage.
    """

    start: int
    end: int
    records: int = 1
    samples: int = 0
    series: int = 0
    series_records: int = 0
    torn: bool = False

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(slots=True)
class Scan:
    """What :func:`scan` found: the records, where reading stopped, the damaged stretches.

    ``end`` is the offset after the last record read (or after the last damaged stretch that is
    followed by a record); ``tail`` is the damaged stretch from ``end`` to the end of the buffer
    (no verifiable record after it), or None.
    """

    records: list[Record] = field(default_factory=list)
    end: int = 0
    damage: list[Damage] = field(default_factory=list)
    tail: Damage | None = None


def encode_series(series: Sequence[tuple[int, Labels]]) -> bytes:
    flat = itertools.chain.from_iterable
    body = [[sid, list(flat(ls.pairs))] for sid, ls in series]
    if len(body) <= _JSON_SLICE:
        return _frame(REC_SERIES, json.dumps(body, separators=(",", ":")).encode())
    # The same JSON text, encoded slice by slice: one json.dumps of 200k series (a big target's
    # first scrape) holds the GIL for most of a second and stalls the scrape event loop.
    parts = [json.dumps(body[i:i + _JSON_SLICE], separators=(",", ":"))[1:-1].encode()
             for i in range(0, len(body), _JSON_SLICE)]
    return _frame(REC_SERIES, b"[" + b",".join(parts) + b"]")


_JSON_SLICE = 8192


def encode_samples(sids: npt.NDArray[np.int64], ts_ms: npt.NDArray[np.int64],
                   values: npt.NDArray[np.float64]) -> bytes:
    """One SAMPLES record, built with a single copy of the arrays (the CRC runs over them in place)."""
    n = int(sids.shape[0])
    parts: list[bytes | memoryview] = [
        struct.pack("<I", n),
        np.ascontiguousarray(sids, "<i8").data.cast("B"),
        np.ascontiguousarray(ts_ms, "<i8").data.cast("B"),
        np.ascontiguousarray(values, "<f8").data.cast("B"),
    ]
    length = 4 + 24 * n
    crc = crc32(struct.pack("<BI", REC_SAMPLES, length))
    for part in parts:
        crc = crc32(part, crc)
    return b"".join([_HDR.pack(SYNC, REC_SAMPLES, length, crc), *parts])


def encode_checkpoint(series: Sequence[tuple[int, Labels]], sids: npt.NDArray[np.int64],
                      ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> Iterator[bytes]:
    """A head's state as records of bounded size: a damaged one loses only its own chunk."""
    for i in range(0, len(series), CKPT_SERIES_CHUNK):
        yield encode_series(series[i:i + CKPT_SERIES_CHUNK])
    for i in range(0, int(ts_ms.shape[0]), CKPT_SAMPLES_CHUNK):
        j = i + CKPT_SAMPLES_CHUNK
        yield encode_samples(sids[i:j], ts_ms[i:j], values[i:j])


def _frame(kind: int, payload: bytes) -> bytes:
    crc = crc32(payload, crc32(struct.pack("<BI", kind, len(payload))))
    return _HDR.pack(SYNC, kind, len(payload), crc) + payload


_BAD, _SHORT = -1, -2


def _record_at(buf: bytes, pos: int) -> tuple[int, Record | None]:
    """``(end, record)`` of a verified record at ``pos``; ``(_SHORT, None)`` for a plausible
    header whose record runs past the buffer; ``(_BAD, None)`` otherwise."""
    end = len(buf)
    if end - pos < _HDR.size:
        return (_SHORT if SYNC.startswith(buf[pos:pos + 4]) else _BAD), None
    sync, kind, length, crc = _HDR.unpack_from(buf, pos)
    if sync != SYNC or kind not in _KINDS:
        return _BAD, None
    start = pos + _HDR.size
    if end - start < length:
        return (_SHORT if length <= MAX_RECORD else _BAD), None
    mv = memoryview(buf)
    if crc32(mv[start:start + length], crc32(mv[pos + 4:pos + 9])) != crc:
        return _BAD, None
    try:
        return start + length, _decode_payload(kind, mv[start:start + length])
    except (ValueError, KeyError, TypeError):
        return _BAD, None


def _damage(buf: bytes, start: int, end: int, *, torn: bool = False) -> Damage:
    """Describe ``buf[start:end]``: what its first header says, where that is consistent."""
    nrec = max(1, buf.count(SYNC, start, end))
    if end - start < _HDR.size + 4 or buf[start + 4] not in _KINDS:
        return Damage(start, end, nrec, torn=torn)
    kind = buf[start + 4]
    (length,) = struct.unpack_from("<I", buf, start + 5)
    body = start + _HDR.size
    if kind == REC_SERIES:
        n = buf.count(b"]],[", body, min(end, body + length)) + 1
        return Damage(start, end, nrec, series=n, series_records=1, torn=torn)
    (n,) = struct.unpack_from("<I", buf, body)
    span = end - body  # the record's real size, if it is the only one in the stretch
    if nrec == 1 and not torn and (length == span or 4 + 24 * n == span) and (span - 4) % 24 == 0:
        samples = (span - 4) // 24
    elif 4 + 24 * n == length:
        samples = n  # the count and the length field agree with each other
    else:
        samples = 0
    return Damage(start, end, nrec, samples=samples, torn=torn)


def scan(buf: bytes, start: int = 0) -> Scan:
    """Decode format-2 records from ``buf[start:]``, resynchronising after damage."""
    out = Scan(end=start)
    pos, end = start, len(buf)
    while pos < end:
        nxt, rec = _record_at(buf, pos)
        if rec is not None:
            out.records.append(rec)
            pos = out.end = nxt
            continue
        torn = nxt == _SHORT
        probe = pos
        while True:
            probe = buf.find(SYNC, probe + 1)
            if probe < 0:
                out.tail = _damage(buf, pos, end, torn=torn)
                return out
            if _record_at(buf, probe)[1] is not None:
                break
        out.damage.append(_damage(buf, pos, probe))
        pos = out.end = probe
    return out


def scan_v1(buf: bytes, start: int = 0) -> Scan:
    """Decode format-1 records; the first bad one ends the scan (no way to resynchronise)."""
    out = Scan(end=start)
    pos, end = start, len(buf)
    mv = memoryview(buf)
    while pos < end:
        torn = end - pos < _HDR_V1.size
        if not torn:
            length, crc, kind = _HDR_V1.unpack_from(mv, pos)
            body = pos + _HDR_V1.size
            torn = end - body < length
            if not torn and crc32(mv[body:body + length], crc32(bytes((kind,)))) == crc:
                try:
                    out.records.append(_decode_payload(kind, mv[body:body + length]))
                    pos = out.end = body + length
                    continue
                except (ValueError, KeyError, TypeError):
                    pass
        out.tail = Damage(pos, end, torn=torn)
        break
    return out


def decode(buf: bytes) -> tuple[list[Record], int, bool]:
    """Decode format-2 records; returns them, the bytes read up to the last one, and whether
    anything unreadable follows it (damage or a record cut short)."""
    s = scan(bytes(buf))
    return s.records, (s.end if s.tail is None else s.tail.start), bool(s.damage or s.tail)


def _decode_payload(kind: int, payload: memoryview) -> Record:
    if kind == REC_SERIES:
        body = json.loads(bytes(payload))
        series = []
        for sid, flat in body:
            pairs = tuple(sorted(zip(flat[0::2], flat[1::2], strict=True)))
            series.append((int(sid), Labels.from_sorted_pairs(pairs)))
        return SeriesRecord(series)
    if kind == REC_SAMPLES:
        (n,) = struct.unpack_from("<I", payload, 0)
        if len(payload) != 4 + 24 * n:
            raise ValueError("samples record size mismatch")
        sids = np.frombuffer(payload, "<i8", n, 4).astype(np.int64)
        ts = np.frombuffer(payload, "<i8", n, 4 + 8 * n).astype(np.int64)
        vals = np.frombuffer(payload, "<f8", n, 4 + 16 * n).astype(np.float64)
        return SamplesRecord(sids, ts, vals)
    raise ValueError(f"unknown WAL record type {kind}")
