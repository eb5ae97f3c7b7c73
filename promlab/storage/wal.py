"""The write-ahead log: numbered segment files of CRC-checked records, plus checkpoints.

File layout (``<dir>/wal/``)::

    00000003            segment: MAGIC then records, appended by the writer
    checkpoint.00000003 the head's state when segment 3 was started (series + samples)

A record is ``<u32 payload length><u32 crc32(type byte + payload)><u8 type>`` then the payload:

* ``SERIES`` (1): UTF-8 JSON ``[[series_id, [name, value, name, value, ...]], ...]``.
* ``SAMPLES`` (2): ``<u32 n>`` then ``n`` little-endian int64 series ids, ``n`` int64
  timestamps (ms) and ``n`` float64 values (raw bits, so the staleness NaN survives).

Replay reads the newest checkpoint, then every segment numbered at or after it, in order. A record
cut short or failing its CRC ends the segment (a torn write from a crash): the writer truncates it
there; a read-only follower stops there and retries later, because the writer may still be
writing it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError
from promlab.model import Labels

__all__ = ["SamplesRecord", "SeriesRecord", "WalFollower", "WalWriter"]

log = logging.getLogger("promlab.storage")

MAGIC = b"PLWAL\x00\x00\x01"
_HDR = struct.Struct("<IIB")
REC_SERIES = 1
REC_SAMPLES = 2
_CKPT = "checkpoint."


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    series: list[tuple[int, Labels]]


@dataclass(frozen=True, slots=True)
class SamplesRecord:
    sids: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


Record = SeriesRecord | SamplesRecord


def encode_series(series: Sequence[tuple[int, Labels]]) -> bytes:
    flat = itertools.chain.from_iterable
    body = [[sid, list(flat(ls.pairs))] for sid, ls in series]
    return _frame(REC_SERIES, json.dumps(body, separators=(",", ":")).encode())


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
    crc = zlib.crc32(bytes((REC_SAMPLES,)))
    for part in parts:
        crc = zlib.crc32(part, crc)
    return b"".join([_HDR.pack(4 + 24 * n, crc, REC_SAMPLES), *parts])


def _frame(kind: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return _HDR.pack(len(payload), crc, kind) + payload


def decode(buf: bytes | memoryview) -> tuple[list[Record], int, bool]:
    """Decode whole records from ``buf``.

    Returns the records, the number of bytes they span and whether decoding stopped at a bad
    record (cut short or CRC mismatch) rather than at the end of ``buf``.
    """
    mv = memoryview(buf)
    out: list[Record] = []
    pos, end = 0, len(mv)
    while pos < end:
        if end - pos < _HDR.size:
            return out, pos, True
        length, crc, kind = _HDR.unpack_from(mv, pos)
        start = pos + _HDR.size
        if end - start < length:
            return out, pos, True
        payload = mv[start:start + length]
        if zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            return out, pos, True
        try:
            out.append(_decode_payload(kind, payload))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("WAL record at byte %d is malformed: %s", pos, exc)
            return out, pos, True
        pos = start + length
    return out, pos, False


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


def _listing(wal_dir: str) -> tuple[list[int], list[int]]:
    """Sorted segment numbers and checkpoint numbers present in ``wal_dir``."""
    segs, ckpts = [], []
    if not os.path.isdir(wal_dir):
        return [], []
    for name in os.listdir(wal_dir):
        if name.isdigit():
            segs.append(int(name))
        elif name.startswith(_CKPT) and name[len(_CKPT):].isdigit():
            ckpts.append(int(name[len(_CKPT):]))
    return sorted(segs), sorted(ckpts)


def _seg_path(wal_dir: str, n: int) -> str:
    return os.path.join(wal_dir, f"{n:08d}")


def _ckpt_path(wal_dir: str, n: int) -> str:
    return os.path.join(wal_dir, f"{_CKPT}{n:08d}")


def fsync_path(path: str) -> None:
    """fsync a file or directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalFollower:
    """Reads the WAL from the newest checkpoint on, incrementally.

    Parameters
    ----------
    wal_dir
        The ``wal`` directory.
    repair
        True for the writer's replay: a torn record is truncated away. False for a read-only
        follower: reading stops there and resumes on the next :meth:`poll`.
    """

    def __init__(self, wal_dir: str, *, repair: bool = False) -> None:
        self.wal_dir = wal_dir
        self.repair = repair
        self._ckpt: int | None = None
        self._seg: int | None = None
        self._off = 0
        self._warned: set[int] = set()

    def poll(self, on_read: Callable[[int], object] | None = None) -> tuple[bool, list[Record]]:
        """New records since the last poll; ``reset`` True means: drop state, apply from scratch.

        ``on_read(nbytes)`` is called after each checkpoint or segment read (a progress bar's
        ``update``).
        """
        for _ in range(10):
            try:
                return self._poll(on_read)
            except FileNotFoundError:
                # The writer checkpointed and removed a segment under us: start over.
                self._seg = None
        raise StorageError(f"{self.wal_dir}: WAL keeps changing while being read")

    def _poll(self, on_read: Callable[[int], object] | None = None) -> tuple[bool, list[Record]]:
        segs, ckpts = _listing(self.wal_dir)
        latest = ckpts[-1] if ckpts else None
        reset = self._seg is None or latest != self._ckpt
        out: list[Record] = []
        if reset:
            self._ckpt = latest
            if latest is not None:
                with open(_ckpt_path(self.wal_dir, latest), "rb") as f:
                    data = f.read()
                recs, _, torn = decode(memoryview(data)[len(MAGIC):])
                if not data.startswith(MAGIC) or torn:
                    raise StorageError(f"{_ckpt_path(self.wal_dir, latest)}: corrupt WAL checkpoint")
                out.extend(recs)
                if on_read is not None:
                    on_read(len(data))
            self._seg = latest if latest is not None else (segs[0] if segs else 0)
            self._off = 0
        assert self._seg is not None
        todo = [s for s in segs if s >= self._seg]
        for i, s in enumerate(todo):
            if s != self._seg:
                self._seg, self._off = s, 0
            is_last = i == len(todo) - 1
            path = _seg_path(self.wal_dir, s)
            with open(path, "rb") as f:
                f.seek(self._off)
                data = f.read()
            start = 0
            if self._off == 0:
                if len(data) < len(MAGIC) or not data.startswith(MAGIC):
                    if is_last and not self.repair and MAGIC.startswith(data[:len(MAGIC)]):
                        break  # being created right now
                    self._bad_tail(path, s, 0)
                    continue
                start = len(MAGIC)
            recs, used, torn = decode(memoryview(data)[start:])
            out.extend(recs)
            if on_read is not None:
                on_read(len(data))
            self._off += start + used
            if torn:
                if is_last and not self.repair:
                    break  # possibly a record still being written
                self._bad_tail(path, s, self._off)
        return reset, out

    def _bad_tail(self, path: str, seg: int, off: int) -> None:
        if self.repair:
            log.warning("WAL segment %s: torn or corrupt record at byte %d, truncating", path, off)
            with open(path, "r+b") as f:
                f.truncate(off)
                os.fsync(f.fileno())
        elif seg not in self._warned:
            self._warned.add(seg)
            log.warning("WAL segment %s: corrupt record at byte %d, skipping the rest", path, off)


