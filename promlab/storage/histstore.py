"""Native histogram samples in the Parquet store: WAL payload, head, files, querier merge.

Histograms live beside the float machinery rather than inside it, so the float paths (head
columns, block layout, checksums) are untouched:

* **WAL**: one ``HISTOGRAMS`` record per commit (:func:`promlab.storage.wal.encode_histograms`)
  whose payload (:func:`encode_payload`) is UTF-8 JSON ``[[labels, ts_ms, hist], ...]`` —
  self-contained (labels included), so replay needs no series record.
* **Head**: :class:`HistogramHead`, per series a list of ``(ts_ms, histogram)``; integer
  histograms stay integer until read.
* **Files**: when the store flushes its head, the histogram samples older than the cut go to
  ``<store>/histograms/<mint>-<maxt>-<seq>.parquet`` (:func:`write_file`), one row per sample,
  sorted by series then time; files of one compaction window are merged
  (:func:`compact_files`) and dropped by retention like blocks. The layout (module
  :mod:`promlab.storage.histfile`, documented in ``docs/storage.md``) needs nothing but a Parquet
  reader: integer counts as int64 with each bucket a delta across the samples of its series,
  float counts only for float histograms; files of the older all-float layout are still read.
* **Reading**: :class:`HistogramQuerier` wraps the float querier and merges the histogram
  samples into the :class:`~promlab.storage.interface.SeriesSet` (``histograms`` column).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    Histogram,
)
from promlab.storage import histcheck as _hc
from promlab.storage import histfile as _hf
from promlab.storage.cache import DecodedCache
from promlab.storage.interface import (
    HISTOGRAM_PLACEHOLDER,
    Querier,
    SelectHints,
    SeriesSet,
    clamp_range,
)

__all__ = [
    "HistogramBatch",
    "HistogramHead",
    "HistogramQuerier",
    "compact_files",
    "decode_payload",
    "encode_payload",
    "list_files",
    "merge_histograms",
    "read_files",
    "write_file",
]

log = logging.getLogger("promlab.storage")

AnyHist = Histogram | FloatHistogram
Item = tuple[Labels, int, AnyHist]
#: The decoded cache's keys of histogram files start with this (then the file's path).
CACHE_PREFIX = "histograms:"
HistColumns = dict[Labels, tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]]


def _objects(items: Sequence[object]) -> npt.NDArray[np.object_]:
    out: npt.NDArray[np.object_] = np.empty(len(items), np.object_)
    out[:] = items
    return out


class HistogramBatch:
    """An appender's pending histogram samples."""

    def __init__(self) -> None:
        self.items: list[Item] = []

    def append(self, labels: Labels, ts_ms: int, h: AnyHist) -> None:
        if not isinstance(h, Histogram | FloatHistogram):
            raise TypeError(f"not a histogram: {type(h).__name__}")
        self.items.append((labels, int(ts_ms), h))

    def append_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                     ts_ms: npt.NDArray[np.int64], hists: Sequence[AnyHist]) -> None:
        idx = np.asarray(index).tolist()
        ts = np.asarray(ts_ms).tolist()
        if not len(idx) == len(ts) == len(hists):
            raise ValueError("append_histogram_batch: index, ts_ms and hists differ in length")
        for i, t, h in zip(idx, ts, hists, strict=True):
            self.append(series[i], t, h)


# --- WAL payload -----------------------------------------------------------------------------
def _hist_to_json(h: AnyHist) -> dict[str, object]:
    return {"f": isinstance(h, FloatHistogram), "s": h.schema, "zt": h.zero_threshold,
            "zc": h.zero_count, "c": h.count, "sum": h.sum, "ps": h.positive_spans,
            "pb": h.positive_buckets, "ns": h.negative_spans, "nb": h.negative_buckets,
            "cv": h.custom_values, "h": int(h.counter_reset_hint)}


def _hist_from_json(d: dict[str, object]) -> AnyHist:
    def spans(v: object) -> tuple[tuple[int, int], ...]:
        return tuple((int(o), int(n)) for o, n in v)  # type: ignore[attr-defined]

    def nums(v: object, kind: type) -> tuple[float, ...] | tuple[int, ...]:
        return tuple(kind(x) for x in v)  # type: ignore[attr-defined]

    kind: type = float if d["f"] else int
    cls = FloatHistogram if d["f"] else Histogram
    hint = CounterResetHint(d["h"])  # type: ignore[arg-type]
    return cls(schema=d["s"], zero_threshold=float(d["zt"]),  # type: ignore[arg-type]
               zero_count=kind(d["zc"]), count=kind(d["c"]), sum=float(d["sum"]),  # type: ignore[arg-type]
               positive_spans=spans(d["ps"]), positive_buckets=nums(d["pb"], kind),  # type: ignore[arg-type]
               negative_spans=spans(d["ns"]), negative_buckets=nums(d["nb"], kind),  # type: ignore[arg-type]
               custom_values=nums(d["cv"], float), counter_reset_hint=hint)


