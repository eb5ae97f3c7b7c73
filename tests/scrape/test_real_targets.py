"""Scraping real exporters, and the same scrape compared with real Prometheus 2.42.

node_exporter, the Pushgateway (``honor_labels``, fed by ``push_to_gateway``) and an app
instrumented with prometheus_client are scraped by promlab and by Prometheus with one config
(relabel rules included); the stored label sets must be the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    push_to_gateway,
    start_http_server,
)

import promlab.scrape as scrape
from benchmarks import realprom
from promlab.model import Labels, Matcher, MatchType
from promlab.storage import MemoryStorage

pytestmark = pytest.mark.realprom


@pytest.fixture
def app() -> Iterator[str]:
    """An in-process app instrumented with prometheus_client, on 127.0.0.1."""
    reg = CollectorRegistry()
    c = Counter("app_requests", "Requests.", ["path", "code"], registry=reg)
    c.labels("/", "200").inc(3)
    c.labels("/x", "500").inc()
    Gauge("app_temperature_celsius", "Temp.", registry=reg).set(21.5)
    h = Histogram("app_latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=reg)
    h.observe(0.3)
    srv, th = start_http_server(0, addr="127.0.0.1", registry=reg)
    try:
        yield f"127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)


def push_batch(pgw_url: str) -> None:
    reg = CollectorRegistry()
    g = Gauge("batch_last_success_unixtime", "Last success.", ["stage"], registry=reg)
    g.labels("load").set(1.7e9)
    push_to_gateway(pgw_url.removeprefix("http://"), job="nightly", registry=reg, grouping_key={"instance": "db1"})


def config(ne: str, pgw: str, app: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {"job_name": "node", "static_configs": [{"targets": [ne], "labels": {"env": "test"}}],
             "relabel_configs": [
                 {"source_labels": ["__address__"], "target_label": "shard", "modulus": 8, "action": "hashmod"},
                 {"source_labels": ["__address__"], "regex": "(.*):(\\d+)", "target_label": "port",
                  "replacement": "p$2"},
             ],
             "metric_relabel_configs": [
                 {"source_labels": ["__name__"], "regex": "node_(cpu|memory|load|network|filesystem|uname).*|go_.*"
                  "|process_.*|promhttp_.*|node_scrape_.*", "action": "keep"},
                 {"source_labels": ["device"], "regex": "lo", "target_label": "loopback", "replacement": "yes"},
                 {"source_labels": ["__name__"], "regex": "node_memory_(.*)_bytes", "target_label": "mem",
                  "replacement": "${1}"},
             ]},
            {"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [pgw]}]},
            {"job_name": "app", "static_configs": [{"targets": [app]}],
             "metric_relabel_configs": [{"source_labels": ["code"], "regex": "5..", "action": "drop"}]},
        ],
    }


def test_scrape_node_exporter_and_pushgateway(app: str) -> None:
    with realprom.node_exporter() as ne, realprom.pushgateway() as pgw:
        push_batch(pgw.url)
        store = MemoryStorage()
        cfg = config(ne.url.removeprefix("http://"), pgw.url.removeprefix("http://"), app)
        with scrape.start(cfg, data=store) as h:
            deadline = time.monotonic() + 10
            while not (h.targets()["scrapes"] >= 2).all() and time.monotonic() < deadline:
                time.sleep(0.1)
            df = h.targets()
        assert (df["health"] == "up").all(), df[["scrape_pool", "last_error"]]
        q = store.querier(0, 1 << 62)
        pushed = q.series([Matcher(MatchType.EQUAL, "__name__", "batch_last_success_unixtime")])
        assert pushed == [Labels({"__name__": "batch_last_success_unixtime", "job": "nightly", "instance": "db1",
                                  "stage": "load"})]
        node = q.series([Matcher(MatchType.EQUAL, "__name__", "node_load1")])
        assert len(node) == 1 and node[0]["env"] == "test" and node[0]["port"].startswith("p")
        assert not q.series([Matcher(MatchType.EQUAL, "__name__", "node_time_seconds")])
        app_series = q.series([Matcher(MatchType.REGEX, "__name__", "app_requests.*")])
        assert {ls.get("code") for ls in app_series} == {"200"}


def prom_series(prom: realprom.Prometheus) -> set[Labels]:
    r = prom.client.get("/api/v1/series", params={"match[]": '{__name__=~".+"}', "start": "0",
                                                  "end": str(time.time() + 60)})
    r.raise_for_status()
    return {Labels(d) for d in r.json()["data"]}


@pytest.mark.slow
def test_same_series_as_prometheus(app: str) -> None:
    with realprom.node_exporter() as ne, realprom.pushgateway() as pgw:
        push_batch(pgw.url)
        cfg = config(ne.url.removeprefix("http://"), pgw.url.removeprefix("http://"), app)
        store = MemoryStorage()
        with realprom.prometheus(config=cfg) as prom, scrape.start(cfg, data=store) as h:
            time.sleep(20)
            df = h.targets()
            theirs = prom_series(prom)
        assert (df["health"] == "up").all(), df[["scrape_pool", "last_error"]]
    ours = set(store.querier(0, 1 << 62).series([Matcher(MatchType.REGEX, "__name__", ".+")]))
    # Pushgateway's push_time_seconds/push_failure_time_seconds and every series are label-stable;
    # nothing is excluded. (A node_exporter collector that fails intermittently could add
    # node_scrape_collector_* label sets on one side only; none do on this machine.)
    only_ours, only_theirs = ours - theirs, theirs - ours
    assert not only_ours and not only_theirs, (sorted(map(str, only_ours))[:20], sorted(map(str, only_theirs))[:20])
    assert len(ours) > 200
