"""The PromQL engine: instant and range queries share one path (an instant query is one step).

Examples
--------
>>> from promlab.model import Labels
>>> from promlab.storage import MemoryStorage
>>> from promlab.promql.parser.ast import VectorSelector
>>> from promlab.model import Matcher, MatchType
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), [0, 15_000], [1.0, 0.0])
>>> sel = VectorSelector(name="up", matchers=(Matcher(MatchType.EQUAL, "__name__", "up"),))
>>> res = Engine().instant(st, sel, 20_000)
>>> res.result_type, res.value.values.tolist()
('vector', [[0.0]])
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from promlab.errors import BadData, PromlabError, QueryError
from promlab.model import Labels
from promlab.model.time import DurationLike, parse_duration
from promlab.promql import labelmemo
from promlab.promql.eval import groupmemo, rootfacts
from promlab.promql.eval.durations import resolve_durations
from promlab.promql.eval.evaluator import Evaluator
from promlab.promql.eval.functions import histcells
from promlab.promql.eval.names import finalize_names
from promlab.promql.eval.querystats import SampleStats
from promlab.promql.eval.stepinvariant import unresolved_start_end
from promlab.promql.features import (
    DELAYED_NAME_REMOVAL,
    USE_START_TIMESTAMPS,
    check_features,
    resolve_features,
)
from promlab.promql.parser import parse_expr, to_string
from promlab.promql.parser.ast import (
    AggregateExpr,
    Expr,
    MatrixSelector,
    SubqueryExpr,
    ValueType,
    VectorSelector,
    children,
    walk,
)
from promlab.promql.results import Result
from promlab.promql.values import EvalContext, Matrix, Scalar, String, Vector
from promlab.storage.interface import Queryable

__all__ = ["Engine", "Result", "clear_caches", "data_time_range"]


def _ms(value: DurationLike, *, name: str) -> int:
    """An engine option in ms; a bare number is seconds, as everywhere in the public API."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BadData(f"invalid {name}: {exc}") from None


def data_time_range(expr: Expr, start_ms: int, end_ms: int, *, lookback_ms: int,
                    ) -> tuple[int, int] | None:
    """``[mint, maxt]`` covering every sample any selector of ``expr`` can read, or None."""
    lo_hi: list[tuple[int, int]] = []

    def at_of(at_ms: int | None, mod: str | None) -> int | None:
        if at_ms is not None:
            return at_ms
        if mod == "start":
            return start_ms
        if mod == "end":
            return end_ms
        return None

    # An explicit stack, not recursion: operator chains can be thousands of nodes deep.
    stack: list[tuple[Expr, int, int]] = [(expr, start_ms, end_ms)]
    while stack:
        node, lo, hi = stack.pop()
        if isinstance(node, VectorSelector):
            at = at_of(node.at_ms, node.at_modifier)
            if at is not None:
                lo = hi = at
            after = lookback_ms if node.smoothed else 0
            lo_hi.append((lo - node.offset_ms - lookback_ms + 1, hi - node.offset_ms + after))
        elif isinstance(node, MatrixSelector):
            vs = node.vector_selector
            at = at_of(vs.at_ms, vs.at_modifier)
            if at is not None:
                lo = hi = at
            # anchored/smoothed read a lookback before the range (and after it, smoothed)
            before = lookback_ms if vs.anchored or vs.smoothed else 0
            after = lookback_ms if vs.smoothed else 0
            lo_hi.append((lo - vs.offset_ms - node.range_ms - before + 1,
                          hi - vs.offset_ms + after))
        elif isinstance(node, SubqueryExpr):
            at = at_of(node.at_ms, node.at_modifier)
            if at is not None:
                lo = hi = at
            stack.append((node.expr, lo - node.offset_ms - node.range_ms, hi - node.offset_ms))
        elif isinstance(node, AggregateExpr) and node.param is not None:
            # The parameter is evaluated without its @ start()/@ end() (see stepinvariant).
            stack.extend([(unresolved_start_end(node.param), lo, hi), (node.expr, lo, hi)])
        else:
            stack.extend((c, lo, hi) for c in children(node))
    if not lo_hi:
        return None
    return min(a for a, _ in lo_hi), max(b for _, b in lo_hi)


