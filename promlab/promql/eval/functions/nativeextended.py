"""``rate``/``increase``/``delta`` over ``anchored`` and ``smoothed`` windows holding native
histograms (Prometheus 3's semantics for the ``promql-extended-range-selectors`` feature).

Per (series, step) the function sees the samples of the extended window: the lookback delta
before the window (and after it, ``smoothed``). A window mixing floats and histograms yields
nothing and a warning; a float-only window keeps the float kernel's answer. For histograms:

* the left edge is the last sample at or before the window start (the first sample when there
  is none); ``smoothed`` interpolates the edges at the exact window bounds between the samples
  around them (across a counter reset, from zero);
* the result is ``right - left`` without extrapolation, plus, for counters, every sample that
  was followed by a reset between the edges (a reset the left interpolation already spanned is
  not counted twice); ``rate`` divides by the range;
* exponential and custom-bucket histograms in one window give the mixed-schemas warning and no
  result; gauge hints give "not a counter" (rate/increase), non-gauge edges "not a gauge"
  (delta).

One Python iteration per histogram window; float series never come here.
"""

from __future__ import annotations

import numpy as np

from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.eval.calls import FunctionCall
from promlab.promql.eval.functions._common import info, warn
from promlab.promql.values import B, Matrix, Vector

__all__ = ["extended_histogram_rate"]

_H = CounterResetHint


class _Abort(Exception):
    """The window's histograms cannot be combined (exponential with custom buckets)."""


class _Window:
    """The state of one extended-window computation: its call, metric name and notes."""

    def __init__(self, call: FunctionCall, name: str, is_counter: bool) -> None:
        self.call = call
        self.name = name
        self.is_counter = is_counter
        self.note_sub = histops.Combine()
        self.note_add = histops.Combine()

    def warn(self, what: str) -> None:
        warn(self.call.ctx, f'{what}: "{self.name}"' if what.startswith("this") else
             f'{what} for metric name "{self.name}"', self.call.node.args[0])

    def mixed_schemas(self) -> None:
        self.warn("vector contains a mix of histograms with exponential and custom buckets schemas")

    def sub(self, a: FloatHistogram, b: FloatHistogram) -> FloatHistogram:
        try:
            out = histops.sub(a, b, self.note_sub)
        except histops.IncompatibleSchemas:
            raise _Abort() from None
        return out.with_hint(histops.adjust_hint(a.counter_reset_hint, b.counter_reset_hint)[0])

    def add(self, a: FloatHistogram, b: FloatHistogram) -> FloatHistogram:
        try:
            return histops.add(a, b, self.note_add).with_hint(
                histops.adjust_hint(a.counter_reset_hint, b.counter_reset_hint)[0])
        except histops.IncompatibleSchemas:
            raise _Abort() from None

    def interpolate(self, h1: FloatHistogram, t1: int, h2: FloatHistogram, t2: int,
                    t: int) -> FloatHistogram:
        """The histogram at ``t`` on the line from ``(t1, h1)`` to ``(t2, h2)``."""
        if t == t1:
            return h1
        if t == t2:
            return h2
        frac = (t - t1) / (t2 - t1)
        if self.is_counter and histops.detect_reset(h2, h1):
            return histops.mul(h2, frac)
        return self.add(histops.mul(self.sub(h2, h1), frac), h1)

    def annotate(self) -> None:
        pos = self.call.node.args[0]
        if self.note_sub.reconciled:
            info(self.call.ctx, "mismatched custom buckets were reconciled during subtraction", pos)
        if self.note_add.reconciled:
            info(self.call.ctx, "mismatched custom buckets were reconciled during addition", pos)


