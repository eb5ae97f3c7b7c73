"""Differential check: the alert notifications a real Prometheus 2.42 POSTs to Alertmanager and
the ones promlab's rule manager + notifier POST, for the same rules over the same live data;
then ``/api/v1/alerts`` and ``/api/v1/rules`` of both for the same state.

One exporter (a thread) serves gauges that change on the rule group's evaluation grid; Prometheus
and a promlab Session both scrape it every second and evaluate one rule file every second (same
file path and group name, so the same evaluation times), each posting to its own capture server.

Why ``offset 3s`` and a grid-aligned exporter: the evaluation at ``T`` sees the latest sample
scraped in ``(T-4s, T-3s]``, committed long before, whose value depends only on which second of
the *evaluation* grid it was scraped in; so both see the same values at the same times provided
neither scraper's phase sits on an evaluation-grid boundary. The group name is chosen (after
measuring both scrapers' phases) to keep its evaluation phase away from them; the rule file is
empty until then and is loaded by a reload, so Prometheus does not wait to restore ``for`` state.

The fast tests after it pin each difference that check found (regression tests, no binaries).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import Session
from promlab.config import load_config
from promlab.discovery import TargetGroup
from promlab.errors import StorageError
from promlab.model import Labels
from promlab.rules.alerting import Alert, AlertState
from promlab.rules.amtargets import alertmanager_targets, targets_from_groups
from promlab.rules.group import GroupState
from promlab.rules.manager import RuleManager, group_offset_ns
from promlab.rules.notifier import Notifier, NotifierAlert
from promlab.rules.query import query_funcs
from promlab.rules.rule import AlertingRule, RuleGroup
from promlab.rules.views import alert_json, format_time, group_json
from promlab.storage import MemoryStorage

RUN_SECONDS = 24
RESEND = "2s"
EXTERNAL_URL = "http://prom.example:9090/sub"
N_MANY = 70  # more than Prometheus 2.42's 64 alerts per POST

RULES = """\
groups:
- name: {name}
  interval: 1s
  rules:
  - alert: High
    expr: demo_value  offset 3s>8
    for: 3s
    labels:
      severity: page
      level: '{{{{ if gt $value 9.5 }}}}high{{{{ else }}}}mid{{{{ end }}}}'
    annotations:
      summary: '{{{{ $labels.series }}}} at {{{{ $value }}}} ({{{{ $value | humanize }}}}) in {{{{ $externalLabels.cluster }}}}'
      link: '{{{{ $externalURL }}}}/alerts'
      sum: '{{{{ with query "sum(demo_value offset 3s)" }}}}{{{{ . | first | value | humanize }}}}{{{{ end }}}}'
      dur: '{{{{ 3661 | humanizeDuration }}}}'
  - alert: Keep
    expr: demo_value offset 3s > 5
    keep_firing_for: 2s
  - alert: Many
    expr: demo_many offset 3s > 0
