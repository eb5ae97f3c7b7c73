"""The two drivers of the alert state machine agree, and agree with Prometheus's rules.

Data goes through MemoryStorage and the real Engine; the live driver runs one instant query
per evaluation, the backtest driver one range query.
"""

from __future__ import annotations

import numpy as np
import pytest

from promlab.errors import RuleError
from promlab.model import Labels
from promlab.rules import AlertingRule, AlertingRuleState, query_funcs, run_timeline
from promlab.storage import MemoryStorage

STEP = 60_000

# Each case: per-series 0/1 activity at evaluations 0..N-1 (1 = the alert condition holds),
# for, keep_firing_for, limit, and the expected episodes (series, start, fire, end) in steps.
CASES = [
    pytest.param({"a": "0011110000"}, 0, 0, 0, [("a", 2, 2, 6)], id="no-for-fires-at-once"),
    pytest.param({"a": "0111110000"}, 2, 0, 0, [("a", 1, 3, 6)], id="for-2-steps"),
    pytest.param({"a": "0110111000"}, 2, 0, 0, [("a", 1, -1, 3), ("a", 4, 6, 7)], id="pending-dropped"),
    pytest.param({"a": "1111001111"}, 1, 3, 0, [("a", 0, 1, 10)], id="keep-firing-bridges-gap"),
    pytest.param({"a": "1100000110"}, 0, 2, 0, [("a", 0, 0, 4), ("a", 7, 7, 10)], id="keep-firing-then-resolve"),
    pytest.param({"a": "1010101010"}, 0, 0, 0,
                 [("a", 0, 0, 1), ("a", 2, 2, 3), ("a", 4, 4, 5), ("a", 6, 6, 7), ("a", 8, 8, 9)], id="flapping"),
    pytest.param({"a": "1010101010"}, 1, 2, 0, [("a", 0, -1, 1), ("a", 2, -1, 3), ("a", 4, -1, 5),
                                               ("a", 6, -1, 7), ("a", 8, -1, 9)], id="flapping-never-fires"),
    pytest.param({"a": "1101101101"}, 1, 2, 0, [("a", 0, 1, 10)], id="flapping-held-by-keep-firing"),
    pytest.param({"a": "0011100000", "b": "0000111100"}, 1, 0, 0,
                 [("a", 2, 3, 5), ("b", 4, 5, 8)], id="two-series"),
    pytest.param({"a": "1111000000", "b": "0011110000"}, 0, 0, 1,
                 [("a", 0, 0, 2), ("b", 4, 4, 6)], id="limit-clears-all"),
    pytest.param({"a": "1111100000", "b": "0011000000"}, 1, 0, 1,
                 [("a", 0, 1, 2), ("a", 4, -1, 5)], id="limit-restarts-for"),
]


def _store(activity: dict[str, str]) -> MemoryStorage:
    st = MemoryStorage()
    for inst, pattern in activity.items():
        ts = np.arange(len(pattern)) * STEP
        st.add_series(Labels({"__name__": "errors", "instance": inst}), ts, [float(c) for c in pattern])
    return st


def _live(state: AlertingRuleState, st: MemoryStorage, n: int) -> dict[Labels, list[tuple[int, float]]]:
    instant, _ = query_funcs(st)
    out: dict[Labels, list[tuple[int, float]]] = {}
    for i in range(n):
        try:
            _, samples = state.eval_query(instant, i * STEP)
        except RuleError:
            continue
        for s in samples:
            out.setdefault(s.labels, []).append((s.t_ms, s.value))
    return out


@pytest.mark.parametrize(("activity", "for_steps", "kff_steps", "limit", "expected"), CASES)
def test_drivers_agree(activity: dict[str, str], for_steps: int, kff_steps: int, limit: int,
                       expected: list[tuple[str, int, int, int]]) -> None:
    st = _store(activity)
    n = len(next(iter(activity.values())))
    rule = AlertingRule(name="HighErrors", expr="errors > 0.5", for_ms=for_steps * STEP,
                        keep_firing_for_ms=kff_steps * STEP, labels={"severity": "page"})
    live = _live(AlertingRuleState(rule, group_labels={"team": "x"}, limit=limit), st, n)

    _, ranged = query_funcs(st)
    q_ms = np.arange(n, dtype=np.int64) * STEP
    tl = run_timeline(AlertingRuleState(rule, group_labels={"team": "x"}, limit=limit),
                      ranged(rule.expr, 0, int(q_ms[-1]), STEP), q_ms)
    vectorised = {ls: list(zip(ts.tolist(), vs.tolist(), strict=True)) for ls, ts, vs in tl.series()}
    assert vectorised == live

    got = sorted((tl.alert_labels[a]["instance"], s, f, e)
                 for a, s, f, e in zip(tl.alert, tl.start, tl.fire, tl.end, strict=True))
    assert got == sorted(expected)


def test_alerts_series_labels_and_values() -> None:
    st = _store({"a": "0111"})
    rule = AlertingRule(name="HighErrors", expr="errors > 0.5", for_ms=STEP, labels={"severity": "page"})
    live = _live(AlertingRuleState(rule, group_labels={"team": "x", "severity": "low"},
                                   external_labels={"cluster": "c1"}), st, 4)
    base = {"alertname": "HighErrors", "instance": "a", "severity": "page", "team": "x"}
    assert live == {
        Labels({**base, "__name__": "ALERTS", "alertstate": "pending"}): [(60_000, 1.0)],
        Labels({**base, "__name__": "ALERTS", "alertstate": "firing"}): [(120_000, 1.0), (180_000, 1.0)],
        Labels({**base, "__name__": "ALERTS_FOR_STATE"}): [(60_000, 60.0), (120_000, 60.0), (180_000, 60.0)],
    }


def test_query_offset_moves_query_and_series_not_active_at() -> None:
    st = _store({"a": "0111"})
    rule = AlertingRule(name="E", expr="errors > 0.5")
    state = AlertingRuleState(rule, query_offset_ms=STEP)
    instant, _ = query_funcs(st)
    alerts, samples = state.eval_query(instant, 2 * STEP)  # queries t=60s, where errors is 1
    assert [a.active_at_ms for a in alerts] == [2 * STEP]
    assert {s.t_ms for s in samples} == {STEP}
    assert {s.value for s in samples if s.labels.name == "ALERTS_FOR_STATE"} == {120.0}


def test_resolved_alert_kept_fifteen_minutes() -> None:
    st = _store({"a": "1" + "0" * 20})
    state = AlertingRuleState(AlertingRule(name="E", expr="errors > 0.5"))
    instant, _ = query_funcs(st)
    kept = []
    for i in range(20):
        alerts, _ = state.eval_query(instant, i * STEP)
        kept.append(len(alerts))
    # resolved at step 1, retained while t - resolved_at <= 15m, dropped after
    assert kept == [1] * 17 + [0] * 3
    assert state.alerts == {}


def test_duplicate_label_sets_fail_and_change_nothing() -> None:
    st = MemoryStorage()
    for name in ("errors", "faults"):
        st.add_series(Labels({"__name__": name, "instance": "a"}), [0], [1.0])
    state = AlertingRuleState(AlertingRule(name="E", expr='{__name__=~"errors|faults"} > 0'))
    instant, _ = query_funcs(st)
    with pytest.raises(RuleError, match="same labelset after applying alert labels"):
        state.eval_query(instant, 0)
    assert state.alerts == {}
