"""Running one test group of a rule unit-test file, as ``promtool test rules`` runs it.

For a test group: its ``input_series`` are expanded (the promqltest notation) at ``interval``
from ``start_timestamp`` (the Unix epoch by default); every rule group is evaluated with
:meth:`~promlab.rules.group.GroupState.eval` at every ``evaluation_interval`` from the start
up to the latest ``eval_time`` of the tests (in ``group_eval_order``), the input samples up to
each evaluation time being loaded just before it, and rule output written back to the same
in-memory store. A rule that fails ends the group's test there. After the evaluation at ``t``,
every ``alert_rule_test`` with ``t <= eval_time < t + evaluation_interval`` compares the
*firing* alerts of its ``alertname`` with the expected ones; after the last evaluation every
``promql_expr_test`` is an instant query (lookback 5m, subqueries at the evaluation interval).
When that is sure to give the same (:mod:`.rulewise`: rules that read only the input and
earlier rules' output, nothing past their evaluation time, ...), the rules are evaluated rule
by rule, each over all steps in range queries, which is many times faster on long tests;
otherwise the rules whose results can be had so up front take them from there in the
step-by-step run.

Native histograms (Prometheus 3's promtool): ``input_series`` values may be histogram literals
(promqltest notation) and an ``exp_samples`` entry may give ``histogram:`` instead of ``value:``;
see :mod:`.histograms` for how they are loaded and compared. Recording rules that produce
native histograms are not supported (their output is not written as histograms).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from promlab.errors import ConfigError, ParseError, PromlabError
from promlab.model import METRIC_NAME, Labels, format_duration
from promlab.model.histogram import FloatHistogram
from promlab.promql.engine import Engine
from promlab.promql.promqltest.series import Item, parse_series_desc
from promlab.promql.promqltest.seriesname import parse_metric
from promlab.promql.values import Matrix, Scalar, Vector
from promlab.rules.alerting import AlertingRuleState, AlertState
from promlab.rules.group import GroupState
from promlab.rules.load import parse_rule_file
from promlab.rules.query import QueryFunc, query_funcs
from promlab.rules.rule import ALERT_NAME_LABEL, RuleGroup
from promlab.rules.unittest import rulewise
from promlab.rules.unittest.headcheck import LastSamples
from promlab.rules.unittest.histograms import (
    InputSamples,
    expected_histogram,
    go_histogram_text,
    input_samples,
)
from promlab.rules.unittest.spec import (
    ExpSample,
    PromqlTestCase,
    TestGroup,
)
from promlab.rules.unittest.text import (
    AlertText,
    ExprSample,
    alerts_text,
    go_duration,
    go_labels,
    go_quote,
    go_read_error,
    indent_lines,
    samples_text,
)
from promlab.storage.memory import MemoryStorage

__all__ = ["GroupResult", "RunOptions", "load_rule_groups", "run_test_group"]

LOOKBACK = "5m"  # promtool's test engine uses Prometheus's default lookback delta
#: promtool's test engine (promqltest's lazy loader) loads at most this many samples per query
#: and gives up after TIMEOUT: a bigger query fails with Prometheus's "too many samples" error,
#: in a rule's evaluation and in a promql_expr_test alike.
MAX_SAMPLES = 10_000
TIMEOUT = "100s"


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What a whole test file fixes for its groups, and the command-line switches."""

    rule_files: tuple[str, ...] = ()
    evaluation_interval_ms: int = 60_000
    group_order: Mapping[str, int] = field(default_factory=dict)
    fuzzy_compare: bool = False
    ignore_unknown_fields: bool = False
    diff: bool = False
    debug: bool = False


