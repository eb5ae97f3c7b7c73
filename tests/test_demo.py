"""``promlab demo``: the live demo, run as a newcomer runs it (a subprocess), and its config.

The default demo (JupyterLab) is started, its Lab answers with the printed token, and after
Ctrl-C (SIGINT) nothing it started is left running and the data stays; ``--quick`` runs the
headless demo end to end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from promlab.demo import find_node_exporter, scrape_config_text
from promlab.model import Labels
from promlab.scrape import load_config, process

QUERIES = (
    "> up",
    "> sum by (job) (scrape_samples_scraped)",
    "> max_over_time(ALERTS[1h])",
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
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()
            if len(ln.split()) > 2 and ln.split()[0] in ("app", "node", "promlab")
            and ln.split()[1].startswith("127.0.0.1:")}
    assert rows["app"][2] == "up"
    assert "  promlab        http://127.0.0.1:" in out  # promlab's own /metrics is a target
    assert rows["promlab"][2] == "up"
    if node is not None:
        assert rows["node"][2] == "up"
        assert "node_exporter  http://127.0.0.1:" in out
    else:
        assert "node_exporter is not installed" in out
    for q in QUERIES if node is not None else QUERIES[:3] + QUERIES[4:]:
        assert q in out, q
    assert out.count(" series in ") >= 4
    assert "host-00" in out  # the topk table over the imported dataset
    png = data / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert (data / "prometheus.yml").is_file()
    assert "DemoHighErrorRate" in (data / "demo_rules.yml").read_text()
    info = subprocess.run([*_promlab(), "tsdb", "info", "--data", str(data), "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    stats = json.loads(info.stdout)
    assert stats["samples"] > 19_200  # the dataset slice plus what was scraped
    assert stats["blocks"] >= 1


def _cmdlines() -> dict[int, str]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError):
                out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return out


@pytest.mark.slow
def test_demo_opens_jupyterlab_and_stops_on_ctrl_c(tmp_path):
    import httpx

    node = find_node_exporter()
    if node is None and os.environ.get("CI") == "true":
        pytest.fail("prometheus-node-exporter is not installed (CI=true)")
    data = tmp_path / "data"
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR", "MPLCONFIGDIR"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")  # Lab's extensions: the venv's
    t0 = time.monotonic()
    # As the README runs it: the default store ``data`` relative to the working directory (Lab's
    # root and the kernel's store must not be taken relative to the notebooks' directory).
    proc = subprocess.Popen([*_promlab(), "demo", "--no-browser"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:  # the Lab URL line must come within 30 s of the start
            lines.append(line)
            if line.startswith("JupyterLab: "):
                url = line.split(" ", 1)[1].strip()
                break
            assert time.monotonic() - t0 < 30, "".join(lines)
        started = time.monotonic() - t0
        assert url is not None, "".join(lines)
        assert started < 30, f"the Lab URL came after {started:.1f} s"
        m = re.fullmatch(r"(http://127\.0\.0\.1:\d+)/lab/tree/quickstart\.ipynb\?token=([0-9a-f]{32})", url)
        assert m, url
        base, token = m[1], m[2]
        assert httpx.get(f"{base}/api/status?token={token}", timeout=5).status_code == 200
        assert httpx.get(f"{base}/api/status", timeout=5).status_code == 403  # the token is needed
        nb = httpx.get(f"{base}/api/contents/quickstart.ipynb?token={token}", timeout=5)
        assert nb.status_code == 200 and nb.json()["type"] == "notebook"
        out = "".join(lines)
        pids = [int(p) for p in re.findall(r"node_exporter .*\(pid (\d+)\)", out)]
        assert len(pids) == (node is not None)
        ours = [pid for pid, cmd in _cmdlines().items() if str(tmp_path) in cmd and pid != proc.pid]
        assert ours, "JupyterLab's process was not found"  # Lab runs with --ServerApp.root_dir=<data>/notebooks
        time.sleep(2)  # a few scrapes into the store
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    for msg in ("interrupted: stopping JupyterLab", "JupyterLab stopped",
                "scraper, rules and API stopped; the data stays in data"):
        assert msg in out, out
    for pid in pids + ours:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    assert not [cmd for cmd in _cmdlines().values() if str(tmp_path) in cmd], "stray processes"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/api/status?token={token}", timeout=2)
    # the data is left behind: the store, the config, the rules, the notebooks
    for name in ("prometheus.yml", "demo_rules.yml", "notebooks/quickstart.ipynb"):
        assert (data / name).is_file(), name
    info = subprocess.run([*_promlab(), "tsdb", "info", "--data", str(data), "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(info.stdout)["samples"] > 0
