"""The daemon as a real process: SIGTERM, SIGHUP, config-file changes, a bad config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from promlab.model import Matcher, MatchType

from .conftest import FaultServer

pytestmark = pytest.mark.slow


def write_config(path: Path, jobs: dict[str, str], address: str, *, bad: bool = False) -> None:
    cfg = {"global": {"scrape_interval": "1s"}, "scrape_configs": [
        {"job_name": j, "metrics_path": p, "static_configs": [{"targets": [address]}]} for j, p in jobs.items()]}
    if bad:
        cfg["scrape_configs"][0]["scrape_timeout"] = "5s"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(cfg))
    os.replace(tmp, path)


def test_daemon_reload_and_sigterm(fault_server: FaultServer, tmp_path: Path) -> None:
    from promlab.storage import open_store

    cfg = tmp_path / "prometheus.yml"
    data = tmp_path / "data"
    write_config(cfg, {"a": "/ok"}, fault_server.address)
    code = "import sys; from promlab import daemon; sys.exit(daemon.run(sys.argv[1], sys.argv[2], watch_interval=0.2))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(cfg), str(data)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    head = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait until it runs (imports can take seconds on a busy machine)
            head.append(line)
            if "scraping 1 jobs" in line:
                break
        time.sleep(2.5)
        write_config(cfg, {"a": "/ok", "b": "/toggle"}, fault_server.address)
        time.sleep(2.0)
        write_config(cfg, {"a": "/ok"}, fault_server.address, bad=True)
        time.sleep(1.0)
        proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert proc.poll() is None, "daemon died on a bad config"
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        out = "".join(head) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, out
    assert "config reload failed, keeping the running config" in out
    assert "config reloaded" in out
    with open_store(str(data), readonly=True) as store:
        ss = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", "up")])
        jobs = {}
        for i in range(len(ss)):
            ls, ts, vs = ss.series(i)
            jobs[ls["job"]] = (ts, vs)
    assert set(jobs) == {"a", "b"}
    ts_a, vs_a = jobs["a"]
    assert len(ts_a) >= 4 and (vs_a == 1).all()
    assert (np.abs(np.diff(ts_a) - 1000) < 500).all(), np.diff(ts_a)  # no scrape lost across reloads
