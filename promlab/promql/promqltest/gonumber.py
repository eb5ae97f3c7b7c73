"""Numbers as the test scripts write them: Go's ``strconv.ParseInt(s, 0)``, then ``ParseFloat``.

Below both the series notation (:mod:`.series`) and histogram literals (:mod:`.histogram`),
which both read numbers.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_go_number"]

_INT_PREFIX = re.compile(r"^[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$")
_DEC_FLOAT = re.compile(r"^[+-]?(?:[0-9_]+\.?[0-9_]*|\.[0-9_]+)(?:[eE][+-]?[0-9_]+)?$")
_HEX_FLOAT = re.compile(r"^[+-]?0[xX](?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+)[pP][+-]?[0-9_]+$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _underscore_ok(s: str) -> bool:
    """Go's rule: underscores only between digits or after a base prefix."""
    if s[:1] in "+-" and s:
        s = s[1:]
    saw = "^"
    i = 0
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    for ch in s[i:]:
        if ch.isdigit() or (hexa and ch.lower() in "abcdef"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _parse_go_int(s: str) -> int | None:
    if not _INT_PREFIX.match(s) or ("_" in s and not _underscore_ok(s)):
        return None
    sign = -1 if s[0] == "-" else 1
    body = s.lstrip("+-").replace("_", "")
    low = body.lower()
    if low.startswith("0x"):
        n = int(body[2:], 16)
    elif low.startswith("0o"):
        n = int(body[2:], 8)
    elif low.startswith("0b"):
        n = int(body[2:], 2)
    elif len(body) > 1 and body[0] == "0":
        n = int(body[1:], 8)
    else:
        n = int(body)
    n *= sign
    if not _INT64_MIN <= n <= _INT64_MAX:
        return None
    return n


def parse_go_number(text: str) -> float:
    """Parse ``text`` like Prometheus's test runner does (``ParseInt(s, 0)`` then ``ParseFloat``).

    Raises ``ValueError`` when neither accepts it.

    Examples
    --------
    >>> parse_go_number("0x1f"), parse_go_number("1e3"), parse_go_number("-Inf")
    (31.0, 1000.0, -inf)
    """
    s = text
    if not s:
        raise ValueError("empty number")
    n = _parse_go_int(s)
    if n is not None:
        return float(n)
    low = s.lower()
    body = low.lstrip("+-") if low[:1] in "+-" else low
    signed = len(body) != len(low)
    if body in ("inf", "infinity"):
        return -math.inf if low.startswith("-") else math.inf
    if body == "nan" and not signed:
        return math.nan
    if "_" in s and not _underscore_ok(s):
        raise ValueError(f"invalid number {text!r}")
    clean = s.replace("_", "")
    if _HEX_FLOAT.match(s):
        return float.fromhex(clean)
    if _DEC_FLOAT.match(s) and any(c.isdigit() for c in s):
        try:
            return float(clean)
        except ValueError:
            pass
    raise ValueError(f"invalid number {text!r}")
