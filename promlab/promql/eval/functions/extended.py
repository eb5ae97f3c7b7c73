"""The experimental ``anchored`` and ``smoothed`` range modifiers (``promql-extended-range-selectors``).

A matrix selector with either modifier also reads the samples within the lookback delta before
its windows (and after them, ``smoothed``), see :class:`~promlab.promql.values.Matrix`. The
functions that accept it use them as Prometheus 3 does:

* ``anchored``: the window starts at the last sample at or before its start (within the
  lookback delta), so ``increase``/``rate``/``delta`` are plain last-minus-first differences
  without extrapolation and ``changes``/``resets`` also compare the first sample in the window
  with that anchor.
* ``smoothed``: ``increase``/``rate``/``delta`` take the values at the window's exact edges,
  interpolated linearly between the samples around each edge (for counters, a reset between
  them interpolates from zero).

Everything is computed for every (series, step) window at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from promlab.errors import QueryError
from promlab.promql.eval.calls import FunctionCall
from promlab.promql.eval.functions._common import reset_correction
from promlab.promql.parser.ast import MatrixSelector
from promlab.promql.values import F64, I64, B, Matrix

__all__ = [
    "ANCHORED_SAFE",
    "SMOOTHED_SAFE",
    "ExtendedBounds",
    "check_extended_args",
    "extended_bounds",
    "extended_rate_values",
]

ANCHORED_SAFE = frozenset({"changes", "delta", "increase", "rate", "resets"})
SMOOTHED_SAFE = frozenset({"delta", "increase", "rate"})


def check_extended_args(call_name: str, args: object) -> None:
    """Refuse ``anchored``/``smoothed`` selectors passed to a function that cannot use them
    (Prometheus's evaluation error, listing the functions that can)."""
    if not isinstance(args, list | tuple):
        return
    for a in args:
        if not isinstance(a, MatrixSelector):
            continue
        vs = a.vector_selector
        if vs.anchored and call_name not in ANCHORED_SAFE:
            raise QueryError("anchored modifier can only be used with: "
                             f"{', '.join(sorted(ANCHORED_SAFE))} - not with {call_name}")
        if vs.smoothed and call_name not in SMOOTHED_SAFE:
            raise QueryError("smoothed modifier can only be used with: "
                             f"{', '.join(sorted(SMOOTHED_SAFE))} - not with {call_name}")


class ExtendedBounds(NamedTuple):
    """Per (series, step) window: the plain bounds ``lo:hi`` and the extended ones
    ``first..last`` (inclusive; ``first < lo`` when an anchor sample precedes the window,
    ``last >= hi`` when a smoothed window takes the sample after it)."""

    lo: I64
    hi: I64
    first: I64
    last: I64
    has_anchor: B
    has_after: B


def extended_bounds(m: Matrix) -> ExtendedBounds:
    lo, hi = m.window_bounds()
    ts = m.ts_ms
    n = ts.shape[0]
    s0, s1 = m.offsets[:-1, None], m.offsets[1:, None]
    start = m.window_start_ms[None, :]
    end = m.window_end_ms[None, :]
    top = max(n - 1, 0)
    cand = lo - 1
    has_anchor = (cand >= s0) & (ts[np.clip(cand, 0, top)] > start - m.lookback_ms) if n else \
        np.zeros(lo.shape, bool)
    first = np.where(has_anchor, cand, lo)
    if m.extension == "smoothed" and n:
        at_end = (hi > lo) & (ts[np.clip(hi - 1, 0, top)] == end)
        has_after = (hi < s1) & (ts[np.clip(hi, 0, top)] <= end + m.lookback_ms) & ~at_end
    else:
        has_after = np.zeros(lo.shape, bool)
    last = np.where(has_after, hi, hi - 1)
    return ExtendedBounds(lo, hi, first, last, has_anchor, has_after)


def _interpolate(v1: F64, t1: I64, v2: F64, t2: I64, t: I64, is_counter: bool) -> F64:
    with np.errstate(all="ignore"):
        if is_counter:
            v1 = np.where(v2 < v1, 0.0, v1)
        out: F64 = v1 + (v2 - v1) * ((t - t1) / (t2 - t1))
    return out


def extended_rate_values(call: FunctionCall, m: Matrix, is_counter: bool, is_rate: bool,
                         ) -> tuple[F64, B]:
    """``rate``/``increase``/``delta`` over anchored or smoothed windows: values and presence."""
    b = extended_bounds(m)
    smoothed = m.extension == "smoothed"
    ts, v = m.ts_ms, m.values
    n = ts.shape[0]
    if n == 0:
        z = np.zeros(b.lo.shape)
        return z, np.zeros(b.lo.shape, bool)
    top = n - 1
    inside = b.hi > b.lo
    ok = inside | (b.has_anchor & b.has_after) if smoothed else inside
    first = np.clip(b.first, 0, top)
    last = np.clip(b.last, 0, top)
    start = np.broadcast_to(m.window_start_ms[None, :], first.shape)
    end = np.broadcast_to(m.window_end_ms[None, :], first.shape)
    left = v[first].copy()
    right = v[last].copy()
    if smoothed:
        nxt = np.clip(first + 1, 0, top)
        use = ok & (ts[first] < start) & (b.first < b.last)
        li = _interpolate(v[first], ts[first], v[nxt], ts[nxt], start, is_counter)
        np.copyto(left, li, where=use)
        prv = np.clip(last - 1, 0, top)
        use = ok & (ts[last] > end) & (b.last > b.first)
        ri = _interpolate(v[prv], ts[prv], v[last], ts[last], end, is_counter)
        np.copyto(right, ri, where=use)
    with np.errstate(all="ignore"):
        result = right - left
        if is_counter:
            result += _boundary_corrections(m, b, left, right, first, last, start, end)
        if is_rate:
            result /= m.range_ms / 1000.0
    return result, ok


def _boundary_corrections(m: Matrix, b: ExtendedBounds, left: F64, right: F64, first: I64,
                          last: I64, start: I64, end: I64) -> F64:
    """Counter-reset correction over the sequence (left, samples strictly inside, right)."""
    ts, v = m.ts_ms, m.values
    top = ts.shape[0] - 1
    f_idx = first + (ts[first] <= start)
    l_idx = last - (ts[last] >= end)
    corr = np.zeros(first.shape)
    inner = reset_correction(m, f_idx, np.maximum(l_idx + 1, f_idx))
    if inner is not None:
        corr += inner
    some = f_idx <= l_idx
    vf = v[np.clip(f_idx, 0, top)]
    vl = v[np.clip(l_idx, 0, top)]
    with np.errstate(invalid="ignore"):
        corr += np.where(some & (vf < left), left, 0.0)
        corr += np.where(some & (right < vl), vl, 0.0)
        corr += np.where(~some & (right < left), left, 0.0)
    return corr
