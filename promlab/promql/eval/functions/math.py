"""Element-wise math functions: ``abs``, ``ceil``, ``exp``, ``ln``, trigonometry, ``sgn``, ...

Each applies to every float sample of its instant-vector argument and drops the metric name
(delayed: ``drop_name`` is set and the engine removes ``__name__`` at the end).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import vector_out
from promlab.promql.eval.golibm import go_acosh, go_asinh, go_atanh, go_exp, go_log
from promlab.promql.eval.gotrig import go_acos, go_asin, go_atan, go_cos, go_sin, go_tan
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
    out: F64 = np.where(frac == 0.5, exp - 1.0, go_log(frac) * _LOG2_E + exp)
    return out


def _log10(x: F64) -> F64:
    # Go's math.Log10: Log(x) * (1/Ln10), not C's log10 (log10(0.1) is -0.9999999999999999).
    out: F64 = go_log(x) * _LOG10_E
    return out


# Go's math.Sinh for |x| <= 0.5: Hart & Cheney #2029.
_SINH_P = (-0.6307673640497716991184787251e+6, -0.8991272022039509355398013511e+5,
           -0.2894211355989563807284660366e+4, -0.2630563213397497062819489000e+2)
_SINH_Q = (-0.6307673640497716991212077277e+6, 0.1521517378790019070696485176e+5,
           -0.1736789535582336995334509110e+3)


def _sinh(x: F64) -> F64:
    # Go's math.Sinh: Exp(|x|)/2 past 21, so it overflows to ±Inf with Exp (from 709.44 on).
    a = np.abs(x)
    ex = go_exp(a)
    sq = a * a
    p0, p1, p2, p3 = _SINH_P
    q0, q1, q2 = _SINH_Q
    small = (((p3 * sq + p2) * sq + p1) * sq + p0) * a / (((sq + q2) * sq + q1) * sq + q0)
    out: F64 = np.where(a > 21, ex * 0.5, np.where(a > 0.5, (ex - 1 / ex) * 0.5, small))
    return np.where(x < 0, -out, np.where(x == 0, x, out))


def _cosh(x: F64) -> F64:
    # Go's math.Cosh: Exp(|x|)/2 past 21, else (e^x + e^-x)/2.
    a = np.abs(x)
    ex = go_exp(a)
    out: F64 = np.where(a > 21, ex * 0.5, (ex + 1 / ex) * 0.5)
    return out


# Go's math.Tanh below |x| = 0.625: Cephes' rational approximation.
_TANH_P = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


def _tanh(x: F64) -> F64:
    # Go's math.Tanh from |x| = 0.625 on: 1 - 2/(Exp(2|x|) + 1) with the sign of x, exactly
    # ±1 past log(2**127)/2. Its last bit differs from C's tanh there (tanh(-19) is
    # -0.9999999999999999 in Go, -1 in C), which changes/resets of a subquery count.
    a = np.abs(x)
    big = 1 - 2 / (go_exp(2 * a) + 1)
    big = np.where(a > 44.014845965556525, 1.0, big)
    s = x * x
    p0, p1, p2 = _TANH_P
    q0, q1, q2 = _TANH_Q
    small = x + x * s * ((p0 * s + p1) * s + p2) / (((s + q0) * s + q1) * s + q2)
    small = np.where(x == 0, x, small)
    out: F64 = np.where(a >= 0.625, np.where(x < 0, -big, big), small)
    return out


_TABLE: dict[str, Callable[[F64], F64]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": go_exp,
    "sqrt": np.sqrt,
    "ln": go_log,
    "log2": _log2,
    "log10": _log10,
    "sin": go_sin,
    "cos": go_cos,
    "tan": go_tan,
    "asin": go_asin,
    "acos": go_acos,
    "atan": go_atan,
    "sinh": _sinh,
    "cosh": _cosh,
    "tanh": _tanh,
    "asinh": go_asinh,
    "acosh": go_acosh,
    "atanh": go_atanh,
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
