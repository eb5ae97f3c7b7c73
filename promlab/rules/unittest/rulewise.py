"""A rule unit test's evaluation done rule by rule over all steps, when that changes nothing.

promtool evaluates every rule group at every ``evaluation_interval``, the input loaded up to
each step just before it. Rule by rule is the same when no rule can see the difference:

* a rule reads the input and the output of rules evaluated before it (earlier groups in
  ``group_eval_order``, earlier rules of its group), which it sees up to ``t`` at step ``t``,
  and of rules after it, which it sees up to the step before: those are evaluated first and
  read through selectors rewritten to leave ``t`` out (:func:`_lag`: instant selectors and
  ranges of ``*_over_time``-like functions only); never its own output, nor a cycle;
* nothing reads past its evaluation time (no ``@``, no negative ``offset``), so input
  loaded past ``t`` is never seen; a template's ``query`` reads neither (nor the output of
  its rule or a later one: it runs while the rule is replayed, see below);
* every rule writes series of its own (recording names unique, apart from the input's and
  ``ALERTS``; alert names unique), so no write is refused (duplicate or out-of-order samples
  are step-by-step errors);
* no step of any rule fails (an error, a duplicate label set, ``limit``) and no instant
  query could exceed the test engine's ``max_samples`` (:func:`peak_bound`).

Then each rule's expression is one range query over the steps (at most
``MAX_STEPS_PER_QUERY`` per query); a recording rule's output (renamed, relabelled, staleness
markers where a series stops) is written at once; an alerting rule's state machine is replayed
step by step (:meth:`~promlab.rules.group.GroupState.eval_rule`) on the column of its result,
its ``ALERTS``/``ALERTS_FOR_STATE`` gathered and written at the end, and its firing alerts
kept at the steps an ``alert_rule_test`` looks at. Anything that does not fit makes
:func:`evaluate` give up (``None``): the caller then runs the step-by-step evaluation afresh,
which reports what promtool reports.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.errors import PromlabError
from promlab.model import METRIC_NAME, STALE_NAN, Labels, MatchType
from promlab.promql.engine import MIN_MEMORY_BUDGET, Engine
from promlab.promql.parser import parse_expr, to_string
from promlab.promql.parser.ast import (
    AggregateExpr,
    Call,
    Expr,
    MatrixSelector,
    SubqueryExpr,
    VectorSelector,
    children,
    walk,
)
from promlab.promql.values import Vector
from promlab.rules.group import GroupState
from promlab.rules.query import QueryFunc, query_funcs
from promlab.rules.rule import (
    ALERTS_FOR_STATE_METRIC,
    ALERTS_METRIC,
    AlertingRule,
    RecordingRule,
    Rule,
)
from promlab.rules.unittest.headcheck import LastSamples
from promlab.storage.interface import AnyHistogram, AppendStats
from promlab.storage.memory import MemoryStorage

__all__ = ["MAX_STEPS_PER_QUERY", "RuleOrder", "evaluate", "peak_bound", "plan", "precompute",
           "replayed"]

#: Steps per range query (the engine refuses more than 11,000 points per series).
MAX_STEPS_PER_QUERY = 10_000
#: Aggregations whose ties a range query might break otherwise than an instant one.
_TIE_BREAKING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
#: Range-vector functions of the samples in the window alone (not of the window's bounds).
_SAMPLE_ONLY = frozenset({
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "present_over_time", "absent_over_time", "stddev_over_time",
    "stdvar_over_time", "quantile_over_time", "mad_over_time", "changes", "resets",
})
#: Functions that read more than their arguments.
_READS_STORE = frozenset({"info"})


#: Called after an alerting rule's step with its group's state and the rule's index there (to
#: keep the firing alerts an ``alert_rule_test`` looks at).
Snapshot = Callable[[GroupState, int], None]


class _GiveUp(Exception):
    """The rule-by-rule evaluation cannot vouch for promtool's result."""


