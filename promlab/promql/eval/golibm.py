"""Go's ``math.Exp`` and ``math.Log`` as Prometheus's amd64 builds run them, bit for bit.

On amd64 Go replaces both with assembly (``archExp``, ``archLog``), and neither rounds like C's
``exp``/``log``. ``archExp`` reduces ``x`` by ``k = round(x log2 e)`` multiples of ln 2, sums a
Taylor series of ``r/16``, squares four times and scales by ``2**k``; the scaling step refuses a
``k`` of 1024, so ``exp(709.5)`` is ``+Inf`` (C: 1.35e308), and ``sinh``/``cosh`` overflow there
too. Its multiply-adds are fused where the CPU has AVX and FMA (Go's ``useFMA``), which changes
last bits; :func:`fma` emulates the fused operation with error-free transformations.
``archLog`` is fdlibm's ``log`` over ``frexp`` without normalising subnormal inputs.
``Log1p`` (fdlibm's, in Go) and the inverse hyperbolic functions built on these follow.

Everything here works element-wise on float64 arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["USE_FMA", "fma", "go_acosh", "go_asinh", "go_atanh", "go_exp", "go_log", "go_log1p"]

F64 = npt.NDArray[np.float64]


def _cpu_has_avx_fma() -> bool:
    """Go's ``useFMA`` (``cpu.X86.HasAVX && cpu.X86.HasFMA``) from Linux's CPU flags; assumed
    where they cannot be read (every x86-64 CPU of the last decade has both)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return "avx" in flags and "fma" in flags
    except OSError:
        pass
    return True


#: Whether :func:`go_exp` takes archExp's fused (AVX/FMA) path, as Go does on this CPU.
USE_FMA = _cpu_has_avx_fma()

# --- error-free transformations ------------------------------------------------------------------

_SPLITTER = 134217729.0  # 2**27 + 1 (Veltkamp)


def _two_sum(a: F64, b: F64) -> tuple[F64, F64]:
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a: F64) -> tuple[F64, F64]:
    ca = _SPLITTER * a
    hi = ca - (ca - a)
    return hi, a - hi


