"""Print an AST back to PromQL text: Prometheus's ``expr.String()`` form.

``to_string(parse_expr(q))`` is what Prometheus's ``parser.ParseExpr(q).String()`` returns,
e.g. ``sum by (job) (rate(foo{a="b"}[5m] offset 1m))``:
durations as ``1h30m``, ``@`` times with three decimals, numbers in Go's shortest ``'f'`` form,
strings Go-quoted, matchers sorted. Parsing the printed text gives the same tree back.
"""

from __future__ import annotations

import math
import re

from promlab.model import Matcher
from promlab.model.time import format_duration
from promlab.model.value import format_float
from promlab.promql.parser import ast
from promlab.promql.parser.lexer import go_quote

__all__ = ["format_duration", "format_float", "prettify", "to_string"]

_LEGACY_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

def _matcher_str(m: Matcher) -> str:
    name = m.name if _LEGACY_LABEL.match(m.name) else go_quote(m.name)
    return f"{name}{m.type.value}{go_quote(m.value)}"


def _labels(names: tuple[str, ...]) -> str:
    return ", ".join(n if _LEGACY_METRIC.match(n) else go_quote(n) for n in names)


def _at(at_ms: int | None, modifier: str | None) -> str:
    if at_ms is not None:
        return f" @ {at_ms / 1000:.3f}"
    if modifier is not None:
        return f" @ {modifier}()"
    return ""


def _offset(ms: int, expr: ast.Expr | None = None) -> str:
    if expr is not None:
        return " offset " + to_string(expr)
    if ms > 0:
        return " offset " + format_duration(ms)
    if ms < 0:
        return " offset -" + format_duration(-ms)
    return ""


def _range(ms: int, expr: ast.Expr | None) -> str:
    return to_string(expr) if expr is not None else format_duration(ms)


def _extended(vs: ast.VectorSelector) -> str:
    if vs.anchored:
        return " anchored"
    if vs.smoothed:
        return " smoothed"
    return ""


def _selector_body(vs: ast.VectorSelector) -> str:
    name = vs.name or ""
    parts = sorted(
        _matcher_str(m) for m in vs.matchers
        if not (m.name == "__name__" and m.type.value == "=" and m.value == name and name)
    )
    if parts:
        return name + "{" + ",".join(parts) + "}"
    return name


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _matching(vm: ast.VectorMatching | None) -> str:
    if vm is None:
        return ""
    out = ""
    grouped = vm.card in ("many-to-one", "one-to-many")
    if vm.matching_labels or vm.on or grouped:
        out = f" {'on' if vm.on else 'ignoring'} ({_labels(vm.matching_labels)})"
        if grouped:
            side = "left" if vm.card == "many-to-one" else "right"
            out += f" group_{side} ({_labels(vm.include)})"
    lf, rf = vm.fill_lhs, vm.fill_rhs
    if lf is not None and rf is not None and _same(lf, rf):
        out += f" fill({format_float(lf)})"
    else:
        if lf is not None:
            out += f" fill_left({format_float(lf)})"
        if rf is not None:
            out += f" fill_right({format_float(rf)})"
    return out


