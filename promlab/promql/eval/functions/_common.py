"""Shared helpers of the function implementations: argument access, annotations, window kernels.

Everything here works on whole frames: ``(S, T)`` arrays for instant vectors, CSR arrays plus
``(S, T)`` window bounds for range vectors. The only Python loops run over the *position inside
a window* (at most the longest window's sample count), each iteration vectorised over every
(series, step) window at once; they are used where Prometheus's numerics (Kahan summation,
incremental means, recurrences) are order dependent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from promlab.errors import QueryError, go_line_col
from promlab.model import Labels
from promlab.model.value import format_float as format_float_f
from promlab.model.value import format_float_g as format_go_g
from promlab.promql.parser.ast import Expr, StringLiteral
from promlab.promql.values import F64, I64, B, EvalContext, Matrix, Scalar, String, Vector

__all__ = [
    "WindowSet",
    "format_float_f",
    "format_go_g",
    "info",
    "kahan_fold",
    "kahan_inc",
    "pair_flags",
    "pos_suffix",
    "prometheus_labels_hash",
    "reduce_windows",
    "reset_correction",
    "scalar_arg",
    "string_arg",
    "vector_out",
    "warn",
]


_xxhash: Any
try:  # Prometheus's labels.Hash() is xxhash64; use it so limit_ratio picks the same series.
    import xxhash as _xxhash
except ImportError:  # pragma: no cover - optional dependency
    _xxhash = None

# --- annotations -------------------------------------------------------------------------------

def pos_suffix(ctx: EvalContext, expr: Expr | None) -> str:
    """Prometheus's `` (line:col)`` suffix for an annotation about ``expr`` (empty without query)."""
    if expr is None or not ctx.query:
        return ""
    line, col = go_line_col(ctx.query, expr.pos.start)
    return f" ({line}:{col})"


def warn(ctx: EvalContext, message: str, expr: Expr | None = None) -> None:
    """Add ``PromQL warning: <message>`` positioned at ``expr``."""
    ctx.annotations.warn(f"PromQL warning: {message}{pos_suffix(ctx, expr)}")


def info(ctx: EvalContext, message: str, expr: Expr | None = None) -> None:
    """Add ``PromQL info: <message>`` positioned at ``expr``."""
    ctx.annotations.info(f"PromQL info: {message}{pos_suffix(ctx, expr)}")


def prometheus_labels_hash(ls: Labels) -> int:
    """Unsigned 64-bit hash of a label set as Prometheus's ``labels.Hash()`` computes it."""
    data = b"".join(k.encode() + b"\xff" + v.encode() + b"\xff" for k, v in ls.pairs)
    if _xxhash is not None:
        return int(_xxhash.xxh64_intdigest(data))
    return ls.hash & 0xFFFFFFFFFFFFFFFF  # pragma: no cover


# --- arguments -----------------------------------------------------------------------------------

def scalar_arg(args: Sequence[object], i: int, num_steps: int, default: float | None = None) -> F64:
    """Argument ``i`` as a per-step ``(T,)`` float array (a Scalar frame, or ``default``)."""
    if i >= len(args):
        if default is None:
            raise QueryError(f"missing argument {i}")
        return np.full(num_steps, default, dtype=np.float64)
    a = args[i]
    if isinstance(a, Scalar):
        return np.asarray(a.values, dtype=np.float64)
    if isinstance(a, int | float):
        return np.full(num_steps, float(a))
    raise QueryError(f"expected scalar argument at position {i}")


def string_arg(args: Sequence[object], nodes: tuple[Expr, ...], i: int) -> str:
    """Argument ``i`` as a Python string (evaluated String frame or the literal node)."""
    a = args[i] if i < len(args) else None
    if isinstance(a, String):
        return a.value
    if isinstance(a, str):
        return a
    node = nodes[i] if i < len(nodes) else None
    while node is not None and not isinstance(node, StringLiteral) and hasattr(node, "expr"):
        node = node.expr  # ParenExpr
    if isinstance(node, StringLiteral):
        return node.value
    raise QueryError(f"expected string argument at position {i}")


# --- output --------------------------------------------------------------------------------------

