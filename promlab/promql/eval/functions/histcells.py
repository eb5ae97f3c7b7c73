"""Fast paths of the classic-histogram functions for the usual warm, small inputs.

A bucket vector's layout (each series' histogram and upper bound) depends on its label sets
only, and warm queries hand over the very same label-set objects every time (an aggregation's
interned groups, a store's series), so it is remembered per list of label sets (found by the
list's length and end ids, confirmed by ``list ==`` against a kept copy). When every bucket
series is present at every step and no histogram has two buckets of one bound, the dense
``(cells, buckets)`` arrays are one gather of the values. :func:`small_quantiles` evaluates
Prometheus's bucket quantile cell by cell on Python floats (the same IEEE operations in the
same order as the array path, so bit-identical) when there are few cells, where array passes
cost more than the arithmetic; it declines (None) every case it does not handle exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from promlab.model import Labels
from promlab.promql.listmemo import ListMemo
from promlab.promql.values import F64, I64, B

__all__ = ["MAX_LAYOUTS", "MAX_SMALL_CELLS", "Layout", "almost_equal", "clear", "dense_cells",
           "layout", "small_quantiles"]

#: Layouts remembered at once (all are forgotten when one more is added).
MAX_LAYOUTS = 64
#: Most cells :func:`small_quantiles` evaluates one by one.
MAX_SMALL_CELLS = 8
#: Relative difference below which two neighbouring bucket counts are the same (Prometheus's
#: smallDeltaTolerance), and the smallest positive normal float64 (Go's minNormal).
TOLERANCE = 1e-12
_MIN_NORMAL = 2.2250738585072014e-308


def almost_equal(a: F64, b: F64) -> B:
    """Prometheus's ``almost.Equal(a, b, 1e-12)`` elementwise: equal, both NaN, or differing
    by less than 1e-12 of ``|a| + |b|`` (by less than 1e-12 of the smallest normal float when
    one is 0 or both are tiny). Signs count: -1 and -1.0000000000001 are close, 1 and -1
    are not."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        abs_sum = np.abs(a) + np.abs(b)
        diff = np.abs(a - b)
        tiny = (a == 0) | (b == 0) | (abs_sum < _MIN_NORMAL)
        close = np.where(tiny, diff < TOLERANCE * _MIN_NORMAL,
                         diff / np.minimum(abs_sum, np.finfo(np.float64).max) < TOLERANCE)
    out: B = close | (a == b) | (np.isnan(a) & np.isnan(b))
    return out


def _almost_equal(a: float, b: float) -> bool:
    """:func:`almost_equal` of two finite floats."""
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0.0 or b == 0.0 or abs_sum < _MIN_NORMAL:
        return diff < TOLERANCE * _MIN_NORMAL
    return diff / abs_sum < TOLERANCE


@dataclass(frozen=True)
class Layout:
    """Where each series of a bucket vector belongs.

    ``hist_of`` each series' histogram (-1: no valid ``le``), ``le_of`` its upper bound,
    ``hist_labels`` each histogram's label set, ``bad`` the series without a valid ``le``;
    ``grid``/``grid_les`` ``(histograms, buckets)`` series rows and bounds sorted by bound, when
    every histogram has as many buckets, all of distinct bounds (else None).
    """

    hist_of: I64
    le_of: F64
    hist_labels: list[Labels]
    bad: list[int]
    grid: I64 | None
    grid_les: F64 | None


_layouts: ListMemo[Layout] = ListMemo(max_lists=MAX_LAYOUTS)


def clear() -> None:
    """Forget every remembered layout."""
    _layouts.clear()


def layout(labels: Sequence[Labels], build: Callable[[Sequence[Labels]], Layout]) -> Layout:
    """``build(labels)``, remembered per list of label sets (the layout depends on them only)."""
    hit = _layouts.get(labels)
    if hit is not None:
        return hit
    made = build(labels)
    _layouts.put(labels, made)
    return made


