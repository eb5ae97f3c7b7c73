"""Go's float math where its last bits differ from C's and the difference shows in PromQL.

Prometheus evaluates with Go's ``math`` package. ``math.Pow`` does not round like C's ``pow``:
it multiplies ``frexp`` mantissas by repeated squaring, so ``3 ^ 42`` differs from numpy's
``np.power`` in the last bit, which ``count_values`` labels and ``==`` expose, and which
``cos``/``tan`` of such a huge argument turn into a different number altogether.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["go_pow"]

F64 = npt.NDArray[np.float64]


def go_pow(x: F64 | float, y: F64 | float) -> F64:
    """``math.Pow(x, y)`` elementwise (broadcasting ``x`` and ``y``).

    Special cases (zeros, infinities, NaN, ``y`` = 0, ±1/2, ``x`` = 1, a negative base with a
    fractional exponent, exponents past 2**63) are the IEEE ones numpy shares with Go; the rest
    follow Go's algorithm: ``exp(yf * log(x))`` for the fractional part of ``y``, repeated
    squaring of ``frexp(x)`` for the integer part, one ``ldexp`` at the end.
    """
    xa, ya = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    with np.errstate(all="ignore"):
        out: F64 = np.power(xa, ya)
        # Go tries y == ±1/2 after zeros and infinities: Pow(-Inf, -0.5) is 0, Pow(-0, 0.5) +0.
        half = np.isfinite(xa) & (xa != 0)
        out = np.where(half & (ya == 0.5), np.sqrt(xa),
                       np.where(half & (ya == -0.5), 1 / np.sqrt(xa), out))
        yi, yf = np.modf(np.abs(ya))[::-1]
        regular = (np.isfinite(xa) & np.isfinite(ya) & (xa != 0) & (xa != 1) & (ya != 0)
                   & (ya != 1) & (np.abs(ya) != 0.5) & ~((yf != 0) & (xa < 0)) & (yi < 2.0**63))
        if not regular.any():
            return out
        xr, yr = xa[regular], ya[regular]
        yi, yf = yi[regular], yf[regular]
        up = yf > 0.5
        yf = np.where(up, yf - 1, yf)
        yi = np.where(up, yi + 1, yi)
        a1 = np.where(yf != 0, np.exp(yf * np.log(xr)), 1.0)
        ae = np.zeros(xr.shape, np.int64)
        x1, xe = np.frexp(xr)
        xe = xe.astype(np.int64)
        i = yi.astype(np.uint64)
        live = i != 0
        while live.any():
            overflow = live & ((xe < -(1 << 12)) | (xe > (1 << 12)))
            ae = np.where(overflow, ae + xe, ae)
            live &= ~overflow
            odd = live & ((i & np.uint64(1)) == 1)
            a1 = np.where(odd, a1 * x1, a1)
            ae = np.where(odd, ae + xe, ae)
            x1 = np.where(live, x1 * x1, x1)
            xe = np.where(live, xe << 1, xe)
            low = live & (x1 < 0.5)
            x1 = np.where(low, x1 + x1, x1)
            xe = np.where(low, xe - 1, xe)
            i = np.where(live, i >> np.uint64(1), i)
            live &= i != 0
        neg = yr < 0
        a1 = np.where(neg, 1 / a1, a1)
        ae = np.where(neg, -ae, ae)
        out = out.copy()
        out[regular] = np.ldexp(a1, np.clip(ae, -(1 << 30), 1 << 30).astype(np.int32))
    return out
