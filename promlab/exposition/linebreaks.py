"""Raw line breaks inside quoted label values of the text format.

Prometheus's text-format lexer reads a quoted label value up to its closing quote, line breaks
included (``a{b="x`` newline ``y"} 1`` stores ``b="x\\ny"``); OpenMetrics does not allow it, nor
does prometheus_client. :class:`promlab.exposition.Parser` splits a page into lines first, so
such a line fails; then, in the scraper's mode, :func:`join_broken_values` rewrites the page and
it is parsed again (and a parser whose last page needed that rewrites the next one first).
Pages without such values pay nothing; finding the broken lines counts quotes per line in C.
"""

from __future__ import annotations

import re
from itertools import repeat

import numpy as np

__all__ = ["join_broken_values"]

# A sample line (not a comment) whose quoted strings are balanced until one opens and the line
# ends inside it. An escape does not take a line break, so a break after an odd run of
# backslashes does not match (Prometheus fails there too).
_BROKEN = re.compile(rb'^[ \t]*[^#\s"][^\n"]*(?:"(?:[^"\\\n]|\\.)*"[^\n"]*)*"(?:[^"\\\n]|\\.)*$', re.M)


def join_broken_values(data: bytes | str) -> bytes | None:
    """``data`` with each quoted value broken over lines joined into one line (the break
    written as the escape ``\\n``, then one empty line per break so later lines keep their
    numbers); ``None`` when no sample line ends inside a quoted value or one never closes."""
    if isinstance(data, str):
        data = data.encode()
    # A line ending inside a value has an odd number of unescaped quotes. Escapes are dropped
    # page-wide first (pairs of backslashes, then escaped quotes; no line break is removed), the
    # quotes of every line counted in C, and only lines with an odd count looked at in Python.
    bare = data.replace(b"\\\\", b"").replace(b'\\"', b"").split(b"\n")
    odd = np.flatnonzero(np.fromiter(map(bytes.count, bare, repeat(b'"')), np.int64, len(bare)) & 1)
    if not odd.shape[0]:
        return None
    lines = data.split(b"\n")
    found = False
    i = 0
    for k in odd.tolist():
        if k < i or not _BROKEN.match(lines[k]):
            continue  # a continuation line already joined, a comment, or malformed anyway
        line, i = lines[k], k + 1
        while _BROKEN.match(line):
            if i >= len(lines):
                return None  # the value never closes
            line += b"\\n" + lines[i]
            i += 1
        lines[k] = line
        lines[k + 1:i] = [b""] * (i - k - 1)
        found = True
    return b"\n".join(lines) if found else None
