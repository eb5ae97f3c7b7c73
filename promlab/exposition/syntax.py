"""Sample lines of the Prometheus text format and OpenMetrics: the parser's slow path.

:class:`promlab.exposition.Parser` resolves most lines with a cache lookup and parses values in
bulk; every sample line it cannot resolve that way (a series seen for the first time, a line
with an exemplar, odd whitespace, anything malformed) comes here and is parsed completely, one
line at a time. Comment lines are :mod:`promlab.exposition.comments`'s, the shared lexical
pieces (escapes, numbers, :class:`~promlab.exposition.tokens.LineError`) are in
:mod:`promlab.exposition.tokens`. Errors are raised as :class:`LineError` with a plain reason;
the parser adds the line number.

Differences between the two formats handled here:

* Text format 0.0.4: tokens may be separated by any run of blanks and tabs, leading and trailing
  whitespace is ignored, label values know the escapes ``\\\\``, ``\\"`` and ``\\n`` (any other
  escape is an error); timestamps are integer milliseconds.
* OpenMetrics 1.0: exactly one space between tokens, no whitespace inside ``{...}``, a
  backslash before any other character is kept literally, timestamps are float seconds, and a
  sample may carry an exemplar (`` # {labels} value [timestamp]``).

Both accept UTF-8 metric and label names in double quotes (``{"my.metric", "a.b"="v"}``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promlab.exposition.tokens import (
    LABEL_NAME,
    METRIC_NAME,
    QUOTED,
    LineError,
    parse_float,
    parse_timestamp,
    unescape,
)

__all__ = ["LineError", "RejectedSample", "SampleLine", "parse_sample"]

_WS = re.compile(r"[ \t]*")
_TOKEN_TEXT = re.compile(r"[^ \t]+")
# The common shape of a line, matched in one go: legacy names, no optional whitespace.
_PAIR = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
_SIMPLE = re.compile(
    rf"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{((?:{_PAIR}(?:,{_PAIR})*,?)?)\}})? ([^ \t{{]+)(?: ([^ \t]+))?\Z",
    re.S,
)
_PAIRS = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', re.S)


class RejectedSample(LineError):
    """A sample line Prometheus's parser reads but its scrape refuses after relabeling it (a
    repeated label name, ``__name__`` beside a metric name, text-format blanks before the name).

    Raised unless :func:`parse_sample` is told to return such a line (``refuse=False``, the
    scraper's mode: the scrape decides once relabeling has run, see ``SampleLine.refused``).
    """


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
    #: Why Prometheus would refuse the sample after reading it (``refuse=False`` only). Then
    #: ``pairs`` are the labels as Prometheus reads them: the name first, a repeated name kept,
    #: blanks read before the name kept in it.
    refused: str | None = None


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
            m = QUOTED.match(text, pos)
            if m is None:
                raise LineError("unterminated quoted string in label set")
            lname = unescape(m.group(1), not om, "label name")
        else:
            m = LABEL_NAME.match(text, pos)
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
        m = QUOTED.match(text, pos)
        if m is None:
            raise LineError(f"expected a quoted value for label {lname!r}")
        value = unescape(m.group(1), False, "label value")
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
    """Put the metric name first; False when a ``__name__`` label repeats it (both stay)."""
    has = any(k == "__name__" for k, _ in pairs)
    if name is not None:
        pairs.insert(0, ("__name__", name))
        return not has
    if not has:
        raise LineError("metric name missing")
    return True


def parse_sample(text: str, openmetrics: bool, *, refuse: bool = True) -> SampleLine:
    """Parse one sample line completely (``text`` is the decoded line, without newline).

    A line Prometheus reads and refuses later raises :class:`RejectedSample`, or with
    ``refuse=False`` comes back with the reason in ``refused``.
    """
    om = openmetrics
    m = _SIMPLE.match(text)
    if m is not None:
        simple = _parse_simple(m, om)
        if simple is not None:
            return simple
    rejected: list[str] = []
    sample = _parse_full(text, om, rejected)
    if rejected:
        if refuse:
            raise RejectedSample(rejected[0])
        sample.refused = rejected[0]
    return sample


def _parse_full(text: str, om: bool, rejected: list[str]) -> SampleLine:
    """The full grammar; what Prometheus reads but refuses after parsing goes to ``rejected``."""
    n = len(text)
    pos = 0
    if text[:1] in (" ", "\t"):
        pos = _WS.match(text).end()  # type: ignore[union-attr]
        if om or text[pos:pos + 1] == "{":  # Prometheus: '{' is no valid start token
            raise LineError("whitespace before the metric name")
        # Prometheus's text lexer reads the blanks as part of the metric name; the scrape then
        # refuses the name (unless relabeling rewrites or drops it).
        rejected.append("whitespace before the metric name")
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
        m = METRIC_NAME.match(text, pos)
        if m is None:
            raise LineError("invalid metric name")
        name = text[: m.end()]  # with any blanks before it, as Prometheus reads it
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
            found = [(k, unescape(v, False, "label value")) for k, v in found]
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
