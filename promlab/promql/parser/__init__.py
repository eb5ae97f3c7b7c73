"""PromQL parsing and printing.

``parse_expr(text)`` turns a query into an :mod:`~promlab.promql.parser.ast` tree (raising
:class:`~promlab.errors.ParseError` with Prometheus's messages), ``to_string(expr)`` prints a
tree back in Prometheus's ``String()`` form (``prettify(expr)``: the multi-line form of
``/api/v1/format_query``), and ``parse_series_selector(text)`` reads a bare
series selector such as the API's ``match[]`` values or the test DSL's series lines.
"""

from __future__ import annotations

from promlab.errors import ParseError
from promlab.model import Matcher, MatchType
from promlab.promql.parser.lexer import EOF
from promlab.promql.parser.literals import parse_duration_ms
from promlab.promql.parser.parser import METRIC_WORDS, Parser, parse_expr
from promlab.promql.parser.printer import format_duration, format_float, prettify, to_string

__all__ = [
    "ParseError",
    "format_duration",
    "format_float",
    "parse_duration_literal",
    "parse_expr",
    "parse_series_selector",
    "prettify",
    "to_string",
]


def parse_duration_literal(text: str) -> int:
    """A PromQL duration literal (``5m``, ``1h30m``, ``0``) in milliseconds.

    Raises
    ------
    ParseError
        When ``text`` is not a duration.
    """
    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise ParseError(str(e), query=text, pos=0, end=len(text)) from None


def parse_series_selector(text: str) -> tuple[str | None, tuple[Matcher, ...]]:
    """Parse ``metric{l="v", ...}``, ``{__name__="x"}`` or ``{"my.metric", "a.b"="v"}``.

    Returns the metric name (written before the braces, as ``{"name"}``, or as a
    ``__name__="..."`` equality matcher; None when there is none) and every matcher, the name
    matcher included. No checks beyond syntax are made (``{}`` is accepted), as in
    Prometheus's ``ParseMetricSelector``.
    """
    p = Parser(text)
    t = p.peek()
    if t.typ == "LEFT_BRACE":
        vs = p.parse_vector_selector(None)
    elif t.typ in METRIC_WORDS:
        p.advance()
        vs = p.parse_vector_selector(t)
    else:
        raise p.unexpected()
    if p.peek().typ != EOF:
        raise p.unexpected()
    if p.errors:
        raise p.errors[0]
    name = vs.name
    if name is None:
        for m in vs.matchers:
            if m.name == "__name__" and m.type is MatchType.EQUAL:
                name = m.value
                break
    return name, vs.matchers
