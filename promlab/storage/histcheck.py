"""Checksums of the native histogram files (``<store>/histograms/*.parquet``).

Each file ``F.parquet`` gets a sidecar ``F.parquet.crc.json`` written before the file is renamed
into place: STORE's per-file record (:func:`promlab.storage.checksum.file_record`: size, CRC-32,
footer CRC-32, per-row-group CRC-32s) plus the sidecar's own ``checksum``
(:func:`~promlab.storage.checksum.json_checksum`). The files also carry Parquet page checksums.
Reads check the sidecar, the whole file's CRC-32 and the Parquet page checksums; :func:`verify_histograms`
(``promlab tsdb verify``) checks everything and reads every row. Files written before sidecars
existed (no ``.crc.json``) are checked through Parquet only.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from promlab.errors import StorageError
from promlab.storage import checksum as _ck
from promlab.storage.objectstore import LOCAL, BlockFS

__all__ = ["SIDECAR", "check_on_read", "quarantine_file", "read_verified", "remove_file", "verify_file",
           "write_sidecar"]

SIDECAR = ".crc.json"
QUARANTINE = ".quarantine"


def write_sidecar(tmp_path: str, final_path: str) -> None:
    """Record ``tmp_path``'s checksums for the file it becomes (``final_path``), atomically."""
    rec: dict[str, Any] = _ck.file_record(tmp_path, row_groups=True)
    rec["checksum"] = _ck.json_checksum(rec)
    side = final_path + SIDECAR
    tmp = os.path.join(os.path.dirname(side), "." + os.path.basename(side) + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(rec, f, sort_keys=True)
    os.replace(tmp, side)


def _record(path: str, fs: BlockFS = LOCAL) -> dict[str, Any] | None:
    """The sidecar record of ``path`` (None when the file predates sidecars)."""
    try:
        rec = json.loads(fs.read_bytes(path + SIDECAR))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StorageError(f"{path}{SIDECAR}: unreadable: {exc}") from exc
    if not isinstance(rec, dict) or rec.get("checksum") != _ck.json_checksum(rec):
        raise StorageError(f"{path}{SIDECAR}: checksum mismatch")
    return rec


def check_on_read(path: str) -> None:
    """The check of a local file before it is read: its sidecar, size and CRC-32."""
    rec = _record(path)
    if rec is not None:
        _ck.verify_file(path, rec)


def read_verified(path: str, fs: BlockFS = LOCAL) -> pa.Buffer:
    """The whole file ``path`` (local or in an object store), checked against its sidecar (size,
    CRC-32): what a query decodes, fetched once (a query decodes every row of the file anyway)."""
    rec = _record(path, fs)
    fh = fs.open_input(path)  # FileNotFoundError: deleted since it was listed (compaction)
    try:
        return _ck.read_checked(fh, path, rec)
    finally:
        fh.close()


def verify_file(path: str, fs: BlockFS = LOCAL) -> str | None:
    """Full check of one histogram file; the reason it is damaged, or None."""
    try:
        buf = read_verified(path, fs)
        pq.read_table(pa.BufferReader(buf), page_checksum_verification=True)
    except StorageError as exc:
        return str(exc)
    except (OSError, ValueError, pa.ArrowException) as exc:
        return f"{path}: unreadable: {exc}"
    return None


def remove_file(path: str, fs: BlockFS = LOCAL) -> None:
    """Delete a histogram file and its sidecar (the file first: it is what readers list)."""
    fs.remove(path)
    fs.remove(path + SIDECAR)


def quarantine_file(path: str, fs: BlockFS = LOCAL) -> str:
    """Move a damaged histogram file (and its sidecar) to ``histograms/.quarantine/``."""
    if fs.remote:
        parent, name = path.rsplit("/", 1)
        dest = fs.join(parent, QUARANTINE, name)
        for suffix in ("", SIDECAR):
            with contextlib.suppress(FileNotFoundError):
                fs.move(path + suffix, dest + suffix)
        return dest
    qdir = os.path.join(os.path.dirname(path), QUARANTINE)
    os.makedirs(qdir, exist_ok=True)
    dest = os.path.join(qdir, os.path.basename(path))
    os.replace(path, dest)
    if os.path.exists(path + SIDECAR):
        os.replace(path + SIDECAR, dest + SIDECAR)
    return dest
