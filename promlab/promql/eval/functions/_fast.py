"""Fast window kernels: exact-split prefix sums and dense same-length window blocks.

Two tools make the range-vector functions cheap on big frames while keeping Prometheus's
numerics:

* :func:`window_sums` — the sum of every window from prefix sums. Each value is split into a
  coarse part (a multiple of a power of two ``g`` chosen so that every prefix sum of the coarse
  parts is exact) and the exact remainder (``|r| <= g/2``); the window sum is the exact
  difference of coarse prefixes plus the difference of remainder prefixes, whose rounding error
  is bounded by a running bound. Windows whose bound is not far below the result's last bit, or
  that hold NaN or ±Inf, are reported as not ``exact`` so the caller recomputes them with the
  compensated (Kahan) kernel.
* :func:`count_groups` / :func:`block` — the windows with the same sample count ``n``, as dense
  ``(windows, n)`` rows taken from a strided view of the CSR values (no index arrays), in
  chunks of bounded size (``CHUNK_ELEMS``: memory stays small, vectors stay in cache). Order-
  dependent recurrences (:func:`window_variance`, :func:`window_regression`) run over the
  transposed block column by column, replaying Prometheus's exact sequence of floating-point
  operations; Kahan's compensation step uses the branch-free TwoSum, which yields the same
  exact error term as Prometheus's branching Neumaier form.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from promlab.promql.values import F64, I64, B

__all__ = [
    "block",
    "count_groups",
    "nonfinite_counts",
    "window_regression",
    "window_sums",
    "window_variance",
]

_U = 2.0**-53
#: A window sum is accepted when its error bound is below this fraction of its magnitude.
_REL_TOL = 2.0**-50
#: Target number of elements of one dense block (keeps temporaries small and in cache).
CHUNK_ELEMS = 1 << 17


def nonfinite_counts(values: F64, lo: I64, hi: I64) -> I64 | None:
    """Number of NaN/±Inf samples in every window, or ``None`` if all values are finite."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    c = np.zeros(values.size + 1, np.int64)
    np.cumsum(bad, dtype=np.int64, out=c[1:])
    out: I64 = np.take(c, hi) - np.take(c, lo)
    return out


def window_sums(values: F64, lo: I64, hi: I64) -> tuple[F64, B]:
    """Sums of ``values[lo:hi]`` for every window, and where they are trustworthy.

    Returns ``(sums, exact)``: ``exact`` is False for windows holding non-finite values or
    whose rounding-error bound exceeds ``2**-50`` of the sum (cancellation, mixed magnitudes);
    their ``sums`` entries are meaningless. Elsewhere the sum is within a small fraction of an
    ulp of the exact sum, like Prometheus's Kahan sum.
    """
    shape = lo.shape
    if values.size == 0:
        return np.zeros(shape), np.ones(shape, bool)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.abs(values).sum())
    bad = None
    v = values
    if not math.isfinite(total):  # NaN/±Inf samples (or an overflowing total)
        bad = nonfinite_counts(values, lo, hi)
        if bad is not None:
            v = np.where(np.isfinite(values), values, 0.0)
            with np.errstate(over="ignore"):
                total = float(np.abs(v).sum())
        if not math.isfinite(total):
            return np.zeros(shape), np.zeros(shape, bool)
    if total == 0.0:
        exact = np.ones(shape, bool) if bad is None else bad == 0
        return np.zeros(shape), exact
    _, e = math.frexp(total)          # total < 2**e
    g_exp = e - 51                    # coarse grid 2**g_exp: |coarse prefix| < 2**(53 + g_exp)
    if g_exp < -1000:                 # remainders would be subnormal: not worth it
        return np.zeros(shape), np.zeros(shape, bool)
    if e > 1020:                      # near the top of the range: the grid and the prefix sums
        return np.zeros(shape), np.zeros(shape, bool)  # would overflow (1.7e308 samples)
    big = math.ldexp(1.5, 52 + g_exp)  # adding and subtracting it rounds to a multiple of 2**g_exp
    if _direct_pays(v.size, lo, hi):
        sums, exact = _direct_sums(v, lo, hi, big)
        if bad is not None:
            exact &= bad == 0
        return sums, exact
    ch = np.empty(v.size + 1)   # coarse parts, then their prefix sums
    ch[0] = 0.0
    coarse = ch[1:]
    np.add(v, big, out=coarse)
    coarse -= big
    cl = np.empty(v.size + 1)   # remainders, then their prefix sums
    cl[0] = 0.0
    np.subtract(v, coarse, out=cl[1:])
    np.cumsum(coarse, out=coarse)
    np.cumsum(cl[1:], out=cl[1:])
    # cl[hi] - cl[lo] differs from the exact remainder sum by the rounding errors of the
    # additions lo < j <= hi, each at most u * |cl[j]|: at most u * n * max|cl| in a window of
    # n samples; where that coarse bound is not enough, the sharper u * (eb[hi] - eb[lo]) with
    # eb = cumsum(|cl|) (plus eb's own rounding, second order).
    with np.errstate(invalid="ignore", over="ignore"):
        sums = np.take(ch, hi) - np.take(ch, lo)
        sums += np.take(cl, hi) - np.take(cl, lo)
        mag = np.abs(sums)
        mag *= _REL_TOL
        cl_max = max(abs(float(cl.max())), abs(float(cl.min())))
        exact = (hi - lo) * (cl_max * _U * 1.01) <= mag
        if not exact.all():
            eb = np.abs(cl)
            np.cumsum(eb, out=eb)
            eh = np.take(eb, hi)
            err = (eh - np.take(eb, lo)) * (_U * 1.01) + eh * (4 * _U * _U)
            exact |= err <= mag
    if bad is not None:
        exact &= bad == 0
    return sums, exact


