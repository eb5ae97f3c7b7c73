"""A block's ``meta.json`` (:class:`BlockMeta`), the format version and the block's file names."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from promlab.storage.checksum import json_checksum
from promlab.storage.seriesindex import CHUNK_COLUMNS
from promlab.storage.slices import SLICE_COLUMN

__all__ = ["FORMAT_VERSION", "INDEX_FILE", "META_FILE", "READABLE_VERSIONS", "RECENT_FILE",
           "RECENT_FILES", "RESERVED", "SAMPLES_FILE", "SERIES_FILE", "TAIL_FILE", "BlockMeta",
           "new_ulid"]

#: Version 2 adds checksums (``files`` and ``checksum`` in meta.json); version 1 blocks are
#: still read, unverified. Version 3 orders a bucket's chunks by series label order (not by first
#: value), writes 32 Ki-row groups and adds ``series_rank`` to the series index. Version 4 writes
#: the series index one row per series (in label order) with its chunks as list columns
#: (:data:`CHUNK_COLUMNS`): labels are stored and decoded once per series, not per chunk.
#: Version 5 adds ``series.arrow`` (:data:`INDEX_FILE`), the series table again as an Arrow IPC
#: file, which queries load instead of ``series.parquet`` (a fifth of the time). Version 6
#: orders each (metric, bucket)'s rows by (time slice, chunk, time) and adds each chunk's rows
#: per slice (:mod:`promlab.storage.slices`): a short read decodes the slices it needs only.
#: Version 7 writes ``series.arrow`` one record batch per metric, after an empty one carrying the
#: schema and dictionaries, each checked by its own CRC in ``meta.json`` (``pieces``), and
#: leaves out the slice groups (derived from the chunks): a first query reads its metrics'
#: batches only (:meth:`promlab.storage.blocks.Block.metric_part`).
#: Version 8 adds ``recent.arrow`` (:data:`RECENT_FILE`): the block's last 15 minutes of samples
#: with their series' labels, from which a query at the end of the data is answered
#: (:mod:`promlab.storage.recent`); its ``meta.json`` record holds the window's start, ``mint``.
#: Version 9 adds ``tail.arrow`` (:data:`TAIL_FILE`): the block's last 7 minutes in the same
#: layout, so that a query of the last few minutes (five of lookback, a ``[5m]`` window) reads
#: half the bytes; ``recent.arrow`` still answers one reaching up to 15 minutes back.
FORMAT_VERSION = 9
READABLE_VERSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
SERIES_FILE = "series.parquet"
INDEX_FILE = "series.arrow"
RECENT_FILE = "recent.arrow"  # (promlab.storage.recent, which writes and reads it)
TAIL_FILE = "tail.arrow"  # (the same, a shorter window)
#: The files of a block's recent samples by the version that added them, narrowest window first.
RECENT_FILES: tuple[tuple[str, int], ...] = ((TAIL_FILE, 9), (RECENT_FILE, 8))
SAMPLES_FILE = "samples.parquet"
META_FILE = "meta.json"
RESERVED = frozenset({"series_id", "min_time", "max_time", "row_start", "row_count",
                      "series_rank", *CHUNK_COLUMNS, SLICE_COLUMN})

@dataclass(frozen=True, slots=True)
class BlockMeta:
    """``meta.json``: the block's range ``[start, end)``, its data's ``[mint, maxt]`` and more.

    ``seq`` orders writes: where blocks overlap, the higher ``seq`` won (compaction keeps the
    highest ``seq`` of its sources).
    """

    ulid: str
    start: int
    end: int
    mint: int
    maxt: int
    num_series: int
    num_samples: int
    seq: int
    level: int
    sources: tuple[str, ...]
    files: dict[str, Any] = field(default_factory=dict)
    version: int = FORMAT_VERSION

    @property
    def dirname(self) -> str:
        return f"{self.start}-{self.end}-{self.ulid}"

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "version": FORMAT_VERSION, "ulid": self.ulid, "start": self.start,
            "end": self.end, "mint": self.mint, "maxt": self.maxt,
            "num_series": self.num_series, "num_samples": self.num_samples,
            "seq": self.seq, "level": self.level, "sources": list(self.sources),
            "files": self.files}
        d["checksum"] = json_checksum(d)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlockMeta:
        version = d.get("version")
        if version not in READABLE_VERSIONS:
            raise ValueError(f"unsupported block format version {version!r}")
        if version >= 2 and d.get("checksum") != json_checksum(d):
            raise ValueError("checksum mismatch")
        files = d.get("files", {}) if version >= 2 else {}
        recent = [fname for fname, since in RECENT_FILES if version >= since]
        want = {SAMPLES_FILE, SERIES_FILE, *((INDEX_FILE,) if version >= 5 else ()), *recent}
        if not isinstance(files, dict) or (version >= 2 and set(files) != want):
            raise ValueError("bad file checksums")
        for fname in recent:
            rec = files[fname]
            if not isinstance(rec.get("mint"), int):
                raise ValueError(f"no window start for {fname}")
            firsts = rec.get("first_metrics", [])
            if not isinstance(firsts, list) or not all(isinstance(x, str) for x in firsts):
                raise ValueError(f"bad first_metrics for {fname}")
        meta = cls(str(d["ulid"]), int(d["start"]), int(d["end"]), int(d["mint"]),
                   int(d["maxt"]), int(d["num_series"]), int(d["num_samples"]), int(d["seq"]),
                   int(d["level"]), tuple(str(x) for x in d.get("sources", ())), files,
                   int(version))
        if meta.num_samples and not meta.start <= meta.mint <= meta.maxt < meta.end:
            raise ValueError(f"data range [{meta.mint}, {meta.maxt}] outside the block's "
                             f"[{meta.start}, {meta.end})")
        return meta


def new_ulid() -> str:
    """Time-ordered unique id: 12 hex digits of ms since epoch + 8 random hex digits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(4)}"
