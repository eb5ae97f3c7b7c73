"""Native histogram samples in the Parquet store: WAL payload, head, files, querier merge.

Histograms live beside the float machinery rather than inside it, so the float paths (head
columns, block layout, checksums) are untouched:

* **WAL**: one ``HISTOGRAMS`` record per commit (:func:`promlab.storage.wal.encode_histograms`)
  whose payload (:func:`encode_payload`) is UTF-8 JSON ``[[labels, ts_ms, hist], ...]`` —
  self-contained (labels included), so replay needs no series record.
* **Head**: :class:`HistogramHead`, per series a list of ``(ts_ms, histogram)``; integer
  histograms stay integer until read.
* **Files**: when the store flushes its head, the histogram samples older than the cut go to
  ``<store>/histograms/<mint>-<maxt>-<seq>.parquet`` (:func:`write_file`; in the object store
  beside the blocks for a store at a URL), one row per sample, sorted by series then time;
  files of one compaction window are merged (:func:`compact_files`) and dropped by retention
  like blocks (module :mod:`promlab.storage.histdir`, which also reads them through the store's
  decoded cache). The layout (module :mod:`promlab.storage.histfile`, documented in
  ``docs/storage.md``) needs nothing but a Parquet reader: integer counts as int64 with each
  bucket a delta across the samples of its series, float counts only for float histograms;
  files of the older all-float layout are still read.
* **Deleting** (the admin API's ``delete_series``): the samples are cleared from the head
  (:meth:`HistogramHead.delete`), the WAL checkpointed with what is left, and the files holding
  any rewritten without them (:func:`delete_samples`).
* **Reading**: :class:`HistogramQuerier` wraps the float querier and merges the histogram
  samples into the :class:`~promlab.storage.interface.SeriesSet` (``histograms`` column).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher
from promlab.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    Histogram,
)
from promlab.storage.accept import NO_TS
from promlab.storage.cache import DecodedCache
from promlab.storage.histdir import (
    FileInfo,
    HistColumns,
    compact_files,
    delete_samples,
    drop_before,
    list_files,
    read_files,
    upload_local,
    write_file,
)
from promlab.storage.histwal import read_records
from promlab.storage.interface import (
    HISTOGRAM_PLACEHOLDER,
    Querier,
    SelectHints,
    SeriesSet,
    clamp_range,
)
from promlab.storage.objectstore import LOCAL, BlockFS
from promlab.storage.wal import WalLosses

__all__ = [
    "HistogramBatch",
    "HistogramHead",
    "HistogramQuerier",
    "compact_files",
    "decode_payload",
    "delete_samples",
    "drop_before",
    "encode_payload",
    "has_any",
    "list_files",
    "load_head",
    "merge_histograms",
    "read_files",
    "upload_local",
    "write_file",
]

log = logging.getLogger("promlab.storage")

AnyHist = Histogram | FloatHistogram
Item = tuple[Labels, int, AnyHist]


def _objects(items: Sequence[object]) -> npt.NDArray[np.object_]:
    out: npt.NDArray[np.object_] = np.empty(len(items), np.object_)
    out[:] = items
    return out


class HistogramBatch:
    """An appender's pending histogram samples, with each one's unit (-1: none) and whether
    that unit is refused whole (see :meth:`ParquetAppender.append_batch`)."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.units: list[int] = []
        self.atomic: list[bool] = []
        self.has_units = False

    def append(self, labels: Labels, ts_ms: int, h: AnyHist) -> None:
        if not isinstance(h, Histogram | FloatHistogram):
            raise TypeError(f"not a histogram: {type(h).__name__}")
        self.items.append((labels, int(ts_ms), h))
        self.units.append(-1)
        self.atomic.append(False)

    def append_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                     ts_ms: npt.NDArray[np.int64], hists: Sequence[AnyHist], *,
                     units: npt.NDArray[np.integer] | None = None, atomic: bool = False) -> None:
        idx = np.asarray(index).tolist()
        ts = np.asarray(ts_ms).tolist()
        if not len(idx) == len(ts) == len(hists):
            raise ValueError("append_histogram_batch: index, ts_ms and hists differ in length")
        if units is not None and len(units) != len(idx):
            raise ValueError("append_histogram_batch: units must have one entry per sample")
        n = len(self.units)
        for i, t, h in zip(idx, ts, hists, strict=True):
            self.append(series[i], t, h)
        if units is not None:
            self.units[n:] = np.asarray(units, np.int64).tolist()
            self.atomic[n:] = [atomic] * len(idx)
            self.has_units = True


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
    """Recent histogram samples by series; last write wins at equal timestamps (the store's
    acceptance rules, :mod:`.histaccept`, let only out-of-order corrections of a backfilling
    store replace one).

    Samples are kept as appended (integer histograms stay integer for the WAL and the files);
    their float forms, which queries read, are converted once and remembered beside them.
    Each series' newest sample is kept apart (:meth:`latest`, :meth:`latest_times`) for the
    acceptance checks.
    """

    def __init__(self) -> None:
        self._series: dict[Labels, dict[int, AnyHist]] = {}
        self._latest: dict[Labels, tuple[int, AnyHist]] = {}
        self._by_sid: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self._floats: dict[Labels, dict[int, FloatHistogram]] = {}
        self._lock = threading.Lock()
        self.mint: int | None = None
        self._maxt: int | None = None

    def __len__(self) -> int:
        return sum(len(s) for s in self._series.values())

    def has_samples(self) -> bool:
        """``len(self) > 0`` without counting them (a query asks on every call)."""
        return any(self._series.values())

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
                top = self._latest.get(ls)
                if top is None or ts >= top[0]:
                    self._latest[ls] = (ts, h)
                fl = self._floats.get(ls)
                if fl is not None:
                    fl.pop(ts, None)
                self.mint = ts if self.mint is None else min(self.mint, ts)
                self._maxt = ts if self._maxt is None else max(self._maxt, ts)
            self._by_sid = None
        return new

    def latest(self, ls: Labels) -> tuple[int, AnyHist] | None:
        """The series' newest sample ``(ts_ms, histogram)`` in the head, or None."""
        return self._latest.get(ls)

    def holds(self, ls: Labels, ts_ms: int) -> bool:
        """Whether the head has a sample of ``ls`` at ``ts_ms``."""
        s = self._series.get(ls)
        return s is not None and ts_ms in s

    def latest_times(self, sids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
        """Per series id (``Labels.hash``): the time of its newest histogram sample, NO_TS for
        none; None when no series has one (vectorised over a sorted index rebuilt on change)."""
        with self._lock:
            if not self._latest:
                return None
            if self._by_sid is None:
                keys = np.array([ls.hash for ls in self._latest], np.int64)
                times = np.array([t for t, _ in self._latest.values()], np.int64)
                order = np.argsort(keys, kind="stable")
                self._by_sid = (keys[order], times[order])
            keys, times = self._by_sid
        pos = np.minimum(np.searchsorted(keys, sids), keys.shape[0] - 1)
        return np.where(keys[pos] == sids, times[pos], NO_TS)

    def _forget(self, ls: Labels) -> None:
        """Drop the series' newest-sample entry, or move it to what is left (lock held)."""
        s = self._series.get(ls)
        if not s:
            self._latest.pop(ls, None)
        else:
            t = max(s)
            self._latest[ls] = (t, s[t])
        self._by_sid = None

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
                fl = self._floats.get(ls)
                if fl is not None:
                    for t in old:
                        fl.pop(t, None)
                if not s:
                    del self._series[ls]
                    self._floats.pop(ls, None)
                    self._forget(ls)
            rest = [t for s in self._series.values() for t in s]
            self.mint = min(rest) if rest else None
            self._maxt = max(rest) if rest else None
        return out

    def delete(self, hit: Callable[[Labels], bool], mint: int, maxt: int) -> int:
        """Remove the samples in ``[mint, maxt]`` of the series for which ``hit`` is true (and
        their remembered float forms); returns how many were removed."""
        gone = 0
        with self._lock:
            for ls in [ls for ls in self._series if hit(ls)]:
                s = self._series[ls]
                fl = self._floats.get(ls, {})
                for t in [t for t in s if mint <= t <= maxt]:
                    del s[t]
                    fl.pop(t, None)
                    gone += 1
                if not s:
                    del self._series[ls]
                    self._floats.pop(ls, None)
                self._forget(ls)
            if gone:
                rest = [t for s in self._series.values() for t in s]
                self.mint = min(rest) if rest else None
                self._maxt = max(rest) if rest else None
        return gone

    def select(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> HistColumns:
        with self._lock:
            snap = [(ls, dict(s), dict(self._floats.get(ls, ()))) for ls, s in self._series.items()
                    if all(m.matches(ls.get(m.name, "")) for m in matchers)]
        out: HistColumns = {}
        converted: list[tuple[Labels, int, AnyHist, FloatHistogram]] = []
        for ls, s, known in snap:
            ts = sorted(t for t in s if mint <= t <= maxt)
            if not ts:
                continue
            fs = []
            for t in ts:
                f = known.get(t)
                if f is None:
                    f = s[t].to_float()
                    converted.append((ls, t, s[t], f))
                fs.append(f)
            out[ls] = (np.array(ts, np.int64), _objects(fs))
        if converted:
            with self._lock:
                for ls, t, h, f in converted:
                    if self._series.get(ls, {}).get(t) is h:  # not replaced meanwhile
                        self._floats.setdefault(ls, {})[t] = f
        return out


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
                 maxt_ms: int, *, cache: DecodedCache | None = None, fs: BlockFS = LOCAL,
                 files: Sequence[FileInfo] | None = None) -> None:
        self._inner = inner
        self._head = head
        self._dir = directory
        self._cache = cache
        self._fs = fs
        # The directory listed once for the querier's lifetime (a LIST request per query on an
        # object store, not one per selector); None lists at every select.
        self._files = files
        self.mint_ms, self.maxt_ms = mint_ms, maxt_ms

    def _hists(self, matchers: Sequence[Matcher], hints: SelectHints | None) -> HistColumns:
        mint, maxt = clamp_range(self.mint_ms, self.maxt_ms, hints)
        out = read_files(self._dir, matchers, mint, maxt, cache=self._cache, fs=self._fs,
                         files=self._files)
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


def has_any(head: HistogramHead, directory: str, fs: BlockFS = LOCAL) -> bool:
    """Whether there are histogram samples in the head or files in ``directory``."""
    return len(head) > 0 or bool(list_files(directory, fs))



def load_head(wal_path: str) -> tuple[HistogramHead, WalLosses]:
    """The histogram head the histogram WAL at ``wal_path`` holds (see
    :mod:`promlab.storage.histwal`), and what damage in it cost."""
    hh = HistogramHead()
    payloads, _, _, losses = read_records(wal_path)
    for payload in payloads:
        hh.add(decode_payload(payload))
    return hh, losses