def encode_payload(items: Sequence[Item]) -> bytes:
    """The HISTOGRAMS WAL record payload (UTF-8 JSON; NaN/Inf as JSON's extensions)."""
    body = [[dict(ls), ts, _hist_to_json(h)] for ls, ts, h in items]
    return json.dumps(body, separators=(",", ":")).encode()


def decode_payload(payload: bytes) -> list[Item]:
    return [(Labels(ls), int(ts), _hist_from_json(h)) for ls, ts, h in json.loads(payload)]


# --- head --------------------------------------------------------------------------------------
class HistogramHead:
    """Recent histogram samples by series; last write wins at equal timestamps."""

    def __init__(self) -> None:
        self._series: dict[Labels, dict[int, AnyHist]] = {}
        self._lock = threading.Lock()
        self.mint: int | None = None
        self._maxt: int | None = None

    def __len__(self) -> int:
        return sum(len(s) for s in self._series.values())

    @property
    def maxt(self) -> int | None:
        return self._maxt

    def add(self, items: Sequence[Item]) -> int:
        """Add samples; returns how many series were new."""
        new = 0
        with self._lock:
            for ls, ts, h in items:
                s = self._series.get(ls)
                if s is None:
                    s = self._series[ls] = {}
                    new += 1
                s[ts] = h
                self.mint = ts if self.mint is None else min(self.mint, ts)
                self._maxt = ts if self._maxt is None else max(self._maxt, ts)
        return new

    def items(self) -> list[Item]:
        with self._lock:
            return [(ls, t, h) for ls, s in self._series.items() for t, h in s.items()]

    def cut(self, cut_ms: int) -> list[Item]:
        """Remove and return the samples older than ``cut_ms``."""
        out: list[Item] = []
        with self._lock:
            for ls in list(self._series):
                s = self._series[ls]
                old = [t for t in s if t < cut_ms]
                out.extend((ls, t, s.pop(t)) for t in old)
                if not s:
                    del self._series[ls]
            rest = [t for s in self._series.values() for t in s]
            self.mint = min(rest) if rest else None
            self._maxt = max(rest) if rest else None
        return out

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> HistColumns:
        with self._lock:
            snap = [(ls, dict(s)) for ls, s in self._series.items()
                    if all(m.matches(ls.get(m.name, "")) for m in matchers)]
        out: HistColumns = {}
        for ls, s in snap:
            ts = sorted(t for t in s if mint <= t <= maxt)
            if ts:
                out[ls] = (np.array(ts, np.int64), _objects([s[t].to_float() for t in ts]))
        return out


# --- files -------------------------------------------------------------------------------------
def write_file(directory: str, items: Sequence[Item], seq: int) -> str | None:
    """Write ``items`` as one Parquet file (layout of :mod:`promlab.storage.histfile`;
    atomically: temp file + rename); None if empty."""
    if not items:
        return None
    os.makedirs(directory, exist_ok=True)
    mint, maxt = min(r[1] for r in items), max(r[1] for r in items)
    path = os.path.join(directory, f"{mint}-{maxt}-{seq}.parquet")
    tmp = os.path.join(directory, f".tmp-{mint}-{maxt}-{seq}.parquet")
    _hf.write_table(tmp, items)
    _hc.write_sidecar(tmp, path)
    os.replace(tmp, path)
    return path


def list_files(directory: str) -> list[tuple[int, int, int, str]]:
    """``(mint, maxt, seq, path)`` of the histogram files, oldest first."""
    if not os.path.isdir(directory):
        return []
    out = []
    for name in os.listdir(directory):
        if name.startswith(".") or not name.endswith(".parquet"):
            continue
        try:
            mint, maxt, seq = (int(x) for x in name[: -len(".parquet")].split("-", 2))
        except ValueError:
            continue
        out.append((mint, maxt, seq, os.path.join(directory, name)))
    return sorted(out)


def _read_items(path: str, mint: int, maxt: int,
                matchers: Sequence[Matcher] | None) -> list[Item]:
    _hc.check_on_read(path)
    return _hf.read_items(path, mint, maxt, matchers)


