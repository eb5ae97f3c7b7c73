"""Range functions over native-histogram samples: ``rate``/``increase``/``delta`` (extrapolated,
counter-reset aware, as Prometheus's ``histogramRate``).

Only the (series, step) windows that hold histogram samples are computed here, one Python
iteration per window; float windows stay on the vectorised kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.eval.calls import FunctionCall
from promlab.promql.eval.functions._common import warn
from promlab.promql.values import B, Matrix, Vector

__all__ = ["PairResets", "float_only", "hist_rate", "histogram_rate_vector", "series_with_histograms"]


def series_with_histograms(m: Matrix) -> B:
    """Per series: whether any of its samples is a histogram."""
    n = len(m.labels)
    if m.histograms is None:
        return np.zeros(n, bool)
    is_h = m.histogram_mask()
    counts = np.add.reduceat(is_h.astype(np.int64), m.offsets[:-1]) if is_h.size else np.zeros(n)
    counts = np.where(np.diff(m.offsets) > 0, counts, 0)
    return counts > 0


def float_only(m: Matrix) -> Matrix:
    """``m`` without its histogram samples (what float kernels see)."""
    if m.histograms is None:
        return m
    keep = ~m.histogram_mask()
    series_of = np.repeat(np.arange(len(m.labels)), np.diff(m.offsets))
    counts = np.bincount(series_of[keep], minlength=len(m.labels))
    offsets = np.zeros(len(m.labels) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Matrix(m.labels, offsets, m.ts_ms[keep], m.values[keep], m.window_start_ms,
                  m.window_end_ms, m.range_ms, m.drop_name, m.extension, m.lookback_ms, None)


def _mixed_schemas(call: FunctionCall, name: str) -> None:
    warn(call.ctx, "vector contains a mix of histograms with exponential and custom buckets "
         f'schemas for metric name "{name}"', call.node.args[0])


class PairResets:
    """Counter-reset checks between neighbouring samples of a matrix, each pair detected once.

    ``self(p)`` is ``histops.detect_reset(hists[p], hists[p - 1])`` (``p`` a global sample
    index), remembered: overlapping windows (a 5m range at a 1m step holds each pair 5 times)
    share the answer instead of walking the buckets again.
    """

    __slots__ = ("hists", "memo")

    def __init__(self, hists: npt.NDArray[np.object_]) -> None:
        self.hists = hists
        self.memo: dict[int, bool] = {}

    def __call__(self, p: int) -> bool:
        r = self.memo.get(p)
        if r is None:
            r = self.memo[p] = histops.detect_reset(self.hists[p], self.hists[p - 1])
        return r


def hist_rate(call: FunctionCall, name: str, hs: list[FloatHistogram], is_counter: bool,
              st_resets: Sequence[bool] | None = None, *,
              pair_reset: Callable[[int], bool] | None = None) -> FloatHistogram | None:
    """The (unextrapolated) increase or delta over ``hs`` (at least two), as Prometheus's
    ``histogramRate``; ``st_resets[k]``: a start timestamp marks a reset before ``hs[k]``;
    ``pair_reset(k)``, when given, answers ``histops.detect_reset(hs[k], hs[k - 1])`` (e.g. from
    a :class:`PairResets` shared by overlapping windows)."""
    def reset(k: int, prev: FloatHistogram) -> bool:
        if st_resets is not None and st_resets[k]:
            return True
        if pair_reset is not None and prev is hs[k - 1]:
            return pair_reset(k)
        return histops.detect_reset(hs[k], prev)

    pos = call.node.args[0]
    first, last = hs[0], hs[-1]
    if is_counter and CounterResetHint.GAUGE in (first.counter_reset_hint, last.counter_reset_hint):
        warn(call.ctx, f'this native histogram metric is not a counter: "{name}"', pos)
    if is_counter and reset(1, first):
        # A reset right after the first sample: only its count matters (for extrapolation), so
        # its layout is replaced by an empty histogram shaped like the second sample.
        first = FloatHistogram(schema=hs[1].schema, custom_values=hs[1].custom_values)
    custom = first.is_custom
    if last.is_custom != custom:
        _mixed_schemas(call, name)
        return None
    min_schema = min(first.schema, last.schema)
    for h in hs[1:-1] if is_counter else ():
        if h.counter_reset_hint == CounterResetHint.GAUGE:
            warn(call.ctx, f'this native histogram metric is not a counter: "{name}"', pos)
        min_schema = min(min_schema, h.schema)
        if h.is_custom != custom:
            _mixed_schemas(call, name)
            return None
    note = histops.Combine()
    res = histops.sub(last.reduce_resolution(min_schema) if not custom else last, first, note)
    if is_counter:
        prev = first
        for k in range(1, len(hs)):
            if reset(k, prev):
                res = histops.add(res, prev, note)
            prev = hs[k]
    elif first.counter_reset_hint != CounterResetHint.GAUGE or \
            last.counter_reset_hint != CounterResetHint.GAUGE:
        warn(call.ctx, f'this native histogram metric is not a gauge: "{name}"', pos)
    if note.reconciled:
        from promlab.promql.eval.functions._common import info

        info(call.ctx, "mismatched custom buckets were reconciled during subtraction", pos)
    return res.with_hint(CounterResetHint.GAUGE).compact()


def _shifted(pairs: PairResets, a: int) -> Callable[[int], bool]:
    return lambda k: pairs(a + k)


def _reset_counts(hists: npt.NDArray[np.object_], a0: int, b0: int,
                  pairs: PairResets) -> npt.NDArray[np.int64] | None:
    """For a series ``hists[a0:b0]`` of exponential counter histograms of one schema and zero
    threshold (else None): the running count of counter resets, so that a window ``[a, b)``
    holds none when ``counts[b - 1 - a0] == counts[a - a0]``."""
    first = hists[a0]
    if first is None or first.is_custom:
        return None
    schema, zt = first.schema, first.zero_threshold
    gauge = CounterResetHint.GAUGE
    for h in hists[a0:b0]:
        if h is None or h.schema != schema or h.zero_threshold != zt or \
                h.counter_reset_hint == gauge:
            return None
    resets = np.zeros(b0 - a0, np.int64)
    resets[1:] = [pairs(p) for p in range(a0 + 1, b0)]
    return np.cumsum(resets)


def histogram_rate_vector(call: FunctionCall, m: Matrix, rows: B, is_counter: bool,
                          is_rate: bool) -> Vector:
    """``rate``/``increase``/``delta`` of the series ``rows`` of ``m`` (those with histograms)."""
    assert m.histograms is not None
    lo, hi = m.window_bounds()
    t = lo.shape[1]
    idx = np.flatnonzero(rows)
    out_h = np.full((idx.size, t), None, object)
    present = np.zeros((idx.size, t), bool)
    range_s = m.range_ms / 1000.0
    pairs = PairResets(m.histograms) if is_counter else None
    for k, i in enumerate(idx.tolist()):
        name = m.labels[i].name
        a0 = int(m.offsets[i])
        # A counter series of one layout: windows without a reset are last - first, compacted.
        counts = None if pairs is None else \
            _reset_counts(m.histograms, a0, int(m.offsets[i + 1]), pairs)
        for j in range(t):
            a, b = int(lo[i, j]), int(hi[i, j])
            if b - a < 2:
                continue
            hs = list(m.histograms[a:b])
            res: FloatHistogram | None
            if counts is not None and counts[b - 1 - a0] == counts[a - a0]:
                res = histops.sub_compacted(hs[-1], hs[0])
            elif any(h is None for h in hs):
                warn(call.ctx, f'encountered a mix of histograms and floats for metric name "{name}"',
                     call.node.args[0])
                continue
            else:
                res = hist_rate(call, name, hs, is_counter,
                                pair_reset=None if pairs is None else _shifted(pairs, a))
            if res is None:
                continue
            t0, t1 = int(m.ts_ms[a]), int(m.ts_ms[b - 1])
            start, end = int(m.window_start_ms[j]), int(m.window_end_ms[j])
            sampled = (t1 - t0) / 1000.0
            to_start = (t0 - start) / 1000.0
            to_end = (end - t1) / 1000.0
            avg = sampled / (b - a - 1)
            if to_start >= avg * 1.1:
                to_start = avg / 2
            if is_counter and res.count > 0 and hs[0].count >= 0:
                to_zero = sampled * (hs[0].count / res.count)
                to_start = min(to_start, to_zero)
            if to_end >= avg * 1.1:
                to_end = avg / 2
            factor = (sampled + to_start + to_end) / sampled
            if is_rate:
                factor /= range_s
            if not math.isfinite(factor):
                continue
            out_h[k, j] = histops.mul(res, factor)
            present[k, j] = True
    labels = [m.labels[i] for i in idx.tolist()]
    return Vector(labels, np.zeros((idx.size, t)), present, np.ones(idx.size, bool), None, out_h)
