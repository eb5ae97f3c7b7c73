"""Go's fmt for templates: ``%v`` printing of values, ``print``/``println``, and ``printf`` verbs.

Floats follow ``strconv.FormatFloat``: ``%v`` is the shortest ``%g`` (exponent form below 1e-4
and from 1e+06 on: ``1.234567e+06``), ``%.4g`` rounds to four significant digits and drops
trailing zeros, infinities print as ``+Inf``/``-Inf``. Wrong verbs print Go's ``%!d(float64=1.5)``.
"""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from promlab.model.value import format_go_float
from promlab.rules.template.values import (
    HTML,
    AlertData,
    AnyMap,
    GoDuration,
    GoTime,
    Sample,
    go_type,
)

__all__ = ["format_float", "format_value", "go_syntax", "quote", "sprint", "sprintf", "sprintln"]

#: ``strconv.FormatFloat`` (the one implementation, in :mod:`promlab.model.value`).
format_float = format_go_float


def quote(s: str, *, ascii_only: bool = False) -> str:
    """``strconv.Quote``: double-quoted with Go escapes, printable characters kept (only ASCII
    ones with ``ascii_only``, as ``strconv.QuoteToASCII``)."""
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c.isprintable() and (o < 0x80 or not ascii_only):
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


def format_value(v: Any, depth: int = 0, *, names: bool = False) -> str:
    """fmt's ``%v`` of ``v`` (``%+v`` with ``names``: a struct's fields are named)."""
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
    if isinstance(v, complex):
        return format_one(v, "v", "", None, None)
    if isinstance(v, HTML):
        return v.text
    if isinstance(v, GoTime | GoDuration):
        return str(v)
    if isinstance(v, dict):
        inner = " ".join(f"{k}:{format_value(v[k], depth + 1)}" for k in sorted(v))
        return f"map[{inner}]"
    if isinstance(v, list):
        return "[" + " ".join(format_value(e, depth + 1) for e in v) + "]"
    if isinstance(v, Sample | AlertData):
        fields = ("Labels", "Value") if isinstance(v, Sample) else ("Labels", "ExternalLabels", "ExternalURL", "Value")
        inner = " ".join((f"{f}:" if names else "") + format_value(getattr(v, f), depth + 1, names=names)
                         for f in fields)
        return ("&" if isinstance(v, Sample) else "") + "{" + inner + "}"
    return str(v)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def go_syntax(v: Any) -> str:
    """fmt's ``%#v`` (Go syntax) of ``v``; a query result's samples are pointers (addresses in
    Go, unreproducible), shown here as ``%v`` shows them."""
    if isinstance(v, str | HTML):
        return quote(v.text if isinstance(v, HTML) else v)
    if isinstance(v, AnyMap):
        return "map[string]interface {}{" + ", ".join(f"{quote(k)}:{go_syntax(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, dict):
        return "map[string]string{" + ", ".join(f"{quote(k)}:{quote(v[k])}" for k in sorted(v)) + "}"
    if isinstance(v, AlertData):
        return ("struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; "
                f"Value float64 }}{{Labels:{go_syntax(v.Labels)}, ExternalLabels:{go_syntax(v.ExternalLabels)}, "
                f"ExternalURL:{quote(v.ExternalURL)}, Value:{go_syntax(v.Value)}}}")
    if isinstance(v, Sample):
        return f"&template.sample{{Labels:{go_syntax(v.Labels)}, Value:{go_syntax(v.Value)}}}"
    if isinstance(v, GoTime):
        secs, msec = divmod(v.ms, 1000)
        dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)
        return (f"time.Date({dt.year}, time.{_MONTHS[dt.month - 1]}, {dt.day}, {dt.hour}, {dt.minute}, "
                f"{dt.second}, {msec * 1_000_000}, time.UTC)")
    return format_value(v)


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


