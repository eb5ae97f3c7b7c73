"""The newer API v1 endpoints: scrape pools, target metadata, relabel steps, TSDB blocks, WAL
replay, self metrics and notifications.

Where Prometheus 2.42 has the endpoint (``scrape_pools``, ``targets/metadata``,
``status/walreplay``) promlab and a real Prometheus scrape the same node_exporter with the same
config and the answers are compared (shape, and content where both saw the same target). The
others follow the current API reference and source; ``scrape_pools/config`` is compared with
the pool's entry in Prometheus 2.42's ``status/config`` (the same marshalling), and the relabel
steps' last output with the labels Prometheus gave the target.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from benchmarks import realprom
from promlab import Labels, MemoryStorage, Session
from promlab.api import Server
from promlab.api.notifications import CONFIG_RELOAD_FAILED, Notifications
from promlab.config import load_config
from promlab.config.relabel import process
from promlab.errors import ConfigError

RELABEL = [
    {"target_label": "env", "replacement": "dev"},
    {"source_labels": ["__address__"], "regex": "(.*):(.*)", "target_label": "port",
     "replacement": "$2"},
    {"source_labels": ["job"], "target_label": "shard", "modulus": 4, "action": "hashmod"},
    {"source_labels": ["__address__"], "regex": "nomatch.*", "action": "drop"},
]


def _config(host: str) -> dict[str, Any]:
    return {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": [host]}],
                                "params": {"collect[]": ["cpu", "loadavg", "meminfo"]},
                                "basic_auth": {"username": "u", "password": "secret"},
                                "relabel_configs": RELABEL,
                                "metric_relabel_configs": [
                                    {"source_labels": ["__name__"], "regex": "go_.*",
                                     "action": "drop"}]}]}


@dataclass
class Scraping:
    """promlab and Prometheus 2.42 scraping the same node_exporter with the same config."""

    host: str
    promlab: httpx.Client
    prometheus: httpx.Client


def _wait_metadata(client: httpx.Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get("/api/v1/targets/metadata", params={"metric": "node_load1"}).json()
        if body.get("data"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{client.base_url}: no target metadata after {timeout} s")


@pytest.fixture(scope="module")
def scraping(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraping]:
    realprom.require_binary("prometheus")
    realprom.require_binary("node_exporter")
    root = tmp_path_factory.mktemp("extra-endpoints")
    with realprom.node_exporter() as ne:
        host = ne.url.split("//", 1)[1]
        cfg = _config(host)
        with realprom.prometheus(config=cfg) as prom, \
                Session(str(root / "promlab-data"), progress=False) as session:
            session.scrape.start(cfg)
            with session.serve("127.0.0.1:0") as server, \
                    httpx.Client(base_url=server.url, timeout=30) as ours:
                _wait_metadata(ours)
                _wait_metadata(prom.client)
                yield Scraping(host, ours, prom.client)


def shape(value: Any) -> Any:
    """Keys and value types, recursively (list elements merged)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        shapes = {json.dumps(shape(v), sort_keys=True) for v in value}
        return sorted(shapes)
    return type(value).__name__


# --- compared with Prometheus 2.42 -------------------------------------------------------------
COMPARED = [
    pytest.param("/api/v1/scrape_pools", {}, id="scrape_pools"),
    pytest.param("/api/v1/targets/metadata", {"metric": "node_load1"}, id="metadata-metric"),
    pytest.param("/api/v1/targets/metadata", {"metric": "no_such_metric"}, id="metadata-none"),
    pytest.param("/api/v1/targets/metadata", {"match_target": '{job="node"}', "limit": "1"},
                 id="metadata-match-limit"),
    pytest.param("/api/v1/targets/metadata", {"match_target": '{job="other"}'},
                 id="metadata-match-nothing"),
    pytest.param("/api/v1/targets/metadata", {"limit": "0"}, id="metadata-limit-0"),
    pytest.param("/api/v1/targets/metadata", {"limit": "x"}, id="metadata-bad-limit"),
    pytest.param("/api/v1/targets/metadata", {"match_target": "{job="}, id="metadata-bad-match"),
    pytest.param("/api/v1/status/walreplay", {}, id="walreplay"),
]


@pytest.mark.realprom
@pytest.mark.parametrize(("path", "params"), COMPARED)
def test_same_shape_as_prometheus(scraping: Scraping, path: str, params: dict[str, str]) -> None:
    ours = scraping.promlab.get(path, params=params)
    theirs = scraping.prometheus.get(path, params=params)
    assert ours.status_code == theirs.status_code
    a, b = ours.json(), theirs.json()
    assert a["status"] == b["status"]
    if b["status"] == "error":
        assert a["errorType"] == b["errorType"]
        assert a["error"] == b["error"]
        return
    assert shape(a["data"]) == shape(b["data"])


