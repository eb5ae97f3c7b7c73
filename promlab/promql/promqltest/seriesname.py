"""The series part of a series description (``name{label="value", ...}``), read the way
Prometheus's PromQL lexer and grammar read it, with their wording for the first problem.

Two readings share the code:

* a series description's (promtool's ``input_series``, a ``load`` line): the value sequence
  starts right after the name, or after the closing brace, and :func:`parse_series_name`
  returns where;
* a metric's (Prometheus's ``parser.ParseMetric``, which promtool applies to an
  ``exp_samples`` entry's ``labels``): :func:`parse_metric` takes the whole text, spaces
  and ``#`` comments allowed around the tokens.

A malformed name or label set is refused with :class:`~promlab.errors.ParseError` worded and
positioned as Prometheus 2.42 words the first problem: the lexer's complaints
(``unterminated quoted string``, ``unknown escape sequence U+0071 'q'``,
``unexpected character inside braces: '.'``, ``unexpected end of input inside braces``, ...)
and the grammar's (``unexpected identifier "b" in label set, expected string``,
``unexpected "}" in label set, expected "="``, ``unexpected number "1" in series values``, ...).

Quoted label names (``{"a.b"="c"}``) and a quoted metric name inside the braces
(``{"my.metric"}``) are Prometheus 3 notation, taken as Prometheus 3 takes them (Prometheus 2.42
refuses them: ``unexpected string ... in label set, expected identifier or "}"``).

Label sets are built as Prometheus's grammar builds them: a name before the braces replaces
every ``__name__`` inside them; a label name given twice is reported through ``duplicates``
(Prometheus only refuses such a series when it is appended).

Examples
--------
>>> parse_series_name('up{job="a",} 1 2')
(Labels({'__name__': 'up', 'job': 'a'}), 12)
>>> parse_metric('sum { by = "x" } # a comment')
(('__name__', 'sum'), ('by', 'x'))
>>> parse_series_name('up{job=a} 1')
Traceback (most recent call last):
...
promlab.errors.ParseError: 1:8: parse error: unexpected identifier "a" in label set, expected string
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promlab.errors import ParseError
from promlab.model import Labels
from promlab.promql.parser.literals import go_quote, go_quote_rune

__all__ = ["go_unquote", "parse_metric", "parse_series_name"]

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

# The words the lexer turns into keywords; those the grammar takes as a metric name, and how
# an error message shows the others.
_NAME_KEYWORDS = frozenset({"avg", "bottomk", "by", "count", "count_values", "group", "and", "or",
                            "unless", "max", "min", "offset", "quantile", "stddev", "stdvar", "sum",
                            "topk", "without", "start", "end"})
_AGGREGATORS = frozenset({"avg", "bottomk", "count", "count_values", "group", "max", "min",
                          "quantile", "stddev", "stdvar", "sum", "topk"})
_OPERATOR_WORDS = frozenset({"and", "or", "unless", "atan2"})
_KEYWORDS = frozenset({"bool", "by", "group_left", "group_right", "ignoring", "offset", "on",
                       "without"})

_WORD = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPACES = " \t\n\r"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_EOF = ""
_EOF_RUNE = "'\ufffd'"  # Go's %q of the lexer's end-of-input rune (-1)


@dataclass(frozen=True, slots=True)
class _Tok:
    """A lexer item: ``kind`` (``EOF``, ``ERROR``, ``WORD``, ``IDENT``, ``STRING``, ``EQL``,
    ``COMMA``, ``LBRACE``, ``RBRACE`` or ``OTHER``), its text (the message for an error), where
    it starts and ends, and how a message names it."""

    kind: str
    val: str
    pos: int
    end: int
    desc: str = ""


class _Refused(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _char(text: str, i: int) -> str:
    return text[i] if i < len(text) else _EOF


def _is_alnum(ch: str) -> bool:
    return ch != _EOF and (ch == "_" or (ch.isascii() and ch.isalnum()))


def _run(text: str, i: int, chars: str) -> int:
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def _quoted_desc(kind: str, val: str) -> str:
    """An item as the grammar's messages show it: ``number "1"``, ``string "\\"a\\""``; text
    longer than 10 bytes is cut to 10 characters and ``...`` follows."""
    if len(val.encode("utf-8", "surrogatepass")) > 10:
        return f"{kind} {go_quote(val[:10])}..."
    return f"{kind} {go_quote(val)}"


def _sharp_u(ch: str) -> str:
    """Go's ``%#U`` of a character: ``U+0071 'q'`` (no quoted character when not printable)."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if ch.isprintable() and ch != "\ufffd" else code