def with_grid(hist_of: I64, le_of: F64, hist_labels: list[Labels], bad: list[int]) -> Layout:
    """A :class:`Layout` with its dense grid when the buckets allow one."""
    hist_of.flags.writeable = False
    le_of.flags.writeable = False
    grid = grid_les = None
    h = len(hist_labels)
    valid = np.flatnonzero(hist_of >= 0)
    # a NaN bound sorts where Go's sort leaves it (see histogram.bucket_cells): no grid
    if h and valid.size % h == 0 and not np.isnan(le_of[valid]).any():
        order = valid[np.lexsort((le_of[valid], hist_of[valid]))]
        b = valid.size // h
        g = order.reshape(h, b)
        gl = le_of[g]
        if (hist_of[g] == np.arange(h)[:, None]).all() and (b < 2 or (gl[:, 1:] != gl[:, :-1]).all()):
            grid, grid_les = g, gl
            grid.flags.writeable = False
            grid_les.flags.writeable = False
    return Layout(hist_of, le_of, hist_labels, bad, grid, grid_les)


def dense_cells(lay: Layout, values: F64, present: B,
                ) -> tuple[I64, I64, F64, F64, I64] | None:
    """Cell histogram, cell step, bounds, counts and bucket counts (as the general path builds
    them) when the layout has a grid and every bucket series is present at every step; else
    None."""
    g = lay.grid
    if g is None or lay.grid_les is None or values.ndim != 2 or not present[g].all():
        return None
    h, b = g.shape
    t = values.shape[1]
    counts = values[g].transpose(0, 2, 1).reshape(h * t, b)
    les = lay.grid_les if t == 1 else np.repeat(lay.grid_les, t, axis=0)
    cell_hist = np.repeat(np.arange(h), t) if t > 1 else np.arange(h)
    cell_step = np.tile(np.arange(t), h) if t > 1 else np.zeros(h, np.int64)
    return cell_hist, cell_step, np.array(les), counts, np.full(h * t, b, np.int64)


def small_quantiles(counts: F64, les: F64, nb: I64, q: F64) -> tuple[F64, B] | None:
    """Bucket quantiles (and forced monotonicity) of few cells, one by one; None when a cell
    needs what only the array path does (NaN or infinite counts, a precision fix, an empty
    bucket to divide by, a quantile outside ``[0, 1]``, unequal bucket counts)."""
    c_n = counts.shape[0]
    if c_n > MAX_SMALL_CELLS or c_n == 0:
        return None
    nbs = nb.tolist()
    width = counts.shape[1]
    if any(x != width for x in nbs):
        return None
    out: list[float] = []
    forced_l: list[bool] = []
    for row, le, qi in zip(counts.tolist(), les.tolist(), q.tolist(), strict=True):
        got = _one(row, le, qi)
        if got is None:
            return None
        out.append(got[0])
        forced_l.append(got[1])
    return np.array(out, np.float64), np.array(forced_l, bool)


def _one(c: list[float], le: list[float], q: float) -> tuple[float, bool] | None:
    if not 0.0 <= q <= 1.0:
        return None
    prev = c[0]  # the largest count kept so far, as Prometheus's ensureMonotonic...
    if not math.isfinite(prev):
        return None
    forced = False
    for j in range(1, len(c)):
        cur = c[j]
        if not math.isfinite(cur):
            return None
        if cur == prev:
            continue
        if _almost_equal(prev, cur):
            return None  # a precision fix: the array path
        if cur < prev:
            c[j] = prev
            forced = True
        else:
            prev = cur
    n = len(c)
    has_inf = le[n - 1] == math.inf
    forced = forced and has_inf
    obs = c[n - 1]
    if not has_inf or n < 2 or obs == 0.0:
        return math.nan, forced
    rank = q * obs
    b = n - 1
    for j in range(n - 1):
        if c[j] >= rank:
            b = j
            break
    if b == n - 1:
        return le[max(n - 2, 0)], forced
    if b == 0 and le[0] <= 0.0:
        return le[0], forced
    start = le[b - 1] if b > 0 else 0.0
    cnt_prev = c[b - 1] if b > 0 else 0.0
    count = c[b] - cnt_prev
    if count == 0.0:
        return None
    return start + (le[b] - start) * ((rank - cnt_prev) / count), forced
