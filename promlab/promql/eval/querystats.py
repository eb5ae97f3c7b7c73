"""Sample statistics of one query (``stats=all``): samples loaded and the peak held.

What Prometheus 2.42 reports as ``samples.totalQueryableSamples`` (and per step, with
``totalQueryableSamplesPerStep``) is the samples its selectors load for each step:

- a vector selector: one per series that has a sample at the step (stale markers and samples
  older than the lookback delta do not count);
- a range-vector function: the samples of each series' window at each step (a subquery as its
  argument: the subquery's points in each window; what the subquery itself loaded does not
  count);
- an instant query's range selector or subquery as the whole query: the samples of its windows,
  or the samples the subquery's expression loaded, at the query's time.

Aggregations, operators and other functions load nothing. An ``@``-pinned subtree is evaluated
once by Prometheus and counted again at every step, which is what counting the pinned frame at
every step gives. What it holds meanwhile is one step's worth (:meth:`SampleStats.pin`), then its
result copied to every step (a matrix: as it is).

``peakSamples`` is the highest number of samples Prometheus holds at once (its ``max_samples``
count). :class:`SampleStats` models that count per node from the frames' sizes, not the
evaluator's own (which holds and frees whole frames): a selector holds its points; a node that
Prometheus evaluates step by step holds its children's frames, the inputs of the current step
and the results so far; a range-vector function holds a window of one series and its results so
far. Everything is counted with numpy reductions over the arrays the evaluator already has.

The engine models the held samples of every query, asked for or not: its ``max_samples`` is
Prometheus's ``--query.max-samples``, and a query is refused as soon as the model exceeds it,
which refuses the queries Prometheus refuses (the loaded samples are counted only for
``stats``).
"""

from __future__ import annotations

import numpy as np

from promlab.errors import TooManySamples
from promlab.promql.values import I64, EvalContext, Matrix, Scalar, Value, Vector

__all__ = ["SampleStats", "held_per_step", "window_samples"]

#: Samples placed at once when counting a matrix's window samples (bounds the temporaries).
_COUNT_CHUNK = 1 << 20


def held_per_step(value: Value, n_steps: int) -> I64 | None:
    """Samples ``value`` holds at each of its ``n_steps`` steps (None: not a step frame)."""
    if isinstance(value, Vector):
        out: I64 = np.count_nonzero(value.present, axis=0).astype(np.int64) \
            if value.present.shape[0] else np.zeros(value.present.shape[1], np.int64)
        return out
    if isinstance(value, Scalar):
        return np.ones(n_steps, np.int64)
    return None


def window_samples(m: Matrix) -> I64:
    """``(T,)``: samples in all series' windows ``(start, end]`` at each step of ``m``.

    A sample counts for window ``j`` iff ``start_j < ts <= end_j``: the count is
    ``C(end_j) - C(start_j)`` with ``C(e)`` the samples at or before ``e`` over all series
    (series boundaries do not matter for a sum). Samples the CSR arrays hold outside every
    window (a span's gaps, an extension's lookback) cancel out or are never counted.
    """
    ends, starts = m.window_end_ms, m.window_start_ms
    n_steps = int(ends.shape[0])
    if n_steps == 0 or m.ts_ms.shape[0] == 0:
        return np.zeros(n_steps, np.int64)
    if n_steps == 1:  # an instant query's window: one count
        ts = m.ts_ms
        return np.array([np.count_nonzero((ts > starts[0]) & (ts <= ends[0]))], np.int64)
    edges = np.concatenate([starts, ends])
    uniq, inv = np.unique(edges, return_inverse=True)
    # at_or_before[k]: samples whose first edge at or after them is edge k (then cumulative).
    hist = np.zeros(uniq.shape[0] + 1, np.int64)
    ts = m.ts_ms
    for lo in range(0, ts.shape[0], _COUNT_CHUNK):
        first = np.searchsorted(uniq, ts[lo:lo + _COUNT_CHUNK], side="left")
        hist += np.bincount(first, minlength=uniq.shape[0] + 1)
    cum = np.cumsum(hist[:-1])
    inv = inv.ravel()
    out: I64 = cum[inv[n_steps:]] - cum[inv[:n_steps]]
    return out


