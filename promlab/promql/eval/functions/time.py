"""Time functions: ``time()``, ``timestamp()`` and the calendar functions (UTC)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from promlab.model import Labels
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import vector_out
from promlab.promql.parser.ast import Call, Expr, ParenExpr, VectorSelector
from promlab.promql.values import F64, I64, Scalar, Vector

__all__ = ["ARG_READS", "calendar_fields", "function"]

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
    present = v.present.copy()
    if v.timestamps_ms is not None:
        ts = v.timestamps_ms.astype(np.float64)
        _at_offset_window(call, v.timestamps_ms, present)
    else:
        ts = np.broadcast_to(call.ctx.steps_ms.astype(np.float64)[None, :], v.values.shape)
    return vector_out(list(v.labels), ts / 1000.0, present, True, compact=False)


def _pinned_selector(node: Call) -> VectorSelector | None:
    """``timestamp``'s argument when it is a selector with ``@`` (parentheses dropped, as
    Prometheus's parser drops them here)."""
    sel = node.args[0] if node.args else None
    while isinstance(sel, ParenExpr):
        sel = sel.expr
    if isinstance(sel, VectorSelector) and (sel.at_ms is not None or sel.at_modifier is not None):
        return sel
    return None


def _timestamp_reads(node: Call) -> list[Expr]:
    """What ``timestamp(v @ t offset o)`` reads with ``o < 0``: Prometheus's special path for
    ``timestamp`` over a selector with ``@`` replaces the offset by ``step - t`` (issue 8433), so
    the lookback runs back from ``t`` itself, past samples later than ``t`` (up to ``t - o``) that
    the selector would take: the selector without its offset finds that sample."""
    sel = _pinned_selector(node)
    if sel is None or sel.offset_ms >= 0 or sel.offset_expr is not None:
        return list(node.args)
    return [dataclasses.replace(sel, offset_ms=0)]


#: Functions whose arguments are read otherwise than written (by name; see the evaluator).
ARG_READS: dict[str, Callable[[Call], list[Expr]]] = {"timestamp": _timestamp_reads}


def _at_offset_window(call: FunctionCall, ts_ms: I64, present: np.ndarray) -> None:
    """``timestamp(v @ t offset o)`` as Prometheus answers it: the lookback runs back from
    ``t`` (see :func:`_timestamp_reads`) over the samples the selector loaded, those of
    ``[t - o - lookback, t - o]``. So the sample found is the latest one up to ``min(t, t - o)``
    (``o > 0``: the selector's own; ``o < 0``: the one read at ``t``), and only when it lies
    after ``max(t, t - o) - lookback``."""
    sel = _pinned_selector(call.node)
    if sel is None or sel.offset_ms == 0 or sel.offset_expr is not None:
        return
    ctx = call.ctx
    at = sel.at_ms if sel.at_ms is not None else {"start": ctx.start_ms, "end": ctx.end_ms}.get(
        str(sel.at_modifier))
    if at is not None:
        present &= ts_ms > max(at, at - sel.offset_ms) - ctx.lookback_ms


# Go's int64(f) on amd64 (what Prometheus runs): truncation toward zero, and the "integer
# indefinite" minimum for NaN, ±Inf and anything outside int64.
_INT64_MIN = np.iinfo(np.int64).min
# time.Unix(s, 0).UTC() works on s + _GO_ABS_SHIFT as an unsigned 64-bit number, so seconds below
# -_GO_ABS_SHIFT wrap around to the date of s + 2**64 (int64(NaN) lands there: year 292277026596).
_GO_ABS_SHIFT = 62_135_596_800 + 9_223_371_966_579_724_800
_WRAP_DAYS, _WRAP_SECS = divmod(2**64, 86400)


def _secs(values: F64) -> I64:
    """Unix seconds as Prometheus's date functions see a sample value (``int64(v)`` in Go)."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values >= -2.0**63) & (values < 2.0**63)
        out: I64 = np.where(ok, np.trunc(np.where(ok, values, 0.0)), 0.0).astype(np.int64)
    out[~ok] = _INT64_MIN
    return out


def _days_and_seconds(secs: I64) -> tuple[I64, I64]:
    """(days since 1970-01-01, second of the day) of the UTC time Go gives ``secs``."""
    days, sod = np.divmod(secs, 86400)
    wrap = secs < -_GO_ABS_SHIFT
    if wrap.any():
        carry = (sod + _WRAP_SECS) >= 86400
        days = np.where(wrap, days + _WRAP_DAYS + carry, days)
        sod = np.where(wrap, (sod + _WRAP_SECS) % 86400, sod)
    return days, sod


def calendar_fields(secs: I64, field: str) -> F64:
    """One calendar field (UTC) of Unix seconds."""
    return np.asarray(_calendar_fields(secs, field), dtype=np.float64)


def _calendar_fields(secs: I64, field: str) -> Any:
    days, sod = _days_and_seconds(np.asarray(secs, np.int64))
    if field == "hour":
        return (sod // 3600).astype(np.float64)
    if field == "minute":
        return (sod // 60 % 60).astype(np.float64)
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
        return vector_out(list(v.labels), out, v.present.copy(), True, compact=False)

    impl.__name__ = f"func_{field}"
    impl.__doc__ = f"``{field}(v=vector(time()) instant-vector)`` in UTC."
    return impl


for _field in ("year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month",
               "hour", "minute"):
    function(_field)(_date_impl(_field))
