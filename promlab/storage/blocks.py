"""Parquet blocks: immutable, time-partitioned directories of two Parquet files.

``<dir>/blocks/<start>-<end>-<id>/`` holds ``series.parquet`` (one row per series, labels as
columns), ``samples.parquet`` (sorted by metric name, series, timestamp) and ``meta.json``. A
block is written under ``blocks/.tmp-<id>`` and renamed into place, so a reader never sees half a
block. The schema and encodings are described in ``docs/storage.md``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.storage.cache import MetricColumns
from promlab.storage.encoding import decode_values
from promlab.storage.postings import LabelColumn, LabelIndex

__all__ = ["Block", "BlockMeta", "list_blocks"]

log = logging.getLogger("promlab.storage")

FORMAT_VERSION = 1
SERIES_FILE = "series.parquet"
SAMPLES_FILE = "samples.parquet"
META_FILE = "meta.json"
RESERVED = frozenset({"series_id", "min_time", "max_time", "row_start", "row_count"})
ROW_GROUP_ROWS = 128 * 1024
TS_TYPE = pa.timestamp("ms", tz="UTC")


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

    @property
    def dirname(self) -> str:
        return f"{self.start}-{self.end}-{self.ulid}"

    def to_json(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "ulid": self.ulid, "start": self.start,
                "end": self.end, "mint": self.mint, "maxt": self.maxt,
                "num_series": self.num_series, "num_samples": self.num_samples,
                "seq": self.seq, "level": self.level, "sources": list(self.sources)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlockMeta:
        if d.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported block format version {d.get('version')!r}")
        return cls(str(d["ulid"]), int(d["start"]), int(d["end"]), int(d["mint"]),
                   int(d["maxt"]), int(d["num_series"]), int(d["num_samples"]), int(d["seq"]),
                   int(d["level"]), tuple(d.get("sources", ())))


def new_ulid() -> str:
    """Time-ordered unique id: 12 hex digits of ms since epoch + 8 random hex digits."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(4)}"


