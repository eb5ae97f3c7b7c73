"""Exemplar storage (Prometheus's ``exemplar-storage`` feature).

:class:`ExemplarStore` is a fixed-size circular buffer over all series, as Prometheus's: when it
is full the oldest exemplar is overwritten. Per series, an exemplar equal to the newest one
stored (labels, value, and timestamp when either came with one) is a duplicate and ignored; one
not newer than it is out of order and refused; one whose labels are longer than 128 characters
(names and values, as Prometheus counts) is invalid and refused. So an exemplar a target exposes
without a timestamp is stored once, at the first scrape that saw it, until it changes (as in
Prometheus). Scraped and remote-written exemplars go to the same store.

Persistence: the buffer itself lives in memory; a writable
:class:`~promlab.storage.store.ParquetStore` attaches a journal (:class:`ExemplarJournal`, its
exemplar WAL: :mod:`promlab.storage.exwal`) that logs every added exemplar durably before it
becomes visible and replays them when the store is opened again, as Prometheus replays exemplars
from its WAL. Other storages (memory) keep exemplars for the life of the process.

promlab keeps exemplar storage on by default with Prometheus's default size
(:data:`DEFAULT_MAX_EXEMPLARS`, 100,000, about 10 MB for a trace id each); ``max_exemplars`` 0
turns it off (``storage.exemplars.max_exemplars`` in ``prometheus.yml``).

:func:`exemplars_of` finds the exemplar store that belongs to a storage object (writers and the
HTTP API reach it through the store they share); it lives as long as that object. A read-only
Parquet store binds one of its own (:func:`bind_exemplars`): a follower that serves what the
writer's exemplar WAL holds (:mod:`promlab.storage.exfollow`).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from promlab.model import Labels, Matcher

__all__ = ["DEFAULT_MAX_EXEMPLARS", "MAX_LABEL_CHARS", "ExemplarItem", "ExemplarJournal",
           "ExemplarResult", "ExemplarStore", "StoredExemplar", "bind_exemplars", "exemplars_of"]

DEFAULT_MAX_EXEMPLARS = 100_000
#: Longest exemplar label set (characters of names and values), Prometheus's
#: ``ExemplarMaxLabelSetLength``.
MAX_LABEL_CHARS = 128

#: ``(series, exemplar labels, value, timestamp_ms, has_timestamp)``
ExemplarItem = tuple[Labels, Labels, float, int, bool]


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


class ExemplarJournal(Protocol):
    """Where an :class:`ExemplarStore` makes its exemplars durable (a store's exemplar WAL).

    The exemplar store calls both methods holding its lock, so the journal sees appends and
    rewrites in the buffer's order and never concurrently.
    """

    def log(self, items: Sequence[ExemplarItem]) -> None:
        """Make ``items`` (just accepted, in order) durable; raising refuses them all."""

    def rewrite(self, items: Sequence[ExemplarItem]) -> None:
        """Replace everything logged so far with ``items`` (a checkpoint)."""

    def oversized(self, buffered: int) -> bool:
        """Whether the journal holds so many more exemplars than the ``buffered`` ones that
        the store should rewrite it now (checked after each logged append)."""


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
        self._journal: ExemplarJournal | None = None
        self._journal_floor = -(1 << 63)  # the last compact_journal's min_ts_ms

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
        ``"out of order"``, ``"invalid"`` (labels too long) or ``"disabled"`` (size 0)."""
        return self.append_verdicts([(series, labels, value, timestamp_ms, has_timestamp)])[0]

    def append_many(self, items: Sequence[ExemplarItem]) -> int:
        """Append ``(series, labels, value, ts_ms, has_timestamp)`` items; returns how many were added."""
        return sum(v == "added" for v in self.append_verdicts(items))

    def append_verdicts(self, items: Sequence[ExemplarItem]) -> list[str]:
        """Append ``items`` in order; the verdict of each (see :meth:`append`).

        With a journal attached, the added ones are logged (one call) before any becomes
        visible; if logging raises, none is stored and the error propagates.
        """
        with self._lock:
            if not self._buf.maxlen:
                return ["disabled"] * len(items)
            newest: dict[Labels, StoredExemplar] = {}  # this call's additions, not yet applied
            verdicts: list[str] = []
            added: list[tuple[Labels, StoredExemplar]] = []
            for series, labels, value, ts, has_ts in items:
                ex = StoredExemplar(labels, float(value), int(ts), bool(has_ts))
                last = newest.get(series) or self._newest.get(series)
                verdict = _verdict(last, ex)
                verdicts.append(verdict)
                if verdict == "added":
                    newest[series] = ex
                    added.append((series, ex))
            if added and self._journal is not None:
                self._journal.log([(s, e.labels, e.value, e.timestamp_ms, e.has_timestamp)
                                   for s, e in added])
            for series, ex in added:
                self._push(series, ex)
            if added and self._journal is not None and self._journal.oversized(len(self._buf)):
                self._rewrite_journal(self._journal, self._journal_floor)
            return verdicts

    def replace(self, items: Sequence[ExemplarItem]) -> int:
        """Replace the contents with ``items`` appended in order to an empty buffer of the same
        size (a replay: the newest ``max_exemplars`` are kept); returns how many were added.
        The journal, if any, is not told (a read-only store's follower mirrors another's log)."""
        fresh = ExemplarStore(self.max_exemplars)
        added = fresh.append_many(items)
        with self._lock:
            self._buf, self._newest = fresh._buf, fresh._newest
        return added

    def _push(self, series: Labels, ex: StoredExemplar) -> None:
        if len(self._buf) == self._buf.maxlen:
            old_series, old = self._buf[0]
            if self._newest.get(old_series) is old:
                del self._newest[old_series]
        self._buf.append((series, ex))
        self._newest[series] = ex

    def attach_journal(self, journal: ExemplarJournal | None) -> None:
        """Log every exemplar added from now on to ``journal`` (None detaches)."""
        with self._lock:
            self._journal = journal

    def compact_journal(self, min_ts_ms: int) -> int:
        """Rewrite the journal with the stored exemplars at or after ``min_ts_ms`` (oldest
        first); returns how many it keeps (0 without a journal). ``min_ts_ms`` stays the floor
        of the rewrites the journal asks for when :meth:`ExemplarJournal.oversized`."""
        with self._lock:
            if self._journal is None:
                return 0
            self._journal_floor = min_ts_ms
            return self._rewrite_journal(self._journal, min_ts_ms)

    def _rewrite_journal(self, journal: ExemplarJournal, min_ts_ms: int) -> int:
        keep = [(s, e.labels, e.value, e.timestamp_ms, e.has_timestamp)
                for s, e in self._buf if e.timestamp_ms >= min_ts_ms]
        journal.rewrite(keep)
        return len(keep)

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


def _verdict(last: StoredExemplar | None, ex: StoredExemplar) -> str:
    """``ex`` against the newest stored exemplar of its series (Prometheus's rules)."""
    if sum(len(n) + len(v) for n, v in ex.labels.pairs) > MAX_LABEL_CHARS:
        return "invalid"
    if last is not None:
        same_ts = last.timestamp_ms == ex.timestamp_ms or not (last.has_timestamp or ex.has_timestamp)
        if last.labels == ex.labels and same_ts and (
                last.value == ex.value or (last.value != last.value and ex.value != ex.value)):
            return "duplicate"
        if ex.timestamp_ms <= last.timestamp_ms:
            return "out of order"
    return "added"


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


def bind_exemplars(storage: Any, store: ExemplarStore) -> None:
    """Make ``store`` the exemplar store :func:`exemplars_of` finds for ``storage`` (a read-only
    Parquet store binds its follower of the writer's log, :mod:`promlab.storage.exfollow`).
    ``store`` must not refer to ``storage``: it would keep it alive."""
    with _BY_STORE_LOCK:
        _BY_STORE[storage] = store
