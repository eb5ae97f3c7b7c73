"""Query-shape functions of the duration-expression feature and scalar helpers:
``start()``, ``end()``, ``step()``, ``range()``, ``min_of()``, ``max_of()``, plus
``start_timestamp()`` (empty: promlab does not store start timestamps)."""

from __future__ import annotations

import numpy as np

from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import scalar_arg
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
    """``start_timestamp(v instant-vector)``: empty, as Prometheus without start timestamps."""
    return Vector.empty(call.ctx.num_steps)
