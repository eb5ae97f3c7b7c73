"""Type checks run on a syntactically valid tree (Prometheus's ``checkAST``).

:func:`check` returns the tree normalised the way Prometheus leaves it after checking
(``and``/``or``/``unless`` matching becomes many-to-many; ``matching`` is dropped unless both
sides are instant vectors) and the errors found, in Prometheus's order.
"""

from __future__ import annotations

from dataclasses import replace

from promlab.errors import ParseError
from promlab.promql.parser import ast
from promlab.promql.parser.ast import ValueType
from promlab.promql.parser.lexer import go_quote

__all__ = ["check"]

_COMPARISON = {"==", "!=", "<", "<=", ">", ">="}
_SET_OPS = {"and", "or", "unless"}
_SCALAR_PARAM_AGGS = {"topk", "bottomk", "quantile", "limitk", "limit_ratio"}
_SPACE = " \t\n\r"


def check(expr: ast.Expr, text: str) -> tuple[ast.Expr, list[ParseError]]:
    c = _Checker(text)
    out, _ = c.visit(expr)
    return out, c.errors


class _Checker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.errors: list[ParseError] = []
        self.bypass: set[int] = set()
        # Results of left-spine nodes checked ahead of their parent (see visit), by node id.
        self.done: dict[int, tuple[ast.Expr, ValueType]] = {}

    def err(self, msg: str, pos: ast.PosRange | tuple[int, int]) -> None:
        start, end = (pos.start, pos.end) if isinstance(pos, ast.PosRange) else pos
        self.errors.append(ParseError(msg, query=self.text, pos=start, end=end))

    def expect_type(self, node: ast.Expr, want: ValueType, context: str) -> ast.Expr:
        out, t = self.visit(node)
        if t is not want:
            self.err(f"expected type {want.document_name} in {context}, got {t.document_name}",
                     node.pos)
        return out

    def op_range(self, n: ast.BinaryExpr) -> tuple[int, int]:
        text = self.text
        start = n.lhs.pos.end
        while start < len(text) and text[start] in _SPACE:
            start += 1
        end = n.rhs.pos.start - 1
        while end > 0 and text[end] in _SPACE:
            end -= 1
        return start, end

    def visit(self, n: ast.Expr) -> tuple[ast.Expr, ValueType]:
        """The checked node and its type (computed here once: ``BinaryExpr.type`` recurses)."""
        ready = self.done.pop(id(n), None)
        if ready is not None:
            return ready
        if isinstance(n, ast.BinaryExpr) and isinstance(n.lhs, ast.BinaryExpr) \
                and id(n.lhs) not in self.done:
            # A left-deep chain (``a or b or ...``, thousands of terms) is checked bottom-up, each
            # level's left operand already done, so the recursion depth does not grow with it.
            spine: list[ast.BinaryExpr] = []
            left: ast.Expr = n.lhs
            while isinstance(left, ast.BinaryExpr):
                spine.append(left)
                left = left.lhs
            for b in reversed(spine):
                self.done[id(b)] = self.visit(b)
        if isinstance(n, ast.AggregateExpr):
            inner = self.expect_type(n.expr, ValueType.VECTOR, "aggregation expression")
            param = n.param
            if param is not None:
                if n.op in _SCALAR_PARAM_AGGS:
                    param = self.expect_type(param, ValueType.SCALAR, "aggregation parameter")
                elif n.op == "count_values":
                    param = self.expect_type(param, ValueType.STRING, "aggregation parameter")
            return replace(n, expr=inner, param=param), ValueType.VECTOR

        if isinstance(n, ast.BinaryExpr):
            lhs, lt = self.visit(n.lhs)
            rhs, rt = self.visit(n.rhs)
            vm = n.matching or ast.VectorMatching()
            op = n.op
            if n.return_bool and op not in _COMPARISON:
                self.err("bool modifier can only be used on comparison operators", self.op_range(n))
            both_scalar = lt is ValueType.SCALAR and rt is ValueType.SCALAR
            if op in _COMPARISON and not n.return_bool and both_scalar:
                self.err("comparisons between scalars must use BOOL modifier", self.op_range(n))
            if op in _SET_OPS and vm.card == "one-to-one":
                vm = replace(vm, card="many-to-many")
            if vm.on:
                for label in vm.matching_labels:
                    if label in vm.include:
                        self.err(f"label {go_quote(label)} must not occur in ON and GROUP clause "
                                 "at once", self.op_range(n))
            if lt not in (ValueType.SCALAR, ValueType.VECTOR):
                self.err("binary expression must contain only scalar and instant vector types",
                         n.lhs.pos)
            if rt not in (ValueType.SCALAR, ValueType.VECTOR):
                self.err("binary expression must contain only scalar and instant vector types",
                         n.rhs.pos)
            matching: ast.VectorMatching | None = vm
            if lt is not ValueType.VECTOR or rt is not ValueType.VECTOR:
                if vm.matching_labels:
                    self.err("vector matching only allowed between instant vectors", n.pos)
                if vm.fill_lhs is not None or vm.fill_rhs is not None:
                    self.err("filling in missing series only allowed between instant vectors",
                             n.pos)
                matching = None
            elif op in _SET_OPS:
                if vm.card in ("one-to-many", "many-to-one"):
                    self.err(f"no grouping allowed for {go_quote(op)} operation", n.pos)
                if vm.card != "many-to-many":
                    self.err("set operations must always be many-to-many", n.pos)
                if vm.fill_lhs is not None or vm.fill_rhs is not None:
                    self.err("filling in missing series not allowed for set operators", n.pos)
            if (lt is ValueType.SCALAR or rt is ValueType.SCALAR) and op in _SET_OPS:
                self.err(f"set operator {go_quote(op)} not allowed in binary scalar expression",
                         n.pos)
            typ = ValueType.SCALAR if both_scalar else ValueType.VECTOR
            return replace(n, lhs=lhs, rhs=rhs, matching=matching), typ

        if isinstance(n, ast.Call):
            fn = n.func
            nargs = len(fn.arg_types)
            got = len(n.args)
            name = go_quote(fn.name)
            if fn.variadic == 0:
                if nargs != got:
                    self.err(f"expected {nargs} argument(s) in call to {name}, got {got}", n.pos)
            else:
                na = nargs - 1
                if na > got:
                    self.err(f"expected at least {na} argument(s) in call to {name}, got {got}",
                             n.pos)
                elif fn.variadic > 0 and na + fn.variadic < got:
                    self.err(f"expected at most {na + fn.variadic} argument(s) in call to {name}, "
                             f"got {got}", n.pos)
            if fn.name == "info" and got > 1:
                second = n.args[1]
                second_type = second.type
                if second_type is not ValueType.VECTOR:
                    self.err(f"expected type instant vector in call to function {name}, "
                             f"got {second_type.document_name}", n.pos)
                if isinstance(second, ast.VectorSelector):
                    if second.name:
                        self.err("expected label selectors only, got vector selector instead",
                                 second.pos)
                    else:
                        self.bypass.add(id(second))
                else:
                    self.err("expected label selectors only", second.pos)
            args: list[ast.Expr] = []
            for i, arg in enumerate(n.args):
                if i >= nargs:
                    if fn.variadic == 0:
                        args.extend(n.args[i:])
                        break
                    want = fn.arg_types[-1]
                else:
                    want = fn.arg_types[i]
                out, t = self.visit(arg)
                if t is not want:
                    self.err(f"expected type {want.document_name} in call to function {name}, "
                             f"got {t.document_name}", arg.pos)
                args.append(out)
            return replace(n, args=tuple(args)), fn.return_type

        if isinstance(n, ast.ParenExpr):
            inner, t = self.visit(n.expr)
            return replace(n, expr=inner), t

        if isinstance(n, ast.UnaryExpr):
            inner, t = self.visit(n.expr)
            if t not in (ValueType.SCALAR, ValueType.VECTOR):
                self.err("unary expression only allowed on expressions of type scalar or instant "
                         f"vector, got {go_quote(t.document_name)}", n.pos)
            return replace(n, expr=inner), t

        if isinstance(n, ast.SubqueryExpr):
            inner, t = self.visit(n.expr)
            if t is not ValueType.VECTOR:
                self.err(f"subquery is only allowed on instant vector, got {t} instead", n.pos)
            return replace(n, expr=inner), ValueType.MATRIX

        if isinstance(n, ast.MatrixSelector):
            self.visit(n.vector_selector)
            return n, ValueType.MATRIX

        if isinstance(n, ast.VectorSelector):
            if n.name:
                for m in n.matchers[:-1]:
                    if m.name == "__name__":
                        self.err(f"metric name must not be set twice: {go_quote(n.name)} or "
                                 f"{go_quote(m.value)}", n.pos)
            elif id(n) not in self.bypass and not any(not m.matches("") for m in n.matchers):
                self.err("vector selector must contain at least one non-empty matcher", n.pos)
            return n, ValueType.VECTOR

        return n, n.type