def _two_prod(a: F64, b: F64, b_split: tuple[F64, F64] | None = None) -> tuple[F64, F64]:
    """``a * b`` as the rounded product and its exact error (``b_split``: ``b``'s Veltkamp halves
    when ``b`` is shared by several products)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b) if b_split is None else b_split
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _add_round_to_odd(a: F64, b: F64) -> F64:
    """``a + b`` rounded to odd: exact sums stay, inexact ones take the neighbour whose last
    mantissa bit is set."""
    s, e = _two_sum(a, b)
    even = (s.view(np.int64) & 1) == 0
    fix = (e != 0) & even
    if fix.any():
        s = np.where(fix, np.nextafter(s, np.where(e > 0, np.inf, -np.inf)), s)
    return s


def fma(a: F64 | float, b: F64 | float, c: F64 | float,
        b_split: tuple[F64, F64] | None = None) -> F64:
    """``a * b + c`` rounded once (Boldo and Melquiond's emulation through rounding to odd),
    for operands whose products neither overflow nor underflow (all this module needs)."""
    a, b, c = (np.asarray(v, dtype=np.float64) for v in (a, b, c))
    with np.errstate(all="ignore"):
        uh, ul = _two_prod(a, b, b_split)
        th, tl = _two_sum(c, uh)
        out: F64 = th + _add_round_to_odd(tl, ul)
    return out


# --- archExp -------------------------------------------------------------------------------------

_LOG2E = float("1.4426950408889634073599246810018920")
_LN2U = float("0.69314718055966295651160180568695068359375")
_LN2L = float("0.28235290563031577122588448175013436025525412068e-12")
_EXP_OVERFLOW = float("7.09782712893384e+02")
# Taylor coefficients 1/7! ... 1/3!, then 1/2 and 1 (archExp's exprodata, highest first).
_EXP_TAYLOR = tuple(float(t) for t in (
    "2.4801587301587301587e-5", "1.9841269841269841270e-4", "1.3888888888888888889e-3",
    "8.3333333333333333333e-3", "4.1666666666666666667e-2", "1.6666666666666666667e-1",
    "0.5", "1.0"))


#: Elements :func:`go_exp` computes at a time: its hundred-odd array passes (the emulated fused
#: multiply-adds) then stay in the CPU's caches: 1 M values in 0.23 s instead of 0.39 s.
EXP_BLOCK = 1 << 15


def go_exp(x: F64 | float, *, use_fma: bool | None = None) -> F64:
    """``math.Exp(x)`` as Go's amd64 assembly computes it (``use_fma`` defaults to
    :data:`USE_FMA`)."""
    fused = USE_FMA if use_fma is None else use_fma
    x = np.asarray(x, dtype=np.float64)
    if x.size <= EXP_BLOCK:
        return _go_exp(x, fused)
    flat = x.reshape(-1)
    out = np.empty(flat.shape)
    for lo in range(0, flat.shape[0], EXP_BLOCK):
        out[lo:lo + EXP_BLOCK] = _go_exp(flat[lo:lo + EXP_BLOCK], fused)
    return out.reshape(x.shape)


def _go_exp(x: F64, fused: bool) -> F64:
    """:func:`go_exp` of the array ``x``, in one go."""
    out = np.zeros(x.shape)
    with np.errstate(all="ignore"):
        # Only arguments that neither overflow nor scale below 2**-1074 are computed.
        live = (x <= _EXP_OVERFLOW) & (x > -746.0)
        v = x[live]
        # CVTSD2SL: to the nearest integer, ties to even
        k = np.rint(v * _LOG2E)
        if fused:
            r = fma(-k, _LN2U, v)
            r = fma(-k, _LN2L, r)
        else:
            r = (v - k * _LN2U) - k * _LN2L
        r = r * 0.0625
        r_split = _split(r)
        p = np.full(v.shape, _EXP_TAYLOR[0])
        for coef in _EXP_TAYLOR[1:]:
            p = fma(p, r, coef, r_split) if fused else p * r + coef
        e = r * p  # e**(r/16) - 1
        for _ in range(3):
            e = e * (e + 2.0)  # (1 + e)**2 - 1
        e = fma(e, e + 2.0, 1.0) if fused else e * (e + 2.0) + 1.0
        # e * 2**k; at k = 1024 the assembly gives up (+Inf), and below 2**-1022 it scales
        # in two steps so that the result rounds once into the subnormals
        kk = k.astype(np.int64)
        res = np.where(kk > -1023, e * np.ldexp(1.0, np.maximum(kk, -1022)),
                       (e * np.ldexp(1.0, np.maximum(kk, -1075) + 1022)) * 2.0**-1022)
        res[kk >= 1024] = np.inf
        res[kk < -1075] = 0.0
        out[live] = res
        out[x > _EXP_OVERFLOW] = np.inf
        special = np.isnan(x) | np.isposinf(x)
        out[special] = x[special]
    return out


# --- archLog -------------------------------------------------------------------------------------

_HSQRT2 = float("7.07106781186547524401e-01")
_LN2HI = float("6.93147180369123816490e-01")
_LN2LO = float("1.90821492927058770002e-10")
_L1, _L2, _L3, _L4, _L5, _L6, _L7 = (float(v) for v in (
    "6.666666666666735130e-01", "3.999999999940941908e-01", "2.857142874366239149e-01",
    "2.222219843214978396e-01", "1.818357216161805012e-01", "1.531383769920937332e-01",
    "1.479819860511658591e-01"))


def go_log(x: F64 | float) -> F64:
    """``math.Log(x)`` as Go's amd64 assembly computes it: fdlibm's reduction and polynomial
    with ``frexp`` read straight from the bits (a subnormal's exponent is taken as -1022)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        bits = x.view(np.uint64)
        f1 = ((bits & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(0x3FE0000000000000)) \
            .view(np.float64)
        k = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.float64) - 1022.0
        low = f1 <= _HSQRT2  # the assembly's cmpnlt: sqrt(2)/2 itself is doubled too
        k = k - np.where(low, 1.0, 0.0)
        f = f1 * np.where(low, 2.0, 1.0) - 1.0
        s = f / (2.0 + f)
        s2 = s * s
        s4 = s2 * s2
        t1 = s2 * (((_L7 * s4 + _L5) * s4 + _L3) * s4 + _L1)
        t2 = s4 * ((_L6 * s4 + _L4) * s4 + _L2)
        hfsq = 0.5 * f * f
        out: F64 = k * _LN2HI - ((hfsq - (s * (hfsq + (t1 + t2)) + k * _LN2LO)) - f)
        out = np.where(x == 0, -np.inf, out)
        out = np.where(np.signbit(x) & (x != 0), np.nan, out)
        out = np.where(np.isposinf(x) | np.isnan(x), x, out)
    return out


# --- Log1p and the inverse hyperbolic functions (Go code over Log, Log1p and Sqrt) ---------------

_SQRT2M1 = float("4.142135623730950488017e-01")
_SQRT2HALFM1 = float("-2.928932188134524755992e-01")
_TWO_THIRDS = float("0.66666666666666666")
_LN2 = float("6.93147180559945286227e-01")


def go_log1p(x: F64 | float) -> F64:
    """``math.Log1p(x)``: fdlibm's ``log1p`` (a correction term for ``1 + x``, then ``archLog``'s
    polynomial)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        ax = np.abs(x)
        direct = (ax < _SQRT2M1) & (x > _SQRT2HALFM1)  # k = 0, f = x
        u = np.where(ax < 2.0**53, 1.0 + x, x)
        iu = u.view(np.uint64)
        k = ((iu >> np.uint64(52)).astype(np.int64) - 1023).astype(np.float64)
        c = np.where(k > 0, 1.0 - (u - x), x - (u - 1.0)) / u
        c = np.where(ax < 2.0**53, c, 0.0)
        frac = iu & np.uint64(0x000FFFFFFFFFFFFF)
        low = frac < np.uint64(0x0006A09E667F3BCD)
        un = np.where(low, (frac | np.uint64(0x3FF0000000000000)).view(np.float64),
                      (frac | np.uint64(0x3FE0000000000000)).view(np.float64))
        k = np.where(low, k, k + 1)
        frac = np.where(low, frac, (np.uint64(0x0010000000000000) - frac) >> np.uint64(2))
        f = np.where(direct, x, un - 1.0)
        k = np.where(direct, 0.0, k)
        c = np.where(direct, 0.0, c)
        flat = ~direct & (frac == 0)  # |f| < 2**-20
        hfsq = 0.5 * f * f
        # |f| < 2**-20: no division
        r0 = hfsq * (1.0 - _TWO_THIRDS * f)
        tiny_f = np.where(k == 0, f - r0, k * _LN2HI - ((r0 - (k * _LN2LO + c)) - f))
        tiny_f = np.where(f == 0, np.where(k == 0, 0.0, k * _LN2HI + (c + k * _LN2LO)), tiny_f)
        s = f / (2.0 + f)
        z = s * s
        r = z * (_L1 + z * (_L2 + z * (_L3 + z * (_L4 + z * (_L5 + z * (_L6 + z * _L7))))))
        poly = np.where(k == 0, f - (hfsq - s * (hfsq + r)),
                        k * _LN2HI - ((hfsq - (s * (hfsq + r) + (k * _LN2LO + c))) - f))
        out: F64 = np.where(flat, tiny_f, poly)
        out = np.where(ax < 2.0**-29, np.where(ax < 2.0**-54, x, x - x * x * 0.5), out)
        out = np.where(x == -1, -np.inf, out)
        out = np.where(np.isposinf(x), np.inf, out)
        out = np.where((x < -1) | np.isnan(x), np.nan, out)
    return out


def go_asinh(x: F64 | float) -> F64:
    """``math.Asinh(x)``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = np.abs(x)
        t = np.where(a > 2.0**28, go_log(a) + _LN2,
                     np.where(a > 2, go_log(2 * a + 1 / (np.sqrt(a * a + 1) + a)),
                              np.where(a < 2.0**-28, a,
                                       go_log1p(a + a * a / (1 + np.sqrt(1 + a * a))))))
        out: F64 = np.where(x < 0, -t, np.where(x == 0, x, t))
        out = np.where(np.isnan(x) | np.isinf(x), x, out)
    return out


def go_acosh(x: F64 | float) -> F64:
    """``math.Acosh(x)``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        t = x - 1
        out: F64 = np.where(x >= 2.0**28, go_log(x) + _LN2,
                            np.where(x > 2, go_log(2 * x - 1 / (x + np.sqrt(x * x - 1))),
                                     go_log1p(t + np.sqrt(2 * t + t * t))))
        out = np.where(x == 1, 0.0, out)
        out = np.where((x < 1) | np.isnan(x), np.nan, out)
    return out


def go_atanh(x: F64 | float) -> F64:
    """``math.Atanh(x)``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        a = np.abs(x)
        twice = a + a
        t = np.where(a < 2.0**-28, a,
                     np.where(a < 0.5, 0.5 * go_log1p(twice + twice * a / (1 - a)),
                              0.5 * go_log1p(twice / (1 - a))))
        out: F64 = np.where(x < 0, -t, np.where(x == 0, x, t))
        out = np.where(x == 1, np.inf, np.where(x == -1, -np.inf, out))
        out = np.where((a > 1) | np.isnan(x), np.nan, out)
    return out
