"""``<aggregation>_over_time`` functions and friends over range vectors.

Order-independent reductions use windowed ``reduceat``/fancy indexing; Kahan sums, means and
variances follow Prometheus's exact numerics with a loop over the position inside the window
(vectorised across all windows); quantiles sort dense blocks of windows.
"""

from __future__ import annotations

import math

import numpy as np

from promlab.model.arrays import unique
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import (
    WindowSet,
    format_go_g,
    kahan_inc,
    reduce_windows,
    scalar_arg,
    take_clipped,
    vector_out,
    warn,
    window_gather,
)
from promlab.promql.eval.functions._fast import (
    block,
    count_groups,
    nonfinite_counts,
    window_sums,
    window_variance,
)
from promlab.promql.eval.functions.misc import absent_vector
from promlab.promql.eval.functions.rangefuncs import matrix_arg
from promlab.promql.eval.gosort import ReplayBudget, go_sort
from promlab.promql.values import F64, I64, B, Matrix, Vector

__all__ = ["function", "quantile_of_sorted", "window_sum"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()


def _out(m: Matrix, values: F64, present: B, *, keep_name: bool = False) -> Vector:
    dn = m.drop_name if keep_name else True
    if keep_name and dn is None:
        dn = False
    return vector_out(list(m.labels), values, present, dn)


def _exact_int_sum_ok(m: Matrix, max_n: int) -> bool:
    v = m.values
    if v.size == 0:
        return True
    if not np.isfinite(v).all():
        return False
    amax = float(np.abs(v).max())
    return amax * max(max_n, 1) < 2.0**52 and bool((v == np.trunc(v)).all())


def window_sum(m: Matrix, ws: WindowSet) -> F64:
    """Kahan (Neumaier) sum of every window, as Prometheus's ``sum_over_time``."""
    if _exact_int_sum_ok(m, ws.max_n):
        lo = ws.lo
        return reduce_windows(np.add, m.values, lo, lo + ws.n)
    s = np.zeros(ws.flat.size)
    c = np.zeros(ws.flat.size)
    with np.errstate(all="ignore"):
        for _k, idx, cnt in ws.positions():
            s[:cnt], c[:cnt] = kahan_inc(m.values[idx], s[:cnt], c[:cnt])
        return np.where(np.isinf(s), s, s + c)


def _restrict(m: Matrix, lo: I64, hi: I64, need: B, min_count: int = 1) -> WindowSet:
    """The WindowSet of only the windows in ``need`` (for the exact fallback kernels)."""
    return WindowSet(m, lo, np.where(need, hi, lo), min_count)


def _fast_sums(m: Matrix, lo: I64, hi: I64) -> tuple[F64, B, WindowSet | None]:
    """Window sums from exact-split prefix sums, the present mask, and the WindowSet of the
    windows that need the compensated kernel (``None`` if none)."""
    present = hi > lo
    sums, exact = window_sums(m.values, lo, hi)
    need = present & ~exact
    return sums, present, (_restrict(m, lo, hi, need) if need.any() else None)


@function("sum_over_time")
def func_sum_over_time(call: FunctionCall) -> Vector:
    """``sum_over_time(v range-vector)``: Kahan-accurate sums (prefix sums where provably
    accurate, the compensated kernel elsewhere)."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    sums, present, ws = _fast_sums(m, lo, hi)
    if ws is not None:
        sums[ws.mask] = window_sum(m, ws)[np.argsort(ws.flat)]
    return _out(m, sums, present)


def _avg_kahan(m: Matrix, ws: WindowSet) -> F64:
    """Prometheus's ``avg_over_time`` numerics: Kahan sum / count, switching to an incremental
    mean where the sum would overflow."""
    w = ws.flat.size
    s = m.values[ws.lo].copy() if w else np.zeros(0)
    c = np.zeros(w)
    mean = np.zeros(w)
    incr = np.zeros(w, bool)
    with np.errstate(all="ignore"):
        for k, idx, cnt in ws.positions(start=1):
            f = m.values[idx]
            count = float(k + 1)
            sk, ck, mk, ik = s[:cnt], c[:cnt], mean[:cnt], incr[:cnt]
            ns, nc = kahan_inc(f, sk, ck)
            over = np.isinf(ns)
            if not ik.any() and not over.any():
                sk[:], ck[:] = ns, nc
                continue
            direct = ~ik & ~over
            switch = ~ik & over
            sk[:] = np.where(direct, ns, sk)
            ck[:] = np.where(direct, nc, ck)
            mk[:] = np.where(switch, sk / (count - 1), mk)
            ck[:] = np.where(switch, ck / (count - 1), ck)
            ik |= switch
            q = (count - 1) / count
            nm, nc2 = kahan_inc(f / count, q * mk, q * ck)
            mk[:] = np.where(ik, nm, mk)
            ck[:] = np.where(ik, nc2, ck)
        nf = ws.n.astype(np.float64)
        res: F64 = np.where(incr, mean + c, s / nf + c / nf)
    return res


@function("avg_over_time")
def func_avg_over_time(call: FunctionCall) -> Vector:
    """``avg_over_time(v range-vector)``: Kahan sum / count (incremental mean on overflow)."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    sums, present, ws = _fast_sums(m, lo, hi)
    with np.errstate(invalid="ignore", divide="ignore"):
        res = sums / (hi - lo)
    if ws is not None:
        res[ws.mask] = _avg_kahan(m, ws)[np.argsort(ws.flat)]
    return _out(m, res, present)


@function("count_over_time")
def func_count_over_time(call: FunctionCall) -> Vector:
    """``count_over_time(v range-vector)``."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    n = hi - lo
    return _out(m, n.astype(np.float64), n > 0)


@function("present_over_time")
def func_present_over_time(call: FunctionCall) -> Vector:
    """``present_over_time(v range-vector)``: 1 for every window with a sample."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    n = hi - lo
    return _out(m, np.ones(n.shape), n > 0)


@function("last_over_time")
def func_last_over_time(call: FunctionCall) -> Vector:
    """``last_over_time(v range-vector)``: keeps the metric name."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    return _out(m, take_clipped(m.values, hi - 1), hi > lo, keep_name=True)


@function("first_over_time")
def func_first_over_time(call: FunctionCall) -> Vector:
    """``first_over_time(v range-vector)``: keeps the metric name."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    return _out(m, take_clipped(m.values, lo), hi > lo, keep_name=True)


@function("ts_of_last_over_time")
def func_ts_of_last_over_time(call: FunctionCall) -> Vector:
    """``ts_of_last_over_time(v range-vector)``: timestamp (s) of the last sample."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    return _out(m, take_clipped(m.ts_ms, hi - 1) / 1000.0, hi > lo)


@function("ts_of_first_over_time")
def func_ts_of_first_over_time(call: FunctionCall) -> Vector:
    """``ts_of_first_over_time(v range-vector)``: timestamp (s) of the first sample."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    return _out(m, take_clipped(m.ts_ms, lo) / 1000.0, hi > lo)


@function("max_over_time")
def func_max_over_time(call: FunctionCall) -> Vector:
    """``max_over_time(v range-vector)``: NaN only if every sample is NaN."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    out = _first_zero_sign(m.values, lo, hi, reduce_windows(np.fmax, m.values, lo, hi))
    return _out(m, out, hi > lo)


@function("min_over_time")
def func_min_over_time(call: FunctionCall) -> Vector:
    """``min_over_time(v range-vector)``: NaN only if every sample is NaN."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    out = _first_zero_sign(m.values, lo, hi, reduce_windows(np.fmin, m.values, lo, hi))
    return _out(m, out, hi > lo)


def _first_zero_sign(values: F64, lo: I64, hi: I64, out: F64) -> F64:
    """Give a zero extreme the sign of the window's first zero: Prometheus replaces the
    running extreme only by a strictly greater (smaller) value, so of 0 and -0 the first
    one seen stays, where fmax/fmin pick either."""
    zero = out == 0
    if not zero.any():
        return out
    is_zero = values == 0
    if not np.signbit(values[is_zero]).any():
        return out
    before = np.concatenate(([0], np.cumsum(is_zero)))
    first = np.searchsorted(before, before[lo[zero]] + 1) - 1
    first = np.minimum(first, values.shape[0] - 1)
    out = out.copy()
    out[zero] = np.where(np.signbit(values[first]), -0.0, 0.0)
    return out


def _ts_of_extreme(call: FunctionCall, is_max: bool) -> Vector:
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    ws = WindowSet(m, lo, hi)
    best = m.values[ws.lo].copy() if ws.flat.size else np.zeros(0)
    ts = m.ts_ms[ws.lo].copy() if ws.flat.size else np.zeros(0, np.int64)
    with np.errstate(invalid="ignore"):
        for _k, idx, cnt in ws.positions():
            f = m.values[idx]
            b = best[:cnt]
            take = ((f >= b) if is_max else (f <= b)) | np.isnan(b)
            b[take] = f[take]
            ts[:cnt][take] = m.ts_ms[idx][take]
    return _out(m, ws.scatter(ts / 1000.0), ws.mask)


@function("ts_of_max_over_time")
def func_ts_of_max_over_time(call: FunctionCall) -> Vector:
    """``ts_of_max_over_time(v range-vector)``: timestamp (s) of the (last) maximum."""
    return _ts_of_extreme(call, is_max=True)


@function("ts_of_min_over_time")
def func_ts_of_min_over_time(call: FunctionCall) -> Vector:
    """``ts_of_min_over_time(v range-vector)``: timestamp (s) of the (last) minimum."""
    return _ts_of_extreme(call, is_max=False)


def _variance_kahan(m: Matrix, ws: WindowSet) -> F64:
    """Prometheus's variance numerics: Welford's running mean and sum of squares, both with
    Kahan compensation."""
    w = ws.flat.size
    mean, cm, aux, ca = (np.zeros(w) for _ in range(4))
    with np.errstate(all="ignore"):
        for k, idx, cnt in ws.positions():
            f = m.values[idx]
            count = float(k + 1)
            delta = f - (mean[:cnt] + cm[:cnt])
            mean[:cnt], cm[:cnt] = kahan_inc(delta / count, mean[:cnt], cm[:cnt])
            aux[:cnt], ca[:cnt] = kahan_inc(delta * (f - (mean[:cnt] + cm[:cnt])), aux[:cnt],
                                            ca[:cnt])
        res: F64 = (aux + ca) / ws.n
    return res


def _variance(call: FunctionCall, sqrt: bool) -> Vector:
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    present = hi > lo
    bad = nonfinite_counts(m.values, lo, hi)
    fast = present if bad is None else present & (bad == 0)
    var, ok = window_variance(m.values, lo, hi, fast)
    need = present & ~ok
    if need.any():
        ws = _restrict(m, lo, hi, need)
        var[ws.mask] = _variance_kahan(m, ws)[np.argsort(ws.flat)]
    with np.errstate(invalid="ignore"):
        res = np.sqrt(var) if sqrt else var
    return _out(m, res, present)


@function("stddev_over_time")
def func_stddev_over_time(call: FunctionCall) -> Vector:
    """``stddev_over_time(v range-vector)``: population standard deviation."""
    return _variance(call, sqrt=True)


@function("stdvar_over_time")
def func_stdvar_over_time(call: FunctionCall) -> Vector:
    """``stdvar_over_time(v range-vector)``: population variance."""
    return _variance(call, sqrt=False)


def quantile_of_sorted(sorted_block: F64, nan_count: np.ndarray, n: np.ndarray,
                       q: F64) -> F64:
    """Prometheus's ``quantile`` for rows of ascending values (NaN and padding at the end).

    Prometheus orders NaN *first*; row ``i`` holds ``n[i]`` values of which ``nan_count[i]``
    are NaN. ``q`` is per row.
    """
    rows = np.arange(sorted_block.shape[0])
    nf = n.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # a huge φ: ±Inf below anyway
        rank = q * (nf - 1)
        fl = np.floor(np.where(np.isfinite(rank), rank, 0))
        lower = np.maximum(0, fl).astype(np.int64)
        upper = np.minimum(n - 1, lower + 1)
        weight = np.where(np.isfinite(rank), rank, 0) - fl

    def at(r: np.ndarray) -> F64:
        j = np.clip(r - nan_count, 0, max(sorted_block.shape[1] - 1, 0))
        v = sorted_block[rows, j] if sorted_block.shape[1] else np.zeros(rows.size)
        return np.where(r < nan_count, np.nan, v)

    with np.errstate(invalid="ignore"):
        res = at(lower) * (1 - weight) + at(upper) * weight
    res = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, res))
    return np.where(np.isnan(q) | (n == 0), np.nan, res)