@dataclass(frozen=True, slots=True)
class RuleOrder:
    """One rule in evaluation order: its group's state, index there, parsed expression, its
    position in promtool's order and the query to evaluate over all steps (the expression,
    or with reads of later rules' output lagged, see :func:`_lag`)."""

    state: GroupState
    index: int
    expr: Expr
    position: int = 0
    query: str = ""

    @property
    def rule(self) -> Rule:
        return self.state.group.rules[self.index]

    @property
    def text(self) -> str:
        return self.query or self.rule.expr


def _produces(rule: Rule) -> tuple[str, ...]:
    return (ALERTS_METRIC, ALERTS_FOR_STATE_METRIC) if isinstance(rule, AlertingRule) else (rule.name,)


def _plain(expr: Expr) -> bool:
    """No ``@``, negative or computed offset, computed range or step, ``anchored`` or
    ``smoothed`` selector (they read past their windows), tie-breaking aggregation or
    store-reading function."""
    for node in walk(expr):
        if isinstance(node, SubqueryExpr) and (
                node.at_ms is not None or node.at_modifier is not None or node.offset_ms < 0
                or node.offset_expr is not None or node.range_expr is not None
                or node.step_expr is not None):
            return False
        if isinstance(node, VectorSelector) and (
                node.at_ms is not None or node.at_modifier is not None or node.offset_ms < 0
                or node.offset_expr is not None or node.anchored or node.smoothed):
            return False
        if isinstance(node, MatrixSelector) and node.range_expr is not None:
            return False
        if isinstance(node, AggregateExpr) and node.op in _TIE_BREAKING:
            return False
        if isinstance(node, Call) and node.func.name in _READS_STORE:
            return False
    return True


def _reads(expr: Expr, name: str) -> bool:
    """Whether a selector of ``expr`` may select series named ``name``."""
    return any(all(m.matches(name) for m in node.matchers if m.name == METRIC_NAME)
               for node in walk(expr) if isinstance(node, VectorSelector))


def _selects_only(node: VectorSelector, names: set[str]) -> bool:
    """Whether ``node`` names one metric of ``names`` (``name{...}`` / ``{__name__="name"}``)."""
    return any(m.name == METRIC_NAME and m.type == MatchType.EQUAL and m.value in names
               for m in node.matchers)


def _lag(node: Expr, names: set[str], *, windows: bool = False) -> Expr:
    """``node`` with its reads of series named in ``names`` kept to samples before the
    evaluation time: the output of rules evaluated after it at the same step.

    At step ``t`` such a rule has written up to ``t - step``: a range selector ``m[r]`` sees
    ``(t - r, t)``, which is ``m[r - 1ms] offset 1ms`` when only the samples count (the
    functions of :data:`_SAMPLE_ONLY`, ``windows``); an instant selector sees the latest
    sample before ``t``, which ``m offset 1ms`` finds too (its window also takes ``t - 5m``,
    never the latest sample there: a rule writes at every step, or a staleness marker once,
    and the evaluation interval is shorter than the lookback, see :func:`plan`). A selector
    with an offset sees nothing at ``t`` anyway. Anything else reading them (a subquery, other
    range functions, selectors of those and other series at once) raises :class:`_GiveUp`.
    """
    if isinstance(node, VectorSelector):
        if not any(_reads(node, n) for n in names) or node.offset_ms > 0:
            return node
        if not _selects_only(node, names):
            raise _GiveUp("a selector of a later rule's output and other series")
        return dataclasses.replace(node, offset_ms=1)
    if isinstance(node, MatrixSelector):
        vs = node.vector_selector
        if not any(_reads(vs, n) for n in names) or vs.offset_ms > 0:
            return node
        if not (windows and _selects_only(vs, names) and node.range_ms > 1):
            raise _GiveUp("a range of a later rule's output")
        return dataclasses.replace(node, range_ms=node.range_ms - 1,
                                   vector_selector=dataclasses.replace(vs, offset_ms=1))
    if isinstance(node, SubqueryExpr):
        if any(_reads(node.expr, n) for n in names):
            raise _GiveUp("a subquery of a later rule's output")
        return node
    changes: dict[str, object] = {}
    inside = isinstance(node, Call) and node.func.name in _SAMPLE_ONLY
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            new = _lag(value, names, windows=inside)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and any(isinstance(v, Expr) for v in value):
            items = tuple(_lag(v, names, windows=inside) if isinstance(v, Expr) else v for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[f.name] = items
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]


