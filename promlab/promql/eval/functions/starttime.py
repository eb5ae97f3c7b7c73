"""``rate``/``increase``/``delta``, ``irate``/``idelta`` and ``resets`` with start timestamps
(the experimental ``use-start-timestamps`` feature), as Prometheus 3 uses them.

A range selector's samples carry start timestamps (0 = unknown) only with the feature on and
only straight from storage (a subquery cuts them). They mark counter resets beside value drops:
a sample whose start timestamp lies after the previous sample, or exactly at it while the
previous one had a known start of its own (a delta sample), follows a reset. ``rate`` and
``increase`` also assume a zero sample at the first sample's start timestamp when it lies inside
the window instead of extrapolating to the left (one sample is then enough), and warn when a
start timestamp overlaps the previous sample.

Only matrices with start timestamps come here, one Python iteration per window (floats and
histograms alike); the vectorised kernels serve everything else.
"""

from __future__ import annotations

import numpy as np

from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.eval.calls import FunctionCall
from promlab.promql.eval.functions._common import warn
from promlab.promql.eval.functions.nativerange import hist_rate
from promlab.promql.values import Matrix, Vector

__all__ = ["st_instant", "st_overlap", "st_rate", "st_reset", "st_resets"]


def st_reset(prev_st: int, prev_t: int, cur_st: int, cur_t: int) -> bool:
    """Whether the current sample's start timestamp marks a counter reset since the previous."""
    if cur_st == 0 or cur_st >= cur_t or cur_st < prev_t:
        return False
    if cur_st > prev_t:
        return True
    # The start points at the previous sample: a delta sample unless the previous start is
    # unknown (a cumulative series of unknown start) or invalid.
    return prev_st != 0 and prev_st != prev_t and prev_st <= prev_t


def st_overlap(prev_st: int, prev_t: int, cur_st: int) -> bool:
    """Whether the current start timestamp overlaps the previous sample (bad data)."""
    return cur_st != 0 and cur_st < prev_t and cur_st != prev_st


def _window(m: Matrix, i: int, j: int, lo: np.ndarray, hi: np.ndarray,
            ) -> tuple[list[int], list[float], list[FloatHistogram | None], list[int]]:
    a, b = int(lo[i, j]), int(hi[i, j])
    assert m.start_ts_ms is not None
    hs = [None] * (b - a) if m.histograms is None else list(m.histograms[a:b])
    return m.ts_ms[a:b].tolist(), m.values[a:b].tolist(), hs, m.start_ts_ms[a:b].tolist()


def _out(m: Matrix, values: np.ndarray, present: np.ndarray, hists: np.ndarray) -> Vector:
    keep = np.flatnonzero(present.any(axis=1))
    has_h = any(h is not None for h in hists.flat)
    return Vector([m.labels[i] for i in keep.tolist()], np.where(present, values, 0.0)[keep],
                  present[keep], np.ones(keep.size, bool), None, hists[keep] if has_h else None)


def st_rate(call: FunctionCall, m: Matrix, is_counter: bool, is_rate: bool) -> Vector:
    """``rate``/``increase``/``delta`` over a matrix with start timestamps."""
    lo, hi = m.window_bounds()
    s, t = lo.shape
    values = np.zeros((s, t))
    present = np.zeros((s, t), bool)
    hists = np.full((s, t), None, object)
    pos = call.node.args[0]
    for i in range(s):
        name = m.labels[i].name or ""
        for j in range(t):
            ts, fs, hs, sts = _window(m, i, j, lo, hi)
            n_h = sum(h is not None for h in hs)
            if not ts:
                continue
            if 0 < n_h < len(hs):
                warn(call.ctx, f'encountered a mix of histograms and floats for metric name "{name}"',
                     pos)
                continue
            if is_counter and any(st_overlap(sts[k - 1], ts[k - 1], sts[k])
                                  for k in range(1, len(ts))):
                warn(call.ctx, "sample has start time that overlaps with previous sample timestamp "
                     f'for metric "{name}"', pos)
            resets = [False] + [st_reset(sts[k - 1], ts[k - 1], sts[k], ts[k])
                                for k in range(1, len(ts))]
            res_h: FloatHistogram | None = None
            res_f = 0.0
            if n_h:
                hl = [h for h in hs if h is not None]
                if len(hl) > 1:
                    res_h = hist_rate(call, name, hl, is_counter, resets)
                    if res_h is None:
                        continue
            else:
                res_f = fs[-1] - fs[0]
                if is_counter:
                    res_f += sum(fs[k - 1] for k in range(1, len(fs)) if fs[k] < fs[k - 1] or resets[k])
            out = _extrapolate(m, j, ts, fs, hl if n_h else None, sts, res_f, res_h, is_counter,
                               is_rate)
            if out is None:
                continue
            if isinstance(out, FloatHistogram):
                hists[i, j] = out
            else:
                values[i, j] = out
            present[i, j] = True
    return _out(m, values, present, hists)


