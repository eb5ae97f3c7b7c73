"""Rate-like range-vector functions: ``rate``, ``increase``, ``delta``, ``irate``, ``idelta``,
``deriv``, ``predict_linear``, ``changes``, ``resets``, ``double_exponential_smoothing``.

All work on every (series, step) window at once from the CSR arrays and the ``(S, T)`` window
bounds; first/last samples come from fancy indexing at ``lo`` and ``hi - 1``, counter-reset
corrections from a windowed sum of the per-sample drops.
"""

from __future__ import annotations

import numpy as np

from promlab.errors import QueryError
from promlab.model import METRIC_NAME, MatchType
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import (
    WindowSet,
    info,
    kahan_inc,
    pair_flags,
    reset_correction,
    scalar_arg,
    take_clipped,
    vector_out,
)
from promlab.promql.eval.functions._fast import nonfinite_counts, window_regression
from promlab.promql.eval.functions.extended import extended_bounds, extended_rate_values
from promlab.promql.eval.functions.native import concat_vectors, drop_rows
from promlab.promql.eval.functions.nativeextended import extended_histogram_rate
from promlab.promql.eval.functions.nativerange import (
    float_only,
    histogram_rate_vector,
    series_with_histograms,
)
from promlab.promql.eval.functions.starttime import st_instant, st_rate, st_resets
from promlab.promql.labelmemo import metric_names
from promlab.promql.parser.ast import Expr, MatrixSelector, ParenExpr
from promlab.promql.values import F64, I64, B, Matrix, Vector