def _evaluation_order(order: list[RuleOrder], step_ms: int, lookback_ms: int) -> list[RuleOrder] | None:
    """``order`` (promtool's) rearranged so that every rule comes after the rules whose output
    it reads, those after it in promtool's order read lagged (:func:`_lag`); None when there
    is no such order (a rule reading its own output, say)."""
    deps: list[set[int]] = []
    out = list(order)
    for k, ro in enumerate(order):
        need: set[int] = set()
        before: set[str] = set()
        after: set[str] = set()
        for m, other in enumerate(order):
            for name in _produces(other.rule):
                if _reads(ro.expr, name):
                    if m == k:
                        return None
                    need.add(m)
                    (before if m < k else after).add(name)
        if after:
            if before & after or step_ms >= lookback_ms:
                return None
            try:
                lagged = _lag(ro.expr, after)
            except _GiveUp:
                return None
            out[k] = dataclasses.replace(ro, query=to_string(lagged))
        deps.append(need)
    done: list[int] = []
    placed: set[int] = set()
    while len(done) < len(order):
        ready = [k for k in range(len(order)) if k not in placed and deps[k] <= placed]
        if not ready:
            return None  # a cycle
        done.append(ready[0])
        placed.add(ready[0])
    return [out[k] for k in done]


def plan(states: Sequence[GroupState], input_names: set[str], *, step_ms: int,
         lookback_ms: int) -> list[RuleOrder] | None:
    """The rules in an order to evaluate them one by one over all steps, or None when that
    could differ from promtool's step-by-step evaluation (see the module docstring)."""
    if len({st.query_offset_ms for st in states}) > 1:
        return None
    order: list[RuleOrder] = []
    names: set[str] = set()
    alert_names: set[str] = set()
    for st in states:
        for i, rule in enumerate(st.group.rules):
            if isinstance(rule, RecordingRule):
                if (rule.name in names or rule.name in input_names
                        or rule.name in (ALERTS_METRIC, ALERTS_FOR_STATE_METRIC)
                        or METRIC_NAME in st.group.rule_labels(rule)):
                    return None
                names.add(rule.name)
            else:
                if rule.name in alert_names:
                    return None
                alert_names.add(rule.name)
            try:
                expr = parse_expr(rule.expr)
            except PromlabError:
                return None
            if not _plain(expr):
                return None
            order.append(RuleOrder(st, i, expr, position=len(order)))
    if alert_names and input_names & {ALERTS_METRIC, ALERTS_FOR_STATE_METRIC}:
        return None
    return _evaluation_order(order, step_ms, lookback_ms)


def _max_in_window(ts: npt.NDArray[np.int64], window_ms: int) -> int:
    """The most samples of ``ts`` (sorted) in any closed window ``[t - window_ms, t]``."""
    if not ts.shape[0]:
        return 0
    first = np.searchsorted(ts, ts - window_ms, side="left")
    return int((np.arange(ts.shape[0]) - first).max()) + 1