#: Most steps a range query may ask for (Prometheus's 11,000 points per series), checked before
#: anything is allocated.
MAX_POINTS_PER_SERIES = 11_000
#: Samples the evaluator may read and hold whatever ``max_samples`` says: it reads whole
#: selections (lookback included) where Prometheus holds a point per step, so a small limit
#: would refuse queries Prometheus answers. Prometheus's own count enforces the limit.
MIN_MEMORY_BUDGET = 1_000_000


class Engine:
    """Evaluates PromQL over any :class:`~promlab.storage.interface.Queryable`.

    Parameters
    ----------
    lookback_delta
        How far back an instant selector looks for the latest sample (default 5m). Durations
        here are ``"5m"``-style strings, timedeltas or numbers of seconds.
    max_samples
        Most samples a query may hold at once before :class:`~promlab.errors.TooManySamples`,
        counted as Prometheus counts them (:mod:`promlab.promql.eval.querystats` models what
        Prometheus holds at each moment). The evaluator's own memory guards (the samples it
        reads and the frames it allocates) use the same limit, but never less than
        :data:`MIN_MEMORY_BUDGET`: below that only Prometheus's count decides.
    timeout
        Longest a query may run before :class:`~promlab.errors.QueryTimeout` (None: no limit).
    default_subquery_step
        Step of ``expr[range:]`` subqueries without an explicit step.
    features
        Feature flags with Prometheus's ``--enable-feature`` names (see
        :mod:`promlab.promql.features`): experimental syntax and functions are refused unless
        enabled; ``"all"`` enables everything.
    """

    def __init__(self, *, lookback_delta: DurationLike = "5m", max_samples: int = 50_000_000,
                 timeout: DurationLike | None = "2m", default_subquery_step: DurationLike = "1m",
                 features: Iterable[str] | str | None = None) -> None:
        self.features = resolve_features(features)
        self.lookback_ms = _ms(lookback_delta, name="lookback_delta") or 5 * 60 * 1000
        self.max_samples = int(max_samples)
        self.timeout_ms = None if timeout is None else _ms(timeout, name="timeout")
        self.default_subquery_step_ms = _ms(default_subquery_step, name="default_subquery_step")

    # --- public --------------------------------------------------------------------------------
    def instant(self, queryable: Queryable, expr: str | Expr, time_ms: int, *,
                cancel: threading.Event | None = None, stats: bool = False) -> Result:
        """Evaluate ``expr`` at ``time_ms`` (``stats``: count samples, ``Result.sample_stats``)."""
        t = int(time_ms)
        return self._exec(queryable, expr, t, t, 0, cancel=cancel, is_range=False, stats=stats)

    def range(self, queryable: Queryable, expr: str | Expr, start_ms: int, end_ms: int,
              step_ms: int, *, cancel: threading.Event | None = None,
              stats: bool = False) -> Result:
        """Evaluate ``expr`` at ``start_ms, start_ms + step_ms, ... <= end_ms`` (``stats``: count
        samples, ``Result.sample_stats``)."""
        if step_ms <= 0:
            raise BadData("zero or negative query resolution step widths are not accepted. "
                             "Try a positive integer")
        if end_ms < start_ms:
            raise BadData("end timestamp must not be before start time")
        if (int(end_ms) - int(start_ms)) // int(step_ms) > MAX_POINTS_PER_SERIES:
            raise BadData("exceeded maximum resolution of 11,000 points per timeseries. Try "
                          "decreasing the query resolution (?step=XX)")
        return self._exec(queryable, expr, int(start_ms), int(end_ms), int(step_ms),
                          cancel=cancel, is_range=True, stats=stats)

    def new_evaluator(self, queryable: Queryable, node: Expr, ctx: EvalContext, *, mint_ms: int,
                      maxt_ms: int, deadline: float | None,
                      cancel: threading.Event | None) -> Evaluator:
        """The evaluator for one query of ``node`` over ``ctx`` (the hook where a subclass such
        as :class:`promlab.promql.distributed.DistributedEngine` plans and starts remote work)."""
        return Evaluator(queryable, mint_ms=mint_ms, maxt_ms=maxt_ms,
                         max_samples=max(self.max_samples, MIN_MEMORY_BUDGET),
                         deadline=deadline, cancel=cancel)

    # --- internals ------------------------------------------------------------------------------
    def _exec(self, queryable: Queryable, expr: str | Expr, start_ms: int, end_ms: int,
              step_ms: int, *, cancel: threading.Event | None, is_range: bool,
              stats: bool = False) -> Result:
        started = time.monotonic()
        text, node = _parse(expr)
        if not _plain(node):
            check_features(node, self.features)
            node = resolve_durations(node, step_ms, end_ms - start_ms)
        if is_range and node.type not in (ValueType.SCALAR, ValueType.VECTOR):
            raise BadData(f'invalid expression type "{node.type.document_name}" for range '
                             "query, must be Scalar or instant Vector")
        steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64) if is_range else \
            np.array([start_ms], np.int64)
        ctx = EvalContext(steps_ms=steps, start_ms=start_ms, end_ms=end_ms, step_ms=step_ms,
                          lookback_ms=self.lookback_ms,
                          default_subquery_step_ms=self.default_subquery_step_ms,
                          max_samples=self.max_samples, query=text,
                          delayed_name_removal=DELAYED_NAME_REMOVAL in self.features,
                          use_start_timestamps=USE_START_TIMESTAMPS in self.features)
        bounds = _data_bounds(node, start_ms, end_ms, self.lookback_ms)
        deadline = None if self.timeout_ms is None else started + self.timeout_ms / 1000.0
        ev = self.new_evaluator(queryable, node, ctx, mint_ms=bounds[0], maxt_ms=bounds[1],
                                deadline=deadline, cancel=cancel)
        # Always modelled: the held samples are what max_samples limits; the loaded ones are
        # counted only when asked for.
        ev.stats = SampleStats(steps, limit=self.max_samples, loads=stats)
        try:
            value = ev.eval(node, ctx)
            ev.check()
            value, rtype = _shape_result(value, is_range)
        except PromlabError:
            raise
        except MemoryError:
            raise QueryError("query ran out of memory in query execution") from None
        finally:
            ev.close()
        return Result(query=text, expr=node, value=value, steps_ms=steps, result_type=rtype,
                      annotations=ctx.annotations, start_ms=start_ms, end_ms=end_ms,
                      step_ms=step_ms, sample_stats=ev.stats if stats else None)


