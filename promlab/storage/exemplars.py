"""In-memory exemplar storage (Prometheus's ``exemplar-storage`` feature).

:class:`ExemplarStore` is a fixed-size circular buffer over all series, as Prometheus's: when it
is full the oldest exemplar is overwritten. Per series, an exemplar equal to the newest one
stored (labels, value, and timestamp when either came with one) is a duplicate and ignored; one
not newer than it is out of order and refused. So an exemplar a target exposes without a
timestamp is stored once, at the first scrape that saw it, until it changes (as in Prometheus). Nothing is persisted (Prometheus also replays them from its WAL; promlab's
exemplars live as long as the process).

promlab keeps exemplar storage on by default with Prometheus's default size
(:data:`DEFAULT_MAX_EXEMPLARS`, 100,000, about 10 MB for a trace id each); ``max_exemplars`` 0
turns it off (``storage.exemplars.max_exemplars`` in ``prometheus.yml``).

:func:`exemplars_of` finds the exemplar store that belongs to a storage object (writers and the
HTTP API reach it through the store they share); it lives as long as that object.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promlab.model import Labels, Matcher

__all__ = ["DEFAULT_MAX_EXEMPLARS", "ExemplarResult", "ExemplarStore", "StoredExemplar", "exemplars_of"]

DEFAULT_MAX_EXEMPLARS = 100_000


@dataclass(frozen=True, slots=True)
class StoredExemplar:
    labels: Labels
    value: float
    timestamp_ms: int
    #: whether the exemplar came with its own timestamp (else it has the scrape's)
    has_timestamp: bool = True


@dataclass(frozen=True, slots=True)
class ExemplarResult:
    """The exemplars of one series in a time range, oldest first."""

    series: Labels
    exemplars: list[StoredExemplar]


class ExemplarStore:
    """A circular buffer of ``max_exemplars`` exemplars over all series (thread-safe).

    Examples
    --------
    >>> from promlab.model import MatchType
    >>> st = ExemplarStore(2)
    >>> s = Labels({"__name__": "a_total"})
    >>> [st.append(s, Labels({"trace_id": t}), 1.0, ts) for t, ts in (("x", 10), ("x", 10), ("y", 5), ("z", 20))]
    ['added', 'duplicate', 'out of order', 'added']
    >>> [e.labels["trace_id"] for r in st.select(0, 100, [[Matcher(MatchType.EQUAL, "__name__", "a_total")]])
    ...  for e in r.exemplars]
    ['x', 'z']
    """

    def __init__(self, max_exemplars: int = DEFAULT_MAX_EXEMPLARS) -> None:
        self._lock = threading.Lock()
        self._buf: deque[tuple[Labels, StoredExemplar]] = deque(maxlen=max(max_exemplars, 0))
        self._newest: dict[Labels, StoredExemplar] = {}

    @property
    def max_exemplars(self) -> int:
        return self._buf.maxlen or 0

    def __len__(self) -> int:
        return len(self._buf)

    def resize(self, max_exemplars: int) -> None:
        """Change the size, keeping the newest exemplars that fit (as a config reload does)."""
        with self._lock:
            if max_exemplars == self.max_exemplars:
                return
            keep = list(self._buf)[-max_exemplars:] if max_exemplars > 0 else []
            self._buf = deque(keep, maxlen=max(max_exemplars, 0))
            self._newest = {s: e for s, e in self._buf}

    def append(self, series: Labels, labels: Labels, value: float, timestamp_ms: int,
               has_timestamp: bool = True) -> str:
        """Store one exemplar of ``series``; returns ``"added"``, ``"duplicate"``,
        ``"out of order"`` or ``"disabled"`` (size 0)."""
        ex = StoredExemplar(labels, float(value), int(timestamp_ms), has_timestamp)
        with self._lock:
            if not self._buf.maxlen:
                return "disabled"
            last = self._newest.get(series)
            if last is not None:
                same_ts = last.timestamp_ms == ex.timestamp_ms or not (last.has_timestamp or has_timestamp)
                if last.labels == ex.labels and same_ts and (
                        last.value == ex.value or (last.value != last.value and ex.value != ex.value)):
                    return "duplicate"
                if ex.timestamp_ms <= last.timestamp_ms:
                    return "out of order"
            if len(self._buf) == self._buf.maxlen:
                old_series, old = self._buf[0]
                if self._newest.get(old_series) is old:
                    del self._newest[old_series]
            self._buf.append((series, ex))
            self._newest[series] = ex
            return "added"

    def append_many(self, items: Sequence[tuple[Labels, Labels, float, int, bool]]) -> int:
        """Append ``(series, labels, value, ts_ms, has_timestamp)`` items; returns how many were added."""
        return sum(self.append(*it) == "added" for it in items)

    def select(self, start_ms: int, end_ms: int, matcher_sets: Sequence[Sequence[Matcher]]
               ) -> list[ExemplarResult]:
        """Exemplars with ``start_ms <= t <= end_ms`` of the series matching any of the
        ``matcher_sets`` (all matchers of a set), series sorted by labels."""
        with self._lock:
            items = list(self._buf)
        by_series: dict[Labels, list[StoredExemplar]] = {}
        verdict: dict[Labels, bool] = {}
        for series, ex in items:
            if not start_ms <= ex.timestamp_ms <= end_ms:
                continue
            ok = verdict.get(series)
            if ok is None:
                ok = verdict[series] = any(all(m.matches(series.get(m.name, "")) for m in ms)
                                           for ms in matcher_sets)
            if ok:
                by_series.setdefault(series, []).append(ex)
        return [ExemplarResult(s, by_series[s]) for s in sorted(by_series)]


_BY_STORE: weakref.WeakKeyDictionary[Any, ExemplarStore] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def exemplars_of(storage: Any, *, create: bool = True) -> ExemplarStore | None:
    """The exemplar store of ``storage`` (made with the default size on first use when
    ``create``); ``None`` when there is none or ``storage`` cannot have one."""
    with _BY_STORE_LOCK:
        try:
            st = _BY_STORE.get(storage)
            if st is None and create:
                st = _BY_STORE[storage] = ExemplarStore()
        except TypeError:  # not weak-referenceable
            return None
        return st