"""


def values(m: int) -> dict[str, float]:
    """The gauges at evaluation-grid second ``m`` after the gate: a is 10 for 6 s of every 12
    (High fires, level high, resolves); d is 9 for 5 s of every 10 (High fires, level mid);
    b is 9 for 2 s of every 7, else 7 (High pending, never firing, so never sent; Keep firing,
    but dropped by alert relabelling); c is 6 for 1 s of every 4 (Keep held by
    keep_firing_for, resolved, firing again)."""
    return {"a": 10.0 if m % 12 < 6 else 0.0, "b": 9.0 if m % 7 < 2 else 7.0,
            "c": 6.0 if m % 4 < 1 else 0.0, "d": 9.0 if m % 10 < 5 else 0.0}


class _Exporter(BaseHTTPRequestHandler):
    phase_s: float = 0.0  # the evaluation grid's phase in the second (set once chosen)
    gate: float = math.inf  # the grid second before which every gauge is 0
    hits: list[tuple[str, float]]

    def do_GET(self) -> None:
        now = time.time()
        self.hits.append((self.headers.get("User-Agent", ""), now))
        n = math.floor(now - self.phase_s)
        on = n >= self.gate
        vals = values(int(n - self.gate)) if on else dict.fromkeys("abcd", 0.0)
        body = "# TYPE demo_value gauge\n" + "".join(
            f'demo_value{{series="{k}"}} {v}\n' for k, v in vals.items())
        body += "# TYPE demo_many gauge\n" + "".join(
            f'demo_many{{i="{i}"}} {1 if on else 0}\n' for i in range(N_MANY))
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: list[dict[str, Any]]
    at: float


class _Capture(BaseHTTPRequestHandler):
    posts: list[Post]

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.posts.append(Post(self.path, {k.lower(): v for k, v in self.headers.items()},
                               json.loads(raw), time.time()))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[dict[str, Any]]:
    started = []
    out: dict[str, Any] = {}
    for name, base, attrs in [("exporter", _Exporter, {"hits": []}),
                              ("prom", _Capture, {"posts": []}), ("ours", _Capture, {"posts": []})]:
        handler = type(name, (base,), dict(attrs))
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        out[name] = (f"127.0.0.1:{srv.server_address[1]}", handler)
    try:
        yield out
    finally:
        for srv in started:
            srv.shutdown()
            srv.server_close()


def _config(exporter: str, capture: str, rules: Path) -> dict[str, Any]:
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s",
                       "external_labels": {"cluster": "c1", "severity": "ext"}},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [exporter]}]}],
            "alerting": {
                "alert_relabel_configs": [
                    {"source_labels": ["alertname", "series"], "regex": "Keep;b", "action": "drop"},
                    {"target_label": "relabelled", "replacement": "yes"}],
                "alertmanagers": [{"path_prefix": "/am", "api_version": "v2",
                                   "static_configs": [{"targets": [capture]}]}]}}


def _circular_gap(a: float, b: float) -> float:
    d = abs(a - b) % 1.0
    return min(d, 1.0 - d)


def _pick_group(file: str, scrape_phases: list[float]) -> tuple[str, float]:
    """A group name whose evaluation phase is far from every scraper's phase."""
    best = ("", 0.0, -1.0)
    for i in range(200):
        name = f"cmp{i}"
        phase = group_offset_ns(RuleGroup(name=name, file=file, interval_ms=1000)) / 1e9
        gap = min(_circular_gap(phase, p) for p in scrape_phases)
        if gap > best[2]:
            best = (name, phase, gap)
        if gap > 0.3:
            break
    return best[0], best[1]


def _phase(times: list[float]) -> float:
    # The circular mean of the request times' fractions (requests follow the scrape time by ms).
    angles = [2 * math.pi * (t % 1.0) for t in times[-4:]]
    x, y = sum(map(math.cos, angles)), sum(map(math.sin, angles))
    return (math.atan2(y, x) / (2 * math.pi)) % 1.0


Key = tuple[tuple[str, str], ...]


def _stream(posts: list[Post]) -> dict[Key, list[dict[str, Any]]]:
    """Every alert notification, grouped by alert labels, in arrival order."""
    out: dict[Key, list[dict[str, Any]]] = {}
    for p in posts:
        for a in p.body:
            out.setdefault(tuple(sorted(a["labels"].items())), []).append(a)
    return out


def _run(tmp_path: Path, servers: dict[str, Any]) -> dict[str, Any]:
    realprom.require_binary("prometheus")
    exporter, ehandler = servers["exporter"]
    prom_cap, prom_h = servers["prom"]
    ours_cap, ours_h = servers["ours"]
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    extra = [f"--rules.alert.resend-delay={RESEND}", f"--web.external-url={EXTERNAL_URL}",
             "--web.route-prefix=/"]
    ours_cfg = tmp_path / "ours.yml"
    ours_cfg.write_text(json.dumps(_config(exporter, ours_cap, rules)))
    with realprom.prometheus(config=_config(exporter, prom_cap, rules), extra_args=extra) as prom:
        session = Session(tmp_path / "data", config=ours_cfg, external_url=EXTERNAL_URL, progress=False)
        try:
            session.scrape.start()
            deadline = time.time() + 15
            by_ua: dict[str, list[float]] = {}
            while time.time() < deadline and (len(by_ua) < 2 or min(map(len, by_ua.values())) < 3):
                time.sleep(0.2)
                by_ua = {}
                for ua, t in list(ehandler.hits):
                    by_ua.setdefault(ua, []).append(t)
            assert len(by_ua) == 2, by_ua.keys()
            name, phase = _pick_group(str(rules), [_phase(ts) for ts in by_ua.values()])
            ehandler.phase_s = phase
            rules.write_text(RULES.format(name=name))
            assert prom.post("/-/reload").status_code == 200
            session.rules.start(resend_delay=RESEND)
            server = session.serve("127.0.0.1:0")
            # A reload makes Prometheus rediscover its Alertmanagers (up to 5 s): open the gate
            # once it has, so that both send from the first firing evaluation on.
            deadline = time.time() + 15
            while time.time() < deadline and prom.metric("prometheus_notifications_alertmanagers_discovered") < 1:
                time.sleep(0.25)
            ehandler.gate = math.floor(time.time() - phase) + 2
            time.sleep(RUN_SECONDS)
            # Both APIs right after the same evaluation (0.4 s past the grid); notifications
            # are compared up to that evaluation.
            time.sleep((phase + 0.4 - time.time()) % 1.0)
            cutoff = time.time()
            theirs_api = {p: prom.get(f"/api/v1/{p}").json() for p in ("alerts", "rules")}
            ours_api = {p: httpx.get(f"{server.url}/api/v1/{p}").json() for p in ("alerts", "rules")}
        finally:
            session.close()
    return {"prom": [p for p in prom_h.posts if p.at < cutoff],
            "ours": [p for p in ours_h.posts if p.at < cutoff],
            "theirs_api": theirs_api, "ours_api": ours_api}