def _escape_end(text: str, i: int, quote: str, start: int) -> int:
    """The end of the escape sequence whose backslash precedes ``i``."""
    ch = _char(text, i)
    if ch == _EOF:
        raise _Refused("escape sequence not terminated", start)
    i += 1
    if ch in "abfnrtv\\" or ch == quote:
        return i
    if ch in "01234567":
        count, base, most = 3, 8, 255
    elif ch in ("x", "u", "U"):
        count, base, most = {"x": (2, 16, 255), "u": (4, 16, 0x10FFFF), "U": (8, 16, 0x10FFFF)}[ch]
        ch = _char(text, i)
        i += ch != _EOF
    else:
        raise _Refused(f"unknown escape sequence {_sharp_u(ch)}", start)
    code = 0
    while count > 0:
        digit = _HEX.find(ch) if ch != _EOF else -1
        digit = digit - 6 if digit >= 16 else digit  # the capital hex digits
        if digit < 0 or digit >= base:
            raise _Refused("escape sequence not terminated" if ch == _EOF else
                           f"illegal character {_sharp_u(ch)} in escape sequence", start)
        code = code * base + digit
        count -= 1
        if count:
            ch = _char(text, i)
            i += ch != _EOF
    if code > most or 0xD800 <= code < 0xE000:
        raise _Refused("escape sequence is an invalid Unicode code point", start)
    return i


def _is_rune_error(ch: str) -> bool:
    # Go decodes U+FFFD (and an invalid byte) as utf8.RuneError.
    return ch == "\ufffd" or "\ud800" <= ch <= "\udfff"


def _string(text: str, start: int) -> _Tok:
    """The quoted string at ``start`` (``"``, ``'`` or a backquote)."""
    quote, i = text[start], start + 1
    while True:
        ch = _char(text, i)
        i += ch != _EOF
        if quote != "`" and ch == "\\":
            i = _escape_end(text, i, quote, start)
        elif _is_rune_error(ch):
            raise _Refused("invalid UTF-8 rune", start)
        elif ch == _EOF or (ch == "\n" and quote != "`"):
            raise _Refused("unterminated raw string" if quote == "`" else
                           "unterminated quoted string", start)
        elif ch == quote:
            val = text[start:i]
            return _Tok("STRING", val, start, i, _quoted_desc("string", val))


def _skip(text: str, i: int) -> int:
    """Past spaces and ``#`` comments (to the end of the line)."""
    while i < len(text):
        if text[i] in _SPACES:
            i += 1
        elif text[i] == "#":
            while i < len(text) and text[i] not in "\r\n":
                i += 1
        else:
            break
    return i


def _brace_token(text: str, i: int) -> _Tok:
    """The next item inside braces (the lexer's ``lexInsideBraces``)."""
    i = _skip(text, i)
    ch = _char(text, i)
    if ch == _EOF:
        raise _Refused("unexpected end of input inside braces", i)
    if m := _IDENT.match(text, i):
        return _Tok("IDENT", m.group(0), i, m.end(), f"identifier {go_quote(m.group(0))}")
    if ch in "\"'`":
        return _string(text, i)
    if ch == ",":
        return _Tok("COMMA", ch, i, i + 1, '","')
    if ch == "}":
        return _Tok("RBRACE", ch, i, i + 1, '"}"')
    nxt = _char(text, i + 1)
    if ch == "=":
        if nxt == "~":
            return _Tok("OTHER", "=~", i, i + 2, "<op:=~>")
        return _Tok("EQL", "=", i, i + 1, '"="')
    if ch == "!":
        if nxt in ("~", "="):
            return _Tok("OTHER", ch + nxt, i, i + 2, f"<op:{ch}{nxt}>")
        shown = go_quote_rune(nxt) if nxt else _EOF_RUNE
        raise _Refused(f"unexpected character after '!' inside braces: {shown}", i)
    if ch == "{":
        raise _Refused("unexpected left brace '{'", i)
    raise _Refused(f"unexpected character inside braces: {go_quote_rune(ch)}", i)


def _at(text: str, i: int, chars: str) -> bool:
    return i < len(text) and text[i] in chars


