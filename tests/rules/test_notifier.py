"""The Alertmanager notifier against a local recording HTTP server (path_prefix, basic auth,
external labels, alert_relabel_configs, errors, queue overflow) and a real Alertmanager fed by a
Session's rule manager (templated alert received, kept active across resends, resolved)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from benchmarks import realprom
from promlab import Session
from promlab.config import load_config
from promlab.model import STALE_NAN, Labels
from promlab.rules.notifier import Notifier, NotifierAlert, format_rfc3339_ms, generator_url
from promlab.storage import MemoryStorage
from tests.waiting import wait_for


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], Any]]
    status: int

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.requests.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("H", (_Recorder,), {"requests": [], "status": 200})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}", handler
    finally:
        srv.shutdown()
        srv.server_close()


def _alerting(address: str, **am: Any) -> Any:
    return load_config({"alerting": {
        "alert_relabel_configs": [
            {"source_labels": ["severity"], "regex": "debug", "action": "drop"},
            {"target_label": "via", "replacement": "promlab"},
        ],
        "alertmanagers": [{"static_configs": [{"targets": [address]}], **am}],
    }}).alerting


def test_post_path_prefix_basic_auth_labels_relabel(recorder: tuple[str, type[_Recorder]]) -> None:
    address, handler = recorder
    reg = CollectorRegistry()
    n = Notifier(_alerting(address, path_prefix="/am/", timeout="2s",
                           basic_auth={"username": "u", "password": "p"}),
                 external_labels={"cluster": "c1", "severity": "ext"}, registry=reg)
    try:
        n.send([
            NotifierAlert(Labels({"alertname": "A", "severity": "page"}), {"s": "x"},
                          1_700_000_000_123, 1_700_000_060_000, "http://h:9090/graph"),
            NotifierAlert(Labels({"alertname": "B", "severity": "debug"}), {}, 0, None, ""),
        ])
        assert n.flush(10)
    finally:
        n.stop()
    assert len(handler.requests) == 1
    path, headers, body = handler.requests[0]
    assert path == "/am/api/v2/alerts"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert headers["Content-Type"] == "application/json"
    assert body == [{"labels": {"alertname": "A", "cluster": "c1", "severity": "page", "via": "promlab"},
                     "annotations": {"s": "x"}, "startsAt": "2023-11-14T22:13:20.123Z",
                     "endsAt": "2023-11-14T22:14:20.000Z", "generatorURL": "http://h:9090/graph"}]
    url = f"http://{address}/am/api/v2/alerts"
    assert reg.get_sample_value("prometheus_notifications_sent_total", {"alertmanager": url}) == 1
    # Prometheus 3 shows each Alertmanager's counters from the start, at 0.
    assert reg.get_sample_value("prometheus_notifications_errors_total", {"alertmanager": url}) == 0
    assert reg.get_sample_value("prometheus_notifications_dropped_total", {"alertmanager": url}) == 0
    assert reg.get_sample_value("prometheus_notifications_alertmanagers_discovered") == 1


def test_errors_and_drops_are_counted(recorder: tuple[str, type[_Recorder]]) -> None:
    address, handler = recorder
    handler.status = 500
    reg = CollectorRegistry()
    n = Notifier(_alerting(address), registry=reg, queue_capacity=2)
    try:
        # Five alerts into a queue of two: three dropped at once; the other two fail to send.
        n.send([NotifierAlert(Labels({"alertname": f"A{i}"})) for i in range(5)])
        assert n.flush(10)
    finally:
        n.stop()
    url = f"http://{address}/api/v2/alerts"
    assert [[a["labels"]["alertname"] for a in b] for _, _, b in handler.requests] == [["A3", "A4"]]
    assert reg.get_sample_value("prometheus_notifications_errors_total", {"alertmanager": url}) == 2
    assert reg.get_sample_value("prometheus_notifications_dropped_total", {"alertmanager": url}) == 5
    # 3.x counts only what the Alertmanager took as sent.
    assert reg.get_sample_value("prometheus_notifications_sent_total", {"alertmanager": url}) == 0
    assert reg.get_sample_value("prometheus_notifications_queue_capacity") == 2


def test_format_and_generator_url() -> None:
    assert format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z"
    assert generator_url("http://h:9090", 'up{job="a b"} == 0') == (
        "http://h:9090/graph?g0.expr=up%7Bjob%3D%22a+b%22%7D+%3D%3D+0&g0.tab=1")


RULES = """
groups:
- name: am
  interval: 200ms
  rules:
  - alert: InstanceDown
    expr: up == 0
    labels:
      severity: "{{ if eq $labels.job \\"api\\" }}page{{ else }}ticket{{ end }}"
    annotations:
      summary: "{{ $labels.instance }} of {{ $labels.job }} is down ({{ $value }})"
      link: "{{ $externalURL }}/x"