def _ms(text: str) -> int:
    """An RFC 3339 time (any fraction digits, ``Z``) as unix ms, the fraction truncated."""
    whole, _, frac = text.rstrip("Z").partition(".")
    sec = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return int(sec) * 1000 + int((frac + "000")[:3])


def _norm_alert(a: dict[str, Any]) -> dict[str, Any]:
    """An API alert with its times in ms (Prometheus's have ns: its evaluation times do)."""
    out = dict(a)
    for k in ("activeAt", "keepFiringSince"):
        if k in out:
            out[k] = _ms(out[k])
    return out


def _key(a: dict[str, Any]) -> str:
    return json.dumps(a["labels"], sort_keys=True)


@pytest.mark.realprom
def test_notifications_and_api_match_prometheus(tmp_path: Path, servers: dict[str, Any]) -> None:
    got = _run(tmp_path, servers)
    theirs, ours = got["prom"], got["ours"]
    # Transport: path (path_prefix + v2), JSON body; batches: 2.42 cut at 64 alerts a POST,
    # promlab follows Prometheus 3 (256, --alertmanager.notification-batch-size).
    assert {p.path for p in theirs} == {p.path for p in ours} == {"/am/api/v2/alerts"}
    assert {p.headers["content-type"] for p in theirs + ours} == {"application/json"}
    assert all(p.headers["user-agent"].startswith("Prometheus/") for p in theirs)
    assert max(len(p.body) for p in theirs) == 64
    assert N_MANY <= max(len(p.body) for p in ours) <= 256
    # Every notification of every alert, in order: labels (external labels, relabelling),
    # annotations (templates), startsAt, endsAt (valid-until or resolution), generatorURL,
    # resend cadence, keep_firing_for, pending alerts never sent.
    t_stream, o_stream = _stream(theirs), _stream(ours)
    names = {(dict(k)["alertname"], dict(k).get("series"), dict(k).get("level")) for k in t_stream}
    assert {("High", "a", "high"), ("High", "d", "mid"), ("Keep", "a", None), ("Keep", "c", None)} <= names
    assert ("High", "b", "mid") not in names and ("Keep", "b", None) not in names
    assert sum(1 for k in t_stream if dict(k)["alertname"] == "Many") == N_MANY
    assert sorted(t_stream) == sorted(o_stream)
    for k, t_alerts in t_stream.items():
        assert t_alerts == o_stream[k], dict(k)
    url = next(a["generatorURL"] for k, v in t_stream.items() for a in v if dict(k)["alertname"] == "High")
    assert url == f"{EXTERNAL_URL}/graph?g0.expr=demo_value+offset+3s+%3E+8&g0.tab=1"
    # APIs: the same alerts and rules in the same shapes.
    t_api, o_api = got["theirs_api"], got["ours_api"]
    t_alerts = sorted(map(_norm_alert, t_api["alerts"]["data"]["alerts"]), key=_key)
    o_alerts = sorted(map(_norm_alert, o_api["alerts"]["data"]["alerts"]), key=_key)
    assert len(t_alerts) >= N_MANY and o_alerts == t_alerts
    (t_group,), (o_group,) = t_api["rules"]["data"]["groups"], o_api["rules"]["data"]["groups"]
    assert set(o_group) == set(t_group)
    assert abs(_ms(o_group["lastEvaluation"]) - _ms(t_group["lastEvaluation"])) < 1000
    for k in ("name", "file", "interval", "limit"):
        assert o_group[k] == t_group[k], k
    assert len(o_group["rules"]) == len(t_group["rules"])
    for t_rule, o_rule in zip(t_group["rules"], o_group["rules"], strict=True):
        assert set(o_rule) == set(t_rule), t_rule["name"]
        assert abs(_ms(o_rule["lastEvaluation"]) - _ms(t_rule["lastEvaluation"])) < 1000
        for k in set(t_rule) - {"lastEvaluation", "evaluationTime", "alerts"}:
            assert o_rule[k] == t_rule[k], k
        for k in ("labels", "annotations"):  # in name order, as Go's label sets
            assert list(o_rule.get(k, ())) == list(t_rule.get(k, ())), k
        assert sorted(map(_norm_alert, o_rule["alerts"]), key=_key) == \
            sorted(map(_norm_alert, t_rule["alerts"]), key=_key)


