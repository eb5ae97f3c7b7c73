"""Comment lines (``#``) of the Prometheus text format and OpenMetrics: HELP, TYPE, UNIT, EOF.

The parser caches each distinct comment line's :class:`Comment`; the metadata and OpenMetrics
rule checks (:mod:`~promlab.exposition.metadata`, :mod:`~promlab.exposition.omrules`) read
them. Text format: ``# HELP`` and ``# TYPE`` are metadata, any other comment is ignored;
OpenMetrics allows only ``# HELP``, ``# TYPE``, ``# UNIT`` and ``# EOF``. Both accept a quoted
UTF-8 metric name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promlab.exposition.tokens import METRIC_NAME, QUOTED, LineError, shown, unescape

__all__ = ["OPENMETRICS_TYPES", "TEXT_TYPES", "Comment", "parse_comment"]

TEXT_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
OPENMETRICS_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)

_TOKEN_TEXT = re.compile(r"[^ \t]+")
_TOKEN_OM = re.compile(r"[^ ]*")
_TEXT_META = re.compile(r"[ \t]*#[ \t]+(HELP|TYPE)[ \t]+")


@dataclass(frozen=True, slots=True)
class Comment:
    """A parsed comment line: ``kind`` is ``HELP``, ``TYPE``, ``UNIT``, ``EOF`` or ``""`` (other)."""

    kind: str
    name: str = ""
    text: str = ""


def _comment_name(token: str, om: bool) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        m = QUOTED.fullmatch(token)
        if m is None:
            raise LineError("malformed quoted metric name")
        name = unescape(m.group(1), not om, "metric name")
        if not name:
            raise LineError("empty metric name")
        return name
    if not METRIC_NAME.fullmatch(token):
        raise LineError(f"invalid metric name {token!r}")
    return token


def parse_comment(text: str, openmetrics: bool) -> Comment:
    """Parse a line starting with ``#`` (after optional whitespace in the text format).

    Text format: ``# HELP name doc`` and ``# TYPE name type`` are metadata, other comments are
    ignored (kind ``""``). OpenMetrics: only ``# HELP``, ``# TYPE``, ``# UNIT`` and ``# EOF``
    are allowed.
    """
    if openmetrics:
        if text == "# EOF":
            return Comment("EOF")
        kind = text[2:6]
        if text[:2] != "# " or kind not in ("HELP", "TYPE", "UNIT") or text[6:7] != " ":
            raise LineError("invalid comment: only '# HELP', '# TYPE', '# UNIT' and '# EOF' are allowed")
        rest = text[7:]
        name_tok, sep, value = _split_name(rest)
        name = _comment_name(name_tok, True)
        if not sep:  # '# HELP a ' has empty text; '# HELP a' has none (Prometheus: an error)
            raise LineError(f"missing {kind.lower()} after metric name")
        if kind == "TYPE":
            if value not in OPENMETRICS_TYPES:
                raise LineError(f"invalid metric type {value!r}")
        elif kind == "HELP":
            value = unescape(value, False, "help text")
        else:
            if value and (not name.endswith("_" + value)):
                raise LineError(f"unit {value!r} is not a suffix of metric {name!r}")
        return Comment(kind, name, value)

    # Prometheus's lexer: '#', blanks, HELP or TYPE, blanks, the name, one separator character,
    # the text verbatim. Anything else ('#HELP', '# HELP' alone, '# HELPER') is a plain comment.
    m = _TEXT_META.match(text)
    if m is None:
        return Comment("")
    kind = m.group(1)
    rest = text[m.end():]
    if not rest:
        raise LineError(f"missing metric name after {kind}")
    name_tok, _, value = _split_name(rest, text_ws=True)
    name = _comment_name(name_tok, False)
    if kind == "TYPE":
        if value not in TEXT_TYPES:
            raise LineError(f"invalid metric type {shown(value)}")
    elif "\\" in value:
        value = unescape(value, False, "help text")
    return Comment(kind, name, value)


def _split_name(rest: str, text_ws: bool = False) -> tuple[str, str, str]:
    """Split ``name rest`` or ``"quoted name" rest`` at the separator after the name."""
    if rest.startswith('"'):
        m = QUOTED.match(rest)
        if m is None:
            raise LineError("unterminated quoted metric name")
        tok, after = rest[: m.end()], rest[m.end():]
    else:
        m = (_TOKEN_TEXT if text_ws else _TOKEN_OM).match(rest)
        assert m is not None
        tok, after = rest[: m.end()], rest[m.end():]
    if not after:
        return tok, "", ""
    if text_ws:
        if after[0] not in " \t":
            raise LineError("expected whitespace after metric name")
        return tok, " ", after[1:]
    if after[0] != " ":
        raise LineError("expected a space after metric name")
    return tok, " ", after[1:]
