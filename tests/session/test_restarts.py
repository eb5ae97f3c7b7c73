"""Start, stop and start again in one process: every path a notebook user (or the daemon) can
take twice works the second time, and promlab's own ``/metrics`` stays correct afterwards.

Each case runs a first start, a stop and a second start of real components (scraper, rule
manager, notifier, HTTP server on 127.0.0.1, a local Alertmanager stand-in), then reads
``/metrics`` over HTTP, parses it with ``prometheus_client``'s text parser and checks that no
series appears twice, that counters continued (or restarted from zero with their component)
and that the series of components that are gone are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from IPython.core.interactiveshell import InteractiveShell
from prometheus_client.parser import text_string_to_metric_families

from promlab import daemon
from promlab.notebook import current_state, use_session
from promlab.session import Session
from promlab.storage import MemoryStorage
from tests.ipyshell import close_shell
from tests.waiting import wait_for

from .conftest import CounterTarget

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]

RULES = """groups:
- name: {name}
  interval: 100ms
  rules:
  - record: {name}:one
    expr: vector(1)
  - alert: Always{name}
    expr: vector(1)
"""


def metrics(url: str) -> Series:
    """``url``'s /metrics as ``{(sample name, labels): value}``; fails on a duplicate."""
    resp = httpx.get(url + "/metrics", timeout=10)
    assert resp.status_code == 200
    out: Series = {}
    for fam in text_string_to_metric_families(resp.text):
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(series: Series, name: str, **labels: str) -> float | None:
    return series.get((name, tuple(sorted(labels.items()))))


def names_with(series: Series, name: str, label: str) -> set[str]:
    """The values of ``label`` among the samples named ``name``."""
    return {dict(k[1]).get(label, "") for k in series if k[0] == name}


class _Alertmanager(BaseHTTPRequestHandler):
    """Takes every POST of alerts (what the notifier's send loop needs of an Alertmanager)."""

    received: list[bytes]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass
class World:
    """What a case works with: the session's directory, the target, two Alertmanagers."""

    tmp: Path
    target: CounterTarget
    alertmanagers: list[tuple[str, list[bytes]]] = field(default_factory=list)

    def rule_file(self, name: str) -> str:
        path = self.tmp / f"{name}.yml"
        path.write_text(RULES.format(name=name))
        return str(path)

    def config(self, *, am: int | None = None, rules: list[str] | None = None) -> dict[str, Any]:
        cfg: dict[str, Any] = self.target.config("100ms")
        if am is not None:
            host = self.alertmanagers[am][0]
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        if rules is not None:
            cfg["rule_files"] = rules
        return cfg

    def am_url(self, i: int) -> str:
        return f"http://{self.alertmanagers[i][0]}/api/v2/alerts"


@pytest.fixture
def world(tmp_path: Path, counter_target: CounterTarget) -> Iterator[World]:
    servers = []
    w = World(tmp_path, counter_target)
    for _ in range(2):
        received: list[bytes] = []
        handler = type("AM", (_Alertmanager,), {"received": received})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        w.alertmanagers.append((f"127.0.0.1:{srv.server_address[1]}", received))
    try:
        yield w
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def iterations(series: Series, group: str) -> float:
    return value(series, "prometheus_rule_group_iterations_total", rule_group=group) or 0


def _session(w: World, **cfg: Any) -> Session:
    return Session(MemoryStorage(), config=w.config(**cfg))


# --- the cases: each returns after its second start, with the session serving ----------------
# A case gets the world and a list to put the sessions it opens in (closed by the test), and
# checks what it expects of /metrics itself; the test then checks /metrics once more.

def rules_same_files(w: World, opened: list[Session]) -> str:
    s = _session(w)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    key = f"{w.rule_file('a')};a"
    s.rules.start([w.rule_file("a")])
    wait_for(lambda: iterations(metrics(url), key) >= 2)
    s.rules.stop()
    before = iterations(metrics(url), key)
    s.rules.start([w.rule_file("a")])  # DuplicateTimeseries before the fix
    got = wait_for(lambda: (m := metrics(url)) and iterations(m, key) > before and m)
    # The counters continued over the stop and start (same group): never below the first run.
    assert iterations(got, key) > before >= 2
    assert value(got, "prometheus_rule_group_rules", rule_group=key) == 2
    return url