def _bad(verb: str, v: Any, flags: str = "", width: int | None = None, prec: int | None = None) -> str:
    """Go's ``%!d(float64=1.5)``: the value is printed by ``%v`` under the directive's own flags,
    width and precision (``%-4d`` of "m" is ``%!d(string=m   )``), as plain flags: ``+`` signs
    a number and ``#`` keeps a float's zeros, neither names fields nor quotes."""
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(v)}={format_one(v, 'v', flags, width, prec, plain=True)})"


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
    elif verb in "oO":
        body = format(a, "o")
    elif verb == "b":
        body = format(a, "b")
    elif verb == "c":
        return chr(v) if 0 <= v <= 0x10FFFF else "\ufffd"
    elif verb == "q":
        return "'" + (chr(v) if 0 <= v <= 0x10FFFF else "\ufffd") + "'"
    elif verb == "U":
        u = v % 2**64  # Go formats the bits as unsigned
        out = "U+" + format(u, "X").rjust(max(prec or 0, 4), "0")
        if "#" in flags and u <= 0x10FFFF and chr(u).isprintable():
            out += f" '{chr(u)}'"
        return out
    else:
        return None
    if prec is not None:
        body = body.rjust(prec, "0") if not (prec == 0 and a == 0) else ""
    if "#" in flags and not (verb == "o" and body.startswith("0")):
        body = {"x": "0x", "X": "0X", "o": "0", "O": "0", "b": "0b"}.get(verb, "") + body
    if verb == "O":
        body = "0o" + body
    return _sign(body, neg, flags)


def _fmt_float(v: float, verb: str, flags: str, prec: int | None) -> str | None:
    if verb not in "veEfFgGxXb":
        return None
    if verb == "b" and not (math.isnan(v) or math.isinf(v)):
        return _sign(_binary_float(abs(v)), math.copysign(1.0, v) < 0, flags)
    if verb in "xX" and not (math.isnan(v) or math.isinf(v)):
        body = _hex_float(abs(v), verb, prec)
        return _sign(_sharp(body, verb, prec) if "#" in flags else body, math.copysign(1.0, v) < 0, flags)
    go_verb = "g" if verb in "vxX" else verb  # NaN and Inf read the same for every verb
    if go_verb in "eEfF" and prec is None:
        prec = 6
    s = format_go_float(v, go_verb, -1 if prec is None else prec)
    if "#" in flags and not (math.isnan(v) or math.isinf(v)):
        s = ("-" if s[0] == "-" else "") + _sharp(s.lstrip("-"), go_verb, prec)
    if s[0] == "-":
        return s
    if s == "NaN":
        return _sign(s, False, flags.replace("+", "")) if " " not in flags and "+" not in flags else ("+" if "+" in flags else " ") + s
    if s == "+Inf":
        return s if "+" in flags or " " not in flags else " Inf"
    return _sign(s, False, flags)


def _binary_float(v: float) -> str:
    """``strconv.FormatFloat(v, 'b', -1, 64)`` of a finite non-negative ``v``: the integer
    mantissa and the power of two (``3`` is ``6755399441055744p-51``)."""
    bits = struct.unpack("<Q", struct.pack("<d", v))[0]
    exp, mant = (bits >> 52) & 0x7FF, bits & ((1 << 52) - 1)
    if exp:
        mant |= 1 << 52
    else:
        exp = 1  # subnormal
    return f"{mant}p{exp - 1075:+d}"


def _sharp(num: str, verb: str, prec: int | None) -> str:
    """fmt's ``#`` flag on an unsigned formatted float: a decimal point always, and for
    ``%g``/``%x`` the trailing zeros kept up to the precision's significant digits (6 when
    none is given), the exponent left where it is."""
    hexa = verb in "xX"
    cut = next((i for i, c in enumerate(num) if c in "pP" or (c in "eE" and not hexa)), len(num))
    body, tail = num[:cut], num[cut:]
    digits = (6 if prec is None else prec) if verb in "vgGx" else 0  # not X: Go's own list
    significant = body.lstrip("0.")
    digits -= sum(c != "." for c in significant) if significant else 0
    if "." not in body:
        if body == "0":
            digits -= 1  # a lone zero counts once
        body += "."
    return body + "0" * max(digits, 0) + tail