def vector_out(labels: list[Labels], values: F64, present: B, drop_name: B | bool | None,
               *, compact: bool = True) -> Vector:
    """Build a result Vector; with ``compact`` rows that are never present are removed."""
    n = len(labels)
    if isinstance(drop_name, bool | np.bool_):
        dn: B | None = np.full(n, bool(drop_name))
    else:
        dn = drop_name
    values = np.where(present, values, 0.0) if values.size else values
    if compact and n:
        keep = present.any(axis=1)
        if not keep.all():
            idx = np.flatnonzero(keep)
            labels = [labels[i] for i in idx]
            values = values[idx]
            present = present[idx]
            dn = dn[idx] if dn is not None else None
    return Vector(labels, values, present, dn)


# --- numerics ------------------------------------------------------------------------------------

def kahan_inc(inc: F64, s: F64, c: F64) -> tuple[F64, F64]:
    """Neumaier-compensated ``s + inc`` as Prometheus's ``kahansum.Inc`` (element-wise)."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = s + inc
        big = np.abs(s) >= np.abs(inc)
        c = c + np.where(big, (s - t) + inc, (inc - t) + s)
        inf = np.isinf(t)
        if inf.any():
            c[inf] = 0.0
    return t, c


# Rows of at least this many cells are accumulated by a loop over rows (see kahan_fold).
_ROW_LOOP_MIN = 64


def kahan_fold(block: F64) -> tuple[F64, F64]:
    """Sum and compensation of folding :func:`kahan_inc` over ``block[0], block[1], ...`` from
    ``s = c = 0``, bit for bit, without a Python loop.

    The running sum of Neumaier's algorithm does not depend on the compensation: it is the
    plain sequential sum, ``cumsum`` (``accumulate`` adds strictly in order, unlike ``sum``).
    The compensation adds each step's rounding error, a function of consecutive running sums,
    again in order. ``+ 0.0`` turns the ``-0.0`` a leading run of ``-0.0`` leaves into the
    ``+0.0`` that ``0.0 + -0.0`` gives; a sum that ends infinite has no compensation.
    """
    k = block.shape[0]
    if k == 0:
        return np.zeros(block.shape[1:]), np.zeros(block.shape[1:])
    with np.errstate(invalid="ignore", over="ignore"):
        # run[j] = the running sum after block[j]; row 0 is the 0.0 the fold starts from.
        run = np.empty((k + 1, *block.shape[1:]))
        run[0] = 0.0
        if block[0].size >= _ROW_LOOP_MIN:
            # Wide rows: a loop over rows beats accumulate's strided walk down the columns.
            for j in range(k):
                np.add(run[j], block[j], out=run[j + 1])
        else:
            np.cumsum(block, axis=0, out=run[1:])
            run += 0.0
        prev, new = run[:-1], run[1:]
        a = np.abs(prev)
        b = np.abs(block)
        keep_order = a >= b
        np.subtract(prev, new, out=a)
        a += block
        np.subtract(block, new, out=b)
        b += prev
        np.copyto(a, b, where=~keep_order)
        total = run[k].copy()
        if block[0].size >= _ROW_LOOP_MIN:
            comp = np.zeros(block.shape[1:])
            for row in a:
                comp += row
        else:
            comp = np.cumsum(a, axis=0)[-1]
        comp += 0.0
        comp[np.isinf(total)] = 0.0
    return total, comp


def take_clipped(arr: npt.NDArray[Any], idx: I64) -> npt.NDArray[Any]:
    """``arr[idx]`` with ``idx`` clipped into range (zeros of ``idx``'s shape when ``arr`` is empty)."""
    if arr.size == 0:
        return np.zeros(idx.shape, arr.dtype)
    return np.take(arr, idx, mode="clip")


def reduce_windows(ufunc: np.ufunc, data: F64, lo: I64, hi: I64) -> F64:
    """``ufunc.reduce(data[lo:hi])`` for every window (same shape as ``lo``).

    Uses ``ufunc.reduceat`` on interleaved ``(lo, hi)`` pairs; windows may overlap. Empty
    windows give an undefined value that the caller masks.
    """
    shape = lo.shape
    if lo.size == 0:
        return np.zeros(shape)
    if ufunc in _IDEMPOTENT:
        doubled = _doubling_reduce(ufunc, data, lo.ravel(), hi.ravel())
        if doubled is not None:
            return doubled.reshape(shape)
    padded = np.append(data, data.dtype.type(0))
    idx = np.empty(lo.size * 2, dtype=np.int64)
    idx[0::2] = lo.ravel()
    idx[1::2] = hi.ravel()
    np.minimum(idx, padded.size - 1, out=idx)
    out = ufunc.reduceat(padded, idx)[0::2]
    return out.reshape(shape)


#: Reductions where an element counted twice changes nothing (windows may be covered twice).
_IDEMPOTENT = (np.fmax, np.fmin, np.maximum, np.minimum)


def _doubling_reduce(ufunc: np.ufunc, data: F64, lo: I64, hi: I64) -> F64 | None:
    """:func:`reduce_windows` of an idempotent ``ufunc`` from a table of doublings, or None
    when ``reduceat`` would touch fewer elements.

    Level ``k`` of the table holds ``ufunc`` over ``data[i:i + 2**k]`` for every ``i`` (one
    pass over ``data`` from level ``k - 1``); a window of ``n`` samples is the ``ufunc`` of the
    two level-``floor(log2 n)`` entries at its start and at ``hi - 2**k``, which together
    cover it. ``reduceat`` costs the windows' total length (each sample once per window it is
    in: 240 per sample for ``[1h]`` at a 15 s step), this about one pass over ``data`` per
    level plus two gathers per window. Only the levels up to the longest window are built,
    each dropped once its windows are answered. The value of an empty window is undefined.
    """
    n = hi - lo
    longest = int(n.max())
    top = longest.bit_length() - 1  # the level of the longest window
    if top < 2 or int(n.sum()) < 2 * data.size * top + 4 * n.size:
        return None
    # floor(log2 n) per window (frexp is exact for integers below 2**53); empty ones at 0.
    level_of = np.frexp(np.maximum(n, 1).astype(np.float64))[1] - 1
    needed = np.bincount(level_of, minlength=top + 1) > 0
    out = np.empty(n.size, np.float64)
    level = data
    for k in range(top + 1):
        if k:
            h = 1 << (k - 1)
            level = ufunc(level[:-h], level[h:])  # covers data[i:i + 2**k]; 2**k - 1 shorter
        if not needed[k]:
            continue
        width = 1 << k
        if needed.sum() == 1:
            out = ufunc(np.take(level, lo, mode="clip"), np.take(level, hi - width, mode="clip"))
            break
        sel = np.flatnonzero(level_of == k)
        out[sel] = ufunc(np.take(level, lo[sel], mode="clip"),
                         np.take(level, hi[sel] - width, mode="clip"))
    return out


class WindowSet:
    """The windows of a Matrix with at least ``min_count`` samples, flattened and sorted by
    descending sample count, for position-by-position kernels.

    ``flat`` are the indexes into the ``(S, T)`` grid of those windows, ``lo``/``n`` their
    first sample index and sample count. Because of the ordering, the windows that still have
    a k-th sample are always a prefix: :meth:`positions` yields that prefix's length, so
    kernels update ``state[:cnt]`` in place without masks.
    """

    def __init__(self, m: Matrix, lo: I64, hi: I64, min_count: int = 1) -> None:
        self.shape = lo.shape
        counts = (hi - lo).ravel()
        self.mask = (counts >= min_count).reshape(lo.shape)
        flat = np.flatnonzero(self.mask.ravel())
        order = np.argsort(-counts[flat], kind="stable")
        self.flat = flat[order]
        self.lo = lo.ravel()[self.flat]
        self.n = counts[self.flat]
        self.max_n = int(self.n[0]) if self.n.size else 0
        # active[k] = number of windows with more than k samples.
        self._active = np.searchsorted(-self.n, -np.arange(self.max_n), side="left")
        self.m = m

    def positions(self, start: int = 0) -> Iterator[tuple[int, I64, int]]:
        """Yield ``(k, idx, cnt)``: the k-th sample index of the first ``cnt`` windows (the
        ones that have a k-th sample)."""
        for k in range(start, self.max_n):
            cnt = int(self._active[k])
            yield k, self.lo[:cnt] + k, cnt

    def scatter(self, vals: F64, fill: float = 0.0) -> F64:
        """Put per-window results back on the ``(S, T)`` grid."""
        out = np.full(int(np.prod(self.shape)), fill, dtype=np.float64)
        out[self.flat] = vals
        return out.reshape(self.shape)


def window_gather(ws: WindowSet, data: F64, fill: float, chunk_elems: int = 4_000_000,
                  ) -> Iterator[tuple[slice, F64]]:
    """Dense ``(chunk, max_n)`` blocks of window samples padded with ``fill`` (for sorting)."""
    if ws.max_n == 0:
        return
    last = max(data.size - 1, 0)
    start = 0
    while start < ws.flat.size:
        width = int(ws.n[start])  # windows are sorted by descending count
        per = max(1, chunk_elems // width)
        sl = slice(start, min(start + per, ws.flat.size))
        ar = np.arange(width)
        idx = ws.lo[sl, None] + ar[None, :]
        valid = ar[None, :] < ws.n[sl, None]
        block = np.where(valid, data[np.minimum(idx, last)], fill)
        yield sl, block
        start = sl.stop


def pair_flags(m: Matrix, flags: B) -> B:
    """Clear the flags (computed on ``values[1:]`` against ``values[:-1]``) that pair the
    first sample of a series with the last sample of the previous one."""
    starts = m.offsets[1:-1]
    starts = starts[(starts > 0) & (starts < m.values.size)]
    flags[starts - 1] = False
    return flags


def reset_correction(m: Matrix, lo: I64, hi: I64, base: F64 | None = None) -> F64 | None:
    """Sum of the pre-reset values of the counter resets inside every window (``None`` when
    there is no reset at all). A reset at sample ``r`` (value below its predecessor's) counts
    for the windows with ``lo < r < hi``; the drops are added in sample order, as Prometheus
    does.

    With ``base`` (one value per window) the drops are added to it one by one, as Prometheus
    adds them to ``last - first``: rounding then matches where the values' magnitudes differ
    widely (a 1e300 drop next to small ones), which a separate sum of the drops would not.
    """
    v = m.values
    if v.size < 2:
        return None
    with np.errstate(invalid="ignore"):
        flags = pair_flags(m, v[1:] < v[:-1])
    if not flags.any():
        return None
    pos = np.flatnonzero(flags)
    drops = v[pos]          # the value before the reset, at sample pos + 1
    sparse = _corrections_by_reset(m, pos, drops, lo, hi, base)
    if sparse is not None:
        return sparse
    # before[k] = resets at samples j < k; a window has the resets with lo < j < hi.
    before = np.zeros(v.size + 1, np.int32 if v.size < 2**31 else np.int64)
    np.cumsum(flags, dtype=before.dtype, out=before[2:])
    a = np.take(before, lo + 1, mode="clip")
    b = np.take(before, hi)
    nres = b - a
    if base is not None:
        return _add_in_order(base, drops, a, nres)
    corr = np.zeros(lo.shape)
    one = nres == 1
    corr[one] = drops[a[one]]
    many = nres > 1
    if many.any():
        corr[many] = reduce_windows(np.add, drops, a[many], b[many])
    return corr


def _add_in_order(base: F64, drops: F64, first: I64, count: I64) -> F64:
    """``base`` plus ``drops[first:first + count]`` of every window, added one at a time."""
    out = np.array(base, dtype=np.float64, copy=True)
    live = np.flatnonzero(count > 0)
    flat_out, flat_first, flat_count = out.reshape(-1), first.reshape(-1), count.reshape(-1)
    k = 0
    while live.size:
        flat_out[live] += drops[flat_first[live] + k]
        k += 1
        live = live[flat_count[live] > k]
    return out


def _corrections_by_reset(m: Matrix, pos: I64, drops: F64, lo: I64, hi: I64,
                          base: F64 | None = None) -> F64 | None:
    """:func:`reset_correction` from the windows each reset is in, when resets are rare (None
    when they are not, or the windows are not in sample order).

    With steps in time order every row's bounds rise, and rows follow each other in the CSR
    arrays, so the flattened ``lo`` and ``hi`` are sorted: the windows holding the reset after
    sample ``p`` (``lo <= p`` and ``p + 2 <= hi``) are one run of the flat grid, found by two
    binary searches per reset. Drops are added per window in sample order. This replaces a
    running count over every sample and two gathers per window.
    """
    starts, ends = m.window_start_ms, m.window_end_ms
    if lo.ndim != 2 or (starts.size > 1 and not (bool((np.diff(starts) >= 0).all())
                                                 and bool((np.diff(ends) >= 0).all()))):
        return None
    lo_f, hi_f = lo.ravel(), hi.ravel()
    first = np.searchsorted(hi_f, pos + 2, side="left")
    stop = np.searchsorted(lo_f, pos, side="right")
    cnt = np.maximum(stop - first, 0)
    total = int(cnt.sum())
    if total > lo_f.size // 8:
        return None
    run_start = np.cumsum(cnt) - cnt
    windows = np.repeat(first - run_start, cnt) + np.arange(total)
    corr = np.zeros(lo_f.size) if base is None else \
        np.array(base, dtype=np.float64, copy=True).reshape(-1)
    np.add.at(corr, windows, np.repeat(drops, cnt))  # unbuffered: in reset (sample) order
    return corr.reshape(lo.shape)
