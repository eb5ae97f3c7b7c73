"""The native histograms' write-ahead log: ``<store>/wal/histograms.log``.

Kept apart from the float WAL (:mod:`promlab.storage.wal`) so that neither format depends on the
other. One file of records ``<u32 payload length><u32 crc32(payload)><payload>``, the payload
being :func:`promlab.storage.histstore.encode_payload`'s JSON (one record per commit). When the
store flushes its head, the file is rewritten (temp file + rename) with the histogram samples the
head still holds — the checkpoint. Replay skips a damaged record by resynchronising on the next
whole CRC-correct one and counts the loss as the float WAL does (:class:`WalLosses`, reported
through ``ParquetStore.wal_losses``); a record cut short at the end (a torn write) is dropped and
the writer truncates it; a writer rewrites a damaged log with what survived.

The same framing, repair and checkpoint-by-rewrite serve the exemplar WAL
(:mod:`promlab.storage.exwal`), through :class:`HistogramWal`'s ``file_name``.
"""

from __future__ import annotations

import logging
import os
import struct

from promlab.storage.crc import crc32
from promlab.storage.wal import WalLosses

__all__ = ["HistogramWal", "read_records", "record_header", "scan_records"]

log = logging.getLogger("promlab.storage")

FILE_NAME = "histograms.log"
_HDR = struct.Struct("<II")


def record_header(payload: bytes) -> bytes:
    """The header (``<u32 length><u32 crc32>``) a record of ``payload`` starts with."""
    return _HDR.pack(len(payload), crc32(payload))


def _frame(payload: bytes) -> bytes:
    return record_header(payload) + payload


def _valid_at(data: bytes, pos: int) -> int:
    """End offset of a whole, CRC-correct record at ``pos``, or -1."""
    if pos + _HDR.size > len(data):
        return -1
    length, crc = _HDR.unpack_from(data, pos)
    start: int = pos + _HDR.size
    length = int(length)
    if start + length > len(data) or crc32(data[start:start + length]) != crc:
        return -1
    return start + length


def read_records(path: str) -> tuple[list[bytes], int, int, WalLosses]:
    """Replay the log: the good payloads, the offset after the last good record, the file size
    and what damage cost (counted as the float WAL counts it, :class:`WalLosses`).

    A record failing its CRC (or with an impossible length) is skipped by resynchronising on
    the next offset where a whole CRC-correct record starts; the bytes in between are a loss
    (``records`` +1 per damaged stretch, ``bytes``). What cannot be resynchronised at the end of
    the file is a record cut short by a crash (``torn_bytes``: never acknowledged) when its
    header is intact and promises more bytes than the file has, else a loss. Samples in damaged
    records cannot be counted (their JSON is unreadable): ``samples`` stays a lower bound of 0.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], 0, 0, WalLosses()
    return scan_records(data, path)


def scan_records(data: bytes, path: str, *, quiet: bool = False
                 ) -> tuple[list[bytes], int, int, WalLosses]:
    """:func:`read_records` over ``data`` (the bytes of the log at ``path``, or of its tail from
    a record boundary on; offsets are into ``data``). ``quiet``: no warnings (the caller reports
    the losses; a read-only follower warns once per change, :mod:`promlab.storage.exfollow`)."""
    losses = WalLosses()
    out: list[bytes] = []
    pos = end = 0
    while pos < len(data):
        nxt = _valid_at(data, pos)
        if nxt >= 0:
            out.append(data[pos + _HDR.size:nxt])
            pos = end = nxt
            continue
        resync = next((q for q in range(pos + 1, len(data) - _HDR.size + 1) if _valid_at(data, q) >= 0), -1)
        if resync < 0:
            torn = pos + _HDR.size <= len(data) and pos + _HDR.size + _HDR.unpack_from(data, pos)[0] > len(data)
            if torn or pos + _HDR.size > len(data):
                losses.torn_bytes += len(data) - pos
            else:
                losses.records += 1
                losses.bytes += len(data) - pos
            break
        losses.records += 1
        losses.bytes += resync - pos
        if not quiet:
            log.warning("%s: %d damaged bytes at offset %d skipped", path, resync - pos, pos)
        pos = resync
    if losses.torn_bytes and not quiet:
        log.warning("%s: %d bytes of a record cut short at the end ignored", path, losses.torn_bytes)
    if losses.records and not quiet:
        log.warning("%s: %d damaged WAL stretch(es), %d bytes lost", path, losses.records, losses.bytes)
    return out, end, len(data), losses


class HistogramWal:
    """Appends commit records; :meth:`checkpoint` rewrites the file with the head's state.

    ``file_name``: another log of the same framing in ``wal_dir``. :attr:`losses` is what
    damage cost when the log was opened (and repaired).
    """

    def __init__(self, wal_dir: str, *, fsync: bool = True, file_name: str = FILE_NAME) -> None:
        os.makedirs(wal_dir, exist_ok=True)
        self.path = os.path.join(wal_dir, file_name)
        self.fsync = fsync
        payloads, end, size, losses = read_records(self.path)
        self.losses = losses
        self._f = open(self.path, "ab")  # noqa: SIM115 - kept open for the store's lifetime
        if losses.records:  # damage inside: rewrite the log with what survived
            self._rewrite(payloads)
        elif end != size:
            self._f.close()
            with open(self.path, "r+b") as f:
                f.truncate(end)
            self._f = open(self.path, "ab")  # noqa: SIM115

    def log(self, payload: bytes) -> None:
        self._f.write(_frame(payload))
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def checkpoint(self, payload: bytes | None) -> None:
        """Replace the log with one record (``payload``) or nothing."""
        self._rewrite([payload] if payload is not None else [])

    def _rewrite(self, payloads: list[bytes]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            for payload in payloads:
                f.write(_frame(payload))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        self._f.close()
        os.replace(tmp, self.path)
        self._f = open(self.path, "ab")  # noqa: SIM115

    def close(self) -> None:
        self._f.close()
