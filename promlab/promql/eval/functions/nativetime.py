"""``*_over_time`` functions over ranges holding native histograms.

The float kernels stay as they are; these wrappers (applied by
:mod:`promlab.promql.eval.registry`, :data:`WRAPPERS`) patch the windows that hold histogram
samples:

* ``sum_over_time``/``avg_over_time`` sum a histogram-only window with
  :class:`~promlab.promql.eval.histops.KahanSum`; a window of floats and histograms yields
  nothing (Prometheus's "mix of histograms and floats" warning).
* ``last_over_time``/``first_over_time`` return the histogram when it is the last/first sample.
* ``count_over_time``, ``present_over_time``, ``ts_of_first/last_over_time``, ``absent*`` and
  ``timestamp`` count histogram samples like floats (their NaN placeholders do that).
* Float-only functions that Prometheus annotates when a window mixes both kinds
  (:data:`MIXED_INFO`) emit "ignored histograms in a range containing both floats and
  histograms".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.eval.calls import FunctionCall, FunctionImpl
from promlab.promql.eval.functions._common import info, warn
from promlab.promql.eval.functions.extended import extended_bounds
from promlab.promql.eval.functions.nativerange import float_only
from promlab.promql.values import I64, B, Matrix, Value, Vector

__all__ = ["MIXED_INFO", "PLACEHOLDER_OK", "WRAPPERS"]

#: Functions whose float kernels handle histogram samples through their NaN placeholders.
PLACEHOLDER_OK = frozenset({
    "count_over_time", "present_over_time", "ts_of_first_over_time", "ts_of_last_over_time",
    "absent", "absent_over_time", "timestamp", "start_timestamp", "label_replace", "label_join",
})

#: Float-only range functions with Prometheus's mixed-range info annotation.
MIXED_INFO = frozenset({
    "double_exponential_smoothing", "mad_over_time", "min_over_time", "max_over_time",
    "ts_of_min_over_time", "ts_of_max_over_time", "quantile_over_time", "stddev_over_time",
    "stdvar_over_time", "deriv", "predict_linear",
})


def _matrix(call: FunctionCall) -> tuple[int, Matrix] | None:
    for i, a in enumerate(call.args):
        if isinstance(a, Matrix):
            return (i, a) if a.histograms is not None else None
    return None


def _counts(m: Matrix) -> tuple[B, I64, I64, I64, I64]:
    """Per sample: is a histogram; per (series, step): window bounds, histogram and sample
    counts."""
    assert m.histograms is not None
    is_h = m.histogram_mask()
    cum = np.zeros(is_h.size + 1, np.int64)
    np.cumsum(is_h, out=cum[1:])
    lo, hi = m.window_bounds()
    return is_h, lo, hi, cum[hi] - cum[lo], hi - lo


def _full(m: Matrix, v: Vector, t: int) -> tuple[np.ndarray, B, B, np.ndarray]:
    """``v``'s cells laid out on ``m``'s rows: values, present, drop_name, histograms."""
    row = {ls: i for i, ls in enumerate(m.labels)}
    n = len(m.labels)
    values = np.zeros((n, t))
    present = np.zeros((n, t), bool)
    drop = np.ones(n, bool)
    idx = np.asarray([row[ls] for ls in v.labels], np.int64)
    if idx.size:
        values[idx] = v.values
        present[idx] = v.present
        drop[idx] = v.drop_name_mask()
    hists = np.full((n, t), None, object)
    if v.histograms is not None and idx.size:
        hists[idx] = v.histograms
    return values, present, drop, hists


def _out(m: Matrix, values: np.ndarray, present: B, drop: B, hists: np.ndarray) -> Vector:
    keep = np.flatnonzero(present.any(axis=1))
    return Vector([m.labels[i] for i in keep.tolist()], np.where(present, values, 0.0)[keep],
                  present[keep], drop[keep], None, hists[keep])


def _summing(avg: bool) -> Callable[[FunctionImpl], FunctionImpl]:
    def wrap(impl: FunctionImpl) -> FunctionImpl:
        def call(c: FunctionCall) -> Value:
            found = _matrix(c)
            if found is None or found[1].start_ts_ms is not None:
                return impl(c)   # start timestamps: functions/starttime.py does histograms too
            k, m = found
            args = list(c.args)
            args[k] = float_only(m)
            floats = impl(FunctionCall(c.node, args, c.ctx))
            assert isinstance(floats, Vector)
            _, lo, hi, nh, n = _counts(m)
            t = lo.shape[1]
            values, present, drop, hists = _full(m, floats, t)
            drop[:] = True
            pos = c.node.args[k]
            assert m.histograms is not None
            for i, j in zip(*np.nonzero(nh > 0), strict=True):
                name = m.labels[i].name
                if nh[i, j] < n[i, j]:
                    warn(c.ctx, f'encountered a mix of histograms and floats for metric name "{name}"',
                         pos)
                    present[i, j] = False
                    continue
                hs: list[FloatHistogram] = list(m.histograms[lo[i, j]:hi[i, j]])
                s = histops.KahanSum(hs[0], mean=avg)
                try:
                    for h in hs[1:]:
                        s.add(h)
                except histops.IncompatibleSchemas:
                    warn(c.ctx, "vector contains a mix of histograms with exponential and custom "
                         f'buckets schemas for metric name "{name}"', pos)
                    present[i, j] = False
                    continue
                if s.hint_conflict:
                    warn(c.ctx, "conflicting counter resets during histogram aggregation", pos)
                if s.reconciled:
                    info(c.ctx, "mismatched custom buckets were reconciled during aggregation", pos)
                hists[i, j] = s.result(float(s.n) if avg else 1.0)
                values[i, j] = np.nan
                present[i, j] = True
            return _out(m, values, present, drop, hists)

        call.__doc__ = impl.__doc__
        return call

    return wrap


def _picking(last: bool) -> Callable[[FunctionImpl], FunctionImpl]:
    def wrap(impl: FunctionImpl) -> FunctionImpl:
        def call(c: FunctionCall) -> Value:
            found = _matrix(c)
            out = impl(c)
            if found is None or not isinstance(out, Vector):
                return out
            _, m = found
            assert m.histograms is not None
            is_h, lo, hi, nh, n = _counts(m)
            t = lo.shape[1]
            values, present, drop, hists = _full(m, out, t)
            pick = np.where(n > 0, hi - 1 if last else lo, 0)
            cells = present & (nh > 0) & is_h[pick]
            for i, j in zip(*np.nonzero(cells), strict=True):
                hists[i, j] = m.histograms[pick[i, j]]
                values[i, j] = np.nan
            return _out(m, values, present, drop, hists)

        call.__doc__ = impl.__doc__
        return call

    return wrap


def _mixed_info(name: str) -> Callable[[FunctionImpl], FunctionImpl]:
    def wrap(impl: FunctionImpl) -> FunctionImpl:
        def call(c: FunctionCall) -> Value:
            found = _matrix(c)
            if found is not None:
                k, m = found
                _, _, _, nh, n = _counts(m)
                mixed = (nh > 0) & (nh < n)
                for i in np.flatnonzero(mixed.any(axis=1)).tolist():
                    info(c.ctx, "ignored histograms in a range containing both floats and "
                         f'histograms for metric name "{m.labels[i].name}"', c.node.args[0])
                args = list(c.args)
                args[k] = float_only(m)
                c = FunctionCall(c.node, args, c.ctx)
            return impl(c)

        call.__doc__ = impl.__doc__
        return call

    return wrap


def _changed(prev: FloatHistogram | None, cur: FloatHistogram | None, pf: float, cf: float,
             resets: bool) -> bool:
    if prev is None and cur is None:
        if resets:
            return cf < pf
        return cf != pf and not (np.isnan(cf) and np.isnan(pf))
    if prev is None or cur is None:
        return True
    return histops.detect_reset(cur, prev) if resets else not cur.equals(prev)


def _pair_counting(resets: bool) -> Callable[[FunctionImpl], FunctionImpl]:
    """``changes``/``resets``: windows with histograms recounted sample by sample (a switch
    between a float and a histogram counts)."""
    def wrap(impl: FunctionImpl) -> FunctionImpl:
        def call(c: FunctionCall) -> Value:
            found = _matrix(c)
            out = impl(c)
            if found is None or not isinstance(out, Vector):
                return out
            _, m = found
            assert m.histograms is not None
            if resets and m.start_ts_ms is not None and m.extension is None:
                return out   # counted with start timestamps (functions/starttime.py)
            is_h, lo, hi, nh, _ = _counts(m)
            if m.extension == "anchored":  # the pairs start at the anchor before the window
                lo = extended_bounds(m).first
                cum = np.zeros(is_h.size + 1, np.int64)
                np.cumsum(is_h, out=cum[1:])
                nh = cum[hi] - cum[np.minimum(lo, hi)]
            values, present, drop, hists = _full(m, out, lo.shape[1])
            for i, j in zip(*np.nonzero(present & (nh > 0)), strict=True):
                a, b = int(lo[i, j]), int(hi[i, j])
                hs, fs = m.histograms[a:b], m.values[a:b]
                values[i, j] = sum(_changed(hs[k - 1], hs[k], float(fs[k - 1]), float(fs[k]), resets)
                                   for k in range(1, b - a))
            return _out(m, values, present, drop, hists)

        call.__doc__ = impl.__doc__
        return call

    return wrap


def _last_two(c: FunctionCall, m: Matrix, a: int, b: int, is_rate: bool,
              ) -> tuple[float, FloatHistogram | None, bool]:
    """``irate``/``idelta`` of the window ``[a, b)`` (at least two samples): value, histogram,
    whether there is a result."""
    assert m.histograms is not None
    h0, h1 = m.histograms[b - 2], m.histograms[b - 1]
    f0, f1 = float(m.values[b - 2]), float(m.values[b - 1])
    dt = (int(m.ts_ms[b - 1]) - int(m.ts_ms[b - 2])) / 1000.0
    if dt == 0:
        return 0.0, None, False
    if h0 is None and h1 is None:
        v = f1 if is_rate and f1 < f0 else f1 - f0
        return (v / dt if is_rate else v), None, True
    if h0 is None or h1 is None:
        return 0.0, None, False
    res = h1
    if not is_rate or not histops.detect_reset(h1, h0):
        note = histops.Combine()
        res = histops.sub(h1, h0, note)   # raises IncompatibleSchemas
        if note.reconciled:
            info(c.ctx, "mismatched custom buckets were reconciled during subtraction",
                 c.node.args[0])
    res = res.with_hint(CounterResetHint.GAUGE).compact()
    if is_rate:
        res = histops.mul(res, 1.0 / dt)
    return float("nan"), res, True


def _instant(is_rate: bool) -> Callable[[FunctionImpl], FunctionImpl]:
    """``irate``/``idelta``: windows with histograms recomputed from their last two samples."""
    def wrap(impl: FunctionImpl) -> FunctionImpl:
        def call(c: FunctionCall) -> Value:
            found = _matrix(c)
            if found is None or found[1].start_ts_ms is not None:
                return impl(c)   # start timestamps: functions/starttime.py does histograms too
            k, m = found
            args = list(c.args)
            args[k] = float_only(m)
            floats = impl(FunctionCall(c.node, args, c.ctx))
            assert isinstance(floats, Vector) and m.histograms is not None
            _, lo, hi, nh, n = _counts(m)
            values, present, drop, hists = _full(m, floats, lo.shape[1])
            drop[:] = True
            pos = c.node.args[0]
            for i, j in zip(*np.nonzero(nh > 0), strict=True):
                name = m.labels[i].name
                present[i, j] = False
                hists[i, j] = None
                if n[i, j] < 2:
                    continue
                b = int(hi[i, j])
                h0, h1 = m.histograms[b - 2], m.histograms[b - 1]
                if h0 is not None and h1 is not None:
                    gauge = CounterResetHint.GAUGE
                    if is_rate and gauge in (h0.counter_reset_hint, h1.counter_reset_hint):
                        warn(c.ctx, f'this native histogram metric is not a counter: "{name}"', pos)
                    if not is_rate and (h0.counter_reset_hint != gauge or h1.counter_reset_hint != gauge):
                        warn(c.ctx, f'this native histogram metric is not a gauge: "{name}"', pos)
                elif h0 is not None or h1 is not None:
                    warn(c.ctx, f'encountered a mix of histograms and floats for metric name "{name}"',
                         pos)
                    continue
                try:
                    v, h, ok = _last_two(c, m, int(lo[i, j]), b, is_rate)
                except histops.IncompatibleSchemas:
                    warn(c.ctx, "vector contains a mix of histograms with exponential and custom "
                         f'buckets schemas for metric name "{name}"', pos)
                    continue
                if ok:
                    values[i, j], hists[i, j], present[i, j] = v, h, True
            return _out(m, values, present, drop, hists)

        call.__doc__ = impl.__doc__
        return call

    return wrap


WRAPPERS: dict[str, Callable[[FunctionImpl], FunctionImpl]] = {
    "irate": _instant(True),
    "idelta": _instant(False),
    "changes": _pair_counting(False),
    "resets": _pair_counting(True),
    "sum_over_time": _summing(False),
    "avg_over_time": _summing(True),
    "last_over_time": _picking(True),
    "first_over_time": _picking(False),
    **{n: _mixed_info(n) for n in MIXED_INFO},
}