def _number_or_duration(text: str, i: int, series: bool) -> _Tok:
    """A number (or, outside series values, a duration) at ``i`` (``lexNumberOrDuration``)."""
    start = i
    digits = _DIGITS
    if not series and _at(text, i, "0") and _at(text, i + 1, "xX"):
        i, digits = i + 2, _HEX
    i = _run(text, i, digits)
    if _at(text, i, "."):
        i = _run(text, i + 1, digits)
    if _at(text, i, "eE"):
        i += 1 + _at(text, i + 1, "+-")
        i = _run(text, i, _DIGITS)
    if (series and _at(text, i, "x")) or not _is_alnum(_char(text, i)):
        return _Tok("OTHER", text[start:i], start, i, _quoted_desc("number", text[start:i]))
    # A duration: a unit, then more number-unit pairs; not followed by a letter or digit.
    ok = _at(text, i, "smhdwy")
    if ok:
        i += 1 + _at(text, i + 1, "s")
        while ok and _at(text, i, _DIGITS):
            i = _run(text, i, _DIGITS)
            ok = _at(text, i, "smhdw")
            if ok:
                i += 1 + _at(text, i + 1, "s")
        if ok and _is_alnum(_char(text, i)):
            ok, i = False, i + 1
    if not ok:
        raise _Refused(f"bad number or duration syntax: {go_quote(text[start:i])}", start)
    return _Tok("OTHER", text[start:i], start, i, _quoted_desc("duration", text[start:i]))


def _word_desc(word: str) -> str:
    low = word.lower()
    if low in ("inf", "nan"):
        return _quoted_desc("number", word)
    if low in _OPERATOR_WORDS:
        return f"<op:{word}>"
    if low in _AGGREGATORS:
        return f"<aggr:{word}>"
    if low in _KEYWORDS:
        return f"<{word}>"
    if low in ("start", "end"):
        return go_quote(word)
    kind = "metric identifier" if ":" in word else "identifier"
    return f"{kind} {go_quote(word)}"


_OPERATORS = {"*": "<op:*>", "/": "<op:/>", "%": "<op:%>", "+": "<op:+>", "-": "<op:->",
              "^": "<op:^>",
              # (Prometheus's item table lacks "@": its message shows the item type's number)
              "@": '"<Item 57385>" <op:@>', ",": '","', "(": '"("', "[": '"["', "{": '"{"'}


def _top_token(text: str, i: int, series: bool) -> _Tok:
    """The next item outside braces (the lexer's ``lexStatements``), spaces and comments
    skipped; a word is ``WORD`` when the grammar takes it as a metric name."""
    i = _skip(text, i)
    ch, nxt = _char(text, i), _char(text, i + 1)
    if ch == _EOF:
        return _Tok("EOF", "", i, i, "end of input")
    if m := _WORD.match(text, i):
        word = m.group(0)
        low = word.lower()
        named = low in _NAME_KEYWORDS or (low not in _KEYWORDS and low not in _OPERATOR_WORDS
                                          and low not in ("inf", "nan"))
        return _Tok("WORD" if named else "OTHER", word, i, m.end(), _word_desc(word))
    if (ch.isascii() and ch.isdigit()) or (ch == "." and nxt.isascii() and nxt.isdigit() and nxt):
        return _number_or_duration(text, i, series)
    if ch in "\"'`":
        return _string(text, i)
    if ch == "{":
        return _Tok("LBRACE", ch, i, i + 1, '"{"')
    if ch in _OPERATORS:
        return _Tok("OTHER", ch, i, i + 1, _OPERATORS[ch])
    pair = ch + nxt
    if pair in ("==", "!=", "<=", ">="):
        return _Tok("OTHER", pair, i, i + 2, f"<op:{pair}>")
    if ch in "<>":
        return _Tok("OTHER", ch, i, i + 1, f"<op:{ch}>")
    if ch == "=":
        if nxt == "~":
            raise _Refused("unexpected character after '=': '~'", i)
        return _Tok("OTHER", ch, i, i + 1, '"="')
    if ch == "!":
        shown = go_quote_rune(nxt) if nxt else _EOF_RUNE
        raise _Refused(f"unexpected character after '!': {shown}", i)
    if ch == ")":  # the lexer emits it, then complains from after it
        raise _Refused("unexpected right parenthesis ')'", i + 1)
    if ch == "]":
        raise _Refused("unexpected right bracket ']'", i)
    raise _Refused(f"unexpected character: {go_quote_rune(ch)}", i)