def rules_other_files(w: World, opened: list[Session]) -> str:
    s = _session(w)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    a, b = w.rule_file("a"), w.rule_file("b")
    s.rules.start([a])
    wait_for(lambda: iterations(metrics(url), f"{a};a") >= 1)
    s.rules.stop()
    s.rules.start([b])
    got = wait_for(lambda: (m := metrics(url)) and iterations(m, f"{b};b") >= 1 and m)
    for name in ("prometheus_rule_group_iterations_total", "prometheus_rule_group_rules",
                 "prometheus_rule_group_last_evaluation_timestamp_seconds"):
        assert names_with(got, name, "rule_group") == {f"{b};b"}, name
    return url


def rules_reload_after_stop(w: World, opened: list[Session]) -> str:
    s = _session(w)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    a, b = w.rule_file("a"), w.rule_file("b")
    s.rules.start([a])
    s.rules.stop()
    s.rules.reload([b])  # stopped: only reads the files
    assert not s.rules.running
    s.rules.start()
    got = wait_for(lambda: (m := metrics(url)) and iterations(m, f"{b};b") >= 1 and m)
    assert names_with(got, "prometheus_rule_group_rules", "rule_group") == {f"{b};b"}
    return url


def rules_same_alertmanager(w: World, opened: list[Session]) -> str:
    s = _session(w, am=0)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    am = w.am_url(0)
    s.rules.start([w.rule_file("a")])
    wait_for(lambda: (value(metrics(url), "prometheus_notifications_sent_total", alertmanager=am)
                  or 0) >= 1)
    s.rules.stop()
    before = value(metrics(url), "prometheus_notifications_sent_total", alertmanager=am) or 0
    s.rules.start([w.rule_file("a")])
    wait_for(lambda: (value(metrics(url), "prometheus_notifications_sent_total", alertmanager=am)
                  or 0) > before)
    got = metrics(url)
    assert names_with(got, "prometheus_notifications_sent_total", "alertmanager") == {am}
    assert value(got, "prometheus_notifications_alertmanagers_discovered") == 1
    return url


def rules_other_alertmanager(w: World, opened: list[Session]) -> str:
    s = _session(w, am=0)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    s.rules.start([w.rule_file("a")])
    wait_for(lambda: w.alertmanagers[0][1])
    s.rules.stop()
    s.set_config(w.config(am=1))
    s.rules.start([w.rule_file("a")])
    wait_for(lambda: w.alertmanagers[1][1])
    got = metrics(url)
    for name in ("prometheus_notifications_sent_total", "prometheus_notifications_dropped_total",
                 "prometheus_notifications_queue_length"):
        assert names_with(got, name, "alertmanager") == {w.am_url(1)}, name
    return url


def rules_then_no_alertmanager(w: World, opened: list[Session]) -> str:
    s = _session(w, am=0)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    s.rules.start([w.rule_file("a")])
    wait_for(lambda: w.alertmanagers[0][1])
    s.rules.stop()
    s.rules.start([w.rule_file("a")], notify=False)
    got = metrics(url)
    assert names_with(got, "prometheus_notifications_sent_total", "alertmanager") == set()
    assert value(got, "prometheus_notifications_alertmanagers_discovered") == 0
    return url


def scrape_restart(w: World, opened: list[Session]) -> str:
    s = _session(w)
    opened.append(s)
    url = s.serve("127.0.0.1:0").url
    appended = "prometheus_tsdb_head_samples_appended_total"
    s.scrape.start()
    wait_for(lambda: (value(metrics(url), appended) or 0) > 0)
    running = value(metrics(url), appended) or 0
    s.scrape.stop()
    # The session's counter continues over the stop (it fell back to 0 before the fix).
    before = value(metrics(url), appended) or 0
    assert before >= running > 0
    s.scrape.start()
    wait_for(lambda: (value(metrics(url), appended) or 0) > before)
    got = metrics(url)
    assert names_with(got, "promlab_targets", "scrape_pool") == {"counter"}
    return url


