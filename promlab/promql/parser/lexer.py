"""The PromQL lexer: query text to a list of :class:`Token`.

It follows Prometheus's lexer (``promql/parser/lex.go``): keywords are case-insensitive, ``Inf``
and ``NaN`` are numbers, numbers and durations share one scanner, label matchers inside ``{...}``
are lexed in their own mode, and strings keep their quotes in :attr:`Token.val` (unquote them with
:func:`unquote`). Lexing stops at the first error, which becomes a final ``ERROR`` token carrying
Prometheus's message; the parser reports it when it gets there, as Prometheus's lazy lexer does.
"""

from __future__ import annotations

import re

from promlab.promql.parser.literals import go_quote, go_quote_rune, unquote

__all__ = [
    "AGGREGATORS",
    "AGGREGATORS_WITH_PARAM",
    "KEYWORDS",
    "OPERATORS",
    "Token",
    "go_quote",
    "go_quote_rune",
    "lex",
    "unquote",
]

# Token types (the names of Prometheus's item types).
EOF = "EOF"
ERROR = "ERROR"

OPERATORS = {
    "ADD": "+", "SUB": "-", "MUL": "*", "DIV": "/", "MOD": "%", "POW": "^",
    "EQLC": "==", "NEQ": "!=", "LSS": "<", "LTE": "<=", "GTR": ">", "GTE": ">=",
    "LAND": "and", "LOR": "or", "LUNLESS": "unless", "ATAN2": "atan2",
    "EQL_REGEX": "=~", "NEQ_REGEX": "!~", "AT": "@",
    "TRIM_UPPER": "</", "TRIM_LOWER": ">/",
}

AGGREGATORS = {
    "SUM": "sum", "AVG": "avg", "COUNT": "count", "MIN": "min", "MAX": "max", "GROUP": "group",
    "STDDEV": "stddev", "STDVAR": "stdvar", "TOPK": "topk", "BOTTOMK": "bottomk",
    "COUNT_VALUES": "count_values", "QUANTILE": "quantile", "LIMITK": "limitk",
    "LIMIT_RATIO": "limit_ratio",
}
AGGREGATORS_WITH_PARAM = {"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"}

KEYWORDS = {
    "BOOL": "bool", "BY": "by", "GROUP_LEFT": "group_left", "GROUP_RIGHT": "group_right",
    "IGNORING": "ignoring", "OFFSET": "offset", "ON": "on", "WITHOUT": "without",
}

# Item types whose printable form is fixed (Prometheus's ItemTypeStr).
PUNCTUATION = {
    "LEFT_PAREN": "(", "RIGHT_PAREN": ")", "LEFT_BRACE": "{", "RIGHT_BRACE": "}",
    "LEFT_BRACKET": "[", "RIGHT_BRACKET": "]", "COMMA": ",", "EQL": "=", "COLON": ":",
}

# Lower-case word -> item type, for words lexed outside braces.
_WORDS: dict[str, str] = {
    "and": "LAND", "or": "LOR", "unless": "LUNLESS", "atan2": "ATAN2",
    "start": "START", "end": "END", "inf": "NUMBER", "nan": "NUMBER",
    "step": "STEP", "range": "RANGE", "anchored": "ANCHORED", "smoothed": "SMOOTHED",
}
_WORDS.update({v: k for k, v in AGGREGATORS.items()})
_WORDS.update({v: k for k, v in KEYWORDS.items()})

_FIXED = (set(PUNCTUATION) | set(OPERATORS) | set(AGGREGATORS) | set(KEYWORDS)
          | {"START", "END", "STEP", "RANGE", "ANCHORED", "SMOOTHED"})

_TYPE_DESC = {
    ERROR: "error", EOF: "end of input", "IDENTIFIER": "identifier",
    "METRIC_IDENTIFIER": "metric identifier", "STRING": "string", "NUMBER": "number",
    "DURATION": "duration",
}

_SPACE = " \t\n\r"
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"


