"""Appends checked as Prometheus's TSDB head checks them, for rule unit tests.

promtool writes rule output into a TSDB head without an out-of-order window: a sample older
than its series' latest is refused (``out of order sample``), one at the latest timestamp with
another value is refused (``duplicate sample for timestamp``) and one equal to the latest is
dropped quietly. A refused sample marks its rule unhealthy with that error, which the unit
test reports as ``rule: NAME, time: T, err: duplicate sample for timestamp`` (two alerting rules
of one name whose ``ALERTS_FOR_STATE`` values differ, say). Refused stale markers are not
errors (a series another rule still writes).

:class:`CheckedAppender` wraps a :class:`~promlab.storage.memory.MemoryStorage` appender and
keeps, per series, the latest sample that reached the store through it or :meth:`LastSamples.load`.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram
from promlab.model.value import is_stale
from promlab.storage.interface import AnyHistogram, AppendStats
from promlab.storage.memory import MemoryStorage

__all__ = ["CheckedAppender", "LastSamples", "RowAppender"]

OUT_OF_ORDER = "out of order sample"
DUPLICATE = "duplicate sample for timestamp"


#: What identifies a sample's value for the duplicate check: a float's bits, or the
#: histogram itself (equal histograms at one timestamp are the same sample, as the head's
#: ``Equals`` check; a float and a histogram never are).
ValueKey = int | FloatHistogram | AnyHistogram


def _bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def _key(v: float | AnyHistogram) -> ValueKey:
    return _bits(v) if isinstance(v, float) else v


def _same(a: ValueKey, b: ValueKey) -> bool:
    if isinstance(a, int) or isinstance(b, int):
        return isinstance(a, int) and isinstance(b, int) and a == b
    return bool(a.to_float() == b.to_float())


class LastSamples:
    """The latest ``(timestamp, value bits)`` of every series written to one store."""

    def __init__(self, store: MemoryStorage) -> None:
        self.store = store
        self.last: dict[Labels, tuple[int, ValueKey]] = {}

    def load(self, labels: Labels, ts: npt.NDArray[np.int64],
             vs: npt.NDArray[np.float64] | Sequence[FloatHistogram | float]) -> None:
        """Input samples (sorted, newer than anything loaded for the series before): floats,
        or floats and native histograms (with the hints the TSDB reports, see
        :func:`~promlab.rules.unittest.histograms.input_samples`)."""
        if not ts.shape[0]:
            return
        if isinstance(vs, np.ndarray):
            self.store.add_series(labels, ts, vs)
            bits: ValueKey = _bits(float(vs[-1]))
        else:
            self.store.add_histogram_series(labels, ts, vs)
            x = vs[-1]
            bits = _key(float(x) if isinstance(x, int | float) else x)
        self.last[labels] = (int(ts[-1]), bits)

    def appender(self) -> CheckedAppender:
        return CheckedAppender(self)


class RowAppender:
    """An appender's batch methods in terms of its :meth:`append` (a batch is its rows, one by
    one, in order)."""

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        raise NotImplementedError

    def append_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                     ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        for i, t, v in zip(np.asarray(index).tolist(), np.asarray(ts_ms).tolist(),
                           np.asarray(values).tolist(), strict=True):
            self.append(series[i], t, v)


class CheckedAppender(RowAppender):
    """An appender that refuses what the TSDB head refuses; :meth:`commit` writes the rest and
    then raises :class:`~promlab.errors.StorageError` with the last refusal, if any."""

    def __init__(self, owner: LastSamples) -> None:
        self._owner = owner
        self._batch: list[tuple[Labels, int, float | AnyHistogram]] = []

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        self._batch.append((labels, int(ts_ms), float(value)))

    def append_histogram(self, labels: Labels, ts_ms: int, h: AnyHistogram) -> None:
        self._batch.append((labels, int(ts_ms), h))

    def append_histogram_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                               ts_ms: npt.NDArray[np.int64], hists: Sequence[AnyHistogram]) -> None:
        for i, t, h in zip(np.asarray(index).tolist(), np.asarray(ts_ms).tolist(), hists, strict=True):
            self.append_histogram(series[i], t, h)

    def commit(self) -> AppendStats:
        batch, self._batch = self._batch, []
        last = self._owner.last
        # What passes is newer than anything of its series in the store (all of it came
        # through here or load()), which the store takes as it is: loaded per series.
        floats: dict[Labels, tuple[list[int], list[float]]] = {}
        hists: dict[Labels, tuple[list[int], list[AnyHistogram]]] = {}
        stats = AppendStats()
        problem = ""
        for labels, t, v in batch:
            bits = _key(v)
            prev = last.get(labels)
            if prev is not None and t <= prev[0]:
                if t == prev[0] and _same(bits, prev[1]):
                    continue  # the same sample again: dropped without an error
                if t < prev[0]:
                    stats.out_of_order += 1
                    err = OUT_OF_ORDER
                else:
                    stats.duplicates += 1
                    err = DUPLICATE
                if not (isinstance(v, float) and is_stale(v)):
                    problem = err
                continue
            if prev is None:
                stats.new_series += 1
            # (The store merges a series' floats and histograms by timestamp.)
            if isinstance(v, float):
                ts, vs = floats.setdefault(labels, ([], []))
                ts.append(t)
                vs.append(v)
            else:
                hts, hvs = hists.setdefault(labels, ([], []))
                hts.append(t)
                hvs.append(v)
            last[labels] = (t, bits)
            stats.appended += 1
        store = self._owner.store
        for labels, (ts, fvs) in floats.items():
            store.add_series(labels, np.asarray(ts, np.int64), np.asarray(fvs, np.float64))
        for labels, (ts, hvs) in hists.items():
            store.add_histogram_series(labels, np.asarray(ts, np.int64), hvs)
        if problem:
            raise StorageError(problem)
        return stats

    def rollback(self) -> None:
        self._batch = []
