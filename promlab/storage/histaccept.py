"""Which native histogram samples the head takes: :mod:`.accept`'s rules for histograms.

Prometheus checks a histogram sample as it checks a float one (``tsdb/head_append.go``:
``appendableHistogram``, ``appendableFloatHistogram``): against the series' latest in-order
sample — float or histogram, one timestamp for both kinds — and the head's bounds. At that
timestamp only an equal histogram of the same kind (integer or float; Prometheus's ``Equals``,
the sum compared bitwise) is taken (nothing stored twice); anything else is a duplicate. The
refusal texts are Prometheus's; a histogram duplicate's has no values
(``ErrDuplicateSampleForTimestamp``).

To reuse :func:`.accept.classify` (batch order, out-of-order window, out-of-order clashes),
each distinct histogram of a check gets an integer id that stands in the value column: equal
histograms share an id, so "the same value" means an equal histogram.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage.accept import NO_TS, classify

__all__ = ["HistogramCheck", "histogram_key"]

AnyHist = Histogram | FloatHistogram
Item = tuple[Labels, int, AnyHist]


def _fbits(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def _num(x: float) -> Hashable:
    # NaN counts compare equal to NaN (as the model's ``equals``), other numbers by value.
    return "nan" if isinstance(x, float) and math.isnan(x) else x


def histogram_key(h: AnyHist) -> tuple[Hashable, ...]:
    """A hashable key equal for two histograms exactly when Prometheus's ``Equals`` holds and
    they are of the same kind (integer / float): schema, zero bucket, count, the sum's bit
    pattern, custom bounds and the listed buckets (span layouts that list the same indexes
    are equal)."""
    f = h.to_float()
    return (isinstance(h, FloatHistogram), f.schema, f.zero_threshold, _num(f.zero_count),
            _num(f.count), _fbits(f.sum), f.custom_values,
            tuple((i, _num(c)) for i, c in f.buckets(True)),
            tuple((i, _num(c)) for i, c in f.buckets(False)))


class HistogramCheck:
    """The verdicts of one commit's histogram samples.

    Parameters
    ----------
    items
        The samples ``(labels, ts_ms, histogram)`` in append order.
    latest
        ``latest(labels)``: the series' newest histogram sample ``(ts, histogram)`` or None.
    float_latest
        ``float_latest(series)``: per series, the time of its latest float sample (NO_TS:
        none); it counts as the series' latest when newer.
    holds
        ``holds(labels, ts)``: the head already has a histogram sample there (for the
        out-of-order clash rule).
    """

    def __init__(self, items: Sequence[Item], *,
                 latest: Callable[[Labels], tuple[int, AnyHist] | None],
                 float_latest: Callable[[list[Labels]], npt.NDArray[np.int64]],
                 holds: Callable[[Labels, int], bool]) -> None:
        self.items = items
        self.series: list[Labels] = []
        pos: dict[Labels, int] = {}
        refs = []
        for ls, _, _ in items:
            r = pos.get(ls)
            if r is None:
                r = pos[ls] = len(self.series)
                self.series.append(ls)
            refs.append(r)
        self.refs = np.array(refs, np.int64)
        self.ts = np.array([t for _, t, _ in items], np.int64)
        ids: dict[tuple[Hashable, ...], int] = {}

        def ident(h: AnyHist) -> int:
            return ids.setdefault(histogram_key(h), len(ids))

        n = len(self.series)
        self.latest = np.full(n, NO_TS, np.int64)
        last_ids = np.zeros(n, np.int64)
        for r, ls in enumerate(self.series):
            top = latest(ls)
            if top is not None:
                self.latest[r], last_ids[r] = top[0], ident(top[1])
        self.vals = np.array([ident(h) for _, _, h in items], np.int64).view(np.float64)
        self.last_vals = last_ids.view(np.float64)
        fl = float_latest(self.series)
        self.foreign = fl[self.refs] if bool((fl != NO_TS).any()) else None
        self._holds = holds

    def _exists(self, refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return np.array([self._holds(self.series[r], t) for r, t in zip(refs.tolist(), ts.tolist(), strict=True)], bool)

    def classify(self, *, head_maxt: int, min_valid: int, ooo_ms: int | None,
                 batch: bool = True, keep: npt.NDArray[np.bool_] | None = None
                 ) -> npt.NDArray[np.int8]:
        """The verdict of each sample (of those in ``keep``, when given: the others are left
        out of the check and get no verdict row)."""
        sel = slice(None) if keep is None else keep
        foreign = None if self.foreign is None else self.foreign[sel]
        return classify(self.refs[sel], self.ts[sel], self.vals[sel], self.latest,
                        self.last_vals, head_maxt=head_maxt, min_valid=min_valid, ooo_ms=ooo_ms,
                        batch=batch, exists=self._exists if batch else None,
                        foreign_latest=foreign)
