"""The alert state machine vectorised over every evaluation time (the backtest's driver).

Same rules as :class:`~promlab.rules.alerting.AlertingRuleState` (read its module docstring),
computed from a range query's ``(S, T)`` frame with numpy instead of a loop over steps:

1. each present cell maps to an alert label set (templates expanded once per series, or once
   per distinct value when a label template reads ``$value``); steps where two cells share a
   label set fail in Prometheus and change nothing, so they are dropped;
2. runs of consecutive evaluations where an alert is present come from one ``diff``; a run
   fires at the first step ``>= start + for`` (one ``searchsorted``);
3. ``keep_firing_for`` joins a run to the previous one when the previous *episode* was firing
   at its end and the gap closes within ``keep_firing_for`` of its first missing step. "Was
   firing" follows ``f[r] = fires[r] or (joins[r] and f[r-1])``, which is a running "any"
   inside segments of consecutive joinable runs: a ``cumsum``, no loop;
4. the group ``limit`` (active alerts per step) is checked from the episodes; the first step
   over it clears every alert and the machine restarts after it (a loop over violations).

An *episode* is one alert instance from its first pending evaluation to the evaluation it
stopped at (pending dropped or firing resolved), or to the end of the range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.promql.values import F64, I64, B, Vector
from promlab.rules.alerting import (
    AlertingRuleState,
    AlertState,
    alerts_labels,
    for_state_labels,
    for_state_value,
)
from promlab.rules.templating import is_template

__all__ = ["AlertTimeline", "SeriesArrays", "run_timeline"]

SeriesArrays = tuple[Labels, I64, F64]


@dataclass
class AlertTimeline:
    """Episodes of one alerting rule over ``eval_ms`` (the evaluation times).

    Episode ``k`` is alert ``alert_labels[alert[k]]`` (its ``ALERTS`` series are labelled from
    ``series_labels[alert[k]]``, see :meth:`AlertingRuleState.series_labels`), pending from
    step ``start[k]``, firing from step ``fire[k]`` (-1: never fired) and active until step
    ``end[k]`` exclusive (``end == T``: still active at the end of the range). ``peak`` is the
    highest value it had; ``src_series[k]``/``src_value[k]`` are the result element and value
    that the episode's annotations are rendered from (at firing, or at its start if it never
    fired).
    ``error_steps`` are evaluations that failed (duplicate label sets) and were skipped.
    """

    alert_labels: list[Labels]
    series_labels: list[Labels]
    eval_ms: I64
    write_ms: I64
    alert: I64
    start: I64
    fire: I64
    end: I64
    peak: F64
    src_series: I64
    src_value: F64
    error_steps: I64

    @property
    def num_episodes(self) -> int:
        return int(self.alert.shape[0])

    def series(self) -> list[SeriesArrays]:
        """The ``ALERTS`` and ``ALERTS_FOR_STATE`` samples the episodes write, sorted by labels."""
        acc: dict[Labels, list[tuple[I64, F64]]] = {}
        for k in range(self.num_episodes):
            base = self.series_labels[int(self.alert[k])]
            s, f, e = int(self.start[k]), int(self.fire[k]), int(self.end[k])
            split = e if f < 0 else f
            if split > s:
                ts = self.write_ms[s:split]
                acc.setdefault(alerts_labels(base, AlertState.PENDING), []).append((ts, np.ones(ts.shape)))
            if f >= 0 and e > f:
                ts = self.write_ms[f:e]
                acc.setdefault(alerts_labels(base, AlertState.FIRING), []).append((ts, np.ones(ts.shape)))
            if e > s:
                ts = self.write_ms[s:e]
                v = np.full(ts.shape, for_state_value(int(self.eval_ms[s])))
                acc.setdefault(for_state_labels(base), []).append((ts, v))
        out: list[SeriesArrays] = []
        for ls in sorted(acc):
            parts = acc[ls]
            ts = np.concatenate([p[0] for p in parts]).astype(np.int64)
            vs = np.concatenate([p[1] for p in parts]).astype(np.float64)
            order = np.argsort(ts, kind="stable")
            out.append((ls, ts[order], vs[order]))
        return out


def _label_templates(state: AlertingRuleState) -> list[str]:
    return [v for v in state.labels.values() if is_template(v)]


def _value_dependent(state: AlertingRuleState) -> bool:
    return any("Value" in t or "value" in t or "query" in t for t in _label_templates(state))


def _time_dependent(state: AlertingRuleState) -> bool:
    """Whether a label template can see the evaluation time (``query`` runs at it)."""
    return any("query" in t for t in _label_templates(state))


def _identities(state: AlertingRuleState, vec: Vector, eval_ms: I64,
                query_func: Callable[[str, int], Vector] | None,
                ) -> tuple[list[Labels], I64 | None, I64 | None]:
    """Alert label sets and the ``(S, T)`` id of each present cell (-1 where absent); when the
    labels do not depend on the value, the id of each row ``(S,)`` instead (cells: None)."""
    n_s, n_t = vec.values.shape
    per_value = _value_dependent(state)
    if not per_value:
        row_ids = np.full(n_s, -1, np.int64)
    ids = np.full((n_s, n_t), -1, np.int64) if per_value else None
    index: dict[Labels, int] = {}
    names: list[Labels] = []

    def ident(ls: Labels, value: float, t_ms: int) -> int:
        key, _ = state.instance(ls, value, t_ms, query_func, annotations=False)
        got = index.get(key)
        if got is None:
            got = index[key] = len(names)
            names.append(key)
        return got

    if not per_value:
        for s in np.flatnonzero(vec.present.any(axis=1)).tolist():
            row_ids[s] = ident(vec.labels[s], 0.0, int(eval_ms[0]))
        return names, None, row_ids
    assert ids is not None
    per_step = _time_dependent(state)
    for s in range(n_s):
        row = vec.present[s]
        if not row.any():
            continue
        cols = np.flatnonzero(row)
        if per_step:  # a template's `query` answers at each evaluation's own time
            ids[s, cols] = [ident(vec.labels[s], float(vec.values[s, c]), int(eval_ms[c]))
                            for c in cols.tolist()]
            continue
        uniq, inv = np.unique(vec.values[s, cols], return_inverse=True)
        got = np.array([ident(vec.labels[s], float(u), int(eval_ms[cols[0]])) for u in uniq], np.int64)
        ids[s, cols] = got[inv.ravel()]
    return names, ids, None


def _episodes(present: B, ts: I64, for_ms: int, kff_ms: int) -> tuple[I64, I64, I64, I64]:
    """``(alert, start, fire, end)`` of every episode in a presence matrix ``(A, T)``."""
    n_a, n_t = present.shape
    pad = np.zeros((n_a, n_t + 2), np.int8)
    pad[:, 1:-1] = present
    d = np.diff(pad, axis=1)
    s_row, s_col = np.nonzero(d == 1)
    _, e_col = np.nonzero(d == -1)  # same row-major order: run k starts s_col[k], ends e_col[k]
    run_s, run_e, row = s_col.astype(np.int64), e_col.astype(np.int64), s_row.astype(np.int64)
    n_r = run_s.shape[0]
    if n_r == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    fire_idx = np.searchsorted(ts, ts[run_s] + for_ms, side="left").astype(np.int64)
    fires = fire_idx < run_e
    # Firing at the end of run r keeps the alert firing through steps [run_e, keep_end).
    keep_end = run_e.copy()
    if kff_ms > 0:
        inside = run_e < n_t
        keep_end[inside] = np.searchsorted(ts, ts[run_e[inside]] + kff_ms, side="left")
    joinable = np.zeros(n_r, bool)
    if kff_ms > 0 and n_r > 1:
        joinable[1:] = (row[1:] == row[:-1]) & (run_s[1:] <= keep_end[:-1])
    seg = np.cumsum(~joinable)
    fires_i = fires.astype(np.int64)
    csum: I64 = np.cumsum(fires_i)
    seg_first = np.flatnonzero(~joinable)
    before: I64 = (csum - fires_i)[seg_first][seg - 1]
    firing_at_end: B = (csum - before) > 0
    joined = np.zeros(n_r, bool)
    joined[1:] = joinable[1:] & firing_at_end[:-1]
    first = np.flatnonzero(~joined)
    last = np.concatenate([first[1:] - 1, [n_r - 1]])
    ep_fire = np.where(fires[first], fire_idx[first], -1)
    ep_end = np.where(ep_fire >= 0, np.minimum(keep_end[last], n_t), run_e[last])
    return row[first], run_s[first], ep_fire, ep_end


def _apply_limit(alert: I64, start: I64, fire: I64, end: I64, limit: int, n_t: int,
                 present: B, ts: I64, for_ms: int, kff_ms: int) -> tuple[I64, I64, I64, I64]:
    """Clear all alerts at the first step with more than ``limit`` active, then restart."""
    parts: list[tuple[I64, I64, I64, I64]] = []
    offset = 0
    while True:
        cnt = np.zeros(n_t - offset + 1, np.int64)
        np.add.at(cnt, start, 1)
        np.add.at(cnt, end, -1)
        over = np.flatnonzero(np.cumsum(cnt)[:-1] > limit)
        if over.size == 0:
            parts.append((alert, start + offset, np.where(fire >= 0, fire + offset, -1), end + offset))
            break
        v = int(over[0])
        keep = start < v
        f = np.where(fire[keep] >= v, -1, fire[keep])
        parts.append((alert[keep], start[keep] + offset, np.where(f >= 0, f + offset, -1),
                      np.minimum(end[keep], v) + offset))
        offset += v + 1
        if offset >= n_t:
            break
        alert, start, fire, end = _episodes(present[:, offset:], ts[offset:], for_ms, kff_ms)
    cat = [np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(4)]
    return cat[0], cat[1], cat[2], cat[3]


def _cells(ids: I64, vec: Vector, eval_ms: I64, n_a: int) -> tuple[I64, B, F64, I64, I64]:
    """Per-alert ``(A, T')`` presence, values and source rows from per-cell ids; steps where
    two result elements give one alert label set fail in Prometheus, so they are dropped."""
    n_t = eval_ms.shape[0]
    cells = np.nonzero(ids >= 0)
    cell_id = ids[cells]
    key = cell_id * n_t + cells[1]
    uniq, counts = np.unique(key, return_counts=True)
    err_steps = unique(uniq[counts > 1] % n_t) if n_t else np.zeros(0, np.int64)
    keep_cols = np.ones(n_t, bool)
    keep_cols[err_steps] = False
    col_map = np.cumsum(keep_cols) - 1
    ok = keep_cols[cells[1]]
    ser, col, aid = cells[0][ok], col_map[cells[1][ok]], cell_id[ok]
    ts = eval_ms[keep_cols]
    n_k = ts.shape[0]
    present = np.zeros((n_a, n_k), bool)
    present[aid, col] = True
    values = np.full((n_a, n_k), np.nan)
    values[aid, col] = vec.values[ser, cells[1][ok]]
    src = np.full((n_a, n_k), -1, np.int32 if vec.values.shape[0] < 2**31 else np.int64)
    src[aid, col] = ser
    return ts, present, values, src, err_steps.astype(np.int64)


def run_timeline(state: AlertingRuleState, vec: Vector, query_ms: I64, *,
                 query_func: Callable[[str, int], Vector] | None = None) -> AlertTimeline:
    """Run the state machine of ``state``'s rule over a range-query frame.

    ``vec`` is the rule expression evaluated at ``query_ms`` (``(S, T)``, the group's
    evaluation times minus its query offset); ``state`` supplies the rule, group labels,
    ``limit``, offset and external labels and is not modified.
    """
    rule = state.rule
    query_ms = np.asarray(query_ms, np.int64)
    eval_all = query_ms + state.query_offset_ms
    names, ids, row_ids = _identities(state, vec, eval_all, query_func)
    n_a, n_t = len(names), query_ms.shape[0]
    rows_of: I64 | None = None
    if row_ids is not None:
        valid = np.flatnonzero(row_ids >= 0)
        if unique(row_ids[valid]).shape[0] == valid.shape[0]:
            rows_of = np.empty(n_a, np.int64)  # one alert per result row: no duplicates
            rows_of[row_ids[valid]] = valid
        else:
            ids = np.where(vec.present, row_ids[:, None], -1)
    if rows_of is not None:
        ts, n_k, err_steps = eval_all, n_t, np.zeros(0, np.int64)
        present, values = vec.present[rows_of], vec.values[rows_of]  # values: read where present
        src = None
    else:
        assert ids is not None
        ts, present, values, src, err_steps = _cells(ids, vec, eval_all, n_a)
        n_k = ts.shape[0]
    alert, start, fire, end = _episodes(present, ts, rule.for_ms, rule.keep_firing_for_ms)
    if state.limit > 0 and alert.size:
        alert, start, fire, end = _apply_limit(alert, start, fire, end, state.limit, n_k, present,
                                               ts, rule.for_ms, rule.keep_firing_for_ms)
    order = np.lexsort((start, alert))
    alert, start, fire, end = alert[order], start[order], fire[order], end[order]
    # Peak value over each episode's present steps: a masked max over its step range (one
    # reduceat over the flattened rows).
    n_e = alert.shape[0]
    peak = np.full(n_e, np.nan)
    if n_e:
        # One extra -inf cell so an episode ending at the last step has a valid reduceat end.
        masked = np.full(n_a * n_k + 1, -np.inf)
        np.copyto(masked[:-1].reshape(n_a, n_k), values, where=present)
        flat_s = alert * n_k + start
        flat_e = alert * n_k + np.maximum(end, start + 1)
        idx = np.empty(2 * n_e, np.int64)
        idx[0::2], idx[1::2] = flat_s, flat_e
        red = np.maximum.reduceat(masked, idx)[0::2]
        del masked
        peak = np.where(np.isneginf(red), np.nan, red)
    at = np.where(fire >= 0, fire, start)
    if not n_e:
        src_series = np.zeros(0, np.int64)
    elif src is None:
        src_series = rows_of[alert] if rows_of is not None else np.zeros(0, np.int64)
    else:
        src_series = src[alert, at].astype(np.int64)
    src_value = values[alert, at] if n_e else np.zeros(0)
    return AlertTimeline(alert_labels=names, series_labels=[state.series_labels(ls) for ls in names],
                         eval_ms=ts, write_ms=ts - state.query_offset_ms,
                         alert=alert, start=start, fire=fire, end=end, peak=peak,
                         src_series=src_series, src_value=src_value,
                         error_steps=eval_all[err_steps].astype(np.int64))
