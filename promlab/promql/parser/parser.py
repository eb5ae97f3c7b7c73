"""A recursive-descent (precedence-climbing) PromQL parser producing :mod:`.ast` nodes.

Grammar, precedence and error messages follow Prometheus 3.x (``promql/parser``). Errors are
collected the way Prometheus collects them: problems found while building nodes (unknown
function, offset set twice, ...) are remembered and the first one is raised; a syntax error
raises at once unless such a problem came first; type checks (:mod:`.checker`) run only on a
syntactically valid tree. Calls, aggregations, grouping lists and binary modifiers are parsed
by :class:`~promlab.promql.parser.calls.CallsMixin`, duration expressions by
:class:`~promlab.promql.parser.durexpr.DurationExprMixin`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from promlab.errors import ParseError, RegexError
from promlab.model import Matcher, MatchType
from promlab.model.re2 import compile_anchored
from promlab.promql.parser import ast
from promlab.promql.parser.calls import METRIC_WORDS, CallsMixin
from promlab.promql.parser.checker import check
from promlab.promql.parser.durexpr import DurationExprMixin
from promlab.promql.parser.lexer import AGGREGATORS, EOF, ERROR, Token, lex
from promlab.promql.parser.literals import parse_duration_ms, parse_number, unquote

__all__ = ["METRIC_WORDS", "Parser", "parse_expr"]

# Binary operator precedence (higher binds tighter); POW is right-associative.
PRECEDENCE = {
    "LOR": 1,
    "LAND": 2, "LUNLESS": 2,
    "EQLC": 3, "NEQ": 3, "LTE": 3, "LSS": 3, "GTE": 3, "GTR": 3,
    "ADD": 4, "SUB": 4,
    "MUL": 5, "DIV": 5, "MOD": 5, "ATAN2": 5, "TRIM_UPPER": 5, "TRIM_LOWER": 5,
    "POW": 6,
}
_UNARY_PREC = 6  # unary +/- bind like MUL: only ^ binds tighter
OP_TEXT = {
    "LOR": "or", "LAND": "and", "LUNLESS": "unless", "EQLC": "==", "NEQ": "!=", "LTE": "<=",
    "LSS": "<", "GTE": ">=", "GTR": ">", "ADD": "+", "SUB": "-", "MUL": "*", "DIV": "/",
    "MOD": "%", "ATAN2": "atan2", "POW": "^", "TRIM_UPPER": "</", "TRIM_LOWER": ">/",
}

#: Deepest nesting accepted (parentheses, calls, aggregations, unary operators, right operands,
#: ``^`` chains). Checking, printing and evaluating recurse once per level, so the limit keeps
#: them well inside Python's default recursion limit; left-deep operator chains (``a or b or
#: ...``, ``a + b + ...``) do not nest and have no length limit.
MAX_DEPTH = 128

_UNBALANCED = "unexpected right parenthesis"
_MATCH_OPS = {"EQL": MatchType.EQUAL, "NEQ": MatchType.NOT_EQUAL,
              "EQL_REGEX": MatchType.REGEX, "NEQ_REGEX": MatchType.NOT_REGEX}

class Parser(CallsMixin, DurationExprMixin):
    """Parses one query; use :func:`parse_expr`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = lex(text)
        self.i = 0
        self.last_end = 0
        self.errors: list[ParseError] = []
        self.depth = 0
        self.plain_context = ""

    # --- token helpers ------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        j = self.i + k
        toks = self.toks
        return toks[j] if j < len(toks) else toks[-1]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.typ != EOF and t.typ != ERROR:
            self.i += 1
            self.last_end = t.end
        return t

    def error(self, msg: str, start: int, end: int | None = None) -> None:
        """Remember a non-syntax problem; parsing goes on, the first one is raised at the end."""
        self.errors.append(ParseError(msg, query=self.text, pos=start, end=end))

    def fail(self, msg: str, start: int, end: int | None = None) -> ParseError:
        if self.errors:
            return self.errors[0]
        return ParseError(msg, query=self.text, pos=start, end=end)

    def lexer_error_next(self) -> Token | None:
        """The lexer error Prometheus's parser reads as its next token, if it is one.

        Prometheus's lexer emits an unbalanced ")" and then fails on it, so the parser reads
        the failure in place of that ")". (A failure at the end of the input just after a
        ")", such as an unclosed "[", comes after it.)
        """
        t = self.peek()
        if t.typ == ERROR:
            return t
        nxt = self.peek(1)
        if nxt.typ == ERROR and t.typ == "RIGHT_PAREN" and nxt.val.startswith(_UNBALANCED):
            return nxt
        return None

    def unexpected(self, context: str = "", expected: str = "") -> ParseError:
        err = self.lexer_error_next()
        if err is not None:
            return self.fail(err.val, err.pos, len(self.text))
        t = self.peek()
        msg = "unexpected " + t.desc()
        context = context or self.plain_context
        if context:
            msg += " in " + context
        if expected:
            msg += ", expected " + expected
        return self.fail(msg, t.pos, t.end)

    def expect(self, typ: str, context: str = "", expected: str = "") -> Token:
        if self.peek().typ != typ:
            raise self.unexpected(context, expected)
        return self.advance()

    # --- entry point --------------------------------------------------------------------------
    def parse(self) -> ast.Expr:
        if self.peek().typ == EOF:
            raise self.fail("no expression found in input", 0)
        expr = self.parse_expr(0)
        if self.peek().typ != EOF:
            raise self.unexpected()
        if self.errors:
            raise self.errors[0]
        expr, errs = check(expr, self.text)
        if errs:
            raise errs[0]
        return expr

    # --- expressions --------------------------------------------------------------------------
    def parse_expr(self, min_prec: int) -> ast.Expr:
        if self.depth >= MAX_DEPTH:
            t = self.peek()
            raise ParseError(f"expression nests too deeply (more than {MAX_DEPTH} levels)",
                             query=self.text, pos=t.pos, end=t.end)
        self.depth += 1
        try:
            return self.parse_binary(min_prec)
        finally:
            self.depth -= 1

    def parse_binary(self, min_prec: int) -> ast.Expr:
        """Precedence climbing: a loop over same-or-lower-precedence operators (left-deep)."""
        lhs = self.parse_unary()
        while True:
            t = self.peek()
            prec = PRECEDENCE.get(t.typ)
            if prec is None or prec < min_prec:
                return lhs
            self.advance()
            matching, return_bool = self.parse_bin_modifiers()
            rhs = self.parse_expr(prec if t.typ == "POW" else prec + 1)
            lhs = ast.BinaryExpr(
                op=OP_TEXT[t.typ], lhs=lhs, rhs=rhs, matching=matching, return_bool=return_bool,
                pos=ast.PosRange(lhs.pos.start, rhs.pos.end),
            )

    def parse_unary(self) -> ast.Expr:
        t = self.peek()
        if t.typ == "ADD" or t.typ == "SUB":
            self.advance()
            operand = self.parse_expr(_UNARY_PREC)
            pos = ast.PosRange(t.pos, operand.pos.end)
            if isinstance(operand, ast.NumberLiteral):
                value = operand.value
                if t.typ == "SUB" and value == value:
                    value = -value
                return replace(operand, value=value, pos=pos)
            return ast.UnaryExpr(op=t.val, expr=operand, pos=pos)
        return self.parse_postfix(self.parse_primary())

    def parse_primary(self) -> ast.Expr:
        t = self.peek()
        typ = t.typ
        if typ == "NUMBER":
            self.advance()
            try:
                value = parse_number(t.val)
            except ValueError as e:
                self.error(f"error parsing number: {e}", t.pos, t.end)
                value = 0.0
            return ast.NumberLiteral(value=value, pos=ast.PosRange(t.pos, t.end))
        if typ == "DURATION":
            self.advance()
            ms = self.duration_ms(t)
            return ast.NumberLiteral(value=ms / 1000, duration=True, pos=ast.PosRange(t.pos, t.end))
        if typ == "STRING":
            self.advance()
            return ast.StringLiteral(value=unquote(t.val), pos=ast.PosRange(t.pos, t.end))
        if typ == "LEFT_PAREN":
            self.advance()
            inner = self.parse_expr(0)
            close = self.expect("RIGHT_PAREN")
            return ast.ParenExpr(expr=inner, pos=ast.PosRange(t.pos, close.end))
        if typ == "LEFT_BRACE":
            return self.parse_vector_selector(None)
        if typ in AGGREGATORS and self.peek(1).typ in ("LEFT_PAREN", "BY", "WITHOUT"):
            return self.parse_aggregate()
        if typ == "IDENTIFIER" and self.peek(1).typ == "LEFT_PAREN":
            return self.parse_call()
        if typ in ("START", "END", "STEP", "RANGE") and self.peek(1).typ == "LEFT_PAREN":
            return self.parse_call()
        if typ in METRIC_WORDS:
            self.advance()
            return self.parse_vector_selector(t)
        raise self.unexpected()

    # --- postfix modifiers: [range], [range:step], offset, @, anchored/smoothed -----------------
    def parse_postfix(self, expr: ast.Expr) -> ast.Expr:
        while True:
            t = self.peek()
            typ = t.typ
            if typ == "LEFT_BRACKET":
                expr = self.parse_bracket(expr)
            elif typ == "OFFSET":
                expr = self.parse_offset(expr)
            elif typ == "AT":
                expr = self.parse_at(expr)
            elif typ == "ANCHORED" or typ == "SMOOTHED":
                self.advance()
                expr = self.set_extended(expr, typ.lower(), t)
            else:
                return expr

    def parse_bracket(self, expr: ast.Expr) -> ast.Expr:
        lb = self.advance()
        rng, rng_expr = self.positive_duration("subquery or range selector",
                                               "number, duration, step(), or range()")
        t = self.peek()
        if t.typ == "RIGHT_BRACKET":
            rb = self.advance()
            msg = ""
            if not isinstance(expr, ast.VectorSelector):
                msg = "ranges only allowed for vector selectors"
            elif expr.offset_ms != 0 or expr.offset_expr is not None:
                msg = "no offset modifiers allowed before range"
            elif expr.at_ms is not None:
                msg = "no @ modifiers allowed before range"
            if msg:
                self.error(msg, lb.pos, rb.end)
                return expr
            assert isinstance(expr, ast.VectorSelector)
            return ast.MatrixSelector(vector_selector=expr, range_ms=rng, range_expr=rng_expr,
                                      pos=ast.PosRange(expr.pos.start, rb.end))
        if t.typ != "COLON":
            raise self.unexpected("subquery or range", '":" or "]"')
        self.advance()
        step, step_expr = 0, None
        if self.peek().typ != "RIGHT_BRACKET":
            step, step_expr = self.positive_duration(
                "subquery selector", 'number, duration, step(), range(), or "]"')
            if self.peek().typ != "RIGHT_BRACKET":
                raise self.unexpected("subquery selector", '"]"')
        rb = self.advance()
        return ast.SubqueryExpr(expr=expr, range_ms=rng, step_ms=step, range_expr=rng_expr,
                                step_expr=step_expr, pos=ast.PosRange(expr.pos.start, rb.end))

    def parse_offset(self, expr: ast.Expr) -> ast.Expr:
        self.advance()
        ms, off_expr = self.offset_duration()
        end = self.last_end
        if isinstance(expr, ast.MatrixSelector):
            cur: ast.VectorSelector | ast.SubqueryExpr = expr.vector_selector
        elif isinstance(expr, ast.VectorSelector | ast.SubqueryExpr):
            cur = expr
        else:
            self.error("offset modifier must be preceded by an instant vector selector or range "
                       "vector selector or a subquery", expr.pos.start, expr.pos.end)
            return expr
        if cur.offset_ms != 0 or cur.offset_expr is not None:
            self.error("offset may not be set multiple times", expr.pos.start, expr.pos.end)
            return expr
        pos = ast.PosRange(expr.pos.start, end)
        if isinstance(expr, ast.MatrixSelector):
            vs = replace(expr.vector_selector, offset_ms=ms, offset_expr=off_expr)
            return replace(expr, vector_selector=vs, pos=pos)
        return replace(cur, offset_ms=ms, offset_expr=off_expr, pos=pos)

    def parse_at(self, expr: ast.Expr) -> ast.Expr:
        self.advance()
        t = self.peek()
        at_ms: int | None = None
        modifier: ast.AtModifier | None = None
        if t.typ in ("START", "END"):
            self.advance()
            self.expect("LEFT_PAREN", "@", "timestamp")
            self.expect("RIGHT_PAREN", "@", "timestamp")
            modifier = "start" if t.typ == "START" else "end"
        else:
            sign = 1.0
            if t.typ in ("ADD", "SUB"):
                self.advance()
                sign = -1.0 if t.typ == "SUB" else 1.0
                t = self.peek()
            if t.typ not in ("NUMBER", "DURATION"):
                raise self.unexpected("@", "timestamp")
            self.advance()
            try:
                # Prometheus 3: a duration literal is a timestamp in seconds (@ 1m40s = @ 100).
                ts = sign * (self.duration_ms(t) / 1000 if t.typ == "DURATION" else parse_number(t.val))
            except ValueError as e:
                self.error(f"error parsing number: {e}", t.pos, t.end)
                ts = 0.0
            if math.isnan(ts) or math.isinf(ts) or ts >= 2.0**63 or ts <= -(2.0**63):
                self.error(f"timestamp out of bounds for @ modifier: {_go_f(ts)}",
                           expr.pos.start, expr.pos.end)
                return expr
            at_ms = _go_int64(_round_half_away(ts * 1000))
        end = self.last_end
        if isinstance(expr, ast.MatrixSelector):
            cur = expr.vector_selector
        elif isinstance(expr, ast.VectorSelector | ast.SubqueryExpr):
            cur = expr  # type: ignore[assignment]
        else:
            self.error("@ modifier must be preceded by an instant vector selector or range vector "
                       "selector or a subquery", expr.pos.start, expr.pos.end)
            return expr
        if cur.at_ms is not None or cur.at_modifier is not None:
            self.error("@ <timestamp> may not be set multiple times", expr.pos.start, expr.pos.end)
            return expr
        pos = ast.PosRange(expr.pos.start, end)
        if isinstance(expr, ast.MatrixSelector):
            vs = replace(expr.vector_selector, at_ms=at_ms, at_modifier=modifier)
            return replace(expr, vector_selector=vs, pos=pos)
        return replace(expr, at_ms=at_ms, at_modifier=modifier, pos=pos)

    def set_extended(self, expr: ast.Expr, which: str, tok: Token) -> ast.Expr:
        other = "smoothed" if which == "anchored" else "anchored"
        if not _selector_like(expr):
            self.error(f"{which} modifier not implemented", expr.pos.start, expr.pos.end)
            return expr
        if isinstance(expr, ast.SubqueryExpr):
            self.error(f"{which} modifier is not supported for subqueries",
                       expr.pos.start, expr.pos.end)
            return expr
        vs = expr.vector_selector if isinstance(expr, ast.MatrixSelector) else expr
        assert isinstance(vs, ast.VectorSelector)
        if getattr(vs, other):
            self.error("anchored and smoothed modifiers cannot be used together",
                       expr.pos.start, expr.pos.end)
        vs = replace(vs, anchored=True) if which == "anchored" else replace(vs, smoothed=True)
        pos = ast.PosRange(expr.pos.start, tok.end)
        if isinstance(expr, ast.MatrixSelector):
            return replace(expr, vector_selector=vs, pos=pos)
        return replace(vs, pos=pos)

    def duration_ms(self, t: Token) -> int:
        try:
            return parse_duration_ms(t.val)
        except ValueError as e:
            self.error(str(e), t.pos, t.end)
            return 0

    # --- selectors ----------------------------------------------------------------------------
    def parse_vector_selector(self, name_tok: Token | None) -> ast.VectorSelector:
        start = name_tok.pos if name_tok is not None else self.peek().pos
        matchers: list[Matcher] = []
        if self.peek().typ == "LEFT_BRACE":
            self.advance()
            matchers = self.parse_label_matchers()
        name = name_tok.val if name_tok is not None else None
        if name is not None:
            matchers.append(Matcher(MatchType.EQUAL, "__name__", name))
        else:
            # {"name"} or {__name__="x"}: the name is only a matcher, as in Prometheus.
            name = None
        return ast.VectorSelector(name=name, matchers=tuple(matchers),
                                  pos=ast.PosRange(start, self.last_end))

    def parse_label_matchers(self) -> list[Matcher]:
        """Matchers after ``{``, through the closing ``}``."""
        out: list[Matcher] = []
        if self.peek().typ == "RIGHT_BRACE":
            self.advance()
            return out
        while True:
            t = self.peek()
            if t.typ == "IDENTIFIER" or t.typ == "STRING":
                self.advance()
                name = t.val if t.typ == "IDENTIFIER" else unquote(t.val)
                op = self.peek()
                if op.typ in _MATCH_OPS:
                    self.advance()
                    v = self.peek()
                    if v.typ != "STRING":
                        raise self.unexpected("label matching", "string")
                    self.advance()
                    m = self.new_matcher(_MATCH_OPS[op.typ], name, unquote(v.val), t.pos, v.end)
                    if m is not None:
                        out.append(m)
                elif t.typ == "STRING":
                    out.append(Matcher(MatchType.EQUAL, "__name__", name))
                else:
                    raise self.unexpected("label matching", "label matching operator")
            else:
                raise self.unexpected("label matching", 'identifier or "}"')
            t = self.peek()
            if t.typ == "COMMA":
                self.advance()
                if self.peek().typ == "RIGHT_BRACE":
                    self.advance()
                    return out
            elif t.typ == "RIGHT_BRACE":
                self.advance()
                return out
            else:
                raise self.unexpected("label matching", '"," or "}"')

    def new_matcher(self, mt: MatchType, name: str, value: str, start: int,
                    end: int) -> Matcher | None:
        if mt is MatchType.EQUAL or mt is MatchType.NOT_EQUAL:
            return Matcher(mt, name, value)
        try:
            compile_anchored(value)  # cached: the Matcher below reuses it
        except RegexError as e:
            self.error(str(e), start, end)
            return None
        return Matcher(mt, name, value)


def _selector_like(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.VectorSelector | ast.MatrixSelector | ast.SubqueryExpr)


def _round_half_away(x: float) -> int:
    """Go's ``math.Round``: half away from zero."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def _go_int64(x: int) -> int:
    """Go's ``int64(f)`` on amd64 for an integral ``f``: one outside int64 becomes the smallest
    int64 (``@ 9223372036854776`` is 2^63 ms: Prometheus's ``FromFloatSeconds`` gives -2^63)."""
    return x if -(2**63) <= x < 2**63 else -(2**63)


def _go_f(x: float) -> str:
    """Go's ``%f``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:f}"


def parse_expr(text: str) -> ast.Expr:
    """Parse a PromQL expression.

    Raises
    ------
    ParseError
        With Prometheus's message and position, e.g. ``1:7: parse error: unclosed left
        parenthesis``.
    """
    try:
        return Parser(text).parse()
    except RecursionError:  # a caller already deep in its own stack
        raise ParseError(f"expression nests too deeply (more than {MAX_DEPTH} levels)",
                         query=text, pos=0) from None