def _metric_of(matchers: Sequence[Matcher]) -> str | None:
    for m in matchers:
        if m.name == "__name__" and m.type is MatchType.EQUAL:
            return m.value
    return None


def _file_columns(path: str, metric: str | None,
                  cache: DecodedCache | None) -> _hf.HistogramColumns:
    """A file's decoded samples of ``metric`` (all metrics if None), from ``cache`` when there.

    Files are immutable under their name (a compaction writes a new one), so entries never go
    stale; the store evicts them when it deletes the file.
    """
    key = (CACHE_PREFIX + path, "" if metric is None else "=" + metric)
    hit = cache.get_entry(key) if cache is not None else None
    if isinstance(hit, _hf.HistogramColumns):
        return hit
    _hc.check_on_read(path)
    cols = _hf.read_columns(path, metric)
    if cache is not None:
        cache.put_entry(key, cols)
    return cols


def _select(cols: _hf.HistogramColumns, matchers: Sequence[Matcher], mint: int,
            maxt: int) -> HistColumns:
    """The series of ``cols`` matching ``matchers``, cut to ``[mint, maxt]``."""
    out: HistColumns = {}
    off = cols.offsets.tolist()
    for i, ls in enumerate(cols.labels):
        if not all(m.matches(ls.get(m.name, "")) for m in matchers):
            continue
        a, b = off[i], off[i + 1]
        ts = cols.ts[a:b]
        lo = a + int(np.searchsorted(ts, mint, "left"))
        hi = a + int(np.searchsorted(ts, maxt, "right"))
        if hi > lo:
            out[ls] = (cols.ts[lo:hi], cols.hists[lo:hi])
    return out


def read_files(directory: str, matchers: Sequence[Matcher], mint: int, maxt: int, *,
               cache: DecodedCache | None = None) -> HistColumns:
    """The files' samples of series matching ``matchers`` in ``[mint, maxt]`` (float form).

    With ``cache`` (the store's decoded cache), each file is decoded once per metric name and
    later queries slice the decoded columns instead of reading the file again.
    """
    metric = _metric_of(matchers)
    parts: list[HistColumns] = []
    for fmin, fmax, _, path in list_files(directory):
        if fmax < mint or fmin > maxt:
            continue
        try:
            cols = _file_columns(path, metric, cache)
        except (StorageError, OSError, ValueError, pa.ArrowException) as exc:  # see tsdb verify/repair
            log.warning("damaged histogram file skipped: %s", exc)
            continue
        got = _select(cols, matchers, mint, maxt)
        if got:
            parts.append(got)
    if len(parts) == 1:
        return parts[0]
    out: HistColumns = {}
    for part in parts:  # oldest file first: a later file wins at equal timestamps
        for ls, (ts, objs) in part.items():
            if ls in out:
                out[ls] = _merge_two(out[ls], (ts, objs))
            else:
                out[ls] = (ts, objs)
    return out


def _merge_two(old: tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]],
               new: tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]],
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.object_]]:
    """Two sample runs of a series merged by time; ``new`` wins at equal timestamps."""
    ts = np.concatenate([new[0], old[0]])
    objs = np.concatenate([new[1], old[1]])
    order = np.argsort(ts, kind="stable")
    ts, objs = ts[order], objs[order]
    keep = np.ones(ts.shape[0], bool)
    keep[1:] = ts[1:] != ts[:-1]  # the first of equal timestamps is new's (stable sort)
    return ts[keep], objs[keep]