# --- regression tests for the differences found ----------------------------------------------------
T0 = 1_700_000_000_000


def _notifier(capture: str) -> Notifier:
    alerting = load_config({"alerting": {"alertmanagers": [
        {"static_configs": [{"targets": [capture]}]}]}}).alerting
    return Notifier(alerting)


def _one_series_store() -> MemoryStorage:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "x", "job": "a"}), [T0 - 1000], [2.0])
    return st


def test_generator_url_links_the_expression_as_prometheus_prints_it(servers: dict[str, Any]) -> None:
    capture, handler = servers["ours"]
    st = _one_series_store()
    n = _notifier(capture)
    mgr = RuleManager(st, notifier=n, external_url="http://h:9090")
    state = GroupState(RuleGroup(name="g", rules=(AlertingRule(name="X", expr="x  >1"),)))
    try:
        mgr.eval_once(state, T0)
        assert n.flush(10)
    finally:
        n.stop()
    (post,) = handler.posts
    assert post.body[0]["generatorURL"] == "http://h:9090/graph?g0.expr=x+%3E+1&g0.tab=1"


@pytest.mark.parametrize(("alert", "want"), [
    pytest.param(NotifierAlert(Labels({"alertname": "A"}), {}, T0, T0 + 1, ""),
                 {"labels": {"alertname": "A"}, "startsAt": "2023-11-14T22:13:20.000Z",
                  "endsAt": "2023-11-14T22:13:20.001Z"}, id="empty-annotations-and-url-omitted"),
    pytest.param(NotifierAlert(Labels({"alertname": "A"}), {"s": "v"}, T0, None, "http://h/graph"),
                 {"labels": {"alertname": "A"}, "annotations": {"s": "v"},
                  "startsAt": "2023-11-14T22:13:20.000Z", "generatorURL": "http://h/graph"},
                 id="set-fields-kept"),
])
def test_v2_payload_omits_empty_fields_as_prometheus(alert: NotifierAlert, want: dict[str, Any]) -> None:
    assert alert.to_json() == want


def _alerts(count: int) -> list[NotifierAlert]:
    return [NotifierAlert(Labels({"alertname": "A", "i": str(i)}), {}, T0, T0 + 1, "")
            for i in range(count)]


def test_batches_of_up_to_256_alerts(servers: dict[str, Any]) -> None:
    capture, handler = servers["ours"]
    n = _notifier(capture)
    try:
        n.send(_alerts(300))
        assert n.flush(10)
    finally:
        n.stop()
    assert sorted(len(p.body) for p in handler.posts) == [44, 256]


def test_stop_sends_what_is_queued(servers: dict[str, Any]) -> None:
    capture, handler = servers["ours"]
    n = _notifier(capture)
    n.send(_alerts(1000))
    n.stop(10)  # right away: 4 batches are still queued or under way
    assert sum(len(p.body) for p in handler.posts) == 1000
    url = f"http://{capture}/api/v2/alerts"
    assert n.metrics.dropped.labels(url)._value.get() == 0


@pytest.mark.parametrize(("ms", "want"), [
    pytest.param(T0, "2023-11-14T22:13:20Z", id="whole-second"),
    pytest.param(T0 + 500, "2023-11-14T22:13:20.5Z", id="trailing-zeros-trimmed"),
    pytest.param(T0 + 120, "2023-11-14T22:13:20.12Z", id="one-zero-trimmed"),
    pytest.param(T0 + 7, "2023-11-14T22:13:20.007Z", id="millis"),
    pytest.param(None, "0001-01-01T00:00:00Z", id="never"),
])
def test_api_times_as_go_marshals_them(ms: int | None, want: str) -> None:
    assert format_time(ms) == want


@pytest.mark.parametrize(("value", "want"), [
    pytest.param(1.0, "1e+00", id="one"), pytest.param(0.25, "2.5e-01", id="fraction"),
    pytest.param(1234.5, "1.2345e+03", id="big"), pytest.param(-7.0, "-7e+00", id="negative"),
])
def test_api_alert_value_is_shortest_e(value: float, want: str) -> None:
    a = Alert(Labels({"alertname": "A"}), {"z": "1", "a": "2"}, AlertState.FIRING, value, T0)
    got = alert_json(a)
    assert got["value"] == want and list(got["annotations"]) == ["a", "z"]


