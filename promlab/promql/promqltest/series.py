"""The series-description notation shared by ``load`` blocks and expected results.

A series line is a PromQL-style series (``name``, ``name{l="v"}``, ``{"quoted.name", a="b"}``)
followed by value items (see DSL.md §3)::

    _        one omitted value            _xN      N omitted values
    V        one value                    VxN      V repeated: N+1 values
    V±SxN    V, V+S, ..., N+1 values      stale    the staleness marker
    {{...}}  a native histogram literal (see :mod:`.histogram`; the runner skips them)

Values are accumulated by repeated addition (``v += s``), as Prometheus's grammar does, so the
rounding of long ramps is bit-identical. Numbers follow Go (:func:`parse_go_number`, from
:mod:`.gonumber`).
"""

from __future__ import annotations

import re

from promlab.errors import ParseError
from promlab.model import STALE_NAN, Labels
from promlab.promql.promqltest.gonumber import parse_go_number
from promlab.promql.promqltest.histogram import HistogramLiteral, histogram_series, parse_histogram

__all__ = [
    "HistogramLiteral",
    "Item",
    "go_unquote",
    "parse_go_number",
    "parse_series_desc",
    "parse_values",
]


# One expanded value: a float (possibly the stale NaN), None (omitted), or a histogram.
Item = float | None | HistogramLiteral

_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}


