"""Go's fmt for templates: ``%v`` printing of values, ``print``/``println``, and ``printf`` verbs.

Floats follow ``strconv.FormatFloat``: ``%v`` is the shortest ``%g`` (exponent form below 1e-4
and from 1e+06 on: ``1.234567e+06``), ``%.4g`` rounds to four significant digits and drops
trailing zeros, infinities print as ``+Inf``/``-Inf``. Wrong verbs print Go's ``%!d(float64=1.5)``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from promlab.model.value import format_go_float
from promlab.rules.template.values import (
    HTML,
    AlertData,
    GoDuration,
    GoTime,
    Sample,
    go_type,
)

__all__ = ["format_float", "format_value", "quote", "sprint", "sprintf", "sprintln"]

#: ``strconv.FormatFloat`` (the one implementation, in :mod:`promlab.model.value`).
format_float = format_go_float


def quote(s: str) -> str:
    """``strconv.Quote``: double-quoted with Go escapes, printable characters kept."""
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        elif c in _ESC:
            out.append(_ESC[c])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_ESC = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def format_value(v: Any, depth: int = 0) -> str:
    """fmt's ``%v`` of ``v``."""
    if isinstance(v, str):
        return v
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_go_float(v)
    if isinstance(v, HTML):
        return v.text
    if isinstance(v, GoTime | GoDuration):
        return str(v)
    if isinstance(v, dict):
        inner = " ".join(f"{k}:{format_value(v[k], depth + 1)}" for k in sorted(v))
        return f"map[{inner}]"
    if isinstance(v, list):
        return "[" + " ".join(format_value(e, depth + 1) for e in v) + "]"
    if isinstance(v, Sample):
        return f"&{{{format_value(v.Labels, depth + 1)} {format_value(v.Value, depth + 1)}}}"
    if isinstance(v, AlertData):
        return "{" + " ".join(format_value(f, depth + 1) for f in (v.Labels, v.ExternalLabels, v.ExternalURL, v.Value)) + "}"
    return str(v)


def sprint(args: list[Any]) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i > 0 and not isinstance(a, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(format_value(a))
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """``fmt.Sprintln``: operands separated by spaces, then a newline."""
    return " ".join(format_value(a) for a in args) + "\n"


_SPEC = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.)?", re.S)


def _bad(verb: str, v: Any) -> str:
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(v)}={format_value(v)})"


def _pad(s: str, flags: str, width: int | None, zero_ok: bool = True) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s + " " * (width - len(s))
    if "0" in flags and zero_ok:
        if s[:1] in "+- " and s[1:2].isdigit():
            return s[0] + "0" * (width - len(s)) + s[1:]
        return "0" * (width - len(s)) + s
    return " " * (width - len(s)) + s


def _sign(s: str, neg: bool, flags: str) -> str:
    if neg:
        return "-" + s
    if "+" in flags:
        return "+" + s
    if " " in flags:
        return " " + s
    return s


def _fmt_int(v: int, verb: str, flags: str, prec: int | None) -> str | None:
    neg, a = v < 0, abs(v)
    if verb in "dv":
        body = str(a)
    elif verb in "xX":
        body = format(a, verb)
    elif verb == "o":
        body = format(a, "o")
    elif verb == "b":
        body = format(a, "b")
    elif verb == "c":
        return chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
    elif verb == "q":
        return "'" + (chr(v) if 0 <= v <= 0x10FFFF else "\ufffd") + "'"
    else:
        return None
    if prec is not None:
        body = body.rjust(prec, "0") if not (prec == 0 and a == 0) else ""
    if "#" in flags:
        body = {"x": "0x", "X": "0X", "o": "0", "b": "0b"}.get(verb, "") + body
    return _sign(body, neg, flags)


def _fmt_float(v: float, verb: str, flags: str, prec: int | None) -> str | None:
    if verb not in "veEfFgG":
        if verb in "xX":
            return _hex_float(v, verb)
        return None
    go_verb = "g" if verb == "v" else verb
    if go_verb in "eEfF" and prec is None:
        prec = 6
    s = format_go_float(v, go_verb, -1 if prec is None else prec)
    if s[0] == "-":
        return s
    if s == "NaN":
        return _sign(s, False, flags.replace("+", "")) if " " not in flags and "+" not in flags else ("+" if "+" in flags else " ") + s
    if s == "+Inf":
        return s if "+" in flags or " " not in flags else " Inf"
    return _sign(s, False, flags)


def _hex_float(v: float, verb: str) -> str:
    if math.isnan(v) or math.isinf(v):
        return format_go_float(v)
    h = float.hex(v)
    mant, exp = h.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    e = int(exp)
    s = f"{mant}p{'-' if e < 0 else '+'}{abs(e):02d}"
    return s.upper().replace("0X", "0X") if verb == "X" else s


def _fmt_str(s: str, verb: str, prec: int | None) -> str | None:
    if prec is not None and verb in "sqv":
        s = s[:prec]
    if verb in "sv":
        return s
    if verb == "q":
        return quote(s)
    if verb in "xX":
        return s.encode().hex() if verb == "x" else s.encode().hex().upper()
    return None


def format_one(v: Any, verb: str, flags: str, width: int | None, prec: int | None) -> str:
    """One ``%``-directive applied to ``v``."""
    out: str | None
    zero_ok = True
    if verb == "T":
        out = go_type(v)
    elif isinstance(v, bool):
        out = ("true" if v else "false") if verb in "tv" else None
    elif isinstance(v, int):
        out = _fmt_int(v, verb, flags, prec)
        zero_ok = prec is None
    elif isinstance(v, float):
        out = _fmt_float(v, verb, flags, prec)
        zero_ok = not (math.isnan(v) or math.isinf(v))
    elif isinstance(v, str | HTML | GoTime | GoDuration):
        text = v.text if isinstance(v, HTML) else str(v)
        out = _fmt_str(text, verb, prec)
    elif verb == "v":
        out = format_value(v)
    else:
        out = None
    if out is None:
        return _bad(verb, v)
    return _pad(out, flags, width, zero_ok)


def sprintf(fmt: str, args: list[Any]) -> str:
    """``fmt.Sprintf(fmt, args...)`` for the verbs ``v s d f e g q x t c o b T %`` with flags,
    width and precision (``*`` is not supported).

    >>> sprintf("%.2f|%5s|%-4d|%v|%d", [3.14159, "ab", 7, 1e21, 1.5])
    '3.14|   ab|7   |1e+21|%!d(float64=1.5)'
    """
    out: list[str] = []
    i = 0
    argi = 0
    n = len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        m = _SPEC.match(fmt, j)
        assert m is not None
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        i = m.end()
        if verb is None:
            out.append("%!(NOVERB)")
            break
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        width = int(width_s) if width_s else None
        prec = (int(prec_s) if prec_s else 0) if prec_s is not None else None
        out.append(format_one(args[argi], verb, flags, width, prec))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type(a)}={format_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
