"""Backtesting rules over stored history: would this alert have fired, how often, and would it
have caught our incidents?

Each rule is evaluated as ONE range query at its group's interval, then the alert state
machine runs on the arrays (:mod:`promlab.rules.timeline`). Rules of a group run in order;
recording rules' output (and ``ALERTS``) go to an in-memory overlay that later rules read, so
rules built on recorded series backtest as they would run live (with staleness markers where a
series ends, as the live manager writes them). Nothing is written to ``data``. One difference
remains: an alerting rule whose expression reads its own ``ALERTS`` sees them live (from its
previous evaluations) but not in a backtest, which evaluates the whole range at once.

Examples
--------
>>> from promlab.model import Labels
>>> from promlab.storage import MemoryStorage
>>> st = MemoryStorage()
>>> st.add_series(Labels({"__name__": "up", "job": "a"}), range(0, 600_001, 60_000),
...               [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1])
>>> rule = AlertingRule(name="Down", expr="up == 0", for_ms=120_000)
>>> ep = backtest(rule, 0, 600_000, data=st, step="1m")
>>> ep[["alertname", "job", "pending_at", "firing_at", "resolved_at"]].to_string(index=False)
'alertname job                pending_at                 firing_at               resolved_at\\n     Down   a 1970-01-01 00:02:00+00:00 1970-01-01 00:04:00+00:00 1970-01-01 00:06:00+00:00'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from promlab import progress as _progress
from promlab.model import METRIC_NAME, STALE_NAN, Labels, parse_duration, parse_time
from promlab.promql.engine import Engine
from promlab.promql.parser import parse_expr, to_string
from promlab.promql.parser.ast import BinaryExpr, NumberLiteral, ParenExpr
from promlab.promql.values import Vector
from promlab.rules.alerting import AlertingRuleState
from promlab.rules.load import load_rules
from promlab.rules.query import OverlayQueryable, query_funcs
from promlab.rules.rule import AlertingRule, RecordingRule, Rule, RuleGroup
from promlab.rules.timeline import AlertTimeline, run_timeline
from promlab.storage.interface import Queryable
from promlab.storage.memory import MemoryStorage

__all__ = ["EPISODE_COLUMNS", "RulesLike", "Score", "as_groups", "backtest", "backtest_sweep", "recorded",
           "run_groups", "score", "split_threshold", "threshold_of",
           "with_threshold"]

EPISODE_COLUMNS = ["group", "alertname", "labels", "pending_at", "firing_at", "resolved_at",
                   "duration", "peak_value", "value", "annotations"]

RulesLike = str | os.PathLike[str] | Rule | RuleGroup | Iterable[Any]


def as_groups(rules: RulesLike, step_ms: int | None = None) -> list[RuleGroup]:
    """Rule groups of ``rules`` (files, groups, rules or a list of them); ``step_ms`` overrides
    every group's interval."""
    if isinstance(rules, str | os.PathLike):
        groups = load_rules(rules)
    elif isinstance(rules, RuleGroup):
        groups = [rules]
    elif isinstance(rules, AlertingRule | RecordingRule):
        groups = [RuleGroup(name="backtest", rules=(rules,))]
    else:
        groups = []
        for item in rules:
            groups.extend(as_groups(item, None))
    if step_ms is not None:
        groups = [replace(g, interval_ms=step_ms) for g in groups]
    return groups


def _queryable(data: Queryable | str | os.PathLike[str]) -> Queryable:
    if isinstance(data, str | os.PathLike):
        from promlab.storage import open_store

        return open_store(data, readonly=True)
    return data


def _time_ms(t: Any) -> int:
    return int(t) if isinstance(t, int | np.integer) else parse_time(t)


