"""The running scraper: schedule under faults, discovery (file, HTTP), reload, targets view."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import promlab.scrape as scrape
from promlab.errors import ConfigError
from promlab.model import Matcher, MatchType, stale_mask
from promlab.storage import MemoryStorage

from .conftest import FaultServer


def wait_for(cond: Any, timeout: float = 10.0, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(step)


def up_values(store: MemoryStorage, **match: str) -> dict[str, list[tuple[int, float]]]:
    ms = [Matcher(MatchType.EQUAL, "__name__", "up")] + [Matcher(MatchType.EQUAL, k, v) for k, v in match.items()]
    ss = store.querier(0, 1 << 62).select(ms)
    out = {}
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        out[ls["job"]] = list(zip(ts.tolist(), vs.tolist(), strict=True))
    return out


@pytest.mark.slow
def test_healthy_targets_keep_schedule_while_others_fail(fault_server: FaultServer) -> None:
    from benchmarks.realprom import free_port

    a = fault_server.address
    jobs = {"healthy": "/ok", "slow": "/slow", "err500": "/500", "garbage": "/garbage", "trickle": "/trickle"}
    cfg: dict[str, Any] = {"global": {"scrape_interval": "1s"}, "scrape_configs": [
        {"job_name": j, "metrics_path": p, "static_configs": [{"targets": [a]}]} for j, p in jobs.items()]}
    cfg["scrape_configs"].append({"job_name": "refused", "static_configs": [{"targets": [f"127.0.0.1:{free_port()}"]}]})
    cfg["scrape_configs"].append({"job_name": "big", "metrics_path": "/big", "body_size_limit": "64KB",
                                  "static_configs": [{"targets": [a]}]})
    store = MemoryStorage()
    with scrape.start(cfg, data=store) as h:
        # A target whose scrape takes the whole interval skips the next slot (as Prometheus's
        # ticker does), so the failing ones scrape about every 2 s.
        wait_for(lambda: (h.targets()["scrapes"] >= 2).all()
                 and (h.targets().query("scrape_pool == 'healthy'")["scrapes"] >= 5).all(), timeout=12)
        df = h.targets()
        lateness = h.lateness()
        logs = {p.cfg.job_name: list(lp.scrape_log) for p in h.manager.pools.values() for lp in p.loops.values()}
    health = dict(zip(df["scrape_pool"], df["health"], strict=True))
    errors = dict(zip(df["scrape_pool"], df["last_error"], strict=True))
    assert health["healthy"] == "up" and errors["healthy"] == ""
    for job in ("slow", "err500", "garbage", "trickle", "refused", "big"):
        assert health[job] == "down", job
    assert "context deadline exceeded" in errors["slow"]
    assert "context deadline exceeded" in errors["trickle"]
    assert "HTTP status 500" in errors["err500"]
    assert "connection refused" in errors["refused"]
    assert errors["big"] == "body size limit exceeded"
    # The healthy target kept its 1 s schedule: scheduled times exactly 1 s apart, starts on time.
    sched = np.array([s for s, _, _ in logs["healthy"]])
    assert (np.diff(sched) == 1000).all(), np.diff(sched)
    starts = np.array([t for _, t, _ in logs["healthy"]])
    assert np.abs(starts - sched).max() < 250
    assert np.percentile(lateness, 99) < 0.1
    # Nothing stored is lost: every scrape of every target reported up (1 or 0).
    ups = up_values(store)
    assert all(v == 1.0 for _, v in ups["healthy"]) and len(ups["healthy"]) >= 5
    assert all(v == 0.0 for _, v in ups["slow"])
    m = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", "m_total")])
    assert len(m) == 3 and (m.lengths() >= 5).all()


def write_json(path: Path, groups: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    tmp.replace(path)


def test_file_sd_watch_and_keep_last_good(fault_server: FaultServer, tmp_path: Path, caplog: Any) -> None:
    sd = tmp_path / "targets.json"
    write_json(sd, [{"targets": [fault_server.address], "labels": {"team": "a"}}])
    cfg = {"scrape_configs": [{"job_name": "f", "scrape_interval": "1s", "metrics_path": "/ok",
                               "file_sd_configs": [{"files": [str(tmp_path / "*.json")]}],
                               "relabel_configs": [{"source_labels": ["__meta_filepath"], "target_label": "src"}]}]}
    store = MemoryStorage()
    with scrape.start(cfg, data=store) as h:
        wait_for(lambda: len(h.targets()) == 1)
        row = h.targets().iloc[0]
        assert row["labels"]["team"] == "a" and row["labels"]["src"] == str(sd)
        assert row["discovered_labels"]["__meta_filepath"] == str(sd)
        write_json(sd, [{"targets": [fault_server.address], "labels": {"team": "b"}}])
        wait_for(lambda: h.targets().iloc[0]["labels"].get("team") == "b", timeout=5)
        sd.write_text("[{not json")
        time.sleep(1.5)
        assert h.targets().iloc[0]["labels"]["team"] == "b"
        assert any("keeping the last good" in r.getMessage() for r in caplog.records)
        sd.unlink()
        wait_for(lambda: len(h.targets()) == 0, timeout=5)


class _SDHandler(BaseHTTPRequestHandler):
    body: list[bytes]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = self.body[0]
        code = 500 if body == b"fail" else 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def sd_server() -> Iterator[tuple[str, list[bytes]]]:
    body = [b"[]"]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_SDHandler,), {"body": body}))
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/sd", body
    srv.shutdown()
    srv.server_close()


def test_http_sd_and_dropped_targets(fault_server: FaultServer, sd_server: tuple[str, list[bytes]]) -> None:
    url, body = sd_server
    body[0] = json.dumps([{"targets": [fault_server.address, "127.0.0.1:1"], "labels": {"env": "x"}}]).encode()
    cfg = {"scrape_configs": [{"job_name": "h", "scrape_interval": "1s", "metrics_path": "/ok",
                               "http_sd_configs": [{"url": url, "refresh_interval": "1s"}],
                               "relabel_configs": [{"source_labels": ["__address__"], "regex": ".*:1",
                                                    "action": "drop"}]}]}
    with scrape.start(cfg, data=MemoryStorage()) as h:
        wait_for(lambda: len(h.targets()) == 2)
        df = h.targets()
        dropped = df[df["health"] == "dropped"].iloc[0]
        assert dropped["discovered_labels"]["__address__"] == "127.0.0.1:1"
        assert dropped["discovered_labels"]["__meta_url"] == url
        active = df[df["health"] != "dropped"].iloc[0]
        assert active["labels"] == {"env": "x", "instance": fault_server.address, "job": "h"}
        body[0] = b"fail"
        time.sleep(1.5)
        assert len(h.targets()) == 2  # last good kept


def test_reload_keeps_schedule_and_marks_removed_job_stale(fault_server: FaultServer) -> None:
    a = fault_server.address
    base = {"scrape_configs": [
        {"job_name": "keep", "scrape_interval": "1s", "metrics_path": "/ok", "static_configs": [{"targets": [a]}]},
        {"job_name": "gone", "scrape_interval": "1s", "metrics_path": "/ok", "static_configs": [{"targets": [a]}]},
    ]}
    store = MemoryStorage()
    with scrape.start(base, data=store) as h:
        wait_for(lambda: (h.targets()["scrapes"] >= 2).all())
        changed = {"scrape_configs": [
            {"job_name": "keep", "scrape_interval": "1s", "metrics_path": "/ok", "static_configs": [{"targets": [a]}],
             "metric_relabel_configs": [{"target_label": "v", "replacement": "2"}]}]}
        h.reload(changed)
        with pytest.raises(ConfigError):
            h.reload({"scrape_configs": [{"job_name": "x", "scrape_interval": "1s", "scrape_timeout": "2s"}]})
        time.sleep(2.2)
        assert list(h.targets()["scrape_pool"]) == ["keep"]
    ups = up_values(store)
    keep_ts = [t for t, _ in ups["keep"]]
    # No slot lost over the reload (the bound allows for a busy machine; jitter is tested above).
    assert (np.abs(np.diff(keep_ts) - 1000) < 500).all(), keep_ts
    assert stale_mask(np.array([ups["gone"][-1][1]]))[0]  # removed job's series end with a marker


class _SlowCommitStorage(MemoryStorage):
    """A store whose every commit takes ``delay_s`` (a loaded disk)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    def appender(self):  # type: ignore[no-untyped-def]
        app = super().appender()
        commit = app.commit

        def slow_commit() -> None:
            time.sleep(self.delay_s)
            commit()

        app.commit = slow_commit  # type: ignore[method-assign]
        return app


