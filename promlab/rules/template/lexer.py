"""Tokens of Go's text/template: text, ``{{ }}`` with trim markers ``{{- ``/`` -}}``, comments,
and inside actions identifiers, ``.fields``, ``$variables``, literals and punctuation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from promlab.rules.template.gonum import NUMBER

__all__ = ["KEYWORDS", "LexError", "Token", "lex"]

KEYWORDS = frozenset({"block", "break", "continue", "define", "else", "end", "if", "nil", "range",
                      "template", "with"})
_SPACE = " \t\r\n"
_TERMINATORS = _SPACE + ".,|:()"
_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` (``text``, ``{{``, ``}}``, ``space``, ``ident``, ``field``, ``var``,
    ``.``, ``bool``, ``number``, ``string``, ``rawstring``, ``char``, ``(``, ``)``, ``|``, ``:=``,
    ``=``, ``,``, a keyword, ``eof``), its text and its character offset."""

    kind: str
    val: str
    pos: int

    def describe(self) -> str:
        """How Go's parser names the token in ``unexpected ... in ...`` errors."""
        if self.kind == "eof":
            return "EOF"
        if self.kind in KEYWORDS or self.kind == "nil":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


class LexError(Exception):
    """A lexical error: Go's message and the offset where it happened."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def _go_quote(s: str) -> str:
    from promlab.rules.template.gofmt import quote

    return quote(s)


def _rune(c: str) -> str:
    """Go's ``%#U``: ``U+0023 '#'``."""
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def _right_trim_at(text: str, i: int) -> bool:
    return i < len(text) and text[i] in _SPACE and text.startswith("-}}", i + 1)


def lex(text: str) -> list[Token]:
    """All tokens of ``text``, ending with an ``eof`` token.

    A lexical error inside an action becomes an ``error`` token (its message as ``val``) before
    ``eof``; an unclosed comment raises :class:`LexError`.
    """
    toks: list[Token] = []
    i, n = 0, len(text)
    while True:
        j = text.find("{{", i)
        if j < 0:
            if i < n:
                toks.append(Token("text", text[i:], i))
            toks.append(Token("eof", "", n))
            return toks
        k = j + 2
        trim = k + 1 < n and text[k] == "-" and text[k + 1] in _SPACE
        end = j
        if trim:
            end = len(text[i:j].rstrip(_SPACE)) + i
        if end > i:
            toks.append(Token("text", text[i:end], i))
        if trim:
            k += 2
        toks.append(Token("{{", "{{", j))
        if text.startswith("/*", k):
            c = text.find("*/", k + 2)
            if c < 0:
                raise LexError("unclosed comment", k)
            c += 2
            if text.startswith("}}", c):
                i = c + 2
            elif _right_trim_at(text, c):
                i = c + 4
                i = len(text) - len(text[i:].lstrip(_SPACE))
            else:
                raise LexError("comment ends before closing delimiter", c)
            toks.pop()
            continue
        try:
            i = _lex_action(text, k, toks)
        except LexError as e:
            # Go lexes lazily: a parse error earlier in the text wins, so the error becomes a token.
            toks.append(Token("error", e.message, e.pos))
            toks.append(Token("eof", "", n))
            return toks


def _lex_action(text: str, i: int, toks: list[Token]) -> int:
    """Lex the inside of an action starting at ``i``; return the offset after its ``}}``."""
    n = len(text)
    depth = 0
    while True:
        if i >= n:
            raise LexError("unclosed action", i)
        c = text[i]
        if (c == "}" and text.startswith("}}", i)) or _right_trim_at(text, i):
            if depth > 0:
                raise LexError("unclosed left paren", i)
            if c == "}":
                toks.append(Token("}}", "}}", i))
                return i + 2
            toks.append(Token("}}", "}}", i + 2))
            i += 4
            return n - len(text[i:].lstrip(_SPACE))
        if c in _SPACE:
            s = i
            while i < n and text[i] in _SPACE and not _right_trim_at(text, i):
                i += 1
            if i > s:
                toks.append(Token("space", text[s:i], s))
                continue
            continue
        if c == "=":
            toks.append(Token("=", "=", i))
            i += 1
        elif c == ":":
            if not text.startswith(":=", i):
                raise LexError("expected :=", i)
            toks.append(Token(":=", ":=", i))
            i += 2
        elif c in "|,":
            toks.append(Token(c, c, i))
            i += 1
        elif c == "(":
            depth += 1
            toks.append(Token("(", "(", i))
            i += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                raise LexError("unexpected right paren", i)
            toks.append(Token(")", ")", i))
            i += 1
        elif c == '"':
            i = _lex_quote(text, i, toks)
        elif c == "`":
            e = text.find("`", i + 1)
            if e < 0:
                raise LexError("unterminated raw quoted string", i)
            toks.append(Token("rawstring", text[i:e + 1], i))
            i = e + 1
        elif c == "'":
            i = _lex_char(text, i, toks)
        elif c == "$" or (c == "." and not (i + 1 < n and text[i + 1].isdigit())):
            m = _WORD.match(text, i + 1)
            e = m.end() if m else i + 1
            if e < n and text[e] not in _TERMINATORS and not text.startswith("}}", e):
                raise LexError(f"bad character {_rune(text[e])}", e)
            if c == "$":
                toks.append(Token("var", text[i:e], i))
            else:
                toks.append(Token("field" if e > i + 1 else ".", text[i:e], i))
            i = e
        elif c in "+-." or c.isdigit():
            m = NUMBER.match(text, i)
            e = m.end() if m else i
            if e == i or (e < n and (text[e].isalnum() or text[e] == "_")):
                bad = e + 1 if e < n else e
                raise LexError(f"bad number syntax: {_go_quote(text[i:bad])}", i)
            kind = "number"
            if e < n and text[e] in "+-":
                # A sign right after a number makes it complex (1+2i): a second number ending in i.
                m2 = NUMBER.match(text, e)
                e = m2.end() if m2 else e
                if e < n and (text[e].isalnum() or text[e] == "_"):
                    raise LexError(f"bad number syntax: {_go_quote(text[i:e + 1])}", i)
                if text[e - 1] != "i":
                    raise LexError(f"bad number syntax: {_go_quote(text[i:e])}", i)
                kind = "complex"
            toks.append(Token(kind, text[i:e], i))
            i = e
        elif c.isalpha() or c == "_":
            m = _WORD.match(text, i)
            assert m is not None
            e = m.end()
            if e < n and text[e] not in _TERMINATORS and not text.startswith("}}", e):
                raise LexError(f"bad character {_rune(text[e])}", e)
            word = text[i:e]
            kind = word if word in KEYWORDS else "bool" if word in ("true", "false") else "ident"
            toks.append(Token(kind, word, i))
            i = e
        elif c.isascii() and c.isprintable():
            toks.append(Token("char", c, i))  # Go's grab-bag item: the parser rejects it in context
            i += 1
        else:
            raise LexError(f"unrecognized character in action: {_rune(c)}", i)


def _lex_quote(text: str, i: int, toks: list[Token]) -> int:
    j = i + 1
    n = len(text)
    while True:
        if j >= n or text[j] == "\n":
            raise LexError("unterminated quoted string", i)
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == '"':
            toks.append(Token("string", text[i:j + 1], i))
            return j + 1
        j += 1


def _lex_char(text: str, i: int, toks: list[Token]) -> int:
    j = i + 1
    n = len(text)
    while True:
        if j >= n or text[j] == "\n":
            raise LexError("unterminated character constant", i)
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == "'":
            toks.append(Token("charconst", text[i:j + 1], i))
            return j + 1
        j += 1