def _rate(w: _Window, ts: list[int], hs: list[FloatHistogram], start: int, end: int,
          smoothed: bool) -> FloatHistogram | None:
    last = len(hs) - 1
    first = max(0, sum(1 for t in ts[:last] if t <= start) - 1)
    if smoothed:
        last = next((k for k in range(last) if ts[k] >= end), last)
    if ts[last] <= start or (smoothed and ts[first] > end):
        return None
    custom = hs[first].is_custom
    for h in hs[first:last + 1]:
        if h.is_custom != custom:
            w.mixed_schemas()
            return None
        if w.is_counter and h.counter_reset_hint == _H.GAUGE:
            w.warn("this native histogram metric is not a counter")
    left = hs[first]
    if smoothed and ts[first] < start:
        left = w.interpolate(hs[first], ts[first], hs[first + 1], ts[first + 1], start)
    right = hs[last]
    if smoothed and last > 0 and ts[last] > end:
        right = w.interpolate(hs[last - 1], ts[last - 1], hs[last], ts[last], end)
    if not w.is_counter and (left.counter_reset_hint != _H.GAUGE or right.counter_reset_hint != _H.GAUGE):
        w.warn("this native histogram metric is not a gauge")
    res = w.sub(right, left)
    if w.is_counter:
        corr = _corrections(w, ts, hs, first, last, left, right, start, smoothed)
        if corr is not None:
            res = w.add(res, corr)
    return res


def _corrections(w: _Window, ts: list[int], hs: list[FloatHistogram], first: int, last: int,
                 left: FloatHistogram, right: FloatHistogram, start: int, smoothed: bool,
                 ) -> FloatHistogram | None:
    """The sum of the samples followed by a counter reset between the two edges."""
    k = first + 1
    prev = left
    if smoothed and ts[first] < start and histops.detect_reset(hs[first + 1], hs[first]):
        # The left interpolation spanned this reset already.
        prev = hs[first + 1]
        k += 1
    if k > last:
        return None
    corr: FloatHistogram | None = None
    for h in [*hs[k:last], right]:
        if histops.detect_reset(h, prev):
            corr = prev if corr is None else w.add(corr, prev)
        prev = h
    return corr


def extended_histogram_rate(call: FunctionCall, m: Matrix, rows: B, floats: Vector,
                            is_counter: bool, is_rate: bool) -> Vector:
    """The rows ``rows`` of ``m`` (series holding histograms) over its anchored or smoothed
    windows; ``floats`` is the float kernel's answer, kept for the float-only windows."""
    assert m.histograms is not None
    smoothed = m.extension == "smoothed"
    lb = m.lookback_ms
    starts = m.window_start_ms
    ends = m.window_end_ms
    t = starts.shape[0]
    idx = np.flatnonzero(rows)
    out_h = np.full((idx.size, t), None, object)
    values = np.zeros((idx.size, t))
    present = np.zeros((idx.size, t), bool)
    float_row = {ls: r for r, ls in enumerate(floats.labels)}
    range_s = m.range_ms / 1000.0
    for k, i in enumerate(idx.tolist()):
        s0, s1 = int(m.offsets[i]), int(m.offsets[i + 1])
        ts_i = m.ts_ms[s0:s1]
        lo = s0 + np.searchsorted(ts_i, starts - lb, side="right")
        hi = s0 + np.searchsorted(ts_i, ends + lb if smoothed else ends, side="right")
        w = _Window(call, m.labels[i].name or "", is_counter)
        fr = float_row.get(m.labels[i])
        for j in range(t):
            a, b = int(lo[j]), int(hi[j])
            if a >= b:
                continue
            hs = list(m.histograms[a:b])
            n_h = sum(h is not None for h in hs)
            if n_h == 0:
                if fr is not None and floats.present[fr, j]:
                    values[k, j], present[k, j] = floats.values[fr, j], True
                continue
            if n_h < len(hs):
                w.warn("encountered a mix of histograms and floats")
                continue
            try:
                res = _rate(w, m.ts_ms[a:b].tolist(), hs, int(starts[j]), int(ends[j]), smoothed)
            except _Abort:
                w.mixed_schemas()
                continue
            if res is None:
                continue
            if is_rate:
                res = histops.div(res, range_s)
            out_h[k, j] = res.with_hint(_H.GAUGE).compact()
            present[k, j] = True
        w.annotate()
    labels = [m.labels[i] for i in idx.tolist()]
    return Vector(labels, values, present, np.ones(idx.size, bool), None, out_h)
