"""Time functions: ``time()``, ``timestamp()`` and the calendar functions (UTC)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from promlab.model import Labels
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import vector_out
from promlab.promql.values import F64, I64, Scalar, Vector

__all__ = ["calendar_fields", "function"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()


@function("time")
def func_time(call: FunctionCall) -> Scalar:
    """``time()``: the evaluation time in seconds."""
    return Scalar(call.ctx.steps_ms.astype(np.float64) / 1000.0)


@function("timestamp")
def func_timestamp(call: FunctionCall) -> Vector:
    """``timestamp(v instant-vector)``: each sample's timestamp in seconds (drops the name)."""
    v = call.args[0]
    assert isinstance(v, Vector)
    if v.timestamps_ms is not None:
        ts = v.timestamps_ms.astype(np.float64)
    else:
        ts = np.broadcast_to(call.ctx.steps_ms.astype(np.float64)[None, :], v.values.shape)
    return vector_out(list(v.labels), ts / 1000.0, v.present.copy(), True, compact=False)


def _secs(values: F64) -> I64:
    # Go's int64(f) truncates toward zero; non-finite values have no meaningful date.
    with np.errstate(invalid="ignore"):
        v = np.where(np.isfinite(values), values, 0.0)
        out: I64 = np.trunc(np.clip(v, -2**62, 2**62)).astype(np.int64)
        return out


def calendar_fields(secs: I64, field: str) -> F64:
    """One calendar field (UTC) of Unix seconds."""
    return np.asarray(_calendar_fields(secs, field), dtype=np.float64)


def _calendar_fields(secs: I64, field: str) -> Any:
    days = np.floor_divide(secs, 86400)
    if field == "hour":
        return (np.floor_divide(secs, 3600) % 24).astype(np.float64)
    if field == "minute":
        return (np.floor_divide(secs, 60) % 60).astype(np.float64)
    if field == "day_of_week":
        return ((days + 4) % 7).astype(np.float64)
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    mo = d.astype("datetime64[M]")
    if field == "year":
        return (y.astype(np.int64) + 1970).astype(np.float64)
    if field == "month":
        return (mo.astype(np.int64) % 12 + 1).astype(np.float64)
    if field == "day_of_month":
        return ((d - mo.astype("datetime64[D]")).astype(np.int64) + 1).astype(np.float64)
    if field == "day_of_year":
        return ((d - y.astype("datetime64[D]")).astype(np.int64) + 1).astype(np.float64)
    if field == "days_in_month":
        nxt = (mo + 1).astype("datetime64[D]")
        return (nxt - mo.astype("datetime64[D]")).astype(np.int64).astype(np.float64)
    raise ValueError(field)


def _date_impl(field: str) -> Callable[[FunctionCall], Vector]:
    def impl(call: FunctionCall) -> Vector:
        if not call.args:
            secs = np.floor_divide(call.ctx.steps_ms, 1000)
            vals = calendar_fields(secs, field)[None, :]
            return Vector([Labels()], vals, np.ones_like(vals, dtype=bool))
        v = call.args[0]
        assert isinstance(v, Vector)
        out = calendar_fields(_secs(v.values), field)
        out = np.where(np.isfinite(v.values), out, np.nan)
        return vector_out(list(v.labels), out, v.present.copy(), True, compact=False)

    impl.__name__ = f"func_{field}"
    impl.__doc__ = f"``{field}(v=vector(time()) instant-vector)`` in UTC."
    return impl


for _field in ("year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
               "hour", "minute"):
    function(_field)(_date_impl(_field))