def peak_bound(store: MemoryStorage, expr: Expr, lookback_ms: int, default_step_ms: int) -> int | None:
    """An upper bound of the samples an instant query of ``expr`` holds at once, at any time,
    over what ``store`` holds now (None: histograms, not bounded here; or more selected than
    the engine's own memory budget might take).

    A range selector holds at most its series times the most samples in one window (its
    range, widened by the ranges of the subqueries around it). Each node's result (an
    instant selector's too: one sample per series) has at most as many elements per step as
    all selectors have series, plus one per node (scalars, ``vector()``), at as many steps as
    the subqueries around it evaluate it at. (The engine's model of what Prometheus holds,
    :mod:`promlab.promql.eval.querystats`, never counts more than these results and windows.)
    """
    q = store.querier(-(1 << 62), 1 << 62)
    loads = series = nodes = selected = 0
    most_steps = 1
    # (node, ranges of the subqueries around it, steps they evaluate it at, window if a range
    # selector's vector selector)
    stack: list[tuple[Expr, int, int, int | None]] = [(expr, 0, 1, None)]
    while stack:
        node, around_ms, steps, window = stack.pop()
        nodes += 1
        most_steps = max(most_steps, steps)
        if isinstance(node, SubqueryExpr):
            inner = node.range_ms // (node.step_ms or default_step_ms) + 1
            stack.append((node.expr, around_ms + node.range_ms, steps * inner, None))
            continue
        if isinstance(node, MatrixSelector):
            stack.append((node.vector_selector, around_ms, steps, node.range_ms))
            continue
        stack.extend((c, around_ms, steps, None) for c in children(node))
        if not isinstance(node, VectorSelector):
            continue
        ss = q.select(node.matchers).compact()
        if ss.histograms is not None:
            return None
        series += len(ss)
        runs = list(zip(ss.offsets[:-1].tolist(), ss.offsets[1:].tolist(), strict=True))
        if window is not None:
            loads += len(ss) * max((_max_in_window(ss.ts_ms[a:b], window + around_ms) for a, b in runs),
                                   default=0)
        # What the engine selects, lookback included, against its own memory budget.
        selected += len(ss) * max((_max_in_window(ss.ts_ms[a:b], (window or 0) + around_ms + lookback_ms)
                                   for a, b in runs), default=0)
    if selected > MIN_MEMORY_BUDGET:
        return None
    return loads + nodes * (series + nodes) * most_steps


def _range(engine: Engine, store: MemoryStorage, expr: str, times: npt.NDArray[np.int64]) -> Vector:
    """``expr`` at every time of ``times`` (evenly spaced), in range queries of at most
    MAX_STEPS_PER_QUERY steps, as one ``(S, len(times))`` vector."""
    _, ranged = query_funcs(store, engine)
    step = int(times[1] - times[0]) if times.shape[0] > 1 else 1
    parts: list[tuple[int, Vector]] = []
    for lo in range(0, times.shape[0], MAX_STEPS_PER_QUERY):
        hi = min(times.shape[0], lo + MAX_STEPS_PER_QUERY) - 1
        try:
            vec = ranged(expr, int(times[lo]), int(times[hi]), step)
        except Exception as e:  # the step-by-step run reports it at its step
            raise _GiveUp(str(e)) from None
        if vec.histograms is not None:
            raise _GiveUp("native histograms")
        parts.append((lo, vec))
    if len(parts) == 1:
        return parts[0][1]
    rows: dict[Labels, int] = {}
    for _, vec in parts:
        for ls in vec.labels:
            rows.setdefault(ls, len(rows))
    values = np.zeros((len(rows), times.shape[0]))
    present = np.zeros((len(rows), times.shape[0]), bool)
    for lo, vec in parts:
        idx = np.array([rows[ls] for ls in vec.labels], np.int64)
        width = vec.values.shape[1]
        values[idx, lo:lo + width] = vec.values
        present[idx, lo:lo + width] = vec.present
    return Vector(list(rows), values, present)