def _parse(expr: str | Expr) -> tuple[str, Expr]:
    if isinstance(expr, Expr):
        try:
            return to_string(expr), expr
        except Exception:  # a hand-built expression the printer cannot print
            return "", expr
    return expr, _parse_text(expr)


#: Trees known to use no feature flag (nor so any duration expression), by ``id``; an entry
#: holds its tree, so no other tree can have that id while it is kept.
_PLAIN: dict[int, Expr] = {}
_PLAIN_MAX = 1024


def _plain(node: Expr) -> bool:
    """Whether ``node`` uses no feature flag: then every engine accepts it and it has no duration
    expression to resolve (``check_features`` refuses those without the flag). Remembered per
    tree (parsed texts' trees are kept by :func:`_parse_text`)."""
    if _PLAIN.get(id(node)) is node:
        return True
    try:
        check_features(node, frozenset())
    except BadData:
        return False
    if len(_PLAIN) >= _PLAIN_MAX:
        _PLAIN.clear()
    _PLAIN[id(node)] = node
    return True


#: Per (tree ``id``, lookback): the tree, whether it has an ``@`` modifier, and without one the
#: offsets of :func:`data_time_range` from the query's start and end (it moves with them).
_SPANS: dict[tuple[int, int], tuple[Expr, bool, tuple[int, int] | None]] = {}


