"""Which expressions Prometheus evaluates once per range instead of at every step.

Before a range evaluation Prometheus marks the subtrees whose value cannot change from step to
step — everything below them is pinned by ``@`` — and evaluates each such subtree once, at the
first step of the range (the query's start, or a subquery's first step), repeating the result.
For nearly every expression that is invisible: the pinned data are the same at every step. The
exception is an aggregation's parameter: the marking looks only at the aggregated expression,
so in ``topk(scalar(x), g @ start())`` the ``k`` of the first step holds for all steps.

The same pass is where Prometheus turns ``@ start()`` and ``@ end()`` into timestamps. It never
enters an aggregation's parameter, so there those two modifiers stay unresolved and the
selectors read at every step as if they had no ``@`` (:func:`unresolved_start_end`), and an
explicit ``@ <time>`` there, applied as an offset from the range's first step, moves along
with the steps (:func:`.selectors.param_drift`).
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

from promlab.promql.parser.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)

__all__ = ["AT_UNSAFE_FUNCTIONS", "invariant_subtrees", "pinned_roots", "step_invariant",
           "unresolved_start_end"]

# Functions whose value depends on the evaluation time itself (Prometheus's
# AtModifierUnsafeFunctions): a call of one is never step invariant.
AT_UNSAFE_FUNCTIONS = frozenset({
    "days_in_month", "day_of_month", "day_of_week", "day_of_year", "end", "hour", "minute",
    "month", "year", "predict_linear", "range", "start", "step", "time", "timestamp",
})


def step_invariant(node: Expr) -> bool:
    """Whether Prometheus would evaluate ``node`` once per range (see the module docstring).

    Selectors and subqueries are invariant with an ``@``; literals always; aggregations when
    their aggregated expression is (not their parameter); binary operations when both sides
    are; calls when every argument is and the function does not read the evaluation time —
    except ``timestamp`` of an ``@``-pinned vector selector, which is.
    """
    if isinstance(node, VectorSelector | SubqueryExpr):
        return node.at_ms is not None or node.at_modifier is not None
    if isinstance(node, MatrixSelector):
        return step_invariant(node.vector_selector)
    if isinstance(node, NumberLiteral | StringLiteral):
        return True
    if isinstance(node, AggregateExpr | ParenExpr | UnaryExpr):
        return step_invariant(node.expr)
    if isinstance(node, BinaryExpr):
        return step_invariant(node.lhs) and step_invariant(node.rhs)
    if isinstance(node, Call):
        args = [_unparen(a) for a in node.args]
        if not all(step_invariant(a) for a in args):
            return False
        if node.func.name == "timestamp":
            return all(isinstance(a, VectorSelector) for a in args)
        return node.func.name not in AT_UNSAFE_FUNCTIONS
    return False


def invariant_subtrees(node: Expr) -> list[Expr]:
    """The largest step-invariant subtrees of ``node`` that Prometheus evaluates once (at the
    range's first step) even when the range has no step at all: a subquery whose window holds
    no point of its step grid still evaluates them, so their errors surface
    (``(topk(Inf, g @ 1700001230))[30s:2m]`` fails). Literals and the insides of aggregation
    parameters and nested subqueries are left out (the former cannot fail, Prometheus never
    marks the latter)."""
    node = _unparen(node)
    if isinstance(node, NumberLiteral | StringLiteral | MatrixSelector | VectorSelector):
        return []
    if step_invariant(node):
        return [node]
    if isinstance(node, AggregateExpr | UnaryExpr):
        return invariant_subtrees(node.expr)
    if isinstance(node, BinaryExpr):
        return invariant_subtrees(node.lhs) + invariant_subtrees(node.rhs)
    if isinstance(node, Call):
        return [t for a in node.args for t in invariant_subtrees(a)]
    return []


def pinned_roots(root: Expr) -> frozenset[int]:
    """``id()`` of the subtrees Prometheus evaluates once per range and copies to every step.

    Its preprocessing wraps the largest step-invariant subtrees: the whole expression when it is
    invariant, an invariant operand or argument of a node that is not, and a subquery's
    expression when it is invariant (whether or not the subquery is). An aggregation's
    parameter is never looked into. Literals are left out: Prometheus evaluates a wrapped
    literal as it is. What is held while a root is evaluated (``stats=all``'s peak) is one
    step's worth, then its result at every step. Iterative: chains thousands of operators long
    are fine.
    """
    order: list[Expr] = []
    todo = [root]
    while todo:
        node = todo.pop()
        order.append(node)
        todo.extend(_operands(node))
    invariant: dict[int, bool] = {}
    for node in reversed(order):  # operands first
        invariant[id(node)] = _invariant_over(node, invariant)
    out: set[int] = set()
    walk: list[tuple[Expr, bool]] = [(root, False)]
    while walk:
        node, parent_invariant = walk.pop()
        mine = invariant[id(node)]
        if mine and not parent_invariant and not isinstance(node, NumberLiteral | StringLiteral):
            out.add(id(node))
        below = False if isinstance(node, SubqueryExpr) else mine
        walk.extend((c, below) for c in _operands(node))
    return frozenset(out)


def _operands(node: Expr) -> list[Expr]:
    """What Prometheus's preprocessing looks into (not an aggregation's parameter)."""
    if isinstance(node, SubqueryExpr | AggregateExpr | ParenExpr | UnaryExpr):
        return [node.expr]
    if isinstance(node, MatrixSelector):
        return [node.vector_selector]
    if isinstance(node, BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, Call):
        return list(node.args)
    return []


def _invariant_over(node: Expr, known: dict[int, bool]) -> bool:
    """:func:`step_invariant` of ``node`` from its operands' (in ``known``)."""
    if isinstance(node, VectorSelector | SubqueryExpr):
        return node.at_ms is not None or node.at_modifier is not None
    if isinstance(node, NumberLiteral | StringLiteral):
        return True
    if isinstance(node, Call):
        if not all(known[id(a)] for a in node.args):
            return False
        if node.func.name == "timestamp":
            return all(isinstance(_unparen(a), VectorSelector) for a in node.args)
        return node.func.name not in AT_UNSAFE_FUNCTIONS
    operands = _operands(node)
    return bool(operands) and all(known[id(c)] for c in operands)


def _unparen(node: Expr) -> Expr:
    while isinstance(node, ParenExpr):
        node = node.expr
    return node


@lru_cache(maxsize=512)
def unresolved_start_end(node: Expr) -> Expr:
    """``node`` with every ``@ start()`` / ``@ end()`` removed, as Prometheus evaluates an
    aggregation's parameter (explicit ``@ <timestamp>`` and offsets stay). The same object when
    there is nothing to remove."""
    changes: dict[str, object] = {}
    if isinstance(node, VectorSelector | SubqueryExpr) and node.at_modifier is not None:
        changes["at_modifier"] = None
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            new = unresolved_start_end(value)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and any(isinstance(v, Expr) for v in value):
            items = tuple(unresolved_start_end(v) if isinstance(v, Expr) else v for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[f.name] = items
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]
