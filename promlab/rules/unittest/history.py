"""Rule unit tests from recorded history: ``promlab test rules --from-history``.

:func:`history_test_file` writes a ``promtool test rules`` file whose ``input_series`` are
a slice of stored data (asked upstream, prometheus/prometheus#11680): the series the rules
read (every selector of every rule expression, minus the rules' own outputs, plus any extra
``match`` selectors), sampled on a grid of ``interval`` from ``start`` to ``end`` (each grid
point takes the last sample of the interval ending there, ``_`` when there is none, ``stale``
for a staleness marker) and compressed into the expanding notation wherever a run is exactly
arithmetic (``5+2x30``, ``1x99``, ``_x10``); native histograms are written as literals
(``{{count:3 buckets:[1 2]}}``, ``{{...}}xN`` for repeats). Its ``alert_rule_test`` entries record, at the
chosen evaluation times (the end by default), the alerts the rules fire over that data, so
the file passes as written and guards against regressions when the rules change.

Examples
--------
>>> compress([1.0, 2.0, 3.0, 4.0, None, None, 7.0, 7.0, 7.0])
'1+1x3 _x2 7x2'
>>> from promlab.promql.promqltest.series import parse_values
>>> parse_values('1+1x3 _x2 7x2') == [1.0, 2.0, 3.0, 4.0, None, None, 7.0, 7.0, 7.0]
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import yaml

from promlab.errors import ConfigError
from promlab.model import METRIC_NAME, Labels, Matcher, MatchType, format_duration
from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.model.value import STALE_NAN, is_stale
from promlab.promql.parser import parse_expr, parse_series_selector
from promlab.promql.parser.ast import VectorSelector, walk
from promlab.rules.rule import ALERTS_FOR_STATE_METRIC, ALERTS_METRIC, AlertingRule, RuleGroup
from promlab.rules.unittest.histograms import go_histogram_text
from promlab.rules.unittest.runner import RunOptions, load_rule_groups, run_test_group
from promlab.rules.unittest.spec import AlertTestCase, InputSeries, TestGroup
from promlab.storage.interface import Queryable

__all__ = ["compress", "history_test_file", "rule_selectors"]

MIN_RUN = 3  # shortest arithmetic run written as ``a+sxn`` (two values are clearer listed)


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    r = repr(float(v))
    return r[:-2] if r.endswith(".0") else r


def _run_length(vals: Sequence[float | None], i: int) -> int:
    """How many values from ``i`` the notation ``a+sxn`` reproduces bit for bit."""
    a = vals[i]
    if a is None or math.isnan(a) or i + 1 >= len(vals):
        return 1
    b = vals[i + 1]
    if b is None or math.isnan(b) or math.isinf(a):
        return 1
    step = b - a
    if math.isinf(step) or a + step != b:
        return 1
    v, n = b, 2
    while i + n < len(vals):
        nxt = vals[i + n]
        v = v + step  # the parser accumulates by repeated addition
        if nxt is None or math.isnan(nxt) or v != nxt:
            break
        n += 1
    return n


def compress(values: Sequence[float | None]) -> str:
    """Values (``None``: missing, the stale NaN: a staleness marker) in the expanding notation."""
    out: list[str] = []
    i = 0
    while i < len(values):
        v = values[i]
        if v is None:
            j = i
            while j < len(values) and values[j] is None:
                j += 1
            out.append("_" if j - i == 1 else f"_x{j - i}")  # ``_xN``: N missing values
            i = j
            continue
        if is_stale(v):
            out.append("stale")
            i += 1
            continue
        n = _run_length(values, i)
        if n < MIN_RUN:
            out.append(_num(v))
            i += 1
            continue
        nxt = values[i + 1]
        assert nxt is not None
        step = nxt - v
        if step == 0:
            out.append(f"{_num(v)}x{n - 1}")
        else:
            sign = "+" if step > 0 else "-"
            out.append(f"{_num(v)}{sign}{_num(abs(step))}x{n - 1}")
        i += n
    return " ".join(out)


def rule_selectors(groups: Sequence[RuleGroup]) -> list[tuple[Matcher, ...]]:
    """The matchers of every vector selector the rules use, except those that read series the
    rules themselves produce (recording rule names, ``ALERTS``, ``ALERTS_FOR_STATE``)."""
    produced = {ALERTS_METRIC, ALERTS_FOR_STATE_METRIC}
    produced |= {r.name for g in groups for r in g.rules if not isinstance(r, AlertingRule)}
    out: list[tuple[Matcher, ...]] = []
    for g in groups:
        for r in g.rules:
            for node in walk(parse_expr(r.expr)):
                if not isinstance(node, VectorSelector):
                    continue
                names = [m.value for m in node.matchers if m.name == METRIC_NAME and m.type is MatchType.EQUAL]
                if names and names[0] in produced:
                    continue
                if tuple(node.matchers) not in out:
                    out.append(tuple(node.matchers))
    return out


def _grid_values(ts: np.ndarray, vs: np.ndarray, grid: np.ndarray, interval_ms: int,
                 hists: np.ndarray | None = None) -> list[float | FloatHistogram | None]:
    idx = np.searchsorted(ts, grid, side="right") - 1
    ok = (idx >= 0) & (ts[np.maximum(idx, 0)] > grid - interval_ms)
    at = np.maximum(idx, 0)
    picked: list[float | FloatHistogram] = vs[at].tolist()
    if hists is not None:
        # A histogram whose sum is the stale NaN is a staleness marker of a histogram series.
        picked = [(STALE_NAN if is_stale(h.sum) else h) if isinstance(h, FloatHistogram) else v
                  for v, h in zip(picked, hists[at].tolist(), strict=True)]
    return [v if good else None for v, good in zip(picked, ok.tolist(), strict=True)]


def _values_text(vals: Sequence[float | FloatHistogram | None]) -> str:
    """:func:`compress`, with native histograms written as literals (``{{...}}xN`` for a run of
    equal ones). Their counter-reset hints are left out but for ``gauge``: loading the test
    derives them again from the sequence, as the TSDB does."""
    if not any(isinstance(v, FloatHistogram) for v in vals):
        return compress([v for v in vals if not isinstance(v, FloatHistogram)])
    out: list[str] = []
    i = 0
    while i < len(vals):
        j = i
        while j < len(vals) and not isinstance(vals[j], FloatHistogram):
            j += 1
        if j > i:
            out.append(compress([v for v in vals[i:j] if not isinstance(v, FloatHistogram)]))
        if j == len(vals):
            break
        text = _literal(vals[j])
        n = 1
        while j + n < len(vals) and _literal(vals[j + n]) == text:
            n += 1
        out.append(text if n == 1 else f"{text}x{n - 1}")
        i = j + n
    return " ".join(out)


def _literal(v: float | FloatHistogram | None) -> str:
    """A histogram's literal without its read-back hint (``""`` for anything else)."""
    if not isinstance(v, FloatHistogram):
        return ""
    return go_histogram_text(v if v.counter_reset_hint == CounterResetHint.GAUGE
                             else v.with_hint(CounterResetHint.UNKNOWN))