def _hex_float(v: float, verb: str, prec: int | None) -> str:
    """``strconv.FormatFloat(v, 'x', prec)`` of a finite non-negative ``v``: ``prec`` hex digits
    after the point (rounded half to even), or as few as exact."""
    m, e = math.frexp(v)  # v = m * 2**e, 0.5 <= m < 1 (or 0)
    mant, e = (int(m * 2**53), e - 1) if v else (0, 0)  # 1.xxx with 52 fraction bits
    frac = mant - (1 << 52) if v else 0
    lead = 1 if v else 0
    if prec is not None and prec < 13:
        drop = 52 - 4 * prec
        q, r = divmod(frac, 1 << drop)
        half = 1 << (drop - 1)
        odd = q & 1 if prec else lead  # ties go to even, the leading digit's parity at prec 0
        if r > half or (r == half and odd):
            q += 1
        if q >> (4 * prec):  # carried into the leading digit
            q, e = 0, e + 1
        digits = format(q, f"0{prec}x") if prec else ""
    else:
        digits = format(frac, "013x")
        digits = digits.ljust(prec, "0") if prec is not None else digits.rstrip("0")
    s = f"0x{lead}{'.' + digits if digits else ''}p{'-' if e < 0 else '+'}{abs(e):02d}"
    return s.upper() if verb == "X" else s


def _fmt_str(s: str, verb: str, flags: str, prec: int | None) -> str | None:
    if prec is not None and verb in "sqv":
        s = s[:prec]
    if verb in "sv":
        return s
    if verb == "q":
        if "#" in flags and _can_backquote(s):
            return f"`{s}`"
        return quote(s, ascii_only="+" in flags)
    if verb in "xX":
        data = s.encode("utf-8", "surrogateescape")[:prec]
        sep = (" 0" + verb if "#" in flags else " ") if " " in flags else ""
        body = sep.join(format(b, "02" + verb) for b in data)
        return ("0" + verb if "#" in flags and data else "") + body
    return None


def _can_backquote(s: str) -> bool:
    """``strconv.CanBackquote``: one line without a backquote or other control characters."""
    return not any(c == "`" or c == "\ufeff" or (c < " " and c != "\t") or c == "\x7f"
                   or "\udc80" <= c <= "\udcff" for c in s)


def format_one(v: Any, verb: str, flags: str, width: int | None, prec: int | None, *,
               plain: bool = False) -> str:
    """One ``%``-directive applied to ``v`` (``plain``: ``+`` and ``#`` on ``v`` are the value's
    flags, as when a wrong verb's operand is shown)."""
    out: str | None
    zero_ok = True
    names = False
    if verb == "v" and not plain and ("+" in flags or "#" in flags):
        # %+v names struct fields and %#v is Go syntax (a string quoted); neither is a flag of
        # the value's own formatting.
        names = "+" in flags
        if "#" in flags and not isinstance(v, int | float | bool) and v is not None:
            return _pad(go_syntax(v), flags.replace("0", ""), width)
        flags = flags.replace("+", "").replace("#", "")
    if verb == "T":
        out = go_type(v)
    elif isinstance(v, bool):
        out = ("true" if v else "false") if verb in "tv" else None
    elif isinstance(v, int):
        out = _fmt_int(v, verb, flags, prec)
        zero_ok = prec is None and verb != "U"
    elif isinstance(v, float):
        out = _fmt_float(v, verb, flags, prec)
        zero_ok = not (math.isnan(v) or math.isinf(v))
    elif isinstance(v, complex):
        if verb not in "vbgGxXfFeE":
            return _bad(verb, v, flags, width, prec)
        # Each part formatted (and padded) as a float, the imaginary one always signed.
        parts = [_fmt_float(x, verb, f, prec) for x, f in ((v.real, flags), (v.imag, flags + "+"))]
        if None in parts:
            return _bad(verb, v, flags, width, prec)
        return "(" + "".join(_pad(str(x), flags, width) for x in parts) + "i)"
    elif isinstance(v, str | HTML | GoTime | GoDuration):
        text = v.text if isinstance(v, HTML) else str(v)
        out = _fmt_str(text, verb, flags, prec)
    elif isinstance(v, dict):
        # fmt formats a map's keys and values with the verb (flags and width each).
        return "map[" + " ".join(f"{format_one(k, verb, flags, width, prec)}:"
                                 f"{format_one(v[k], verb, flags, width, prec)}" for k in sorted(v)) + "]"
    elif isinstance(v, Sample | AlertData):
        # A struct's fields each take the directive (a *sample shows as &{...} at the top).
        fields = ("Labels", "Value") if isinstance(v, Sample) else ("Labels", "ExternalLabels", "ExternalURL", "Value")
        inner = " ".join((f"{f}:" if names else "") + format_one(getattr(v, f), verb, flags, width, prec, plain=plain)
                         for f in fields)
        return ("&" if isinstance(v, Sample) else "") + "{" + inner + "}"
    elif verb == "v":
        out = format_value(v, names=names)
    else:
        out = None
    if out is None:
        return _bad(verb, v, flags, width, prec)
    return _pad(out, flags, width, zero_ok)