def _is_alpha(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_alnum(c: str) -> bool:
    return _is_alpha(c) or ("0" <= c <= "9")


class Token:
    """One lexed item: ``typ`` (Prometheus item type name), ``val`` (source text), ``pos``."""

    __slots__ = ("pos", "typ", "val")

    def __init__(self, typ: str, val: str, pos: int) -> None:
        self.typ = typ
        self.val = val
        self.pos = pos

    @property
    def end(self) -> int:
        return self.pos + len(self.val)

    def __repr__(self) -> str:
        return f"Token({self.typ}, {self.val!r}, {self.pos})"

    def __str__(self) -> str:
        t = self.typ
        if t == EOF:
            return "EOF"
        if t == ERROR:
            return self.val
        if t in ("IDENTIFIER", "METRIC_IDENTIFIER"):
            return go_quote(self.val)
        if t in KEYWORDS:
            return f"<{self.val}>"
        if t in OPERATORS:
            return f"<op:{self.val}>"
        if t in AGGREGATORS:
            return f"<aggr:{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)

    def desc(self) -> str:
        """How Prometheus names this item in ``unexpected ...`` messages."""
        if self.typ in _FIXED:
            return str(self)
        if self.typ == EOF:
            return "end of input"
        return f"{_TYPE_DESC.get(self.typ, self.typ.lower())} {self}"


class _LexError(Exception):
    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.pos = pos


def lex(text: str) -> list[Token]:
    """Split ``text`` into tokens; the list always ends with an ``EOF`` or ``ERROR`` token."""
    toks: list[Token] = []
    try:
        _lex_into(text, toks)
    except _LexError as e:
        toks.append(Token(ERROR, e.msg, e.pos))
    return toks


def _lex_into(text: str, toks: list[Token]) -> None:
    n = len(text)
    i = 0
    paren_depth = 0
    bracket_open = False
    got_colon = False
    append = toks.append
    while True:
        if i >= n:
            if paren_depth:
                raise _LexError("unclosed left parenthesis", n)
            if bracket_open:
                raise _LexError("unclosed left bracket", n)
            append(Token(EOF, "", n))
            return
        c = text[i]
        if c in _SPACE:
            i += 1
            continue
        start = i
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c == ",":
            append(Token("COMMA", c, i))
            i += 1
        elif c in "*%^+-":
            append(Token({"*": "MUL", "%": "MOD", "^": "POW", "+": "ADD", "-": "SUB"}[c], c, i))
            i += 1
        elif c == "/":
            append(Token("DIV", c, i))
            i += 1
        elif c == "=":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "=":
                append(Token("EQLC", "==", i))
                i += 2
            elif nxt == "~":
                raise _LexError("unexpected character after '=': '~'", i)
            else:
                append(Token("EQL", "=", i))
                i += 1
        elif c == "!":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "=":
                append(Token("NEQ", "!=", i))
                i += 2
            else:
                shown = go_quote_rune(nxt) if nxt else "'\ufffd'"
                raise _LexError(f"unexpected character after '!': {shown}", i)
        elif c == "<" or c == ">":
            nxt = text[i + 1] if i + 1 < n else ""
            base = "LSS" if c == "<" else "GTR"
            if nxt == "=":
                append(Token("LTE" if c == "<" else "GTE", c + "=", i))
                i += 2
            elif nxt == "/":
                append(Token("TRIM_UPPER" if c == "<" else "TRIM_LOWER", c + "/", i))
                i += 2
            else:
                append(Token(base, c, i))
                i += 1
        elif c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            i = _lex_number_or_duration(text, i, toks)
        elif c == '"' or c == "'":
            i = _lex_string(text, i, c)
            append(Token("STRING", text[start:i], start))
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise _LexError("unterminated raw string", start)
            i = j + 1
            append(Token("STRING", text[start:i], start))
        elif _is_alpha(c) or c == ":":
            if bracket_open and c == ":":
                if got_colon:
                    raise _LexError("unexpected colon ':'", i)
                append(Token("COLON", c, i))
                got_colon = True
                i += 1
            else:
                i = _lex_word(text, i, toks, bracket_open)
        elif c == "(":
            append(Token("LEFT_PAREN", c, i))
            paren_depth += 1
            i += 1
        elif c == ")":
            append(Token("RIGHT_PAREN", c, i))
            paren_depth -= 1
            i += 1
            if paren_depth < 0:
                raise _LexError("unexpected right parenthesis ')'", i)
        elif c == "{":
            append(Token("LEFT_BRACE", c, i))
            i = _lex_braces(text, i + 1, toks)
        elif c == "[":
            if bracket_open:
                raise _LexError("unexpected left bracket '['", i)
            got_colon = False
            append(Token("LEFT_BRACKET", c, i))
            bracket_open = True
            i += 1
        elif c == "]":
            if not bracket_open:
                raise _LexError("unexpected right bracket ']'", i)
            append(Token("RIGHT_BRACKET", c, i))
            bracket_open = False
            i += 1
        elif c == "@":
            append(Token("AT", c, i))
            i += 1
        else:
            raise _LexError(f"unexpected character: {go_quote_rune(c)}", i)


#: A word's characters (ASCII letters, digits, ``_``; ``:`` too outside brackets).
_WORD_RE = re.compile(r"[A-Za-z0-9_:]*")
_WORD_IN_BRACKETS_RE = re.compile(r"[A-Za-z0-9_]*")


def _lex_word(text: str, i: int, toks: list[Token], in_brackets: bool = False) -> int:
    start = i
    m = (_WORD_IN_BRACKETS_RE if in_brackets else _WORD_RE).match(text, i)
    assert m is not None  # the patterns match the empty string
    i = m.end()
    word = text[start:i]
    typ = _WORDS.get(word.lower())
    if typ is None:
        typ = "METRIC_IDENTIFIER" if ":" in word else "IDENTIFIER"
    toks.append(Token(typ, word, start))
    return i


def _scan_number(text: str, i: int) -> tuple[int, bool]:
    """Scan a number at ``i`` as Prometheus 3's lexer does; returns (end, ok).

    After an optional ``0x`` (and one ``_``), an optional ``.`` and one digit, any run of
    digits, ``.``, ``_`` and ``e``/``E`` follows, with these rules: a second ``.`` or exponent,
    ``.`` followed by ``_`` or ``.``, a fraction in a hex number, an exponent (and its sign)
    followed by ``._eE`` or the end of the input, and ``_`` followed by the same, end the scan
    as no number (``1.2.3``, ``0x1.8``, ``1e`` at the end). In a hex number ``e`` is read as
    an exponent first. The text need not be a valid number: ``0.2.3`` (whose first dot is
    not counted) is scanned, and the parser's number conversion refuses it. ``end`` is where
    the scan stopped; ``ok`` is False when it failed or a letter or digit follows.
    """
    n = len(text)

    def at(k: int, chars: str) -> bool:
        return k < n and text[k] in chars

    digits = _DIGITS
    if at(i, "0"):
        i += 1
        if at(i, "xX"):
            i += 1
            if at(i, "_"):
                i += 1
            digits = _HEX
    if at(i, "."):
        i += 1
    if at(i, digits):
        i += 1
    dot = exp = False
    while at(i, digits + "._eE"):
        c = text[i]
        if (c == "." and dot) or (c in "eE" and exp):
            return i + 1, False
        if c == ".":
            dot = True
            i += 1
            if at(i, "_."):
                return i + 1, False
            if digits is _HEX:
                return i, False
        elif c in "eE_":
            i += 1
            if c != "_":
                exp = True
                if at(i, "+-"):
                    i += 1
            if at(i, "._eE"):
                return i + 1, False
            if i >= n:
                return i, False
        else:
            while at(i, digits):
                i += 1
    if i < n and _is_alnum(text[i]):
        return i, False
    return i, True


def _lex_number_or_duration(text: str, i: int, toks: list[Token]) -> int:
    n = len(text)
    start = i
    end, ok = _scan_number(text, i)
    if ok:
        toks.append(Token("NUMBER", text[start:end], start))
        return end
    # Maybe a duration: units (and more digit+unit groups) after the number, e.g. 1h30m.
    j = end
    if j < n and text[j] in "smhdwy":
        j += 1
        if j < n and text[j] == "s":
            j += 1
        good = True
        while good and j < n and text[j] in _DIGITS:
            while j < n and text[j] in _DIGITS:
                j += 1
            if j < n and text[j] in "smhdw":
                j += 1
                if j < n and text[j] == "s":
                    j += 1
            else:
                good = False
        if good:
            if j >= n or not _is_alnum(text[j]):
                toks.append(Token("DURATION", text[start:j], start))
                return j
            j += 1
    raise _LexError(f"bad number or duration syntax: {go_quote(text[start:j])}", start)


def _lex_string(text: str, i: int, quote: str) -> int:
    n = len(text)
    start = i
    i += 1
    while True:
        if i >= n or text[i] == "\n":
            raise _LexError("unterminated quoted string", start)
        c = text[i]
        if c == "\\":
            try:
                i = _check_escape(text, i + 1, quote)
            except _LexError as e:
                raise _LexError(e.msg, start) from None
            continue
        i += 1
        if c == quote:
            return i


def _check_escape(text: str, i: int, quote: str) -> int:
    n = len(text)
    if i >= n:
        raise _LexError("escape sequence not terminated", i)
    c = text[i]
    if c in "abfnrtv\\" or c == quote:
        return i + 1
    if c in "01234567":
        count, base, mx, digits = 3, 8, 255, "01234567"
    elif c == "x":
        count, base, mx, digits, i = 2, 16, 255, _HEX, i + 1
    elif c == "u":
        count, base, mx, digits, i = 4, 16, 0x10FFFF, _HEX, i + 1
    elif c == "U":
        count, base, mx, digits, i = 8, 16, 0x10FFFF, _HEX, i + 1
    else:
        raise _LexError(f"unknown escape sequence {_go_unicode(c)}", i)
    val = 0
    for _ in range(count):
        if i >= n:
            raise _LexError("escape sequence not terminated", i)
        d = text[i]
        if d not in digits:
            raise _LexError(f"illegal character {_go_unicode(d)} in escape sequence", i)
        val = val * base + int(d, 16)
        i += 1
    if val > mx or 0xD800 <= val < 0xE000:
        raise _LexError("escape sequence is an invalid Unicode code point", i)
    return i


def _go_unicode(c: str) -> str:
    """Go's ``%#U``: ``U+0027 '''``."""
    o = ord(c)
    if c.isprintable():
        return f"U+{o:04X} '{c}'"
    return f"U+{o:04X}"


def _lex_braces(text: str, i: int, toks: list[Token]) -> int:
    """Lex label matchers after ``{`` up to and including ``}``."""
    n = len(text)
    append = toks.append
    while True:
        if i >= n:
            raise _LexError("unexpected end of input inside braces", n)
        c = text[i]
        start = i
        if c in _SPACE:
            i += 1
        elif c == "#":  # a comment runs to the end of the line, inside braces too
            while i < n and text[i] != "\n":
                i += 1
        elif _is_alpha(c):
            while i < n and _is_alnum(text[i]):
                i += 1
            append(Token("IDENTIFIER", text[start:i], start))
        elif c == ",":
            append(Token("COMMA", c, i))
            i += 1
        elif c == '"' or c == "'":
            i = _lex_string(text, i, c)
            append(Token("STRING", text[start:i], start))
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise _LexError("unterminated raw string", start)
            i = j + 1
            append(Token("STRING", text[start:i], start))
        elif c == "=":
            if i + 1 < n and text[i + 1] == "~":
                append(Token("EQL_REGEX", "=~", i))
                i += 2
            else:
                append(Token("EQL", "=", i))
                i += 1
        elif c == "!":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt == "~":
                append(Token("NEQ_REGEX", "!~", i))
                i += 2
            elif nxt == "=":
                append(Token("NEQ", "!=", i))
                i += 2
            else:
                shown = go_quote_rune(nxt) if nxt else "'\ufffd'"
                raise _LexError(f"unexpected character after '!' inside braces: {shown}", i)
        elif c == "{":
            raise _LexError("unexpected left brace '{'", i)
        elif c == "}":
            append(Token("RIGHT_BRACE", c, i))
            return i + 1
        else:
            raise _LexError(f"unexpected character inside braces: {go_quote_rune(c)}", i)


