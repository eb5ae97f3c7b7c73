"""A rule unit test's evaluation done rule by rule over all steps, when that changes nothing.

promtool evaluates every rule group at every ``evaluation_interval``, the input loaded up to
each step just before it. Rule by rule is the same when no rule can see the difference:

* a rule reads the input and the output of rules evaluated before it (earlier groups in
  ``group_eval_order``, earlier rules of its group), which it sees up to ``t`` at step ``t``,
  and of rules after it, which it sees up to the step before: those are evaluated first and
  read through selectors rewritten to leave ``t`` out (:func:`~.rulereads.lag`: instant selectors and
  ranges of ``*_over_time``-like functions only); never its own output, nor a cycle;
* nothing reads past its evaluation time (no ``@``, no negative ``offset``), so input
  loaded past ``t`` is never seen; a template's ``query`` reads neither (nor the output of
  its rule or a later one: it runs while the rule is replayed, see below);
* every rule writes series of its own (recording names unique, apart from the input's and
  ``ALERTS``; alert names unique), so no write is refused (duplicate or out-of-order samples
  are step-by-step errors);
* no step of any rule fails (an error, a duplicate label set, ``limit``) and no instant
  query could exceed the test engine's ``max_samples`` (:func:`~.rulereads.peak_bound`).

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
from promlab.model import METRIC_NAME, STALE_NAN, Labels
from promlab.promql.engine import Engine
from promlab.promql.parser import parse_expr, to_string
from promlab.promql.parser.ast import Expr
from promlab.promql.values import Vector
from promlab.rules.group import GroupState, recorded_labels
from promlab.rules.query import QueryFunc, query_funcs
from promlab.rules.rule import (
    ALERTS_FOR_STATE_METRIC,
    ALERTS_METRIC,
    RecordingRule,
    Rule,
)
from promlab.rules.unittest.headcheck import LastSamples, RowAppender
from promlab.rules.unittest.rulereads import is_plain, lag, peak_bound, produces, reads
from promlab.storage.interface import AnyHistogram, AppendStats
from promlab.storage.memory import MemoryStorage

__all__ = ["MAX_STEPS_PER_QUERY", "RuleOrder", "evaluate", "plan", "precompute", "replayed"]

#: Steps per range query (the engine refuses more than 11,000 points per series).
MAX_STEPS_PER_QUERY = 10_000

#: Called after an alerting rule's step with its group's state and the rule's index there (to
#: keep the firing alerts an ``alert_rule_test`` looks at).
Snapshot = Callable[[GroupState, int], None]


class _GiveUp(Exception):
    """The rule-by-rule evaluation cannot vouch for promtool's result."""


@dataclass(frozen=True, slots=True)
class RuleOrder:
    """One rule in evaluation order: its group's state, index there, parsed expression, its
    position in promtool's order and the query to evaluate over all steps (the expression,
    or with reads of later rules' output lagged, see :func:`~.rulereads.lag`)."""

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


def _evaluation_order(order: list[RuleOrder], step_ms: int, lookback_ms: int) -> list[RuleOrder] | None:
    """``order`` (promtool's) rearranged so that every rule comes after the rules whose output
    it reads, those after it in promtool's order read lagged (:func:`~.rulereads.lag`); None when there
    is no such order (a rule reading its own output, say)."""
    deps: list[set[int]] = []
    out = list(order)
    for k, ro in enumerate(order):
        need: set[int] = set()
        before: set[str] = set()
        after: set[str] = set()
        for m, other in enumerate(order):
            for name in produces(other.rule):
                if reads(ro.expr, name):
                    if m == k:
                        return None
                    need.add(m)
                    (before if m < k else after).add(name)
        if after:
            if before & after or step_ms >= lookback_ms:
                return None
            lagged = lag(ro.expr, after)
            if lagged is None:
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
            if not is_plain(expr):
                return None
            order.append(RuleOrder(st, i, expr, position=len(order)))
    if alert_names and input_names & {ALERTS_METRIC, ALERTS_FOR_STATE_METRIC}:
        return None
    return _evaluation_order(order, step_ms, lookback_ms)


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
        by_key.setdefault(recorded_labels(ls, rule.name, extra), []).append(r)
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
class _Gathering(RowAppender):
    """An appender that keeps what an alerting rule writes, to load it at the end (the rule's
    series are its own, so nothing is refused)."""

    series: dict[Labels, tuple[list[int], list[float]]] = field(default_factory=dict)
    pending: list[tuple[Labels, int, float]] = field(default_factory=list)

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        self.pending.append((labels, int(ts_ms), float(value)))

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
    ``lagged`` (of rules after this one, written) lagged as :func:`~.rulereads.lag` does; others are
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
        if not is_plain(expr) or any(reads(expr, n) for n in self.unsafe):
            return None
        names = {n for n in self.lagged if reads(expr, n)}
        if not names:
            return text
        lagged = lag(expr, names)
        return None if lagged is None else to_string(lagged)

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
                          for name in produces(other.rule)}
                before = {name for other in order if other.position < ro.position
                          for name in produces(other.rule)}
                lagged = {name for other in order if other.position > ro.position
                          for name in produces(other.rule)} - unsafe
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
    order as they are, of those after it lagged (:func:`~.rulereads.lag`). The step-by-step run then
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
            for name in produces(rule):
                producers.setdefault(name, []).append(position)
            try:
                expr = parse_expr(rule.expr)
            except PromlabError:
                continue
            if is_plain(expr):
                pending.append(RuleOrder(st, i, expr, position=position))
    group_of = {id(st): g for g, st in enumerate(states)}
    written: dict[str, int] = {}  # name -> its producer's query offset, in the store
    out: dict[tuple[int, int], Vector] = {}
    progress = True
    while progress:  # a rule is done once all it reads is written
        progress = False
        for ro in list(pending):
            offset = ro.state.query_offset_ms
            read = {name for name in producers if reads(ro.expr, name)}
            if any(written.get(name) != offset for name in read):
                continue
            pending.remove(ro)
            progress = True
            lagged = {name for name in read if producers[name][0] > ro.position}
            try:
                text = ro.rule.expr
                if lagged:
                    if step_ms >= engine.lookback_ms:
                        continue
                    rewritten = lag(ro.expr, lagged)
                    if rewritten is None:
                        continue
                    text = to_string(rewritten)
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
