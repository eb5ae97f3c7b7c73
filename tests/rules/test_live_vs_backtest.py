"""The live rule manager and the backtest write IDENTICAL ``ALERTS`` / ``ALERTS_FOR_STATE`` series
on the same data (issue 9).

The live side is :class:`~promlab.rules.manager.RuleManager` driven on a simulated clock: each
group's :class:`~promlab.rules.group.GroupState` is evaluated through ``eval_once`` at its
evaluation times, writing into the store it reads (as the manager's timer thread does, including
the ``for``-state restore after the second evaluation). The backtest side is
:func:`~promlab.rules.backtest.run_groups` over a second store holding the same input: one range
query per rule, the state machine on arrays. Both see a recording rule chain, ``for``,
``keep_firing_for``, value-dependent labels (a new alert identity when the value crosses a
level), a label template calling ``query`` (answered at each evaluation's time), a templated label expanding to "" (kept as template text in ``ALERTS``), a rule reading
``ALERTS``, a group with ``query_offset`` and a series with a gap. Besides
the samples, the live staleness markers are checked against where the backtest's series end.
Recording rules are compared with :func:`~promlab.rules.backfill.backfill` of the same rules.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.value import is_stale
from promlab.rules.backfill import backfill
from promlab.rules.backtest import run_groups
from promlab.rules.manager import RuleManager
from promlab.rules.rule import AlertingRule, RecordingRule, RuleGroup
from promlab.storage import MemoryStorage, open_store
from promlab.storage.interface import Storage

MIN = 60_000
START = 1_700_000_000_000 // MIN * MIN  # a real-looking epoch, aligned to the minute
STEPS = 90

GROUPS = [
    RuleGroup(name="errors", interval_ms=MIN, labels={"team": "web"}, rules=(
        RecordingRule(name="instance:errors:rate2m", expr="rate(errors_total[2m])"),
        AlertingRule(name="HighErrors", expr="instance:errors:rate2m > 0.5", for_ms=3 * MIN,
                     keep_firing_for_ms=2 * MIN,
                     labels={"severity": "page", "where": "{{ $labels.instance }}"},
                     annotations={"summary": "{{ $value | humanize }} errors/s"}),
        AlertingRule(name="ErrorLevel", expr="instance:errors:rate2m > 0.8",
                     labels={"level": "{{ if gt $value 1.5 }}high{{ else }}low{{ end }}"}),
        # A label template calling `query`: its answer changes with the evaluation time, so
        # each evaluation gets its own (the backtest once expanded it at the first step only).
        AlertingRule(name="Load", expr="instance:errors:rate2m > 0.5", labels={
            "load": '{{ with query "sum(rate(errors_total[2m]))" }}'
                    '{{ if gt (. | first | value) 2.5 }}heavy{{ else }}light{{ end }}{{ end }}'}),
        AlertingRule(name="ManyFiring", expr='count(ALERTS{alertstate="firing", alertname=~"HighErrors|ErrorLevel"}) > 2',
                     for_ms=MIN),
        # A templated label that expands to "": the alert lacks it, but its ALERTS series keep
        # the template text (Prometheus builds them on the rule's unexpanded labels).
        AlertingRule(name="Unowned", expr="instance:errors:rate2m > 1",
                     labels={"owner": "{{ $labels.owner }}", "severity": "ticket"}),
    )),
    # Failed evaluations: "either" gets two series with one label set while other_total
    # exists (Prometheus fails the rule there: nothing written, nothing marked stale), and
    # "hot" has more series than the group's limit while all three instances burst.
    RuleGroup(name="failing", interval_ms=MIN, limit=2, rules=(
        RecordingRule(name="either", expr='{__name__=~"errors_total|other_total", instance="a"}'),
        RecordingRule(name="hot", expr="rate(errors_total[2m]) > 0.5"),
        AlertingRule(name="EitherSeen", expr="rate(either[3m]) > 0.5"),
    )),
    RuleGroup(name="offset", interval_ms=2 * MIN, query_offset_ms=30_000, rules=(
        AlertingRule(name="Silent", expr="rate(errors_total[3m]) == 0", for_ms=4 * MIN),
    )),
]


def _rate_pattern(instance: str) -> np.ndarray:
    """Errors per second at each minute: quiet at first (nothing fires during the manager's
    first two evaluations, before it restores the for state), then bursts."""
    rng = np.random.default_rng(sum(map(ord, instance)))
    rate = np.full(STEPS + 5, 0.1)
    for lo, hi in {"a": [(10, 25), (40, 43), (60, 75)], "b": [(15, 30), (33, 50)], "c": [(20, 22), (70, 85)]}[instance]:
        rate[lo:hi] = rng.uniform(0.6, 2.5, hi - lo)
    if instance == "c":
        rate[45:55] = 0.0  # a quiet spell: Silent fires
    return rate


def _fill(store: Storage) -> None:
    app = store.appender()
    for inst in ("a", "b", "c"):
        rate = _rate_pattern(inst)
        total = 0.0
        ls = Labels({"__name__": "errors_total", "instance": inst, "job": "app"})
        for i in range(-5, STEPS):  # 15 s scrapes from 5 min before the first evaluation
            for k in range(4):
                t = START + i * MIN + k * 15_000
                if inst == "b" and 52 <= i < 56:
                    continue  # a scrape gap: b's series disappears for a while
                total += rate[max(i, 0)] * 15
                app.append(ls, t, total)
                if inst == "a" and 30 <= i < 40:
                    app.append(Labels({"__name__": "other_total", "instance": "a", "job": "app"}), t, 1.0)
    app.commit()


def _store(kind: str, path: Path) -> Storage:
    # The whole history is written first and the live manager then evaluates from its start:
    # its writes lie before the head's minimum valid time, so the store takes any timestamp
    # (no window limit), as a store backfilled with history would.
    st: Storage = MemoryStorage() if kind == "memory" else open_store(path, ooo_window=None)
    _fill(st)
    return st


def _samples(store: Storage, names: tuple[str, ...]) -> dict[Labels, list[tuple[int, float]]]:
    q = store.querier(START - MIN, START + STEPS * MIN)
    out: dict[Labels, list[tuple[int, float]]] = {}
    try:
        for name in names:
            ss = q.select([Matcher(MatchType.EQUAL, "__name__", name)])
            for i in range(len(ss)):
                ls, ts, vs = ss.series(i)
                out[ls] = list(zip(np.asarray(ts).tolist(), np.asarray(vs).tolist(), strict=True))
    finally:
        q.close()
    return out


def _live(store: Storage) -> RuleManager:
    now = [START]
    mgr = RuleManager(store, clock_ns=lambda: now[0] * 1_000_000)
    mgr.update(GROUPS)
    states = mgr.group_states()
    assert not any(s.restored for s in states if s.alerting)  # a fresh manager restores first
    done = dict.fromkeys(range(len(states)), 0)
    for t in range(START, START + STEPS * MIN, MIN):
        now[0] = t
        for i, state in enumerate(states):
            if (t - START) % state.group.interval_ms:
                continue
            mgr.eval_once(state, t)
            done[i] += 1
            if done[i] == 2:  # as the manager's timer does after two evaluations
                mgr.restore(state)
    assert all(s.restored for s in states)
    return mgr


def _backtest(store: Storage) -> dict[Labels, list[tuple[int, float]]]:
    out: dict[Labels, list[tuple[int, float]]] = {}
    end = START + (STEPS - 1) * MIN
    for g, _state, tl, _vec in run_groups(GROUPS, START, end, data=store):
        # the offset group evaluates every 2 min: its range ends at its last evaluation
        for ls, ts, vs in tl.series():
            assert ls not in out
            out[ls] = list(zip(ts.tolist(), vs.tolist(), strict=True))
        assert (g.interval_ms, len(tl.eval_ms)) in ((MIN, STEPS), (2 * MIN, STEPS // 2))
    return out


@pytest.mark.parametrize("kind", ["memory", "parquet"])
def test_live_manager_and_backtest_write_identical_alerts(kind: str, tmp_path: Path) -> None:
    live_store = _store(kind, tmp_path / "live")
    bt_store = _store(kind, tmp_path / "backtest")
    try:
        _live(live_store)
        live_all = _samples(live_store, ("ALERTS", "ALERTS_FOR_STATE"))
        want = _backtest(bt_store)

        live = {ls: [(t, v) for t, v in s if not is_stale(v)] for ls, s in live_all.items()}
        live = {ls: s for ls, s in live.items() if s}
        assert sorted(live) == sorted(want)
        for ls in want:
            assert live[ls] == want[ls], str(ls)

        # The data exercises what it should: each rule fires, alerts resolve and come back,
        # the value-dependent label switches, the offset group writes 30 s before its evaluations.
        names = {(ls["alertname"], ls.get("alertstate", "")) for ls in want}
        for name in ("HighErrors", "ErrorLevel", "ManyFiring", "Silent", "Unowned", "EitherSeen"):
            assert (name, "firing") in names, name
        assert {ls.get("owner") for ls in want if ls["alertname"] == "Unowned"} == {"{{ $labels.owner }}"}
        assert {ls["level"] for ls in want if ls["alertname"] == "ErrorLevel"} == {"high", "low"}
        silent = [t for ls, s in want.items() if ls["alertname"] == "Silent" for t, _ in s]
        assert silent and all(t % (2 * MIN) == 2 * MIN - 30_000 - START % (2 * MIN) for t in silent)
        episodes = sum(1 for ls, s in want.items() if ls["__name__"] == "ALERTS" and ls["alertstate"] == "firing"
                       for i, (t, _) in enumerate(s) if i == 0 or t - s[i - 1][0] > 2 * MIN)
        assert episodes >= 6

        # Staleness markers: where (and only where) a backtest series stops before the end.
        for ls, s in live_all.items():
            stale = [t for t, v in s if is_stale(v)]
            step = 2 * MIN if ls["alertname"] == "Silent" else MIN
            times = [t for t, _ in want[ls]]
            last_write = START + (STEPS - 1) * MIN - (30_000 if ls["alertname"] == "Silent" else 0)
            if ls["alertname"] == "Silent":
                last_write = max(t for t in range(START - 30_000, last_write + 1, step))
            ends = [t + step for i, t in enumerate(times)
                    if (i + 1 == len(times) or times[i + 1] - t > step) and t + step <= last_write]
            assert stale == ends, str(ls)

        # Recording rules: the live output equals a backfill of the same rules.
        backfill(GROUPS, START, START + (STEPS - 1) * MIN, data=bt_store, progress=False)
        rec_live = _samples(live_store, ("instance:errors:rate2m", "either", "hot"))
        rec_back = _samples(bt_store, ("instance:errors:rate2m", "either", "hot"))
        assert sorted(rec_live) == sorted(rec_back) and len(rec_live) == 3 + 1 + 3
        # the failing group did fail: evaluations missing from "either" and from every "hot"
        either = [t for ls, s in rec_back.items() if ls["__name__"] == "either" for t, _ in s]
        assert len(either) < STEPS and START + 29 * MIN in either and START + 35 * MIN not in either
        hot_steps = {t for ls, s in rec_back.items() if ls["__name__"] == "hot" for t, _ in s}
        assert START + 21 * MIN not in hot_steps and START + 12 * MIN in hot_steps
        for ls, s in rec_back.items():
            got = [(t, v) for t, v in rec_live[ls] if not is_stale(v)]
            assert [t for t, _ in got] == [t for t, _ in s], str(ls)
            assert all(math.isclose(a, b, rel_tol=1e-12) for (_, a), (_, b) in zip(got, s, strict=True))
    finally:
        for st in (live_store, bt_store):
            close = getattr(st, "close", None)
            if close is not None:
                close()
