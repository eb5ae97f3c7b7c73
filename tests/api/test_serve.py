"""``promlab serve`` as a process: with a config it scrapes (here: its own /metrics), evaluates
rules and serves; ``/-/reload`` applies a changed config; SIGTERM stops it with every scraped
sample kept."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from benchmarks import realprom
from promlab import Session

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prometheus-api-examples"

RULES = {"groups": [{"name": "g", "interval": "1s", "rules": [
    {"record": "job:up:sum", "expr": "sum by (job) (up)"},
    {"alert": "AlwaysFiring", "expr": "vector(1)", "labels": {"severity": "none"},
     "annotations": {"summary": "value {{ $value }}"}},
]}]}


def _config(port: int, rules: Path, jobs: list[str]) -> dict[str, Any]:
    return {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": j, "static_configs": [
                {"targets": [f"127.0.0.1:{port}"]}]} for j in jobs]}


def _wait(fn: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = fn()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def _keys(x: Any) -> Any:
    """Nested key sets of dicts (lists: the keys of their first element)."""
    if isinstance(x, dict):
        return {k: _keys(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_keys(x[0])] if x else []
    return None


def test_serve_scrape_rules_reload_sigterm(tmp_path: Path) -> None:
    port = realprom.free_port()
    url = f"http://127.0.0.1:{port}"
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(RULES))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(_config(port, rules, ["self"])))
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "promlab", "serve", "--data", str(data),
                             "--config", str(cfg), "--listen", f"127.0.0.1:{port}",
                             "--web.enable-lifecycle", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def up() -> Any:
            r = httpx.get(url + "/api/v1/query", params={"query": 'up{job="self"}'}).json()
            return r["data"]["result"]

        # The scraper starts before the server listens: the very first self-scrape may fail.
        assert _wait(lambda: [r for r in up() if r["value"][1] == "1"])
        targets = httpx.get(url + "/api/v1/targets").json()["data"]["activeTargets"]
        ref = json.loads((EXAMPLES / "targets.json").read_text())["body"]["data"]
        assert set(targets[0]) == set(ref["activeTargets"][0])
        assert targets[0]["health"] == "up" and targets[0]["scrapeInterval"] == "1s"

        alerts = _wait(lambda: httpx.get(url + "/api/v1/alerts").json()["data"]["alerts"])
        ref_alerts = json.loads((EXAMPLES / "alerts.json").read_text())["body"]["data"]
        assert _keys(alerts[0]) == _keys(ref_alerts["alerts"][0])
        groups = httpx.get(url + "/api/v1/rules").json()["data"]["groups"]
        ref_rules = json.loads((EXAMPLES / "rules.json").read_text())["body"]["data"]
        assert set(groups[0]) == set(ref_rules["groups"][0])
        assert [r["type"] for r in groups[0]["rules"]] == ["recording", "alerting"]
        only = httpx.get(url + "/api/v1/rules", params={"type": "alert"}).json()["data"]
        assert [r["name"] for r in only["groups"][0]["rules"]] == ["AlwaysFiring"]

        metrics = httpx.get(url + "/metrics").text
        assert 'promlab_scrapes_total{scrape_pool="self"}' in metrics
        assert "prometheus_rule_evaluations_total" in metrics
        assert "prometheus_tsdb_head_samples_appended_total" in metrics

        # A second job through /-/reload: answered once applied.
        cfg.write_text(yaml.safe_dump(_config(port, rules, ["self", "again"])))
        assert httpx.post(url + "/-/reload").status_code == 200
        pools = _wait(lambda: {t["scrapePool"] for t in httpx.get(url + "/api/v1/targets")
                               .json()["data"]["activeTargets"]} >= {"self", "again"})
        assert pools
        cfg.write_text("scrape_configs: [{job_name: 1")  # broken: refused, old config kept
        r = httpx.post(url + "/-/reload")
        assert r.status_code == 500
        seen = httpx.get(url + "/api/v1/query", params={
            "query": 'count_over_time(up{job="self"}[1h])'}).json()["data"]["result"]
        n_seen = int(seen[0]["value"][1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, out
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/-/healthy")
    with Session(str(data), progress=False) as s:
        df = s.query('count_over_time(up{job="self"}[1h])')
    assert int(df["value"].iloc[0]) >= n_seen


def test_serve_without_config(tmp_path: Path) -> None:
    port = realprom.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "promlab", "serve", "--data",
                             str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait(lambda: httpx.get(url + "/-/ready").status_code == 200)
        assert httpx.post(url + "/-/reload").status_code == 403  # lifecycle off by default
        r = httpx.get(url + "/api/v1/query", params={"query": "vector(1)", "time": "10"})
        assert r.json()["data"]["result"] == [{"metric": {}, "value": [10, "1"]}]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def test_server_answers_queries_again_after_a_restart() -> None:
    from promlab import Labels, MemoryStorage
    from promlab.api import Server

    st = MemoryStorage()
    st.add_series(Labels({"__name__": "m"}), [0, 15_000], [1.0, 2.0])
    with Session(st) as s:
        srv = Server(s, listen="127.0.0.1:0")
        for _ in range(2):  # stop() lets the query threads go; a second start() gets new ones
            with srv:
                r = httpx.get(srv.url + "/api/v1/query", params={"query": "m", "time": 20})
                assert r.json()["data"]["result"][0]["value"] == [20, "2"]


def test_serve_prometheus_server_flags(tmp_path: Path) -> None:
    """``--web.external-url`` (its path becomes the route prefix; ``$externalURL`` in
    templates), ``--query.lookback-delta`` and ``--query.max-samples`` reach the engine."""
    port = realprom.free_port()
    root = f"http://127.0.0.1:{port}"
    url = root + "/prom"
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "interval": "1s", "rules": [
        {"alert": "Linked", "expr": "vector(1)",
         "annotations": {"link": "{{ $externalURL }}/graph"}}]}]}))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump({"global": {"evaluation_interval": "1s"},
                                   "rule_files": [str(rules)], "scrape_configs": []}))
    proc = subprocess.Popen([sys.executable, "-m", "promlab", "serve", "--data",
                             str(tmp_path / "data"), "--config", str(cfg),
                             "--listen", f"127.0.0.1:{port}", "-q",
                             "--web.external-url", "http://example.org:9999/prom/",
                             "--query.lookback-delta", "7m", "--query.max-samples", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert _wait(lambda: httpx.get(url + "/-/ready").status_code == 200)
        assert httpx.get(root + "/api/v1/query", params={"query": "1"}).status_code == 404
        moved = httpx.get(root + "/")
        assert moved.status_code == 302 and moved.headers["location"].endswith("/prom/")
        flags = httpx.get(url + "/api/v1/status/flags").json()["data"]
        assert flags["query.lookback-delta"] == "7m"
        assert flags["query.max-samples"] == "1000"
        assert flags["web.external-url"] == "http://example.org:9999/prom/"
        alerts = _wait(lambda: httpx.get(url + "/api/v1/alerts").json()["data"]["alerts"])
        assert alerts[0]["annotations"]["link"] == "http://example.org:9999/prom/graph"
        big = httpx.get(url + "/api/v1/query", params={"query": "count_over_time(vector(1)[2h:1s])"})
        assert big.status_code == 422 and "too many samples" in big.json()["error"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out


def test_serve_refuses_bad_server_flags(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "promlab", "serve", "--data", str(tmp_path / "d"),
                          "--rules.alert.resend-delay", "5x", "-q"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert 'unknown unit "x" in duration "5x"' in run.stderr