def _write_recording(ro: RuleOrder, vec: Vector, write_ts: npt.NDArray[np.int64],
                     heads: LastSamples) -> None:
    """A recording rule's output at every step, with staleness markers where a series stops."""
    rule = ro.rule
    extra = ro.state.group.rule_labels(rule)
    by_key: dict[Labels, list[int]] = {}
    for r, ls in enumerate(vec.labels):
        d = ls.to_dict()
        d[METRIC_NAME] = rule.name
        for k, v in extra.items():
            if v == "":
                d.pop(k, None)
            else:
                d[k] = v
        by_key.setdefault(Labels(d), []).append(r)
    n = write_ts.shape[0]
    per_step = np.zeros(n, np.int64)
    out: list[tuple[Labels, npt.NDArray[np.bool_], npt.NDArray[np.float64]]] = []
    for key, rows in by_key.items():
        pres = vec.present[rows]
        if len(rows) > 1 and bool((pres.sum(axis=0) > 1).any()):
            raise _GiveUp("duplicate label sets")  # the rule fails at that step
        have: npt.NDArray[np.bool_] = np.asarray(pres.any(axis=0), bool)
        vals = np.full(n, STALE_NAN)
        for r in rows:
            vals[vec.present[r]] = vec.values[r, vec.present[r]]
        per_step += have
        out.append((key, have, vals))
    limit = ro.state.group.limit
    if limit > 0 and bool((per_step > limit).any()):
        raise _GiveUp("limit exceeded")
    for key, have, vals in out:
        # A staleness marker at each step where the series was written the step before.
        stale = np.zeros(n, bool)
        stale[1:] = have[:-1] & ~have[1:]
        idx = np.flatnonzero(have | stale)
        heads.load(key, write_ts[idx], vals[idx])


@dataclass
class _Gathering:
    """An appender that keeps what an alerting rule writes, to load it at the end (the rule's
    series are its own, so nothing is refused)."""

    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)
    pending: list[tuple[Labels, int, float]] = field(default_factory=list)

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        self.pending.append((labels, int(ts_ms), float(value)))

    def append_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                     ts_ms: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> None:
        for i, t, v in zip(np.asarray(index).tolist(), np.asarray(ts_ms).tolist(),
                           np.asarray(values).tolist(), strict=True):
            self.append(series[i], t, v)

    def append_histogram(self, labels: Labels, ts_ms: int, h: AnyHistogram) -> None:
        raise _GiveUp("native histogram output")

    def append_histogram_batch(self, series: Sequence[Labels], index: npt.NDArray[np.integer],
                               ts_ms: npt.NDArray[np.int64], hists: Sequence[AnyHistogram]) -> None:
        raise _GiveUp("native histogram output")

    def commit(self) -> AppendStats:
        batch, self.pending = self.pending, []
        for labels, t, v in batch:
            ts, vs = self.series.setdefault(labels, ([], []))
            ts.append(t)
            vs.append(v)
        return AppendStats(appended=len(batch))

    def rollback(self) -> None:
        self.pending = []

    def load_into(self, heads: LastSamples) -> None:
        for labels, (ts, vs) in self.series.items():
            t = np.asarray(ts, np.int64)
            if t.shape[0] > 1 and not bool((t[1:] > t[:-1]).all()):
                raise _GiveUp("samples out of order")  # the head would refuse some
            heads.load(labels, t, np.asarray(vs, np.float64))


def _replay_alerting(ro: RuleOrder, vec: Vector, times: npt.NDArray[np.int64],
                     heads: LastSamples, snapshot_at: Mapping[int, Snapshot],
                     templates: _TemplateQueries) -> None:
    """Advance an alerting rule's state step by step on its result's columns; a template's
    query of another expression goes to ``templates``."""
    st, i = ro.state, ro.index
    query = replayed(vec, ro.rule.expr, times - st.query_offset_ms, templates)
    ars = st.alerting[i]
    assert ars is not None
    app = _Gathering()
    any_present: npt.NDArray[np.bool_] = np.asarray(vec.present.any(axis=0), bool)
    for j, t in enumerate(times.tolist()):
        # Nothing to do at a step without results, alerts or series to mark stale.
        if any_present[j] or ars.alerts or st.previous_series[i]:
            st.eval_rule(i, t, query, app)
            if st.status[i].health == "err" or templates.refused:
                raise _GiveUp(st.status[i].last_error or "a template's query")
        snap = snapshot_at.get(j)
        if snap is not None:
            snap(st, i)
    app.load_into(heads)


