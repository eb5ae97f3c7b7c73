"""The backend's half of the function registry, and the aggregation table.

The tables are built here, explicitly, from the implementation modules' own tables (see
:mod:`promlab.promql.eval.calls`), so they are complete whenever this module is importable: no
import elsewhere has to happen first. ``FUNCTION_IMPLS`` must have exactly the keys of
:data:`promlab.promql.parser.functions.FUNCTIONS` (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from promlab.promql.eval import aggregations, aggregations_select
from promlab.promql.eval.calls import (
    AggregationCall,
    AggregationImpl,
    FunctionCall,
    FunctionImpl,
    ImplTable,
)
from promlab.promql.eval.functions import (
    duration,
    histogram,
    labels,
    math,
    misc,
    native,
    overtime,
    rangefuncs,
    time,
)
from promlab.promql.eval.functions._common import info
from promlab.promql.eval.functions.extended import SMOOTHED_SAFE, check_extended_args
from promlab.promql.eval.functions.native import histogram_cells, without_histograms
from promlab.promql.eval.functions.nativerange import float_only
from promlab.promql.eval.functions.nativetime import PLACEHOLDER_OK, WRAPPERS
from promlab.promql.eval.histaggs import histogram_aware_sum, keeping_histograms
from promlab.promql.parser.ast import Call, Expr
from promlab.promql.values import Matrix, Value, Vector

__all__ = [
    "AGGREGATIONS",
    "FUNCTION_ARG_READS",
    "FUNCTION_IMPLS",
    "FUNCTION_PRECHECKS",
    "AggregationCall",
    "FunctionCall",
    "has_aggregation",
    "has_function",
]

_FUNCTION_MODULES = (duration, histogram, labels, math, misc, native, overtime, rangefuncs, time)



def _refusing_extended(name: str, impl: FunctionImpl) -> FunctionImpl:
    """``impl`` preceded by the check that refuses ``anchored``/``smoothed`` arguments."""
    def call(c: FunctionCall) -> Value:
        check_extended_args(name, c.node.args)
        return impl(c)

    call.__doc__ = impl.__doc__
    return call


def _with_extended_checks(impls: dict[str, FunctionImpl]) -> dict[str, FunctionImpl]:
    unsafe = {n for n in impls if n not in SMOOTHED_SAFE}
    out = {n: _refusing_extended(n, f) if n in unsafe else f for n, f in impls.items()}
    out = {n: WRAPPERS[n](f) if n in WRAPPERS else f for n, f in out.items()}
    aware = HISTOGRAM_AWARE | PLACEHOLDER_OK | WRAPPERS.keys()
    return {n: f if n in aware else _floats_only(f) for n, f in out.items()}


#: Functions that handle native-histogram samples themselves; every other function sees its
#: arguments without them (Prometheus's float-only functions skip histogram samples).
HISTOGRAM_AWARE = frozenset({
    "histogram_count", "histogram_sum", "histogram_avg", "histogram_stddev", "histogram_stdvar",
    "histogram_quantile", "histogram_quantiles", "histogram_fraction", "rate", "increase", "delta",
})


def _floats_only(impl: FunctionImpl) -> FunctionImpl:
    def call(c: FunctionCall) -> Value:
        if any(getattr(a, "histograms", None) is not None for a in c.args):
            c = FunctionCall(c.node, [_strip(a) for a in c.args], c.ctx)
        return impl(c)

    call.__doc__ = impl.__doc__
    return call


def _strip(a: Value) -> Value:
    if isinstance(a, Vector):
        return without_histograms(a)
    if isinstance(a, Matrix):
        return float_only(a)
    return a


FUNCTION_IMPLS: Mapping[str, FunctionImpl] = MappingProxyType(_with_extended_checks(
    ImplTable.merge(m.function for m in _FUNCTION_MODULES)))
#: Checks of a call's literal arguments made before its arguments are evaluated, by name.
FUNCTION_PRECHECKS: Mapping[str, Callable[[Call], object]] = MappingProxyType(dict(labels.PRECHECKS))
#: Functions whose arguments are read otherwise than written (by name): what the evaluator
#: evaluates in their place; the implementation still sees the call as written.
FUNCTION_ARG_READS: Mapping[str, Callable[[Call], list[Expr]]] = MappingProxyType(dict(time.ARG_READS))
#: Aggregations that ignore native-histogram samples (with Prometheus's info annotation).
HISTOGRAM_IGNORING = frozenset({"min", "max", "stddev", "stdvar", "topk", "bottomk", "quantile"})


def _ignoring_histograms(op: str, impl: AggregationImpl) -> AggregationImpl:
    def call(a: AggregationCall) -> Vector:
        if a.vector.histograms is not None:
            _, _, hs = histogram_cells(a.vector)
            if hs:
                info(a.ctx, f"ignored histogram in {op} aggregation", a.node)
            a = AggregationCall(a.node, without_histograms(a.vector), a.param, a.group_ids,
                                a.groups, a.ctx)
        return impl(a)

    call.__doc__ = impl.__doc__
    return call


def _histogram_wrapped(op: str, impl: AggregationImpl) -> AggregationImpl:
    if op in HISTOGRAM_IGNORING:
        return _ignoring_histograms(op, impl)
    if op in ("sum", "avg"):
        return histogram_aware_sum(op, impl)
    if op in ("limitk", "limit_ratio"):
        return keeping_histograms(impl)
    return impl


AGGREGATIONS: Mapping[str, AggregationImpl] = MappingProxyType({
    op: _histogram_wrapped(op, f)
    for op, f in ImplTable.merge([aggregations.aggregation, aggregations_select.aggregation]).items()})


def has_function(name: str) -> bool:
    """Whether this backend implements the PromQL function ``name``.

    Examples
    --------
    >>> has_function("rate"), has_function("no_such_function")
    (True, False)
    """
    return name in FUNCTION_IMPLS


def has_aggregation(op: str) -> bool:
    """Whether this backend implements the aggregation operator ``op`` (``sum``, ``topk``, ...)."""
    return op in AGGREGATIONS