def _add_with_stale(mem: MemoryStorage, ls: Labels, grid: np.ndarray, present: np.ndarray,
                    values: np.ndarray) -> None:
    """Write ``values`` at ``grid[present]`` and, as the live manager does, a staleness marker
    at the evaluation after each run of presence (so later rules stop seeing the series at once
    instead of for the lookback)."""
    ends = present[:-1] & ~present[1:]
    if not ends.any():
        mem.add_series(ls, grid[present], values)
        return
    ts = np.concatenate([grid[present], grid[1:][ends]])
    vs = np.concatenate([values, np.full(int(ends.sum()), STALE_NAN)])
    order = np.argsort(ts, kind="stable")
    mem.add_series(ls, ts[order], vs[order])


def _write(mem: MemoryStorage, vec: Vector, ts: np.ndarray) -> None:
    for i, ls in enumerate(vec.labels):
        m = vec.present[i]
        if not m.any():
            continue
        hist = None if vec.histograms is None else vec.histograms[i, m]
        if hist is not None and any(h is not None for h in hist):
            # native histograms (floats mixed in) and the staleness markers after each run
            ends = m[:-1] & ~m[1:]
            vals = [h if h is not None else float(v) for h, v in zip(hist, vec.values[i, m], strict=True)]
            t = np.concatenate([ts[m], ts[1:][ends]])
            order = np.argsort(t, kind="stable")
            allv = vals + [STALE_NAN] * int(ends.sum())
            mem.add_histogram_series(ls, t[order], [allv[k] for k in order])
        else:
            _add_with_stale(mem, ls, ts, m, vec.values[i, m])


def recorded(rule: RecordingRule, labels: Mapping[str, str], vec: Vector, *, limit: int = 0
             ) -> tuple[Vector, np.ndarray]:
    """``vec`` renamed to the recording rule's metric with its ``labels`` applied (empty
    values remove a label), and which evaluations succeeded.

    As a live evaluation (:func:`~promlab.rules.group.eval_recording`), an evaluation fails
    when two of its elements get one label set or it has more than ``limit`` (> 0) series; a
    failed one writes nothing and its series are not marked stale, so its column is False
    in the returned mask and empty in the vector. Rows sharing a label set are merged (at a
    successful evaluation at most one of them is present).
    """
    out = [Labels({k: v for k, v in {**ls.to_dict(), METRIC_NAME: rule.name, **labels}.items() if v})
           for ls in vec.labels]
    values, present, hists = vec.values, vec.present, vec.histograms
    first: dict[Labels, int] = {}
    dups: dict[int, list[int]] = {}
    for i, ls in enumerate(out):
        j = first.setdefault(ls, i)
        if j != i:
            dups.setdefault(j, [j]).append(i)
    ok = np.ones(present.shape[1], bool)
    if dups:
        values, present = values.copy(), present.copy()
        hists = None if hists is None else hists.copy()
        for j, rows in dups.items():
            ok &= present[rows].sum(axis=0) < 2
            at = np.argmax(present[rows], axis=0)  # the one present (if any) per step
            cols = np.arange(present.shape[1])
            pick = np.asarray(rows)[at]
            values[j], present[j] = values[pick, cols], present[pick, cols]
            if hists is not None:
                hists[j] = hists[pick, cols]
        keep = sorted(first.values())
        out = [out[i] for i in keep]
        values, present = values[keep], present[keep]
        hists = None if hists is None else hists[keep]
    if limit > 0:
        ok &= present.sum(axis=0) <= limit
    if not ok.all():
        present = present & ok
    return Vector(out, values, present, histograms=hists), ok