def _direct_pays(n_values: int, lo: I64, hi: I64) -> bool:
    """Whether summing each window directly (``reduceat``: about a quarter of a nanosecond a
    sample plus a few per window) beats two prefix sums over all ``n_values`` (``cumsum``,
    about three nanoseconds a sample): windows holding few samples each, e.g. one step."""
    return int((hi - lo).sum()) + 40 * lo.size <= 8 * n_values


def _direct_sums(v: F64, lo: I64, hi: I64, big: float) -> tuple[F64, B]:
    """:func:`window_sums` of finite ``v`` by direct sums over every window (``reduceat``
    in whatever order numpy adds), split as there at the grid ``big`` sets.

    The coarse parts' sum is exact in any order (every partial sum is a multiple of the grid
    below ``2**53`` of it); the remainders' sum of a window of ``n`` samples, ``|r| <= g/2``
    each, is off by at most ``u`` times each of its ``n - 1`` partial sums, each at most
    ``sum |r|``: ``(n - 1) u n g / 2``, or ``(n - 1) u sum |r|`` where that is not enough."""
    shape = lo.shape
    n_values = v.size
    ch = np.empty(n_values + 1)  # coarse parts (a zero after them for empty windows at the end)
    ch[n_values] = 0.0
    coarse = ch[:n_values]
    np.add(v, big, out=coarse)
    coarse -= big
    cl = np.empty(n_values + 1)  # remainders
    cl[n_values] = 0.0
    np.subtract(v, coarse, out=cl[:n_values])
    idx = np.empty(2 * lo.size, np.int64)
    idx[0::2] = lo.ravel()
    idx[1::2] = hi.ravel()
    np.minimum(idx, n_values, out=idx)
    n = (hi - lo).ravel()
    with np.errstate(invalid="ignore", over="ignore"):
        sums = np.add.reduceat(ch, idx)[0::2]
        sums += np.add.reduceat(cl, idx)[0::2]
        sums[n == 0] = 0.0  # reduceat gives an empty window's first sample
        mag = np.abs(sums)
        mag *= _REL_TOL
        grid = big / (1.5 * 2.0**52)
        nf = np.maximum(n - 1, 0).astype(np.float64)
        exact = nf * n * (grid * 0.5 * _U * 1.01) <= mag
        if not exact.all():
            np.abs(cl, out=cl)
            err = np.add.reduceat(cl, idx)[0::2]
            err *= nf * (_U * 1.01)
            exact |= err <= mag
        exact |= n <= 1
    return sums.reshape(shape), exact.reshape(shape)


