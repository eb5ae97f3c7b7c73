"""Go's number syntax in templates: what text/template's lexer takes as one number token, and
strconv's ParseUint/ParseInt (base 0) and ParseFloat, which decide what the token is.

The lexer is generous (``1e``, ``0b1.1`` and ``1__0`` are single tokens); strconv then refuses
what Go's literal syntax does not allow, so such tokens are "illegal number syntax" to the
parser rather than "bad number syntax" to the lexer.
"""

from __future__ import annotations

import re

__all__ = ["NUMBER", "parse_float", "parse_int", "parse_uint"]

#: One number token (without the imaginary ``i`` handling's second part): an optional sign, a
#: base prefix, digits of that base (``_`` anywhere), one ``.``, then ``e`` (decimal) or ``p``
#: (hex) with a sign and decimal digits, each part possibly empty, and an optional ``i``.
NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]*)?"
    r"|0[oO][0-7_]*(?:\.[0-7_]*)?|0[bB][01_]*(?:\.[01_]*)?"
    r"|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*)?)i?"
)

_DECIMAL_FLOAT = re.compile(r"(?:[0-9_]+\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9][0-9_]*)?")
_HEX_FLOAT = re.compile(r"0[xX](?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)[pP][+-]?[0-9][0-9_]*")
_DIGITS = "0123456789abcdef"


def _underscores_ok(s: str) -> bool:
    """Go's rule for ``_`` in a number: only between digits, or after a base prefix."""
    if s[:1] in ("+", "-"):
        s = s[1:]
    last = "^"  # ^ start, 0 digit or prefix, _ underscore, ! anything else
    i = 0
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1] in "bBoOxX":
        i, last, hexa = 2, "0", s[1] in "xX"
    for c in s[i:]:
        if (c.isdigit() and c.isascii()) or (hexa and c in "abcdefABCDEF"):
            last = "0"
        elif c == "_":
            if last != "0":
                return False
            last = "_"
        elif last == "_":
            return False
        else:
            last = "!"
    return last != "_"


def parse_uint(text: str) -> int | None:
    """``strconv.ParseUint(text, 0, 64)``: the value, or None for a syntax or range error."""
    s = text
    if not s:
        return None
    base = 10
    if s[0] == "0":
        if len(s) >= 3 and s[1] in "bBoOxX":
            base = {"b": 2, "o": 8, "x": 16}[s[1].lower()]
            s = s[2:]
        else:
            base, s = 8, s[1:]
    value = 0
    for c in s:
        if c == "_":
            continue
        d = _DIGITS.find(c.lower()) if c.isascii() else -1
        if d < 0 or d >= base:
            return None
        value = value * base + d
    if "_" in text and not _underscores_ok(text):
        return None
    return value if value < 2**64 else None


def parse_int(text: str) -> int | None:
    """``strconv.ParseInt(text, 0, 64)``: the value, or None for a syntax or range error."""
    neg = text[:1] == "-"
    u = parse_uint(text[1:] if text[:1] in ("+", "-") else text)
    if u is None:
        return None
    v = -u if neg else u
    return v if -(2**63) <= v < 2**63 else None


def parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)`` for what the lexer passes on (no inf or nan words): the
    value, or None for a syntax error or a number out of range (Go's ErrRange; an underflow is
    0 without error)."""
    neg = text[:1] == "-"
    s = text[1:] if text[:1] in ("+", "-") else text
    if "_" in s and not _underscores_ok(s):
        return None
    plain = s.replace("_", "")
    try:
        if _HEX_FLOAT.fullmatch(s):
            f = float.fromhex(plain)
        elif _DECIMAL_FLOAT.fullmatch(s):
            f = float(plain)
        else:
            return None
    except OverflowError:
        return None
    if f == float("inf"):
        return None
    return -f if neg else f
