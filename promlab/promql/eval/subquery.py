"""Subqueries: ``expr[range:step] offset o @ t`` evaluated once over all the sub-steps needed.

The inner expression runs as a range evaluation whose steps are absolute multiples of the
subquery step (as Prometheus aligns them), covering the union of every outer step's window; the
resulting instant vector frame becomes a CSR :class:`Matrix` whose per-step windows are
``(ref - range, ref]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from promlab.model import Labels
from promlab.model.histogram import CounterResetHint
from promlab.promql.eval.selectors import param_drift, read_limit, reference_times
from promlab.promql.eval.state import EvalState
from promlab.promql.eval.stepinvariant import invariant_subtrees
from promlab.promql.parser.ast import SubqueryExpr
from promlab.promql.values import EvalContext, Matrix, Scalar, Vector

__all__ = ["at_shift", "eval_subquery", "vector_to_matrix"]


def vector_to_matrix(vec: Vector, steps_ms: np.ndarray, window_start_ms: np.ndarray,
                     window_end_ms: np.ndarray, range_ms: int) -> Matrix:
    """Turn an instant-vector frame over ``steps_ms`` into a CSR matrix of its present points."""
    present = vec.present
    counts = present.sum(axis=1)
    keep = counts > 0
    kept = np.flatnonzero(keep)
    steps = steps_ms.astype(np.int64)
    if kept.size == present.shape[0]:
        labels = list(vec.labels)
        vals, hist_grid = vec.values, vec.histograms
    else:
        present = present[keep]
        labels = [vec.labels[i] for i in kept.tolist()]
        vals = vec.values[keep]
        hist_grid = None if vec.histograms is None else vec.histograms[keep]
    # Row-major order: each series' points in step order, series after series.
    if present.all():
        ts = np.tile(steps, present.shape[0])
        values = vals.ravel()
        hists = None if hist_grid is None else hist_grid.ravel()
    else:
        ts = np.broadcast_to(steps, present.shape)[present]
        values = vals[present]
        hists = None if hist_grid is None else hist_grid[present]
    offsets = np.zeros(kept.shape[0] + 1, np.int64)
    np.cumsum(counts[keep], out=offsets[1:])
    drop = None if vec.drop_name is None else vec.drop_name[keep]
    hists = None if hists is None else _unknown_hints(hists)
    starts, ends = window_start_ms.astype(np.int64), window_end_ms.astype(np.int64)
    return Matrix(labels, offsets, ts, values.astype(np.float64), starts, ends, int(range_ms),
                  drop, histograms=hists,
                  bounds=_grid_bounds(present, offsets, steps_ms, starts, ends))


def _grid_bounds(present: np.ndarray, offsets: np.ndarray, steps_ms: np.ndarray,
                 starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`Matrix.window_bounds` of points on the grid ``steps_ms`` (row ``i`` has the
    points where ``present[i]``): per window, the points at or before its start and its end,
    from a running count of each row's points instead of a search of its timestamps."""
    first = np.searchsorted(steps_ms, starts, side="right")
    last = np.searchsorted(steps_ms, ends, side="right")
    base = offsets[:-1, None]
    if present.all():
        return base + first[None, :], base + last[None, :]
    seen = np.zeros((present.shape[0], present.shape[1] + 1), np.int64)
    np.cumsum(present, axis=1, out=seen[:, 1:])
    return base + seen[:, first], base + seen[:, last]


def _unknown_hints(hists: np.ndarray) -> np.ndarray:
    """Subquery points forget ``reset``/``not_reset`` hints (as Prometheus does): the points
    they relate to may be skipped or repeated, so resets are detected afresh."""
    out = hists.copy()
    for k, h in enumerate(out.tolist()):
        if h is not None and h.counter_reset_hint in _RESET_HINTS:
            out[k] = h.with_hint(CounterResetHint.UNKNOWN)
    return out


_RESET_HINTS = (CounterResetHint.COUNTER_RESET, CounterResetHint.NOT_COUNTER_RESET)


