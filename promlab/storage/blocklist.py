"""Listing a store's block directories, and moving damaged ones to ``blocks/.quarantine/``."""

from __future__ import annotations

import functools
import logging
import os

from promlab.errors import StorageError
from promlab.storage.blocks import Block, new_ulid
from promlab.storage.objectstore import LOCAL, BlockFS

__all__ = ["QUARANTINE_DIR", "list_blocks", "overlaps", "quarantine_block", "recent_span", "skipped"]

log = logging.getLogger("promlab.storage")

QUARANTINE_DIR = ".quarantine"


def quarantine_block(path: str, reason: str, fs: BlockFS = LOCAL) -> str | None:
    """Move a damaged block to ``blocks/.quarantine/`` (with a ``REASON`` file); its new path."""
    parent, name = path.rstrip("/").rsplit("/", 1) if fs.remote else os.path.split(os.path.normpath(path))
    dest = fs.join(parent, QUARANTINE_DIR, name)
    try:
        if fs.remote or os.path.exists(dest):
            dest += f".{new_ulid()}"
        fs.move(path, dest)
        fs.write_text(fs.join(dest, "REASON"), reason + "\n")
    except OSError as exc:
        log.error("could not quarantine %s: %s", path, exc)
        return None
    log.error("quarantined damaged block %s -> %s: %s", path, dest, reason)
    return dest


def overlaps(name: str, span: tuple[int, int]) -> bool:
    """Whether the block directory ``name`` (``<start>-<end>-<id>``) may hold data in ``span``
    (``(mint, maxt)``, inclusive); True when the name does not parse (the block is opened and
    judged by its ``meta.json``)."""
    sp = _span_of(name)
    return sp is None or (sp[0] <= span[1] and sp[1] > span[0])


@functools.lru_cache(maxsize=4096)  # names of blocks: parsed once each, not per query
def _span_of(name: str) -> tuple[int, int] | None:
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def skipped(paths: set[str], span: tuple[int, int] | None) -> set[str]:
    """The block ``paths`` a listing with ``span`` did not open as out of range."""
    if span is None:
        return set()
    return {p for p in paths if not overlaps(os.path.basename(p.rstrip("/")), span)}


def recent_span(fs: BlockFS, blocks_dir: str, duration_ms: int) -> tuple[int, int] | None:
    """The last ``duration_ms`` before the newest block's end, from the directory names (None
    without blocks)."""
    try:
        names = fs.listdir(blocks_dir)
    except OSError:
        return None
    ends = [sp[1] for n in names if not n.startswith(".") and (sp := _span_of(n)) is not None]
    return (max(ends) - duration_ms, max(ends)) if ends else None


def list_blocks(blocks_dir: str, cache: dict[str, Block] | None = None,
                bad: dict[str, str] | set[str] | None = None, *,
                quarantine: bool = False, fs: BlockFS = LOCAL,
                span: tuple[int, int] | None = None, seen: set[str] | None = None,
                cached: bool = False) -> list[Block]:
    """The complete blocks under ``blocks_dir``, sorted by (start, seq, ulid).

    Temporary (``.tmp-*``), deleted (``.deleted-*``) and quarantined directories are skipped. A
    broken block directory — or one a read found damaged — is skipped with an error logged
    (once per ``bad`` collection, which maps its path to the reason when it is a dict), and
    moved to ``blocks/.quarantine/`` when ``quarantine`` (writers only). A block that vanishes
    while listing (compaction or retention removed it) makes the listing start over, so the
    block that replaced it is seen.

    With ``span`` (``(mint, maxt)``, inclusive), a directory whose name places its range
    ``[start, end)`` outside it is not opened (nor checked): a query's listing reads the
    ``meta.json`` of the blocks it may read only. ``seen`` collects every block path listed.
    """

    def mark(path: str, reason: str) -> None:
        if bad is None or path not in bad:
            log.error("ignoring block: %s", reason)
        if isinstance(bad, dict):
            bad[path] = reason
        elif bad is not None:
            bad.add(path)
        if quarantine:
            quarantine_block(path, reason, fs)

    for _ in range(20):
        try:
            names = sorted(fs.listdir(blocks_dir, cached=cached))
        except FileNotFoundError:
            return []
        cached = False  # a block vanished since: list again
        out, vanished = [], False
        for name in names:
            if name.startswith("."):
                continue
            path = fs.join(blocks_dir, name)
            if seen is not None:
                seen.add(path)
            if span is not None and not overlaps(name, span):
                continue
            blk = cache.get(path) if cache is not None else None
            if blk is not None and blk.damaged is not None:
                cache.pop(path, None)  # type: ignore[union-attr]
                mark(path, blk.damaged)
                continue
            if blk is None:
                if bad is not None and path in bad and not quarantine:
                    continue
                try:
                    blk = Block(path, fs)
                except StorageError as exc:
                    if not fs.block_exists(path):
                        vanished = True
                        continue
                    mark(path, str(exc))
                    continue
                if cache is not None:
                    cache[path] = blk
            out.append(blk)
        if not vanished:
            break
    out.sort(key=lambda b: (b.meta.start, b.meta.seq, b.meta.ulid))
    return out