def _label_set(text: str, i: int) -> tuple[list[tuple[str, str]], int]:
    """The label set whose ``{`` ends at ``i``: its pairs (a bare quoted name as ``__name__``)
    and the offset after its ``}``."""
    pairs: list[tuple[str, str]] = []
    while True:  # after "{" or ",": a label, or the end
        tok = _brace_token(text, i)
        if tok.kind == "RBRACE":
            return pairs, tok.end
        if tok.kind not in ("IDENT", "STRING"):
            raise _Refused(f'unexpected {tok.desc} in label set, expected identifier or "}}"', tok.pos)
        name = tok.val if tok.kind == "IDENT" else go_unquote(tok.val)
        eql = _brace_token(text, tok.end)
        if eql.kind == "EQL":
            val = _brace_token(text, eql.end)
            if val.kind != "STRING":
                raise _Refused(f"unexpected {val.desc} in label set, expected string", val.pos)
            pairs.append((name, go_unquote(val.val)))
            after = _brace_token(text, val.end)
        elif tok.kind == "IDENT":
            raise _Refused(f'unexpected {eql.desc} in label set, expected "="', eql.pos)
        else:  # Prometheus 3: a quoted name alone is the metric name
            pairs.append(("__name__", name))
            after = eql
        if after.kind == "RBRACE":
            return pairs, after.end
        if after.kind != "COMMA":
            raise _Refused(f'unexpected {after.desc} in label set, expected "," or "}}"', after.pos)
        i = after.end


def _build(name: str | None, pairs: list[tuple[str, str]], duplicates: list[str] | None,
           text: str) -> Labels:
    """The label set as the grammar builds it (a name before the braces replaces every
    ``__name__`` in them); a repeated name goes to ``duplicates`` (the first value kept)."""
    out: dict[str, str] = {} if name is None else {"__name__": name}
    for k, v in pairs:
        if name is not None and k == "__name__":
            continue
        if k not in out:
            out[k] = v
        elif duplicates is None:
            raise ParseError(f"duplicate label name {k!r}", query=text, pos=0)
        else:
            duplicates.append(k)
    return Labels(out)


def _metric(text: str, series: bool) -> tuple[str | None, list[tuple[str, str]], int]:
    """The name before the braces (None: none), the pairs in the braces and the offset after."""
    tok = _top_token(text, 0, series)
    name: str | None = None
    pos = tok.pos
    if tok.kind == "WORD":
        name, pos = tok.val, tok.end
        if series and _char(text, pos) != "{":
            return name, [], pos
        tok = _top_token(text, pos, series)
    if tok.kind != "LBRACE":
        if name is not None or tok.kind == "EOF":
            return name, [], pos
        raise _Refused(f"unexpected {tok.desc}" + (" in series values" if series else ""), tok.pos)
    pairs, end = _label_set(text, tok.end)
    return name, pairs, end


def parse_series_name(line: str, *, duplicates: list[str] | None = None) -> tuple[Labels, int]:
    """Read the series part of a series description line; its labels and the offset where the
    value sequence starts (right after the name or the ``}``; anything there but a space or
    the end is the value grammar's to refuse).

    With ``duplicates`` (a list), a label name given twice is appended to it instead of
    raising.

    Raises
    ------
    ParseError
        Prometheus's first error, positioned in ``line``.
    """
    try:
        name, pairs, end = _metric(line, True)
    except _Refused as e:
        raise ParseError(e.message, query=line, pos=e.pos) from None
    return _build(name, pairs, duplicates, line), end


def parse_metric(text: str) -> tuple[tuple[str, str], ...]:
    """Read ``text`` as Prometheus's ``parser.ParseMetric`` does (a metric name and/or a label
    set, nothing else; empty text is no labels): the label list it returns, by name.

    That list is Prometheus's, which no stored series has: a name given twice is kept twice,
    and an empty value is kept unless a metric name precedes the braces (the label builder
    that sets the name drops empty values).

    >>> parse_metric('up{b="", a="1", a="2"}'), parse_metric('{b="", a="1"}')
    ((('__name__', 'up'), ('a', '1'), ('a', '2')), (('a', '1'), ('b', '')))

    Raises
    ------
    ParseError
        Prometheus's first error, positioned in ``text``.
    """
    try:
        name, pairs, end = _metric(text, False)
        tok = _top_token(text, end, False)
        if tok.kind != "EOF":
            raise _Refused(f"unexpected {tok.desc}", tok.pos)
    except _Refused as e:
        raise ParseError(e.message, query=text, pos=e.pos) from None
    if name is not None:
        pairs = [("__name__", name)] + [(k, v) for k, v in pairs if k != "__name__" and v]
    return tuple(sorted(pairs, key=lambda p: p[0]))
