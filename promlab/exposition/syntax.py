"""Line-level grammar of the Prometheus text format and OpenMetrics: the parser's slow path.

:class:`promlab.exposition.Parser` resolves most lines with a cache lookup and parses values in
bulk; every line it cannot resolve that way (a series seen for the first time, a comment, a line
with an exemplar, odd whitespace, anything malformed) comes here and is parsed completely, one
line at a time. Errors are raised as :class:`ValueError` subclasses with a plain reason; the
parser adds the line number.

Differences between the two formats handled here:

* Text format 0.0.4: tokens may be separated by any run of blanks and tabs, leading and trailing
  whitespace is ignored, label values know the escapes ``\\\\``, ``\\"`` and ``\\n`` (any other
  escape is an error), HELP text knows ``\\\\`` and ``\\n``; timestamps are integer milliseconds.
* OpenMetrics 1.0: exactly one space between tokens, no whitespace inside ``{...}``, a
  backslash before any other character is kept literally, timestamps are float seconds, and a
  sample may carry an exemplar (`` # {labels} value [timestamp]``).

Both accept UTF-8 metric and label names in double quotes (``{"my.metric", "a.b"="v"}``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "OPENMETRICS_TYPES",
    "TEXT_TYPES",
    "Comment",
    "LineError",
    "RejectedSample",
    "SampleLine",
    "parse_comment",
    "parse_float",
    "parse_sample",
    "parse_timestamp",
]

TEXT_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
OPENMETRICS_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"}
)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.S)
_WS = re.compile(r"[ \t]*")
_TOKEN_TEXT = re.compile(r"[^ \t]+")
_TOKEN_OM = re.compile(r"[^ ]*")
_ESCAPE = re.compile(r"\\(.)", re.S)
_TEXT_META = re.compile(r"[ \t]*#[ \t]+(HELP|TYPE)[ \t]+")
# Go's ParseFloat: a sign is allowed before numbers and Inf/Infinity, not before NaN.
_FLOAT = re.compile(
    r"(?:[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN])\Z"
)
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_INT = re.compile(r"[0-9]+\Z")
# The common shape of a line, matched in one go: legacy names, no optional whitespace.
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
_SIMPLE = re.compile(
    rf"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{((?:{_PAIR}(?:,{_PAIR})*,?)?)\}})? ([^ \t{{]+)(?: ([^ \t]+))?\Z",
    re.S,
)
_PAIRS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', re.S)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class LineError(ValueError):
    """A malformed line; the message is the reason (the parser adds the line number)."""


class RejectedSample(LineError):
    """A sample line Prometheus's parser reads but its scrape refuses right after (a repeated
    label name, ``__name__`` beside a metric name, text-format blanks before the name): the
    scrape fails as on a parse error, but this sample counts in ``scrape_samples_scraped``."""


@dataclass(slots=True)
class SampleLine:
    """One fully parsed sample line.

    ``pairs`` are the labels, ``__name__`` included, in line order (not yet sorted);
    ``prefix_end`` is the character offset of the separator just before the value, so
    ``line[:prefix_end]`` is the series text the parser caches.
    """

    pairs: list[tuple[str, str]]
    prefix_end: int
    value: float
    timestamp_ms: int | None
    exemplar: tuple[list[tuple[str, str]], float, int | None] | None = None
    #: Why the exemplar is unusable although the line is well-formed (labels over 128 runes,
    #: a repeated label name): prometheus_client rejects the line, a Prometheus scrape keeps
    #: the sample and drops the exemplar.
    exemplar_error: str | None = None


@dataclass(frozen=True, slots=True)
class Comment:
    """A parsed comment line: ``kind`` is ``HELP``, ``TYPE``, ``UNIT``, ``EOF`` or ``""`` (other)."""

    kind: str
    name: str = ""
    text: str = ""


def _unescape(raw: str, strict: bool, what: str) -> str:
    if "\\" not in raw:
        return raw

    def sub(m: re.Match[str]) -> str:
        c = m.group(1)
        rep = _ESCAPES.get(c)
        if rep is not None:
            return rep
        if strict:
            raise LineError(f"invalid escape sequence '\\{c}' in {what}")
        return m.group(0)

    return _ESCAPE.sub(sub, raw)


def _shown(token: str) -> str:
    """A token for an error message (the line itself is printed after it)."""
    return repr(token) if len(token) <= 40 else repr(token[:37] + "...")


def parse_float(token: str, what: str = "value") -> float:
    """Parse a sample value (Go ``ParseFloat`` syntax: decimals, exponents, NaN, ±Inf).

    Like Go (and so Prometheus), a finite literal beyond the float64 range is an error rather
    than ±Inf, and NaN takes no sign.
    """
    if not _FLOAT.match(token):
        raise LineError(f"invalid {what} {_shown(token)}")
    value = float(token)
    if math.isinf(value) and token.lstrip("+-")[:1] not in ("i", "I"):
        raise LineError(f"{what} {_shown(token)} out of the float64 range")
    return value


def parse_timestamp(token: str, openmetrics: bool) -> int:
    """Parse a timestamp to int milliseconds.

    Text format: unsigned integer milliseconds up to int64 max (Prometheus's lexer takes
    ``[0-9]+`` only: a sign, a fraction or an exponent fails the scrape). OpenMetrics: float
    seconds, converted to ms by rounding to whole microseconds and then truncating (Prometheus
    truncates ``ts * 1000`` directly, which can lose a millisecond to float rounding for values
    like ``…607.789``).
    """
    if openmetrics:
        if not _REAL.match(token):
            raise LineError(f"invalid timestamp {token!r}")
        return seconds_to_ms(float(token))
    if not _INT.match(token):
        raise LineError(f"invalid timestamp {_shown(token)} (the text format takes unsigned "
                        "integer milliseconds)")
    ts = int(token)
    if ts > _INT64_MAX:
        raise LineError(f"timestamp {_shown(token)} out of int64 range")
    return ts


def seconds_to_ms(seconds: float) -> int:
    """Float seconds to int ms (see :func:`parse_timestamp`).

    A time beyond the int64 range of milliseconds does not fail the page: Prometheus converts
    it to int64 min (Go's float-to-int conversion on amd64), a sample every store drops as too
    old. It becomes int64 min + 1 here, as int64 min is the page's "no timestamp" sentinel.
    """
    if math.isnan(seconds) or math.isinf(seconds):
        raise LineError(f"invalid timestamp {seconds!r}")
    us = round(seconds * 1e6)
    ms = abs(us) // 1000
    ms = -ms if us < 0 else ms
    if not _INT64_MIN < ms <= _INT64_MAX:
        return _INT64_MIN + 1
    return ms


def _parse_labels(
    text: str, pos: int, om: bool, pairs: list[tuple[str, str]], allow_name: bool,
    dups: list[str] | None = None,
) -> tuple[int, str | None]:
    """Parse ``label="v", ...}`` starting just after ``{``; returns (pos after ``}``, quoted name).

    A repeated label name is an error unless ``dups`` is given: then it is noted there (a
    Prometheus scrape refuses such a sample only after reading it, and does not check an
    exemplar's labels).
    """
    n = len(text)
    name: str | None = None
    seen: set[str] = set()
    after_comma = False
    while True:
        if not om:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            raise LineError("unterminated label set, expected '}'")
        c = text[pos]
        if c == "}":
            if om and after_comma:
                raise LineError("trailing comma in label set (not allowed in OpenMetrics)")
            return pos + 1, name
        after_comma = False
        quoted = c == '"'
        if quoted:
            m = _QUOTED.match(text, pos)
            if m is None:
                raise LineError("unterminated quoted string in label set")
            lname = _unescape(m.group(1), not om, "label name")
        else:
            m = _LABEL_NAME.match(text, pos)
            if m is None:
                raise LineError(f"invalid label name at {text[pos:pos + 20]!r}")
            lname = m.group()
        pos = m.end()
        if not om:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if quoted and pos < n and text[pos] in ",}":
            if not allow_name:
                raise LineError("a quoted metric name is not allowed here")
            if name is not None:
                raise LineError("metric name specified twice")
            if not lname:
                raise LineError("empty metric name")
            name = lname
            if text[pos] == ",":
                pos += 1
                after_comma = True
            continue
        if not lname:
            raise LineError("empty label name")
        if pos >= n or text[pos] != "=":
            raise LineError(f"expected '=' after label name {lname!r}")
        pos += 1
        if not om:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        m = _QUOTED.match(text, pos)
        if m is None:
            raise LineError(f"expected a quoted value for label {lname!r}")
        value = _unescape(m.group(1), False, "label value")
        pos = m.end()
        if lname in seen:
            if dups is None:
                raise LineError(f"duplicate label name {lname!r}")
            dups.append(lname)
        seen.add(lname)
        pairs.append((lname, value))
        if not om:
            pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        if pos < n and text[pos] == ",":
            pos += 1
            after_comma = True
        elif pos >= n or text[pos] != "}":
            raise LineError("expected ',' or '}' after label value")


def _set_name(pairs: list[tuple[str, str]], name: str | None) -> bool:
    """Put the metric name first; False when a ``__name__`` label repeats it."""
    has = any(k == "__name__" for k, _ in pairs)
    if name is not None:
        if has:
            return False
        pairs.insert(0, ("__name__", name))
    elif not has:
        raise LineError("metric name missing")
    return True


def parse_sample(text: str, openmetrics: bool) -> SampleLine:
    """Parse one sample line completely (``text`` is the decoded line, without newline)."""
    om = openmetrics
    m = _SIMPLE.match(text)
    if m is not None:
        simple = _parse_simple(m, om)
        if simple is not None:
            return simple
    rejected: list[str] = []
    sample = _parse_full(text, om, rejected)
    if rejected:
        raise RejectedSample(rejected[0])
    return sample


def _parse_full(text: str, om: bool, rejected: list[str]) -> SampleLine:
    """The full grammar; what Prometheus reads but refuses after parsing goes to ``rejected``."""
    n = len(text)
    pos = 0
    if text[:1] in (" ", "\t"):
        if om:
            raise LineError("whitespace before the metric name")
        # Prometheus's text lexer reads the blanks as part of the metric name; the scrape then
        # refuses the name.
        rejected.append("whitespace before the metric name")
        pos = _WS.match(text).end()  # type: ignore[union-attr]
    pairs: list[tuple[str, str]] = []
    dups: list[str] = []
    name: str | None = None
    if pos < n and text[pos] == "{":
        pos, name = _parse_labels(text, pos + 1, om, pairs, allow_name=True, dups=dups)
        if name is None:
            # A '__name__' label inside the braces does not name the series (Prometheus:
            # "metric name not set"); only a quoted name does.
            raise LineError("metric name missing before or inside '{'")
    else:
        m = _NAME.match(text, pos)
        if m is None:
            raise LineError("invalid metric name")
        name = m.group()
        pos = m.end()
        brace = pos if om else _WS.match(text, pos).end()  # type: ignore[union-attr]
        if brace < n and text[brace] == "{":
            pos, _ = _parse_labels(text, brace + 1, om, pairs, allow_name=False, dups=dups)
    if dups:
        rejected.append(f"duplicate label name {dups[0]!r}")
    if not _set_name(pairs, name):
        rejected.append("metric name specified twice (name and __name__ label)")

    if om:
        if pos >= n or text[pos] != " ":
            raise LineError("expected a single space and a value after the series")
        prefix_end = pos
        pos += 1
        end = text.find(" ", pos)
        end = n if end < 0 else end
        value = parse_float(text[pos:end])
        ts: int | None = None
        exemplar = None
        ex_error: str | None = None
        pos = end
        if pos < n:
            pos += 1
            if text.startswith("# ", pos):
                exemplar, ex_error = _parse_exemplar(text, pos + 2)
            else:
                end = text.find(" ", pos)
                end = n if end < 0 else end
                ts = parse_timestamp(text[pos:end], True)
                pos = end
                if pos < n:
                    if not text.startswith(" # ", pos):
                        raise LineError("unexpected text after timestamp")
                    exemplar, ex_error = _parse_exemplar(text, pos + 3)
        return SampleLine(pairs, prefix_end, value, ts, exemplar, ex_error)

    if pos < n and text[pos] not in " \t" and text[pos - 1] == "}":
        prefix_end = pos  # 'a{b="c"}1': the value may follow the label set directly
    elif pos >= n or text[pos] not in " \t":
        raise LineError("expected whitespace and a value after the series")
    else:
        pos = _WS.match(text, pos).end()  # type: ignore[union-attr]
        prefix_end = pos - 1
    m = _TOKEN_TEXT.match(text, pos)
    if m is None:
        raise LineError("missing value")
    value = parse_float(m.group())
    pos = _WS.match(text, m.end()).end()  # type: ignore[union-attr]
    ts = None
    if pos < n:
        m = _TOKEN_TEXT.match(text, pos)
        assert m is not None
        ts = parse_timestamp(m.group(), False)
        pos = _WS.match(text, m.end()).end()  # type: ignore[union-attr]
        if pos < n:
            raise LineError(f"unexpected text after timestamp: {text[pos:pos + 20]!r}")
    return SampleLine(pairs, prefix_end, value, ts)


def _parse_simple(m: re.Match[str], om: bool) -> SampleLine | None:
    """Finish a line matched by ``_SIMPLE``; ``None`` hands odd cases to the full grammar."""
    name, block, value, ts = m.groups()
    pairs: list[tuple[str, str]] = [("__name__", name)]
    if block and om and block[-1] == ",":
        return None  # OpenMetrics has no trailing comma: the full grammar says so
    if block:
        found = _PAIRS.findall(block)
        names = dict(found)
        if len(names) != len(found) or "__name__" in names:
            return None
        if "\\" in block:
            found = [(k, _unescape(v, False, "label value")) for k, v in found]
        pairs.extend(found)
    return SampleLine(pairs, m.start(3) - 1, parse_float(value),
                      None if ts is None else parse_timestamp(ts, om))


def _parse_exemplar(text: str, pos: int) -> tuple[tuple[list[tuple[str, str]], float, int | None], str | None]:
    """The exemplar starting at ``pos`` (its ``{``) and why it is unusable, if it is."""
    n = len(text)
    if pos >= n or text[pos] != "{":
        raise LineError("expected '{' to start exemplar labels")
    pairs: list[tuple[str, str]] = []
    dups: list[str] = []
    pos, _ = _parse_labels(text, pos + 1, True, pairs, allow_name=False, dups=dups)
    error: str | None = None
    if dups:
        error = f"duplicate exemplar label name {dups[0]!r}"
    elif sum(len(k) + len(v) for k, v in pairs) > 128:  # runes: str length is code points
        error = "exemplar labels exceed 128 characters"
    if pos >= n or text[pos] != " ":
        raise LineError("expected a value after exemplar labels")
    pos += 1
    end = text.find(" ", pos)
    end = n if end < 0 else end
    value = parse_float(text[pos:end], "exemplar value")
    ts = None
    if end < n:
        rest = text[end + 1:]
        if " " in rest:
            raise LineError("unexpected text after exemplar timestamp")
        ts = parse_timestamp(rest, True)
    return (pairs, value, ts), error


def _comment_name(token: str, om: bool) -> str:
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        m = _QUOTED.fullmatch(token)
        if m is None:
            raise LineError("malformed quoted metric name")
        name = _unescape(m.group(1), not om, "metric name")
        if not name:
            raise LineError("empty metric name")
        return name
    if not _NAME.fullmatch(token):
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
            value = _unescape(value, False, "help text")
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
            raise LineError(f"invalid metric type {_shown(value)}")
    elif "\\" in value:
        value = _unescape(value, False, "help text")
    return Comment(kind, name, value)


def _split_name(rest: str, text_ws: bool = False) -> tuple[str, str, str]:
    """Split ``name rest`` or ``"quoted name" rest`` at the separator after the name."""
    if rest.startswith('"'):
        m = _QUOTED.match(rest)
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
