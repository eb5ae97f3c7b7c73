"""The series-description notation shared by ``load`` blocks and expected results.

A series line is a PromQL-style series (``name``, ``name{l="v"}``, ``{"quoted.name", a="b"}``)
followed by value items (see DSL.md §3)::

    _        one omitted value            _xN      N omitted values
    V        one value                    VxN      V repeated: N+1 values
    V±SxN    V, V+S, ..., N+1 values      stale    the staleness marker
    {{...}}  a native histogram literal (see :mod:`.histogram`; the runner skips them)

Values are accumulated by repeated addition (``v += s``), as Prometheus's grammar does, so the
rounding of long ramps is bit-identical. Numbers follow Go (:func:`parse_go_number`, from
:mod:`.gonumber`). A malformed sequence is refused with Prometheus's message for its first
problem, at its position (``unexpected "x" in series values``, ``bad number syntax: "1"``).
"""

from __future__ import annotations

import math
import re

from promlab.errors import ParseError
from promlab.model import STALE_NAN, Labels
from promlab.promql.parser.literals import go_quote, go_quote_rune
from promlab.promql.promqltest.gonumber import parse_go_number
from promlab.promql.promqltest.histogram import HistogramLiteral, histogram_series, parse_histogram
from promlab.promql.promqltest.seriesname import go_unquote, parse_series_name

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

_NUM = r"(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN])"
_ITEM = re.compile(rf"^(?:(?P<blank>_)(?:x(?P<bn>[0-9]+))?|(?P<stale>stale)"
                   rf"|(?P<v>[+-]?{_NUM}|stale(?=[+-]))(?:(?P<s>[+-]{_NUM})?(?<![fFnN])x(?P<n>[0-9]+))?)$")
# (``Infx3``/``NaNx3`` lex as one identifier in Prometheus: Inf and NaN take no ``xN``.
# ``stale+SxN`` is the grammar's "value, step, count" with the stale marker as the value: the
# first point is the marker, the next ones the marker plus steps, NaNs that are not stale.)
_HIST_TAIL = re.compile(r"x([0-9]+)")
_SPACE = " \t\r\n"  # what the lexer takes as a space between values


def _num(tok: str) -> float:
    if tok == "stale":
        return STALE_NAN
    sign = -1.0 if tok[0] == "-" else 1.0
    body = tok[1:] if tok[0] in "+-" else tok
    value = parse_go_number(body)
    if math.isinf(value) and body.lower() != "inf":  # Go's ParseFloat: "value out of range"
        raise ValueError(f"number {body!r} out of range")
    return sign * value


