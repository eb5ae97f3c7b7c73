"""The live rule manager: group alignment, for-state restore after a restart (directory store),
reload keeping alert state, the timers on a short interval, metrics and API views."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import xxhash
from prometheus_client import CollectorRegistry

from promlab.model import Labels, Matcher, MatchType
from promlab.rules.group import GroupState
from promlab.rules.manager import RuleManager, eval_timestamp, group_offset_ns
from promlab.rules.query import query_funcs
from promlab.rules.restore import restore_for_state
from promlab.rules.rule import AlertingRule, RecordingRule, RuleGroup
from promlab.storage import MemoryStorage
from promlab.storage.store import open_store

MIN = 60_000
T0 = 1_700_000_000_000


@pytest.mark.parametrize("interval_ms", [200, 15_000, 60_000, 3_600_000])
@pytest.mark.parametrize(("name", "file"), [("g", ""), ("node", "/etc/prometheus/rules.yml")])
def test_eval_timestamp_alignment(interval_ms: int, name: str, file: str) -> None:
    g = RuleGroup(name=name, file=file, interval_ms=interval_ms)
    interval = interval_ms * 1_000_000
    # Prometheus's labels.Hash of {file, name}: xxhash64 over sorted "name\xffvalue\xff" pairs.
    # The separator is the byte 0xff (not the UTF-8 encoding of U+00FF).
    data = b"file\xff" + file.encode() + b"\xffname\xff" + name.encode() + b"\xff"
    expected_offset = xxhash.xxh64_intdigest(data) % interval
    assert group_offset_ns(g) == expected_offset
    for start in (T0 * 1_000_000, T0 * 1_000_000 + 123_456_789, expected_offset, 10 * interval + expected_offset):
        ts = eval_timestamp(g, start)
        assert ts <= start < ts + interval
        assert (ts - expected_offset) % interval == 0


def _alert_group(for_ms: int) -> RuleGroup:
    return RuleGroup(name="g", file="r.yml", interval_ms=MIN,
                     rules=(AlertingRule(name="X", expr="x > 0", for_ms=for_ms),))


@pytest.mark.parametrize(("for_min", "down_min", "up_min", "expected_active_min"), [
    # pending 10 of 30 min when the server went down at 10; back at 15; restored at 16:
    # the outage does not count, active_at moves forward by 16 - 10 = 6 min.
    pytest.param(30, 10, 15, 6, id="outage-not-counted"),
    # 5 min left (< grace period 10m): fires 10 min after the restore.
    pytest.param(30, 25, 26, 27 + 10 - 30, id="grace-period"),
    # had been firing: the old active_at comes back.
    pytest.param(30, 40, 45, 0, id="was-firing"),
    # down longer than the outage tolerance (1h): active_at stays the first evaluation's.
    pytest.param(30, 10, 75, 75, id="beyond-outage-tolerance"),
    # for shorter than the grace period: never restored.
    pytest.param(5, 3, 4, 4, id="short-for"),
])
def test_restore_for_state_after_restart(tmp_path: Path, for_min: int, down_min: int,
                                         up_min: int, expected_active_min: int) -> None:
    data = tmp_path / "data"
    x = Labels({"__name__": "x", "job": "a"})
    store = open_store(data, ooo_window="1d")
    try:
        app = store.appender()
        for m in range(100):
            app.append(x, T0 + m * MIN, 1.0)
        app.commit()
        state = GroupState(_alert_group(for_min * MIN))
        q, app = query_funcs(store)[0], store.appender()
        for m in range(0, down_min + 1):
            state.eval(T0 + m * MIN, q, app)
    finally:
        store.close()
    store = open_store(data, ooo_window="1d")  # the restart
    try:
        state = GroupState(_alert_group(for_min * MIN), restored=False)
        q, app = query_funcs(store)[0], store.appender()
        state.eval(T0 + up_min * MIN, q, app)
        state.eval(T0 + (up_min + 1) * MIN, q, app)
        querier = store.querier(T0 + up_min * MIN, T0 + 200 * MIN)
        assert querier.select([Matcher(MatchType.EQUAL, "__name__", "ALERTS")]).num_samples == 0
        querier.close()
        st = state.alerting[0]
        assert st is not None
        restore_for_state([st], store, T0 + (up_min + 1) * MIN)
        assert st.restored
        assert [a.active_at_ms for a in st.active_alerts()] == [T0 + expected_active_min * MIN]
    finally:
        store.close()


def test_reload_keeps_state_of_rules_with_same_name_and_labels() -> None:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "x", "job": "a"}), [T0], [1.0])
    mgr = RuleManager(st, clock_ns=lambda: T0 * 1_000_000)
    g1 = RuleGroup(name="g", file="f", rules=(
        AlertingRule(name="X", expr="x > 0", for_ms=10 * MIN),
        RecordingRule(name="gone", expr="x"),
    ))
    other = RuleGroup(name="other", file="f", rules=(RecordingRule(name="o", expr="x"),))
    mgr.update([g1, other])
    s1, s_other = mgr.group_states()
    s1.mark_restored()
    for t in (T0 + 1000, T0 + 2000):
        mgr.eval_once(s1, t)
    # The expression changes and a rule goes: the alert keeps its active_at, the removed rule's
    # series will be marked stale at the next evaluation.
    g2 = RuleGroup(name="g", file="f", rules=(AlertingRule(name="X", expr="x >= 1", for_ms=10 * MIN),))
    mgr.update([g2, other])
    s2, s_other2 = mgr.group_states()
    assert s_other2 is s_other and s2 is not s1
    assert [a.active_at_ms for a in s2.alerts()] == [T0 + 1000]
    assert s2.stale_series == [Labels({"__name__": "gone", "job": "a"})]
    mgr.eval_once(s2, T0 + 3000)
    assert s2.stale_series == []
    assert [a.active_at_ms for a in s2.alerts()] == [T0 + 1000]
    # A renamed alert is a new rule: its alerts start over.
    mgr.update([RuleGroup(name="g", file="f", rules=(AlertingRule(name="Y", expr="x"),)), other])
    assert mgr.group_states()[0].alerts() == []


def test_live_manager_aligned_metrics_and_views() -> None:
    st = MemoryStorage()
    now = time.time_ns() // 1_000_000
    st.add_series(Labels({"__name__": "x", "job": "a"}), [now - 1000], [1.0])
    reg = CollectorRegistry()
    mgr = RuleManager(st, registry=reg)
    g = RuleGroup(name="live", file="t.yml", interval_ms=200, rules=(
        RecordingRule(name="x:copy", expr="x"),
        AlertingRule(name="X", expr="x:copy > 0", annotations={"s": "v={{ $value }}"}),
        AlertingRule(name="Dup", expr='{__name__=~"x|x:copy"}'),  # one label set twice
    ))
    mgr.update([g])
    mgr.start()
    try:
        deadline = time.monotonic() + 20
        key = {"rule_group": "t.yml;live"}
        while time.monotonic() < deadline:
            if (reg.get_sample_value("prometheus_rule_group_iterations_total", key) or 0) >= 4:
                break
            time.sleep(0.05)
    finally:
        mgr.stop()
    iterations = reg.get_sample_value("prometheus_rule_group_iterations_total", key)
    assert iterations is not None and iterations >= 4
    assert reg.get_sample_value("prometheus_rule_evaluations_total", key) == 3 * iterations
    assert reg.get_sample_value("prometheus_rule_evaluation_failures_total", key) == iterations
    assert reg.get_sample_value("prometheus_rule_group_interval_seconds", key) == 0.2
    assert reg.get_sample_value("prometheus_rule_group_rules", key) == 3
    # Every evaluation time is on the group's phase.
    q = st.querier(0, 2**62)
    ss = q.select([Matcher(MatchType.EQUAL, "__name__", "x:copy")])
    offset_ms = group_offset_ns(g) // 1_000_000
    ts = ss.series(0)[1]
    assert len(ts) >= 4 and all((int(t) - offset_ms) % 200 == 0 for t in ts)
    groups = mgr.rules_data()
    rules = groups[0]["rules"]
    assert [(r["name"], r["type"], r["health"]) for r in rules] == [
        ("x:copy", "recording", "ok"), ("X", "alerting", "ok"), ("Dup", "alerting", "err")]
    assert rules[1]["state"] == "firing" and rules[1]["alerts"][0]["annotations"] == {"s": "v=1"}
    assert "same labelset" in rules[2]["lastError"]
    alerts = mgr.alerts_data()
    assert [(a["labels"], a["state"], a["value"]) for a in alerts] == [
        ({"alertname": "X", "job": "a"}, "firing", "1e+00")]
