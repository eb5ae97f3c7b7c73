"""Miscellaneous functions: clamps, ``round``, ``scalar``, ``vector``, sorting, ``absent``, ``pi``."""

from __future__ import annotations

import functools
import math
import re

import numpy as np

from promlab.errors import FunctionNotImplemented
from promlab.model import METRIC_NAME, Labels, MatchType
from promlab.model.arrays import unique
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import (
    scalar_arg,
    string_arg,
    vector_out,
    warn,
)
from promlab.promql.eval.gosort import go_sort_by
from promlab.promql.parser.ast import Expr, MatrixSelector, VectorSelector
from promlab.promql.values import B, Scalar, Value, Vector

__all__ = ["absent_labels", "function", "natural_compare"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()


def _vec(call: FunctionCall, i: int = 0) -> Vector:
    v = call.args[i]
    assert isinstance(v, Vector)
    return v


def _go_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Go's ``math.Min``: -Inf wins over NaN, NaN over numbers, -0 below +0."""
    out = np.where((a < b) | ((a == b) & np.signbit(a)), a, b)
    out = np.where(np.isnan(a) | np.isnan(b), np.nan, out)
    return np.where(np.isneginf(a) | np.isneginf(b), -np.inf, out)


def _go_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Go's ``math.Max``: +Inf wins over NaN, NaN over numbers, +0 above -0."""
    out = np.where((a > b) | ((a == b) & ~np.signbit(a)), a, b)
    out = np.where(np.isnan(a) | np.isnan(b), np.nan, out)
    return np.where(np.isposinf(a) | np.isposinf(b), np.inf, out)


def _clamp(call: FunctionCall, lo: np.ndarray, hi: np.ndarray) -> Vector:
    # Prometheus: math.Max(min, math.Min(max, v)), so an infinite sample beats a NaN bound.
    v = _vec(call)
    with np.errstate(invalid="ignore"):
        out = _go_max(lo[None, :], _go_min(hi[None, :], v.values))
        present = v.present & ~(hi < lo)[None, :]
    return vector_out(list(v.labels), out, present, True)


@function("clamp")
def func_clamp(call: FunctionCall) -> Vector:
    """``clamp(v instant-vector, min scalar, max scalar)``; empty where ``max < min``."""
    t = call.ctx.num_steps
    return _clamp(call, scalar_arg(call.args, 1, t), scalar_arg(call.args, 2, t))


@function("clamp_max")
def func_clamp_max(call: FunctionCall) -> Vector:
    """``clamp_max(v instant-vector, max scalar)``."""
    t = call.ctx.num_steps
    return _clamp(call, np.full(t, -np.inf), scalar_arg(call.args, 1, t))


@function("clamp_min")
def func_clamp_min(call: FunctionCall) -> Vector:
    """``clamp_min(v instant-vector, min scalar)``."""
    t = call.ctx.num_steps
    return _clamp(call, scalar_arg(call.args, 1, t), np.full(t, np.inf))


@function("round")
def func_round(call: FunctionCall) -> Vector:
    """``round(v instant-vector, to_nearest=1 scalar)``: ties round up."""
    v = _vec(call)
    with np.errstate(all="ignore"):
        inv = 1.0 / scalar_arg(call.args, 1, call.ctx.num_steps, default=1.0)
        out = np.floor(v.values * inv[None, :] + 0.5) / inv[None, :]
    return vector_out(list(v.labels), out, v.present.copy(), True, compact=False)


@function("scalar")
def func_scalar(call: FunctionCall) -> Scalar:
    """``scalar(v instant-vector)``: the single sample's value, else NaN, per step."""
    v = _vec(call)
    if len(v) == 0:
        return Scalar(np.full(call.ctx.num_steps, np.nan))
    n = v.present.sum(axis=0)
    first = np.argmax(v.present, axis=0)
    vals = v.values[first, np.arange(v.values.shape[1])]
    return Scalar(np.where(n == 1, vals, np.nan))


@function("vector")
def func_vector(call: FunctionCall) -> Vector:
    """``vector(s scalar)``: one series without labels."""
    s = scalar_arg(call.args, 0, call.ctx.num_steps)
    return Vector([Labels()], s[None, :].copy(), np.ones((1, s.size), bool))


@function("pi")
def func_pi(call: FunctionCall) -> Scalar:
    """``pi()``."""
    return Scalar(np.full(call.ctx.num_steps, np.pi))


@function("info")
def func_info(call: FunctionCall) -> Value:
    """``info(v instant-vector, [data-label-selector])`` — not implemented by this backend."""
    raise FunctionNotImplemented("info() is not implemented by the numpy backend")


# --- sorting -------------------------------------------------------------------------------------

def _is_range(call: FunctionCall) -> bool:
    ctx = call.ctx
    return ctx.num_steps > 1 or (ctx.step_ms != 0 and ctx.start_ms != ctx.end_ms)


def _reorder(v: Vector, order: np.ndarray) -> Vector:
    # Sample timestamps are dropped: timestamp() of anything but a selector is the step time.
    return Vector([v.labels[i] for i in order], v.values[order], v.present[order],
                  v.drop_name[order] if v.drop_name is not None else None)


def _sort_by_value(call: FunctionCall, descending: bool) -> Vector:
    v = _vec(call)
    if _is_range(call):
        warn(call.ctx, "sort is ineffective for range queries since results are always ordered "
             "by labels", call.node)
        return _reorder(v, np.arange(len(v)))
    if len(v) == 0 or call.ctx.num_steps == 0:  # (a subquery with no step in its window)
        return v
    vals = v.values[:, 0]
    nan = np.isnan(vals)
    if len(v) > _GO_INSERTION_SORT_MAX and (nan.any() or unique(vals).size < len(v)):
        # Go's pdqsort decides where NaNs and ties go: replayed (a comparator that reads
        # NaN as the greatest, then reversed, as Prometheus's sort/sort_desc)
        xs = vals.tolist()
        order = list(range(len(v)))
        if descending:
            go_sort_by(order, lambda i, j: math.isnan(xs[j]) or xs[j] < xs[i])
        else:
            go_sort_by(order, lambda i, j: math.isnan(xs[j]) or xs[j] > xs[i])
        return _reorder(v, np.asarray(order, np.int64))
    key = -vals if descending else vals.copy()
    key[nan] = 0.0
    pos = np.arange(len(v))
    # Go insertion-sorts short inputs with Prometheus's comparator, which moves a sample before
    # a NaN left neighbour: numbers end up stably sorted, NaNs last in reverse input order.
    pos = np.where(nan, -pos, pos)
    return _reorder(v, np.lexsort((pos, key, nan)))


# Go's sort.Sort insertion-sorts inputs up to this length (pdqsort's small case).
_GO_INSERTION_SORT_MAX = 12


@function("sort")
def func_sort(call: FunctionCall) -> Vector:
    """``sort(v instant-vector)``: ascending by value, NaN last (instant queries only)."""
    return _sort_by_value(call, descending=False)


@function("sort_desc")
def func_sort_desc(call: FunctionCall) -> Vector:
    """``sort_desc(v instant-vector)``: descending by value, NaN last."""
    return _sort_by_value(call, descending=True)


_CHUNK = re.compile(r"(\d+)")


def natural_compare(a: str, b: str) -> int:
    """Natural ordering of strings: digit runs compare numerically."""
    ca = [c for c in _CHUNK.split(a) if c != ""]
    cb = [c for c in _CHUNK.split(b) if c != ""]
    for x, y in zip(ca, cb, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            ix, iy = int(x), int(y)
            if ix != iy:
                return -1 if ix < iy else 1
            return -1 if x < y else 1
        return -1 if x < y else 1
    return (len(ca) > len(cb)) - (len(ca) < len(cb))


def _sort_by_label(call: FunctionCall, descending: bool) -> Vector:
    v = _vec(call)
    if _is_range(call):
        warn(call.ctx, "sort is ineffective for range queries since results are always ordered "
             "by labels", call.node)
        return _reorder(v, np.arange(len(v)))
    names = [string_arg(call.args, call.node.args, i) for i in range(1, len(call.node.args))]

    def cmp(i: int, j: int) -> int:
        a, b = v.labels[i], v.labels[j]
        for n in names:
            x, y = a.get(n, ""), b.get(n, "")
            if x != y:
                c = natural_compare(x, y)
                if c:
                    return -c if descending else c
        c = (a > b) - (a < b)
        return -c if descending else c

    order = np.array(sorted(range(len(v)), key=functools.cmp_to_key(cmp)), dtype=np.int64)
    return _reorder(v, order)


@function("sort_by_label")
def func_sort_by_label(call: FunctionCall) -> Vector:
    """``sort_by_label(v instant-vector, label string, ...)``: natural sort by label values."""
    return _sort_by_label(call, descending=False)


@function("sort_by_label_desc")
def func_sort_by_label_desc(call: FunctionCall) -> Vector:
    """``sort_by_label_desc(v instant-vector, label string, ...)``."""
    return _sort_by_label(call, descending=True)


# --- absent --------------------------------------------------------------------------------------

def absent_labels(expr: Expr) -> Labels:
    """The labels ``absent()``/``absent_over_time()`` report: the selector's equality matchers."""
    if isinstance(expr, MatrixSelector):
        expr = expr.vector_selector
    if not isinstance(expr, VectorSelector):
        return Labels()
    out: dict[str, str] = {}
    has: set[str] = set()
    for m in expr.matchers:
        if m.name == METRIC_NAME:
            continue
        if m.type is MatchType.EQUAL and m.name not in has:
            out[m.name] = m.value
            has.add(m.name)
        else:
            out.pop(m.name, None)
    return Labels(out)


def absent_vector(call: FunctionCall, missing: B) -> Vector:
    """One series (labels from the argument's selector) present where ``missing`` is True."""
    t = call.ctx.num_steps
    if not missing.any():
        return Vector.empty(t)
    labels = absent_labels(call.node.args[0])
    return Vector([labels], np.ones((1, t)), missing[None, :].copy())


@function("absent")
def func_absent(call: FunctionCall) -> Vector:
    """``absent(v instant-vector)``: 1 at the steps where ``v`` has no sample."""
    v = _vec(call)
    missing = np.asarray(~v.present.any(axis=0) if len(v) else np.ones(call.ctx.num_steps, bool))
    return absent_vector(call, missing)
