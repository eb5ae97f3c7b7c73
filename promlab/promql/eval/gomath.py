"""Go's float math where its last bits differ from C's and the difference shows in PromQL.

Prometheus evaluates with Go's ``math`` package. ``math.Pow`` does not round like C's ``pow``:
it multiplies ``frexp`` mantissas by repeated squaring, so ``3 ^ 42`` differs from numpy's
``np.power`` in the last bit, which ``count_values`` labels and ``==`` expose, and which
``cos``/``tan`` of such a huge argument turn into a different number altogether.

:func:`go_parse_float` reads text as ``strconv.ParseFloat`` does (classic histogram ``le``
labels): Go's float literal syntax with ``_`` digit separators and ``0x...p`` hexadecimal, no
surrounding space, and an out-of-range value is an error rather than an infinity.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

from promlab.promql.eval.golibm import go_exp, go_log

__all__ = ["go_parse_float", "go_pow"]

F64 = npt.NDArray[np.float64]


def _odd_int(y: F64) -> npt.NDArray[np.bool_]:
    """Go's ``isOddInt``: an integer below 2**53 in magnitude whose last bit is set."""
    with np.errstate(invalid="ignore"):
        small = np.abs(y) < 2.0**53
        yi = np.where(small, y, 0.0)
        out: npt.NDArray[np.bool_] = small & (np.trunc(yi) == yi) & (np.abs(yi) % 2 == 1)
        return out


def go_pow(x: F64 | float, y: F64 | float) -> F64:
    """``math.Pow(x, y)`` elementwise (broadcasting ``x`` and ``y``).

    Special cases in Go's order (``y`` = 0, ``x`` = 1, ``y`` = 1, NaN, zero base, infinite
    exponent, infinite base, ``y`` = ±1/2, negative base with a fractional exponent, exponents
    past 2**63); the rest by Go's algorithm: ``exp(yf * log(x))`` for the fractional part of
    ``y``, repeated squaring of ``frexp(x)`` for the integer part, one ``ldexp`` at the end.
    """
    xa, ya = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    with np.errstate(all="ignore"):
        yi, yf = np.modf(np.abs(ya))[::-1]
        odd = _odd_int(ya)
        odd_neg = _odd_int(-ya)
        neg_zero = (xa == 0) & np.signbit(xa)
        conds = [
            (ya == 0) | (xa == 1),
            ya == 1,
            np.isnan(xa) | np.isnan(ya),
            (xa == 0) & (ya < 0),
            (xa == 0) & (ya > 0),
            np.isinf(ya) & (xa == -1),
            np.isinf(ya) & ((np.abs(xa) < 1) == (ya > 0)),
            np.isinf(ya),
            np.isneginf(xa) & (ya > 0),   # Pow(-0, -y) with -y < 0
            np.isneginf(xa) & (ya < 0),   # Pow(-0, -y) with -y > 0
            np.isposinf(xa) & (ya < 0),
            np.isposinf(xa) & (ya > 0),
            ya == 0.5,
            ya == -0.5,
            (yf != 0) & (xa < 0),
            (yi >= 2.0**63) & (xa == -1),
            (yi >= 2.0**63) & ((np.abs(xa) < 1) == (ya > 0)),
            yi >= 2.0**63,
        ]
        choices = [
            np.ones_like(xa), xa, np.full_like(xa, np.nan),
            np.where(neg_zero & odd, -np.inf, np.inf),
            np.where(neg_zero & odd, xa, 0.0),
            np.ones_like(xa), np.zeros_like(xa), np.full_like(xa, np.inf),
            np.where(odd_neg, -np.inf, np.inf),
            np.where(odd_neg, -0.0, 0.0),
            np.zeros_like(xa), np.full_like(xa, np.inf),
            np.sqrt(xa), 1 / np.sqrt(xa),
            np.full_like(xa, np.nan), np.ones_like(xa), np.zeros_like(xa), np.full_like(xa, np.inf),
        ]
        special = np.zeros(xa.shape, bool)
        for c in conds:
            special |= c
        out: F64 = np.select(conds, choices, default=0.0)
        regular = ~special
        if not regular.any():
            return out
        xr, yr = xa[regular], ya[regular]
        yi, yf = yi[regular], yf[regular]
        up = yf > 0.5
        yf = np.where(up, yf - 1, yf)
        yi = np.where(up, yi + 1, yi)
        a1 = np.where(yf != 0, go_exp(yf * go_log(xr)), 1.0)
        ae = np.zeros(xr.shape, np.int64)
        x1, xe = np.frexp(xr)
        xe = xe.astype(np.int64)
        i = yi.astype(np.uint64)
        live = i != 0
        while live.any():
            overflow = live & ((xe < -(1 << 12)) | (xe > (1 << 12)))
            ae = np.where(overflow, ae + xe, ae)
            live &= ~overflow
            odd_bit = live & ((i & np.uint64(1)) == 1)
            a1 = np.where(odd_bit, a1 * x1, a1)
            ae = np.where(odd_bit, ae + xe, ae)
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
        out[regular] = np.ldexp(a1, np.clip(ae, -(1 << 30), 1 << 30).astype(np.int32))
    return out


# Go float literal syntax (ParseFloat's): a mantissa of digits, "_" and one optional point, then
# an exponent; hexadecimal needs its "p" exponent. Where "_" may stand is checked separately.
_DEC_FLOAT = re.compile(r"[0-9_]*\.?[0-9_]*(?:[eE][+-]?[0-9][0-9_]*)?")
_HEX_FLOAT = re.compile(r"0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9][0-9_]*")
_DIGIT = {False: frozenset("0123456789"), True: frozenset("0123456789abcdefABCDEF")}


def _separators_ok(body: str, hexa: bool) -> bool:
    """Every ``_`` stands between two digits (a ``0x`` prefix counts as one), as Go requires."""
    digits = _DIGIT[hexa]
    for i, ch in enumerate(body):
        if ch != "_":
            continue
        after_prefix = hexa and i == 2
        before_ok = after_prefix or (i > 0 and body[i - 1] in digits and not (hexa and i < 2))
        if not before_ok or i + 1 == len(body) or body[i + 1] not in digits:
            return False
    return True


def go_parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``, or None where Go returns an error.

    Accepted: an optional sign, then ``inf``/``infinity`` (any case), or ``nan`` (any case, no
    sign), or a decimal or ``0x`` hexadecimal (with a ``p`` exponent) literal that may separate
    digits with single underscores. Rejected: spaces, other digits than ASCII ones, and finite
    literals beyond the float64 range.
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    low = body.lower()
    if low in ("inf", "infinity"):
        return -np.inf if text.startswith("-") else np.inf
    if low == "nan":
        return None if body != text else float("nan")
    hexa = _HEX_FLOAT.fullmatch(body) is not None
    if not hexa and _DEC_FLOAT.fullmatch(body) is None:
        return None
    mantissa = re.split("[pP]", body[2:])[0] if hexa else re.split("[eE]", body)[0]
    if not any(c in _DIGIT[hexa] for c in mantissa):
        return None
    if "_" in body and not _separators_ok(body, hexa):
        return None
    clean = body.replace("_", "")
    try:
        value = float.fromhex(clean) if hexa else float(clean)
    except (OverflowError, ValueError):
        return None
    if np.isinf(value):
        return None  # out of range: Go returns ±Inf with an ErrRange error
    return -value if text.startswith("-") else value