@dataclass(slots=True)
class GroupResult:
    """The outcome of one test group: promtool's error blocks (empty: passed) and warnings."""

    name: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The firing alerts each alert_rule_test saw: ``(eval_time_ms, alertname) -> alerts``.
    observed: dict[tuple[int, str], list[AlertText]] = field(default_factory=dict)
    #: The samples each promql_expr_test got: ``(eval_time_ms, expr) -> sorted samples``
    #: (a float, or a native histogram).
    observed_samples: dict[tuple[int, str], list[tuple[Labels, float | FloatHistogram]]] = field(
        default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


# What Go's strings.TrimSpace takes off each line of the load command.
_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _load_lines(tg: TestGroup) -> list[tuple[int, str]]:
    """The series lines of promtool's load command, ``(line index, text)``.

    promtool writes ``load <interval>`` (line 0) and ``  <series> <values>`` for each input
    series, splits that at newlines, trims each line and blanks ``#`` comments; the series
    end at the first empty line (what follows is never loaded).
    """
    text = "".join(f"  {s.series} {s.values}\n" for s in tg.input_series)
    out: list[tuple[int, str]] = []
    for i, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(_GO_SPACE)
        if not line or line.startswith("#"):
            break
        out.append((i, line))
    return out


def _parse_input_series(i: int, line: str, dups: list[str]) -> tuple[Labels, list[Item]]:
    """Parse line ``i`` of promtool's load command (a series line).

    An error is positioned by that line: Prometheus 3 numbers it ``i + 1`` (the ``load`` line
    is 1); Prometheus 2.42 printed line 1 for every series. The column is the same in both
    (counted on the trimmed line).
    """
    try:
        return parse_series_desc(line, duplicates=dups)
    except ParseError as e:
        skip = "\n" * i
        raise ParseError(e.reason, query=skip + line, pos=len(skip) + e.pos) from None


class _Input:
    """The input series, loaded into the store lazily up to each evaluation time."""

    def __init__(self, tg: TestGroup, interval_ms: int, start_ms: int) -> None:
        # A series given twice is the later one alone, as promqltest's load keeps it.
        by_labels: dict[Labels, InputSamples] = {}
        # A series the head refuses (no labels, a label name twice) fails every load from its
        # first sample on; promtool then commits nothing more and evaluates no rule.
        self.refused: tuple[int, str] | None = None
        refused: dict[tuple[Labels, tuple[str, ...]], tuple[int, str] | None] = {}
        for i, line in _load_lines(tg):
            dups: list[str] = []
            labels, items = _parse_input_series(i, line, dups)
            samples = input_samples(items, start_ms, interval_ms)
            if dups or not labels:
                reason = (f'label name "{min(dups)}" is not unique' if dups
                          else "empty labelset") + ": invalid sample"
                # Keyed like the loader's map: a later series with the same labels replaces it.
                refused[(labels, tuple(sorted(dups)))] = \
                    (int(samples[0][0]), reason) if samples[0].size else None
                continue
            by_labels.pop(labels, None)
            by_labels[labels] = samples
        self.refused = min((r for r in refused.values() if r is not None), default=None,
                           key=lambda r: r[0])
        self.series = [(ls, ts, vs) for ls, (ts, vs) in by_labels.items()]
        self.loaded = [0] * len(self.series)

    def names(self) -> set[str]:
        """The metric names of the input series."""
        return {ls.get(METRIC_NAME, "") for ls, _, _ in self.series}

    def reset(self) -> None:
        """Nothing loaded yet (for a new store)."""
        self.loaded = [0] * len(self.series)

    def load_until(self, store: LastSamples, t_ms: int) -> None:
        for i, (labels, ts, vs) in enumerate(self.series):
            end = int(np.searchsorted(ts, t_ms, side="right"))
            if end > self.loaded[i]:
                store.load(labels, ts[self.loaded[i]:end], vs[self.loaded[i]:end])
                self.loaded[i] = end


def load_rule_groups(rule_files: Sequence[str], *, interval_ms: int, ignore_unknown_fields: bool = False,
                     ) -> tuple[list[RuleGroup], list[str]]:
    """Read the rule files as promtool's ``LoadGroups`` does: the first file with problems
    stops loading and all its problems are returned (``file: problem``)."""
    groups: list[RuleGroup] = []
    for fn in rule_files:
        try:
            data = Path(fn).read_bytes()
        except OSError as e:
            return [], [f"{fn}: {go_read_error(fn, e)}"]
        found, errors = parse_rule_file(data, file=fn, default_interval_ms=interval_ms,
                                        ignore_unknown_fields=ignore_unknown_fields)
        if errors:
            return [], [f"{fn}: {e.reason}" for e in errors]
        groups.extend(found)
    return groups, []


def _ordered(groups: list[RuleGroup], order: Mapping[str, int]) -> list[RuleGroup]:
    # A partial order, as promtool's: groups not listed sort with the first listed one.
    return sorted(groups, key=lambda g: order.get(g.name, 0))


@contextlib.contextmanager
def _quiet_rules_log() -> Iterator[None]:
    # promtool runs the rule manager with a no-op logger: failures are reported as test errors.
    logger = logging.getLogger("promlab.rules")
    drop = logging.Filter("promlab.rules.__never__")
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _float_eq(a: float, b: float, fuzzy: bool) -> bool:
    if a == b:
        return True
    return fuzzy and (float(np.nextafter(a, -np.inf)) == b or float(np.nextafter(a, np.inf)) == b)


def _json_diff(exp: list[AlertText], got: list[AlertText]) -> str:
    def doc(alerts: list[AlertText]) -> str:
        empty: AlertText = ((), ())
        items = [{"Labels": dict(ls), "Annotations": dict(an)} for ls, an in (alerts or [empty])]
        return json.dumps(items, indent=2, sort_keys=True)

    lines = difflib.unified_diff(doc(exp).splitlines(), doc(got).splitlines(), "exp", "got",
                                 lineterm="", n=3)
    return "\n".join(lines)


class _Run:
    def __init__(self, tg: TestGroup, opts: RunOptions, name: str) -> None:
        self.tg = tg
        self.opts = opts
        self.name = name
        self.interval_ms = tg.interval_ms or opts.evaluation_interval_ms
        self.mint = tg.start_ms if tg.start_ms is not None else 0
        self.store = MemoryStorage()
        self.heads = LastSamples(self.store)
        self.engine = Engine(lookback_delta=LOOKBACK, timeout=TIMEOUT, max_samples=MAX_SAMPLES,
                             default_subquery_step=f"{opts.evaluation_interval_ms}ms")
        self.res = GroupResult(name)
        self.name_prefix = f"    name: {tg.name},\n" if tg.name else ""

    def run(self) -> GroupResult:
        tg, opts, res = self.tg, self.opts, self.res
        try:
            inp = _Input(tg, self.interval_ms, self.mint)
        except ParseError as e:
            res.errors.append(str(e))
            return res
        groups, errs = load_rule_groups(opts.rule_files, interval_ms=self.interval_ms,
                                        ignore_unknown_fields=opts.ignore_unknown_fields)
        if errs:
            res.errors.extend(errs)
            return res
        for a in tg.alert_rule_tests:
            if not a.alertname:
                where = f" (in TestGroup {tg.name})" if tg.name else ""
                res.errors.append("an item under alert_rule_test misses required attribute "
                                  f"alertname at eval_time {format_duration(a.eval_time_ms)}{where}")
                return res
        with _quiet_rules_log():
            if not self._evaluate(inp, groups):
                return res
        for case in tg.promql_expr_tests:
            self._check_expr(case)
        return res

    def _states(self, groups: list[RuleGroup]) -> list[GroupState]:
        return [GroupState(g, external_labels=self.tg.external_labels, external_url=self.tg.external_url)
                for g in _ordered(groups, self.opts.group_order)]

    def _evaluate(self, inp: _Input, groups: list[RuleGroup]) -> bool:
        """The evaluation with the alert checks; False when a rule failed.

        Rule by rule over all steps (:mod:`.rulewise`) when that is sure to give the same,
        else (or when it gives up) step by step from a fresh store."""
        states = self._states(groups)
        alert_times = sorted({a.eval_time_ms for a in self.tg.alert_rule_tests})
        curr = 0
        maxt = self.mint + self.tg.max_eval_time_ms()
        step = self.opts.evaluation_interval_ms
        last = self.mint + (maxt - self.mint) // step * step
        # Steps from a refused series' first sample on: the load fails (its error, once per
        # step), nothing is committed or evaluated; the alert checks still run.
        first_bad = last + step if inp.refused is None else \
            self.mint + max(0, -(-(inp.refused[0] - self.mint) // step)) * step
        if not states or first_bad <= self.mint:
            # Nothing to evaluate: only the loading matters (up to the last evaluation time),
            # without a Python loop over, say, a year of 1m steps.
            inp.load_until(self.heads, min(last, first_bad - step))
            done = first_bad
            for eval_time in alert_times:
                self._refused_until(inp, done, self.mint + eval_time // step * step)
                done = max(done, self.mint + eval_time // step * step + step)
                self._check_alerts(eval_time, self._firing(eval_time, states))
            self._refused_until(inp, done, last)
            return True
        precomputed: dict[tuple[int, int], Vector] = {}
        if inp.refused is None:
            if self._rulewise(inp, states, alert_times, last):
                return True
            # Not done rule by rule: step by step from the start, on a new store, with the
            # rules whose results can be had up front taking them from there.
            self.store = MemoryStorage()
            self.heads = LastSamples(self.store)
            inp.reset()
            states = self._states(groups)
            precomputed = self._precompute(inp, states, last)
        query, _ = query_funcs(self.store, self.engine)
        # Per group: None (no rule precomputed), else each rule's query function.
        per_rule: list[list[QueryFunc] | None] = []
        for g, st in enumerate(states):
            found = [(i, precomputed[(g, i)]) for i in range(len(st.group.rules)) if (g, i) in precomputed]
            funcs = [query] * len(st.group.rules)
            for i, vec in found:
                times = np.arange(self.mint, last + 1, step, dtype=np.int64) - st.query_offset_ms
                funcs[i] = rulewise.replayed(vec, st.group.rules[i].expr, times, query)
            per_rule.append(funcs if found else None)
        t = self.mint
        while t <= maxt:
            if t >= first_bad:
                self._refused_until(inp, t, t)
                rel = t - self.mint
                while curr < len(alert_times) and rel <= alert_times[curr] < rel + step:
                    self._check_alerts(alert_times[curr], self._firing(alert_times[curr], states))
                    curr += 1
                t += step
                continue
            inp.load_until(self.heads, t)
            failed = []
            for st, rule_funcs in zip(states, per_rule, strict=True):
                if rule_funcs is None:
                    st.eval(t, query, self.heads.appender())
                else:
                    app = self.heads.appender()
                    for i, func in enumerate(rule_funcs):
                        st.eval_rule(i, t, func, app)
                failed += [f"    rule: {rule.name}, time: {go_duration(t)}, err: {status.last_error}"
                           for rule, status, _ in st.rule_states() if status.health == "err"]
            if failed:
                self.res.errors.extend(failed)
                return False
            rel = t - self.mint
            while curr < len(alert_times) and rel <= alert_times[curr] < rel + self.opts.evaluation_interval_ms:
                self._check_alerts(alert_times[curr], self._firing(alert_times[curr], states))
                curr += 1
            t += self.opts.evaluation_interval_ms
        return True

    def _precompute(self, inp: _Input, states: list[GroupState], last: int) -> dict[tuple[int, int], Vector]:
        """:func:`.rulewise.precompute` on a scratch store with all the input."""
        scratch = LastSamples(MemoryStorage())
        inp.load_until(scratch, last)
        inp.reset()
        times = np.arange(self.mint, last + 1, self.opts.evaluation_interval_ms, dtype=np.int64)
        return rulewise.precompute(states, scratch, times, engine=self.engine, input_names=inp.names())

    def _refused_until(self, inp: _Input, start: int, end: int) -> None:
        """The refused series' load error for each step in ``[start, end]``."""
        if inp.refused is not None and end >= start:
            self.res.errors.extend([inp.refused[1]] * ((end - start) // self.opts.evaluation_interval_ms + 1))

    def _rulewise(self, inp: _Input, states: list[GroupState], alert_times: list[int], last: int) -> bool:
        """Evaluate rule by rule (:mod:`.rulewise`) and run the alert checks; False: not done
        (nothing checked)."""
        step = self.opts.evaluation_interval_ms
        order = rulewise.plan(states, inp.names(), step_ms=step, lookback_ms=self.engine.lookback_ms)
        if order is None:
            return False
        times = np.arange(self.mint, last + 1, step, dtype=np.int64)
        seen: dict[int, dict[str, list[AlertText]]] = {e: {} for e in alert_times}
        at_step: dict[int, list[int]] = {}
        for e in alert_times:  # checked after the step the step-by-step loop checks it at
            at_step.setdefault(e // step, []).append(e)

        def keeper(checks: list[int]) -> rulewise.Snapshot:
            def keep(st: GroupState, i: int) -> None:
                rule, ars = st.group.rules[i], st.alerting[i]
                for e in checks:
                    if ars is not None and rule.name in self._alertnames(e):
                        seen[e].setdefault(rule.name, []).extend(_firing_alerts(ars))
            return keep

        snapshots = {j: keeper(checks) for j, checks in at_step.items()}
        inp.load_until(self.heads, last)
        if not rulewise.evaluate(order, self.heads, times, engine=self.engine, snapshot_at=snapshots):
            return False
        for e in alert_times:
            self._check_alerts(e, seen[e])
        return True

    def _alertnames(self, eval_time: int) -> set[str]:
        return {a.alertname for a in self.tg.alert_rule_tests if a.eval_time_ms == eval_time}

    def _firing(self, eval_time: int, states: list[GroupState]) -> dict[str, list[AlertText]]:
        """The firing alerts of the rules the checks at ``eval_time`` look at, by alertname."""
        names = self._alertnames(eval_time)
        got: dict[str, list[AlertText]] = {}
        for st in states:
            for rule, _, ars in st.rule_states():
                if ars is None or rule.name not in names:
                    continue
                got.setdefault(rule.name, []).extend(_firing_alerts(ars))
        return got

    def _check_alerts(self, eval_time: int, got: dict[str, list[AlertText]]) -> None:
        """Compare the checks at ``eval_time`` with the alerts that were firing then."""
        cases = [a for a in self.tg.alert_rule_tests if a.eval_time_ms == eval_time]
        for case in cases:
            have = sorted(got.get(case.alertname, []))
            self.res.observed[(eval_time, case.alertname)] = have
            exp = sorted((tuple(sorted({**e.labels, ALERT_NAME_LABEL: case.alertname}.items())),
                          tuple(sorted(e.annotations.items()))) for e in case.exp_alerts)
            if exp == have:
                continue
            head = f"{self.name_prefix}    alertname: {case.alertname}, time: {format_duration(eval_time)}, \n"
            if self.opts.diff:
                self.res.errors.append(head + "        diff: " + indent_lines(_json_diff(exp, have), " " * 12))
            else:
                self.res.errors.append(
                    head + "        exp:" + indent_lines(alerts_text(exp), " " * 12) + ", \n"
                    + "        got:" + indent_lines(alerts_text(have), " " * 12))

    def _expected(self, samples: Sequence[ExpSample]) -> list[ExprSample]:
        out: list[ExprSample] = []
        for s in samples:
            try:
                pairs = parse_metric(s.labels)
            except ParseError as e:
                raise ValueError(f"labels {go_quote(s.labels)}: {e}") from None
            # A name twice or an empty value: kept as Prometheus keeps them (never equal to a
            # sample's labels).
            labels: Labels | tuple[tuple[str, str], ...] = Labels(dict(pairs))
            if len(labels) != len(pairs):
                labels = pairs
            hist = ""
            if s.histogram:
                try:
                    hist = go_histogram_text(expected_histogram(s.histogram))
                except ValueError as e:
                    raise ValueError(f"labels {go_quote(s.labels)}: {e}") from None
            # promtool keeps ``value`` next to a histogram (0 unless given) and compares it too.
            out.append((labels, s.value, hist))
        return out

    def _check_expr(self, case: PromqlTestCase) -> None:
        where = f"    expr: {go_quote(case.expr)}, time: {format_duration(case.eval_time_ms)}"
        try:
            value = self.engine.instant(self.store, case.expr, self.mint + case.eval_time_ms).value
        except PromlabError as e:
            self.res.errors.append(f"{where}, err: {e}")
            return
        observed: list[tuple[Labels, float | FloatHistogram]] = []
        if isinstance(value, Scalar):
            observed = [(Labels(), float(value.values[0]))]
        elif isinstance(value, Vector):
            for i, ls in enumerate(value.labels):
                if not (value.values.shape[1] and bool(value.present[i, -1])):
                    continue
                h = None if value.histograms is None else value.histograms[i, -1]
                observed.append((ls, h if isinstance(h, FloatHistogram) else float(value.values[i, -1])))
        else:
            self.res.errors.append(f"{where}, err: rule result is not a vector or scalar")
            return
        try:
            exp = self._expected(case.exp_samples)
        except ValueError as e:
            self.res.errors.append(f"{where}, err: {e}")
            return
        observed.sort(key=lambda s: s[0])
        self.res.observed_samples[(case.eval_time_ms, case.expr)] = observed
        # A histogram sample's float value is 0, as in a Go promql.Sample.
        got: list[ExprSample] = [(ls, 0.0, go_histogram_text(v)) if isinstance(v, FloatHistogram)
                                 else (ls, v, "") for ls, v in observed]
        exp.sort(key=lambda s: tuple(s[0].items()) if isinstance(s[0], Labels) else s[0])
        same = len(exp) == len(got) and all(
            el == gl and eh == gh and _float_eq(ev, gv, self.opts.fuzzy_compare)
            for (el, ev, eh), (gl, gv, gh) in zip(exp, got, strict=True))
        if not same:
            self.res.errors.append(f"{where},\n        exp: {samples_text(exp)}\n        got: {samples_text(got)}")

    def dump(self, out: TextIO) -> None:
        """``--debug``: every series in the store up to the latest evaluation time."""
        ts = self.tg.max_eval_time_ms()
        ts = (ts + 1000) // 1000 * 1000  # whole seconds, rounded up as promtool does
        expr = f'{{__name__=~".+"}}[{format_duration(ts)}]'
        try:
            value = self.engine.instant(self.store, expr, self.mint + ts).value
        except PromlabError as e:
            print(f"DEBUG: Failed querying, expr: {go_quote(expr)}, err: {e}", file=out)
            return
        if not isinstance(value, Matrix):
            print(f"DEBUG: Got unexpected type {type(value).__name__}", file=out)
            return
        print(f"DEBUG: Dump of all data (input_series and rules) at {go_duration(ts)}:", file=out)
        lines = []
        for i, ls in enumerate(value.labels):
            lo, hi = int(value.offsets[i]), int(value.offsets[i + 1])
            hists = [None] * (hi - lo) if value.histograms is None else value.histograms[lo:hi].tolist()
            floats, hpoints = [], []
            for t, v, h in zip(value.ts_ms[lo:hi].tolist(), value.values[lo:hi].tolist(), hists, strict=True):
                if isinstance(h, FloatHistogram):
                    hpoints.append(f"{h} @[{t}]")
                else:
                    floats.append(f"{format_value(v)} @[{t}]")
            # Go's Series.String(): the floats first, then the histograms.
            lines.append(f"{go_labels(ls)} =>\n" + "\n".join(floats + hpoints))
        print("\n".join(lines), file=out)


def _firing_alerts(ars: AlertingRuleState) -> list[AlertText]:
    return [(tuple(sorted(a.labels.items())), tuple(sorted(a.annotations.items())))
            for a in ars.active_alerts() if a.state == AlertState.FIRING]


def format_value(v: float) -> str:
    """A sample value as Go's ``%v`` (``strconv.FormatFloat(v, 'g', -1, 64)``-like)."""
    from promlab.rules.template.gofmt import format_float

    return format_float(v, "g", -1)


def run_test_group(tg: TestGroup, opts: RunOptions, *, name: str = "",
                   debug_out: TextIO | None = None) -> GroupResult:
    """Run one test group; ``name`` is its name in reports (``unnamed#i`` when it has none)."""
    out = debug_out if debug_out is not None else sys.stderr
    label = name or tg.name
    started = time.monotonic()
    if opts.debug:
        print(f"DEBUG: Starting test {label}", file=out)
    run = _Run(tg, opts, label)
    try:
        res = run.run()
        if opts.debug:
            run.dump(out)
    except ConfigError as e:  # pragma: no cover - load_rule_groups reports them as errors
        res = GroupResult(label, [str(e)])
    if opts.debug:
        print(f"DEBUG: Test {label} finished, took {go_duration(round((time.monotonic() - started) * 1000))}",
              file=out)
    return res