@pytest.mark.realprom
@pytest.mark.parametrize("params", [
    pytest.param({"metric": "node_load1"}, id="one-metric"),
    pytest.param({"match_target": '{env="dev"}'}, id="all-metrics"),
])
def test_metadata_same_as_prometheus(scraping: Scraping, params: dict[str, str]) -> None:
    def rows(client: httpx.Client) -> set[str]:
        data = client.get("/api/v1/targets/metadata", params=params).json()["data"]
        return {json.dumps(r, sort_keys=True) for r in data}

    ours, theirs = rows(scraping.promlab), rows(scraping.prometheus)
    assert ours and ours == theirs


@pytest.mark.realprom
def test_scrape_pool_config_as_prometheus_marshals_it(scraping: Scraping) -> None:
    body = scraping.promlab.get("/api/v1/scrape_pools/config", params={"scrapePool": "node"}).json()
    ours = yaml.safe_load(body["data"]["yaml"])
    full = scraping.prometheus.get("/api/v1/status/config").json()["data"]["yaml"]
    theirs = yaml.safe_load(full)["scrape_configs"][0]
    assert ours.pop("enable_http2") is False  # promlab scrapes over HTTP/1.1
    theirs.pop("enable_http2")
    assert ours == theirs
    assert ours["basic_auth"]["password"] == "<secret>"
    assert list(ours) == list(theirs)  # the same key order


@pytest.mark.realprom
def test_relabel_steps_end_where_prometheus_put_the_target(scraping: Scraping) -> None:
    targets = scraping.prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
    (target,) = targets
    body = scraping.promlab.get("/api/v1/targets/relabel_steps", params={
        "scrapePool": "node", "labels": json.dumps(target["discoveredLabels"])}).json()
    steps = body["data"]["steps"]
    assert [s["keep"] for s in steps] == [True] * len(RELABEL)
    last = {k: v for k, v in steps[-1]["output"].items() if not k.startswith("__")}
    assert last == {k: v for k, v in target["labels"].items() if k != "instance"}


# --- relabel steps ------------------------------------------------------------------------------
STEP_RULES = [
    {"target_label": "env", "replacement": "dev"},
    {"source_labels": ["__address__"], "regex": "(.*):(.*)", "target_label": "port",
     "replacement": "$2"},
    {"regex": "__meta_(.*)", "action": "labelmap"},
    {"regex": "env", "action": "labeldrop"},
    {"source_labels": ["__address__"], "regex": "localhost:.*", "action": "drop"},
    {"target_label": "after", "replacement": "never"},
]


@pytest.fixture(scope="module")
def steps_server() -> Iterator[httpx.Client]:
    cfg = {"scrape_configs": [{"job_name": "p", "relabel_configs": STEP_RULES},
                              {"job_name": "empty"}]}
    with Session(MemoryStorage()) as session:
        session.scrape.start(cfg)
        with Server(session, listen="127.0.0.1:0") as srv, \
                httpx.Client(base_url=srv.url, timeout=30) as client:
            yield client


@pytest.mark.parametrize(("labels", "outputs", "keeps"), [
    pytest.param({"__address__": "localhost:9090", "__meta_zone": "a"},
                 [{"__address__": "localhost:9090", "__meta_zone": "a", "env": "dev"},
                  {"__address__": "localhost:9090", "__meta_zone": "a", "env": "dev",
                   "port": "9090"},
                  {"__address__": "localhost:9090", "__meta_zone": "a", "env": "dev",
                   "port": "9090", "zone": "a"},
                  {"__address__": "localhost:9090", "__meta_zone": "a", "port": "9090",
                   "zone": "a"},
                  {}, {}],
                 [True, True, True, True, False, False], id="dropped-at-step-5"),
    pytest.param({"__address__": "h:1"},
                 [{"__address__": "h:1", "env": "dev"},
                  {"__address__": "h:1", "env": "dev", "port": "1"},
                  {"__address__": "h:1", "env": "dev", "port": "1"},
                  {"__address__": "h:1", "port": "1"},
                  {"__address__": "h:1", "port": "1"},
                  {"__address__": "h:1", "after": "never", "port": "1"}],
                 [True] * 6, id="kept"),
])
def test_relabel_steps(steps_server: httpx.Client, labels: dict[str, str],
                       outputs: list[dict[str, str]], keeps: list[bool]) -> None:
    r = steps_server.get("/api/v1/targets/relabel_steps",
                         params={"scrapePool": "p", "labels": json.dumps(labels)})
    assert r.status_code == 200
    steps = r.json()["data"]["steps"]
    assert [s["output"] for s in steps] == outputs
    assert [s["keep"] for s in steps] == keeps
    assert steps[0]["rule"] == {"separator": ";", "regex": "(.*)", "target_label": "env",
                                "replacement": "dev", "action": "replace"}
    assert steps[4]["rule"]["source_labels"] == ["__address__"]
    # The last step is what the whole list gives at once.
    rules = load_config({"scrape_configs": [{"job_name": "p", "relabel_configs": STEP_RULES}]}
                        ).scrape_configs[0].relabel_configs
    whole = process(Labels(labels), rules)
    assert steps[-1]["output"] == ({} if whole is None else whole.to_dict())