def run_groups(groups: Sequence[RuleGroup], start_ms: int, end_ms: int, *, data: Queryable,
               external_labels: Mapping[str, str] | None = None, external_url: str = "",
               engine: Engine | None = None,
               ) -> list[tuple[RuleGroup, AlertingRuleState, AlertTimeline, Vector]]:
    """Evaluate every rule of ``groups`` over ``[start_ms, end_ms]``; the alerting rules'
    timelines with their state (rule settings) and the range-query frame they came from."""
    eng = engine if engine is not None else Engine()
    out: list[tuple[RuleGroup, AlertingRuleState, AlertTimeline, Vector]] = []
    for g in groups:
        mem = MemoryStorage()
        instant, ranged = query_funcs(OverlayQueryable(data, mem), eng)
        eval_ms = np.arange(start_ms, end_ms + 1, g.interval_ms, dtype=np.int64)
        if eval_ms.size == 0:
            continue
        q_ms = eval_ms - g.query_offset_ms
        for pos, rule in enumerate(g.rules):
            vec = ranged(rule.expr, int(q_ms[0]), int(q_ms[-1]), g.interval_ms)
            if isinstance(rule, RecordingRule):
                rec, ok = recorded(rule, g.rule_labels(rule), vec, limit=g.limit)
                if not ok.all():  # failed evaluations: skipped, as the live manager does
                    rec = Vector(rec.labels, rec.values[:, ok], rec.present[:, ok],
                                 histograms=None if rec.histograms is None else rec.histograms[:, ok])
                _write(mem, rec, q_ms[ok])
                continue
            state = AlertingRuleState(rule, group_labels=g.labels, limit=g.limit,
                                      query_offset_ms=g.query_offset_ms,
                                      external_labels=external_labels, external_url=external_url)
            tl = run_timeline(state, vec, q_ms, query_func=instant)
            # ALERTS series only matter to later rules of the group that read them.
            # TODO(handle): a rule reading its own ALERTS needs a step-wise fallback.
            if any("ALERTS" in later.expr for later in g.rules[pos + 1:]):
                for ls, ts, vs in tl.series():
                    _add_with_stale(mem, ls, q_ms, np.isin(q_ms, ts), vs)
            out.append((g, state, tl, vec))
    return out