def to_string(node: ast.Expr) -> str:
    """Print ``node`` as PromQL (Prometheus's ``String()`` form)."""
    if isinstance(node, ast.VectorSelector):
        return (_selector_body(node) + _at(node.at_ms, node.at_modifier) + _extended(node)
                + _offset(node.offset_ms, node.offset_expr))
    if isinstance(node, ast.MatrixSelector):
        vs = node.vector_selector
        rng = _range(node.range_ms, node.range_expr)
        return (f"{_selector_body(vs)}[{rng}]{_extended(vs)}"
                f"{_at(vs.at_ms, vs.at_modifier)}{_offset(vs.offset_ms, vs.offset_expr)}")
    if isinstance(node, ast.NumberLiteral):
        v = node.value
        if node.duration and math.isfinite(v):
            if v < 0:
                return "-" + format_duration(int(-v * 1e9) // 1_000_000)
            return format_duration(int(v * 1e9) // 1_000_000)
        return format_float(v)
    if isinstance(node, ast.StringLiteral):
        return go_quote(node.value)
    if isinstance(node, ast.ParenExpr):
        return f"({to_string(node.expr)})"
    if isinstance(node, ast.UnaryExpr):
        return node.op + to_string(node.expr)
    if isinstance(node, ast.BinaryExpr):
        # Left-deep chains (``a or b or c ...``) are printed without recursing down the spine.
        spine: list[ast.BinaryExpr] = []
        left: ast.Expr = node
        while isinstance(left, ast.BinaryExpr):
            spine.append(left)
            left = left.lhs
        parts = [to_string(left)]
        for b in reversed(spine):
            mod = " bool" if b.return_bool else ""
            parts.append(f" {b.op}{mod}{_matching(b.matching)} {to_string(b.rhs)}")
        return "".join(parts)
    if isinstance(node, ast.Call):
        return f"{node.func.name}({', '.join(to_string(a) for a in node.args)})"
    if isinstance(node, ast.AggregateExpr):
        param = f"{to_string(node.param)}, " if node.param is not None else ""
        return f"{_agg_head(node)}({param}{to_string(node.expr)})"
    if isinstance(node, ast.SubqueryExpr):
        step = _range(node.step_ms, node.step_expr) if node.step_ms or node.step_expr else ""
        return (f"{to_string(node.expr)}[{_range(node.range_ms, node.range_expr)}:{step}]"
                f"{_at(node.at_ms, node.at_modifier)}{_offset(node.offset_ms, node.offset_expr)}")
    raise TypeError(f"cannot print {type(node).__name__}")


def _agg_head(node: ast.AggregateExpr) -> str:
    """The operator and grouping clause of an aggregation, before its ``(``."""
    if node.without:
        return f"{node.op} without ({_labels(node.grouping)}) "
    if node.grouping:
        return f"{node.op} by ({_labels(node.grouping)}) "
    return node.op


_MAX_LINE = 100


def prettify(node: ast.Expr, level: int = 0) -> str:
    """Prometheus's ``Prettify`` (what ``/api/v1/format_query`` returns).

    A node whose one-line form is longer than 100 characters is split: binary operands and
    call/aggregation arguments go on their own lines, indented two spaces per level.
    """
    ind = "  " * level
    flat = to_string(node)
    if isinstance(node, ast.UnaryExpr):
        return ind + node.op + prettify(node.expr, level).strip()
    if len(flat) <= _MAX_LINE and isinstance(node, ast.SubqueryExpr):
        return flat  # Prometheus's SubqueryExpr.Pretty does not indent a subquery that fits
    if len(flat) <= _MAX_LINE or isinstance(
            node, ast.VectorSelector | ast.MatrixSelector | ast.NumberLiteral | ast.StringLiteral):
        return ind + flat
    if isinstance(node, ast.AggregateExpr):
        param = f"{prettify(node.param, level + 1)},\n" if node.param is not None else ""
        return f"{ind}{_agg_head(node)}(\n{param}{prettify(node.expr, level + 1)}\n{ind})"
    if isinstance(node, ast.BinaryExpr):
        mod = " bool" if node.return_bool else ""
        return (f"{prettify(node.lhs, level + 1)}\n{ind}{node.op}{mod}{_matching(node.matching)}"
                f"\n{prettify(node.rhs, level + 1)}")
    if isinstance(node, ast.Call):
        args = ",\n".join(prettify(a, level + 1) for a in node.args)
        return f"{ind}{node.func.name}(\n{args}\n{ind})"
    if isinstance(node, ast.ParenExpr):
        return f"{ind}(\n{prettify(node.expr, level + 1)}\n{ind})"
    if isinstance(node, ast.SubqueryExpr):
        suffix = flat[len(to_string(node.expr)):]
        return prettify(node.expr, level) + suffix
    return ind + flat
