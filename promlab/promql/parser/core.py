"""The token-stream interface that the parser's mixins rely on.

:class:`~promlab.promql.parser.parser.Parser` implements these; the mixins
(:mod:`~promlab.promql.parser.calls`, :mod:`~promlab.promql.parser.durexpr`) inherit the
declarations so that each of them type-checks on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promlab.errors import ParseError
    from promlab.promql.parser.lexer import Token

__all__ = ["ParserCore"]


class ParserCore:
    """Token access and error reporting, provided by ``Parser``."""

    last_end: int
    #: The context a syntax error without one of its own is reported in ("aggregation" inside
    #: an aggregation's arguments, else "").
    plain_context: str

    def peek(self, k: int = 0) -> Token:
        raise NotImplementedError

    def advance(self) -> Token:
        raise NotImplementedError

    def lexer_error_next(self) -> Token | None:
        raise NotImplementedError

    def unexpected(self, context: str = "", expected: str = "") -> ParseError:
        raise NotImplementedError

    def expect(self, typ: str, context: str = "", expected: str = "") -> Token:
        raise NotImplementedError

    def error(self, msg: str, start: int, end: int | None = None) -> None:
        raise NotImplementedError
