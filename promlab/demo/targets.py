"""The demo's targets: node_exporter, a simulated web service, and the demo's rules.

:class:`DemoApp` is an in-process exporter of a web service (request counters by method and
status, a latency histogram) with a recurring incident; :class:`NodeExporter` runs the real
binary; :func:`scrape_config_text` writes a ``prometheus.yml`` for them; :data:`DEMO_RULES` are
the demo's recording and alerting rules (shipped in the package as text, so an installed wheel
has them).

Examples
--------
>>> print(scrape_config_text(node=None, app="127.0.0.1:8000"), end="")  # doctest: +ELLIPSIS
# Written by `promlab demo`; ...
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: app
...
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["DEMO_RULES", "NODE_EXPORTER", "REPO", "DemoApp", "NodeExporter", "find_node_exporter", "free_port",
           "scrape_config_text"]

#: The demo's rules: request and error rates recorded per job, an alert on the error ratio that
#: the app's recurring incident sets off, and one on the 90th latency percentile.
DEMO_RULES = """\
# Written by `promlab demo` (promlab.demo.DEMO_RULES).
groups:
  - name: demo
    interval: 5s
    rules:
      - record: job:demo_requests:rate30s
        expr: sum by (job) (rate(demo_requests_total[30s]))
      - record: job:demo_request_errors:ratio30s
        expr: >
          sum by (job) (rate(demo_requests_total{status="500"}[30s]))
          / sum by (job) (rate(demo_requests_total[30s]))
      - alert: DemoHighErrorRate
        expr: job:demo_request_errors:ratio30s > 0.1
        for: 10s
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.job }}: {{ $value | humanizePercentage }} of requests fail"
      - alert: DemoSlowRequests
        expr: >
          histogram_quantile(0.9, sum by (job, le) (rate(demo_request_duration_seconds_bucket[30s])))
          > 0.5
        for: 15s
        labels:
          severity: ticket
        annotations:
          summary: "{{ $labels.job }}: 90% of requests take up to {{ $value | humanizeDuration }}"