"""


def test_real_alertmanager_receives_keeps_and_resolves(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    with realprom.alertmanager() as am:
        address = am.url.removeprefix("http://")
        config = {"global": {"external_labels": {"cluster": "test"}},
                  "rule_files": [str(rules)],
                  "alerting": {"alertmanagers": [{"static_configs": [{"targets": [address]}]}]}}
        st = MemoryStorage()
        up = Labels({"__name__": "up", "job": "api", "instance": "i1"})
        st.add_series(up, [time.time_ns() // 1_000_000], [0.0])
        with Session(st, config=config, external_url="http://promlab.test:9090") as s:
            s.rules.start(resend_delay="2s")

            def active() -> list[dict[str, Any]]:
                r = am.get("/api/v2/alerts")
                return [a for a in r.json() if a["labels"].get("alertname") == "InstanceDown"]

            first = wait_for(active, "the alert in Alertmanager", timeout=20)[0]
            assert first["labels"] == {"alertname": "InstanceDown", "cluster": "test", "instance": "i1",
                                       "job": "api", "severity": "page"}
            assert first["annotations"] == {"summary": "i1 of api is down (0)",
                                            "link": "http://promlab.test:9090/x"}
            assert first["generatorURL"].startswith("http://promlab.test:9090/graph?g0.expr=up+%3D%3D+0")
            assert first["status"]["state"] == "active"
            # endsAt is 4 x max(resend delay, interval) = 8 s ahead. A later endsAt after 3 s
            # means a resend arrived; startsAt (the firing time) never changes.
            time.sleep(3.0)
            later = active()
            assert len(later) == 1 and later[0]["startsAt"] == first["startsAt"]
            assert later[0]["endsAt"] > first["endsAt"]
            sent = s.registry.get_sample_value("prometheus_notifications_sent_total",
                                               {"alertmanager": f"{am.url}/api/v2/alerts"})
            assert sent is not None and sent >= 2
            # up ends (staleness marker): the alert resolves and Alertmanager drops it, well
            # before the 8 s endsAt it last got (so by the resolved notification, not expiry).
            app = s.storage.appender()
            app.append(up, time.time_ns() // 1_000_000, STALE_NAN)
            app.commit()
            wait_for(lambda: not active(), "the alert to resolve", timeout=6)
            assert s.rules.alerts().empty


@pytest.fixture
def recorders() -> Iterator[list[tuple[str, type[_Recorder]]]]:
    out, servers = [], []
    for _ in range(2):
        handler = type("H", (_Recorder,), {"requests": [], "status": 200})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        out.append((f"127.0.0.1:{srv.server_address[1]}", handler))
    try:
        yield out
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def test_file_sd_alertmanagers_follow_the_file(tmp_path: Path,
                                               recorders: list[tuple[str, type[_Recorder]]]) -> None:
    """``file_sd_configs`` for Alertmanagers: targets relabelled, the file's edits followed."""
    (a, ha), (b, hb) = recorders
    sd = tmp_path / "am.json"
    sd.write_text(json.dumps([{"targets": [a], "labels": {"env": "prod"}},
                              {"targets": ["127.0.0.1:1"], "labels": {"env": "dev"}}]))
    alerting = load_config({"alerting": {"alertmanagers": [{
        "file_sd_configs": [{"files": [str(sd)], "refresh_interval": "1s"}],
        "relabel_configs": [{"source_labels": ["env"], "regex": "prod", "action": "keep"}],
    }]}}).alerting
    reg = CollectorRegistry()
    n = Notifier(alerting, registry=reg)
    try:
        wait_for(lambda: n.alertmanagers() == [f"http://{a}/api/v2/alerts"], "the file's Alertmanager", timeout=15)
        assert reg.get_sample_value("prometheus_notifications_alertmanagers_discovered") == 1
        n.send([NotifierAlert(Labels({"alertname": "First"}))])
        assert n.flush(10)
        sd.write_text(json.dumps([{"targets": [b], "labels": {"env": "prod"}}]))
        wait_for(lambda: n.alertmanagers() == [f"http://{b}/api/v2/alerts"], "the edited file's Alertmanager", timeout=15)
        n.send([NotifierAlert(Labels({"alertname": "Second"}))])
        assert n.flush(10)
    finally:
        n.stop()
    assert [[x["labels"]["alertname"] for x in body] for _, _, body in ha.requests] == [["First"]]
    assert [[x["labels"]["alertname"] for x in body] for _, _, body in hb.requests] == [["Second"]]


def test_http_sd_alertmanagers(recorders: list[tuple[str, type[_Recorder]]]) -> None:
    """``http_sd_configs`` for Alertmanagers, with a static one beside it (both receive)."""
    (a, ha), (b, hb) = recorders
    groups = json.dumps([{"targets": [b], "labels": {}}]).encode()

    class SD(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(groups)))
            self.end_headers()
            self.wfile.write(groups)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), SD)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    alerting = load_config({"alerting": {"alertmanagers": [
        {"static_configs": [{"targets": [a]}]},
        {"http_sd_configs": [{"url": f"http://127.0.0.1:{srv.server_address[1]}/sd"}],
         "path_prefix": "/am"},
    ]}}).alerting
    n = Notifier(alerting)
    try:
        wait_for(lambda: len(n.alertmanagers()) == 2, "both Alertmanagers", timeout=15)
        assert n.alertmanagers() == [f"http://{a}/api/v2/alerts", f"http://{b}/am/api/v2/alerts"]
        n.send([NotifierAlert(Labels({"alertname": "X"}))])
        assert n.flush(10)
    finally:
        n.stop()
        srv.shutdown()
        srv.server_close()
    assert len(ha.requests) == 1 and [p for p, _, _ in hb.requests] == ["/am/api/v2/alerts"]