def _digits(fmt: str, i: int, end: int) -> tuple[int | None, int]:
    """Go's ``parsenum``: the number at ``i`` (None if there is none) and the position after it;
    a number growing past a million gives up and skips to ``end``."""
    num, j = 0, i
    while j < end and "0" <= fmt[j] <= "9":
        if num > 1_000_000:
            return None, end
        num = num * 10 + int(fmt[j])
        j += 1
    return (num if j > i else None), j


def _arg_index(fmt: str, i: int, nargs: int) -> tuple[int | None, int, bool, bool]:
    """An explicit argument index ``[n]`` at ``i``: the 0-based index (None when bad or out of
    range), the position after it, whether there was a ``[``, and whether it read well."""
    if i >= len(fmt) or fmt[i] != "[":
        return None, i, False, False
    close = fmt.find("]", i + 1)
    if len(fmt) - i < 3 or close < 0:
        return None, i + 1, True, False
    num, j = _digits(fmt, i + 1, close)
    if num is None or j != close:
        return None, close + 1, True, False
    k = num - 1
    return (k if 0 <= k < nargs else None), close + 1, True, True


def _int_arg(args: list[Any], k: int) -> int | None:
    v = args[k] if k < len(args) else None
    if isinstance(v, int) and not isinstance(v, bool) and -1_000_000 <= v <= 1_000_000:
        return v
    return None


def sprintf(fmt: str, args: list[Any]) -> str:
    """``fmt.Sprintf(fmt, args...)`` for the verbs ``v s d f e g q x t c o b U T %`` with flags,
    width and precision (numbers or ``*``) and explicit argument indexes (``%[2]d``).

    >>> sprintf("%.2f|%5s|%-4d|%v|%d", [3.14159, "ab", 7, 1e21, 1.5])
    '3.14|   ab|7   |1e+21|%!d(float64=1.5)'
    >>> sprintf("%[2]d %[1]*d|%.*f|%[5]d", [3, 1, 2, 3.14159])
    '1   1|3.14|%!d(BADINDEX)'
    """
    out: list[str] = []
    i, n = 0, len(fmt)
    argi = 0
    reordered = False
    good = True

    def take_index(i: int) -> tuple[int, bool]:
        """An explicit ``[n]`` at ``i`` moves the argument cursor (``good``: it read well and
        is in range); returns the position after it and whether it read well."""
        nonlocal argi, good, reordered
        k, i, seen, indexed = _arg_index(fmt, i, len(args))
        reordered |= seen
        if seen:
            good, argi = k is not None, argi if k is None else k
        return i, indexed

    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        flags = ""
        while i < n and fmt[i] in "-+# 0":
            flags += fmt[i]
            i += 1
        good = True
        width: int | None = None
        prec: int | None = None
        i, indexed = take_index(i)
        if i < n and fmt[i] == "*":
            i += 1
            width = _int_arg(args, argi)
            argi += 1 if argi < len(args) else 0
            if width is None:
                out.append("%!(BADWIDTH)")
            elif width < 0:
                width, flags = -width, flags + "-"
            indexed = False
        else:
            width, i = _digits(fmt, i, n)
            if indexed and width is not None:
                good = False
        if i + 1 < n and fmt[i] == ".":
            i += 1
            if indexed:
                good = False
            i, indexed = take_index(i)
            if i < n and fmt[i] == "*":
                i += 1
                prec = _int_arg(args, argi)
                argi += 1 if argi < len(args) else 0
                if prec is not None and prec < 0:
                    prec = None
                if prec is None:
                    out.append("%!(BADPREC)")
                indexed = False
            else:
                prec, i = _digits(fmt, i, n)
                prec = prec or 0
        if not indexed:
            i, indexed = take_index(i)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
        elif not good:
            out.append(f"%!{verb}(BADINDEX)")
        elif argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
        else:
            out.append(format_one(args[argi], verb, flags, width, prec))
            argi += 1
    if not reordered and argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{go_type(a)}={format_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
