"""``promlab demo``: the live demo, run as a newcomer runs it (a subprocess), and its config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from promlab.demo import find_node_exporter, scrape_config_text
from promlab.model import Labels
from promlab.scrape import load_config, process

QUERIES = (
    "> up",
    "> sum by (job) (scrape_samples_scraped)",
    '> rate(node_cpu_seconds_total{mode="idle"}[30s])',
    "> histogram_quantile(0.9, sum by (method, le) (rate(demo_request_duration_seconds_bucket[30s])))",
    "> topk(3, sum by (instance) (rate(http_requests_total[5m])))",
)


def _promlab() -> list[str]:
    exe = Path(sys.executable).with_name("promlab")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "promlab"]


@pytest.mark.parametrize(("node", "app", "jobs"), [
    pytest.param("127.0.0.1:9100", "127.0.0.1:8000", ["node", "app"], id="both"),
    pytest.param(None, "127.0.0.1:8000", ["app"], id="app-only"),
    pytest.param("127.0.0.1:9100", None, ["node"], id="node-only"),
    pytest.param(None, None, [], id="none"),
])
def test_config_is_valid_prometheus_yml(node, app, jobs):
    cfg = load_config(yaml.safe_load(scrape_config_text(node=node, app=app)))
    assert [sc.job_name for sc in cfg.scrape_configs] == jobs
    for sc in cfg.scrape_configs:
        assert sc.scrape_timeout_ms <= sc.scrape_interval_ms
        addr = sc.static_configs[0].targets[0]
        out = process(Labels({"__address__": addr, "job": sc.job_name}), sc.relabel_configs)
        assert out is not None and out.get("port") == addr.rsplit(":", 1)[1]


@pytest.mark.slow
def test_quick_demo(tmp_path):
    node = find_node_exporter()
    if node is None and os.environ.get("CI") == "true":
        pytest.fail("prometheus-node-exporter is not installed (CI=true)")
    data = tmp_path / "store"
    proc = subprocess.run([*_promlab(), "demo", "--quick", "--data", str(data), "--cache-dir", str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=90, check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-2000:]
    assert out.rstrip().endswith("demo done")
    assert "FAILED" not in out
    for i in range(1, 7):
        assert f"[{i}/6]" in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith(("   app ", "  node "))}
    assert rows["app"][2] == "up"
    if node is not None:
        assert rows["node"][2] == "up"
        assert "node_exporter  http://127.0.0.1:" in out
    else:
        assert "node_exporter is not installed" in out
    for q in QUERIES if node is not None else QUERIES[:2] + QUERIES[3:]:
        assert q in out, q
    assert out.count(" series in ") >= 4
    assert "host-00" in out  # the topk table over the imported dataset
    png = data / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (data / "prometheus.yml").is_file()
    info = subprocess.run([*_promlab(), "tsdb", "info", "--data", str(data), "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    stats = json.loads(info.stdout)
    assert stats["samples"] > 19_200  # the dataset slice plus what was scraped
    assert stats["blocks"] >= 1
