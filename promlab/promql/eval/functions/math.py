"""Element-wise math functions: ``abs``, ``ceil``, ``exp``, ``ln``, trigonometry, ``sgn``, ...

Each applies to every float sample of its instant-vector argument and drops the metric name
(delayed: ``drop_name`` is set and the engine removes ``__name__`` at the end).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import vector_out
from promlab.promql.values import F64, Vector

__all__ = ["apply_elementwise", "function"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()


def apply_elementwise(call: FunctionCall, fn: Callable[[F64], F64]) -> Vector:
    """Apply ``fn`` to the values of the first argument, keeping labels, dropping the name."""
    v = call.args[0]
    assert isinstance(v, Vector)
    with np.errstate(all="ignore"):
        out = fn(np.asarray(v.values, dtype=np.float64))
    return vector_out(list(v.labels), out, v.present.copy(), True, compact=False)


def _sgn(x: F64) -> F64:
    return np.where(x < 0, -1.0, np.where(x > 0, 1.0, x))


# Go's constants, rounded once from their exact values (as Go's constant arithmetic does).
_LOG2_E = 1.44269504088896340735992468100189214  # 1/Ln2
_LOG10_E = 0.434294481903251827651128918916605082  # 1/Ln10


def _log2(x: F64) -> F64:
    # Go's math.Log2: Log(frac)/Ln2 + exp, exact for powers of two. It differs from C's log2 in
    # the last bit (log2(2.5)), which count_values and == expose.
    frac, exp = np.frexp(x)
    out: F64 = np.where(frac == 0.5, exp - 1.0, np.log(frac) * _LOG2_E + exp)
    return out


def _ln(x: F64) -> F64:
    # Go's math.Log on amd64 (its assembly version, which Prometheus's release builds run) does
    # not normalise subnormal inputs: it reads the mantissa bits as 0.5 + m/2**53 and the
    # exponent as -1022, so ln(5e-324) is -1023 ln 2 = -709.0895657128241, not -744.44.
    x = np.asarray(x, dtype=np.float64)
    out: F64 = np.log(x)
    sub = (x > 0) & (x < 2.2250738585072014e-308)
    if sub.any():
        mant = x[sub].view(np.uint64) & np.uint64((1 << 52) - 1)
        f1 = (mant | np.uint64(0x3FE << 52)).view(np.float64)
        k = np.full(f1.shape, -1022.0)
        low = f1 < math.sqrt(2) / 2
        k[low] -= 1
        f1 = np.where(low, f1 * 2, f1)
        out = np.array(out, copy=True)
        out[sub] = k * math.log(2) + np.log(f1)
    return out


def _log10(x: F64) -> F64:
    # Go's math.Log10: Log(x) * (1/Ln10), not C's log10 (log10(0.1) is -0.9999999999999999).
    out: F64 = _ln(x) * _LOG10_E
    return out


# Go's math.Sinh for |x| <= 0.5: Hart & Cheney #2029.
_SINH_P = (-0.6307673640497716991184787251e+6, -0.8991272022039509355398013511e+5,
           -0.2894211355989563807284660366e+4, -0.2630563213397497062819489000e+2)
_SINH_Q = (-0.6307673640497716991212077277e+6, 0.1521517378790019070696485176e+5,
           -0.1736789535582336995334509110e+3)


def _sinh(x: F64) -> F64:
    # Go's math.Sinh: Exp(|x|)/2 past 21, so it overflows to ±Inf where C's sinh still has
    # ~710.4 as its largest argument.
    a = np.abs(x)
    ex = np.exp(a)
    sq = a * a
    p0, p1, p2, p3 = _SINH_P
    q0, q1, q2 = _SINH_Q
    small = (((p3 * sq + p2) * sq + p1) * sq + p0) * a / (((sq + q2) * sq + q1) * sq + q0)
    out: F64 = np.where(a > 21, ex * 0.5, np.where(a > 0.5, (ex - 1 / ex) * 0.5, small))
    return np.where(x < 0, -out, np.where(x == 0, x, out))


def _cosh(x: F64) -> F64:
    # Go's math.Cosh: Exp(|x|)/2 past 21, else (e^x + e^-x)/2.
    a = np.abs(x)
    ex = np.exp(a)
    out: F64 = np.where(a > 21, ex * 0.5, (ex + 1 / ex) * 0.5)
    return out


def _tanh(x: F64) -> F64:
    # Go's math.Tanh from |x| = 0.625 on: 1 - 2/(Exp(2|x|) + 1) with the sign of x, exactly
    # ±1 past log(2**127)/2. Its last bit differs from C's tanh there (tanh(-19) is
    # -0.9999999999999999 in Go, -1 in C), which changes/resets of a subquery count.
    a = np.abs(x)
    with np.errstate(over="ignore"):
        big = 1 - 2 / (np.exp(2 * a) + 1)
    big = np.where(a > 44.014845965556525, 1.0, big)
    out: F64 = np.where(a >= 0.625, np.where(x < 0, -big, big), np.tanh(x))
    return out


_TABLE: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "ln": _ln,
    "log2": _log2,
    "log10": _log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": _sinh,
    "cosh": _cosh,
    "tanh": _tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "rad": lambda x: x * np.pi / 180,
    "deg": lambda x: x * 180 / np.pi,
    "sgn": _sgn,
}


def _make(fn: Callable[[F64], F64]) -> Callable[[FunctionCall], Vector]:
    def impl(call: FunctionCall) -> Vector:
        return apply_elementwise(call, fn)

    return impl


for _name, _fn in _TABLE.items():
    _impl = _make(_fn)
    _impl.__name__ = f"func_{_name}"
    _impl.__doc__ = f"``{_name}(v instant-vector)``: element-wise, drops the metric name."
    function(_name)(_impl)
