"""Which parts of a query run on the workers: a planner over the AST.

A subtree is **shard-local** when every output series depends on one stored series only:
selectors, per-series functions (``rate``, ``*_over_time``, math, date functions with an
argument), unary minus, arithmetic with shard-independent scalars and subqueries over such
subtrees. A shard-local subtree gives the same rows on a shard as the rows of that shard's
series in the whole answer, so the answer is the shards' rows merged in label order.

The planner walks from the root and marks the **top-most** remote nodes:

* an aggregation in :data:`SPLITTABLE` over a shard-local expression (with a constant
  parameter, if any) is a ``partial`` node: every shard aggregates its series, the client
  combines the partial states;
* any other shard-local vector or matrix subtree that reads storage is a ``gather`` node: the
  shards' frames are merged on the client;
* everything above them (binary operations across series, ``quantile``, ``sort``, ...) runs on
  the client over the remote nodes' frames. Subqueries that are not shard-local run on the client
  as in one process (their inner steps differ from the query's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

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
    ValueType,
    VectorSelector,
    children,
    walk,
)

__all__ = ["PER_SERIES_FUNCTIONS", "SPLITTABLE", "Plan", "RemoteNode", "is_constant",
           "is_shard_local", "plan_query"]

#: Aggregations computed as per-shard partial states combined on the client.
SPLITTABLE = frozenset({"sum", "count", "min", "max", "avg", "group", "stddev", "stdvar",
                        "topk", "bottomk", "count_values"})

_MATH = ("abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "round", "clamp",
         "clamp_min", "clamp_max", "deg", "rad", "acos", "acosh", "asin", "asinh", "atan", "atanh",
         "cos", "cosh", "sin", "sinh", "tan", "tanh", "timestamp")
_RANGE = ("rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "changes",
          "resets", "double_exponential_smoothing", "avg_over_time", "count_over_time",
          "first_over_time", "last_over_time", "mad_over_time", "max_over_time", "min_over_time",
          "present_over_time", "quantile_over_time", "stddev_over_time", "stdvar_over_time",
          "sum_over_time", "ts_of_first_over_time", "ts_of_last_over_time",
          "ts_of_max_over_time", "ts_of_min_over_time")
# Native-histogram accessors (histogram_fraction also reads classic buckets across series).
_HISTOGRAM = ("histogram_avg", "histogram_count", "histogram_stddev", "histogram_stdvar",
              "histogram_sum")
# Date functions default to vector(time()) without an argument: only their 1-argument form.
_DATE = ("day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month",
         "year")

#: Functions whose output series each depend on one input series, with labels kept (the name
#: may be marked for removal). ``label_replace``/``label_join`` change labels and ``sort*``
#: order, ``absent*``, ``scalar``, ``vector``, ``info``, ``histogram_quantile(s)`` and
#: ``histogram_fraction`` look across series: those run on the client.
PER_SERIES_FUNCTIONS = frozenset(_MATH + _RANGE + _HISTOGRAM + _DATE)


def _has_selector(node: Expr) -> bool:
    return any(isinstance(n, VectorSelector) for n in walk(node))


def is_constant(node: Expr) -> bool:
    """A scalar or string that is the same on every shard (no selector below it)."""
    return node.type in (ValueType.SCALAR, ValueType.STRING) and not _has_selector(node)


def is_shard_local(node: Expr) -> bool:
    """Whether each output series of ``node`` depends on exactly one stored series."""
    if isinstance(node, VectorSelector | MatrixSelector):
        return True
    if isinstance(node, NumberLiteral | StringLiteral):
        return False
    if isinstance(node, ParenExpr | UnaryExpr | SubqueryExpr):
        return is_shard_local(node.expr)
    if isinstance(node, Call):
        name = node.func.name
        if name not in PER_SERIES_FUNCTIONS or not node.args:
            return False
        vectors = [a for a in node.args if not is_constant(a)]
        return len(vectors) == 1 and is_shard_local(vectors[0])
    if isinstance(node, BinaryExpr):
        if node.type is not ValueType.VECTOR:
            return False
        if is_constant(node.lhs):
            return is_shard_local(node.rhs)
        if is_constant(node.rhs):
            return is_shard_local(node.lhs)
        return False
    return False


@dataclass(frozen=True, slots=True)
class RemoteNode:
    """A node the workers evaluate: ``gather`` merges frames, ``partial`` combines states."""

    node: Expr
    kind: Literal["gather", "partial"]


@dataclass(slots=True)
class Plan:
    """The remote nodes of a query, top-most first in evaluation order (left to right)."""

    remote: list[RemoteNode] = field(default_factory=list)

    def kinds(self) -> list[str]:
        return [r.kind for r in self.remote]


def _splittable(node: Expr) -> bool:
    return (isinstance(node, AggregateExpr) and node.op in SPLITTABLE
            and is_shard_local(node.expr) and node.expr.type is ValueType.VECTOR
            and (node.param is None or is_constant(node.param)))


def plan_query(expr: Expr) -> Plan:
    """Mark the top-most remote nodes of ``expr``.

    Examples
    --------
    >>> from promlab.promql.parser import parse_expr
    >>> plan_query(parse_expr("sum by (job) (rate(x[5m])) / on() group(up)")).kinds()
    ['partial', 'partial']
    >>> plan_query(parse_expr("quantile(0.9, rate(x[5m]))")).kinds()
    ['gather']
    """
    out = Plan()

    def visit(node: Expr) -> None:
        if _splittable(node):
            out.remote.append(RemoteNode(node, "partial"))
            return
        if node.type in (ValueType.VECTOR, ValueType.MATRIX) and is_shard_local(node):
            out.remote.append(RemoteNode(node, "gather"))
            return
        if isinstance(node, SubqueryExpr):
            return  # its inner steps are not the query's: evaluated on the client
        for child in children(node):
            visit(child)

    visit(expr)
    return out
