"""An in-memory store: the engine's test double and the conformance runner's storage.

Same contract as the Parquet store (:mod:`promlab.storage.interface`), no durability. Appended
float samples follow the Parquet store's (Prometheus's) rules of :mod:`promlab.storage.accept`
at a series' latest timestamp: the same value again is taken without storing it twice, another
value is refused as a duplicate (the first write wins). Out-of-order samples are accepted by
default (a test double is loaded in any order; one at a timestamp already held is dropped);
``MemoryStorage(ooo_window_ms=0)`` refuses them as Prometheus does, a positive window takes
those within it of the newest sample. Known difference: there is no head, so no minimum valid
time (no "out of bounds"). :meth:`MemoryStorage.add_series` loads samples as given (a later
one at the same timestamp replaces the earlier).
Native histograms are kept as :class:`~promlab.model.histogram.FloatHistogram` objects in a
per-series object column beside the floats (None for float samples).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import METRIC_NAME, Labels, Matcher, MatchType
from promlab.model.arrays import unique
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage.accept import DUPLICATE, NO_TS, OOO, OUT_OF_ORDER, TOO_OLD, classify
from promlab.storage.interface import (
    HISTOGRAM_PLACEHOLDER,
    AppendStats,
    SelectHints,
    SeriesSet,
    clamp_range,
)

__all__ = ["MemoryStorage"]


class _Series:
    """One series' samples in time order. Appends in time order (a scrape's, a rule test's
    input step by step) go into buffers with spare room, so a series of n samples costs O(n)
    however it arrives; anything else (older or equal timestamps, histograms, start
    timestamps) is merged, later writes winning. ``ts``/``values`` are views of the first
    ``n`` buffer entries: what a reader holds is never written again."""

    __slots__ = ("_n", "_ts", "_v", "hists", "st")

    def __init__(self) -> None:
        self._ts = np.zeros(0, np.int64)
        self._v = np.zeros(0, np.float64)
        self._n = 0
        self.hists: npt.NDArray[np.object_] | None = None
        self.st: npt.NDArray[np.int64] | None = None          # start timestamps (0 = unknown)

    @property
    def ts(self) -> npt.NDArray[np.int64]:
        return self._ts[:self._n]

    @property
    def values(self) -> npt.NDArray[np.float64]:
        return self._v[:self._n]

    def merge(self, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
              hists: npt.NDArray[np.object_] | None = None,
              st: npt.NDArray[np.int64] | None = None) -> None:
        n, k = self._n, ts.shape[0]
        if (k and hists is None and st is None and self.hists is None and self.st is None
                and (n == 0 or int(ts[0]) > int(self._ts[n - 1]))
                and (k == 1 or bool((ts[1:] > ts[:-1]).all()))):
            if n + k > self._ts.shape[0]:  # room for as many again
                cap = max(n + k, 2 * self._ts.shape[0], 16)
                grown_ts, grown_v = np.empty(cap, np.int64), np.empty(cap, np.float64)
                grown_ts[:n], grown_v[:n] = self._ts[:n], self._v[:n]
                self._ts, self._v = grown_ts, grown_v
            self._ts[n:n + k] = ts
            self._v[n:n + k] = values
            self._n = n + k
            return
        all_st = None
        if st is not None or self.st is not None:
            all_st = np.concatenate([np.zeros(n, np.int64) if self.st is None else self.st,
                                     np.zeros(k, np.int64) if st is None else st])
        all_ts = np.concatenate([self.ts, ts])
        all_v = np.concatenate([self.values, values])
        all_h = None
        if hists is not None or self.hists is not None:
            all_h = np.concatenate([
                np.full(n, None, object) if self.hists is None else self.hists,
                np.full(k, None, object) if hists is None else hists])
        # Stable sort, then keep the last of equal timestamps: later writes win.
        order = np.argsort(all_ts, kind="stable")
        all_ts, all_v = all_ts[order], all_v[order]
        keep = np.ones(all_ts.shape[0], bool)
        keep[:-1] = all_ts[1:] != all_ts[:-1]
        self._ts, self._v = all_ts[keep], all_v[keep]
        self._n = self._ts.shape[0]
        if all_st is not None:
            kept_st = all_st[order][keep]
            self.st = kept_st if kept_st.any() else None
        if all_h is not None:
            kept = all_h[order][keep]
            self.hists = kept if any(h is not None for h in kept) else None


class MemoryStorage:
    """A thread-safe in-memory store.

    Examples
    --------
    >>> from promlab.model import Labels, Matcher, MatchType
    >>> st = MemoryStorage()
    >>> app = st.appender(); app.append(Labels({"__name__": "up"}), 1000, 1.0); _ = app.commit()
    >>> ss = st.querier(0, 2000).select([Matcher(MatchType.EQUAL, "__name__", "up")])
    >>> ss.values.tolist()
    [1.0]
    """

    def __init__(self, *, ooo_window_ms: int | None = None) -> None:
        self._series: dict[Labels, _Series] = {}
        self._lock = threading.RLock()
        self.ooo_window_ms = ooo_window_ms
        self._maxt: int | None = None
        # The series sorted by labels, and by metric name: built when a querier first needs
        # them after a series was added (a rule test's queries far outnumber its new series).
        self._sorted: list[tuple[Labels, _Series]] | None = None
        self._by_name: dict[str, list[tuple[Labels, _Series]]] | None = None

    def appender(self) -> _MemoryAppender:
        return _MemoryAppender(self)

    def querier(self, mint_ms: int, maxt_ms: int) -> _MemoryQuerier:
        return _MemoryQuerier(self, mint_ms, maxt_ms)

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._sorted = self._by_name = None

    def _held(self, labels: Labels) -> _Series:
        """The series of ``labels``, created if new (call with the lock held)."""
        s = self._series.get(labels)
        if s is None:
            s = self._series[labels] = _Series()
            self._sorted = self._by_name = None
        return s

    def close(self) -> None:
        pass

    def add_series(self, labels: Labels, ts_ms: Sequence[int] | npt.NDArray[np.int64],
                   values: Sequence[float] | npt.NDArray[np.float64], *,
                   start_ts_ms: Sequence[int] | npt.NDArray[np.int64] | None = None) -> None:
        """Load one series' samples directly (test helper), with their start timestamps."""
        st = None if start_ts_ms is None else np.asarray(start_ts_ms, np.int64)
        with self._lock:
            self._held(labels).merge(np.asarray(ts_ms, np.int64), np.asarray(values, np.float64), None, st)

    def add_histogram_series(self, labels: Labels, ts_ms: Sequence[int] | npt.NDArray[np.int64],
                             hists: Sequence[FloatHistogram | Histogram | float], *,
                             start_ts_ms: Sequence[int] | npt.NDArray[np.int64] | None = None,
                             ) -> None:
        """Load one series' samples directly (test helper): histograms, or floats (e.g. stale
        markers) mixed in."""
        h = np.full(len(hists), None, object)
        v = np.full(len(hists), HISTOGRAM_PLACEHOLDER)
        for k, x in enumerate(hists):
            if isinstance(x, FloatHistogram | Histogram):
                h[k] = x.to_float()
            else:
                v[k] = float(x)
        with self._lock:
            self._held(labels).merge(np.asarray(ts_ms, np.int64), v, h,
                                     None if start_ts_ms is None else np.asarray(start_ts_ms, np.int64))

    def _commit(self, batch: dict[Labels, tuple[list[int], list[float]]],
                hbatch: dict[Labels, tuple[list[int], list[FloatHistogram]]]) -> AppendStats:
        stats = AppendStats()
        with self._lock:
            for labels in {**batch, **hbatch}:
                if labels not in self._series:
                    stats.new_series += 1
            for labels, ts_a, vs_a in self._accepted(batch, stats):
                self.add_series(labels, ts_a, vs_a)
                stats.appended += int(ts_a.shape[0])
            for labels, (ts, hs) in hbatch.items():
                self.add_histogram_series(labels, ts, hs)
                stats.appended += len(ts)
        return stats

    def _accepted(self, batch: dict[Labels, tuple[list[int], list[float]]], stats: AppendStats
                  ) -> list[tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """The samples of ``batch`` to store (per series, in append order); refusals counted."""
        if not batch:
            return []
        names = list(batch)
        lens = np.array([len(batch[k][0]) for k in names], np.int64)
        refs = np.repeat(np.arange(len(names), dtype=np.int64), lens)
        # Each series' list converted in one call (no Python step per sample).
        ts = np.concatenate([np.asarray(batch[k][0], np.int64) for k in names])
        vals = np.concatenate([np.asarray(batch[k][1], np.float64) for k in names])
        held = [self._series.get(k) for k in names]
        latest = np.array([s.ts[-1] if s is not None and s.ts.shape[0] else NO_TS for s in held], np.int64)
        last = np.array([s.values[-1] if s is not None and s.ts.shape[0] else 0.0 for s in held])

        def exists(r: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
            out = np.zeros(r.shape[0], bool)
            for k in unique(r).tolist():
                s = held[k]
                if s is not None:
                    out[r == k] = np.isin(t[r == k], s.ts)
            return out

        code = classify(refs, ts, vals, latest, last, head_maxt=self._maxt if self._maxt is not None
                        else int(ts[0]), min_valid=int(NO_TS), ooo_ms=self.ooo_window_ms, exists=exists)
        counts = np.bincount(code, minlength=DUPLICATE + 1).tolist()
        stats.out_of_order, stats.too_old = counts[OUT_OF_ORDER], counts[TOO_OLD]
        stats.duplicates = counts[DUPLICATE]
        keep = code <= OOO
        if keep.any():
            top = int(ts[keep].max())
            self._maxt = top if self._maxt is None else max(self._maxt, top)
        ends = np.cumsum(lens).tolist()
        return [(k, ts[a:b][keep[a:b]], vals[a:b][keep[a:b]])
                for k, a, b in zip(names, [0, *ends[:-1]], ends, strict=True) if keep[a:b].any()]

    def _snapshot(self, name: str | None = None) -> list[tuple[Labels, _Series]]:
        """The series sorted by labels (those named ``name`` only, if given); not to be
        modified."""
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._series.items(), key=lambda kv: kv[0])
            if name is None:
                return self._sorted
            if self._by_name is None:
                by_name: dict[str, list[tuple[Labels, _Series]]] = {}
                for kv in self._sorted:
                    by_name.setdefault(kv[0].get(METRIC_NAME, ""), []).append(kv)
                self._by_name = by_name
            return self._by_name.get(name, [])


class _MemoryAppender:
    def __init__(self, store: MemoryStorage) -> None:
        self._store = store
        self._batch: dict[Labels, tuple[list[int], list[float]]] = {}
        self._hbatch: dict[Labels, tuple[list[int], list[FloatHistogram]]] = {}

    def append_histogram(self, labels: Labels, ts_ms: int, h: FloatHistogram | Histogram) -> None:
        ts, hs = self._hbatch.setdefault(labels, ([], []))
        ts.append(int(ts_ms))
        hs.append(h.to_float())

    def append_histogram_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                               ts_ms: npt.NDArray[np.int64],
                               hists: Sequence[FloatHistogram | Histogram]) -> None:
        for k, (i, t) in enumerate(zip(np.asarray(index).tolist(), np.asarray(ts_ms).tolist(),
                                       strict=True)):
            self.append_histogram(series[i], t, hists[k])

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        ts, vs = self._batch.setdefault(labels, ([], []))
        ts.append(int(ts_ms))
        vs.append(float(value))

    def append_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                     ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        index = np.asarray(index)
        order = np.argsort(index, kind="stable")
        idx_sorted = index[order]
        bounds = np.flatnonzero(np.diff(idx_sorted)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [idx_sorted.shape[0]]])
        ts_sorted = np.asarray(ts_ms, np.int64)[order]
        v_sorted = np.asarray(values, np.float64)[order]
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            if a == b:
                continue
            ts, vs = self._batch.setdefault(series[int(idx_sorted[a])], ([], []))
            ts.extend(ts_sorted[a:b].tolist())
            vs.extend(v_sorted[a:b].tolist())

    def commit(self) -> AppendStats:
        batch, self._batch = self._batch, {}
        hbatch, self._hbatch = self._hbatch, {}
        return self._store._commit(batch, hbatch)

    def rollback(self) -> None:
        self._batch = {}
        self._hbatch = {}


