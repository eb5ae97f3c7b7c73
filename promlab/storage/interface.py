"""The storage boundary: what the engine, the scraper and the front ends may rely on.

Writers get an :class:`Appender`; readers get a :class:`Querier` from a :class:`Queryable`.
Nothing above storage imports anything but this module (and ``promlab.model``).

Times are int milliseconds since the epoch. Ranges are closed: ``[mint_ms, maxt_ms]``.

Native histograms are a second value kind beside floats (:mod:`promlab.model.histogram`):

* Writers call :meth:`Appender.append_histogram` / :meth:`Appender.append_histogram_batch` with
  :class:`~promlab.model.histogram.Histogram` (integer, delta buckets: what scrapes produce) or
  :class:`~promlab.model.histogram.FloatHistogram` (recording rules) values. A series may hold
  both kinds over time (Prometheus allows it); at one timestamp the last write wins, whatever
  its kind. Staleness is always the float :data:`~promlab.model.STALE_NAN` sample, also in a
  histogram series.
* Readers get the histograms in :attr:`SeriesSet.histograms`: ``None`` when the set holds no
  histogram sample (the float-only fast path: nothing else changes), else an object array
  parallel to ``ts_ms``/``values`` whose entry ``k`` is the
  :class:`~promlab.model.histogram.FloatHistogram` of sample ``k`` (absolute float counts, as
  Prometheus's engine converts them) or ``None`` for a float sample. ``values[k]`` of a
  histogram sample is NaN (:data:`HISTOGRAM_PLACEHOLDER`, a NaN with its own bit pattern) so
  float-only code never mistakes it for a number; :meth:`SeriesSet.histogram_mask` is the kind
  mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher
from promlab.model.histogram import FloatHistogram, Histogram

__all__ = [
    "HISTOGRAM_PLACEHOLDER",
    "AppendStats",
    "Appender",
    "Querier",
    "Queryable",
    "SampleEstimator",
    "SelectHints",
    "SeriesLayout",
    "SeriesSet",
    "SeriesShard",
    "Storage",
    "clamp_range",
]

#: ``values[k]`` of a histogram sample: a NaN with bit pattern 0x7ff0000000000003 (not the
#: staleness marker's 0x...02).
HISTOGRAM_PLACEHOLDER: float = float(np.array([0x7FF0000000000003], np.uint64).view(np.float64)[0])

AnyHistogram = Histogram | FloatHistogram

_T = TypeVar("_T", bound=np.generic)


#: The ``offsets`` of every set in view form (empty; read-only, so one array serves all).
_NO_OFFSETS = np.zeros(0, np.int64)
_NO_OFFSETS.flags.writeable = False


@dataclass(frozen=True, slots=True)
class SeriesSet:
    """A columnar set of series (CSR layout).

    Series ``i`` has labels ``labels[i]`` and its samples are
    ``ts_ms[offsets[i]:offsets[i+1]]`` / ``values[offsets[i]:offsets[i+1]]``.

    Contract: ``labels`` are unique and sorted (``Labels`` ordering, as Prometheus's
    ``labels.Compare``); within a series timestamps are strictly increasing. Values may contain
    the staleness marker (:data:`promlab.model.STALE_NAN`). Arrays are read-only views that stay
    valid after the querier is closed. Series with no samples in range may be omitted.

    ``histograms`` is ``None`` unless some sample is a native histogram; then it is an object
    array parallel to ``values`` holding a :class:`~promlab.model.histogram.FloatHistogram` for
    each histogram sample and ``None`` for each float sample (see the module docstring).

    **View form.** A reader that asked for it (``SelectHints.views``) may get a set whose runs
    are windows into shared arrays (a cached decoded block) instead of a contiguous copy:
    ``starts``/``ends`` are then set and series ``i``'s samples are
    ``ts_ms[starts[i]:ends[i]]`` (likewise ``values``, ``histograms``, ``start_ts_ms``, all
    parallel to ``ts_ms``); the arrays may hold other samples between runs, and ``offsets``
    is empty (so code indexing it fails loudly rather than reading the wrong samples). Use
    :meth:`bounds`, :meth:`run`, :meth:`series`, :meth:`lengths`, or :meth:`compact` for the
    contiguous form (which copies the runs). Without ``starts``/``ends`` the set is compact and
    ``bounds()`` is ``(offsets[:-1], offsets[1:])``.
    """

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    histograms: npt.NDArray[np.object_] | None = None
    # Start timestamps (the experimental ``use-start-timestamps`` feature): None unless some
    # sample has one, else an int64 array parallel to ``ts_ms`` (0 = unknown).
    start_ts_ms: npt.NDArray[np.int64] | None = None
    # View form (see the class docstring): per-series [start, end) into the shared arrays.
    starts: npt.NDArray[np.int64] | None = None
    ends: npt.NDArray[np.int64] | None = None

    @classmethod
    def empty(cls) -> SeriesSet:
        return cls([], np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))

    @classmethod
    def view(cls, labels: list[Labels], starts: npt.NDArray[np.int64],
             ends: npt.NDArray[np.int64], ts_ms: npt.NDArray[np.int64],
             values: npt.NDArray[np.float64]) -> SeriesSet:
        """A set in view form: series ``i`` is ``ts_ms[starts[i]:ends[i]]`` (no copy)."""
        return cls(labels, _NO_OFFSETS, ts_ms, values, starts=starts, ends=ends)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def is_view(self) -> bool:
        """Whether the set is in view form (runs are windows into shared arrays)."""
        return self.starts is not None

    @property
    def num_samples(self) -> int:
        if self.starts is not None and self.ends is not None:
            return int(np.add.reduce(self.ends - self.starts))  # (no .sum() wrapper)
        return int(self.ts_ms.shape[0])

    def bounds(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Per series ``[start, end)`` of its run in the arrays (either form)."""
        if self.starts is not None and self.ends is not None:
            return self.starts, self.ends
        return self.offsets[:-1], self.offsets[1:]

    def run(self, i: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Series ``i``'s timestamps and values (views, no copy)."""
        s, e = self.bounds()
        a, b = int(s[i]), int(e[i])
        return self.ts_ms[a:b], self.values[a:b]

    def series(self, i: int) -> tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        ts, vals = self.run(i)
        return self.labels[i], ts, vals

    def lengths(self) -> npt.NDArray[np.int64]:
        s, e = self.bounds()
        out: npt.NDArray[np.int64] = e - s
        return out

    def compact(self) -> SeriesSet:
        """The set in contiguous (CSR) form: itself when it already is, else a copy of its runs
        (with the histograms and start timestamps riding along)."""
        if self.starts is None or self.ends is None:
            return self
        starts, ends = self.starts, self.ends
        lens = ends - starts
        offsets = np.zeros(lens.shape[0] + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        total = int(offsets[-1])
        if total >= 64 * max(lens.shape[0], 1):
            # Long runs: one slice copy per series beats a per-sample gather index.
            take: npt.NDArray[np.int64] | None = None
            spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
        else:
            take = np.repeat(starts - offsets[:-1], lens) + np.arange(total, dtype=np.int64)
            spans = []

        def gather(a: npt.NDArray[_T]) -> npt.NDArray[_T]:
            if take is None:
                return np.concatenate([a[x:y] for x, y in spans])
            out: npt.NDArray[_T] = a[take]
            return out

        ts, vals = gather(self.ts_ms), gather(self.values)
        hs = None if self.histograms is None else gather(self.histograms)
        st = None if self.start_ts_ms is None else gather(self.start_ts_ms)
        for arr in (offsets, ts, vals):
            arr.flags.writeable = False
        return SeriesSet(self.labels, offsets, ts, vals, hs, st)

    def histogram_mask(self) -> npt.NDArray[np.bool_]:
        """Per sample of the arrays: True for a native histogram sample (all False without)."""
        n = int(self.ts_ms.shape[0])
        if self.histograms is None:
            return np.zeros(n, bool)
        return np.fromiter((h is not None for h in self.histograms), bool, n)

    def series_histograms(self, i: int) -> npt.NDArray[np.object_] | None:
        """Series ``i``'s slice of :attr:`histograms` (None when the set has none)."""
        if self.histograms is None:
            return None
        s, e = self.bounds()
        return self.histograms[int(s[i]):int(e[i])]


@dataclass(frozen=True, slots=True, eq=False)
class SeriesShard:
    """One shard of a selection whose series are split over workers (see :class:`SelectHints`).

    The caller resolved the selection's series beforehand and assigned each to a shard:
    ``ids`` are their series ids (``Labels.hash``) sorted ascending and ``owners[i]`` the shard
    of ``ids[i]``; this shard is ``index``. A series the caller did not know (it appeared since)
    is kept: the caller assigns it after the read.
    """

    ids: npt.NDArray[np.int64]
    owners: npt.NDArray[np.int32]
    index: int

    def keep(self, sids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Per series id in ``sids``: read it (this shard's, or unknown to the caller)."""
        if self.ids.shape[0] == 0:
            return np.ones(sids.shape[0], bool)
        pos = np.minimum(np.searchsorted(self.ids, sids), self.ids.shape[0] - 1)
        out: npt.NDArray[np.bool_] = (self.ids[pos] != sids) | (self.owners[pos] == self.index)
        return out


@dataclass(frozen=True, slots=True)
class SelectHints:
    """What the caller is about to do with a selection. Every field may be ignored by storage.

    ``start_ms``/``end_ms`` narrow the time range further than the querier's; ``step_ms``,
    ``range_ms`` and ``func`` describe the query (Prometheus's ``SelectHints``). ``shard`` asks
    for one shard of the series only (a worker of a distributed query): storage that honours it
    leaves the other shards' series out *before* decoding them; one that ignores it returns
    them all and the caller drops them.
    """

    start_ms: int | None = None
    end_ms: int | None = None
    step_ms: int = 0
    range_ms: int = 0
    func: str = ""
    shard: SeriesShard | None = None
    #: The caller accepts a :class:`SeriesSet` in view form (it reads runs through
    #: ``bounds()``/``run()``), which spares copying runs cut out of cached arrays.
    views: bool = False


def clamp_range(mint_ms: int, maxt_ms: int, hints: SelectHints | None) -> tuple[int, int]:
    """``[mint_ms, maxt_ms]`` narrowed by the hints' ``start_ms``/``end_ms`` when set."""
    if hints is not None:
        if hints.start_ms is not None:
            mint_ms = max(mint_ms, hints.start_ms)
        if hints.end_ms is not None:
            maxt_ms = min(maxt_ms, hints.end_ms)
    return mint_ms, maxt_ms


@runtime_checkable
class Querier(Protocol):
    """Read access to ``[mint_ms, maxt_ms]`` of a store. Close it when done."""

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        """Series matching all ``matchers`` with their samples in range (sorted by labels)."""
        ...

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted label names of series in range (of those matching ``matchers``, if given)."""
        ...

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        """Sorted values of label ``name`` in range (of series matching ``matchers``)."""
        ...

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        """Label sets of series with samples in range matching ``matchers`` (sorted)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SeriesLayout(Protocol):
    """Optional for a :class:`Querier`: its series in the order storage lays them out.

    ``series_layout(matchers)`` returns what :meth:`Querier.series` returns, ordered so that a
    contiguous run of the list is (nearly) a contiguous run of stored rows: a reader asking for a
    run of it (``SelectHints.shard``) touches few row groups. Used to split a selection's series
    between workers; queriers without it are split in label order.
    """

    def series_layout(self, matchers: Sequence[Matcher]) -> list[Labels]: ...


@runtime_checkable
class SampleEstimator(Protocol):
    """Optional for a :class:`Querier`: how many samples a selection would load, without loading.

    ``estimate_samples(matchers, mint_ms, maxt_ms)`` answers from what the storage knows without
    decoding (chunk row counts): an upper bound of the samples :meth:`Querier.select` would return
    for ``matchers`` over ``[mint_ms, maxt_ms]``, close enough to size reads (a selection's whole
    chunks are counted even when the range cuts them). Callers use it to decide whether to read a
    long range in one go; queriers without it are probed with a small read.
    """

    def estimate_samples(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> int: ...


@runtime_checkable
class Queryable(Protocol):
    def querier(self, mint_ms: int, maxt_ms: int) -> Querier: ...


@dataclass(slots=True)
class AppendStats:
    """What a commit did: samples written and samples refused, by reason.

    The refusals are Prometheus's (see :mod:`promlab.storage.accept`): ``out_of_order`` (older
    than the series' latest, no out-of-order window), ``out_of_bounds`` (before the head's
    minimum valid time), ``too_old`` (older than the out-of-order window), ``duplicates``
    (another value at the series' latest timestamp: the first write wins). A sample repeating
    the latest one exactly is taken without being stored again, and counts in none of them.
    ``refusals``: for batches appended with ``units`` (the remote-write receiver's requests),
    ``(unit, message, series)`` of the samples refused against what was committed before, with
    Prometheus's error text; a unit appended ``atomic`` is refused whole and lists its first
    refusal only. ``histogram_refusals``: the same for native histogram samples (the counters
    above count both kinds).
    """

    appended: int = 0
    out_of_order: int = 0
    out_of_bounds: int = 0
    duplicates: int = 0
    new_series: int = 0
    errors: list[str] = field(default_factory=list)
    too_old: int = 0
    refusals: list[tuple[int, str, Labels]] = field(default_factory=list)
    histogram_refusals: list[tuple[int, str, Labels]] = field(default_factory=list)


@runtime_checkable
class Appender(Protocol):
    """A batch of appends. Nothing is visible or durable before :meth:`commit`.

    An appender is used by one thread. ``commit`` makes the batch durable (written to the WAL
    and fsynced per the store's policy) and visible to queriers; ``rollback`` drops it. After
    either, the appender may be reused for a new batch.
    """

    def append(self, labels: Labels, ts_ms: int, value: float) -> None: ...

    def append_batch(
        self,
        series: Sequence[Labels],
        index: npt.NDArray[np.integer],
        ts_ms: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
    ) -> None:
        """Append ``len(index)`` samples; sample ``k`` belongs to ``series[index[k]]``."""
        ...

    def append_histogram(self, labels: Labels, ts_ms: int, h: AnyHistogram) -> None:
        """Append one native histogram sample (integer or float histogram)."""
        ...

    def append_histogram_batch(
        self,
        series: Sequence[Labels],
        index: npt.NDArray[np.integer],
        ts_ms: npt.NDArray[np.int64],
        hists: Sequence[AnyHistogram],
    ) -> None:
        """Append ``len(index)`` histogram samples; sample ``k`` is ``hists[k]`` of ``series[index[k]]``."""
        ...

    def commit(self) -> AppendStats: ...

    def rollback(self) -> None: ...


@runtime_checkable
class Storage(Queryable, Protocol):
    """A store: appenders for writers, queriers for readers."""

    def appender(self) -> Appender: ...

    def close(self) -> None: ...
