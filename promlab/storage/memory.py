"""An in-memory store: the engine's test double and the conformance runner's storage.

Same contract as the Parquet store (:mod:`promlab.storage.interface`), no durability. Duplicate
timestamps: the last write wins. Out-of-order appends are accepted (series are kept sorted).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher
from promlab.storage.interface import AppendStats, SelectHints, SeriesSet, clamp_range

__all__ = ["MemoryStorage"]


class _Series:
    __slots__ = ("ts", "values")

    def __init__(self) -> None:
        self.ts = np.zeros(0, np.int64)
        self.values = np.zeros(0, np.float64)

    def merge(self, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        all_ts = np.concatenate([self.ts, ts])
        all_v = np.concatenate([self.values, values])
        # Stable sort, then keep the last of equal timestamps: later writes win.
        order = np.argsort(all_ts, kind="stable")
        all_ts, all_v = all_ts[order], all_v[order]
        keep = np.ones(all_ts.shape[0], bool)
        keep[:-1] = all_ts[1:] != all_ts[:-1]
        self.ts, self.values = all_ts[keep], all_v[keep]


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

    def __init__(self) -> None:
        self._series: dict[Labels, _Series] = {}
        self._lock = threading.RLock()

    def appender(self) -> _MemoryAppender:
        return _MemoryAppender(self)

    def querier(self, mint_ms: int, maxt_ms: int) -> _MemoryQuerier:
        return _MemoryQuerier(self, mint_ms, maxt_ms)

    def clear(self) -> None:
        with self._lock:
            self._series.clear()

    def close(self) -> None:
        pass

    def add_series(self, labels: Labels, ts_ms: Sequence[int] | npt.NDArray[np.int64],
                   values: Sequence[float] | npt.NDArray[np.float64]) -> None:
        """Load one series' samples directly (test helper)."""
        with self._lock:
            s = self._series.setdefault(labels, _Series())
            s.merge(np.asarray(ts_ms, np.int64), np.asarray(values, np.float64))

    def _commit(self, batch: dict[Labels, tuple[list[int], list[float]]]) -> AppendStats:
        stats = AppendStats()
        with self._lock:
            for labels, (ts, vs) in batch.items():
                if labels not in self._series:
                    stats.new_series += 1
                self.add_series(labels, ts, vs)
                stats.appended += len(ts)
        return stats

    def _snapshot(self) -> list[tuple[Labels, _Series]]:
        with self._lock:
            return sorted(self._series.items(), key=lambda kv: kv[0])


class _MemoryAppender:
    def __init__(self, store: MemoryStorage) -> None:
        self._store = store
        self._batch: dict[Labels, tuple[list[int], list[float]]] = {}

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
        return self._store._commit(batch)

    def rollback(self) -> None:
        self._batch = {}


class _MemoryQuerier:
    def __init__(self, store: MemoryStorage, mint_ms: int, maxt_ms: int) -> None:
        self._store = store
        self.mint_ms = mint_ms
        self.maxt_ms = maxt_ms

    def _matching(self, matchers: Sequence[Matcher]) -> list[tuple[Labels, _Series]]:
        return [(ls, s) for ls, s in self._store._snapshot()
                if all(m.matches(ls.get(m.name, "")) for m in matchers)]

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        mint, maxt = clamp_range(self.mint_ms, self.maxt_ms, hints)
        labels: list[Labels] = []
        ts_parts: list[npt.NDArray[np.int64]] = []
        v_parts: list[npt.NDArray[np.float64]] = []
        lengths: list[int] = []
        for ls, s in self._matching(matchers):
            a = int(np.searchsorted(s.ts, mint, "left"))
            b = int(np.searchsorted(s.ts, maxt, "right"))
            if a == b:
                continue
            labels.append(ls)
            ts_parts.append(s.ts[a:b])
            v_parts.append(s.values[a:b])
            lengths.append(b - a)
        if not labels:
            return SeriesSet.empty()
        offsets = np.zeros(len(labels) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return SeriesSet(labels, offsets, np.concatenate(ts_parts), np.concatenate(v_parts))

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
