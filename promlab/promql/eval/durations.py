"""Query-dependent duration expressions (``[step()]``, ``offset min_of(range(), 8s)``).

The parser folds constant duration expressions into milliseconds and keeps the others as scalar
trees on the selector (``range_expr``, ``step_expr``, ``offset_expr``). Before a query runs,
:func:`resolve_durations` evaluates those trees with the query's ``step()`` (0 for an instant
query) and ``range()`` (``end - start``) and writes the milliseconds back, so the evaluator only
ever sees plain durations.
"""

from __future__ import annotations

import dataclasses
import math

from promlab.errors import QueryError
from promlab.promql.parser import ast
from promlab.promql.parser.durexpr import seconds_to_ms

__all__ = ["duration_seconds", "resolve_durations"]


def duration_seconds(e: ast.Expr, step_s: float, range_s: float) -> float:
    """The value in seconds of the duration expression ``e`` for one query."""
    if isinstance(e, ast.NumberLiteral):
        return e.value
    if isinstance(e, ast.ParenExpr):
        return duration_seconds(e.expr, step_s, range_s)
    if isinstance(e, ast.UnaryExpr):
        v = duration_seconds(e.expr, step_s, range_s)
        return -v if e.op == "-" else v
    if isinstance(e, ast.Call):
        name = e.func.name
        if name == "step":
            return step_s
        if name == "range":
            return range_s
        if name in ("min_of", "max_of"):
            a = duration_seconds(e.args[0], step_s, range_s)
            b = duration_seconds(e.args[1], step_s, range_s)
            if math.isnan(a) or math.isnan(b):
                return math.nan
            return min(a, b) if name == "min_of" else max(a, b)
    if isinstance(e, ast.BinaryExpr):
        a = duration_seconds(e.lhs, step_s, range_s)
        b = duration_seconds(e.rhs, step_s, range_s)
        return _binary(e.op, a, b)
    raise QueryError(f"unsupported duration expression {type(e).__name__}")


def _binary(op: str, a: float, b: float) -> float:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            if b == 0:
                raise QueryError("division by zero")
            return a / b
        if op == "%":
            if b == 0:
                raise QueryError("modulo by zero")
            return math.fmod(a, b)
        if op == "^":
            return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.nan
    raise QueryError(f"operator {op!r} not allowed in a duration expression")


def _positive(e: ast.Expr, step_s: float, range_s: float) -> int:
    ms = seconds_to_ms(duration_seconds(e, step_s, range_s))
    if ms <= 0:
        raise QueryError("duration must be greater than 0")
    return ms


def resolve_durations(node: ast.Expr, step_ms: int, range_ms: int) -> ast.Expr:
    """``node`` with every query-dependent duration expression replaced by its milliseconds.

    Returns ``node`` itself when it has none.
    """
    # An iterative look first: most queries have none, and operator chains can be thousands of
    # nodes deep (the rewrite below recurses).
    if not any(getattr(n, f, None) is not None for n in ast.walk(node)
               for f in ("range_expr", "step_expr", "offset_expr")):
        return node
    step_s, range_s = step_ms / 1000.0, range_ms / 1000.0
    return _resolve(node, step_s, range_s)


def _resolve(node: ast.Expr, step_s: float, range_s: float) -> ast.Expr:
    changes: dict[str, object] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if f.name in ("range_expr", "step_expr", "offset_expr"):
            if value is None:
                continue
            changes[f.name] = None
            if f.name == "offset_expr":
                changes["offset_ms"] = seconds_to_ms(duration_seconds(value, step_s, range_s))
            else:
                changes[f.name.replace("_expr", "_ms")] = _positive(value, step_s, range_s)
        elif isinstance(value, ast.Expr):
            new = _resolve(value, step_s, range_s)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and value and any(isinstance(v, ast.Expr) for v in value):
            items = tuple(_resolve(v, step_s, range_s) if isinstance(v, ast.Expr) else v for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[f.name] = items
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]
