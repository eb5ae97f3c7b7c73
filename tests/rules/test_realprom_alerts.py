"""A real Prometheus 2.42 and promlab's backtest write the same ``ALERTS`` series.

Prometheus evaluates rules only live, so both see the same live data: a tiny exporter (a thread
here) serves gauges that change with the wall clock; Prometheus scrapes it every second and
evaluates the rule file every second for ~30 s. Then we read back from Prometheus's API its raw
scraped samples, its ``ALERTS``/``ALERTS_FOR_STATE`` samples and the timestamps of its group
evaluations (the ``eval_tick`` recording rule writes one sample per evaluation), load the scraped
samples into a MemoryStorage and run promlab's backtest driver over the same evaluation times.

Why the rules read ``offset 3s``: an evaluation at ``t`` must see exactly the samples the backtest
sees. A scrape stamped just before ``t`` may not be committed yet when Prometheus evaluates at
``t``; three seconds back, every sample is. (Prometheus 2.42 has no group ``query_offset``.)
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from benchmarks import realprom
from promlab.model import Labels
from promlab.rules import load_rules
from promlab.rules.backtest import run_groups
from promlab.storage import MemoryStorage

pytestmark = pytest.mark.realprom

RULES = """\
groups:
- name: cmp
  interval: 1s
  rules:
  - record: eval_tick
    expr: vector(1)
  - alert: High
    expr: demo_value offset 3s > 8
    for: 3s
    labels:
      severity: page
      level: '{{ if gt $value 9.5 }}high{{ else }}mid{{ end }}'
    annotations:
      summary: '{{ $labels.series }} at {{ $value }}'
  - alert: Keep
    expr: demo_value offset 3s > 5
    keep_firing_for: 2s
"""
RUN_SECONDS = 30


def values_at(t: float) -> dict[str, float]:
    """a: 10 for 6 s of every 12 (High fires, resolves); b: 9 for 2 s of every 7, else 7
    (High pending, never firing; Keep always firing); c: 6 for 1 s of every 4 (Keep kept)."""
    return {"a": 10.0 if t % 12 < 6 else 0.0, "b": 9.0 if t % 7 < 2 else 7.0,
            "c": 6.0 if t % 4 < 1 else 0.0}


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = "# TYPE demo_value gauge\n" + "".join(
            f'demo_value{{series="{k}"}} {v}\n' for k, v in values_at(time.time()).items())
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


Points = dict[Labels, dict[int, float]]


def _matrix(prom: realprom.Prometheus, expr: str, at_ms: int) -> Points:
    data = prom.query(expr, time=at_ms / 1000)
    assert data["resultType"] == "matrix"
    return {Labels(r["metric"]): {round(float(t) * 1000): float(v) for t, v in r["values"]}
            for r in data["result"]}


def test_prometheus_and_backtest_write_the_same_alerts(tmp_path: Path, exporter: str) -> None:
    realprom.require_binary("prometheus")
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
              "rule_files": [str(rules)],
              "scrape_configs": [{"job_name": "demo", "static_configs": [{"targets": [exporter]}]}]}
    with realprom.prometheus(config=config) as prom:
        time.sleep(RUN_SECONDS)
        cut_ms = int(time.time() * 1000) - 2000  # everything up to here is written
        window = f"[{RUN_SECONDS + 60}s]"
        scraped = _matrix(prom, f"demo_value{window}", cut_ms)
        ticks = sorted(_matrix(prom, f"eval_tick{window}", cut_ms)[Labels({"__name__": "eval_tick"})])
        theirs = {**_matrix(prom, f"ALERTS{window}", cut_ms), **_matrix(prom, f"ALERTS_FOR_STATE{window}", cut_ms)}
        missed = prom.metric("prometheus_rule_group_iterations_missed_total")

    assert len(scraped) == 3 and len(ticks) >= RUN_SECONDS - 5
    assert sum(len(p) for ls, p in theirs.items() if ls["__name__"] == "ALERTS") >= 40
    step = np.diff(ticks)
    assert (step % 1000 == 0).all(), "group evaluations are aligned to the interval"
    mem = MemoryStorage()
    for ls, pts in scraped.items():
        mem.add_series(ls, list(pts), list(pts.values()))
    ours: Points = {}
    for _g, _state, tl, _vec in run_groups(load_rules(rules), ticks[0], ticks[-1], data=mem):
        for ls, ts, vs in tl.series():
            ours.setdefault(ls, {}).update(zip(ts.tolist(), vs.tolist(), strict=True))
    # Compare at the evaluations Prometheus made (a missed iteration, if any, has no samples).
    tick_set = set(ticks)
    ours = {ls: {t: v for t, v in pts.items() if t in tick_set} for ls, pts in ours.items()}
    ours = {ls: pts for ls, pts in ours.items() if pts}
    theirs = {ls: {t: v for t, v in pts.items() if ticks[0] <= t <= ticks[-1]} for ls, pts in theirs.items()}
    theirs = {ls: pts for ls, pts in theirs.items() if pts}

    names = {(ls["__name__"], ls.get("alertname"), ls.get("alertstate")) for ls in theirs}
    assert ("ALERTS", "High", "firing") in names and ("ALERTS", "High", "pending") in names
    assert ("ALERTS", "Keep", "firing") in names and ("ALERTS_FOR_STATE", "Keep", None) in names
    assert {ls.get("level") for ls in theirs if ls.get("alertname") == "High"} == {"high", "mid"}
    assert sorted(map(str, ours)) == sorted(map(str, theirs)), f"missed iterations: {missed}"
    for ls, pts in theirs.items():
        diff = {t: (v, ours[ls].get(t)) for t, v in pts.items() if not math.isclose(v, ours[ls].get(t, math.nan))}
        extra = sorted(set(ours[ls]) - set(pts))
        assert not diff and not extra, f"{ls}: differ at {diff}, only promlab at {extra}"