class _Err(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.pos = pos


#: The most samples one series' values may expand to. promtool has no bound and runs out of
#: memory on ``1x10000000000000000000``; promlab refuses it with a positioned error instead
#: (ten million samples is 19 years at a 1m interval).
MAX_SERIES_SAMPLES = 10_000_000


def _count(items: list[Item], times: str, extra: int, pos: int) -> int:
    """``int(times) + extra`` items more, refused past :data:`MAX_SERIES_SAMPLES` in all."""
    n = int(times) + extra
    if len(items) + n > MAX_SERIES_SAMPLES:
        raise _Err(f"series values expand to more than {MAX_SERIES_SAMPLES} samples "
                   f"(promlab's limit for one series)", pos)
    return n


def _histogram_end(text: str, pos: int, base: int) -> int:
    end = text.find("}}", pos + 2)
    if end < 0:
        raise _Err("unterminated histogram literal", pos + base)
    return end + 2


# -- Prometheus's wording for malformed values -----------------------------------------------
# The fast path above only says "invalid value"; on a failure the values are read again the way
# Prometheus's series lexer and grammar do, to name the first problem as they would (only the
# first is printed). Token kinds: the lexer's, plus "OTHER" for a word the grammar never takes
# here (a keyword, an aggregator, a metric identifier) and "{" after a word.

_OPERATOR_WORDS = frozenset({"and", "or", "unless", "atan2"})
_AGGREGATOR_WORDS = frozenset({"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
                               "topk", "bottomk", "count_values", "quantile"})
_KEYWORD_WORDS = frozenset({"offset", "by", "without", "on", "ignoring", "group_left",
                            "group_right", "bool"})
_DIGITS = tuple("0123456789")
_SIMPLE_TOKENS = {"+": "ADD", "-": "SUB", "x": "TIMES", "_": "BLANK"}
# What the lexer takes as a number: digits, a fraction, an exponent (its digits optional).
_LEX_NUMBER = re.compile(r"[0-9]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]*)?")
_GO_FLOAT = re.compile(r"[0-9]*\.?[0-9]*(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN]")


class _Tok:
    __slots__ = ("desc", "kind", "pos", "val")

    def __init__(self, kind: str, val: str, pos: int, desc: str) -> None:
        self.kind, self.val, self.pos, self.desc = kind, val, pos, desc


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9")


def _word_token(word: str, pos: int) -> _Tok:
    low = word.lower()
    if low in ("inf", "nan"):
        return _Tok("NUMBER", word, pos, f"number {go_quote(word)}")
    if low in _OPERATOR_WORDS:
        return _Tok("OTHER", word, pos, f"<op:{word}>")
    if low in _AGGREGATOR_WORDS:
        return _Tok("OTHER", word, pos, f"<aggr:{word}>")
    if low in _KEYWORD_WORDS:
        return _Tok("OTHER", word, pos, f"<{word}>")
    if low in ("start", "end"):
        return _Tok("OTHER", word, pos, go_quote(word))
    if ":" in word:
        return _Tok("OTHER", word, pos, f"metric identifier {go_quote(word)}")
    return _Tok("IDENTIFIER", word, pos, f"identifier {go_quote(word)}")


def _lex_values(text: str) -> list[_Tok]:
    """Tokens of a value sequence, up to the first one the lexer refuses (kind ``ERROR``, its
    message in ``desc``) or the end (``EOF``)."""
    toks: list[_Tok] = []
    pos, n = 0, len(text)
    while True:
        if pos >= n:
            toks.append(_Tok("EOF", "", n, "end of input"))
            return toks
        ch, start = text[pos], pos
        if ch in " \t\n\r":
            toks.append(_Tok("SPACE", ch, start, go_quote(ch)))
            while pos < n and text[pos] in " \t\n\r":
                pos += 1
        elif ch in _SIMPLE_TOKENS:
            kind = _SIMPLE_TOKENS[ch]
            toks.append(_Tok(kind, ch, start, f"<op:{ch}>" if ch in "+-" else go_quote(ch)))
            pos += 1
        elif ch.isascii() and (ch.isdigit() or (ch == "." and text[pos + 1:pos + 2] in _DIGITS)):
            pos = _LEX_NUMBER.match(text, pos).end()  # type: ignore[union-attr]
            nxt = text[pos:pos + 1]
            val = text[start:pos]
            if nxt and nxt != "x" and _is_alnum(nxt):
                toks.append(_Tok("ERROR", val, start, f"bad number syntax: {go_quote(val)}"))
                return toks
            desc = f"number {go_quote(val)}" if len(val) <= 10 else \
                f"number {go_quote(val[:10])}..."
            toks.append(_Tok("NUMBER", val, start, desc))
        elif ch.isascii() and ch.isalpha():
            while pos < n and (_is_alnum(text[pos]) or text[pos] == ":"):
                pos += 1
            toks.append(_word_token(text[start:pos], start))
            if text[pos:pos + 1] == "{":  # the lexer leaves the value sequence: never valid
                toks.append(_Tok("OTHER", "{", pos, go_quote("{")))
                toks.append(_Tok("EOF", "", n, "end of input"))
                return toks
        else:
            toks.append(_Tok("ERROR", ch, start,
                             f"unexpected character in series sequence: {go_quote_rune(ch)}"))
            return toks


def _float_error(val: str) -> str | None:
    word = val.lower() in ("inf", "nan")
    if _GO_FLOAT.fullmatch(val) is None or not (word or any(c.isdigit() for c in val)):
        return f"strconv.ParseFloat: parsing {go_quote(val)}: invalid syntax"
    if val.lower() != "inf" and math.isinf(parse_go_number(val)):
        return f"strconv.ParseFloat: parsing {go_quote(val)}: value out of range"
    return None


def _uint_error(val: str) -> str | None:
    if not val.isascii() or not val.isdigit():
        return f"strconv.ParseUint: parsing {go_quote(val)}: invalid syntax"
    if int(val) >= 2**64:
        return f"strconv.ParseUint: parsing {go_quote(val)}: value out of range"
    return None


# Parser states: what the grammar expects next. "list": a space or the end; "space": an item, a
# space or the end; "blank"/"value": an optional "xN" (a value also "+S"/"-S"); the rest are
# inside an item, where a wrong token is "unexpected ... in series values".
_INSIDE = {"blank_x": ("NUMBER",), "sign": ("NUMBER",), "times": ("NUMBER",),
           "step_sign": ("NUMBER",), "step": ("TIMES",)}


def _first_error(text: str) -> tuple[str, int] | None:
    """Prometheus's first error for the value sequence ``text`` (the part after the series, from
    its separating space) and its offset in ``text``; None when Prometheus takes it."""
    state = "list" if text[:1] in _SPACE and text else "space"
    for tok in _lex_values(text):
        if tok.kind == "ERROR":
            return tok.desc, tok.pos
        if state in _INSIDE:
            if tok.kind not in _INSIDE[state]:
                return f"unexpected {tok.desc} in series values", tok.pos
            if state in ("blank_x", "times"):
                err = _uint_error(tok.val)
                if err:
                    return f"invalid repetition in series values: {err}", tok.pos
                state = "list"
            elif state == "step":
                state = "times"
            else:
                err = _float_error(tok.val)
                if err:
                    return f"error parsing number: {err}", tok.pos
                state = "value" if state == "sign" else "step"
            continue
        if state == "blank" and tok.kind == "TIMES":
            state = "blank_x"
            continue
        if state == "value" and tok.kind in ("TIMES", "ADD", "SUB"):
            state = "times" if tok.kind == "TIMES" else "step_sign"
            continue
        if state == "space":
            if tok.kind == "BLANK":
                state = "blank"
                continue
            if tok.kind in ("ADD", "SUB"):
                state = "sign"
                continue
            if tok.kind == "NUMBER":
                err = _float_error(tok.val)
                if err:
                    return f"error parsing number: {err}", tok.pos
                state = "value"
                continue
            if tok.kind == "IDENTIFIER":
                if tok.val != "stale":
                    return (f'unexpected {tok.desc} in series values, expected number or '
                            f'"stale"'), tok.pos
                state = "value"
                continue
        # A finished item (or none): only a space or the end may follow.
        if tok.kind == "EOF":
            return None
        if tok.kind != "SPACE":
            return f"unexpected {tok.desc}", tok.pos
        state = "space"
    return None


def parse_values(text: str, base: int = 0) -> list[Item]:
    """Expand a value sequence (the part after the series) into items.

    ``base`` is added to error positions (the offset of ``text`` in its line). A malformed
    sequence is refused with Prometheus's message for its first problem (for the notation
    Prometheus 2 knows: before any native histogram literal).
    """
    try:
        return _expand_values(text, base)
    except _Err as exc:
        cut = 0
        if "{{" in text:  # read again from the space before the failing item (those before it
            # are fine), so that a histogram literal earlier on does not stop the reading
            cut = max(0, text.rfind(" ", 0, exc.pos - base), text.rfind("\t", 0, exc.pos - base))
        found = _first_error(text[cut:])
        if found is not None and "{{" not in text[cut:cut + found[1] + 2]:
            raise _Err(found[0], cut + found[1] + base) from None
        raise


def _expand_values(text: str, base: int) -> list[Item]:
    items: list[Item] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos] in _SPACE:
            pos += 1
            continue
        start = pos
        if text.startswith("{{", pos):
            end = _histogram_end(text, pos, base)
            try:
                first = parse_histogram(text[pos:end])
                pos = end
                m = _HIST_TAIL.match(text, pos)
                if m:
                    items.extend([first] * _count(items, m.group(1), 1, start + base))
                    pos = m.end()
                elif pos < n and text[pos] in "+-" and text.startswith("{{", pos + 1):
                    end2 = _histogram_end(text, pos + 1, base)
                    m = _HIST_TAIL.match(text, end2)
                    if m is None:
                        raise _Err("expected 'x<count>' after histogram increment", end2 + base)
                    inc = parse_histogram(text[pos + 1:end2])
                    sign = 1.0 if text[pos] == "+" else -1.0
                    items.extend(histogram_series(first, inc, _count(items, m.group(1), 0, start + base),
                                                  sign))
                    pos = m.end()
                else:
                    items.append(first)
            except ValueError as exc:
                raise _Err(str(exc), start + base) from None
            if pos < n and text[pos] not in _SPACE:
                raise _Err("unexpected text after histogram literal", pos + base)
            continue
        while pos < n and text[pos] not in _SPACE:
            pos += 1
        tok = text[start:pos]
        m = _ITEM.match(tok)
        if m is None:
            raise _Err(f"invalid value {tok!r} in series values", start + base)
        try:
            if m.group("blank"):
                count = m.group("bn")
                items.extend([None] * (_count(items, count, 0, start + m.start("bn") + base) if count is not None else 1))
            elif m.group("stale"):
                items.append(STALE_NAN)
            else:
                v = _num(m.group("v"))
                reps = m.group("n")
                if reps is None:
                    items.append(v)
                elif m.group("s") is None:
                    items.extend([v] * _count(items, reps, 1, start + m.start("n") + base))
                else:
                    step = _num(m.group("s"))
                    for _ in range(_count(items, reps, 1, start + m.start("n") + base)):
                        items.append(v)
                        v += step
        except ValueError as exc:
            raise _Err(str(exc), start + base) from None
    return items


