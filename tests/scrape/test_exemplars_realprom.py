"""Exemplars (issue 10): the same OpenMetrics target scraped by a real Prometheus 2.42
(``--enable-feature=exemplar-storage``) and by promlab; ``/api/v1/query_exemplars`` of both must
return the same exemplars (series labels, exemplar labels, values, timestamps).

The target's exemplars change every :data:`PERIOD` seconds and carry their own timestamps (so
both scrapers, whatever their phase, store the same ones, at the same times); one series has an
exemplar without a timestamp (stored once, at the first scrape's time: labels and values compare).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import MemoryStorage, Session
from promlab.api import Server
from promlab.scrape import start

pytestmark = pytest.mark.realprom

PERIOD = 3
OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def body(now: float) -> bytes:
    k = int(now) // PERIOD
    t = k * PERIOD
    return (f"# TYPE foo counter\n"
            f'foo_total{{a="x"}} {k} # {{trace_id="c{k}"}} {k % 5 + 0.5} {t}.25\n'
            f'foo_total{{a="y"}} {2 * k}\n'
            f"# TYPE lat histogram\n"
            f'lat_bucket{{le="0.5"}} {k} # {{trace_id="h{k}",span="s{k % 3}"}} 0.3 {t}.5\n'
            f'lat_bucket{{le="+Inf"}} {2 * k} # {{trace_id="i{k}"}} 7 {t}.75\n'
            f"lat_count {2 * k}\nlat_sum {k}\n"
            f"# TYPE bar counter\n"
            f'bar_total 1 # {{trace_id="nots"}} 2\n'
            "# EOF\n").encode()


@pytest.fixture
def om_target() -> Iterator[str]:
    class H(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            data = body(time.time())
            self.send_response(200)
            self.send_header("Content-Type", OM)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def exemplars(client: httpx.Client, query: str, start: float, end: float) -> list[dict[str, Any]]:
    r = client.get("/api/v1/query_exemplars", params={"query": query, "start": start, "end": end})
    r.raise_for_status()
    payload = r.json()
    assert payload["status"] == "success", payload
    data: list[dict[str, Any]] = payload["data"]
    return data


def timed(data: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {(tuple(sorted(s["seriesLabels"].items())), tuple(sorted(e["labels"].items())), e["value"],
             round(float(e["timestamp"]) * 1000)) for s in data for e in s["exemplars"]}


def untimed(data: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {t[:3] for t in timed(data)}


QUERIES = ["foo_total", "lat_bucket", 'lat_bucket{le="0.5"}', "rate(foo_total[1m]) + on() group_left lat_sum",
           '{__name__=~"foo_total|lat_bucket"}']


def test_exemplars_match_prometheus(om_target: str) -> None:
    realprom.require_binary("prometheus")
    cfg = {"scrape_configs": [{"job_name": "ex", "scrape_interval": "1s", "scrape_timeout": "1s",
                               "static_configs": [{"targets": [om_target]}]}]}
    store = MemoryStorage()
    with realprom.prometheus(config=cfg, extra_args=["--enable-feature=exemplar-storage"]) as prom, \
            Session(store) as session, Server(session, listen="127.0.0.1:0", enable_lifecycle=False) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as ours:
        handle = start(cfg, data=store)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # both have scraped
                time.sleep(0.5)
                up = prom.query("up", time=time.time())["result"]
                if up and session.query("up", time=time.time()).shape[0]:
                    break
            window_start = time.time() + 1
            time.sleep(4 * PERIOD)
            window_end = time.time() - 1.5
            time.sleep(1.5)
        finally:
            handle.stop()
        theirs_client = prom.client
        # The timed exemplars whose own time falls in the window (both scrapers saw each of
        # them at least twice); the untimed one by labels and value.
        answers = {}
        for q in QUERIES:
            answers[q] = (exemplars(theirs_client, q, window_start, window_end),
                          exemplars(ours, q, window_start, window_end))
        bar = (exemplars(theirs_client, "bar_total", 0, time.time() + 60),
               exemplars(ours, "bar_total", 0, time.time() + 60))
        wide = exemplars(ours, "foo_total", 0, time.time() + 60)
    for q, (theirs, mine) in answers.items():
        assert timed(mine) == timed(theirs), q
    assert timed(answers["foo_total"][0]), "Prometheus stored no exemplars: the comparison would be empty"
    assert len(timed(answers['{__name__=~"foo_total|lat_bucket"}'][1])) >= 3 * 3
    # without a timestamp: stored once (at the first scrape), later scrapes are duplicates
    assert untimed(bar[1]) == untimed(bar[0]) != set()
    assert len(timed(bar[1])) == len(timed(bar[0])) == 1
    # series order and shape as Prometheus's: sorted by series labels, oldest exemplar first
    assert [s["seriesLabels"] for s in wide] == sorted((s["seriesLabels"] for s in wide),
                                                      key=lambda d: sorted(d.items()))
    for s in wide:
        ts = [e["timestamp"] for e in s["exemplars"]]
        assert ts == sorted(ts) and all(isinstance(e["value"], str) for e in s["exemplars"])
