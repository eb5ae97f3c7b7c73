"""Experimental duration expressions: ``[26m+4m]``, ``[step()]``, ``offset min_of(step(), 1s)``.

A duration expression is kept as an ordinary scalar expression tree (number literals, binary
``+ - * / % ^``, unary minus, parentheses, and calls of ``step()``, ``range()``, ``min_of()``,
``max_of()``), in seconds. When it does not depend on the query (no ``step()``/``range()``)
the parser folds it to milliseconds; otherwise the tree is stored on the selector
(``range_expr``, ``step_expr``, ``offset_expr``) for the engine to evaluate per query.

Grammar as in Prometheus: inside brackets a full expression with the usual precedence; after
``offset`` a single (optionally signed) literal, ``step()``, ``range()``, ``min_of(...)``,
``max_of(...)`` or parenthesised expression, so ``foo offset 1m + 1m`` is
``(foo offset 1m) + 1m``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from promlab.promql.parser import ast
from promlab.promql.parser.core import ParserCore
from promlab.promql.parser.functions import FUNCTIONS
from promlab.promql.parser.literals import parse_number

if TYPE_CHECKING:
    from promlab.promql.parser.lexer import Token

__all__ = ["DurationExprMixin", "const_seconds", "seconds_to_ms"]

_PREC = {"ADD": 4, "SUB": 4, "MUL": 5, "DIV": 5, "MOD": 5, "POW": 6}
_OPS = {"ADD": "+", "SUB": "-", "MUL": "*", "DIV": "/", "MOD": "%", "POW": "^"}
_MAX_SECONDS = 2.0**63 / 1e9


def seconds_to_ms(v: float) -> int:
    """Go's ``time.Duration(math.Round(v * 1e9))`` expressed in whole milliseconds."""
    if not math.isfinite(v):
        return 0
    ns = math.floor(abs(v) * 1e9 + 0.5)
    ms = ns // 1_000_000
    return -ms if v < 0 else ms


def const_seconds(e: ast.Expr) -> float | None:
    """The value of a duration expression in seconds, or None if it needs the query."""
    if isinstance(e, ast.NumberLiteral):
        return e.value
    if isinstance(e, ast.ParenExpr):
        return const_seconds(e.expr)
    if isinstance(e, ast.UnaryExpr):
        v = const_seconds(e.expr)
        return None if v is None else (-v if e.op == "-" else v)
    if isinstance(e, ast.Call):
        if e.func.name not in ("min_of", "max_of"):
            return None
        a, b = const_seconds(e.args[0]), const_seconds(e.args[1])
        if a is None or b is None:
            return None
        if math.isnan(a) or math.isnan(b):
            return math.nan
        return min(a, b) if e.func.name == "min_of" else max(a, b)
    if isinstance(e, ast.BinaryExpr):
        a, b = const_seconds(e.lhs), const_seconds(e.rhs)
        if a is None or b is None:
            return None
        return _apply(e.op, a, b)
    return None


def _apply(op: str, a: float, b: float) -> float:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b if b != 0 else (math.nan if a == 0 or math.isnan(a)
                                         else math.copysign(math.inf, a) * math.copysign(1, b))
        if op == "%":
            return math.fmod(a, b) if b != 0 and math.isfinite(a) else math.nan
        return math.pow(a, b)
    except (OverflowError, ValueError):
        return math.nan


