"""Query-shape functions of the duration-expression feature and scalar helpers:
``start()``, ``end()``, ``step()``, ``range()``, ``min_of()``, ``max_of()``, plus
``start_timestamp()``."""

from __future__ import annotations

import numpy as np

from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import scalar_arg
from promlab.promql.parser.ast import VectorSelector
from promlab.promql.values import Scalar, Vector

__all__ = ["function"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()


def _const(call: FunctionCall, value: float) -> Scalar:
    return Scalar(np.full(call.ctx.num_steps, value, dtype=np.float64))


@function("start")
def func_start(call: FunctionCall) -> Scalar:
    """``start()``: the query start in seconds."""
    return _const(call, call.ctx.start_ms / 1000.0)


@function("end")
def func_end(call: FunctionCall) -> Scalar:
    """``end()``: the query end in seconds."""
    return _const(call, call.ctx.end_ms / 1000.0)


@function("step")
def func_step(call: FunctionCall) -> Scalar:
    """``step()``: the query step in seconds (0 for instant queries)."""
    return _const(call, call.ctx.step_ms / 1000.0)


@function("range")
def func_range(call: FunctionCall) -> Scalar:
    """``range()``: ``end() - start()`` in seconds (0 for instant queries)."""
    return _const(call, (call.ctx.end_ms - call.ctx.start_ms) / 1000.0)


@function("min_of")
def func_min_of(call: FunctionCall) -> Scalar:
    """``min_of(a scalar, b scalar)``."""
    t = call.ctx.num_steps
    return Scalar(np.minimum(scalar_arg(call.args, 0, t), scalar_arg(call.args, 1, t)))


@function("max_of")
def func_max_of(call: FunctionCall) -> Scalar:
    """``max_of(a scalar, b scalar)``."""
    t = call.ctx.num_steps
    return Scalar(np.maximum(scalar_arg(call.args, 0, t), scalar_arg(call.args, 1, t)))


@function("start_timestamp")
def func_start_timestamp(call: FunctionCall) -> Vector:
    """``start_timestamp(v instant-vector)``: the start timestamp of each sample in seconds (0
    when unknown), for a vector selector with the ``use-start-timestamps`` feature on; empty
    otherwise (any other expression loses start timestamps)."""
    v = call.args[0]
    if not call.ctx.use_start_timestamps or not isinstance(call.node.args[0], VectorSelector) \
            or not isinstance(v, Vector):
        return Vector.empty(call.ctx.num_steps)
    st = v.start_ts_ms if v.start_ts_ms is not None else np.zeros(v.present.shape, np.int64)
    values = np.where(v.present, st / 1000.0, 0.0)
    return Vector(list(v.labels), values, v.present.copy(), np.ones(len(v.labels), bool))
