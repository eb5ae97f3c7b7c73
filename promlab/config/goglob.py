"""Go's ``path/filepath`` globbing (``Match``, ``Glob``) on Unix, for file patterns Prometheus
expands (``rule_files``).

It differs from Python's :mod:`glob`: a class is negated with ``^`` (``[!a]`` is the class of
``!`` and ``a``), a backslash escapes the next character, hidden files match ``*``, and a
malformed pattern (an unclosed ``[``, a class starting with ``-`` or ``]``, a trailing
backslash) is an error, ``syntax error in pattern`` (Go's ``ErrBadPattern``), even when
nothing would be matched.
"""

from __future__ import annotations

import os
import re

__all__ = ["BadPattern", "go_glob", "go_match"]

_META = "*?[\\"


class BadPattern(ValueError):
    """Go's ``filepath.ErrBadPattern``."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def _escaped(pattern: str, i: int) -> tuple[str, int]:
    """One character of a class range at ``i`` (Go's getEsc): the character and the next index."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise BadPattern
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise BadPattern
    return pattern[i], i + 1


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The regular expression of the class opening at ``i`` (just past ``[``)."""
    negate = i < len(pattern) and pattern[i] == "^"
    if negate:
        i += 1
    ranges: list[str] = []
    while True:
        if i < len(pattern) and pattern[i] == "]" and ranges:
            i += 1
            break
        lo, i = _escaped(pattern, i)
        hi = lo
        if i < len(pattern) and pattern[i] == "-":
            hi, i = _escaped(pattern, i + 1)
        ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
    body = "".join(ranges)
    # A negated class never matches the separator either.
    return (f"[^/{body}]" if negate else f"(?!/)[{body}]"), i


def _translate(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            part, i = _class(pattern, i + 1)
            out.append(part)
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise BadPattern
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def go_match(pattern: str, name: str) -> bool:
    """Go's ``filepath.Match``: whether ``name`` matches the whole ``pattern``.

    Raises
    ------
    BadPattern
        For a malformed pattern, whatever ``name`` is.

    Examples
    --------
    >>> go_match("r[^1].yml", "r2.yml"), go_match("r[!1].yml", "r2.yml"), go_match("*", ".h")
    (True, False, True)
    """
    return _translate(pattern).fullmatch(name) is not None


def go_glob(pattern: str) -> list[str]:
    """Go's ``filepath.Glob``: the names matching ``pattern``, each directory's in byte order;
    a pattern without meta characters is itself when it exists (a directory too); unreadable
    directories are skipped.

    Raises
    ------
    BadPattern
        For a malformed pattern.
    """
    go_match(pattern, "")  # Go checks the whole pattern first
    if not any(c in pattern for c in _META):
        return [pattern] if os.path.lexists(pattern) else []
    directory, file = os.path.split(pattern)
    # Go's Split keeps the trailing separator, which cleanGlobPath then drops.
    directory = directory or ("/" if pattern.startswith("/") else ".")
    if not any(c in directory for c in _META):
        return _glob_in(directory, file)
    if directory == pattern:  # pragma: no cover - Go's guard against endless recursion
        raise BadPattern
    out: list[str] = []
    for d in go_glob(directory):
        out += _glob_in(d, file)
    return out


def _glob_in(directory: str, file: str) -> list[str]:
    try:
        if not os.path.isdir(directory):
            return []
        names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))
    except OSError:
        return []
    matcher = _translate(file)
    # Go's Join cleans the result ("./x" is "x").
    return [os.path.normpath(os.path.join(directory, n)) for n in names if matcher.fullmatch(n)]