@pytest.mark.slow
def test_stop_cancels_every_job_before_waiting_on_commits(fault_server: FaultServer) -> None:
    """Stopping many jobs behind a slow store: no job starts a scrape once ``stop`` was called.

    Pools closed one after another each waited for their queued commits while the others kept
    scraping, so a stop took jobs × commit latency (over 30 s for 405 jobs under load).
    """
    a = fault_server.address
    jobs = 40
    cfg = {"scrape_configs": [
        {"job_name": f"j{k}", "scrape_interval": "200ms", "metrics_path": "/ok", "static_configs": [{"targets": [a]}]}
        for k in range(jobs)]}
    store = _SlowCommitStorage(delay_s=0.05)
    h = scrape.start(cfg, data=store)
    try:
        wait_for(lambda: (h.targets()["scrapes"] >= 2).all())
        loops = [lp for p in h.manager.pools.values() for lp in p.loops.values()]
    finally:
        stop_ms = time.time() * 1000
        h.stop()
    late = [(lp.target.labels["job"], t - stop_ms) for lp in loops for _, t, _ in lp.scrape_log if t > stop_ms + 5]
    assert late == []
    # Scrapes that finished before the stop were committed, none lost.
    ups = up_values(store)
    assert sorted(ups) == sorted(f"j{k}" for k in range(jobs))
    assert all(len(ups[job]) >= 2 for job in ups)
