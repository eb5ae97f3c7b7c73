"""Keeping a query inside its limits while it runs: time slices and iterative operator chains.

Two things the evaluator does through this module:

- **Step slices.** A node evaluated over many steps (a long range query, the inner expression of
  a subquery) is evaluated over consecutive slices of its steps when the query has a deadline or
  a cancel event, with the checks in between, so a timeout or a cancel fires within a slice's
  time of the limit instead of after the whole kernel. Every instant-vector node is step-local
  (its value at a step depends on that step only), so the slices' frames put side by side are
  the frame of the whole. Slices are sized from the measured time per step so each takes about
  5% of the time left (at most :data:`SLICE_MAX_SECONDS`); the rows collected so far are counted
  against ``max_samples`` after each slice, before the next is evaluated.
- **Left-deep chains.** ``a or b or c ...`` with thousands of terms is a left-deep tree. The
  spine below a binary node is evaluated bottom-up in a loop, each level finding its left
  operand already evaluated, so the Python recursion depth does not grow with the chain.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from promlab.errors import TooManySamples
from promlab.model import Labels
from promlab.promql.parser.ast import BinaryExpr, Expr, NumberLiteral, ParenExpr, StringLiteral
from promlab.promql.parser.types import ValueType
from promlab.promql.values import EvalContext, Scalar, Value, Vector

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SLICE_MAX_SECONDS",
    "SLICE_MIN_STEPS",
    "SLICE_SAMPLES",
    "SPINE_MIN",
    "UNSLICED_NS_PER_SAMPLE",
    "eval_in_slices",
    "eval_spine_ahead",
    "unsliced_samples",
    "wants_memory_slices",
    "wants_slices",
]

#: Nodes over at most this many steps are evaluated in one go.
SLICE_MIN_STEPS = 256
#: The first slice's steps (later slices are sized by the measured time per step).
SLICE_FIRST_STEPS = 64
#: Longest a slice is meant to take, whatever the time left.
SLICE_MAX_SECONDS = 1.0
#: Shortest target for a slice (below this the per-slice overhead dominates).
SLICE_MIN_SECONDS = 0.02
#: Samples a memory slice of a range query aims to read from storage (about 32 MB of
#: timestamps and values): a query reading more is evaluated over step slices so that it holds
#: about this many samples at once, not all of them.
SLICE_SAMPLES = 1 << 21
#: Time an unsliced evaluation is taken to spend per sample its selectors read, for
#: :func:`unsliced_samples`: above the worst measured over the benchmark queries' shapes (rate,
#: ``*_over_time``, aggregations, topk, joins, a subquery) on a loaded 2-core box, ~10-490 ns,
#: the high end when there are many steps per sample (500 series x 2,000 samples, 11,000 steps).
UNSLICED_NS_PER_SAMPLE = 500
#: Chains with a spine shorter than this are evaluated by plain recursion.
SPINE_MIN = 16


class _Running(Protocol):
    deadline: float | None
    cancel: threading.Event | None
    current_samples: int
    max_samples: int
    samples_read: int
    sized_reads: bool
    whole_ctx: EvalContext | None
    ready: dict[tuple[int, int], Value]

    def check(self) -> None: ...

    def eval(self, node: Expr, ctx: EvalContext) -> Value: ...


def wants_slices(ev: _Running, node: Expr, ctx: EvalContext) -> bool:
    """Whether ``node`` over ``ctx`` is evaluated in step slices (never over ``ev.whole_ctx``,
    the steps of a query that reads few samples, see :func:`unsliced_samples`)."""
    if ctx.num_steps <= SLICE_MIN_STEPS or (ev.deadline is None and ev.cancel is None):
        return False
    if ctx is ev.whole_ctx:
        return False
    if isinstance(node, NumberLiteral | StringLiteral | ParenExpr):
        return False
    return node.type in (ValueType.VECTOR, ValueType.SCALAR)


def wants_memory_slices(node: Expr, ctx: EvalContext) -> bool:
    """Whether the root ``node`` over ``ctx`` is evaluated in slices sized by the samples they
    read (see :data:`SLICE_SAMPLES`); the first slice measures the density."""
    if ctx.num_steps <= 2 * SLICE_FIRST_STEPS:
        return False
    if isinstance(node, NumberLiteral | StringLiteral):
        return False
    return node.type in (ValueType.VECTOR, ValueType.SCALAR)


def unsliced_samples(ev: _Running) -> int:
    """Most samples a query's selectors may read for its own steps to be evaluated in one go
    despite a deadline or a cancel event.

    One unsliced evaluation of that many samples is expected to take no longer than a step
    slice would (:data:`UNSLICED_NS_PER_SAMPLE` each, against the slice target: 5% of the time
    left, at most :data:`SLICE_MAX_SECONDS`), so the timeout or the cancel fires about as soon
    as with slices; at most a quarter of :data:`SLICE_SAMPLES`. Subqueries' steps are sliced
    still: their cost grows with their steps, not with the samples read.
    """
    return min(SLICE_SAMPLES // 4, int(_target_seconds(ev) * 1e9 / UNSLICED_NS_PER_SAMPLE))


def _slice_ctx(ctx: EvalContext, lo: int, hi: int) -> EvalContext:
    first = ctx.range_start_ms if ctx.range_start_ms is not None else int(ctx.steps_ms[0])
    return dataclasses.replace(ctx, steps_ms=ctx.steps_ms[lo:hi], range_start_ms=first)


def _target_seconds(ev: _Running) -> float:
    if ev.deadline is None:
        return SLICE_MAX_SECONDS / 4
    left = ev.deadline - time.monotonic()
    return min(SLICE_MAX_SECONDS, max(SLICE_MIN_SECONDS, 0.05 * left))


def eval_in_slices(ev: _Running, node: Expr, ctx: EvalContext,
                   evaluate: Callable[[Expr, _Running, EvalContext], Value], *,
                   by_samples: bool = False) -> Value:
    """Evaluate ``node`` slice by slice of ``ctx``'s steps; the frames joined along the steps.

    Slices are sized by the time left (with a deadline) and, ``by_samples``, also so that
    each reads about :data:`SLICE_SAMPLES` samples (from the samples read per step so far).
    """
    n = ctx.num_steps
    timed = ev.deadline is not None or ev.cancel is not None or not by_samples
    parts: list[tuple[int, Value]] = []
    base = ev.current_samples
    held = 0
    lo = 0
    size = SLICE_FIRST_STEPS
    while lo < n:
        hi = min(n, lo + size)
        started = time.monotonic()
        read = ev.samples_read
        # After the first slice, slices sized by samples need no density probe per read.
        sized, ev.sized_reads = ev.sized_reads, ev.sized_reads or (by_samples and lo > 0)
        try:
            part = evaluate(node, ev, _slice_ctx(ctx, lo, hi))
        finally:
            ev.sized_reads = sized
        spent = time.monotonic() - started
        read = ev.samples_read - read
        held += _count(part)
        ev.current_samples = base + held
        if ev.current_samples > ev.max_samples:
            raise TooManySamples()
        parts.append((lo, part))
        ev.check()
        limit = n
        if timed:
            per_step = max(spent, 1e-6) / (hi - lo)
            limit = min(size * 4, int(_target_seconds(ev) / per_step))
        if by_samples:
            limit = min(limit, int(SLICE_SAMPLES * (hi - lo) / max(read, 1)))
        size = max(1, limit)
        lo = hi
    ev.current_samples = base
    return _join(parts, n)


def _count(value: Value) -> int:
    if isinstance(value, Vector):
        return int(np.count_nonzero(value.present))
    if isinstance(value, Scalar):
        return int(value.values.shape[0])
    return 0


def _join(parts: list[tuple[int, Value]], n: int) -> Value:
    first = parts[0][1]
    if isinstance(first, Scalar):
        return Scalar(np.concatenate([p.values for _, p in parts if isinstance(p, Scalar)]))
    if not all(isinstance(p, Vector) for _, p in parts):
        raise TypeError("step slices of one node must all be vectors or all scalars")
    if isinstance(first, Vector) and all(isinstance(p, Vector) and p.labels == first.labels
                                         for _, p in parts[1:]):
        return _join_aligned(parts, n)
    rows: dict[tuple[Labels, int], int] = {}
    placed: list[np.ndarray] = []
    for _, part in parts:
        assert isinstance(part, Vector)
        seen: dict[Labels, int] = {}
        at = np.empty(len(part.labels), np.int64)
        for i, ls in enumerate(part.labels):
            k = seen.get(ls, 0)  # the k-th row with these labels in this slice (kept apart)
            seen[ls] = k + 1
            at[i] = rows.setdefault((ls, k), len(rows))
        placed.append(at)
    labels = [ls for ls, _ in rows]
    values = np.zeros((len(labels), n))
    present = np.zeros((len(labels), n), bool)
    drop = np.zeros(len(labels), bool)
    vectors = [p for _, p in parts if isinstance(p, Vector)]
    # (a slice without series, such as one before the data begin, has no timestamps to give)
    with_ts = all(p.timestamps_ms is not None for p in vectors if len(p.labels))
    ts = np.zeros((len(labels), n), np.int64) if with_ts else None
    # Histogram cells and start timestamps travel with their slices (either may be absent
    # from some slices: a slice without histograms has only float cells).
    hists = (np.full((len(labels), n), None, dtype=object)
             if any(p.histograms is not None for p in vectors) else None)
    starts = (np.zeros((len(labels), n), np.int64)
              if any(p.start_ts_ms is not None for p in vectors) else None)
    for (lo, part), at in zip(parts, placed, strict=True):
        assert isinstance(part, Vector)
        hi = lo + part.values.shape[1]
        values[at, lo:hi] = part.values
        present[at, lo:hi] = part.present
        drop[at] = part.drop_name_mask()  # the latest slice decides, as the last step does
        if ts is not None and part.timestamps_ms is not None:
            ts[at, lo:hi] = part.timestamps_ms
        if hists is not None and part.histograms is not None:
            hists[at, lo:hi] = part.histograms
        if starts is not None and part.start_ts_ms is not None:
            starts[at, lo:hi] = part.start_ts_ms
    return Vector(labels, values, present, drop, ts, histograms=hists, start_ts_ms=starts)


def _join_aligned(parts: list[tuple[int, Value]], n: int) -> Vector:
    """:func:`_join` of slices that all have the same rows (the usual case): row ``i`` of
    every slice is row ``i`` of the whole, no lookups by label set."""
    vectors = [p for _, p in parts if isinstance(p, Vector)]
    first, last = vectors[0], vectors[-1]
    s = len(first.labels)

    def joined(get: Callable[[Vector], npt.NDArray[Any] | None], dtype: type, fill: object,
               ) -> npt.NDArray[Any] | None:
        got = [get(v) for v in vectors]
        if all(g is None for g in got):
            return None
        out: npt.NDArray[Any] = np.full((s, n), fill, dtype)
        for (lo, _), g in zip(parts, got, strict=True):
            if g is not None:
                out[:, lo:lo + g.shape[1]] = g
        return out

    values = joined(lambda v: v.values, np.float64, 0.0)
    present = joined(lambda v: v.present, np.bool_, False)
    assert values is not None and present is not None
    with_ts = all(v.timestamps_ms is not None for v in vectors)
    ts = joined(lambda v: v.timestamps_ms, np.int64, 0) if with_ts else None
    hists = joined(lambda v: v.histograms, object, None)
    starts = joined(lambda v: v.start_ts_ms, np.int64, 0)
    # The latest slice decides the name dropping, as the last step does.
    return Vector(list(last.labels), values, present, last.drop_name_mask().copy(), ts,
                  histograms=hists, start_ts_ms=starts)


def eval_spine_ahead(ev: _Running, node: Expr, ctx: EvalContext) -> None:
    """Evaluate the left spine under binary ``node`` bottom-up into ``ev.ready``.

    Each level's own evaluation then finds its left operand in ``ev.ready`` (see
    ``Evaluator.eval``) instead of recursing down the chain.
    """
    if not isinstance(node, BinaryExpr) or not isinstance(node.lhs, BinaryExpr):
        return
    if (id(node.lhs), id(ctx)) in ev.ready:
        return
    spine: list[BinaryExpr] = []
    left: Expr = node.lhs
    while isinstance(left, BinaryExpr):
        spine.append(left)
        left = left.lhs
    if len(spine) < SPINE_MIN:
        return
    base = ev.current_samples
    for b in reversed(spine):
        value = ev.eval(b, ctx)
        ev.ready[(id(b), id(ctx))] = value
        ev.current_samples = base + _count(value)