def test_api_rule_unknown_before_its_first_evaluation_and_sorted_labels() -> None:
    rule = AlertingRule(name="X", expr="x > 1", labels={"b": "1", "a": "2"},
                        annotations={"z": "1", "y": "2"})
    state = GroupState(RuleGroup(name="g", rules=(rule,)))
    (r,) = group_json(state)["rules"]
    assert r["state"] == "unknown" and list(r["labels"]) == ["a", "b"] and list(r["annotations"]) == ["y", "z"]
    query, _ = query_funcs(MemoryStorage())
    state.eval(T0, query, MemoryStorage().appender())
    assert group_json(state)["rules"][0]["state"] == "inactive"


def test_firing_alert_goes_back_to_pending_when_a_reload_raises_for() -> None:
    st = _one_series_store()
    query, _ = query_funcs(st)
    sent: list[list[Alert]] = []
    old = GroupState(RuleGroup(name="g", rules=(AlertingRule(name="X", expr="x > 1"),)))
    old.eval(T0, query, st.appender(), notify=lambda _e, a: sent.append(a))
    assert [str(a.state) for a in old.alerts()] == ["firing"] and len(sent) == 1
    new = GroupState(RuleGroup(name="g", rules=(AlertingRule(name="X", expr="x > 1", for_ms=5000),)))
    new.copy_state_from(old)
    new.eval(T0 + 1000, query, st.appender(), notify=lambda _e, a: sent.append(a))
    assert [str(a.state) for a in new.alerts()] == ["pending"] and len(sent) == 1
    new.eval(T0 + 5000, query, st.appender(), notify=lambda _e, a: sent.append(a))
    (fired,) = sent[1]
    assert str(fired.state) == "firing" and fired.fired_at_ms == T0 + 5000


class _FailingCommit:
    """An appender whose commit fails (a store that refuses the write)."""

    def __init__(self, st: MemoryStorage) -> None:
        self.inner = st.appender()

    def append(self, labels: Labels, ts_ms: int, value: float) -> None:
        self.inner.append(labels, ts_ms, value)

    def commit(self) -> Any:
        raise StorageError("disk full")

    def rollback(self) -> None:
        self.inner.rollback()


def test_alerts_are_sent_even_when_the_rule_commit_fails() -> None:
    st = _one_series_store()
    query, _ = query_funcs(st)
    sent: list[list[Alert]] = []
    state = GroupState(RuleGroup(name="g", rules=(AlertingRule(name="X", expr="x > 1"),)))
    res = state.eval(T0, query, _FailingCommit(st), notify=lambda _e, a: sent.append(a))  # type: ignore[arg-type]
    assert res.failures == 1 and state.status[0].health == "err"
    assert [a[0].labels["alertname"] for a in sent] == ["X"]


@pytest.mark.parametrize(("prefix", "want"), [
    pytest.param("/", "http://h:1/api/v2/alerts", id="root"),
    pytest.param("am", "http://h:1/am/api/v2/alerts", id="no-leading-slash"),
    pytest.param("/am/", "http://h:1/am/api/v2/alerts", id="trailing-slash"),
    pytest.param("//am//x/", "http://h:1/am/x/api/v2/alerts", id="doubled-slashes"),
    pytest.param("/a/../b", "http://h:1/b/api/v2/alerts", id="dot-dot"),
])
def test_alerts_path_joined_as_go_path_join(prefix: str, want: str) -> None:
    alerting = load_config({"alerting": {"alertmanagers": [
        {"path_prefix": prefix, "static_configs": [{"targets": ["h:1"]}]}]}}).alerting
    assert [t.url for t in alertmanager_targets(alerting)] == [want]


@pytest.mark.parametrize(("target", "group", "want"), [
    pytest.param({"__address__": "h:1", "__scheme__": "https"}, {}, "http://h:1/api/v2/alerts",
                 id="config-scheme-over-target-label"),
    pytest.param({"__address__": "h:1"}, {"__scheme__": "https", "__alerts_path__": "x"},
                 "https://h:1/x", id="group-labels-over-config"),
])
def test_discovered_alertmanager_label_precedence(target: dict[str, str], group: dict[str, str],
                                                  want: str) -> None:
    am = load_config({"alerting": {"alertmanagers": [{"static_configs": []}]}}).alerting.alertmanagers[0]
    assert [t.url for t in targets_from_groups(am, [TargetGroup((target,), group)])] == [want]