__all__ = ["function", "matrix_arg", "series_start_mask"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()

_COUNTER_SUFFIXES = ("_total", "_sum", "_count", "_bucket")


def matrix_arg(call: FunctionCall, i: int = 0) -> Matrix:
    m = call.args[i]
    if not isinstance(m, Matrix):
        raise QueryError(f"expected range vector argument at position {i}")
    return m


def series_start_mask(m: Matrix) -> B:
    """True at the first sample of every series (it has no predecessor)."""
    start = np.zeros(m.values.size, bool)
    offs = m.offsets[:-1][np.diff(m.offsets) > 0]
    start[offs] = True
    return start


def _extrapolated(call: FunctionCall, is_counter: bool, is_rate: bool) -> Vector:
    m = matrix_arg(call)
    if m.start_ts_ms is not None and m.extension is None:
        return st_rate(call, m, is_counter, is_rate)
    if m.histograms is not None:
        rows = series_with_histograms(m)
        floats = _extrapolated_floats(call, float_only(m), is_counter, is_rate)
        if m.extension is not None:
            hist = extended_histogram_rate(call, m, rows, floats, is_counter, is_rate)
        else:
            hist = histogram_rate_vector(call, m, rows, is_counter, is_rate)
        return concat_vectors(drop_rows(floats, {m.labels[i] for i in np.flatnonzero(rows)}), hist)
    return _extrapolated_floats(call, m, is_counter, is_rate)


def _extrapolated_floats(call: FunctionCall, m: Matrix, is_counter: bool, is_rate: bool) -> Vector:
    if m.extension is not None:
        res, present = extended_rate_values(call, m, is_counter, is_rate)
        return vector_out(list(m.labels), res, present, True)
    lo, hi, t0, t1 = m.window_bounds_times()
    n = hi - lo
    ok = n >= 2
    v0, v1 = take_clipped(m.values, lo), take_clipped(m.values, hi - 1)
    with np.errstate(all="ignore"):
        result = v1 - v0
        if is_counter:
            # Drops added to last - first one by one, in sample order, as Prometheus does.
            corr = reset_correction(m, lo, hi, result)
            if corr is not None:
                result = corr
        to_start = t0 - m.window_start_ms[None, :]
        to_start = np.divide(to_start, 1000.0)
        to_end = m.window_end_ms[None, :] - t1
        to_end = np.divide(to_end, 1000.0)
        sampled = np.divide(t1 - t0, 1000.0)
        n -= 1
        np.maximum(n, 1, out=n)
        avg = sampled / n
        threshold = avg * 1.1
        avg /= 2  # now half the average interval
        np.copyto(to_start, avg, where=to_start >= threshold)
        if is_counter:
            to_zero = v0 / result
            to_zero *= sampled
            use = (result > 0) & (v0 >= 0) & (to_zero < to_start)
            np.copyto(to_start, to_zero, where=use)
        np.copyto(to_end, avg, where=to_end >= threshold)
        factor = sampled + to_start
        factor += to_end
        factor /= sampled
        if is_rate:
            factor /= m.range_ms / 1000.0
        result *= factor
    if is_counter:
        _counter_info(call, m, ok)
    return vector_out(list(m.labels), result, ok, True)


def _counter_info(call: FunctionCall, m: Matrix, present: B) -> None:
    if not present.size:
        return
    keep = present.any(axis=1)
    pinned = _pinned_name(call.node.args[0])
    if pinned is not None:
        # Every series of the selection has this name: no pass over their label sets.
        if pinned and not pinned.endswith(_COUNTER_SUFFIXES) and bool(keep.any()):
            info(call.ctx, "metric might not be a counter, name does not end in "
                 f'_total/_sum/_count/_bucket: "{pinned}"', call.node.args[0])
        return
    names = metric_names(m.labels)
    # Names in order of first appearance among the series with a result.
    seen = dict.fromkeys(names if keep.all() else [names[i] for i in np.flatnonzero(keep)])
    for name in seen:
        if name and not name.endswith(_COUNTER_SUFFIXES):
            info(call.ctx, "metric might not be a counter, name does not end in "
                 f'_total/_sum/_count/_bucket: "{name}"', call.node.args[0])


def _pinned_name(node: Expr) -> str | None:
    """The metric name a range selector's matchers pin (``__name__="x"``, the selector's
    usual form), or None (a regex on the name, a subquery, ...)."""
    while isinstance(node, ParenExpr):
        node = node.expr
    if not isinstance(node, MatrixSelector):
        return None
    for mt in node.vector_selector.matchers:
        if mt.name == METRIC_NAME and mt.type is MatchType.EQUAL and mt.value:
            return str(mt.value)
    return None


@function("rate")
def func_rate(call: FunctionCall) -> Vector:
    """``rate(v range-vector)``: per-second increase, extrapolated, counter-reset aware."""
    return _extrapolated(call, is_counter=True, is_rate=True)


@function("increase")
def func_increase(call: FunctionCall) -> Vector:
    """``increase(v range-vector)``: increase over the range, extrapolated."""
    return _extrapolated(call, is_counter=True, is_rate=False)


@function("delta")
def func_delta(call: FunctionCall) -> Vector:
    """``delta(v range-vector)``: difference of first and last sample, extrapolated."""
    return _extrapolated(call, is_counter=False, is_rate=False)


def _instant(call: FunctionCall, is_rate: bool) -> Vector:
    m = matrix_arg(call)
    if m.start_ts_ms is not None:
        return st_instant(call, m, is_rate)
    lo, hi = m.window_bounds()
    n = hi - lo
    v0, v1 = take_clipped(m.values, hi - 2), take_clipped(m.values, hi - 1)
    dt = take_clipped(m.ts_ms, hi - 1) - take_clipped(m.ts_ms, hi - 2)
    ok = (n >= 2) & (dt != 0)
    with np.errstate(all="ignore"):
        if is_rate:
            res = np.where(v1 < v0, v1, v1 - v0) / (dt / 1000.0)
        else:
            res = v1 - v0
    return vector_out(list(m.labels), res, ok, True)


@function("irate")
def func_irate(call: FunctionCall) -> Vector:
    """``irate(v range-vector)``: per-second rate from the last two samples."""
    return _instant(call, is_rate=True)


@function("idelta")
def func_idelta(call: FunctionCall) -> Vector:
    """``idelta(v range-vector)``: difference of the last two samples."""
    return _instant(call, is_rate=False)


def _linear_regression(m: Matrix, ws: WindowSet, intercept_ms: I64) -> tuple[F64, F64]:
    """Least-squares slope and intercept (at ``intercept_ms`` per window) with Kahan sums."""
    w = ws.flat.size
    sx, cx, sy, cy, sxy, cxy, sx2, cx2 = (np.zeros(w) for _ in range(8))
    init_y = m.values[ws.lo] if m.values.size else np.zeros(w)
    const_y = np.ones(w, bool)
    ref = np.broadcast_to(intercept_ms, (w,))
    with np.errstate(all="ignore"):
        for k, idx, cnt in ws.positions():
            y = m.values[idx]
            x = (m.ts_ms[idx] - ref[:cnt]) / 1e3
            if k > 0:
                const_y[:cnt] &= y == init_y[:cnt]
            sx[:cnt], cx[:cnt] = kahan_inc(x, sx[:cnt], cx[:cnt])
            sy[:cnt], cy[:cnt] = kahan_inc(y, sy[:cnt], cy[:cnt])
            sxy[:cnt], cxy[:cnt] = kahan_inc(x * y, sxy[:cnt], cxy[:cnt])
            sx2[:cnt], cx2[:cnt] = kahan_inc(x * x, sx2[:cnt], cx2[:cnt])
        nf = ws.n.astype(np.float64)
        sx, sy, sxy, sx2 = sx + cx, sy + cy, sxy + cxy, sx2 + cx2
        cov = sxy - sx * sy / nf
        var = sx2 - sx * sx / nf
        slope = cov / var
        intercept = sy / nf - slope * sx / nf
        inf_y = np.isinf(init_y)
        slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
        intercept = np.where(const_y, np.where(inf_y, np.nan, init_y), intercept)
    return slope, intercept


def _regression(m: Matrix, lo: I64, hi: I64, ref_ms: I64 | None) -> tuple[F64, F64, B]:
    """Slope and intercept of every window with at least 2 samples: the fast block kernel
    where every sample is finite, the reference kernel for the rest."""
    mask = (hi - lo) >= 2
    bad = nonfinite_counts(m.values, lo, hi)
    fast = mask if bad is None else mask & (bad == 0)
    slope, icpt, ok = window_regression(m.values, m.ts_ms, m.offsets, lo, hi, fast, ref_ms)
    need = mask & ~ok
    if need.any():
        ws = WindowSet(m, lo, np.where(need, hi, lo), min_count=2)
        if ref_ms is None:
            ref = m.ts_ms[ws.lo]
        else:
            ref = np.broadcast_to(ref_ms[None, :], lo.shape).ravel()[ws.flat]
        s_ws, i_ws = _linear_regression(m, ws, ref)
        order = np.argsort(ws.flat)
        slope[ws.mask] = s_ws[order]
        icpt[ws.mask] = i_ws[order]
    return slope, icpt, mask


@function("deriv")
def func_deriv(call: FunctionCall) -> Vector:
    """``deriv(v range-vector)``: per-second slope by simple linear regression."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    slope, _, mask = _regression(m, lo, hi, None)
    return vector_out(list(m.labels), slope, mask, True)


@function("predict_linear")
def func_predict_linear(call: FunctionCall) -> Vector:
    """``predict_linear(v range-vector, t scalar)``: value predicted ``t`` seconds after the
    evaluation time (regression intercept taken at the evaluation time)."""
    m = matrix_arg(call)
    dur = scalar_arg(call.args, 1, call.ctx.num_steps)
    lo, hi = m.window_bounds()
    slope, icpt, mask = _regression(m, lo, hi, np.asarray(call.ctx.steps_ms, np.int64))
    with np.errstate(all="ignore"):
        out = slope * dur[None, :] + icpt
    return vector_out(list(m.labels), out, mask, True)


def _pair_count(call: FunctionCall, flags_fn) -> Vector:  # type: ignore[no-untyped-def]
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    n = hi - lo
    if m.extension == "anchored":  # the pairs start at the anchor sample before the window
        lo = extended_bounds(m).first
    if m.values.size > 1:
        v = m.values
        with np.errstate(invalid="ignore"):
            flags = pair_flags(m, flags_fn(v[1:], v[:-1]))
        # csum[k] = flagged pairs (j-1, j) with j < k; window pairs have lo < j < hi.
        csum = np.zeros(v.size + 1, np.int32 if v.size < 2**31 else np.int64)
        np.cumsum(flags, dtype=csum.dtype, out=csum[2:])
        cnt = np.take(csum, hi) - np.take(csum, np.minimum(lo + 1, hi))
    else:
        cnt = np.zeros(lo.shape, np.int64)
    return vector_out(list(m.labels), cnt.astype(np.float64), n >= 1, True)


@function("changes")
def func_changes(call: FunctionCall) -> Vector:
    """``changes(v range-vector)``: how often the value changed (NaN to NaN is no change)."""
    return _pair_count(call, lambda cur, prev: (cur != prev) & ~(np.isnan(cur) & np.isnan(prev)))


@function("resets")
def func_resets(call: FunctionCall) -> Vector:
    """``resets(v range-vector)``: number of counter resets (value decreases)."""
    m = matrix_arg(call)
    if m.start_ts_ms is not None and m.extension is None:
        return st_resets(m)
    return _pair_count(call, lambda cur, prev: cur < prev)


@function("double_exponential_smoothing")
def func_double_exponential_smoothing(call: FunctionCall) -> Vector:
    """``double_exponential_smoothing(v range-vector, sf scalar, tf scalar)`` (Holt linear)."""
    m = matrix_arg(call)
    t = call.ctx.num_steps
    sf_t, tf_t = scalar_arg(call.args, 1, t), scalar_arg(call.args, 2, t)
    lo, hi = m.window_bounds()
    _check_smoothing_factors(sf_t, tf_t, hi > lo)
    ws = WindowSet(m, lo, hi, min_count=2)
    if ws.flat.size == 0:
        return Vector.empty(t)
    sf = np.broadcast_to(sf_t[None, :], lo.shape).ravel()[ws.flat]
    tf = np.broadcast_to(tf_t[None, :], lo.shape).ravel()[ws.flat]
    vals = m.values
    s1 = vals[ws.lo].copy()
    s0 = np.zeros_like(s1)
    with np.errstate(all="ignore"):  # ±Inf samples make NaN as in Go, silently
        b = vals[ws.lo + 1] - vals[ws.lo]
        for k, idx, cnt in ws.positions(start=1):
            x = sf[:cnt] * vals[idx]
            if k > 1:
                b[:cnt] = tf[:cnt] * (s1[:cnt] - s0[:cnt]) + (1 - tf[:cnt]) * b[:cnt]
            y = (1 - sf[:cnt]) * (s1[:cnt] + b[:cnt])
            s0[:cnt] = s1[:cnt]
            s1[:cnt] = x + y
    return vector_out(list(m.labels), ws.scatter(s1), ws.mask, True)


def _go_f(x: float) -> str:
    """Go's ``%f`` of a float64 (``+Inf``/``-Inf``/``NaN`` spelled Go's way)."""
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:f}"


def _check_smoothing_factors(sf: F64, tf: F64, called: B) -> None:
    """Fail as Prometheus's double_exponential_smoothing does: it checks its factors in every
    call, and it is called for each window holding a sample (series by series, each step in
    turn) — so a window without samples checks nothing, one sample is enough, and a NaN
    factor passes (``sf <= 0 || sf >= 1`` is false)."""
    bad_sf = (sf <= 0) | (sf >= 1)
    bad = called & (bad_sf | (tf <= 0) | (tf >= 1))[None, :]
    if not bad.any():
        return
    j = int(np.flatnonzero(bad.ravel())[0]) % bad.shape[1]
    if bad_sf[j]:
        raise QueryError(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {_go_f(sf[j])}")
    raise QueryError(f"invalid trend factor. Expected: 0 < tf < 1, got: {_go_f(tf[j])}")