class _TemplateQueries:
    """A template's queries: the step-by-step run's, when they read nothing past their time,
    no series in ``unsafe`` (of rules not yet written, or this one) and the series in
    ``lagged`` (of rules after this one, written) lagged as :func:`_lag` does; others are
    refused (kept in :attr:`refused`)."""

    def __init__(self, instant: QueryFunc, unsafe: set[str], lagged: set[str]) -> None:
        self.instant = instant
        self.unsafe = unsafe
        self.lagged = lagged
        self.refused: list[str] = []
        self._texts: dict[str, str | None] = {}  # query -> what to run (None: refused)

    def _rewrite(self, text: str) -> str | None:
        try:
            expr = parse_expr(text)
        except PromlabError:
            return text  # the same parse error, whatever the store holds
        if not _plain(expr) or any(_reads(expr, n) for n in self.unsafe):
            return None
        reads = {n for n in self.lagged if _reads(expr, n)}
        if not reads:
            return text
        try:
            return to_string(_lag(expr, reads))
        except _GiveUp:
            return None

    def __call__(self, text: str, t_ms: int) -> Vector:
        if text not in self._texts:
            self._texts[text] = self._rewrite(text)
        run = self._texts[text]
        if run is None:
            self.refused.append(text)
            raise _GiveUp(f"a template's query {text!r}")  # (the template's error text)
        return self.instant(run, t_ms)


def evaluate(order: Sequence[RuleOrder], heads: LastSamples, times: npt.NDArray[np.int64], *,
             engine: Engine, snapshot_at: Mapping[int, Snapshot]) -> bool:
    """Evaluate the rules of ``order`` at ``times`` (evenly spaced evaluation times) into the
    store of ``heads``, which holds all the input up to the last time, as step-by-step
    evaluation with instant queries of ``engine`` would; ``snapshot_at[j]`` is called after
    each alerting rule's step ``j``. False: given up (the store is then half-written: start
    afresh)."""
    ranged = Engine(lookback_delta=f"{engine.lookback_ms}ms", timeout=None, max_samples=1 << 62,
                    default_subquery_step=f"{engine.default_subquery_step_ms}ms",
                    features=engine.features)
    instant, _ = query_funcs(heads.store, engine)
    step_ms = int(times[1] - times[0]) if times.shape[0] > 1 else 1
    written: set[int] = set()  # positions (promtool's order) of the rules done
    try:
        for ro in order:
            bound = peak_bound(heads.store, ro.expr, engine.lookback_ms, engine.default_subquery_step_ms)
            if bound is None or bound > engine.max_samples:
                return False
            write_ts = times - ro.state.query_offset_ms
            vec = _range(ranged, heads.store, ro.text, write_ts)
            if isinstance(ro.rule, RecordingRule):
                _write_recording(ro, vec, write_ts, heads)
            else:
                # A template's query reads the series of rules written before this one: of
                # those before it in promtool's order as they are, of those after it lagged.
                unsafe = {name for other in order if other.position not in written
                          for name in _produces(other.rule)}
                before = {name for other in order if other.position < ro.position
                          for name in _produces(other.rule)}
                lagged = {name for other in order if other.position > ro.position
                          for name in _produces(other.rule)} - unsafe
                if step_ms >= engine.lookback_ms:
                    unsafe |= lagged
                unsafe |= lagged & before  # (ALERTS of alerts on both sides, say)
                lagged -= unsafe
                _replay_alerting(ro, vec, times, heads, snapshot_at,
                                 _TemplateQueries(instant, unsafe, lagged))
            written.add(ro.position)
    except _GiveUp:
        return False
    return True