class WalWriter:
    """Appends records to numbered segments; :meth:`checkpoint` compacts the log.

    Parameters
    ----------
    wal_dir
        The ``wal`` directory (created if missing).
    start_segment
        Number of the first segment to write (one past any existing one).
    fsync
        Whether :meth:`log` fsyncs (durability per commit) — False trades safety for speed.
    segment_bytes
        Rotate to a new segment once the current one is this big.
    """

    def __init__(self, wal_dir: str, *, start_segment: int, fsync: bool = True,
                 segment_bytes: int = 64 << 20) -> None:
        self.wal_dir = wal_dir
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        os.makedirs(wal_dir, exist_ok=True)
        self._fd = -1
        self._size = 0
        self.segment = start_segment - 1
        self._open_next()

    @staticmethod
    def next_segment_number(wal_dir: str) -> int:
        if not os.path.isdir(wal_dir):
            return 0
        segs, ckpts = _listing(wal_dir)
        return max([-1, *segs, *ckpts]) + 1

    def _open_next(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self.segment += 1
        path = _seg_path(self.wal_dir, self.segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, MAGIC)
        self._size = len(MAGIC)
        if self.fsync:
            os.fsync(self._fd)
            fsync_path(self.wal_dir)

    def log(self, *records: bytes) -> None:
        """Write encoded records in one write call and (per policy) fsync."""
        if self._fd < 0:
            raise StorageError("WAL is closed")
        data = records[0] if len(records) == 1 else b"".join(records)
        if not data:
            return
        if self._size > len(MAGIC) and self._size + len(data) > self.segment_bytes:
            self._open_next()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)
        if self.fsync:
            os.fsync(self._fd)

    def checkpoint(self, *records: bytes) -> None:
        """Start a new segment ``N``, write the head's state as checkpoint ``N``, drop older files.

        ``records`` must describe everything the head still holds (its series and samples):
        after this, segments before ``N`` are gone.
        """
        self._open_next()
        n = self.segment
        final = _ckpt_path(self.wal_dir, n)
        tmp = final + ".tmp"
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            for r in records:
                f.write(r)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_path(self.wal_dir)
        segs, ckpts = _listing(self.wal_dir)
        for s in segs:
            if s < n:
                os.unlink(_seg_path(self.wal_dir, s))
        for c in ckpts:
            if c < n:
                os.unlink(_ckpt_path(self.wal_dir, c))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