def _episode_frame(results: list[tuple[RuleGroup, AlertingRuleState, AlertTimeline, Vector]],
                   last_eval_ms: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for g, state, tl, vec in results:
        n_t = tl.eval_ms.shape[0]
        for k in range(tl.num_episodes):
            s, f, e = int(tl.start[k]), int(tl.fire[k]), int(tl.end[k])
            ls = tl.alert_labels[int(tl.alert[k])]
            at = int(tl.eval_ms[f if f >= 0 else s])
            annotations = state.annotations(vec.labels[int(tl.src_series[k])], float(tl.src_value[k]), at)
            fired = int(tl.eval_ms[f]) if f >= 0 else None
            ended = int(tl.eval_ms[e]) if e < n_t else None
            dur = None if fired is None else (ended if ended is not None else last_eval_ms) - fired
            rows.append({"group": g.name, "alertname": state.rule.name, "labels": ls.to_dict(),
                         "pending_at": int(tl.eval_ms[s]), "firing_at": fired, "resolved_at": ended,
                         "duration": dur, "peak_value": float(tl.peak[k]),
                         "value": float(tl.src_value[k]), "annotations": annotations})
    df = pd.DataFrame(rows, columns=EPISODE_COLUMNS)
    for c in ("pending_at", "firing_at", "resolved_at"):
        df[c] = pd.to_datetime(df[c].astype("Float64"), unit="ms", utc=True)
    df["duration"] = pd.to_timedelta(df["duration"].astype("Float64"), unit="ms")
    names = sorted({k for d in df["labels"] for k in d if k != "alertname"})
    for n in names:
        df.insert(df.columns.get_loc("pending_at"), n, [d.get(n) for d in df["labels"]])
    return df.sort_values(["group", "alertname", "pending_at"], kind="stable").reset_index(drop=True)


def backtest(rules_or_file: RulesLike, start: Any, end: Any, *,
             data: Queryable | str | os.PathLike[str], step: str | int | None = None,
             external_labels: Mapping[str, str] | None = None, external_url: str = "",
             engine: Engine | None = None) -> pd.DataFrame:
    """Alert episodes the rules would have produced over ``[start, end]``.

    Parameters
    ----------
    rules_or_file
        A rule file path (or several), a :class:`RuleGroup`, a rule, or a list of those.
    start, end
        Range of evaluation times (datetime, Timestamp, RFC 3339, unix seconds, ``now-1d``).
        Groups are evaluated at ``start, start + interval, ...``.
    data
        A Queryable (store, MemoryStorage) or a store directory.
    step
        Overrides every group's ``interval``.

    Returns
    -------
    pandas.DataFrame
        One row per episode: ``group``, ``alertname``, ``labels`` (dict), one column per alert
        label, ``pending_at``, ``firing_at`` (NaT: never fired), ``resolved_at`` (when the
        episode ended — a pending alert dropped or a firing one resolved; NaT: still active
        at ``end``), ``duration`` (firing time, up to the last evaluation if unresolved),
        ``peak_value``, ``value`` (at firing, or at the start if it never fired) and
        ``annotations`` rendered with that value. ``attrs``: ``kind="alert_episodes"``,
        ``start``, ``end``; draw it with ``df.prom.plot_timeline()`` (see
        :mod:`promlab.rules.plot`).
    """
    step_ms = None if step is None else parse_duration(step) if not isinstance(step, int) else step
    start_ms, end_ms = _time_ms(start), _time_ms(end)
    groups = as_groups(rules_or_file, step_ms)
    results = run_groups(groups, start_ms, end_ms, data=_queryable(data),
                         external_labels=external_labels, external_url=external_url, engine=engine)
    df = _episode_frame(results, end_ms)
    # df.alerts / df.prom recognise episode frames by their kind (promlab.rules.plot).
    df.attrs.update(kind="alert_episodes", start=pd.Timestamp(start_ms, unit="ms", tz="UTC"),
                    end=pd.Timestamp(end_ms, unit="ms", tz="UTC"))
    return df


def _comparison(expr: str) -> tuple[BinaryExpr, NumberLiteral] | None:
    node = parse_expr(expr)
    while isinstance(node, ParenExpr):
        node = node.expr
    if isinstance(node, BinaryExpr) and node.op in ("==", "!=", ">", "<", ">=", "<=") \
            and isinstance(node.rhs, NumberLiteral):
        return node, node.rhs
    return None


def threshold_of(expr: str) -> float | None:
    """The threshold of ``<expr> <op> <number>`` (None for other expressions).

    >>> threshold_of("rate(errors[5m]) > 0.5"), threshold_of("up")
    (0.5, None)
    """
    found = _comparison(expr)
    return None if found is None else float(found[1].value)


def split_threshold(expr: str) -> tuple[str, str, float] | None:
    """``(lhs, op, threshold)`` of ``<lhs> <op> <number>`` (None for other expressions): what
    a rule compares, to plot it with its threshold.

    >>> split_threshold("sum(rate(errors[5m])) >= 2")
    ('sum(rate(errors[5m]))', '>=', 2.0)
    """
    found = _comparison(expr)
    if found is None:
        return None
    node, rhs = found
    return to_string(node.lhs), node.op, float(rhs.value)


def with_threshold(expr: str, threshold: float) -> str:
    """``expr`` with its threshold replaced: the number of ``<expr> <op> <number>``, or a
    ``{threshold}`` placeholder.

    >>> with_threshold("rate(errors[5m]) > 0.5", 2)
    'rate(errors[5m]) > 2'

    Raises
    ------
    ValueError
        The expression has neither form.
    """
    if "{threshold}" in expr:
        return expr.replace("{threshold}", repr(float(threshold)))
    found = _comparison(expr)
    if found is not None:
        node, rhs = found
        return to_string(replace(node, rhs=replace(rhs, value=float(threshold))))
    raise ValueError(f"cannot vary the threshold of {expr!r}: write it as `<expr> <op> <number>` "
                     "or put {threshold} where the threshold goes")


def backtest_sweep(rule: AlertingRule, start: Any, end: Any, *, data: Queryable | str | os.PathLike[str],
                   thresholds: Sequence[float] | None = None, for_: Sequence[str | int] | None = None,
                   step: str | int = "1m", flap: str | int = "5m", engine: Engine | None = None,
                   progress: bool | None = None) -> pd.DataFrame:
    """Backtest variants of one alerting rule: every threshold × every ``for``.

    Returns one row per variant: ``threshold``, ``for``, ``alerts`` (episodes that fired),
    ``pending_only`` (episodes that never fired), ``firing_time`` (total), ``flapping``
    (fired episodes firing for less than ``flap``). The expression is queried once per
    threshold; ``for`` variants reuse its frame. ``progress`` shows a bar (see
    :mod:`promlab.progress`).
    """
    flap_ms = parse_duration(flap) if not isinstance(flap, int) else flap
    fors = [rule.for_ms] if for_ is None else [
        parse_duration(f) if not isinstance(f, int) else f for f in for_]
    exprs: list[tuple[float | None, str]] = [(None, rule.expr)] if thresholds is None else [
        (float(t), with_threshold(rule.expr, t)) for t in thresholds]
    rows: list[dict[str, Any]] = []
    variants = [(thr, expr, f) for thr, expr in exprs for f in fors]
    for thr, expr, f in _progress.iterate(progress, variants, desc="backtest sweep", unit="variant"):
        variant = replace(rule, expr=expr, for_ms=int(f))
        ep = backtest(variant, start, end, data=data, step=step, engine=engine)
        fired = ep[ep["firing_at"].notna()]
        rows.append({"threshold": thr, "for": pd.Timedelta(int(f), unit="ms"),
                     "alerts": len(fired), "pending_only": int(ep["firing_at"].isna().sum()),
                     "firing_time": fired["duration"].sum() if len(fired) else pd.Timedelta(0),
                     "flapping": int((fired["duration"] < pd.Timedelta(flap_ms, unit="ms")).sum())})
    return pd.DataFrame(rows)


@dataclass
class Score:
    """How episodes matched known incidents.

    ``incidents`` has one row per incident with ``caught``, ``detected_at`` and
    ``time_to_detect`` (0 when already firing at its start); ``false_alerts`` are the fired
    episodes that overlap no incident.
    """

    caught: int
    missed: int
    false_alerts: int
    mean_time_to_detect: pd.Timedelta | None
    incidents: pd.DataFrame
    false_alert_episodes: pd.DataFrame


def score(episodes: pd.DataFrame, incidents: pd.DataFrame) -> Score:
    """Score backtest ``episodes`` against ``incidents`` (columns ``start``, ``end``).

    An incident is caught when a fired episode overlaps it (fired before its end, not resolved
    before its start).
    """
    fired = episodes[episodes["firing_at"].notna()]
    f_at = pd.to_datetime(fired["firing_at"], utc=True)
    r_at = pd.to_datetime(fired["resolved_at"], utc=True).fillna(pd.Timestamp.max.tz_localize("UTC"))
    inc = incidents.copy()
    starts = pd.to_datetime(inc["start"], utc=True)
    ends = pd.to_datetime(inc["end"], utc=True)
    f_ns = f_at.to_numpy("datetime64[ns]")[None, :]
    r_ns = r_at.to_numpy("datetime64[ns]")[None, :]
    s_ns = starts.to_numpy("datetime64[ns]")[:, None]
    e_ns = ends.to_numpy("datetime64[ns]")[:, None]
    overlap = (f_ns <= e_ns) & (r_ns >= s_ns)  # (incidents, episodes)
    caught = overlap.any(axis=1)
    big = np.datetime64("2262-01-01")
    first = np.where(overlap, f_ns, big).min(axis=1) if overlap.size else np.full(len(inc), big)
    detected = pd.to_datetime(np.where(caught, first, np.datetime64("NaT")), utc=True)
    inc["caught"] = caught
    inc["detected_at"] = detected
    delay = np.maximum(first - s_ns[:, 0], np.timedelta64(0, "ns")) if len(inc) else first - first
    inc["time_to_detect"] = pd.to_timedelta(np.where(caught, delay, np.timedelta64("NaT", "ns")))
    false_mask = ~overlap.any(axis=0) if overlap.size else np.ones(len(fired), bool)
    mean = inc.loc[inc["caught"], "time_to_detect"].mean() if caught.any() else None
    return Score(caught=int(caught.sum()), missed=int((~caught).sum()),
                 false_alerts=int(false_mask.sum()), mean_time_to_detect=mean, incidents=inc,
                 false_alert_episodes=fired[false_mask])