def parse_series_desc(line: str, *, duplicates: list[str] | None = None,
                      ) -> tuple[Labels, list[Item]]:
    """Parse one series line (``metric{labels} values...``).

    Raises :class:`~promlab.errors.ParseError` positioned in ``line``. With ``duplicates``
    (a list), repeated label names are collected there instead (see :mod:`.seriesname`):
    promtool's loader only refuses such a series when it appends its samples.

    Examples
    --------
    >>> ls, vals = parse_series_desc('up{job="a"} 1+1x2 _ stale')
    >>> str(ls), vals[:4]
    ('up{job="a"}', [1.0, 2.0, 3.0, None])
    """
    labels, pos = parse_series_name(line, duplicates=duplicates)
    try:
        if pos < len(line) and line[pos] not in _SPACE:
            # Only a space (or the end) may follow the series: anything else is refused as
            # the value grammar's first token.
            tok = _lex_values(line[pos:])[0]
            raise _Err(tok.desc if tok.kind == "ERROR" else f"unexpected {tok.desc} in series values", pos)
        return labels, parse_values(line[pos:], pos)
    except _Err as exc:
        raise ParseError(str(exc), query=line, pos=exc.pos) from None
    except ValueError as exc:
        raise ParseError(str(exc), query=line, pos=0) from None