def count_groups(lo: I64, hi: I64, mask: B | None = None, *, min_count: int = 1,
                 chunk_elems: int = CHUNK_ELEMS) -> Iterator[tuple[int, I64, I64]]:
    """Yield ``(n, flat, starts)``: windows of exactly ``n`` samples (``n >= min_count``,
    restricted to ``mask``) as flat indexes into the ``(S, T)`` grid and their first sample
    index, in chunks of about ``chunk_elems`` samples."""
    counts = (hi - lo).ravel()
    if mask is not None:
        counts = np.where(mask.ravel(), counts, 0)
    if counts.size == 0:
        return
    lo_flat = lo.ravel()
    present = np.bincount(counts[counts >= min_count]) if (counts >= min_count).any() \
        else np.zeros(0, np.int64)
    sizes = np.flatnonzero(present)
    if sizes.size > 48:  # many distinct counts: one sort instead of a pass per count
        order = np.argsort(counts, kind="stable")
        sc = counts[order]
        edges = np.searchsorted(sc, sizes)
        groups = ((int(n), order[a:a + int(present[n])]) for n, a in zip(sizes, edges, strict=True))
    else:
        groups = ((int(n), np.flatnonzero(counts == n)) for n in sizes)
    for n, flat in groups:
        per = max(1, chunk_elems // n)
        for a in range(0, flat.size, per):
            f = flat[a:a + per]
            yield n, f, lo_flat[f]


def block(data: np.ndarray, starts: I64, n: int) -> np.ndarray:
    """Rows ``data[s:s + n]`` for every ``s`` in ``starts`` as a dense ``(len(starts), n)``
    array (copied from a strided view: no index array of all the samples)."""
    out: np.ndarray = sliding_window_view(data, n)[starts]
    return out


def _kahan_add(inc: F64, s: F64, c: F64, t: F64, z: F64) -> tuple[F64, F64]:
    """``s, c = kahansum.Inc(inc, s, c)`` for finite values, in place on ``c``: the
    compensation gets the exact error of ``s + inc`` (TwoSum). The new sum is written to the
    scratch ``t``; returns ``(new sum, new scratch)`` (the old ``s`` buffer). ``z`` is scratch
    and ``inc`` is clobbered."""
    np.add(s, inc, out=t)
    np.subtract(t, s, out=z)      # z = t - s
    np.subtract(inc, z, out=inc)  # inc - z
    np.subtract(t, z, out=z)      # t - z
    np.subtract(s, z, out=z)      # s - (t - z)
    z += inc
    c += z
    return t, s


def window_variance(values: F64, lo: I64, hi: I64, mask: B) -> tuple[F64, B]:
    """Population variance of every window in ``mask`` with Prometheus's numerics (Welford's
    running mean and sum of squares, each Kahan-compensated), bit for bit, over dense
    same-length blocks transposed so every step of the recurrence is a contiguous vector
    operation. Returns ``(var, ok)``: ``ok`` is False where the result is not finite (the
    caller recomputes those windows with the reference kernel, which handles ±Inf)."""
    out = np.zeros(lo.size)
    ok = np.zeros(lo.size, bool)
    with np.errstate(all="ignore"):
        for n, flat, starts in count_groups(lo, hi, mask):
            cols = np.ascontiguousarray(block(values, starts, n).T)
            w = flat.size
            mean, cm, aux, ca, t, z, delta, tmp = (np.zeros(w) for _ in range(8))
            for k in range(n):
                f = cols[k]
                np.add(mean, cm, out=tmp)
                np.subtract(f, tmp, out=delta)
                np.divide(delta, float(k + 1), out=tmp)
                mean, t = _kahan_add(tmp, mean, cm, t, z)
                np.add(mean, cm, out=tmp)
                np.subtract(f, tmp, out=tmp)
                tmp *= delta
                aux, t = _kahan_add(tmp, aux, ca, t, z)
            aux += ca
            aux /= n
            out[flat] = aux
            ok[flat] = np.isfinite(aux)
    return out.reshape(lo.shape), ok.reshape(lo.shape)


def _scalar_kahan(xs: list[float]) -> float:
    """Prometheus's ``kahansum`` of a short list, in Python floats (same IEEE operations)."""
    s = c = 0.0
    for x in xs:
        t = s + x
        if math.isinf(t):
            c = 0.0
        elif abs(s) >= abs(x):
            c += (s - t) + x
        else:
            c += (x - t) + s
        s = t
    return s + c


def regular_gap(ts_ms: I64, offsets: I64) -> int | None:
    """The interval between consecutive samples if it is the same everywhere inside every
    series (regular scrapes, no gaps), else ``None``."""
    if ts_ms.size < 2:
        return None
    d = np.diff(ts_ms)
    inner = offsets[1:-1]
    inner = inner[(inner > 0) & (inner < ts_ms.size)]
    gap = int(d[0]) if inner.size == 0 or inner[0] != 1 else None
    if gap is None:
        keep = np.ones(d.size, bool)
        keep[inner - 1] = False
        if not keep.any():
            return None
        gap = int(d[int(np.argmax(keep))])
        ok = (d == gap) | ~keep
    else:
        ok = d == gap
        ok[inner - 1] = True
    return gap if gap > 0 and bool(ok.all()) else None


def _kahan_pairs(cols: F64, xk: list[float] | F64 | None, n: int) -> tuple[F64, F64]:
    """Kahan sums over the ``n`` rows of ``cols`` (``(n, w)``) of ``y`` and of ``x * y``,
    ``x`` given per row as a float or a ``(w,)`` vector by ``xk`` (``None``: ``x = y``, for
    sums of ``x`` and ``x * x``). Both sums advance together as one ``(2, w)`` array."""
    w = cols.shape[1]
    acc = np.zeros((2, w))
    comp = np.zeros((2, w))
    t = np.empty((2, w))
    z = np.empty((2, w))
    inc = np.empty((2, w))
    for k in range(n):
        y = cols[k]
        inc[0] = y
        np.multiply(y, y if xk is None else xk[k], out=inc[1])
        acc, t = _kahan_add(inc, acc, comp, t, z)
    acc += comp
    return acc[0], acc[1]


def _x_sums_scalar(xs: list[float]) -> tuple[float, float]:
    return _scalar_kahan(xs), _scalar_kahan([x * x for x in xs])


def window_regression(values: F64, ts_ms: I64, offsets: I64, lo: I64, hi: I64, mask: B,
                      ref_ms: I64 | None) -> tuple[F64, F64, B]:
    """Least-squares slope and intercept of every window in ``mask`` (at least 2 samples),
    with Prometheus's numerics bit for bit: ``x = (t - ref) / 1e3`` with ``ref`` the first
    sample's time (``ref_ms=None``, ``deriv``) or ``ref_ms`` per step (``(T,)``,
    ``predict_linear``); Kahan sums of ``x``, ``y``, ``x*y``, ``x*x``; the constant-``y``
    special case. Returns ``(slope, intercept, ok)``, ``ok`` False where a result is not finite
    (the caller recomputes those windows with the reference kernel).

    With regular sampling the ``x`` of a window depend only on its first sample's offset from
    ``ref`` (always 0 for ``deriv``): the sums of ``x`` and ``x*x`` are computed once per
    distinct offset, and ``x`` is a per-row constant."""
    size = lo.size
    n_steps = lo.shape[1] if lo.ndim == 2 else 1
    slope_out = np.zeros(size)
    icpt_out = np.zeros(size)
    ok = np.zeros(size, bool)
    gap = regular_gap(ts_ms, offsets)
    # Constant windows: no pair (j-1, j) with lo < j < hi whose values differ.
    chg = np.zeros(values.size + 1, np.int64)
    if values.size > 1:
        np.cumsum(values[1:] != values[:-1], out=chg[2:])
    const_all = (np.take(chg, hi) == np.take(chg, np.minimum(lo + 1, hi))).ravel()
    with np.errstate(all="ignore"):
        for n, flat, starts in count_groups(lo, hi, mask, min_count=2):
            w = flat.size
            xk: list[float] | F64
            if gap is not None:
                off = np.zeros(1, np.int64) if ref_ms is None else \
                    ts_ms[starts] - ref_ms[flat % n_steps]
                uniq, inv = np.unique(off, return_inverse=True)
                if uniq.size == 1:
                    xk = [float(int(uniq[0]) + k * gap) / 1e3 for k in range(n)]
                    sx1, sx21 = _x_sums_scalar(xk)
                    sx, sx2 = np.full(w, sx1), np.full(w, sx21)
                else:
                    xb = (off[None, :] + (np.arange(n, dtype=np.int64) * gap)[:, None]) / 1e3
                    xk = xb
                    if uniq.size <= 64:
                        tab = np.array([_x_sums_scalar(
                            [float(int(o) + k * gap) / 1e3 for k in range(n)]) for o in uniq])
                        sx, sx2 = tab[inv.ravel(), 0], tab[inv.ravel(), 1]
                    else:
                        sx, sx2 = _kahan_pairs(xb, None, n)
            else:
                tb = block(ts_ms, starts, n)
                ref = tb[:, 0] if ref_ms is None else ref_ms[flat % n_steps]
                xb = np.ascontiguousarray(((tb - ref[:, None]) / 1e3).T)
                xk = xb
                sx, sx2 = _kahan_pairs(xb, None, n)
            init_y = values[starts]
            const_y = const_all[flat]
            sy, sxy = _kahan_pairs(np.ascontiguousarray(block(values, starts, n).T), xk, n)
            cov = sxy - sx * sy / n
            var = sx2 - sx * sx / n
            slope = cov / var
            icpt = sy / n - slope * sx / n
            inf_y = np.isinf(init_y)
            slope = np.where(const_y, np.where(inf_y, np.nan, 0.0), slope)
            icpt = np.where(const_y, np.where(inf_y, np.nan, init_y), icpt)
            slope_out[flat] = slope
            icpt_out[flat] = icpt
            ok[flat] = np.isfinite(slope) & np.isfinite(icpt)
    return slope_out.reshape(lo.shape), icpt_out.reshape(lo.shape), ok.reshape(lo.shape)