@pytest.mark.parametrize(("path", "params", "status", "body"), [
    pytest.param("/api/v1/targets/relabel_steps", {"labels": "{}"}, 400,
                 {"errorType": "bad_data", "error": "no scrapePool parameter provided"},
                 id="steps-no-pool"),
    pytest.param("/api/v1/targets/relabel_steps", {"scrapePool": "p"}, 400,
                 {"errorType": "bad_data", "error": "no labels parameter provided"},
                 id="steps-no-labels"),
    pytest.param("/api/v1/targets/relabel_steps", {"scrapePool": "x", "labels": "{}"}, 400,
                 {"errorType": "bad_data",
                  "error": 'error retrieving scrape config: scrape pool "x" not found'},
                 id="steps-unknown-pool"),
    pytest.param("/api/v1/targets/relabel_steps", {"scrapePool": "p", "labels": "{"}, 400,
                 {"errorType": "bad_data"}, id="steps-bad-json"),
    pytest.param("/api/v1/targets/relabel_steps", {"scrapePool": "p", "labels": '{"a": 1}'},
                 400, {"errorType": "bad_data"}, id="steps-non-string-value"),
    pytest.param("/api/v1/targets/relabel_steps", {"scrapePool": "empty", "labels": "{}"}, 200,
                 {"data": {"steps": []}}, id="steps-no-rules"),
    pytest.param("/api/v1/scrape_pools", {}, 200, {"data": {"scrapePools": ["empty", "p"]}},
                 id="pools-sorted"),
    pytest.param("/api/v1/scrape_pools/config", {}, 400,
                 {"errorType": "bad_data", "error": "no scrapePool parameter provided"},
                 id="config-no-pool"),
    pytest.param("/api/v1/scrape_pools/config", {"scrapePool": "nope"}, 400,
                 {"errorType": "bad_data",
                  "error": 'error retrieving scrape config: scrape pool "nope" not found'},
                 id="config-unknown-pool"),
    pytest.param("/api/v1/targets/metadata", {}, 200, {"data": []}, id="metadata-no-targets"),
    pytest.param("/api/v1/status/self_metrics", {"metric_name_pattern": "("}, 400,
                 {"errorType": "bad_data"}, id="self-metrics-bad-pattern"),
    pytest.param("/api/v1/status/self_metrics", {"metric_name_pattern": "nothing_named_so"}, 200,
                 {"data": []}, id="self-metrics-no-match"),
    pytest.param("/api/v1/status/tsdb/blocks", {}, 200, {"data": {"blocks": []}},
                 id="blocks-memory-store"),
    pytest.param("/api/v1/status/walreplay", {}, 200,
                 {"data": {"min": 0, "max": 0, "current": 0}}, id="walreplay-memory-store"),
    pytest.param("/api/v1/notifications", {}, 200, {"data": []}, id="notifications-none"),
])
def test_answers(steps_server: httpx.Client, path: str, params: dict[str, str], status: int,
                 body: dict[str, Any]) -> None:
    r = steps_server.get(path, params=params)
    assert r.status_code == status
    got = r.json()
    assert got["status"] == ("success" if status == 200 else "error")
    for key, want in body.items():
        assert got[key] == want


# --- blocks and WAL replay of a store on disk --------------------------------------------------
def test_blocks_and_walreplay(tmp_path: Path) -> None:
    with Session(str(tmp_path / "data"), progress=False) as session:
        app = session.storage.appender()
        for i in range(3):
            for t in range(0, 60_000, 15_000):
                app.append(Labels({"__name__": "m", "i": str(i)}), 1_000_000 + t, float(t))
        app.commit()
        session.flush()
        with Server(session, listen="127.0.0.1:0") as srv, \
                httpx.Client(base_url=srv.url, timeout=30) as client:
            blocks = client.get("/api/v1/status/tsdb/blocks").json()["data"]["blocks"]
            replay = client.get("/api/v1/status/walreplay").json()["data"]
    (block,) = blocks
    assert shape(block) == {"compaction": {"level": "int", "sources": ['"str"']},
                            "maxTime": "int", "minTime": "int",
                            "stats": {"numSamples": "int", "numSeries": "int"},
                            "ulid": "str", "version": "int"}
    assert block["stats"] == {"numSamples": 12, "numSeries": 3}
    assert block["minTime"] == 1_000_000 < 1_045_000 < block["maxTime"]
    assert block["compaction"] == {"level": 1, "sources": [block["ulid"]]}
    assert set(replay) == {"min", "max", "current"}
    assert replay["min"] <= replay["current"] == replay["max"]


