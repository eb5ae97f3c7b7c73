"""Error messages for people: the expression with a caret under the problem, no traceback."""

from __future__ import annotations

import html

from promlab.errors import ParseError

__all__ = ["error_html", "error_text"]


def error_text(err: BaseException, expr: str | None = None) -> str:
    """The error as plain text; a :class:`ParseError` shows its line with a caret under it.

    Examples
    --------
    >>> from promlab.promql.parser import parse_expr
    >>> try:
    ...     parse_expr("sum(rate(x[5m])")
    ... except ParseError as e:
    ...     print(error_text(e))
    sum(rate(x[5m])
                   ^
    1:16: parse error: unclosed left parenthesis
    """
    if isinstance(err, ParseError):
        query = err.query or (expr or "")
        line_no, col = err.line_col()
        lines = query.split("\n")
        shown = lines[line_no - 1] if 0 < line_no <= len(lines) else query
        width = max(1, min(err.end, err.pos + len(shown)) - err.pos) if err.end > err.pos else 1
        caret = " " * (col - 1) + "^" + "~" * (min(width, len(shown) - col + 1) - 1)
        return f"{shown}\n{caret}\n{err}"
    name = type(err).__name__
    text = f"{name}: {err}"
    return f"{expr}\n{text}" if expr else text


def error_html(err: BaseException, expr: str | None = None) -> str:
    """:func:`error_text` as an HTML ``<pre>`` block (class ``promlab-error``)."""
    return (f'<pre class="promlab-error" style="color:#b00020;margin:0">'
            f"{html.escape(error_text(err, expr))}</pre>")