def sort_rows(x: F64, *, in_place: bool = False, lengths: I64 | None = None,
              q: F64 | None = None, budget: ReplayBudget | None = None) -> F64:
    """``x`` sorted row by row, ascending (NaN last), with equal zeros where Prometheus puts
    them: it sorts a window with Go's ``sort.Sort``, so of a 0 and a -0 the one an
    interpolated quantile lands on shows in its sign. Up to 12 values that is an insertion
    sort, which keeps them in time order (numpy's stable sort agrees); longer windows are
    replayed with Go's own algorithm (:func:`.gosort.go_sort`), with ``q`` (φ per row) only
    those whose quantile lands on a zero, within ``budget`` (past it they keep time order,
    a guess). Numpy's
    default sort is not stable: only rows holding both zeros are sorted again. Row ``i``
    holds ``lengths[i]`` values in time order, then padding (None: whole rows). With
    ``in_place``, ``x`` itself is sorted (a block of the caller's own: no copy)."""
    zero = x == 0
    mixed = None
    if zero.any():
        neg = zero & np.signbit(x)
        mixed = neg.any(axis=1) & (zero & ~neg).any(axis=1)
    before = x[mixed] if mixed is not None and mixed.any() else None  # in time order
    out = x if in_place else x.copy()
    out.sort(axis=1)
    if before is not None:
        assert mixed is not None
        rows = np.flatnonzero(mixed)
        out[rows] = np.sort(before, axis=1, kind="stable")
        n = np.full(rows.size, x.shape[1]) if lengths is None else lengths[rows]
        replay = n > 12
        if q is not None:
            replay &= _lands_on_zero(before, n, q[rows])
        budget = ReplayBudget() if budget is None else budget
        for k in np.flatnonzero(replay).tolist():
            if not budget.take(int(n[k])):
                break
            out[rows[k]] = _go_sorted_row(before[k], int(n[k]))
    return out


