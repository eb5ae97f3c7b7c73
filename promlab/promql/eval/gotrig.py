"""Go's ``math`` trigonometry, bit for bit: ``Sin``, ``Cos``, ``Tan``, ``Atan``, ``Asin``,
``Acos`` and ``Atan2``.

Go computes them in Go (no assembly on amd64) with Cephes' polynomials: the argument is reduced
to an octant by ``x * (4/Pi)`` and an exact three-part ``Pi/4``, or from ``2**29`` on by
Payne-Hanek reduction against 1,216 bits of ``4/Pi``, which C's libm does differently in the
last bit and, for arguments such as ``time()``, in more. ``Atan`` reduces to ``[0, 0.66]``
with ``tan(3 Pi/8)``; ``Asin``/``Acos``/``Atan2`` are built on it. Element-wise on float64.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["go_acos", "go_asin", "go_atan", "go_atan2", "go_cos", "go_sin", "go_tan"]

F64 = npt.NDArray[np.float64]

_PI = 3.141592653589793
_FOUR_OVER_PI = 1.2732395447351628  # the constant 4/Pi rounded once, as Go's compiler does
_PI4 = 0.7853981633974483  # Pi/4
_PI4A, _PI4B, _PI4C = 7.85398125648498535156e-1, 3.77489470793079817668e-8, \
    2.69515142907905952645e-15  # Pi/4 in three parts (the first two exact in 30 bits)
_REDUCE_THRESHOLD = float(1 << 29)

_SIN = (1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
        -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
_COS = (-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
        2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)
_TAN_P = (-1.30936939181383777646e4, 1.15351664838587416140e6, -1.79565251976484877988e7)
_TAN_Q = (1.36812963470692954678e4, -1.32089234440210967447e6, 2.50083801823357915839e7,
          -5.38695755929454629881e7)


# --- Payne-Hanek -------------------------------------------------------------------------------

def _four_over_pi_bits(frac_bits: int) -> int:
    """floor(4/Pi * 2**frac_bits), from Pi by Machin's formula in integers (64 guard bits)."""
    prec = frac_bits + 64
    one = 1 << prec

    def arctan_inv(n: int) -> int:  # atan(1/n) * 2**prec
        total, term, k, sign = 0, one // n, 1, 1
        n2 = n * n
        while term:
            total += sign * (term // k)
            term //= n2
            k += 2
            sign = -sign
        return total

    pi = 16 * arctan_inv(5) - 4 * arctan_inv(239)
    return (4 << (prec + frac_bits)) // pi


_WORDS = 20  # one integer word (4/Pi = 1.27...) and 19 of fraction: 1,280 bits
_M_PI4 = _four_over_pi_bits(64 * (_WORDS - 1))
_MASK64 = (1 << 64) - 1


def _trig_reduce(x: float) -> tuple[int, float]:
    """Go's ``trigReduce`` for ``x >= 2**29``: the octant (mod 8, odd ones moved on) and the
    remainder times Pi/4, from a 192-bit window of 4/Pi times the 53-bit mantissa."""
    bits = int(np.float64(x).view(np.uint64))
    exp = ((bits >> 52) & 0x7FF) - 1023 - 52
    mant = (bits & ((1 << 52) - 1)) | (1 << 52)
    offset = exp + 61  # the window's first bit, counted from the top of _M_PI4
    window = (_M_PI4 >> (64 * _WORDS - offset - 192)) & ((1 << 192) - 1)
    prod = ((window * mant) >> 64) & ((1 << 128) - 1)  # Go's (hi, lo); lower bits dropped
    hi, lo = prod >> 64, prod & _MASK64
    j = hi >> 61
    frac = ((hi << 3) | (lo >> 61)) & _MASK64
    lz = 64 - frac.bit_length()
    e = 1023 - (lz + 1)
    mantissa = (((frac << (lz + 1)) | (lo >> (64 - (lz + 1)))) & _MASK64) >> 12
    z = float(np.uint64(mantissa | (e << 52)).view(np.float64))
    if j & 1:
        j = (j + 1) & 7
        z -= 1.0
    return j, z * _PI4


def _octants(x: F64) -> tuple[npt.NDArray[np.int64], F64]:
    """Octant j (0..7, even) and remainder z of ``x >= 0`` as sin/cos/tan reduce it."""
    shape, x = x.shape, x.reshape(-1)
    small = x < _REDUCE_THRESHOLD
    jf = np.floor(np.where(small, x, 0.0) * _FOUR_OVER_PI)
    j = jf.astype(np.int64)
    odd = (j & 1) == 1
    j = np.where(odd, j + 1, j)
    y = np.where(odd, jf + 1, jf)
    z = ((x - y * _PI4A) - y * _PI4B) - y * _PI4C
    big = ~small & np.isfinite(x)
    if big.any():
        # Exact reduction is integer arithmetic per value: once per distinct one (a range
        # query's time() repeats its steps' values in every series).
        vals, inv = np.unique(x[big], return_inverse=True)
        red = [_trig_reduce(v) for v in vals.tolist()]
        j[big] = np.fromiter((o for o, _ in red), np.int64, len(red))[inv.reshape(-1)]
        z[big] = np.fromiter((r for _, r in red), np.float64, len(red))[inv.reshape(-1)]
    return j.reshape(shape), z.reshape(shape)


def _sin_poly(z: F64, zz: F64) -> F64:
    p = np.full(z.shape, _SIN[0])
    for c in _SIN[1:]:
        p = p * zz + c
    out: F64 = z + z * zz * p
    return out


def _cos_poly(zz: F64) -> F64:
    p = np.full(zz.shape, _COS[0])
    for c in _COS[1:]:
        p = p * zz + c
    out: F64 = 1.0 - 0.5 * zz + zz * zz * p
    return out


def go_sin(x: F64) -> F64:
    """``math.Sin``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        j, z = _octants(np.abs(x))
        sign = x < 0
        sign ^= (j & 7) > 3
        j = (j & 7) % 4
        zz = z * z
        y = np.where((j == 1) | (j == 2), _cos_poly(zz), _sin_poly(z, zz))
        out: F64 = np.where(sign, -y, y)
        out = np.where((x == 0) | np.isnan(x), x, out)
        out = np.where(np.isinf(x), np.nan, out)
    return out


def go_cos(x: F64) -> F64:
    """``math.Cos``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        j, z = _octants(np.abs(x))
        j = j & 7
        sign = j > 3
        j = j % 4
        sign ^= j > 1
        zz = z * z
        y = np.where((j == 1) | (j == 2), _sin_poly(z, zz), _cos_poly(zz))
        out: F64 = np.where(sign, -y, y)
        out = np.where(np.isnan(x) | np.isinf(x), np.nan, out)
    return out


def go_tan(x: F64) -> F64:
    """``math.Tan``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        j, z = _octants(np.abs(x))
        zz = z * z
        p0, p1, p2 = _TAN_P
        q1, q2, q3, q4 = _TAN_Q
        rat = zz * ((p0 * zz + p1) * zz + p2) / ((((zz + q1) * zz + q2) * zz + q3) * zz + q4)
        y = np.where(zz > 1e-14, z + z * rat, z)
        y = np.where((j & 2) == 2, -1 / y, y)
        out: F64 = np.where(x < 0, -y, y)
        out = np.where((x == 0) | np.isnan(x), x, out)
        out = np.where(np.isinf(x), np.nan, out)
    return out


# --- arctangent and what is built on it ------------------------------------------------------

_XATAN_P = (-8.750608600031904122785e-01, -1.615753718733365076637e+01,
            -7.500855792314704667340e+01, -1.228866684490136173410e+02,
            -6.485021904942025371773e+01)
_XATAN_Q = (2.485846490142306297962e+01, 1.650270098316988542046e+02,
            4.328810604912902668951e+02, 4.853903996359136964868e+02,
            1.945506571482613964425e+02)
_MOREBITS = 6.123233995736765886130e-17  # Pi/2 = float64(Pi/2) + _MOREBITS
_HALF_MOREBITS = 3.061616997868383e-17
_TAN3PIO8 = 2.41421356237309504880


def _xatan(x: F64) -> F64:
    z = x * x
    p = np.full(z.shape, _XATAN_P[0])
    for c in _XATAN_P[1:]:
        p = p * z + c
    q = z + _XATAN_Q[0]
    for c in _XATAN_Q[1:]:
        q = q * z + c
    z = z * p / q
    out: F64 = x * z + x
    return out


def _satan(x: F64) -> F64:
    """atan of ``x >= 0`` (NaN stays NaN)."""
    mid = _PI4 + _xatan((x - 1) / (x + 1)) + _HALF_MOREBITS
    big = _PI / 2 - _xatan(1 / x) + _MOREBITS
    out: F64 = np.where(x <= 0.66, _xatan(x), np.where(x > _TAN3PIO8, big, mid))
    return out


def go_atan(x: F64) -> F64:
    """``math.Atan``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = _satan(np.abs(x))
        out: F64 = np.where(x == 0, x, np.where(x < 0, -a, a))
        out = np.where(np.isnan(x), x, out)
    return out


def go_asin(x: F64) -> F64:
    """``math.Asin``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = np.abs(x)
        temp = np.sqrt(1 - a * a)
        y = np.where(a > 0.7, _PI / 2 - _satan(temp / a), _satan(a / temp))
        out: F64 = np.where(x < 0, -y, y)
        out = np.where(a > 1, np.nan, out)
        out = np.where((x == 0) | np.isnan(x), x, out)
    return out


def go_acos(x: F64) -> F64:
    """``math.Acos``: Pi/2 - Asin(x)."""
    out: F64 = _PI / 2 - go_asin(x)
    return out


def go_atan2(y: F64 | float, x: F64 | float) -> F64:
    """``math.Atan2(y, x)`` (broadcasting)."""
    ya, xa = np.broadcast_arrays(np.asarray(y, np.float64), np.asarray(x, np.float64))
    with np.errstate(all="ignore"):
        q = go_atan(ya / xa)
        out: F64 = np.where(xa < 0, np.where(q <= 0, q + _PI, q - _PI), q)
        half = np.copysign(_PI / 2, ya)
        x_pos_inf = np.isposinf(xa)
        y_inf = np.isinf(ya)
        inf_x = np.where(x_pos_inf, np.where(y_inf, np.copysign(_PI4, ya), np.copysign(0.0, ya)),
                         np.where(y_inf, np.copysign(2.356194490192345, ya),  # 3Pi/4
                                  np.copysign(_PI, ya)))
        conds = [np.isnan(ya) | np.isnan(xa), ya == 0, xa == 0, np.isinf(xa), y_inf]
        zero_y = np.where((xa >= 0) & ~np.signbit(xa), np.copysign(0.0, ya),
                          np.copysign(_PI, ya))
        choices = [np.full(out.shape, np.nan), zero_y, half, inf_x, half]
        out = np.select(conds, choices, default=out)
    return out
