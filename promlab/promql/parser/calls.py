"""PromQL parser, part two: function calls, aggregations, grouping lists and binary modifiers.

:class:`CallsMixin` is mixed into :class:`~promlab.promql.parser.parser.Parser`, which provides
the token access, error reporting and the expression entry point (``parse_expr``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from promlab.promql.parser import ast
from promlab.promql.parser.core import ParserCore
from promlab.promql.parser.functions import get_function
from promlab.promql.parser.lexer import AGGREGATORS
from promlab.promql.parser.literals import go_quote, parse_number, unquote

if TYPE_CHECKING:
    pass

__all__ = ["METRIC_WORDS", "CallsMixin"]

# Tokens that may name a metric at the start of an expression.
METRIC_WORDS = {
    "IDENTIFIER", "METRIC_IDENTIFIER", "BY", "WITHOUT", "LAND", "LOR", "LUNLESS", "OFFSET",
    "START", "END", "STEP", "RANGE", "ANCHORED", "SMOOTHED", *AGGREGATORS,
}
# Tokens that may be a label name in grouping lists (Prometheus's maybe_label): the metric-name
# words and a few more, but not "without", which may name a metric and not a grouping label.
_LABEL_WORDS = (METRIC_WORDS - {"WITHOUT"}) | {"BOOL", "GROUP_LEFT", "GROUP_RIGHT", "IGNORING",
                                               "ON", "ATAN2"}
# Tokens that can start an expression (a function or aggregation argument).
_EXPR_START = METRIC_WORDS | {"IDENTIFIER", "NUMBER", "DURATION", "STRING", "LEFT_PAREN",
                              "LEFT_BRACE", "ADD", "SUB"}
_PARAM_AGGS = {"topk", "bottomk", "count_values", "quantile", "limitk", "limit_ratio"}


class CallsMixin(ParserCore):
    """Call, aggregation and binary-modifier parsing for the PromQL parser."""

    def parse_expr(self, min_prec: int) -> ast.Expr:
        raise NotImplementedError

    # --- calls and aggregations ---------------------------------------------------------------
    def parse_call_body(self) -> list[ast.Expr]:
        self.expect("LEFT_PAREN")
        args: list[ast.Expr] = []
        if self.peek().typ == "RIGHT_PAREN":
            self.advance()
            return args
        while True:
            args.append(self.parse_expr(0))
            while True:
                t = self.peek()
                if t.typ == "RIGHT_PAREN":
                    self.advance()
                    return args
                if t.typ != "COMMA":
                    raise self.unexpected()
                self.advance()
                if self.peek().typ in _EXPR_START:
                    break
                if self.lexer_error_next() is None:
                    # Prometheus's grammar reduces "args ," before any token that cannot start
                    # an argument, so the comma is reported first and the list goes on
                    # (f(a,,b) parses with only that error).
                    self.error("trailing commas not allowed in function call args", t.pos, t.end)

    def parse_call(self) -> ast.Expr:
        name_tok = self.advance()
        name = name_tok.val if name_tok.typ == "IDENTIFIER" else name_tok.val.lower()
        fn = get_function(name)
        args = self.parse_call_body()
        if fn is None:
            # Prometheus names an unknown function when it reduces the whole call, so problems
            # in its arguments are reported first.
            self.error(f"unknown function with name {go_quote(name)}", name_tok.pos, name_tok.end)
        pos = ast.PosRange(name_tok.pos, self.last_end)
        if fn is None:
            return ast.NumberLiteral(value=0.0, pos=pos)  # never returned: the error is raised
        return ast.Call(func=fn, args=tuple(args), pos=pos)

    def parse_grouping_labels(self) -> tuple[str, ...]:
        if self.peek().typ != "LEFT_PAREN":
            raise self.unexpected("grouping opts", '"("')
        self.advance()
        labels: list[str] = []
        if self.peek().typ == "RIGHT_PAREN":
            self.advance()
            return ()
        while True:
            t = self.peek()
            if t.typ in _LABEL_WORDS:
                labels.append(t.val)
            elif t.typ == "STRING":
                label = unquote(t.val)
                if not _utf8_label(label):
                    self.error(f"invalid label name for grouping: {go_quote(label)}", t.pos, t.end)
                labels.append(label)
            else:
                raise self.unexpected("grouping opts", "label")
            self.advance()
            t = self.peek()
            if t.typ == "COMMA":
                self.advance()
                if self.peek().typ == "RIGHT_PAREN":
                    self.advance()
                    return tuple(labels)
            elif t.typ == "RIGHT_PAREN":
                self.advance()
                return tuple(labels)
            else:
                raise self.unexpected("grouping opts", '"," or ")"')

    def parse_aggregate(self) -> ast.Expr:
        op_tok = self.advance()
        op = AGGREGATORS[op_tok.typ]
        grouping: tuple[str, ...] = ()
        without = False
        have_modifier = False
        t = self.peek()
        if t.typ in ("BY", "WITHOUT"):
            self.advance()
            without = t.typ == "WITHOUT"
            grouping = self.parse_grouping_labels()
            have_modifier = True
        if self.peek().typ != "LEFT_PAREN":
            raise self.unexpected("aggregation")
        # Until the aggregation ends, a syntax error that no nearer rule names (as a range or
        # grouping list does) is one "in aggregation": Prometheus recovers in aggregate_op.
        outer, self.plain_context = self.plain_context, "aggregation"
        try:
            args = self.parse_call_body()
            if not have_modifier and self.lexer_error_next() is not None:
                # Prometheus reads the next token to look for by/without before it checks
                # the arguments, so a lexer error there comes first (avg()) ).
                raise self.unexpected()
            if not have_modifier and self.peek().typ in ("BY", "WITHOUT"):
                t = self.advance()
                without = t.typ == "WITHOUT"
                grouping = self.parse_grouping_labels()
        finally:
            self.plain_context = outer
        pos = ast.PosRange(op_tok.pos, self.last_end)
        placeholder = ast.NumberLiteral(value=0.0, pos=pos)
        if not args:
            self.error("no arguments for aggregate expression provided", pos.start, pos.end)
            return placeholder
        want = 2 if op in _PARAM_AGGS else 1
        if len(args) != want:
            self.error("wrong number of arguments for aggregate expression provided, "
                       f"expected {want}, got {len(args)}", pos.start, pos.end)
            return placeholder
        return ast.AggregateExpr(op=op, expr=args[-1], param=args[0] if want == 2 else None,
                                 grouping=grouping, without=without, pos=pos)

    def parse_bin_modifiers(self) -> tuple[ast.VectorMatching, bool]:
        return_bool = False
        if self.peek().typ == "BOOL":
            self.advance()
            return_bool = True
        card: ast.Cardinality = "one-to-one"
        on = False
        labels: tuple[str, ...] = ()
        include: tuple[str, ...] = ()
        t = self.peek()
        if t.typ in ("ON", "IGNORING"):
            self.advance()
            on = t.typ == "ON"
            labels = self.parse_grouping_labels()
            t = self.peek()
            if t.typ in ("GROUP_LEFT", "GROUP_RIGHT"):
                self.advance()
                card = "many-to-one" if t.typ == "GROUP_LEFT" else "one-to-many"
                nxt = self.peek().typ
                if nxt != "LEFT_PAREN" and nxt not in _EXPR_START:
                    # Neither labels nor the start of the right-hand side: Prometheus's
                    # grammar recovers in the (optional) grouping labels and says so.
                    raise self.unexpected("grouping opts", '"("')
                if self.peek().typ == "LEFT_PAREN":
                    include = self.parse_grouping_labels()
        fill_lhs: float | None = None
        fill_rhs: float | None = None
        while True:
            t = self.peek()
            if not (t.typ == "IDENTIFIER" and t.val in ("fill", "fill_left", "fill_right")
                    and self.peek(1).typ == "LEFT_PAREN"):
                break
            self.advance()
            self.advance()
            value = self.parse_signed_number("fill modifier", "number")
            self.expect("RIGHT_PAREN", "fill modifier", '")"')
            if t.val in ("fill", "fill_left"):
                fill_lhs = value
            if t.val in ("fill", "fill_right"):
                fill_rhs = value
        return ast.VectorMatching(card=card, matching_labels=labels, on=on, include=include,
                                  fill_lhs=fill_lhs, fill_rhs=fill_rhs), return_bool

    def parse_signed_number(self, context: str, expected: str) -> float:
        t = self.peek()
        sign = 1.0
        if t.typ in ("ADD", "SUB"):
            self.advance()
            sign = -1.0 if t.typ == "SUB" else 1.0
            t = self.peek()
        if t.typ != "NUMBER":
            raise self.unexpected(context, expected)
        self.advance()
        try:
            v = parse_number(t.val)
        except ValueError as e:
            self.error(f"error parsing number: {e}", t.pos, t.end)
            return 0.0
        return v if sign > 0 or math.isnan(v) else -v


def _utf8_label(name: str) -> bool:
    """Prometheus 3's label-name check: any non-empty valid UTF-8 (``unquote`` keeps invalid
    bytes as surrogate escapes, which do not encode)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return name != ""