class Block:
    """Read access to one block directory; loads its series table on first use."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(os.path.join(path, META_FILE)) as f:
                self.meta = BlockMeta.from_json(json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"block {path}: bad {META_FILE}: {exc}") from exc
        # Open both files now: a compaction or retention deleting the block later cannot pull
        # them from under a reader that already listed it. Arrow-native files, not Python file
        # objects: Arrow would wrap those and own Python bytes in the buffers it reads, which its
        # thread pool then releases (taking the GIL) after a read returns, even while the
        # interpreter is exiting, which aborts the process (issue 13).
        try:
            self._series_fh: Any = pa.OSFile(os.path.join(path, SERIES_FILE), "rb")
        except OSError as exc:
            raise StorageError(f"block {path}: missing {SERIES_FILE}: {exc}") from exc
        try:
            self._fh: Any = pa.OSFile(os.path.join(path, SAMPLES_FILE), "rb")
        except OSError as exc:
            self._series_fh.close()
            raise StorageError(f"block {path}: missing {SAMPLES_FILE}: {exc}") from exc
        self._index: LabelIndex | None = None
        self._labels: dict[int, Labels] = {}
        self._pf: pq.ParquetFile | None = None
        self._io = threading.Lock()  # the file objects are shared by querying threads
        self.sids = np.zeros(0, np.int64)
        self.row_start = np.zeros(0, np.int64)
        self.row_count = np.zeros(0, np.int64)
        self.min_time = np.zeros(0, np.int64)
        self.max_time = np.zeros(0, np.int64)

    def size_bytes(self) -> int:
        total = 0
        for name in os.listdir(self.path):
            total += os.path.getsize(os.path.join(self.path, name))
        return total

    def index(self) -> LabelIndex:
        if self._index is None:
            with self._io:
                if self._index is None:
                    self._load_series()
        assert self._index is not None
        return self._index

    def _load_series(self) -> None:
        if self._fh is None:
            raise StorageError(f"block {self.path}: closed")
        try:
            self._series_fh.seek(0)
            table = pq.read_table(self._series_fh)
            self._series_fh.close()
            self._pf = pq.ParquetFile(self._fh)
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"block {self.path}: unreadable: {exc}") from exc
        md = table.schema.metadata or {}
        colmap = json.loads(md.get(b"promlab.label_columns", b"{}"))
        n = table.num_rows
        self.sids = table["series_id"].to_numpy()
        self.row_start = table["row_start"].to_numpy()
        self.row_count = table["row_count"].to_numpy()
        self.min_time = table["min_time"].cast(pa.int64()).to_numpy()
        self.max_time = table["max_time"].cast(pa.int64()).to_numpy()
        cols = {}
        for cname, lname in colmap.items():
            enc = pc.dictionary_encode(table[cname]).combine_chunks()
            codes = enc.indices.fill_null(-1).to_numpy().astype(np.int32)
            cols[lname] = LabelColumn(codes, enc.dictionary.to_pylist())
        self._index = LabelIndex(n, cols)

    def labels_at(self, i: int) -> Labels:
        ls = self._labels.get(i)
        if ls is None:
            ls = self._labels[i] = self.index().labels_at(i)
        return ls

    def select(self, mask: npt.NDArray[np.bool_], mint: int, maxt: int
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples in ``[mint, maxt]`` of the series in ``mask``: (series row, ts, value)."""
        self.index()
        sel = np.flatnonzero(mask & (self.min_time <= maxt) & (self.max_time >= mint))
        if sel.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        return self.read_rows(sel, mint, maxt)

    def row_group_rows(self) -> list[int]:
        """Rows per row group of the samples file."""
        self.index()
        assert self._pf is not None
        md = self._pf.metadata
        return [md.row_group(i).num_rows for i in range(md.num_row_groups)]

    def read_row_group(self, i: int, columns: list[str]) -> pa.Table:
        """Row group ``i`` of the samples file, raw ``columns`` (call after :meth:`index`)."""
        with self._io:
            assert self._pf is not None
            return self._pf.read_row_group(i, columns=columns)

    def read_rows(self, sel: npt.NDArray[np.int64], mint: int, maxt: int
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Samples in ``[mint, maxt]`` of series rows ``sel`` (ascending): (row, ts, value)."""
        assert self._pf is not None
        md = self._pf.metadata
        rg_rows = np.array([md.row_group(i).num_rows for i in range(md.num_row_groups)], np.int64)
        rg_start = np.concatenate([[0], np.cumsum(rg_rows)])
        starts, counts = self.row_start[sel], self.row_count[sel]
        first = np.searchsorted(rg_start, starts, "right") - 1
        last = np.searchsorted(rg_start, starts + counts - 1, "right") - 1
        # Mark every row group between first and last of each series (usually the same).
        span = np.zeros(rg_rows.shape[0] + 1, np.int64)
        np.add.at(span, first, 1)
        np.add.at(span, last + 1, -1)
        need = np.cumsum(span[:-1]) > 0
        rgs = np.flatnonzero(need)
        try:
            with self._io:
                table = self._pf.read_row_groups(
                    rgs.tolist(), columns=["timestamp", "value", "value_int", "scale"])
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"block {self.path}: unreadable samples: {exc}") from exc
        # Position of each needed row group's first row inside the table just read.
        local = np.zeros(rg_rows.shape[0], np.int64)
        local[rgs] = np.concatenate([[0], np.cumsum(rg_rows[rgs])[:-1]])
        local_start = local[first] + (starts - rg_start[first])
        total = int(counts.sum())
        ts_all = table["timestamp"].cast(pa.int64()).to_numpy()
        rows = np.repeat(sel, counts)
        if total == table.num_rows and bool((sel[1:] > sel[:-1]).all()):
            idx = None  # every row read is wanted, in order
            ts = ts_all
        else:
            idx = np.repeat(local_start - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
            idx += np.arange(total)
            ts = ts_all[idx]
        keep = (ts >= mint) & (ts <= maxt)
        if not keep.all():
            kept = np.flatnonzero(keep)
            idx = kept if idx is None else idx[kept]
            rows, ts = rows[kept], ts[kept]
        vals = decode_values(table["value"], table["value_int"], table["scale"], idx)
        return rows, ts, vals

    def metric_names(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[str]:
        """Metric names of this block's series matching ``matchers`` with data in range.

        ``""`` stands for series without a name. An equality matcher on the name answers
        without touching the series.
        """
        idx = self.index()
        col = idx.columns.get("__name__")
        for m in matchers:
            if m.name == "__name__" and m.type is MatchType.EQUAL and m.value:
                return [m.value] if col is not None and col.code_of(m.value) is not None else []
        mask = idx.match(matchers) & (self.min_time <= maxt) & (self.max_time >= mint)
        if col is None:
            return [""] if mask.any() else []
        return [col.uniques[c] if c >= 0 else "" for c in np.unique(col.codes[mask]).tolist()]

    def metric_columns(self, name: str, mint: int | None = None, maxt: int | None = None
                       ) -> MetricColumns:
        """Decode metric ``name``'s samples (all, or those in ``[mint, maxt]``), series in label order."""
        idx = self.index()
        lo = np.iinfo(np.int64).min if mint is None else mint
        hi = np.iinfo(np.int64).max if maxt is None else maxt
        col = idx.columns.get("__name__")
        code = -1 if col is None or not name else col.code_of(name)
        if col is None:
            chunk = np.ones(idx.n, bool) if not name else np.zeros(idx.n, bool)
        else:
            chunk = col.codes == (-2 if code is None else code)
        chunk &= (self.min_time <= hi) & (self.max_time >= lo)
        sel = np.flatnonzero(chunk)
        chunk_sids = self.sids[sel]
        uniq, first, inv = np.unique(chunk_sids, return_index=True, return_inverse=True)
        rep = sel[first]  # one chunk per series, for its labels
        labels = [self.labels_at(int(r)) for r in rep.tolist()]
        order = np.array(sorted(range(len(labels)), key=labels.__getitem__), np.int64)
        rank = np.empty(order.shape[0], np.int64)
        rank[order] = np.arange(order.shape[0])
        # Chunks by (series rank, start time): the samples come out in (series, ts) order.
        co = np.lexsort((self.min_time[sel], rank[inv]))
        sel = sel[co]
        if sel.shape[0]:
            rows, ts, vals = self.read_rows(sel, lo, hi)
        else:
            rows, ts, vals = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        counts = np.zeros(order.shape[0], np.int64)
        if rows.shape[0]:
            row_rank = np.empty(idx.n, np.int64)
            row_rank[sel] = rank[inv[co]]
            counts = np.bincount(row_rank[rows], minlength=order.shape[0]).astype(np.int64)
        offsets = np.zeros(order.shape[0] + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        rep = rep[order]
        sub = LabelIndex(int(rep.shape[0]), {k: LabelColumn(c.codes[rep], c.uniques)
                                             for k, c in idx.columns.items()})
        for a in (offsets, ts, vals):
            a.flags.writeable = False
        return MetricColumns(uniq[order], [labels[i] for i in order.tolist()], sub, offsets,
                             ts, vals, int(ts.min()) if ts.shape[0] else 0,
                             int(ts.max()) if ts.shape[0] else -1)

    def read_all(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Every sample: (series row, ts, value)."""
        self.index()
        sel = np.arange(self.sids.shape[0], dtype=np.int64)
        if sel.shape[0] == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
        return self.read_rows(sel, np.iinfo(np.int64).min, np.iinfo(np.int64).max)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if getattr(self, "_fh", None) is not None:
            self._fh.close()
            self._series_fh.close()
            self._fh = None
            self._pf = None


def list_blocks(blocks_dir: str, cache: dict[str, Block] | None = None,
                bad: set[str] | None = None) -> list[Block]:
    """The complete blocks under ``blocks_dir``, sorted by (start, seq, ulid).

    Temporary (``.tmp-*``) and deleted (``.deleted-*``) directories are skipped. A broken block
    directory is skipped with an error logged (once per ``bad`` set). A block that vanishes
    while listing (compaction or retention removed it) makes the listing start over, so the
    block that replaced it is seen.
    """
    for _ in range(20):
        try:
            names = sorted(os.listdir(blocks_dir))
        except FileNotFoundError:
            return []
        out, vanished = [], False
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(blocks_dir, name)
            blk = cache.get(path) if cache is not None else None
            if blk is None:
                try:
                    blk = Block(path)
                except StorageError as exc:
                    if not os.path.isdir(path):
                        vanished = True
                        continue
                    if bad is None or path not in bad:
                        log.error("ignoring block: %s", exc)
                    if bad is not None:
                        bad.add(path)
                    continue
                if cache is not None:
                    cache[path] = blk
            out.append(blk)
        if not vanished:
            break
    out.sort(key=lambda b: (b.meta.start, b.meta.seq, b.meta.ulid))
    return out