class DurationExprMixin(ParserCore):
    """Duration-expression parsing for :class:`~promlab.promql.parser.parser.Parser`."""

    def duration_ms(self, t: Token) -> int:
        raise NotImplementedError

    def dur_expr(self, min_prec: int, context: str, expected: str) -> ast.Expr:
        lhs = self.dur_unary(context, expected)
        while True:
            t = self.peek()
            prec = _PREC.get(t.typ)
            if prec is None or prec < min_prec:
                return lhs
            self.advance()
            rhs = self.dur_expr(prec if t.typ == "POW" else prec + 1, context, expected)
            if t.typ in ("DIV", "MOD") and isinstance(rhs, ast.NumberLiteral) and rhs.value == 0:
                msg = "division by zero" if t.typ == "DIV" else "modulo by zero"
                self.error(msg, t.pos, t.end)
            lhs = ast.BinaryExpr(op=_OPS[t.typ], lhs=lhs, rhs=rhs,
                                 pos=ast.PosRange(lhs.pos.start, rhs.pos.end))

    def dur_unary(self, context: str, expected: str) -> ast.Expr:
        t = self.peek()
        if t.typ in ("ADD", "SUB"):
            self.advance()
            operand = self.dur_expr(6, context, expected)
            return self._signed(t, operand)
        return self.dur_atom(context, expected)

    def _signed(self, sign: Token, operand: ast.Expr) -> ast.Expr:
        pos = ast.PosRange(sign.pos, operand.pos.end)
        if isinstance(operand, ast.NumberLiteral):
            v = -operand.value if sign.typ == "SUB" else operand.value
            if abs(v) > _MAX_SECONDS:
                self.error("duration out of range", sign.pos, sign.end)
            return ast.NumberLiteral(value=v, duration=operand.duration, pos=pos)
        if sign.typ == "SUB":
            return ast.UnaryExpr(op="-", expr=operand, pos=pos)
        return operand

    def dur_atom(self, context: str, expected: str) -> ast.Expr:
        """A literal, ``step()``, ``range()``, ``min_of/max_of(a, b)`` or ``( expr )``."""
        t = self.peek()
        typ = t.typ
        if typ in ("NUMBER", "DURATION"):
            lit = self.dur_literal()
            return lit
        if typ in ("STEP", "RANGE") and self.peek(1).typ == "LEFT_PAREN":
            self.advance()
            self.advance()
            close = self.expect("RIGHT_PAREN", context, expected)
            fn = FUNCTIONS[typ.lower()]
            return ast.Call(func=fn, args=(), pos=ast.PosRange(t.pos, close.end))
        if (typ == "IDENTIFIER" and t.val in ("min_of", "max_of")
                and self.peek(1).typ == "LEFT_PAREN"):
            self.advance()
            self.advance()
            a = self.dur_expr(0, context, expected)
            self.expect("COMMA", context, '","')
            b = self.dur_expr(0, context, expected)
            close = self.expect("RIGHT_PAREN", context, '")"')
            return ast.Call(func=FUNCTIONS[t.val], args=(a, b), pos=ast.PosRange(t.pos, close.end))
        if typ == "LEFT_PAREN":
            self.advance()
            inner = self.dur_expr(0, context, expected)
            close = self.expect("RIGHT_PAREN", context, '")"')
            return ast.ParenExpr(expr=inner, pos=ast.PosRange(t.pos, close.end))
        raise self.unexpected(context, expected)

    def dur_literal(self) -> ast.NumberLiteral:
        t = self.advance()
        pos = ast.PosRange(t.pos, t.end)
        if t.typ == "DURATION":
            ms = self.duration_ms(t)
            return ast.NumberLiteral(value=ms / 1000, duration=True, pos=pos)
        try:
            v = parse_number(t.val)
        except ValueError as e:
            self.error(f"error parsing number: {e}", t.pos, t.end)
            v = 0.0
        if abs(v) > _MAX_SECONDS:
            self.error("duration out of range", t.pos, t.end)
            v = 0.0
        return ast.NumberLiteral(value=v, pos=pos)

    def positive_duration(self, context: str, expected: str) -> tuple[int, ast.Expr | None]:
        """A range or step inside brackets: (milliseconds, None) or (0, query-dependent tree)."""
        e = self.dur_expr(0, context, expected)
        if isinstance(e, ast.NumberLiteral) and e.value <= 0:
            self.error("duration must be greater than 0", e.pos.start, e.pos.end)
            return 0, None
        v = const_seconds(e)
        if v is None:
            return 0, e
        if isinstance(e, ast.NumberLiteral):
            return seconds_to_ms(v), None
        ms = seconds_to_ms(v)
        if ms <= 0:
            self.error("duration must be greater than 0", e.pos.start, e.pos.end)
        return ms, None

    def offset_duration(self) -> tuple[int, ast.Expr | None]:
        """The value after ``offset``: (milliseconds, None) or (0, query-dependent tree)."""
        context, expected = "offset", "number, duration, step(), or range()"
        t = self.peek()
        if t.typ in ("ADD", "SUB"):
            self.advance()
            e = self._signed(t, self.dur_atom(context, expected))
        elif t.typ == "LEFT_PAREN":
            # A bare parenthesised expression may go on: offset (1m) + 1m is one duration.
            first = self.dur_atom(context, expected)
            e = first
            while True:
                op = self.peek()
                prec = _PREC.get(op.typ)
                if prec is None:
                    break
                self.advance()
                rhs = self.dur_expr(prec if op.typ == "POW" else prec + 1, context, expected)
                e = ast.BinaryExpr(op=_OPS[op.typ], lhs=e, rhs=rhs,
                                   pos=ast.PosRange(e.pos.start, rhs.pos.end))
        else:
            e = self.dur_atom(context, expected)
        v = const_seconds(e)
        if v is None:
            return 0, e
        return seconds_to_ms(v), None
