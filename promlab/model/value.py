"""Sample values: the staleness marker and helpers to tell it from an ordinary NaN.

Prometheus marks the end of a series with a special NaN, bit pattern ``0x7ff0000000000002``.
It is a NaN to arithmetic but is never a query result: selectors treat a series whose latest
sample is stale as absent. An ordinary NaN is a real value.

Values print the way Prometheus prints them, with Go's shortest round-trip digits:
:func:`format_float` is ``strconv.FormatFloat(v, 'f', -1, 64)`` (API JSON sample values,
``count_values`` labels, PromQL number literals) and :func:`format_float_g` is
``strconv.FormatFloat(v, 'g', -1, 64)``, which is also Go's ``%v`` and ``%g`` of a float64
(warning texts, promqltest messages, templates).
"""

from __future__ import annotations

import math
import struct

import numpy as np
import numpy.typing as npt

__all__ = [
    "NORMAL_NAN_BITS",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "format_float",
    "format_float_g",
    "format_go_float",
    "is_stale",
    "shortest_digits",
    "stale_mask",
]

STALE_NAN_BITS = 0x7FF0000000000002
NORMAL_NAN_BITS = 0x7FF8000000000001
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale(value: float) -> bool:
    """Whether ``value`` is the staleness marker (not just any NaN)."""
    return struct.pack("<d", value) == struct.pack("<Q", STALE_NAN_BITS)


def stale_mask(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Element-wise :func:`is_stale` for a float64 array (no copy of the data)."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    mask: npt.NDArray[np.bool_] = arr.view(np.int64) == np.int64(STALE_NAN_BITS)
    return mask


def shortest_digits(v: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip ``abs(v)`` and the decimal point position.

    ``abs(v) == 0.<digits> * 10**dp``; ``v`` must be finite and non-zero.

    >>> shortest_digits(1234.5), shortest_digits(0.001), shortest_digits(1.5e16)
    (('12345', 4), ('1', -2), ('15', 17))
    """
    mant, _, exp = repr(abs(float(v))).partition("e")  # repr gives the shortest round-trip digits
    ip, _, fp = mant.partition(".")
    both = ip + ("" if fp == "0" else fp)
    digits = both.lstrip("0")
    dp = len(ip) + (int(exp) if exp else 0) - (len(both) - len(digits))
    return digits.rstrip("0") or "0", dp


def _special(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return None


def _exp_form(digits: str, dp: int, upper: bool = False) -> str:
    exp = dp - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mant}{'E' if upper else 'e'}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fixed_form(digits: str, dp: int, decimals: int) -> str:
    if dp <= 0:
        frac = ("0" * -dp + digits)[:decimals].ljust(decimals, "0")
        return "0" + ("." + frac if decimals else "")
    ip = digits[:dp].ljust(dp, "0")
    frac = digits[dp:][:decimals].ljust(decimals, "0")
    return ip + ("." + frac if decimals else "")


def format_go_float(x: float, verb: str = "g", prec: int = -1) -> str:
    """``strconv.FormatFloat(x, verb, prec, 64)`` for verbs ``e E f F g G`` (``prec=-1``: shortest).

    The one implementation behind every Go-style float in promlab (API JSON, PromQL printing,
    ``count_values`` labels, warnings, rule templates' ``printf``).

    >>> format_go_float(1234567.0), format_go_float(0.5), format_go_float(1234.5678, "g", 4)
    ('1.234567e+06', '0.5', '1235')
    """
    sp = _special(x)
    if sp is not None:
        return sp
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    lower = verb.lower()
    if lower == "f":
        if prec >= 0:
            return sign + format(abs(x), f".{prec}f")
        if x == 0:
            return sign + "0"
        d, dp = shortest_digits(x)
        return sign + _fixed_form(d, dp, max(len(d) - dp, 0))
    if lower == "e" and prec >= 0:
        return sign + format(abs(x), f".{prec}{verb}")
    if x == 0:
        digits, dp = "0", 1
    elif prec < 0:
        digits, dp = shortest_digits(x)
    else:
        p = max(prec, 1) if lower == "g" else prec + 1
        m, e = format(abs(x), f".{p - 1}e").split("e")
        digits = m.replace(".", "").rstrip("0") or "0"
        dp = int(e) + 1
    if lower == "e":
        return sign + _exp_form(digits, dp, verb == "E")
    nd = len(digits)
    if prec < 0:
        eprec = 6
    else:
        eprec = max(prec, 1)
        if eprec > nd and nd >= dp:
            eprec = nd
    if dp - 1 < -4 or dp - 1 >= eprec:
        return sign + _exp_form(digits, dp, verb == "G")
    shown = nd if prec < 0 or max(prec, 1) > dp else max(prec, 1)
    return sign + _fixed_form(digits, dp, max(shown - dp, 0))


def format_float(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest digits, never an exponent.

    How Prometheus writes sample values in API JSON, ``count_values`` label values and number
    literals in printed PromQL.

    >>> format_float(1.5), format_float(1e21), format_float(1e-7), format_float(float("-inf"))
    ('1.5', '1000000000000000000000', '0.0000001', '-Inf')
    """
    return format_go_float(v, "f")


def format_float_g(v: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'g', -1, 64)`` (= ``%v``/``%g`` of a float64).

    Shortest digits; the exponent form (``1e+06``, ``1.5e-05``) when the decimal exponent is
    below -4 or at least 6 (strconv's rule for the shortest precision).

    >>> format_float_g(1e6), format_float_g(123456.0), format_float_g(0.0001), format_float_g(1.5e-5)
    ('1e+06', '123456', '0.0001', '1.5e-05')
    """
    return format_go_float(v, "g")
