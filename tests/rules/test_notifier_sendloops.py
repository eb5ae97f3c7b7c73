"""Prometheus 3.x's per-Alertmanager send loops in the notifier, against real servers on
127.0.0.1: a real Alertmanager, recording HTTP servers and a *blackhole* (accepts connections,
reads the request, never answers).

A blackholed Alertmanager holds its batch for its whole ``timeout`` (60 s here, unless a test
wants the timeout itself); every wait below is an event wait with a bound well under that, so
a notifier that made the others wait behind it (2.x's single queue) fails them, and a working
one passes however slow the machine is.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from benchmarks import realprom
from promlab import Session
from promlab.config import AlertingConfig, load_config
from promlab.model import Labels
from promlab.rules.notifier import Notifier, NotifierAlert
from promlab.storage import MemoryStorage
from tests.waiting import wait_for

WAIT = 30.0  # event waits: far above a POST to a live server, half the blackhole's timeout
STUCK = "60s"


class Blackhole:
    """A TCP server that accepts, reads and never answers (an Alertmanager that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self.got_request = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                if b"POST " in data:
                    with self._lock:
                        self.requests += 1
                    self.got_request.set()

    def close(self) -> None:
        self.sock.close()
        with self._lock:
            for c in self._conns:
                c.close()


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[list[dict[str, Any]]]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.bodies.append(json.loads(raw))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    bh = Blackhole()
    try:
        yield bh
    finally:
        bh.close()


@pytest.fixture
def recorders() -> Iterator[list[tuple[str, type[_Recorder]]]]:
    out, servers = [], []
    for _ in range(2):
        handler = type("H", (_Recorder,), {"bodies": []})
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


def _alerting(*entries: dict[str, Any]) -> AlertingConfig:
    return load_config({"alerting": {"alertmanagers": list(entries)}}).alerting


def _entry(address: str, **extra: Any) -> dict[str, Any]:
    return {"static_configs": [{"targets": [address]}], **extra}


def _alerts(prefix: str, count: int) -> list[NotifierAlert]:
    now_ms = time.time_ns() // 1_000_000
    return [NotifierAlert(Labels({"alertname": prefix, "i": str(i)}), starts_at_ms=now_ms)
            for i in range(count)]


def _names(handler: type[_Recorder]) -> list[str]:
    return [f"{a['labels']['alertname']}{a['labels'].get('i', '')}" for b in handler.bodies for a in b]


def _url(address: str) -> str:
    return f"http://{address}/api/v2/alerts"


def _value(reg: CollectorRegistry, name: str, address: str) -> float | None:
    return reg.get_sample_value(f"prometheus_notifications_{name}", {"alertmanager": _url(address)})


def test_blackholed_alertmanager_does_not_hold_back_the_others(
        tmp_path: Path, blackhole: Blackhole, recorders: list[tuple[str, type[_Recorder]]]) -> None:
    """Round after round reaches a real Alertmanager and a recorder while the blackhole still
    holds the first round; its later rounds wait in its own queue, and are dropped and counted
    for it alone when the notifier stops without draining."""
    (rec, handler), _ = recorders
    with realprom.alertmanager() as am:
        am_address = am.url.removeprefix("http://")
        reg = CollectorRegistry()
        n = Notifier(_alerting(_entry(blackhole.address, timeout=STUCK), _entry(am_address),
                               _entry(rec)), registry=reg)
        try:
            assert n.alertmanagers() == [_url(blackhole.address), _url(am_address), _url(rec)]
            for r in range(3):
                n.send(_alerts(f"R{r}", 2))
                want = [f"R{k}{i}" for k in range(r + 1) for i in range(2)]
                wait_for(lambda want=want: _names(handler) == want, f"round {r} at the recorder")  # type: ignore[misc]
                wait_for(lambda r=r: {a["labels"]["alertname"] for a in am.get("/api/v2/alerts").json()}
                      == {f"R{k}" for k in range(r + 1)}, f"round {r} in Alertmanager")  # type: ignore[misc]
                assert blackhole.got_request.wait(WAIT)
            assert blackhole.requests == 1  # still waiting for its answer to round 0
            assert _value(reg, "sent_total", am_address) == 6
            assert _value(reg, "sent_total", rec) == 6
            assert _value(reg, "sent_total", blackhole.address) == 0
            assert _value(reg, "errors_total", blackhole.address) == 0
            # Rounds 1 and 2 were queued for the blackhole after round 0 left: its queue only.
            assert _value(reg, "queue_length", blackhole.address) == 4
            assert _value(reg, "queue_length", am_address) == _value(reg, "queue_length", rec) == 0
        finally:
            n.stop(1.0, drain=False)
    assert _value(reg, "dropped_total", blackhole.address) == 6  # 4 queued + 2 under way
    assert _value(reg, "dropped_total", am_address) == _value(reg, "dropped_total", rec) == 0
    assert _value(reg, "queue_length", blackhole.address) == 0


def test_timeout_counts_errors_and_drops_for_that_alertmanager(
        blackhole: Blackhole, recorders: list[tuple[str, type[_Recorder]]]) -> None:
    (rec, handler), _ = recorders
    reg = CollectorRegistry()
    n = Notifier(_alerting(_entry(blackhole.address, timeout="200ms"), _entry(rec)), registry=reg)
    try:
        n.send(_alerts("A", 3))
        wait_for(lambda: _value(reg, "dropped_total", blackhole.address) == 3, "the timed-out batch dropped")
        assert _value(reg, "errors_total", blackhole.address) == 3
        assert _value(reg, "sent_total", blackhole.address) == 0
        assert _names(handler) == ["A0", "A1", "A2"]
        assert _value(reg, "sent_total", rec) == 3 and _value(reg, "errors_total", rec) == 0
        # The timed-out Alertmanager is tried again with the next alerts.
        n.send(_alerts("B", 1))
        wait_for(lambda: blackhole.requests == 2, "the next batch to the blackhole")
        assert n.flush(WAIT)
        assert _value(reg, "dropped_total", blackhole.address) == 4
    finally:
        n.stop()
    assert _value(reg, "dropped_total", rec) == 0 and _names(handler)[-1] == "B0"


def test_queue_overflow_drops_the_oldest_and_counts_them_per_alertmanager(
        blackhole: Blackhole, recorders: list[tuple[str, type[_Recorder]]]) -> None:
    (rec, handler), _ = recorders
    reg = CollectorRegistry()
    n = Notifier(_alerting(_entry(blackhole.address, timeout=STUCK), _entry(rec)),
                 registry=reg, queue_capacity=5)
    try:
        n.send(_alerts("A", 3))  # the blackhole's sender takes them and hangs
        assert blackhole.got_request.wait(WAIT)
        wait_for(lambda: len(_names(handler)) == 3, "A at the recorder")
        n.send(_alerts("B", 4))
        wait_for(lambda: len(_names(handler)) == 7, "B at the recorder")
        assert _value(reg, "dropped_total", blackhole.address) == 0
        n.send(_alerts("C", 4))  # 4 + 4 queued for the blackhole: B0, B1, B2 make room
        wait_for(lambda: len(_names(handler)) == 11, "C at the recorder")
        assert _value(reg, "dropped_total", blackhole.address) == 3
        assert _value(reg, "queue_length", blackhole.address) == 5
        n.send(_alerts("D", 7))  # more than a queue holds: D0, D1 never queued, then 5 make room
        assert _value(reg, "dropped_total", blackhole.address) == 10
        assert _value(reg, "queue_length", blackhole.address) == 5
        wait_for(lambda: len(_names(handler)) == 16, "D at the recorder")
    finally:
        n.stop(1.0, drain=False)
    assert _names(handler) == [f"{p}{i}" for p, k in [("A", 3), ("B", 4), ("C", 4)]
                               for i in range(k)] + [f"D{i}" for i in range(2, 7)]
    assert _value(reg, "dropped_total", rec) == 2  # D0, D1: a batch over the capacity
    assert _value(reg, "dropped_total", blackhole.address) == 10 + 5 + 3
    assert reg.get_sample_value("prometheus_notifications_queue_capacity") == 5


def test_entry_alert_relabel_configs_apply_to_that_entry_only(
        recorders: list[tuple[str, type[_Recorder]]]) -> None:
    (a, ha), (b, hb) = recorders
    alerting = load_config({"alerting": {
        "alert_relabel_configs": [{"target_label": "via", "replacement": "promlab"}],
        "alertmanagers": [
            _entry(a, alert_relabel_configs=[
                {"source_labels": ["severity"], "regex": "debug", "action": "drop"},
                {"target_label": "team", "replacement": "a"}]),
            _entry(b)]}}).alerting
    n = Notifier(alerting, external_labels={"cluster": "c1"})
    try:
        n.send([NotifierAlert(Labels({"alertname": "X", "severity": "page"})),
                NotifierAlert(Labels({"alertname": "Y", "severity": "debug"}))])
        assert n.flush(WAIT)
    finally:
        n.stop()
    base = {"cluster": "c1", "via": "promlab"}
    assert [x["labels"] for body in ha.bodies for x in body] == [
        {"alertname": "X", "severity": "page", "team": "a", **base}]
    assert [x["labels"] for body in hb.bodies for x in body] == [
        {"alertname": "X", "severity": "page", **base}, {"alertname": "Y", "severity": "debug", **base}]


def test_reload_keeps_remaining_queues_and_forgets_removed_alertmanagers(
        blackhole: Blackhole, recorders: list[tuple[str, type[_Recorder]]]) -> None:
    (a, ha), (b, hb) = recorders
    reg = CollectorRegistry()
    stuck = _entry(blackhole.address, timeout=STUCK)
    n = Notifier(_alerting(stuck, _entry(a)), registry=reg)
    try:
        n.send(_alerts("A", 1))
        assert blackhole.got_request.wait(WAIT)
        n.send(_alerts("B", 2))
        assert n.flush(0.1) is False  # the blackhole still holds A and has B queued
        n.apply_config(_alerting(stuck, _entry(b)))
        assert n.alertmanagers() == [_url(blackhole.address), _url(b)]
        wait_for(lambda: _value(reg, "sent_total", a) is None, "the removed Alertmanager's series to go")
        assert _value(reg, "queue_length", blackhole.address) == 2  # the same queue, kept
        assert _value(reg, "sent_total", b) == 0
        n.send(_alerts("C", 1))
        wait_for(lambda: _names(hb) == ["C0"], "C at the new Alertmanager")
    finally:
        n.stop(1.0, drain=False)
    assert _names(ha) == ["A0", "B0", "B1"]
    assert blackhole.requests == 1
    assert _value(reg, "dropped_total", blackhole.address) == 4


def test_metrics_are_reused_by_the_next_notifier_of_a_registry(
        recorders: list[tuple[str, type[_Recorder]]]) -> None:
    (a, ha), _ = recorders
    reg = CollectorRegistry()
    for _ in range(2):
        n = Notifier(_alerting(_entry(a)), registry=reg)
        n.send(_alerts("A", 1))
        assert n.flush(WAIT)
        n.stop()
    assert _value(reg, "sent_total", a) == 2 and len(ha.bodies) == 2


def test_api_alertmanagers_lists_the_notifiers_active_and_dropped(
        tmp_path: Path, recorders: list[tuple[str, type[_Recorder]]]) -> None:
    """``/api/v1/alertmanagers`` shows what the notifier posts to (relabelled, paths cleaned)
    and what relabelling dropped; ``/metrics`` has each active one's series."""
    (a, _), (b, _) = recorders
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")
    config = {"rule_files": [str(rules)], "alerting": {"alertmanagers": [
        {"path_prefix": "am/", "static_configs": [{"targets": [a, b]}],
         "relabel_configs": [{"source_labels": ["__address__"], "regex": b, "action": "drop"}]},
        _entry(b)]}}
    with Session(MemoryStorage(), config=config) as s:
        server = s.serve("127.0.0.1:0")
        before = httpx.get(f"{server.url}/api/v1/alertmanagers").json()["data"]
        assert before == {"activeAlertmanagers": [], "droppedAlertmanagers": []}
        s.rules.start()
        got = httpx.get(f"{server.url}/api/v1/alertmanagers").json()["data"]
        metrics = httpx.get(f"{server.url}/metrics").text
    assert got == {"activeAlertmanagers": [{"url": f"http://{a}/am/api/v2/alerts"}, {"url": _url(b)}],
                   "droppedAlertmanagers": [{"url": f"http://{b}/am/api/v2/alerts"}]}
    for url in (f"http://{a}/am/api/v2/alerts", _url(b)):
        for name in ("sent_total", "errors_total", "dropped_total", "queue_length"):
            assert f'prometheus_notifications_{name}{{alertmanager="{url}"}} 0.0' in metrics, (name, url)
    assert "prometheus_notifications_alertmanagers_discovered 2.0" in metrics