def serve_again(w: World, opened: list[Session]) -> str:
    s = _session(w)
    opened.append(s)
    s.rules.start([w.rule_file("a")])
    first = s.serve("127.0.0.1:0")
    for _ in range(2):
        httpx.get(first.url + "/api/v1/query", params={"query": "1"})
    first.stop()
    second = s.serve("127.0.0.1:0")
    got = metrics(second.url)
    # The HTTP counters are the session's: the first server's requests are still counted.
    assert value(got, "prometheus_http_requests_total", handler="/api/v1/query", code="200") == 2
    return second.url


def same_server_again(w: World, opened: list[Session]) -> str:
    s = _session(w)
    opened.append(s)
    srv = s.serve("127.0.0.1:0")
    assert httpx.put(srv.url + "/metrics/job/j", content=b"pushed 1\n").status_code == 200
    srv.stop()
    srv.start()  # the push groups come back on /metrics, once
    assert value(metrics(srv.url), "pushed", job="j") == 1
    assert httpx.put(srv.url + "/metrics/job/j", content=b"pushed 2\n").status_code == 200
    assert value(metrics(srv.url), "pushed", job="j") == 2
    return srv.url


def magics_serve_again(w: World, opened: list[Session]) -> str:
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "promlab")
    try:
        s = _session(w)
        opened.append(s)  # the test's own session: closed by the test, not the extension
        use_session(s, sh)
        s.rules.start([w.rule_file("a")])
        sh.run_line_magic("promlab", "serve --listen 127.0.0.1:0")
        state = current_state()
        assert state is not None and state.session.server is not None
        metrics(state.session.server.url)
        sh.run_line_magic("promlab", "serve stop")
        s.rules.stop()
        s.rules.start([w.rule_file("a")])
        sh.run_line_magic("promlab", "serve --listen 127.0.0.1:0")
        url = state.session.server.url
        metrics(url)
        # Stopping the extension closes the session; the test still reads /metrics of a
        # second session serving the same way.
        s2 = _session(w)
        opened.append(s2)
        s2.rules.start([w.rule_file("a")])
        return s2.serve("127.0.0.1:0").url
    finally:
        sh.run_line_magic("unload_ext", "promlab")
        close_shell(sh)


def two_sessions(w: World, opened: list[Session]) -> str:
    one, two = _session(w), _session(w)
    opened += [one, two]
    a, b = w.rule_file("a"), w.rule_file("b")
    one.rules.start([a])
    two.rules.start([b])
    url_one, url_two = one.serve("127.0.0.1:0").url, two.serve("127.0.0.1:0").url
    one.rules.stop()
    one.rules.start([a])
    wait_for(lambda: iterations(metrics(url_two), f"{b};b") >= 1)
    # Each session's /metrics has its own groups only (a registry per session).
    assert names_with(metrics(url_one), "prometheus_rule_group_rules", "rule_group") == {f"{a};a"}
    assert names_with(metrics(url_two), "prometheus_rule_group_rules", "rule_group") == {f"{b};b"}
    return url_one


CASES = [
    pytest.param(rules_same_files, id="rules-stop-start-same-files"),
    pytest.param(rules_other_files, id="rules-stop-start-other-files"),
    pytest.param(rules_reload_after_stop, id="rules-reload-after-stop"),
    pytest.param(rules_same_alertmanager, id="rules-stop-start-same-alertmanager"),
    pytest.param(rules_other_alertmanager, id="rules-stop-start-other-alertmanager"),
    pytest.param(rules_then_no_alertmanager, id="rules-stop-start-without-notifier"),
    pytest.param(scrape_restart, id="scrape-stop-start"),
    pytest.param(serve_again, id="serve-stop-serve-again"),
    pytest.param(same_server_again, id="server-object-stop-start"),
    pytest.param(magics_serve_again, id="magics-serve-stop-serve-again"),
    pytest.param(two_sessions, id="two-sessions-one-process"),
]


