"""Lexical pieces shared by the sample and comment grammars: the line error, escapes, numbers.

:mod:`promlab.exposition.syntax` (sample lines) and :mod:`promlab.exposition.comments`
(``#`` lines) build on these: :class:`LineError` carries a plain reason (the parser adds the
line number), :func:`unescape` reads the escapes of label values and HELP text,
:func:`parse_float` and :func:`parse_timestamp` read value and timestamp tokens as Prometheus
does (Go's ``ParseFloat``, text-format integer milliseconds, OpenMetrics float seconds).
"""

from __future__ import annotations

import math
import re

__all__ = [
    "LABEL_NAME",
    "METRIC_NAME",
    "QUOTED",
    "LineError",
    "parse_float",
    "parse_timestamp",
    "seconds_to_ms",
    "shown",
    "unescape",
]

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
"""A legacy (unquoted) metric name."""
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
"""A legacy (unquoted) label name."""
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
"""A double-quoted string (group 1: its raw, still escaped, content)."""
_ESCAPE = re.compile(r"\\(.)", re.S)
# Go's ParseFloat: a sign is allowed before numbers and Inf/Infinity, not before NaN.
_FLOAT = re.compile(
    r"(?:[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN])\Z"
)
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INT = re.compile(r"[0-9]+\Z")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class LineError(ValueError):
    """A malformed line; the message is the reason (the parser adds the line number)."""


def unescape(raw: str, strict: bool, what: str) -> str:
    """``raw`` with its escapes read (``\\\\``, ``\\"``, ``\\n``); another escape is kept
    verbatim, or with ``strict`` an error naming ``what``."""
    if "\\" not in raw:
        return raw

    def sub(m: re.Match[str]) -> str:
        c = m.group(1)
        rep = _ESCAPES.get(c)
        if rep is not None:
            return rep
        if strict:
            raise LineError(f"invalid escape sequence '\\{c}' in {what}")
        return m.group(0)

    return _ESCAPE.sub(sub, raw)


def shown(token: str) -> str:
    """A token for an error message (the line itself is printed after it)."""
    return repr(token) if len(token) <= 40 else repr(token[:37] + "...")


def parse_float(token: str, what: str = "value") -> float:
    """Parse a sample value (Go ``ParseFloat`` syntax: decimals, exponents, NaN, ±Inf).

    Like Go (and so Prometheus), a finite literal beyond the float64 range is an error rather
    than ±Inf, and NaN takes no sign.
    """
    if not _FLOAT.match(token):
        raise LineError(f"invalid {what} {shown(token)}")
    value = float(token)
    if math.isinf(value) and token.lstrip("+-")[:1] not in ("i", "I"):
        raise LineError(f"{what} {shown(token)} out of the float64 range")
    return value


def parse_timestamp(token: str, openmetrics: bool) -> int:
    """Parse a timestamp to int milliseconds.

    Text format: unsigned integer milliseconds up to int64 max (Prometheus's lexer takes
    ``[0-9]+`` only: a sign, a fraction or an exponent fails the scrape). OpenMetrics: float
    seconds, converted to ms as Prometheus does (``int64(ts * 1000)``: the float product
    truncated toward zero, so ``1.001`` is 1000 ms, as ``1.001 * 1000`` is ``1000.999…``).
    """
    if openmetrics:
        if not _REAL.match(token):
            raise LineError(f"invalid timestamp {token!r}")
        return seconds_to_ms(float(token))
    if not _INT.match(token):
        raise LineError(f"invalid timestamp {shown(token)} (the text format takes unsigned "
                        "integer milliseconds)")
    ts = int(token)
    if ts > _INT64_MAX:
        raise LineError(f"timestamp {shown(token)} out of int64 range")
    return ts


def seconds_to_ms(seconds: float) -> int:
    """Float seconds to int ms (see :func:`parse_timestamp`).

    A time beyond the int64 range of milliseconds does not fail the page: Prometheus converts
    it to int64 min (Go's float-to-int conversion on amd64), a sample every store drops as too
    old. It becomes int64 min + 1 here, as int64 min is the page's "no timestamp" sentinel.
    """
    if math.isnan(seconds) or math.isinf(seconds):
        raise LineError(f"invalid timestamp {seconds!r}")
    ms = int(seconds * 1000.0)
    if not _INT64_MIN < ms <= _INT64_MAX:
        return _INT64_MIN + 1
    return ms