"""

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
#: The source checkout's root when the package runs from one (its ``notebooks/`` are shown).
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (free when asked; bind it soon)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_node_exporter() -> str | None:
    """The node_exporter binary (the Debian package's path first), or None."""
    for cand in (NODE_EXPORTER, shutil.which("prometheus-node-exporter"), shutil.which("node_exporter")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class NodeExporter:
    """A node_exporter process on a free 127.0.0.1 port; ``stop()`` ends it (TERM, then KILL).

    Parameters
    ----------
    binary
        Path of the executable.
    timeout
        Seconds to wait for ``/metrics`` to answer before giving up.
    """

    def __init__(self, binary: str, *, timeout: float = 15.0) -> None:
        import httpx

        self.address = f"127.0.0.1:{free_port()}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the process; closed in stop)
        self.process = subprocess.Popen([binary, f"--web.listen-address={self.address}"],
                                        stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    self._log.seek(0)
                    tail = self._log.read()[-500:].decode(errors="replace")
                    raise RuntimeError(f"node_exporter exited with {self.process.returncode}: {tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://{self.address}/metrics", timeout=2).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node_exporter not ready on {self.address} after {timeout:g} s")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._log.close()


class DemoApp:
    """An in-process HTTP server exposing a counter and a histogram that a thread keeps busy.

    ``demo_requests_total{method,status}`` and ``demo_request_duration_seconds{method}``
    (a classic histogram) describe simulated requests whose rate swings with a 20 s period.
    A recurring incident (``incident`` seconds of every ``period``, starting ``incident_at``
    seconds into each period) makes 40% of the requests fail and latencies five times longer:
    the demo's ``DemoHighErrorRate`` alert fires during it. ``incident=0`` turns it off.
    """

    def __init__(self, *, seed: int = 7, period: float = 60.0, incident_at: float = 20.0,
                 incident: float = 20.0) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

        reg = CollectorRegistry()
        self.requests = Counter("demo_requests", "Requests handled by the demo app.", ["method", "status"],
                                registry=reg)
        self.latency = Histogram("demo_request_duration_seconds", "Request latency of the demo app.",
                                 ["method"], registry=reg,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        self._server, self._thread = start_http_server(port, addr="127.0.0.1", registry=reg)
        self._stop = threading.Event()
        self.period, self.incident_at, self.incident = period, incident_at, incident
        self._t0 = time.monotonic()
        self._driver = threading.Thread(target=self._drive, args=(seed,), name="promlab-demo-app", daemon=True)
        self._driver.start()

    def _drive(self, seed: int) -> None:
        import numpy as np

        rng = np.random.default_rng(seed)
        t0 = self._t0
        tick = 0.05
        # method -> (mean requests/s, median latency s, error ratio)
        profile = {"GET": (40.0, 0.04, 0.01), "POST": (10.0, 0.15, 0.05)}
        while not self._stop.wait(tick):  # each tick: Poisson arrivals, log-normal latencies
            wave = 1 + 0.6 * math.sin(2 * math.pi * (time.monotonic() - t0) / 20)
            bad = self.in_incident()
            for method, (rps, median, err) in profile.items():
                if bad:
                    median, err = median * 5, 0.4
                n = int(rng.poisson(rps * wave * tick))
                if not n:
                    continue
                hist = self.latency.labels(method)
                for x in rng.lognormal(math.log(median), 0.7, n).tolist():
                    hist.observe(x)
                errors = int(rng.binomial(n, err))
                self.requests.labels(method, "200").inc(n - errors)
                self.requests.labels(method, "500").inc(errors)

    def in_incident(self) -> bool:
        """Whether the simulated incident is under way now."""
        if self.incident <= 0:
            return False
        phase = (time.monotonic() - self._t0) % self.period
        return self.incident_at <= phase < self.incident_at + self.incident

    def stop(self) -> None:
        self._stop.set()
        self._driver.join(5)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def scrape_config_text(*, node: str | None, app: str | None, interval_s: int = 1, promlab: str | None = None,
                       rule_files: tuple[str, ...] = ()) -> str:
    """The demo's ``prometheus.yml``: a job per target (``promlab``: promlab's own ``/metrics``),
    one relabel rule as an example, and the ``rule_files``."""
    relabel = (
        "    relabel_configs:\n"
        "      # relabeling example: copy the port out of the address into its own label\n"
        "      - source_labels: [__address__]\n"
        "        regex: '.*:(\\d+)'\n"
        "        target_label: port\n"
        "        replacement: '$1'\n"
    )
    text = (f"# Written by `promlab demo`; the ports are the ones of that run.\n"
            f"global:\n  scrape_interval: {interval_s}s\n  scrape_timeout: {interval_s}s\n"
            f"scrape_configs:\n")
    if node:
        slow = max(2, interval_s)  # node_exporter is the slower target to scrape
        text += (f"  - job_name: node\n    scrape_interval: {slow}s\n    scrape_timeout: {slow}s\n"
                 f"    static_configs:\n      - targets: ['{node}']\n{relabel}")
    if app:
        text += f"  - job_name: app\n    static_configs:\n      - targets: ['{app}']\n{relabel}"
    if promlab:
        text += (f"  - job_name: promlab\n    scrape_interval: {max(5, interval_s)}s\n"
                 f"    scrape_timeout: {max(5, interval_s)}s\n"
                 f"    static_configs:\n      - targets: ['{promlab}']\n")
    if not node and not app and not promlab:
        text += "  []\n"
    if rule_files:
        text = text.replace("scrape_configs:\n", f"  evaluation_interval: {max(5, interval_s)}s\n"
                            "rule_files:\n" + "".join(f"  - '{f}'\n" for f in rule_files)
                            + "scrape_configs:\n", 1)
    return text