class _MemoryQuerier:
    def __init__(self, store: MemoryStorage, mint_ms: int, maxt_ms: int) -> None:
        self._store = store
        self.mint_ms = mint_ms
        self.maxt_ms = maxt_ms

    def _matching(self, matchers: Sequence[Matcher]) -> list[tuple[Labels, _Series]]:
        name = next((m.value for m in matchers
                     if m.name == METRIC_NAME and m.type == MatchType.EQUAL), None)
        return [(ls, s) for ls, s in self._store._snapshot(name)
                if all(m.matches(ls.get(m.name, "")) for m in matchers)]

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        mint, maxt = clamp_range(self.mint_ms, self.maxt_ms, hints)
        if mint > maxt:  # hints outside the querier's range: nothing (not negative runs)
            return SeriesSet.empty()
        labels: list[Labels] = []
        ts_parts: list[npt.NDArray[np.int64]] = []
        v_parts: list[npt.NDArray[np.float64]] = []
        h_parts: list[npt.NDArray[np.object_] | None] = []
        st_parts: list[npt.NDArray[np.int64] | None] = []
        lengths: list[int] = []
        for ls, s in self._matching(matchers):
            a = int(np.searchsorted(s.ts, mint, "left"))
            b = int(np.searchsorted(s.ts, maxt, "right"))
            if a == b:
                continue
            labels.append(ls)
            ts_parts.append(s.ts[a:b])
            v_parts.append(s.values[a:b])
            h_parts.append(None if s.hists is None else s.hists[a:b])
            st_parts.append(None if s.st is None else s.st[a:b])
            lengths.append(b - a)
        if not labels:
            return SeriesSet.empty()
        offsets = np.zeros(len(labels) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        hists = None
        if any(h is not None for h in h_parts):
            hists = np.concatenate([np.full(n, None, object) if h is None else h
                                    for h, n in zip(h_parts, lengths, strict=True)])
        st = None
        if any(x is not None for x in st_parts):
            st = np.concatenate([np.zeros(n, np.int64) if x is None else x
                                 for x, n in zip(st_parts, lengths, strict=True)])
        return SeriesSet(labels, offsets, np.concatenate(ts_parts), np.concatenate(v_parts), hists,
                         st)

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        return self.select(matchers).labels

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names: set[str] = set()
        for ls in self.select(matchers).labels:
            names.update(ls)
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        vals = {ls[name] for ls in self.select(matchers).labels if name in ls}
        return sorted(vals)

    def close(self) -> None:
        pass
