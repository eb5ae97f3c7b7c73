"""The native histograms' write-ahead log: ``<store>/wal/histograms.log``.

Kept apart from the float WAL (:mod:`promlab.storage.wal`) so that neither format depends on the
other. One file of records ``<u32 payload length><u32 crc32(payload)><payload>``, the payload
being :func:`promlab.storage.histstore.encode_payload`'s JSON (one record per commit). When the
store flushes its head, the file is rewritten (temp file + rename) with the histogram samples the
head still holds — the checkpoint. Replay reads records up to the first one cut short or failing
its CRC (a torn write), and the writer truncates the file there.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib

__all__ = ["HistogramWal", "read_records"]

log = logging.getLogger("promlab.storage")

FILE_NAME = "histograms.log"
_HDR = struct.Struct("<II")


def _frame(payload: bytes) -> bytes:
    return _HDR.pack(len(payload), zlib.crc32(payload)) + payload


def read_records(path: str) -> tuple[list[bytes], int, int]:
    """The payloads of the good records, the byte length they span and the file size."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], 0, 0
    out: list[bytes] = []
    pos = 0
    while pos + _HDR.size <= len(data):
        length, crc = _HDR.unpack_from(data, pos)
        start = pos + _HDR.size
        payload = data[start:start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        out.append(payload)
        pos = start + length
    if pos != len(data):
        log.warning("%s: %d bytes after the last good record ignored", path, len(data) - pos)
    return out, pos, len(data)


class HistogramWal:
    """Appends commit records; :meth:`checkpoint` rewrites the file with the head's state."""

    def __init__(self, wal_dir: str, *, fsync: bool = True) -> None:
        os.makedirs(wal_dir, exist_ok=True)
        self.path = os.path.join(wal_dir, FILE_NAME)
        self.fsync = fsync
        _, good, size = read_records(self.path)
        if good != size:
            with open(self.path, "r+b") as f:
                f.truncate(good)
        self._f = open(self.path, "ab")  # noqa: SIM115 - kept open for the store's lifetime

    def log(self, payload: bytes) -> None:
        self._f.write(_frame(payload))
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def checkpoint(self, payload: bytes | None) -> None:
        """Replace the log with one record (``payload``) or nothing."""
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            if payload is not None:
                f.write(_frame(payload))
            f.flush()
            if self.fsync:
                os.fsync(f.fileno())
        self._f.close()
        os.replace(tmp, self.path)
        self._f = open(self.path, "ab")  # noqa: SIM115

    def close(self) -> None:
        self._f.close()
