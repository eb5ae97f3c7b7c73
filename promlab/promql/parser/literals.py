"""PromQL literals: Go-style quoting and unquoting, numbers and durations.

Strings are quoted like Go's ``strconv.Quote`` (how Prometheus prints them and names tokens in
error messages); numbers parse like Prometheus (``strconv.ParseInt(s, 0, 64)``, then
``ParseFloat``: ``0x1f``, ``010`` octal, ``1_000``, ``Inf``/``NaN``). Duration literals are
tokenized by the lexer; their value comes from :func:`promlab.model.time.parse_go_duration`
(re-exported here as ``parse_duration_ms``).
"""

from __future__ import annotations

import math
import re

from promlab.model.time import parse_go_duration as parse_duration_ms

__all__ = ["NAN", "go_quote", "go_quote_rune", "parse_duration_ms", "parse_number", "unquote"]


#: Text ``strconv.Quote`` leaves as it is: printable ASCII without ``"`` and ``\\``.
_PLAIN_RE = re.compile(r'[ !#-\[\]-~]*')


def go_quote(s: str) -> str:
    """Quote ``s`` like Go's ``strconv.Quote``."""
    if _PLAIN_RE.fullmatch(s):
        return f'"{s}"'
    out = ['"']
    for ch in s:
        out.append(_escape_char(ch, '"'))
    out.append('"')
    return "".join(out)


def go_quote_rune(ch: str) -> str:
    """Quote one character like Go's ``%q`` of a rune (``'$'``); a raw byte kept as a
    surrogate escape decodes to Go's ``utf8.RuneError``, printed as ``'\ufffd'`` itself."""
    if ch == "\ufffd" or 0xDC80 <= ord(ch) <= 0xDCFF:
        return "'\ufffd'"
    return "'" + _escape_char(ch, "'") + "'"


_SIMPLE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                   "\t": "\\t", "\v": "\\v", "\\": "\\\\"}


def _escape_char(ch: str, quote: str) -> str:
    if ch == quote:
        return "\\" + ch
    esc = _SIMPLE_ESCAPES.get(ch)
    if esc is not None:
        return esc
    o = ord(ch)
    if ch.isprintable() and o != 0xFFFD:
        return ch
    if 0xDC80 <= o <= 0xDCFF:
        return f"\\x{o - 0xDC00:02x}"  # a raw byte kept by unquote's surrogateescape
    if 0xD800 <= o <= 0xDFFF:
        return "\\ufffd"
    if o < 0x80:
        return f"\\x{o:02x}"
    if o < 0x10000:
        return f"\\u{o:04x}"
    return f"\\U{o:08x}"


_OCTAL_RE = re.compile(r"^0[0-7_]*$")
_MAX_INT64 = 2**63 - 1
# One NaN object for every NaN literal, so that equal trees compare equal (nan != nan, but
# tuple/dataclass comparison takes identical objects as equal).
NAN = float("nan")


def parse_number(text: str) -> float:
    """Parse a NUMBER token like Prometheus (``ParseInt(s, 0, 64)`` then ``ParseFloat``)."""
    s = text
    try:
        if _OCTAL_RE.match(s) and len(s) > 1:
            v = int(s.replace("_", ""), 8)
        else:
            v = int(s, 0)
        if -(2**63) <= v <= _MAX_INT64:
            return float(v)
    except ValueError:
        pass
    try:
        f = float(s)
    except ValueError:
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: invalid syntax") from None
    if math.isinf(f) and s.lower().lstrip("+-") not in ("inf", "infinity"):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(s)}: value out of range")
    return NAN if f != f else f


_UNESCAPE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
             "\\": "\\", "'": "'", '"': '"'}


def unquote(s: str) -> str:
    """The value of a lexed string token (quotes removed, Go escapes decoded).

    ``\\x`` and octal escapes are bytes; byte sequences that are not valid UTF-8 are kept as
    surrogate escapes (``"\\xff"`` -> ``"\\udcff"``, Python's ``surrogateescape``), so such a
    string fails ``.encode("utf-8")`` (Prometheus rejects it as a label name or value) and
    :func:`go_quote` prints it back as ``"\\xff"``.

    The lexer has already validated the escapes, so this does not fail on lexed tokens.
    """
    q = s[0]
    body = s[1:-1]
    if q == "`":
        return body
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    n = len(body)
    pending = bytearray()  # \x and octal escapes are bytes, joined as UTF-8
    while i < n:
        c = body[i]
        if c != "\\":
            if pending:
                out.append(pending.decode("utf-8", "surrogateescape"))
                pending.clear()
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in "01234567":
            pending.append(int(body[i + 1:i + 4], 8))
            i += 4
            continue
        if e == "x":
            pending.append(int(body[i + 2:i + 4], 16))
            i += 4
            continue
        if pending:
            out.append(pending.decode("utf-8", "surrogateescape"))
            pending.clear()
        if e == "u":
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif e == "U":
            out.append(chr(int(body[i + 2:i + 10], 16)))
            i += 10
        else:
            out.append(_UNESCAPE[e])
            i += 2
    if pending:
        out.append(pending.decode("utf-8", "surrogateescape"))
    return "".join(out)
