"""The evaluator: one ``functools.singledispatch`` case per AST node type, whole frames per node.

:class:`Evaluator` holds what one query needs while it runs (the querier, a selection cache,
the sample count, the deadline and the cancel event); every node is evaluated through
:meth:`Evaluator.eval`, which checks cancellation, the timeout and the sample limit between
nodes; selections and dense frames are also built in chunks with the same checks between
chunks, so one huge selector can be interrupted. Nothing here loops over samples or steps.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from functools import singledispatch
from typing import Any

import numpy as np

from promlab.errors import FunctionNotImplemented, QueryCanceled, QueryTimeout, TooManySamples
from promlab.model import Labels, Matcher
from promlab.promql.eval import binops, limits, selectors, serieschunks, subquery
from promlab.promql.eval.groupmemo import grouped
from promlab.promql.eval.histops import neg
from promlab.promql.eval.info import eval_info
from promlab.promql.eval.kcheck import K_AGGREGATIONS, PendingChecks
from promlab.promql.eval.names import check_range_call_collisions, finalize_names
from promlab.promql.eval.querystats import SampleStats, window_samples
from promlab.promql.eval.registry import (
    AGGREGATIONS,
    FUNCTION_ARG_READS,
    FUNCTION_IMPLS,
    FUNCTION_PRECHECKS,
    AggregationCall,
    FunctionCall,
)
from promlab.promql.eval.rootfacts import MatcherKey, matcher_key, root_facts
from promlab.promql.eval.stepinvariant import pinned_roots, step_invariant, unresolved_start_end
from promlab.promql.parser.ast import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
    walk,
)
from promlab.promql.parser.types import ValueType
from promlab.promql.values import EvalContext, Matrix, Scalar, String, Value, Vector
from promlab.storage.interface import (
    Querier,
    Queryable,
    SampleEstimator,
    SelectHints,
    SeriesSet,
)

__all__ = ["Evaluator", "evaluate", "sample_count"]

# Dense (series x steps) cells a single frame may allocate, whatever max_samples says.
MAX_DENSE_CELLS = 400_000_000
# Samples read from storage per time slice when a selection is large (see Evaluator.select).
SELECT_CHUNK_SAMPLES = 8_000_000
# The density probe reads the first 1/PROBE_SLICES of a selection's time range.
PROBE_SLICES = 64
# Selections over shorter time ranges are read in one go, without a probe.
PROBE_MIN_SPAN_MS = 3_600_000


def sample_count(value: Value) -> int:
    """Samples held by a frame, as Prometheus counts them (points, not cells)."""
    if isinstance(value, Vector):
        return int(np.count_nonzero(value.present))
    if isinstance(value, Matrix):
        if value.held_samples is not None:
            return value.held_samples
        return int(value.ts_ms.shape[0])
    if isinstance(value, Scalar):
        return int(value.values.shape[0])
    return 0


class Evaluator:
    """Per-query state. Use once, then :meth:`close`.

    Parameters
    ----------
    queryable
        Where selectors read from.
    mint_ms, maxt_ms
        The time range the querier is opened for (all selectors' data).
    max_samples
        Limit on samples held at once; :class:`TooManySamples` beyond it.
    deadline
        ``time.monotonic()`` value after which :class:`QueryTimeout` is raised, or None.
    cancel
        An event that, once set, makes the query stop with :class:`QueryCanceled`.
    """

    def __init__(self, queryable: Queryable, *, mint_ms: int, maxt_ms: int, max_samples: int,
                 deadline: float | None = None, cancel: threading.Event | None = None) -> None:
        self.queryable = queryable
        self.mint_ms = mint_ms
        self.maxt_ms = maxt_ms
        self.max_samples = max_samples
        self.deadline = deadline
        self.cancel = cancel
        self.current_samples = 0
        self.peak_samples = 0
        #: Samples read from storage so far (sizes the memory slices of a range query).
        self.samples_read = 0
        #: Set while evaluating a slice sized by its samples: its reads skip the density probe.
        self.sized_reads = False
        #: The root's steps when the query reads few enough samples to be evaluated over them
        #: in one go despite a deadline (see :func:`.limits.unsliced_samples`), else None.
        self.whole_ctx: EvalContext | None = None
        self._querier: Querier | None = None
        self._cache: dict[tuple[Any, ...], SeriesSet] = {}
        # Values evaluated ahead of their parent, by (id(node), id(ctx)): see limits.py.
        self.ready: dict[tuple[int, int], Value] = {}
        # Selectors read through the histogram-stats reader, found from the first (root) node.
        self._stats_nodes: frozenset[int] | None = None
        # With stats: the subtrees Prometheus evaluates once per range (their held samples).
        self._pinned: frozenset[int] = frozenset()
        # Matcher sets that more than one selector of the query uses: only their selections are
        # kept for reuse (a selection read once is freed as soon as its frame is built).
        self._shared_keys: frozenset[MatcherKey] | None = None
        #: Whether vector selectors keep each cell's sample timestamp (only ``timestamp()``,
        #: ``info()`` and a bare selector's result read them; set from the root node).
        self.keep_timestamps = True
        #: Sample statistics of the query when asked for (``stats``), else None (not counted).
        self.stats: SampleStats | None = None
        # The root node below its parentheses (set from the root).
        self._top: Expr | None = None
        # Rows of each range-vector function's result in earlier step slices: label set once
        # the name is dropped -> the series' own label set (see _whole_range_checked).
        self.range_rows: dict[int, dict[Labels, Labels]] = {}
        #: How many step-slice evaluations are under way (nodes below are seen in parts).
        self.slice_depth = 0
        #: How many aggregation parameters are being evaluated: Prometheus's preprocessing never
        #: looks into one, so nothing below it is evaluated once per range (stepinvariant.py).
        self.param_depth = 0
        #: topk/bottomk/limitk's k seen in step slices, checked over all their steps (kcheck.py).
        self.k_checks = PendingChecks()

    # --- limits --------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise if the query was canceled or ran out of time."""
        if self.cancel is not None and self.cancel.is_set():
            raise QueryCanceled("query was canceled in expression evaluation")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in expression evaluation")

    def add_samples(self, n: int) -> None:
        self.current_samples += n
        self.peak_samples = max(self.peak_samples, self.current_samples)
        if self.current_samples > self.max_samples:
            raise TooManySamples()

    def check_dense(self, cells: int) -> None:
        """Refuse, before allocating it, a dense (series x steps) frame of more cells than the
        sample limit allows (at least 1M cells, at most :data:`MAX_DENSE_CELLS`)."""
        if cells > min(MAX_DENSE_CELLS, max(self.max_samples, 1_000_000)):
            raise TooManySamples()

    # --- storage -------------------------------------------------------------------------------
    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, *,
               views: bool = False) -> SeriesSet:
        """Series matching ``matchers`` with samples in ``[start_ms, end_ms]`` (cached).

        For a range of an hour or more (outside a step slice sized by its samples, see
        :func:`.limits.eval_in_slices`), a small probe slice at the end of the range estimates
        the data's density. When the whole range is estimated to hold at most
        :data:`SELECT_CHUNK_SAMPLES` it is read in one go; otherwise it is read backwards in time
        slices of about that many samples (fewer near the ``max_samples`` budget), checking
        cancellation, the timeout and the sample count between slices, so a huge selection can
        be interrupted and is refused before it is all loaded.

        With ``views`` the answer may be in the view form of :class:`SeriesSet` (runs inside
        the storage's cached arrays, not copied); otherwise it is contiguous.
        """
        mkey = matcher_key(matchers)
        key = (mkey, start_ms, end_ms)
        hit = self._cache.get(key)
        if hit is None:
            self.check()
            if self._querier is None:
                self._querier = self.queryable.querier(self.mint_ms, self.maxt_ms)
            hit = self._select_sliced(self._querier, list(matchers), start_ms, end_ms, views)
        if not views and hit.is_view:
            hit = hit.compact()
        if self._shared_keys is None or mkey in self._shared_keys:
            self._cache[key] = hit
        return hit

    def _select_sliced(self, querier: Querier, matchers: list[Matcher], start_ms: int,
                       end_ms: int, views: bool = False) -> SeriesSet:
        span = end_ms - start_ms + 1
        if span < PROBE_MIN_SPAN_MS or self.sized_reads:
            return self._read(querier, matchers, start_ms, end_ms, 0, views)
        if isinstance(querier, SampleEstimator) and querier.estimate_samples(
                matchers, start_ms, end_ms) <= min(SELECT_CHUNK_SAMPLES, self.max_samples):
            # no probe read needed
            return self._read(querier, matchers, start_ms, end_ms, 0, views)
        width = span // PROBE_SLICES
        probe = self._read(querier, matchers, end_ms - width + 1, end_ms, 0)
        if 0 < probe.num_samples * PROBE_SLICES <= min(SELECT_CHUNK_SAMPLES, self.max_samples):
            self.check()
            return self._read(querier, matchers, start_ms, end_ms, 0, views)
        # Read backwards in slices: doubling while nothing was found, then sized by density.
        parts = [probe]
        loaded = probe.num_samples
        covered = width
        hi = end_ms - width
        while hi >= start_ms:
            self.check()
            if loaded == 0:
                width = covered
            else:
                budget = min(SELECT_CHUNK_SAMPLES,
                             max(self.max_samples - loaded, self.max_samples // 4, 1))
                width = max(int(budget * covered / loaded), 1)
            lo = max(start_ms, hi - width + 1)
            part = self._read(querier, matchers, lo, hi, loaded)
            loaded += part.num_samples
            parts.append(part)
            covered += hi - lo + 1
            hi = lo - 1
        self.check()
        parts.reverse()
        return selectors.concat_time_slices(parts)

    def _read(self, querier: Querier, matchers: list[Matcher], start_ms: int, end_ms: int,
              loaded: int, views: bool = False) -> SeriesSet:
        ss = querier.select(matchers, SelectHints(start_ms=start_ms, end_ms=end_ms, views=views))
        n = ss.num_samples  # a sum over the runs in view form: once
        self.samples_read += n
        if loaded + n > self.max_samples:
            raise TooManySamples()
        return ss

    def _reads_many(self, root: Expr, limit: int = limits.SLICE_SAMPLES) -> bool:
        """Whether the query's selectors may read more than ``limit`` samples in all (always,
        when the storage cannot estimate without reading): a query reading fewer than
        :data:`.limits.SLICE_SAMPLES` is evaluated in one go, its selections read once."""
        if self._querier is None:
            self._querier = self.queryable.querier(self.mint_ms, self.maxt_ms)
        querier = self._querier
        if not isinstance(querier, SampleEstimator):
            return True
        total = 0
        seen: set[MatcherKey] = set()
        for n in walk(root):
            if isinstance(n, VectorSelector):
                key = matcher_key(n.matchers)
                if key in seen:
                    continue
                seen.add(key)
                total += querier.estimate_samples(list(n.matchers), self.mint_ms, self.maxt_ms)
                if total > limit:
                    return True
        return False

    def close(self) -> None:
        self._cache.clear()
        if self._querier is not None:
            try:
                self._querier.close()
            finally:
                self._querier = None

    def _prepare(self, root: Expr) -> None:
        """What the whole query needs, from its root (worked out once per tree): the selectors
        read through the stats reader, the matcher sets read more than once and whether any
        sample timestamps are read."""
        facts = root_facts(root)
        self._stats_nodes = facts.stats_nodes
        self._shared_keys = facts.shared_keys
        self._top = facts.top
        self.keep_timestamps = facts.keep_timestamps

    # --- evaluation ----------------------------------------------------------------------------
    @property
    def stats_nodes(self) -> frozenset[int]:
        return self._stats_nodes or frozenset()

    def eval(self, node: Expr, ctx: EvalContext) -> Value:
        """Evaluate ``node`` over ``ctx.steps_ms``; children's samples are released afterwards."""
        self.check()
        root = self._stats_nodes is None
        if root:
            self._prepare(node)
            if self.stats is not None and ctx.num_steps > 1:  # one step: nothing to pin
                self._pinned = pinned_roots(node)
        ready = self.ready.pop((id(node), id(ctx)), None)
        if ready is not None:  # a chain's left operand, evaluated (and counted) ahead
            return ready
        before = self.current_samples
        st = self.stats
        pinned = st is not None and ctx.num_steps > 1 and id(node) in self._pinned
        if st is not None:
            base = st.enter()
            if pinned:
                st.pin(ctx)
            if isinstance(node, SubqueryExpr):
                st.open_subquery()
        if root and limits.wants_slices(self, node, ctx) and not self._reads_many(
                node, limits.unsliced_samples(self)):
            self.whole_ctx = ctx  # few samples: the root's steps in one go, deadline or not
        if limits.wants_slices(self, node, ctx):
            value = self._in_slices(node, ctx, by_samples=root)
        elif root and ctx is not self.whole_ctx and limits.wants_memory_slices(node, ctx) \
                and self._reads_many(node):
            value = self._in_slices(node, ctx, by_samples=True)
        else:
            limits.eval_spine_ahead(self, node, ctx)
            value = evaluate(node, self, ctx)
        if not ctx.delayed_name_removal and isinstance(value, Vector) and value.drop_name is not None \
                and value.drop_name.any():
            value = finalize_names(value)
        if st is not None:
            self._account(st, node, ctx, value, base)
            if pinned:
                st.unpin(base, value, ctx)
        self.current_samples = before
        self.add_samples(sample_count(value))
        return value

    def _in_slices(self, node: Expr, ctx: EvalContext, *, by_samples: bool) -> Value:
        self.slice_depth += 1
        try:
            value = limits.eval_in_slices(self, node, ctx, evaluate, by_samples=by_samples)
        except BaseException:
            self.k_checks.clear()
            raise
        finally:
            self.slice_depth -= 1
        if not self.slice_depth:
            self.k_checks.finish()  # every slice of the outermost range seen
        return value

    def _account(self, st: SampleStats, node: Expr, ctx: EvalContext, value: Value,
                 base: int) -> None:
        """Count what ``node`` loaded and model what it held (see :mod:`.querystats`)."""
        top = node is self._top
        if isinstance(node, VectorSelector):
            loaded = st.leave(base, value, ctx, stepwise=False)
            if loaded is not None:
                st.add(ctx, loaded)
        elif isinstance(node, MatrixSelector):
            held = 0
            if top and isinstance(value, Matrix):  # an instant query's range selector
                windows = window_samples(value)
                st.add(ctx, windows)
                held = int(windows.sum())
            st.leave(base, value, ctx, stepwise=False, held=held)
        elif isinstance(node, SubqueryExpr):
            st.close_subquery(ctx, counted=top)
            points = int(value.ts_ms.shape[0]) if isinstance(value, Matrix) else 0
            st.leave(base, value, ctx, stepwise=False, held=points)
        elif isinstance(node, Call):
            ranged = any(a.type == ValueType.MATRIX for a in node.args)
            st.leave(base, value, ctx, stepwise=not ranged)
        else:
            st.leave(base, value, ctx,
                     stepwise=isinstance(node, AggregateExpr | BinaryExpr | NumberLiteral))


@singledispatch
def evaluate(node: Expr, ev: Evaluator, ctx: EvalContext) -> Value:
    raise FunctionNotImplemented(f"cannot evaluate {type(node).__name__} nodes")


@evaluate.register
def _number(node: NumberLiteral, ev: Evaluator, ctx: EvalContext) -> Value:
    return Scalar(np.full(ctx.num_steps, float(node.value)))


@evaluate.register
def _string(node: StringLiteral, ev: Evaluator, ctx: EvalContext) -> Value:
    return String(node.value)


@evaluate.register
def _paren(node: ParenExpr, ev: Evaluator, ctx: EvalContext) -> Value:
    return ev.eval(node.expr, ctx)


@evaluate.register
def _unary(node: UnaryExpr, ev: Evaluator, ctx: EvalContext) -> Value:
    value = ev.eval(node.expr, ctx)
    if node.op != "-":
        return value
    if isinstance(value, Scalar):
        return Scalar(-value.values)
    if isinstance(value, Vector):
        hists = None
        if value.histograms is not None:
            hists = np.frompyfunc(lambda h: None if h is None else neg(h), 1, 1)(value.histograms)
        return Vector(value.labels, -value.values, value.present, np.ones(len(value), bool),
                      None, hists)
    raise FunctionNotImplemented(f"unary minus on {type(value).__name__}")


@evaluate.register
def _call(node: Call, ev: Evaluator, ctx: EvalContext) -> Value:
    name = node.func.name
    if name == "info":   # needs the evaluator: info series are looked up at the samples' time
        return eval_info(node, ev, ctx)
    impl = FUNCTION_IMPLS.get(name)
    if impl is None:
        raise FunctionNotImplemented(f"function {name!r} is not implemented")
    precheck = FUNCTION_PRECHECKS.get(name)
    if precheck is not None:
        precheck(node)
    reads = FUNCTION_ARG_READS.get(name)
    arg_ctx = ctx
    if reads is not None and (ctx.at_moves or ctx.at_shift_ms) and _is_selector(node.args[0]):
        # timestamp(v @ t): Prometheus sets the selector's offset afresh at every step, so it
        # stays pinned even inside an aggregation's parameter or below subqueries that move
        # other pinned nodes (EvalContext.at_shift_ms)
        arg_ctx = dataclasses.replace(ctx, at_moves=False, at_shift_ms=0)
    args = [ev.eval(a, arg_ctx) for a in (node.args if reads is None else reads(node))]
    ranges = [i for i, a in enumerate(args) if isinstance(a, Matrix)]
    if not ranges:
        return impl(FunctionCall(node, args, ctx))
    at = ranges[0]
    m = args[at]
    assert isinstance(m, Matrix)
    if len(ranges) == 1 and name not in serieschunks.NOT_SERIES_LOCAL \
            and serieschunks.blockable(m):
        def run(block: Matrix) -> Value:
            return impl(FunctionCall(node, [*args[:at], block, *args[at + 1:]], ctx))

        result = serieschunks.by_series_blocks(m, run, ev.check)
    else:
        result = impl(FunctionCall(node, args, ctx))
    if ev.stats is not None:
        if ev.stats.loads:
            ev.stats.add(ctx, window_samples(m))
        ev.stats.range_call(m, result, ctx)
    return _whole_range_checked(ev, node, result, ctx)


def _is_selector(node: Expr) -> bool:
    while isinstance(node, ParenExpr):
        node = node.expr
    return isinstance(node, VectorSelector)


def _whole_range_checked(ev: Evaluator, node: Call, value: Value, ctx: EvalContext) -> Value:
    """A range-vector function's result, its label sets checked over all steps at once.

    Inside a step slice (:func:`.limits.eval_in_slices`, anywhere above the call) the call
    sees part of its range only: its rows are checked against those of the slices before
    (``ev.range_rows``), so a collision across slices fails as in Prometheus, which checks
    the whole result matrix of the call once.
    """
    if ctx.delayed_name_removal or not isinstance(value, Vector) \
            or node.func.name == "absent_over_time":
        return value
    if ev.slice_depth:
        check_range_call_collisions(value, ev.range_rows.setdefault(id(node), {}))
    elif ctx.num_steps > 1:
        check_range_call_collisions(value)
    return value


@evaluate.register
def _aggregate(node: AggregateExpr, ev: Evaluator, ctx: EvalContext) -> Value:
    impl = AGGREGATIONS.get(node.op)
    if impl is None:
        raise FunctionNotImplemented(f"aggregation {node.op!r} is not implemented")
    param_expr = unresolved_start_end(node.param) if node.param is not None else None
    param = None
    if param_expr is not None:
        once = ctx.num_steps and not ev.param_depth and step_invariant(node.expr)
        # nothing pinned stays put in there (selectors.param_drift)
        param_ctx = ctx if ctx.at_moves else dataclasses.replace(ctx, at_moves=True)
        ev.param_depth += 1
        try:
            param = _param_at_range_start(param_expr, ev, param_ctx) if once \
                else ev.eval(param_expr, param_ctx)
        finally:
            ev.param_depth -= 1
    vec = ev.eval(node.expr, ctx)
    if isinstance(vec, Scalar):  # pragma: no cover - the parser rejects this
        raise FunctionNotImplemented("aggregation over a scalar")
    assert isinstance(vec, Vector)
    group_ids, groups = grouped(vec.labels, node.grouping, without=node.without)
    # Prometheus checks k over the whole range: a slice's k waits for the other slices'.
    k_checked = bool(ev.slice_depth) and node.op in K_AGGREGATIONS and isinstance(param, Scalar)
    if k_checked:
        assert isinstance(param, Scalar)
        ev.k_checks.note(id(node), param.values, ctx.steps_ms)
    return impl(AggregationCall(node, vec, param, group_ids, groups, ctx, k_checked=k_checked))


def _param_at_range_start(expr: Expr, ev: Evaluator, ctx: EvalContext) -> Value:
    """An aggregation parameter as Prometheus sees it when the aggregated expression is step
    invariant: the whole aggregation runs once, at the range's first step, so that step's
    parameter holds for every step (``topk(scalar(x), g @ start())``), and the later steps'
    are never evaluated (nor fail)."""
    first = ctx.range_start_ms if ctx.range_start_ms is not None else int(ctx.steps_ms[0])
    if ctx.num_steps == 1 and int(ctx.steps_ms[0]) == first:
        return ev.eval(expr, ctx)
    at_first = ev.eval(expr, dataclasses.replace(ctx, steps_ms=np.array([first], np.int64)))
    if isinstance(at_first, Scalar):
        return Scalar(np.repeat(at_first.values[:1], ctx.num_steps))
    return at_first


evaluate.register(VectorSelector)(selectors.eval_vector_selector)
evaluate.register(MatrixSelector)(selectors.eval_matrix_selector)
evaluate.register(SubqueryExpr)(subquery.eval_subquery)
evaluate.register(BinaryExpr)(binops.eval_binary)
