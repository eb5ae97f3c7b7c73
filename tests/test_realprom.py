"""The real-Prometheus harness: each binary starts, answers and stops; promtool backfills."""

from __future__ import annotations

import pytest

from benchmarks import realprom
from promlab import datasets
from promlab.datasets import DatasetSpec

pytestmark = pytest.mark.realprom


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory):
    realprom.require_binary("promtool")
    root = tmp_path_factory.mktemp("realprom")
    info = datasets.generate(root / "tiny.om", DatasetSpec(hours=2, scale=0.02))
    result = realprom.backfill(info.path, root / "data")
    return info, result, root / "data"


def test_backfill(backfilled):
    info, result, data = backfilled
    assert result.samples == info.samples
    assert result.blocks == len(realprom.block_dirs(data)) >= 1
    assert result.bytes == realprom.block_bytes(data) > 0
    assert 0 < result.bytes_per_sample < 16
    assert result.samples_per_second > 0


def test_prometheus_queries_backfilled_data(backfilled):
    realprom.require_binary("prometheus")
    info, result, data = backfilled
    end_s = info.spec.end_ms / 1000
    with realprom.prometheus(data_dir=data) as prom:
        assert prom.url.startswith("http://127.0.0.1:")
        got = prom.query("count(http_requests_total)", time=end_s)
        assert got["resultType"] == "vector"
        assert got["result"][0]["value"] == [end_s, str(info.spec.instances * 10)]
        got = prom.query("count by (__name__) ({__name__=~'http_request_duration_seconds_.*'})", time=end_s)
        assert sorted(int(r["value"][1]) for r in got["result"]) == [2, 2, 20]
        rng = prom.query_range("sum(http_requests_total)", end_s - 600, end_s, 60)
        assert rng["resultType"] == "matrix" and len(rng["result"][0]["values"]) == 11
        with pytest.raises(realprom.PrometheusAPIError, match="bad_data"):
            prom.query("sum(", time=end_s)
        assert prom.block_bytes() == result.bytes
        assert prom.metric("prometheus_tsdb_blocks_loaded") == result.blocks
    assert prom.process.poll() is not None, "stopped on exit"


def test_prometheus_sees_last_sample_exactly(backfilled):
    info, _, data = backfilled
    last = info.path.read_text().split("# TYPE node_memory_usage_bytes gauge\n")[1].split("\n# HELP")[0]
    line = [ln for ln in last.splitlines() if 'kind="free"' in ln][-1]
    value, ts = line.split(" ")[-2:]
    realprom.require_binary("prometheus")
    with realprom.prometheus(data_dir=data) as prom:
        sel = 'node_memory_usage_bytes{instance="host-001:9100",kind="free"}'
        got = prom.query(sel, time=ts)["result"]
    assert 'instance="host-001:9100"' in line
    assert float(got[0]["value"][1]) == float(value)


def test_node_exporter():
    realprom.require_binary("node_exporter")
    with realprom.node_exporter() as ne:
        body = ne.get("/metrics").text
    assert "node_exporter_build_info" in body
    assert ne.process.poll() is not None


def test_pushgateway():
    realprom.require_binary("pushgateway")
    with realprom.pushgateway() as pgw:
        r = pgw.client.put("/metrics/job/promlab_test", content=b"some_metric 3.5\n")
        assert r.status_code == 200
        body = pgw.get("/metrics").text
    assert 'some_metric{instance="",job="promlab_test"} 3.5' in body


def test_alertmanager():
    realprom.require_binary("alertmanager")
    with realprom.alertmanager() as am:
        r = am.post("/api/v2/alerts", json=[{"labels": {"alertname": "PromlabTest"}}])
        assert r.status_code == 200
        alerts = am.get("/api/v2/alerts").json()
    assert [a["labels"]["alertname"] for a in alerts] == ["PromlabTest"]


def test_require_binary_missing(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        realprom.require_binary("/nonexistent/promlab-binary")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        realprom.require_binary("/nonexistent/promlab-binary")


def test_free_port(free_port):
    assert 1024 <= free_port <= 65535


def test_storage_benchmark_smoke(tmp_path):
    realprom.require_binary("promtool")
    from benchmarks import storage

    r = storage.run(hours=0.5, scale=0.01, compaction=False, cache_dir=tmp_path)
    assert r["series"] == 32 and r["samples"] == 32 * 120
    assert r["prometheus"]["samples"] == r["samples"]
    if "error" not in r["promlab"]:
        assert r["promlab"]["samples"] == r["samples"]
        assert r["promlab"]["bytes"] > 0
    table = storage.format_table(r)
    assert "import samples/s" in table and "bytes/sample (blocks)" in table