def go_unquote(lit: str) -> str:
    """Unquote a PromQL/Go string literal: ``"..."`` or ``'...'`` with escapes, or raw `````...`````.

    ``\\x`` and octal escapes give raw bytes; invalid UTF-8 is kept via ``surrogateescape``.
    Raises ``ValueError`` on a malformed literal.
    """
    if len(lit) < 2 or lit[0] != lit[-1] or lit[0] not in "\"'`":
        raise ValueError(f"invalid string literal {lit!r}")
    quote, body = lit[0], lit[1:-1]
    if quote == "`":
        if "`" in body:
            raise ValueError(f"invalid string literal {lit!r}")
        return body.replace("\r", "")
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote or ch == "\n":
            raise ValueError(f"invalid string literal {lit!r}")
        if ch != "\\":
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError(f"invalid escape in {lit!r}")
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
                raise ValueError(f"invalid escape in {lit!r}")
            code = int(digits, 16)
            if e == "x":
                out.append(code)
            else:
                out += chr(code).encode("utf-8", "surrogatepass")
            i += 2 + width
        elif e in "01234567":
            digits = body[i + 1:i + 4]
            if len(digits) != 3 or not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise ValueError(f"invalid escape in {lit!r}")
            out.append(int(digits, 8))
            i += 4
        else:
            raise ValueError(f"invalid escape in {lit!r}")
    return out.decode("utf-8", "surrogateescape")


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`[^`]*`')
_WS = re.compile(r"[ \t]*")
_NUM = r"(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN])"
_ITEM = re.compile(rf"^(?:(?P<blank>_)(?:x(?P<bn>[0-9]+))?|(?P<stale>stale)"
                   rf"|(?P<v>[+-]?{_NUM})(?:(?P<s>[+-]{_NUM})?(?<![fFnN])x(?P<n>[0-9]+))?)$")
# (``Infx3``/``NaNx3`` lex as one identifier in Prometheus: Inf and NaN take no ``xN``.)
_HIST_TAIL = re.compile(r"x([0-9]+)")


def _num(tok: str) -> float:
    sign = -1.0 if tok[0] == "-" else 1.0
    body = tok[1:] if tok[0] in "+-" else tok
    return sign * parse_go_number(body)


class _Err(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


def _parse_metric(line: str, duplicates: list[str] | None = None) -> tuple[Labels, int]:
    """Parse the series part of ``line``; return its labels and the offset after it.

    With ``duplicates``, a repeated label name is appended to it instead of raising (the first
    value is kept), and a ``__name__`` inside the braces of a named series is overridden by the
    name, as Prometheus's grammar builds the label set."""
    pairs: dict[str, str] = {}
    pos = 0
    m = _METRIC_NAME.match(line, pos)
    if m:
        pairs["__name__"] = m.group(0)
        pos = m.end()
    if pos < len(line) and line[pos] == "{":
        pos += 1
        while True:
            pos = _WS.match(line, pos).end()  # type: ignore[union-attr]
            if pos < len(line) and line[pos] == "}":
                pos += 1
                break
            name: str
            lm = _LABEL_NAME.match(line, pos)
            sm = _STRING.match(line, pos) if lm is None else None
            if lm is not None:
                name, pos = lm.group(0), lm.end()
            elif sm is not None:
                name, pos = go_unquote(sm.group(0)), sm.end()
            else:
                raise _Err("expected label name or '}'", pos)
            pos = _WS.match(line, pos).end()  # type: ignore[union-attr]
            if pos < len(line) and line[pos] == "=":
                pos = _WS.match(line, pos + 1).end()  # type: ignore[union-attr]
                vm = _STRING.match(line, pos)
                if vm is None:
                    raise _Err("expected label value string", pos)
                if duplicates is not None and name == "__name__" and m is not None:
                    pass  # the name before the braces wins
                elif name not in pairs:
                    pairs[name] = go_unquote(vm.group(0))
                elif duplicates is None:
                    raise _Err(f"duplicate label name {name!r}", pos)
                else:
                    duplicates.append(name)
                pos = vm.end()
            elif sm is not None:  # a bare quoted string is the metric name
                if "__name__" in pairs:
                    raise _Err("metric name given twice", pos)
                pairs["__name__"] = name
            else:
                raise _Err("expected '=' after label name", pos)
            pos = _WS.match(line, pos).end()  # type: ignore[union-attr]
            if pos < len(line) and line[pos] == ",":
                pos += 1
                continue
            if pos < len(line) and line[pos] == "}":
                pos += 1
                break
            raise _Err("expected ',' or '}' in label set", pos)
    elif m is None:
        raise _Err("expected a metric name or label set", pos)
    return Labels(pairs), pos


def _histogram_end(text: str, pos: int) -> int:
    end = text.find("}}", pos + 2)
    if end < 0:
        raise _Err("unterminated histogram literal", pos)
    return end + 2


def parse_values(text: str, base: int = 0) -> list[Item]:
    """Expand a value sequence (the part after the series) into items.

    ``base`` is added to error positions (the offset of ``text`` in its line).
    """
    items: list[Item] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos] in " \t":
            pos += 1
            continue
        start = pos
        if text.startswith("{{", pos):
            end = _histogram_end(text, pos)
            try:
                first = parse_histogram(text[pos:end])
                pos = end
                m = _HIST_TAIL.match(text, pos)
                if m:
                    items.extend([first] * (int(m.group(1)) + 1))
                    pos = m.end()
                elif pos < n and text[pos] in "+-" and text.startswith("{{", pos + 1):
                    end2 = _histogram_end(text, pos + 1)
                    m = _HIST_TAIL.match(text, end2)
                    if m is None:
                        raise _Err("expected 'x<count>' after histogram increment", end2 + base)
                    inc = parse_histogram(text[pos + 1:end2])
                    sign = 1.0 if text[pos] == "+" else -1.0
                    items.extend(histogram_series(first, inc, int(m.group(1)), sign))
                    pos = m.end()
                else:
                    items.append(first)
            except ValueError as exc:
                raise _Err(str(exc), start + base) from None
            if pos < n and text[pos] not in " \t":
                raise _Err("unexpected text after histogram literal", pos + base)
            continue
        while pos < n and text[pos] not in " \t":
            pos += 1
        tok = text[start:pos]
        m = _ITEM.match(tok)
        if m is None:
            raise _Err(f"invalid value {tok!r} in series values", start + base)
        try:
            if m.group("blank"):
                count = m.group("bn")
                items.extend([None] * (int(count) if count is not None else 1))
            elif m.group("stale"):
                items.append(STALE_NAN)
            else:
                v = _num(m.group("v"))
                reps = m.group("n")
                if reps is None:
                    items.append(v)
                elif m.group("s") is None:
                    items.extend([v] * (int(reps) + 1))
                else:
                    step = _num(m.group("s"))
                    for _ in range(int(reps) + 1):
                        items.append(v)
                        v += step
        except ValueError as exc:
            raise _Err(str(exc), start + base) from None
    return items


def parse_series_desc(line: str, *, duplicates: list[str] | None = None,
                      ) -> tuple[Labels, list[Item]]:
    """Parse one series line (``metric{labels} values...``).

    Raises :class:`~promlab.errors.ParseError` positioned in ``line``. With ``duplicates``
    (a list), repeated label names are collected there instead (see :func:`_parse_metric`):
    promtool's loader only refuses such a series when it appends its samples.

    Examples
    --------
    >>> ls, vals = parse_series_desc('up{job="a"} 1+1x2 _ stale')
    >>> str(ls), vals[:4]
    ('up{job="a"}', [1.0, 2.0, 3.0, None])
    """
    try:
        labels, pos = _parse_metric(line, duplicates)
        if pos < len(line) and line[pos] not in " \t":
            raise _Err("expected whitespace between series and values", pos)
        return labels, parse_values(line[pos:], pos)
    except _Err as exc:
        raise ParseError(str(exc), query=line, pos=exc.pos) from None
    except ValueError as exc:
        raise ParseError(str(exc), query=line, pos=0) from None
