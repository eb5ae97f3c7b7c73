"""``promlab tsdb verify`` and ``promlab tsdb repair``: full checks of a store's blocks.

:func:`verify_store` reads every block completely: ``meta.json`` (its own checksum, ranges),
the recorded size and CRC-32 of each file, then every row group through Parquet (page
checksums verified); and every native histogram file (:mod:`promlab.storage.histcheck`).
Damaged histogram files go to ``histograms/.quarantine/``. :func:`repair_store` moves the damaged blocks to ``blocks/.quarantine/``
and opens the store as a writer, which replays the WAL and flushes what it holds into blocks:
what remains is what the WAL and the intact blocks still hold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from promlab.errors import StorageError
from promlab.storage import checksum as _ck
from promlab.storage.blocklist import quarantine_block
from promlab.storage.blocks import INDEX_FILE, Block
from promlab.storage.histcheck import quarantine_file as quarantine_hist_file
from promlab.storage.histcheck import verify_file as verify_hist_file
from promlab.storage.histstore import list_files as list_hist_files
from promlab.storage.objectstore import LOCAL, BlockFS, is_url, open_fs

__all__ = ["BlockReport", "repair_store", "verify_store"]


@dataclass(frozen=True, slots=True)
class BlockReport:
    """One block directory's verdict: ``reason`` is None when it is intact."""

    path: str
    reason: str | None
    version: int | None = None


def verify_block(path: str, fs: BlockFS = LOCAL) -> BlockReport:
    """Check one block directory completely (``fs``: where it is, see :mod:`.objectstore`)."""
    try:
        blk = Block(path, fs)
    except StorageError as exc:
        return BlockReport(path, str(exc))
    try:
        for fname, rec in blk.meta.files.items():
            if blk.index_missing and fname == INDEX_FILE:
                continue  # a copy of series.parquet, which is checked
            if fname in blk.unused_recent:
                continue  # a copy of the block's last samples, which are checked
            if fs.remote:  # one GET of the whole object, its size and CRC-32 checked
                fh = fs.open_input(fs.join(path, fname), int(rec["size"]))
                try:
                    _ck.read_checked(fh, fs.join(path, fname), rec)
                finally:
                    fh.close()
            else:
                _ck.verify_file(os.path.join(path, fname), rec)
        blk.index()
        every = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        blk.pieces(np.arange(blk.sids.shape[0]), *every)  # format 6: all slice rows checked
        for i in range(len(blk.row_group_rows())):
            blk.read_row_group(i, ["__name__", "series_id", "timestamp", "value", "value_int", "scale"])
    except StorageError as exc:
        return BlockReport(path, str(exc), blk.meta.version)
    finally:
        blk.close()
    return BlockReport(path, None, blk.meta.version)


def verify_store(data_dir: str, *, storage_options: dict[str, Any] | None = None) -> list[BlockReport]:
    """Every block directory of the store (not temporary, deleted or quarantined ones).

    ``data_dir`` may be a URL (``s3://bucket/prefix``, with fsspec ``storage_options``): its
    published blocks and native histogram files are checked.
    """
    if is_url(data_dir):
        fs = open_fs(data_dir, storage_options, staging_dir="")
        blocks_dir = fs.join(data_dir, "blocks")
        remote_hists = [f[3] for f in list_hist_files(fs.join(data_dir, "histograms"), fs)]
        return ([verify_block(fs.join(blocks_dir, n), fs) for n in sorted(fs.listdir(blocks_dir))]
                + [BlockReport(p, verify_hist_file(p, fs)) for p in remote_hists])
    blocks_dir = os.path.join(data_dir, "blocks")
    if not os.path.isdir(data_dir):
        raise StorageError(f"{data_dir}: no such store directory")
    try:
        names = sorted(os.listdir(blocks_dir))
    except FileNotFoundError:
        names = []
    hist_files = [f[3] for f in list_hist_files(os.path.join(data_dir, "histograms"))]
    return ([verify_block(os.path.join(blocks_dir, n)) for n in names if not n.startswith(".")]
            + [BlockReport(p, verify_hist_file(p)) for p in hist_files])


def repair_store(data_dir: str, *, storage_options: dict[str, Any] | None = None) -> list[BlockReport]:
    """Quarantine damaged blocks, then open and close the store as a writer (WAL replayed).

    Returns the damaged blocks (their ``path`` is where they were).
    """
    from promlab.storage.store import open_store

    url = is_url(data_dir)
    fs = open_fs(data_dir, storage_options, staging_dir="") if url else LOCAL
    damaged = [r for r in verify_store(data_dir, storage_options=storage_options) if r.reason is not None]
    for r in damaged:
        if not url and os.path.isfile(r.path):  # a native histogram file
            quarantine_hist_file(r.path)
        elif url and r.path.endswith(".parquet"):  # a native histogram file in the object store
            quarantine_hist_file(r.path, fs)
        else:
            quarantine_block(r.path, r.reason or "damaged", fs)
    if url:
        open_store(data_dir, storage_options=storage_options).close()
    else:
        open_store(data_dir).close()
    return damaged