# --- self metrics -------------------------------------------------------------------------------
@pytest.mark.parametrize(("pattern", "name", "kind", "slot"), [
    pytest.param("prometheus_http_requests_total", "prometheus_http_requests_total", "COUNTER",
                 "counter", id="counter"),
    pytest.param("prometheus_http_request_duration_.*", "prometheus_http_request_duration_seconds",
                 "HISTOGRAM", "histogram", id="histogram-by-regex"),
])
def test_self_metrics(steps_server: httpx.Client, pattern: str, name: str, kind: str,
                      slot: str) -> None:
    for _ in range(3):
        steps_server.get("/api/v1/scrape_pools")
    fams = steps_server.get("/api/v1/status/self_metrics",
                            params={"metric_name_pattern": pattern}).json()["data"]
    (fam,) = fams
    assert (fam["name"], fam["type"]) == (name, kind)
    assert isinstance(fam["help"], str) and fam["help"]
    by_handler = {tuple((lb["name"], lb["value"]) for lb in m["label"]): m[slot]
                  for m in fam["metric"]}
    mine = [v for k, v in by_handler.items() if ("handler", "/api/v1/scrape_pools") in k]
    assert mine
    if slot == "counter":
        assert mine[0]["value"] >= 3
    else:
        assert int(mine[0]["sampleCount"]) >= 3
        bounds = [b["upperBound"] for b in mine[0]["bucket"]]
        assert bounds == sorted(bounds) and float("inf") not in bounds
        assert all(isinstance(b["cumulativeCount"], str) for b in mine[0]["bucket"])


# --- notifications ------------------------------------------------------------------------------
def test_failed_reload_is_a_notification() -> None:
    outcome: list[BaseException | None] = [ConfigError("bad config")]

    def reload() -> None:
        if outcome[0] is not None:
            raise outcome[0]

    with Session(MemoryStorage()) as session, \
            Server(session, listen="127.0.0.1:0", enable_lifecycle=True, reload=reload) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as client:
        with client.stream("GET", "/api/v1/notifications/live") as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("text/event-stream")
            assert client.post("/-/reload").status_code == 500
            now = client.get("/api/v1/notifications").json()["data"]
            assert [(n["text"], n["active"]) for n in now] == [(CONFIG_RELOAD_FAILED, True)]
            assert now[0]["date"].endswith("Z")
            outcome[0] = None
            assert client.post("/-/reload").status_code == 200
            assert client.get("/api/v1/notifications").json()["data"] == []
            events = []
            for line in live.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[len("data: "):]))
                if len(events) == 2:
                    break
        assert [(e["text"], e["active"]) for e in events] == [(CONFIG_RELOAD_FAILED, True),
                                                              (CONFIG_RELOAD_FAILED, False)]


def test_notifications_subscriber_limit() -> None:
    import asyncio

    async def run() -> list[bool]:
        notices = Notifications(max_subscribers=1)
        notices.add("x")
        first = notices.subscribe()
        second = notices.subscribe()
        got = [first is not None, second is None]
        if first is not None:
            got.append((await first.get()).text == "x")  # the active ones come first
            notices.unsubscribe(first)
        got.append(notices.subscribe() is not None)
        return got

    assert asyncio.run(run()) == [True, True, True, True]


def test_open_live_stream_does_not_hold_the_stop() -> None:
    """Stopping ends the live streams first: the server is down well before uvicorn's 10 s
    graceful-shutdown timeout, with a client still reading a stream."""
    import threading

    with Session(MemoryStorage()) as session:
        srv = Server(session, listen="127.0.0.1:0").start()
        ended = threading.Event()

        def read() -> None:
            with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=30) as c, \
                    c.stream("GET", srv.url + "/api/v1/notifications/live") as live:
                for _ in live.iter_lines():
                    pass
            ended.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        while not srv.app.state.notices.subscribers:  # the stream is open
            ended.wait(0.05)
        srv.stop(timeout=5)
        assert not srv.running
        assert ended.wait(5)