class SampleStats:
    """Sample counts of one query, filled in while it is evaluated (see the module docstring).

    Parameters
    ----------
    steps_ms
        The query's steps (one for an instant query).
    limit
        Prometheus's ``--query.max-samples``: :class:`~promlab.errors.TooManySamples` as soon
        as the modelled samples held exceed it (None: no limit), which refuses the queries
        Prometheus refuses.
    loads
        Count the samples loaded (``totalQueryableSamples``); off, only the held samples are
        modelled (for the limit alone, which is cheaper).
    """

    def __init__(self, steps_ms: I64, *, limit: int | None = None, loads: bool = True) -> None:
        self.steps_ms = steps_ms
        self.limit = limit
        self.loads = loads
        #: Samples loaded at each step of the query.
        self.per_step: I64 = np.zeros(steps_ms.shape[0], np.int64)
        #: Samples loaded at steps that are not the query's (none in practice).
        self.unplaced = 0
        #: Modelled samples held now, and the most held so far.
        self.current = 0
        self.peak = 0
        # Loads counted inside subqueries: one total per open subquery (innermost last).
        self._scopes: list[int] = []
        # Per open node: its children's samples held per step (rangeEval inputs).
        self._frames: list[list[I64]] = []
        # Steps of the step-invariant subtrees being evaluated (innermost last): Prometheus
        # evaluates those at one step, so what they hold is modelled at their first step.
        self._pinned: list[I64] = []

    @property
    def total(self) -> int:
        """``totalQueryableSamples``."""
        return int(self.per_step.sum()) + self.unplaced

    # --- loaded samples ------------------------------------------------------------------------
    def add(self, ctx: EvalContext, counts: I64) -> None:
        """Count ``counts`` (one per step of ``ctx``) samples loaded."""
        if not self.loads:
            return
        if self._scopes:
            self._scopes[-1] += int(counts.sum())
            return
        steps = ctx.steps_ms
        if steps is self.steps_ms or (steps.shape == self.steps_ms.shape
                                      and bool((steps == self.steps_ms).all())):
            self.per_step += counts
            return
        at = np.searchsorted(self.steps_ms, steps)
        ok = (at < self.steps_ms.shape[0])
        ok[ok] = self.steps_ms[at[ok]] == steps[ok]
        np.add.at(self.per_step, at[ok], counts[ok])
        self.unplaced += int(counts[~ok].sum())

    def open_subquery(self) -> None:
        """Loads from here on are a subquery's (until :meth:`close_subquery`)."""
        self._scopes.append(0)

    def close_subquery(self, ctx: EvalContext, *, counted: bool) -> None:
        """End the innermost subquery; its loads count at the first step of ``ctx`` when the
        subquery is the whole query (``counted``), else not at all."""
        total = self._scopes.pop()
        if counted and ctx.num_steps:
            counts = np.zeros(ctx.num_steps, np.int64)
            counts[-1] = total
            self.add(ctx, counts)

    # --- peak ----------------------------------------------------------------------------------
    def hold(self, n: int) -> None:
        self.current += n
        self.reach(self.current)

    def reach(self, n: int) -> None:
        """Note ``n`` samples held at some moment."""
        if n > self.peak:
            self.peak = n
            if self.limit is not None and n > self.limit:
                raise TooManySamples()

    def enter(self) -> int:
        """A node starts: returns the samples held before it."""
        self._frames.append([])
        return self.current

    def pin(self, ctx: EvalContext) -> None:
        """A step-invariant subtree over ``ctx`` starts: Prometheus evaluates it at one step
        (:func:`promlab.promql.eval.stepinvariant.pinned_roots`)."""
        self._pinned.append(ctx.steps_ms)

    def unpin(self, base: int, value: Value, ctx: EvalContext) -> None:
        """The step-invariant subtree started by :meth:`pin` ended with ``value``: an instant
        vector or scalar is copied to every step (and held so), a matrix is held as it is."""
        self._pinned.pop()
        mine = held_per_step(value, ctx.num_steps)
        if mine is None:
            return
        self.current = base
        self.hold(int(mine.sum()))
        if self._frames and self._frames[-1]:
            self._frames[-1][-1] = mine  # its parent sees it at every step

    def _one_step(self, ctx: EvalContext) -> bool:
        """Whether ``ctx`` is the steps of a step-invariant subtree being evaluated."""
        steps = ctx.steps_ms
        return any(p is steps or (p.shape == steps.shape and bool((p == steps).all()))
                   for p in self._pinned)

    def leave(self, base: int, value: Value, ctx: EvalContext, *, stepwise: bool,
              held: int | None = None) -> I64 | None:
        """A node ended with ``value``: model its peak and hold its result.

        ``stepwise``: Prometheus evaluates the node step by step over its children's frames
        (aggregations, operators, functions of instant vectors, literals); ``held``: what the
        result holds when not its frame's samples. Returns the result's samples per step
        (None: not a step frame); inside a step-invariant subtree only its first step is
        modelled as held.
        """
        children = self._frames.pop()
        n = ctx.num_steps
        if n == 1 and not self._pinned:
            return self._leave_one(base, value, children, stepwise=stepwise, held=held)
        every = held_per_step(value, n)
        mine = every
        if every is not None and n and self._pinned and self._one_step(ctx):
            mine, n = every[:1], 1
        if stepwise and mine is not None and n:
            inputs = np.zeros(n, np.int64)
            for c in children:
                if c.shape[0] == n:
                    inputs += c
                elif c.shape[0] >= 1:
                    inputs += c[0]
            before = np.cumsum(mine) - mine
            self.reach(self.current + int((before + inputs + mine).max()))
        self.current = base
        own = (int(mine.sum()) if mine is not None else 0) if held is None else held
        self.hold(own)
        if self._frames and mine is not None:
            self._frames[-1].append(mine)
        return every

    def _leave_one(self, base: int, value: Value, children: list[I64], *, stepwise: bool,
                   held: int | None) -> I64 | None:
        """:meth:`leave` of a one-step node (an instant query's): the same counts with Python
        integers, not per-step arrays (the model runs on every query)."""
        if isinstance(value, Vector):
            own_n = int(np.count_nonzero(value.present))
        elif isinstance(value, Scalar):
            own_n = 1
        else:
            own_n = -1  # not a step frame
        if stepwise and own_n >= 0:
            inputs = sum(int(c[0]) for c in children if c.shape[0] >= 1)
            self.reach(self.current + inputs + own_n)
        self.current = base
        self.hold((own_n if own_n >= 0 else 0) if held is None else held)
        if own_n < 0:
            return None
        mine = np.array([own_n], np.int64)
        if self._frames:
            self._frames[-1].append(mine)
        return mine

    def range_call(self, m: Matrix, result: Value, ctx: EvalContext) -> None:
        """The peak of a range-vector function over ``m`` (Prometheus: one series' window at
        a time, beside the results of the series before it): modelled exactly for the last
        series, whose window is held on top of nearly all results."""
        n_series = len(m.labels)
        if not n_series:
            return
        one = bool(self._pinned) and self._one_step(ctx)
        present = result.present[:, :1] if one and isinstance(result, Vector) else \
            result.present if isinstance(result, Vector) else None
        results = int(np.count_nonzero(present)) if present is not None else 0
        last = Matrix(m.labels[-1:], m.offsets[-2:] - m.offsets[-2],
                      m.ts_ms[int(m.offsets[-2]):int(m.offsets[-1])],
                      m.values[int(m.offsets[-2]):int(m.offsets[-1])],
                      m.window_start_ms, m.window_end_ms, m.range_ms)
        w = window_samples(last)
        if one:
            w = w[:1]
        if not w.shape[0]:
            return
        last_results = int(np.count_nonzero(w))
        self.reach(self.current + max(results - last_results + int(w.max()),
                                      results + int(w[-1])))
