"""Translate RE2 regular-expression syntax (what Prometheus matchers use) to Python's ``re``.

Differences handled: inline flags in the middle of a pattern (``((?i)foo)bar``: RE2 scopes them
to the rest of the enclosing group, Python only allows them at the very start), ``\\z``, ``\\Q...\\E``
literals, POSIX classes such as ``[[:alpha:]]``, ``(?<name>...)`` groups, and characters that
Python would read as set operations inside a class (``[[]``, ``[a--]``). Everything else is passed
through unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["compile_anchored", "expand", "go_regexp_error", "re2_to_python"]

_FLAGS = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)\)")
_POSIX = {
    "alnum": "0-9A-Za-z", "alpha": "A-Za-z", "ascii": "\\x00-\\x7f", "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f", "digit": "0-9", "graph": "!-~", "lower": "a-z",
    "print": " -~", "punct": "!-/:-@\\[-`{-~", "space": "\\t\\n\\v\\f\\r ", "upper": "A-Z",
    "word": "0-9A-Za-z_", "xdigit": "0-9A-Fa-f",
}


def re2_to_python(pattern: str) -> str:
    """An equivalent Python ``re`` pattern for the RE2 ``pattern``."""
    if not any(c in pattern for c in "(\\["):
        return pattern
    out: list[str] = []
    # One entry per open group: the inline-flag groups opened inside it (to close and reopen).
    frames: list[list[str]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            e = pattern[i + 1]
            if e == "z":
                out.append("\\Z")
                i += 2
            elif e == "Q":
                end = pattern.find("\\E", i + 2)
                lit = pattern[i + 2:] if end < 0 else pattern[i + 2:end]
                out.append(re.escape(lit))
                i = n if end < 0 else end + 2
            else:
                out.append(pattern[i:i + 2])
                i += 2
        elif c == "[":
            i = _copy_class(pattern, i, out)
        elif c == "(":
            m = _FLAGS.match(pattern, i)
            if m and m.group(1) not in ("", "-"):
                flags = m.group(1)
                out.append(f"(?{flags}:")
                frames[-1].append(flags)
                i = m.end()
            else:
                if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
                    out.append("(?P<")
                    i += 3
                else:
                    out.append("(")
                    i += 1
                frames.append([])
        elif c == ")":
            if len(frames) > 1:
                out.append(")" * len(frames.pop()))
            out.append(")")
            i += 1
        elif c == "|" and frames[-1]:
            active = frames[-1]
            out.append(")" * len(active) + "|" + "".join(f"(?{f}:" for f in active))
            i += 1
        else:
            out.append(c)
            i += 1
    for frame in reversed(frames):
        out.append(")" * len(frame))
    return "".join(out)


def _copy_class(p: str, i: int, out: list[str]) -> int:
    """Copy the character class starting at ``p[i] == "["``; return the index after it."""
    n = len(p)
    out.append("[")
    i += 1
    if i < n and p[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < n:
        c = p[i]
        if c == "]" and not first:
            out.append("]")
            return i + 1
        first = False
        if c == "\\" and i + 1 < n:
            out.append(p[i:i + 2])
            i += 2
        elif c == "[" and p.startswith("[:", i):
            end = p.find(":]", i + 2)
            name = p[i + 2:end] if end > 0 else ""
            if name in _POSIX:
                out.append(_POSIX[name])
                i = end + 2
            else:
                out.append("\\[")
                i += 1
        elif c in "[&~|":
            out.append("\\" + c)
            i += 1
        elif c == "-" and i + 1 < n and p[i + 1] == "-":
            out.append("\\-")
            i += 1
        else:
            out.append(c)
            i += 1
    return i


_GO_CODES = (
    ("missing ), unterminated subpattern", "missing closing )"),
    ("unbalanced parenthesis", "unexpected )"),
    ("unterminated character set", "missing closing ]"),
    ("nothing to repeat", "missing argument to repetition operator"),
    ("multiple repeat", "invalid nested repetition operator"),
    ("bad escape", "invalid escape sequence"),
    ("bad character range", "invalid character class range"),
)


def go_regexp_error(pattern: str, err: re.error) -> str:
    """A Go-style message (``error parsing regexp: missing closing ): `^(?s:()$```)."""
    msg = str(err.msg if hasattr(err, "msg") else err)
    for py, go in _GO_CODES:
        if msg.startswith(py):
            msg = go
            break
    return f"error parsing regexp: {msg}: `^(?s:{pattern})$`"


@lru_cache(maxsize=4096)
def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 ``pattern`` anchored at both ends, ``.`` matching newlines, as Prometheus
    compiles matcher and relabel regexes (``^(?s:pattern)$``).

    Raises
    ------
    re.error
        When the pattern is not a valid regular expression.
    """
    return re.compile(f"(?s:{re2_to_python(pattern)})\\Z")


def _extract(template: str, i: int) -> tuple[str, int] | None:
    """Parse a reference after ``$`` at ``template[i:]``: (name, end index) or None if malformed."""
    brace = i < len(template) and template[i] == "{"
    j = i + 1 if brace else i
    k = j
    while k < len(template) and (template[k].isalnum() or template[k] == "_"):
        k += 1
    if k == j:
        return None
    name = template[j:k]
    if brace:
        if k >= len(template) or template[k] != "}":
            return None
        k += 1
    return name, k


def expand(template: str, match: re.Match[str]) -> str:
    """Expand ``template`` against ``match`` with Go ``regexp.Expand`` semantics.

    Examples
    --------
    >>> m = compile_anchored("(a)(b)").match("ab")
    >>> expand("$2-${1}x-$1x-$$", m)
    'b-ax--$'
    """
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        d = template.find("$", i)
        if d < 0:
            out.append(template[i:])
            break
        out.append(template[i:d])
        i = d + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        ref = _extract(template, i)
        if ref is None:
            out.append("$")
            continue
        name, i = ref
        if name.isdigit() and name.isascii() and not (name[0] == "0" and len(name) > 1) and len(name) <= 8:
            num = int(name)
            if num <= (match.re.groups or 0):
                g = match.group(num)
                if g is not None:
                    out.append(g)
        elif name in match.re.groupindex:
            g = match.group(name)
            if g is not None:
                out.append(g)
    return "".join(out)