def _extrapolate(m: Matrix, j: int, ts: list[int], fs: list[float],
                 hs: list[FloatHistogram] | None, sts: list[int], res_f: float,
                 res_h: FloatHistogram | None, is_counter: bool, is_rate: bool,
                 ) -> float | FloatHistogram | None:
    start, end = int(m.window_start_ms[j]), int(m.window_end_ms[j])
    first_t, last_t = ts[0], ts[-1]
    n1 = len(ts) - 1
    to_start = (first_t - start) / 1000.0
    to_end = (end - last_t) / 1000.0
    sampled = (last_t - first_t) / 1000.0
    avg = sampled / n1 if n1 > 0 else 0.0
    threshold = avg * 1.1
    st0 = sts[0]
    if is_counter and st0 != 0 and start < st0 < first_t:
        # A zero sample at the first sample's start replaces the left extrapolation.
        to_start = 0.0
        sampled = (last_t - st0) / 1000.0
        if hs is None:
            res_f += fs[0]
        elif res_h is None:
            res_h = hs[0]
        else:
            res_h = histops.add(res_h, hs[0])
    elif n1 == 0:
        return None
    else:
        if to_start >= threshold:
            to_start = avg / 2
        if is_counter:
            to_zero = to_start
            if hs is None and res_f > 0 and fs[0] >= 0:
                to_zero = sampled * (fs[0] / res_f)
            elif hs is not None and res_h is not None and res_h.count > 0 and hs[0].count >= 0:
                to_zero = sampled * (hs[0].count / res_h.count)
            to_start = min(to_start, to_zero)
    if to_end >= threshold:
        to_end = avg / 2
    factor = (sampled + to_start + to_end) / sampled if sampled != 0 else 1.0
    if is_rate:
        factor /= m.range_ms / 1000.0
    if res_h is None:
        return res_f * factor
    return histops.mul(res_h, factor).with_hint(CounterResetHint.GAUGE).compact()


def st_instant(call: FunctionCall, m: Matrix, is_rate: bool) -> Vector:
    """``irate``/``idelta`` over a matrix with start timestamps (the last two samples)."""
    lo, hi = m.window_bounds()
    s, t = lo.shape
    values = np.zeros((s, t))
    present = np.zeros((s, t), bool)
    hists = np.full((s, t), None, object)
    pos = call.node.args[0]
    for i in range(s):
        name = m.labels[i].name or ""
        for j in range(t):
            ts, fs, hs, sts = _window(m, i, j, lo, hi)
            if len(ts) < 2:
                continue
            dt = ts[-1] - ts[-2]
            if dt == 0:
                continue
            reset = st_reset(sts[-2], ts[-2], sts[-1], ts[-1])
            h0, h1 = hs[-2], hs[-1]
            if h0 is None and h1 is None:
                f0, f1 = fs[-2], fs[-1]
                v = f1 if is_rate and (f1 < f0 or reset) else f1 - f0
                values[i, j] = v / (dt / 1000.0) if is_rate else v
            elif h0 is not None and h1 is not None:
                if is_rate and CounterResetHint.GAUGE in (h0.counter_reset_hint, h1.counter_reset_hint):
                    warn(call.ctx, f'this native histogram metric is not a counter: "{name}"', pos)
                if not is_rate and not h0.counter_reset_hint == h1.counter_reset_hint == CounterResetHint.GAUGE:
                    warn(call.ctx, f'this native histogram metric is not a gauge: "{name}"', pos)
                h = h1
                if not is_rate or not (reset or histops.detect_reset(h1, h0)):
                    try:
                        h = histops.sub(h1, h0)
                    except histops.IncompatibleSchemas:
                        warn(call.ctx, "vector contains a mix of histograms with exponential and "
                             f'custom buckets schemas for metric name "{name}"', pos)
                        continue
                if is_rate:
                    h = histops.div(h, dt / 1000.0)
                hists[i, j] = h.with_hint(CounterResetHint.GAUGE).compact()
            else:
                warn(call.ctx, f'encountered a mix of histograms and floats for metric name "{name}"',
                     pos)
                continue
            present[i, j] = True
    return _out(m, values, present, hists)


def st_resets(m: Matrix) -> Vector:
    """``resets`` over a matrix with start timestamps (a switch between a float and a histogram
    counts as a reset)."""
    lo, hi = m.window_bounds()
    s, t = lo.shape
    values = np.zeros((s, t))
    present = np.zeros((s, t), bool)
    for i in range(s):
        for j in range(t):
            ts, fs, hs, sts = _window(m, i, j, lo, hi)
            if not ts:
                continue
            n = 0
            for k in range(1, len(ts)):
                p, c = hs[k - 1], hs[k]
                if p is None and c is None:
                    n += fs[k] < fs[k - 1] or st_reset(sts[k - 1], ts[k - 1], sts[k], ts[k])
                elif p is None or c is None:
                    n += 1
                else:
                    n += st_reset(sts[k - 1], ts[k - 1], sts[k], ts[k]) or histops.detect_reset(c, p)
            values[i, j] = n
            present[i, j] = True
    return _out(m, values, present, np.full((s, t), None, object))