def precompute(states: Sequence[GroupState], heads: LastSamples, times: npt.NDArray[np.int64], *,
               engine: Engine, input_names: set[str]) -> dict[tuple[int, int], Vector]:
    """The results at every step of the rules whose query can be answered up front when the
    group as a whole must be evaluated step by step: ``(group index, rule index) -> (S, T)``.

    Such a rule's query reads nothing past its time and, of the rules' output, only that of
    recording rules precomputed themselves (written into ``heads``' store, which holds the
    input up to the last time) with the same query offset: of those before it in promtool's
    order as they are, of those after it lagged (:func:`_lag`). The step-by-step run then
    takes each step's column instead of an instant query (:func:`replayed`) and writes
    everything as before.
    """
    ranged = Engine(lookback_delta=f"{engine.lookback_ms}ms", timeout=None, max_samples=1 << 62,
                    default_subquery_step=f"{engine.default_subquery_step_ms}ms",
                    features=engine.features)
    step_ms = int(times[1] - times[0]) if times.shape[0] > 1 else 1
    producers: dict[str, list[int]] = {}  # name -> positions of the rules writing it
    pending: list[RuleOrder] = []
    for g, st in enumerate(states):
        for i, rule in enumerate(st.group.rules):
            position = sum(len(s.group.rules) for s in states[:g]) + i
            for name in _produces(rule):
                producers.setdefault(name, []).append(position)
            try:
                expr = parse_expr(rule.expr)
            except PromlabError:
                continue
            if _plain(expr):
                pending.append(RuleOrder(st, i, expr, position=position))
    group_of = {id(st): g for g, st in enumerate(states)}
    written: dict[str, int] = {}  # name -> its producer's query offset, in the store
    out: dict[tuple[int, int], Vector] = {}
    progress = True
    while progress:  # a rule is done once all it reads is written
        progress = False
        for ro in list(pending):
            offset = ro.state.query_offset_ms
            reads = {name for name in producers if _reads(ro.expr, name)}
            if any(written.get(name) != offset for name in reads):
                continue
            pending.remove(ro)
            progress = True
            lagged = {name for name in reads if producers[name][0] > ro.position}
            try:
                text = ro.rule.expr
                if lagged:
                    if step_ms >= engine.lookback_ms:
                        continue
                    text = to_string(_lag(ro.expr, lagged))
                bound = peak_bound(heads.store, ro.expr, engine.lookback_ms, engine.default_subquery_step_ms)
                if bound is None or bound > engine.max_samples:
                    continue
                vec = _range(ranged, heads.store, text, times - offset)
                out[(group_of[id(ro.state)], ro.index)] = vec
                rule = ro.rule
                if (isinstance(rule, RecordingRule) and len(producers[rule.name]) == 1
                        and rule.name not in input_names
                        and METRIC_NAME not in ro.state.group.rule_labels(rule)):
                    _write_recording(ro, vec, times - offset, heads)
                    written[rule.name] = offset
            except _GiveUp:
                continue
    return out


def replayed(vec: Vector, expr: str, write_ts: npt.NDArray[np.int64], other: QueryFunc) -> QueryFunc:
    """A query function answering ``expr`` at the times of ``write_ts`` (evenly spaced) with
    the columns of ``vec``, and anything else with ``other``."""
    first = int(write_ts[0])
    step = int(write_ts[1] - write_ts[0]) if write_ts.shape[0] > 1 else 1
    n = write_ts.shape[0]

    def query(text: str, t_ms: int) -> Vector:
        j, off = divmod(int(t_ms) - first, step)
        if text != expr or off or not 0 <= j < n:
            return other(text, t_ms)
        rows = np.flatnonzero(vec.present[:, j])
        return Vector([vec.labels[r] for r in rows.tolist()], vec.values[rows, j:j + 1],
                      np.ones((rows.shape[0], 1), bool))

    return query