def compact_files(directory: str, window_ms: int, before_ms: int | None, seq: int, *,
                  cache: DecodedCache | None = None) -> int:
    """Merge the files of each ``window_ms`` window entirely before ``before_ms``; returns how
    many files were merged away (and evicted from ``cache``)."""
    groups: dict[int, list[tuple[int, int, int, str]]] = {}
    for f in list_files(directory):
        if before_ms is not None and f[1] >= before_ms:
            continue
        if f[0] // window_ms == f[1] // window_ms:
            groups.setdefault(f[0] // window_ms, []).append(f)
    merged = 0
    for files in groups.values():
        if len(files) < 2:
            continue
        acc: dict[tuple[Labels, int], AnyHist] = {}
        try:
            for fmin, fmax, _, path in files:  # oldest write first: later files win
                for ls, ts, h in _read_items(path, fmin, fmax, None):
                    acc[(ls, ts)] = h
        except (StorageError, OSError, ValueError, pa.ArrowException) as exc:  # left for tsdb verify/repair
            log.warning("histogram files of a window not compacted: %s", exc)
            continue
        write_file(directory, [(ls, ts, h) for (ls, ts), h in acc.items()], seq)
        seq += 1
        for *_, path in files:
            _hc.remove_file(path)
            if cache is not None:
                cache.evict_block(CACHE_PREFIX + path)
        merged += len(files)
    return merged


def drop_before(directory: str, min_keep_ms: int, *,
                cache: DecodedCache | None = None) -> list[str]:
    """Delete files whose samples are all older than ``min_keep_ms`` (retention; evicted from
    ``cache``)."""
    gone = []
    for _, fmax, _, path in list_files(directory):
        if fmax < min_keep_ms:
            _hc.remove_file(path)
            if cache is not None:
                cache.evict_block(CACHE_PREFIX + path)
            gone.append(path)
    return gone


# --- reading -------------------------------------------------------------------------------------
def merge_histograms(ss: SeriesSet, hists: HistColumns) -> SeriesSet:
    """``ss`` with the histogram samples ``hists`` merged in (a histogram wins over a float
    sample at the same timestamp)."""
    if not hists:
        return ss
    labels = sorted(set(ss.labels) | set(hists))
    pos = {ls: i for i, ls in enumerate(ss.labels)}
    ts_parts: list[npt.NDArray[np.int64]] = []
    v_parts: list[npt.NDArray[np.float64]] = []
    h_parts: list[npt.NDArray[np.object_]] = []
    lengths: list[int] = []
    for ls in labels:
        i = pos.get(ls)
        if i is None:
            fts, fv = np.zeros(0, np.int64), np.zeros(0, np.float64)
            fh = np.empty(0, object)
        else:
            _, fts, fv = ss.series(i)
            got = ss.series_histograms(i)
            fh = np.full(fts.shape[0], None, object) if got is None else got
        hts, hobj = hists.get(ls, (np.zeros(0, np.int64), np.empty(0, object)))
        ts = np.concatenate([fts, hts])
        v = np.concatenate([fv, np.full(hts.shape[0], HISTOGRAM_PLACEHOLDER)])
        h = np.concatenate([fh, hobj])
        order = np.argsort(ts, kind="stable")
        ts, v, h = ts[order], v[order], h[order]
        keep = np.ones(ts.shape[0], bool)
        keep[:-1] = ts[1:] != ts[:-1]
        ts_parts.append(ts[keep])
        v_parts.append(v[keep])
        h_parts.append(h[keep])
        lengths.append(int(keep.sum()))
    offsets = np.zeros(len(labels) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return SeriesSet(labels, offsets, np.concatenate(ts_parts), np.concatenate(v_parts),
                     np.concatenate(h_parts))


class HistogramQuerier:
    """A float querier plus the store's histogram head snapshot and files."""

    def __init__(self, inner: Querier, head: HistogramHead, directory: str, mint_ms: int,
                 maxt_ms: int, *, cache: DecodedCache | None = None) -> None:
        self._inner = inner
        self._head = head
        self._dir = directory
        self._cache = cache
        self.mint_ms, self.maxt_ms = mint_ms, maxt_ms

    def _hists(self, matchers: Sequence[Matcher], hints: SelectHints | None) -> HistColumns:
        mint, maxt = clamp_range(self.mint_ms, self.maxt_ms, hints)
        out = read_files(self._dir, matchers, mint, maxt, cache=self._cache)
        for ls, (ts, objs) in self._head.select(matchers, mint, maxt).items():
            if ls in out:
                merged = dict(zip(out[ls][0].tolist(), out[ls][1], strict=True))
                merged.update(zip(ts.tolist(), objs, strict=True))
                keys = sorted(merged)
                out[ls] = (np.array(keys, np.int64), _objects([merged[t] for t in keys]))
            else:
                out[ls] = (ts, objs)
        return out

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        return merge_histograms(self._inner.select(matchers, hints), self._hists(matchers, hints))

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        return sorted(set(self._inner.series(matchers)) | set(self._hists(matchers, None)))

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names = set(self._inner.label_names(matchers))
        for ls in self._hists(matchers, None):
            names.update(ls)
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        vals = set(self._inner.label_values(name, matchers))
        vals.update(ls[name] for ls in self._hists(matchers, None) if name in ls)
        return sorted(vals)

    def close(self) -> None:
        self._inner.close()


def has_any(head: HistogramHead, directory: str) -> bool:
    return len(head) > 0 or bool(list_files(directory))

