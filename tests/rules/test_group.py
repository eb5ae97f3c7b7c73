"""The group step driver on MemoryStorage with a simulated clock: alert lifecycle, keep_firing_for,
limit, failing rules, recording-rule chains, staleness markers, query_offset, notifications."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.errors import QueryError, RuleError
from promlab.model import STALE_NAN, Labels, Matcher, MatchType, is_stale
from promlab.promql.values import Vector
from promlab.rules.alerting import Alert, AlertState, Sample
from promlab.rules.group import GroupState, eval_recording, needs_sending
from promlab.rules.query import QueryFunc, query_funcs
from promlab.rules.rule import AlertingRule, RecordingRule, RuleGroup
from promlab.storage import MemoryStorage

S = 1000  # ms
T0 = 1_700_000_000_000


def raw(st: MemoryStorage, name: str) -> dict[Labels, list[tuple[int, float]]]:
    """Every sample of metric ``name`` (stale markers as the string 'stale')."""
    ss = st.querier(0, 2**62).select([Matcher(MatchType.EQUAL, "__name__", name)])
    out: dict[Labels, list[tuple[int, float]]] = {}
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        out[ls] = [(int(t) - T0, "stale" if is_stale(float(v)) else float(v))  # type: ignore[misc]
                   for t, v in zip(ts, vs, strict=True)]
    return out


def run(state: GroupState, st: MemoryStorage, times_s: list[int], query: QueryFunc | None = None,
        sent: list[tuple[int, list[Alert]]] | None = None, resend_delay_ms: int = 60_000) -> None:
    q = query or query_funcs(st)[0]
    app = st.appender()
    for t in times_s:
        def notify(expr: str, alerts: list[Alert], t: int = t) -> None:
            if sent is not None:
                sent.append((t, alerts))
        state.eval(T0 + t * S, q, app, notify=notify, resend_delay_ms=resend_delay_ms)


def series(st: MemoryStorage, labels: dict[str, str], points: list[tuple[int, float]]) -> None:
    st.add_series(Labels(labels), [T0 + t * S for t, _ in points], [v for _, v in points])


def test_pending_firing_resolved() -> None:
    st = MemoryStorage()
    series(st, {"__name__": "x", "job": "a"}, [(0, 1), (10, 1), (20, 1), (30, 1), (40, STALE_NAN)])
    g = RuleGroup(name="g", interval_ms=10 * S, rules=(
        AlertingRule(name="X", expr="x > 0", for_ms=20 * S, labels={"sev": "{{ $labels.job }}"}),))
    state = GroupState(g)
    sent: list[tuple[int, list[Alert]]] = []
    states = []
    for t in (10, 20, 30, 40, 50, 110):
        run(state, st, [t], sent=sent)
        a = state.alerting[0]
        assert a is not None
        states.append(str(a.state))
    assert states == ["pending", "pending", "firing", "inactive", "inactive", "inactive"]
    alerts = raw(st, "ALERTS")
    lbl = {"__name__": "ALERTS", "alertname": "X", "job": "a", "sev": "a"}
    assert alerts[Labels({**lbl, "alertstate": "pending"})] == [(10_000, 1.0), (20_000, 1.0), (30_000, "stale")]
    assert alerts[Labels({**lbl, "alertstate": "firing"})] == [(30_000, 1.0), (40_000, "stale")]
    fs = raw(st, "ALERTS_FOR_STATE")[Labels({"__name__": "ALERTS_FOR_STATE", "alertname": "X",
                                              "job": "a", "sev": "a"})]
    assert fs[0] == (10_000, (T0 + 10_000) // 1000) and fs[-1] == (40_000, "stale")
    # Sent: firing at 30 (valid 4 x resend delay), resolved at 40, resolved again after 60 s.
    assert [(t, [(str(a.state), a.resolved_at_ms) for a in al]) for t, al in sent] == [
        (30, [("firing", None)]), (40, [("inactive", T0 + 40_000)]), (110, [("inactive", T0 + 40_000)])]
    assert sent[0][1][0].valid_until_ms == T0 + 30_000 + 4 * 60_000
    assert sent[0][1][0].fired_at_ms == T0 + 30_000


def test_keep_firing_for() -> None:
    st = MemoryStorage()
    series(st, {"__name__": "x"}, [(10, 1), (15, STALE_NAN)])
    g = RuleGroup(name="g", interval_ms=10 * S, rules=(
        AlertingRule(name="X", expr="x", keep_firing_for_ms=20 * S),))
    state = GroupState(g)
    got = []
    for t in (10, 20, 30, 40):
        run(state, st, [t])
        a = state.alerting[0]
        assert a is not None
        got.append(str(a.state))
    assert got == ["firing", "firing", "firing", "inactive"]


@pytest.mark.parametrize(("rule", "error"), [
    pytest.param(AlertingRule(name="A", expr="x"), "exceeded limit of 1 with 2 alerts", id="alerting"),
    pytest.param(RecordingRule(name="r", expr="x"), "exceeded limit of 1 with 2 series", id="recording"),
])
def test_limit_fails_the_rule_only(rule: AlertingRule | RecordingRule, error: str) -> None:
    st = MemoryStorage()
    for job in ("a", "b"):
        series(st, {"__name__": "x", "job": job}, [(0, 1)])
    series(st, {"__name__": "y"}, [(0, 1)])
    g = RuleGroup(name="g", limit=1, rules=(rule, RecordingRule(name="y:copy", expr="y")))
    state = GroupState(g)
    run(state, st, [10])
    assert (state.status[0].health, state.status[0].last_error) == ("err", error)
    assert state.status[1].health == "ok"
    assert list(raw(st, "y:copy").values()) == [[(10_000, 1.0)]]


def test_failing_rule_does_not_stop_the_group() -> None:
    st = MemoryStorage()
    series(st, {"__name__": "x", "job": "a"}, [(0, 1)])
    series(st, {"__name__": "x2", "job": "a"}, [(0, 1)])
    base = query_funcs(st)[0]

    def query(expr: str, t_ms: int) -> Vector:
        if expr == "boom":
            raise QueryError("query failed on purpose")
        return base(expr, t_ms)

    g = RuleGroup(name="g", rules=(
        RecordingRule(name="r1", expr="boom"),
        AlertingRule(name="Dup", expr='{__name__=~"x|x2"}'),  # one label set twice without __name__
        RecordingRule(name="r2", expr="sum(x)"),
        AlertingRule(name="Ok", expr="x"),
    ))
    state = GroupState(g)
    run(state, st, [10], query=query)
    assert [s.health for s in state.status] == ["err", "err", "ok", "ok"]
    assert state.status[0].last_error == "query failed on purpose"
    assert "same labelset" in state.status[1].last_error
    assert list(raw(st, "r2").values()) == [[(10_000, 1.0)]]
    assert [a.labels["alertname"] for a in state.alerts()] == ["Ok"]
    res = state.eval(T0 + 20 * S, query, st.appender())
    assert (res.evaluations, res.failures) == (4, 2)


def test_recording_chain_and_staleness() -> None:
    st = MemoryStorage()
    series(st, {"__name__": "x", "job": "a"}, [(0, 1), (10, 2), (15, STALE_NAN)])
    series(st, {"__name__": "x", "job": "b"}, [(0, 3), (10, 4), (20, 5)])
    g = RuleGroup(name="g", labels={"team": "t"}, rules=(
        RecordingRule(name="job:x", expr="sum by (job) (x)"),
        RecordingRule(name="job:x:double", expr="job:x * 2", labels={"team": ""}),
    ))
    state = GroupState(g)
    run(state, st, [10, 20])
    assert raw(st, "job:x") == {
        Labels({"__name__": "job:x", "job": "a", "team": "t"}): [(10_000, 2.0), (20_000, "stale")],
        Labels({"__name__": "job:x", "job": "b", "team": "t"}): [(10_000, 4.0), (20_000, 5.0)],
    }
    # The second rule sees the first one's output of the same evaluation; "" removes a label.
    assert raw(st, "job:x:double") == {
        Labels({"__name__": "job:x:double", "job": "a"}): [(10_000, 4.0), (20_000, "stale")],
        Labels({"__name__": "job:x:double", "job": "b"}): [(10_000, 8.0), (20_000, 10.0)],
    }


def test_query_offset_moves_queries_and_writes() -> None:
    st = MemoryStorage()
    series(st, {"__name__": "x"}, [(0, 1), (8, 2)])
    g = RuleGroup(name="g", query_offset_ms=5 * S, rules=(RecordingRule(name="r", expr="x"),
                                                           AlertingRule(name="A", expr="x")))
    state = GroupState(g)
    run(state, st, [10])
    assert list(raw(st, "r").values()) == [[(5_000, 1.0)]]
    assert list(raw(st, "ALERTS").values()) == [[(5_000, 1.0)]]
    a = state.alerts()[0]
    assert a.active_at_ms == T0 + 10_000  # the evaluation time, not the query time
    st2 = MemoryStorage()
    series(st2, {"__name__": "x"}, [(0, 1)])
    GroupState(RuleGroup(name="g", rules=(RecordingRule(name="r", expr="x"),)),
               default_query_offset_ms=3 * S).eval(T0 + 10 * S, query_funcs(st2)[0], st2.appender())
    assert list(raw(st2, "r").values()) == [[(7_000, 1.0)]]


def test_not_restored_writes_no_alerts_series() -> None:
    st = MemoryStorage()
    series(st, {"__name__": "x"}, [(0, 1)])
    state = GroupState(RuleGroup(name="g", rules=(AlertingRule(name="A", expr="x"),)), restored=False)
    run(state, st, [10])
    assert raw(st, "ALERTS") == {} and len(state.alerts()) == 1
    state.mark_restored()
    run(state, st, [20])
    assert list(raw(st, "ALERTS").values()) == [[(20_000, 1.0)]]


@pytest.mark.parametrize(("state", "last_sent", "resolved", "t", "expected"), [
    pytest.param(AlertState.PENDING, None, None, 100, False, id="pending-never"),
    pytest.param(AlertState.FIRING, None, None, 100, True, id="firing-first"),
    pytest.param(AlertState.FIRING, 50, None, 100, False, id="firing-within-delay"),
    pytest.param(AlertState.FIRING, 39, None, 100, True, id="firing-after-delay"),
    pytest.param(AlertState.FIRING, 40, None, 100, False, id="firing-exactly-delay"),
    pytest.param(AlertState.INACTIVE, 50, 60, 70, True, id="resolved-since-sent"),
    pytest.param(AlertState.INACTIVE, 60, 60, 70, False, id="resolved-already-sent"),
])
def test_needs_sending(state: AlertState, last_sent: int | None, resolved: int | None, t: int,
                       expected: bool) -> None:
    a = Alert(Labels({"alertname": "A"}), {}, state, 1.0, 0, last_sent_ms=last_sent,
              resolved_at_ms=resolved)
    assert needs_sending(a, t, 60) is expected


def test_eval_recording_duplicate_labels() -> None:
    vec = Vector([Labels({"__name__": "a", "j": "1"}), Labels({"__name__": "b", "j": "1"})],
                 np.ones((2, 1)), np.ones((2, 1), bool))
    with pytest.raises(RuleError, match="same labelset after applying rule labels"):
        eval_recording(RecordingRule(name="r", expr="x"), vec, 0)
    vec.present[1, 0] = False
    assert eval_recording(RecordingRule(name="r", expr="x"), vec, 5) == [
        Sample(Labels({"__name__": "r", "j": "1"}), 5, 1.0)]
