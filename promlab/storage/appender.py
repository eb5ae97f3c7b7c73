"""The appender of :class:`~promlab.storage.store.ParquetStore`: batches one commit's samples.

Split out of :mod:`promlab.storage.store`; the store hands each appender its commit function
(float batches and native histogram samples, checked and stored together), so this module does
not import the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage.histstore import HistogramBatch
from promlab.storage.interface import AppendStats

__all__ = ["Batch", "ParquetAppender"]

# One append_batch: (copy of the series list, id of the caller's list or None for a one-off
# list, index, ts, values, units or None, atomic).
Batch = tuple[list[Labels], int | None, npt.NDArray[np.int64], npt.NDArray[np.int64],
              npt.NDArray[np.float64], npt.NDArray[np.int64] | None, bool]


class ParquetAppender:
    """Batches appends for one commit (see :class:`~promlab.storage.interface.Appender`).

    ``reports_units``: :meth:`append_batch` takes ``units`` and ``atomic`` (the remote-write
    receiver's per-request refusals).
    """

    reports_units = True

    def __init__(self, commit: Callable[[list[Batch], HistogramBatch | None], AppendStats]) -> None:
        self._commit = commit
        self._batches: list[Batch] = []
        self._one_series: list[Labels] = []
        self._one_pos: dict[Labels, int] = {}
        self._one_idx: list[int] = []
        self._one_ts: list[int] = []
        self._one_v: list[float] = []
        self._hists = HistogramBatch()

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        pos = self._one_pos.get(labels)
        if pos is None:
            pos = self._one_pos[labels] = len(self._one_series)
            self._one_series.append(labels)
        self._one_idx.append(pos)
        self._one_ts.append(int(ts_ms))
        self._one_v.append(float(value))

    def append_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                     ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64], *,
                     units: npt.NDArray[np.integer] | None = None, atomic: bool = False) -> None:
        """Append ``len(index)`` samples; sample ``k`` belongs to ``series[index[k]]``.

        ``units`` (one int per sample, e.g. the remote-write request it came in) makes the
        commit report the samples refused against the committed state per unit
        (:attr:`AppendStats.refusals`); with ``atomic`` a unit with any such refusal stores
        nothing (Prometheus's remote write 1.0: the request is rolled back).
        """
        idx = np.asarray(index, np.int64)
        ts = np.asarray(ts_ms, np.int64)
        vals = np.asarray(values, np.float64)
        if not idx.shape == ts.shape == vals.shape or idx.ndim != 1:
            raise StorageError("append_batch: index, ts_ms and values must be 1-d of equal length")
        if units is not None and np.shape(units) != idx.shape:
            raise StorageError("append_batch: units must have one entry per sample")
        if idx.shape[0] and (int(idx.min()) < 0 or int(idx.max()) >= len(series)):
            raise StorageError("append_batch: index out of range of series")
        # A copy (the caller may change its list before commit); the id keys the store's ref cache.
        self._batches.append((list(series), id(series), idx, ts, vals,
                              None if units is None else np.asarray(units, np.int64), atomic))

    def append_histogram(self, labels: Labels, ts_ms: int, h: Histogram | FloatHistogram) -> None:
        self._hists.append(labels, ts_ms, h)

    def append_histogram_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                               ts_ms: npt.NDArray[np.int64],
                               hists: Sequence[Histogram | FloatHistogram], *,
                               units: npt.NDArray[np.integer] | None = None,
                               atomic: bool = False) -> None:
        """Append histogram samples; ``units`` and ``atomic`` as in :meth:`append_batch` (a unit
        is refused whole when any of its float or histogram samples is refused)."""
        self._hists.append_batch(series, index, ts_ms, hists, units=units, atomic=atomic)

    def commit(self) -> AppendStats:
        self._flush_singles()
        batches, self._batches = self._batches, []
        hists, self._hists = self._hists, HistogramBatch()
        return self._commit(batches, hists if hists.items else None)

    def _flush_singles(self) -> None:
        if self._one_idx:
            self._batches.append((self._one_series, None, np.array(self._one_idx, np.int64),
                                  np.array(self._one_ts, np.int64), np.array(self._one_v, np.float64),
                                  None, False))
        self._one_series, self._one_pos = [], {}
        self._one_idx, self._one_ts, self._one_v = [], [], []

    def rollback(self) -> None:
        self._batches = []
        self._hists = HistogramBatch()
        self._flush_singles()
        self._batches = []