def eval_subquery(node: SubqueryExpr, ev: EvalState, ctx: EvalContext) -> Matrix:
    step = int(node.step_ms) or int(ctx.default_subquery_step_ms)
    ref = reference_times(ctx, node.at_ms, node.at_modifier, node.offset_ms)
    # Inside an aggregation's parameter a pinned subquery moves along with the steps, its
    # selectors reading only up to its @ time (selectors.param_drift).
    drift = param_drift(ctx, node.at_ms, node.at_modifier)
    read_until = read_limit(ctx, node.at_ms, node.offset_ms)
    if drift is not None:
        read_until = int(ref[0])
        ref = ref + drift
    start = ref - node.range_ms
    if ref.shape[0] == 0:
        first, last = 0, -1
    else:
        # First multiple of the step strictly after the earliest window start.
        first = (int(start.min()) // step + 1) * step
        last = int(ref.max())
    # Refused before allocating: a [30d:1ms] subquery would need billions of steps per series.
    ev.check_dense(max(0, (last - first) // step + 1))
    inner_steps = np.arange(first, last + 1, step, dtype=np.int64) if last >= first else \
        np.zeros(0, np.int64)
    whole_first = _whole_range_first(node, ctx, step)
    # Everything else (name removal mode, feature switches, annotations) is the query's.
    inner_ctx = dataclasses.replace(ctx, steps_ms=inner_steps, step_ms=step,
                                    range_start_ms=whole_first, read_until_ms=read_until,
                                    at_shift_ms=at_shift(node, ctx, first if whole_first is None
                                                         else whole_first))
    if inner_steps.shape[0] == 0 and ref.shape[0] and not ev.param_depth:
        # No grid point in any window: Prometheus still evaluates the step-invariant parts
        # once, at the grid time past the window (its range has start > end), and their
        # errors stand; their values go nowhere. (Not inside an aggregation's parameter, which
        # Prometheus never marks.)
        at_first = dataclasses.replace(inner_ctx, steps_ms=np.array([first], np.int64))
        for sub in invariant_subtrees(node.expr):
            ev.eval(sub, at_first)
    inner = ev.eval(node.expr, inner_ctx)
    if isinstance(inner, Scalar):
        inner = Vector([Labels()], inner.values[None, :].copy(),
                       np.ones((1, inner.values.shape[0]), bool))
    if not isinstance(inner, Vector):
        raise TypeError(f"subquery over {type(inner).__name__} is not supported")
    return vector_to_matrix(inner, inner_steps, start, ref, node.range_ms)


def at_shift(node: SubqueryExpr, ctx: EvalContext, first_ms: int) -> int:
    """How far nodes pinned with ``@`` inside the subquery are moved (EvalContext.at_shift_ms).

    Prometheus applies ``@`` as an offset from the start of the range being evaluated, set for
    the query's start and set again for a subquery's start whenever it differs from the start
    of the range evaluating it. That offset already counts every subquery offset on the way down
    (as if each moved its range's start by it), so below a subquery that starts where its
    evaluator starts despite an offset (``[5m:1m] offset -4m30s`` at a whole minute), a pinned
    node is read that offset away from its ``@`` time, over the data loaded around that time
    (``max_over_time((g @ t)[5m:1m] offset -4m30s)`` reads g at t - 4m30s). Prometheus 2.42
    and 3.x alike. (Below a subquery itself pinned with ``@``, nothing is moved here.)
    """
    if node.at_ms is not None or node.at_modifier is not None or ctx.num_steps == 0:
        return 0
    start = ctx.range_start_ms if ctx.range_start_ms is not None else int(ctx.steps_ms[0])
    return ctx.at_shift_ms + int(node.offset_ms) if first_ms == start else 0


def _whole_range_first(node: SubqueryExpr, ctx: EvalContext, step: int) -> int | None:
    """The first step of the subquery's own range when ``ctx`` is a slice of a longer range
    (None: not a slice). Prometheus evaluates a subquery once over the whole range: its
    step-invariant parts are taken at that step, and a moving ``@`` inside an aggregation's
    parameter starts there (selectors.param_drift), whichever slice is being evaluated."""
    if ctx.range_start_ms is None:
        return None
    at_start = dataclasses.replace(ctx, steps_ms=np.array([ctx.range_start_ms], np.int64))
    ref = int(reference_times(at_start, node.at_ms, node.at_modifier, node.offset_ms)[0])
    return (ref - int(node.range_ms)) // step * step + step