@pytest.mark.parametrize("case", CASES)
def test_second_start_works_and_metrics_stay_correct(
        world: World, case: Callable[[World, list[Session]], str]) -> None:
    opened: list[Session] = []
    try:
        url = case(world, opened)
        assert httpx.get(url + "/api/v1/query", params={"query": "1"}).status_code == 200
        got = metrics(url)  # parses, no duplicate series
        assert value(got, "prometheus_http_requests_total", handler="/api/v1/query", code="200")
    finally:
        for s in opened:
            s.close()


class _Daemon:
    """``promlab serve`` with a config, in this process (a thread) or in a child process (to be
    sent SIGHUP); ``reload`` makes it read its changed config."""

    def __init__(self, how: str, cfg: Path, data: Path, listen: str) -> None:
        self.how, self.url = how, f"http://{listen}"
        self.rc: list[int] = []
        self.stop = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        watch = 0.1  # SIGHUP is noticed at the next watch tick
        opts = {"enable_lifecycle": True}
        if how == "sighup":
            code = ("import sys; from promlab import daemon; sys.exit(daemon.run(sys.argv[1], "
                    f"sys.argv[2], watch_interval={watch}, listen={listen!r}, "
                    f"server_options={opts!r}))")
            self.proc = subprocess.Popen([sys.executable, "-c", code, str(cfg), str(data)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            self.thread = threading.Thread(target=lambda: self.rc.append(daemon.run(
                cfg, data, watch_interval=watch, stop_event=self.stop, progress=False,
                listen=listen, server_options=opts)))
            self.thread.start()

    def reload(self) -> None:
        if self.how == "lifecycle-reload":
            assert httpx.post(self.url + "/-/reload", timeout=20).status_code == 200
        elif self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)
        # file-change: the daemon sees the new modification time by itself

    def close(self) -> int:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait(10)
        assert self.thread is not None
        self.stop.set()
        self.thread.join(30)
        return self.rc[0] if self.rc else -1


@pytest.mark.slow
@pytest.mark.parametrize("how", ["file-change", "lifecycle-reload", "sighup"])
def test_daemon_rules_gone_and_back(world: World, tmp_path: Path, free_port: int,
                                    how: str) -> None:
    """The daemon's config loses its rule files, then gets them back: the groups' series go
    and come back, once (the second start failed with DuplicateTimeseries before the fix, and
    the first reload stopped the manager, leaving its groups on /metrics)."""
    rules = world.rule_file("d")
    cfg = tmp_path / "prometheus.yml"

    def write(with_rules: bool) -> None:
        before = cfg.stat().st_mtime_ns if cfg.exists() else None
        tmp = cfg.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(world.config(rules=[rules] if with_rules else None)))
        os.replace(tmp, cfg)
        if how != "file-change" and before is not None:
            # The old modification time: only the SIGHUP or /-/reload makes the daemon reload.
            os.utime(cfg, ns=(before, before))

    write(True)
    d = _Daemon(how, cfg, tmp_path / "data", f"127.0.0.1:{free_port}")
    key = f"{rules};d"
    try:
        wait_for(lambda: _ready(d.url) and iterations(metrics(d.url), key) >= 1, timeout=60)
        write(False)
        d.reload()
        wait_for(lambda: value(metrics(d.url), "prometheus_rule_group_rules", rule_group=key) is None)
        write(True)
        d.reload()
        wait_for(lambda: iterations(metrics(d.url), key) >= 1)
        got = metrics(d.url)
        assert names_with(got, "prometheus_rule_group_rules", "rule_group") == {key}
    finally:
        rc = d.close()
    assert rc == 0


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