def _data_bounds(node: Expr, start_ms: int, end_ms: int, lookback_ms: int) -> tuple[int, int]:
    """:func:`data_time_range` (``(0, 0)`` without selectors), its offsets worked out once per
    tree without ``@``."""
    hit = _SPANS.get((id(node), lookback_ms))
    if hit is None or hit[0] is not node:
        pinned = any(isinstance(n, VectorSelector | SubqueryExpr)
                     and (n.at_ms is not None or n.at_modifier is not None) for n in walk(node))
        hit = (node, pinned, None if pinned else data_time_range(node, 0, 0,
                                                                  lookback_ms=lookback_ms))
        if len(_SPANS) >= _PLAIN_MAX:
            _SPANS.clear()
        _SPANS[(id(node), lookback_ms)] = hit
    if hit[1]:
        return data_time_range(node, start_ms, end_ms, lookback_ms=lookback_ms) or (0, 0)
    off = hit[2]
    return (0, 0) if off is None else (start_ms + off[0], end_ms + off[1])


def clear_caches() -> None:
    """Forget what the engine remembers process-wide between queries: parsed query texts and
    the label memos (derived label sets, groupings, histogram layouts). Answers do not change; the next queries
    pay what a fresh process pays (benchmarks time first touches with this)."""
    _parse_text.cache_clear()
    _PLAIN.clear()
    _SPANS.clear()
    rootfacts.clear()
    labelmemo.clear()
    groupmemo.clear()
    histcells.clear()


@functools.lru_cache(maxsize=512)
def _parse_text(text: str) -> Expr:
    """A query's tree, parsed once per text (trees are immutable; errors are not cached)."""
    return parse_expr(text)


def _shape_result(value: Scalar | String | Vector | Matrix, is_range: bool,
                  ) -> tuple[Scalar | String | Vector | Matrix, str]:
    if isinstance(value, String):
        if is_range:
            raise BadData('invalid expression type "string" for range query, must be '
                             "Scalar or instant Vector")
        return value, "string"
    if isinstance(value, Scalar):
        if not is_range:
            return value, "scalar"
        n = value.values.shape[0]
        return Vector([Labels()], value.values[None, :].copy(), np.ones((1, n), bool)), "matrix"
    if isinstance(value, Matrix):
        return finalize_names(value), "matrix"
    vec = finalize_names(value)
    assert isinstance(vec, Vector)
    if not is_range and np.count_nonzero(vec.present) == vec.present.size:
        # Every cell present (an instant query's usual case): every row kept, in place, the
        # frame's arrays are the result (no copies).
        return Vector(vec.labels, vec.values, vec.present, None, vec.timestamps_ms,
                      vec.histograms), "vector"
    keep = vec.present.any(axis=1)
    if not is_range and keep.all():
        return Vector(vec.labels, vec.values, vec.present, None, vec.timestamps_ms,
                      vec.histograms), "vector"
    rows = np.flatnonzero(keep)
    labels = vec.labels if rows.shape[0] == len(vec.labels) else \
        [vec.labels[i] for i in rows.tolist()]
    if is_range and not _ascending(labels):
        order = sorted(range(len(labels)), key=labels.__getitem__)
        rows = rows[np.asarray(order, np.int64)] if order else rows
        labels = [labels[i] for i in order]
    if rows.shape[0] == len(vec.labels) and _ascending_rows(rows):
        # Every row kept, in place: the frame's arrays are the result (no copies).
        return Vector(labels, vec.values, vec.present, None, vec.timestamps_ms,
                      vec.histograms), "matrix" if is_range else "vector"
    ts = None if vec.timestamps_ms is None else vec.timestamps_ms[rows]
    hists = None if vec.histograms is None else vec.histograms[rows]
    out = Vector(labels, vec.values[rows], vec.present[rows], None, ts, hists)
    return out, "matrix" if is_range else "vector"


def _ascending(labels: list[Labels]) -> bool:
    """Whether ``labels`` are already sorted (storage order usually is)."""
    return all(a < b for a, b in itertools.pairwise(labels))


def _ascending_rows(rows: npt.NDArray[np.int64]) -> bool:
    return rows.shape[0] == 0 or bool((rows == np.arange(rows.shape[0])).all())
