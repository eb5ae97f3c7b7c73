"""``/api/v1/parse_query``: a PromQL tree as the JSON Prometheus's UI tree view reads.

Node objects carry ``type`` (``vectorSelector``, ``matrixSelector``, ``subquery``, ``call``,
``aggregation``, ``binaryExpr``, ``unaryExpr``, ``parenExpr``, ``numberLiteral``,
``stringLiteral``) and the node's fields; durations are milliseconds, ``timestamp`` is the
``@`` time in ms (null without ``@``) and ``startOrEnd`` is ``"start"``/``"end"`` for
``@ start()``/``@ end()``.
"""

from __future__ import annotations

from typing import Any

from promlab.model import Matcher
from promlab.model.value import format_float
from promlab.promql.parser import ast

__all__ = ["expr_to_json"]


def _matchers(ms: tuple[Matcher, ...]) -> list[dict[str, str]]:
    return [{"name": m.name, "value": m.value, "type": str(m.type)} for m in ms]


def _selector(vs: ast.VectorSelector) -> dict[str, Any]:
    return {"name": vs.name or "", "offset": vs.offset_ms, "matchers": _matchers(vs.matchers),
            "timestamp": None if vs.at_modifier else vs.at_ms, "startOrEnd": vs.at_modifier,
            "anchored": vs.anchored, "smoothed": vs.smoothed}


def expr_to_json(node: ast.Expr | None) -> Any:
    """The tree-view JSON of ``node`` (None for an absent node)."""
    if node is None:
        return None
    if isinstance(node, ast.VectorSelector):
        return {"type": "vectorSelector", **_selector(node)}
    if isinstance(node, ast.MatrixSelector):
        sel = _selector(node.vector_selector)
        return {"type": "matrixSelector", "name": sel.pop("name"), "range": node.range_ms, **sel}
    if isinstance(node, ast.SubqueryExpr):
        return {"type": "subquery", "expr": expr_to_json(node.expr), "range": node.range_ms,
                "offset": node.offset_ms, "step": node.step_ms,
                "timestamp": None if node.at_modifier else node.at_ms,
                "startOrEnd": node.at_modifier, "alignEvalTime": False}
    if isinstance(node, ast.Call):
        f = node.func
        return {"type": "call",
                "func": {"name": f.name, "argTypes": [str(t) for t in f.arg_types],
                         "variadic": f.variadic, "returnType": str(f.return_type)},
                "args": [expr_to_json(a) for a in node.args]}
    if isinstance(node, ast.AggregateExpr):
        return {"type": "aggregation", "op": node.op, "expr": expr_to_json(node.expr),
                "param": expr_to_json(node.param), "grouping": list(node.grouping),
                "without": node.without}
    if isinstance(node, ast.BinaryExpr):
        m = node.matching
        matching = None if m is None else {
            "card": m.card, "labels": list(m.matching_labels), "on": m.on,
            "include": list(m.include), "fillValues": {"lhs": m.fill_lhs, "rhs": m.fill_rhs}}
        return {"type": "binaryExpr", "op": node.op, "lhs": expr_to_json(node.lhs),
                "rhs": expr_to_json(node.rhs), "matching": matching, "bool": node.return_bool}
    if isinstance(node, ast.UnaryExpr):
        return {"type": "unaryExpr", "op": node.op, "expr": expr_to_json(node.expr)}
    if isinstance(node, ast.ParenExpr):
        return {"type": "parenExpr", "expr": expr_to_json(node.expr)}
    if isinstance(node, ast.NumberLiteral):
        return {"type": "numberLiteral", "val": format_float(node.value)}
    if isinstance(node, ast.StringLiteral):
        return {"type": "stringLiteral", "val": node.value}
    raise TypeError(f"unsupported node type {type(node).__name__}")
