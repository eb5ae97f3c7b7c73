"""The backend's half of the function registry, and the aggregation table.

Implementations register by PromQL name (``@function("rate")``, ``@aggregation("topk")``);
``FUNCTION_IMPLS`` must have exactly the keys of
:data:`promlab.promql.parser.functions.FUNCTIONS` (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from promlab.model import Labels
from promlab.promql.parser.ast import AggregateExpr, Call
from promlab.promql.values import I64, EvalContext, Value, Vector

__all__ = [
    "AGGREGATIONS",
    "FUNCTION_IMPLS",
    "AggregationCall",
    "FunctionCall",
    "aggregation",
    "function",
    "has_function",
]


@dataclass(slots=True)
class FunctionCall:
    """A function call with its arguments already evaluated over all steps."""

    node: Call
    args: list[Value]
    ctx: EvalContext


@dataclass(slots=True)
class AggregationCall:
    """An aggregation: the input vector, its group id per series, the label set per group
    (already reduced per ``by``/``without``) and the evaluated parameter, if any."""

    node: AggregateExpr
    vector: Vector
    param: Value | None
    group_ids: I64
    groups: list[Labels]
    ctx: EvalContext


FunctionImpl = Callable[[FunctionCall], Value]
AggregationImpl = Callable[[AggregationCall], Vector]

FUNCTION_IMPLS: dict[str, FunctionImpl] = {}
AGGREGATIONS: dict[str, AggregationImpl] = {}


def function(*names: str) -> Callable[[FunctionImpl], FunctionImpl]:
    def deco(fn: FunctionImpl) -> FunctionImpl:
        for n in names:
            FUNCTION_IMPLS[n] = fn
        return fn

    return deco


def aggregation(*names: str) -> Callable[[AggregationImpl], AggregationImpl]:
    def deco(fn: AggregationImpl) -> AggregationImpl:
        for n in names:
            AGGREGATIONS[n] = fn
        return fn

    return deco


def has_function(name: str) -> bool:
    return name in FUNCTION_IMPLS