def _lands_on_zero(rows: F64, n: I64, q: F64) -> B:
    """Whether the φ-quantile of each row's first ``n`` values is read at a zero (only then
    does the arrangement of 0 and -0 show)."""
    valid = np.arange(rows.shape[1])[None, :] < n[:, None]
    nan = (np.isnan(rows) & valid).sum(axis=1)
    below = ((rows < 0) & valid).sum(axis=1)
    zeros = ((rows == 0) & valid).sum(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        rank = q * (n - 1)
        ok = (q >= 0) & (q <= 1)
        lower = np.floor(np.where(ok, rank, 0)).astype(np.int64)
    hits = np.zeros(rows.shape[0], bool)
    for at in (lower, np.minimum(n - 1, lower + 1)):
        j = at - nan  # its place among the values that are not NaN
        hits |= (j >= below) & (j < below + zeros)
    return hits & ok


def _go_sorted_row(row: F64, n: int) -> F64:
    """``row``'s first ``n`` values as Go's ``sort.Sort`` leaves them, in :func:`sort_rows`'s
    layout (NaN after the rest, then the padding after ``n``, sorted)."""
    values = row[:n].tolist()
    go_sort(values)
    arranged = np.asarray(values)
    nan = np.isnan(arranged)
    pad = np.sort(row[n:])
    return np.concatenate([arranged[~nan], pad[~np.isnan(pad)], arranged[nan],
                           pad[np.isnan(pad)]])


def _window_quantiles(m: Matrix, ws: WindowSet, q: F64, budget: ReplayBudget | None = None,
                      mad: bool = False) -> F64:
    out = np.zeros(ws.flat.size)
    for sl, blk in window_gather(ws, m.values, np.inf):
        n = ws.n[sl]
        valid = np.arange(blk.shape[1])[None, :] < n[:, None]
        nan_c = (np.isnan(blk) & valid).sum(axis=1)
        srt = sort_rows(blk, lengths=n, q=q[sl], budget=budget)
        res = quantile_of_sorted(srt, nan_c, n, q[sl])
        if mad:
            with np.errstate(invalid="ignore"):
                dev = np.where(valid, np.abs(blk - res[:, None]), np.inf)
            nan_d = (np.isnan(dev) & valid).sum(axis=1)
            res = quantile_of_sorted(np.sort(dev, axis=1), nan_d, n, q[sl])
            res = np.where(nan_c > 0, np.nan, res)
        out[sl] = res
    return out


def _sorted_quantile(x: F64, q0: float) -> F64:
    """Prometheus's quantile ``q0`` (in ``[0, 1]``) of every row of the row-sorted ``x``."""
    n = x.shape[1]
    rank = q0 * (n - 1)
    k1 = max(0, math.floor(rank))
    k2 = min(n - 1, k1 + 1)
    weight = rank - math.floor(rank)
    res: F64 = x[:, k1] * (1 - weight) + x[:, k2] * weight
    return res


def _quantiles_fast(values: F64, lo: I64, hi: I64, mask: B, qs: F64,
                    budget: ReplayBudget | None = None, mad: bool = False) -> F64:
    """Quantiles (or, with ``mad``, median absolute deviations) of the NaN-free windows in
    ``mask``: dense same-length blocks, sorted row by row."""
    out = np.zeros(lo.size)
    n_steps = lo.shape[1]
    for n, flat, starts in count_groups(lo, hi, mask):
        x = block(values, starts, n)
        q = qs[flat % n_steps]
        sort_rows(x, in_place=True, q=q, budget=budget)  # faster than partitioning short rows
        q0 = float(q[0])
        if 0.0 <= q0 <= 1.0 and bool((q == q0).all()):
            res = _sorted_quantile(x, q0)
        else:
            res = quantile_of_sorted(x, np.zeros(flat.size, np.int64), np.full(flat.size, n), q)
        if mad:
            x -= res[:, None]
            np.abs(x, out=x)
            x.sort(axis=1)
            res = _sorted_quantile(x, 0.5)
        out[flat] = res
    return out.reshape(lo.shape)


@function("quantile_over_time")
def func_quantile_over_time(call: FunctionCall) -> Vector:
    """``quantile_over_time(φ scalar, v range-vector)`` with linear interpolation."""
    m = matrix_arg(call, 1)
    qs = scalar_arg(call.args, 0, call.ctx.num_steps)
    lo, hi = m.window_bounds()
    present = hi > lo
    steps_with_data = present.any(axis=0) if present.size else np.zeros(qs.size, bool)
    for qv in unique(qs[steps_with_data & ~((qs >= 0) & (qs <= 1))]):
        warn(call.ctx, f"quantile value should be between 0 and 1, got {format_go_g(float(qv))}",
             call.node.args[0])
    bad = nonfinite_counts(m.values, lo, hi)
    fast = present if bad is None else present & (bad == 0)
    budget = ReplayBudget()  # for windows holding both 0 and -0 (sort_rows)
    res = _quantiles_fast(m.values, lo, hi, fast, qs, budget)
    need = present & ~fast
    if need.any():
        ws = _restrict(m, lo, hi, need)
        q = np.broadcast_to(qs[None, :], lo.shape).ravel()[ws.flat]
        res[ws.mask] = _window_quantiles(m, ws, q, budget)[np.argsort(ws.flat)]
    return _out(m, res, present)


@function("mad_over_time")
def func_mad_over_time(call: FunctionCall) -> Vector:
    """``mad_over_time(v range-vector)``: median absolute deviation from the median."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    present = hi > lo
    bad = nonfinite_counts(m.values, lo, hi)
    fast = present if bad is None else present & (bad == 0)
    budget = ReplayBudget()
    res = _quantiles_fast(m.values, lo, hi, fast, np.full(lo.shape[1], 0.5), budget, mad=True)
    need = present & ~fast
    if need.any():
        ws = _restrict(m, lo, hi, need)
        q = np.full(ws.flat.size, 0.5)
        res[ws.mask] = _window_quantiles(m, ws, q, budget, mad=True)[np.argsort(ws.flat)]
    return _out(m, res, present)


@function("absent_over_time")
def func_absent_over_time(call: FunctionCall) -> Vector:
    """``absent_over_time(v range-vector)``: 1 at the steps where no series has a sample."""
    m = matrix_arg(call)
    lo, hi = m.window_bounds()
    missing = np.asarray(~(hi > lo).any(axis=0) if len(m) else np.ones(call.ctx.num_steps, bool))
    return absent_vector(call, missing)