def history_test_file(queryable: Queryable, rule_files: Sequence[str], *, start_ms: int, end_ms: int,
                      interval_ms: int = 60_000, evaluation_interval_ms: int | None = None,
                      match: Sequence[str] = (), eval_times_ms: Sequence[int] | None = None,
                      out_dir: str = ".", absolute: bool = True, name: str = "") -> str:
    """A rule unit-test file (YAML text) over stored history; see the module docstring.

    ``eval_times_ms`` are offsets from ``start_ms`` at which every alerting rule's firing
    alerts are recorded (default: the end). ``rule_files`` are written relative to
    ``out_dir``. ``absolute`` writes ``start_timestamp`` so the series keep their real times
    (Prometheus 3's promtool reads it; 2.x needs ``absolute=False``: times start at 0).

    Raises
    ------
    ConfigError
        A rule file does not load.
    """
    if end_ms < start_ms:
        raise ConfigError("end must not be before start")
    eval_ms = evaluation_interval_ms or interval_ms
    groups, errs = load_rule_groups(rule_files, interval_ms=eval_ms)
    if errs:
        raise ConfigError("\n".join(errs))
    selectors = rule_selectors(groups) + [parse_series_selector(m)[1] for m in match]
    grid = np.arange(start_ms, end_ms + 1, interval_ms, dtype=np.int64)
    series: dict[Labels, str] = {}
    q = queryable.querier(start_ms - interval_ms, end_ms)
    try:
        for matchers in selectors:
            ss = q.select(list(matchers))
            for i in range(len(ss)):
                ls, ts, vs = ss.series(i)
                if ls not in series:
                    vals = _grid_values(np.asarray(ts), np.asarray(vs), grid, interval_ms,
                                        ss.series_histograms(i))
                    if any(v is not None for v in vals):
                        series[ls] = _values_text(vals)
    finally:
        q.close()
    span = int(grid[-1] - start_ms) if grid.size else 0
    times = sorted(set(eval_times_ms)) if eval_times_ms is not None else [span]
    alertnames = sorted({r.name for g in groups for r in g.alerting_rules()})
    tg = TestGroup(interval_ms=interval_ms,
                   input_series=tuple(InputSeries(str(ls), v) for ls, v in sorted(series.items())),
                   alert_rule_tests=tuple(AlertTestCase(t, a) for t in times for a in alertnames),
                   start_ms=start_ms if absolute else None)
    res = run_test_group(tg, RunOptions(rule_files=tuple(rule_files), evaluation_interval_ms=eval_ms))
    if any(e.lstrip().startswith("rule:") for e in res.errors):
        raise ConfigError("the rules fail over this data:\n" + "\n".join(res.errors))
    test: dict[str, object] = {
        "name": name or f"history {_iso(start_ms)} .. {_iso(end_ms)}",
        "interval": format_duration(interval_ms),
    }
    if absolute:
        test["start_timestamp"] = _iso(start_ms)
    test["input_series"] = [{"series": s.series, "values": s.values} for s in tg.input_series]
    test["alert_rule_test"] = [
        {"eval_time": format_duration(t), "alertname": a,
         "exp_alerts": [{"exp_labels": {k: v for k, v in ls if k != "alertname"},
                         "exp_annotations": dict(an)} for ls, an in res.observed.get((t, a), [])]}
        for t in times for a in alertnames]
    doc = {
        "rule_files": [os.path.relpath(os.path.abspath(f), os.path.abspath(out_dir)) for f in rule_files],
        "evaluation_interval": format_duration(eval_ms),
        "tests": [test],
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=1_000_000)


def _iso(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")

