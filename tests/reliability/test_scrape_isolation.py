"""One bad target must not hurt the others (issue 15 item 7).

Real HTTP targets (a local server), a real store: samples far from the scrape time are dropped
per sample and counted while the target stays up, they cause no flush/compaction storm, an
oversized or endless body fails only its own scrape with a clear reason, and a healthy 1 s target
keeps its schedule beside two 200k-series targets (the strict figure is benchmarks/noisy.py's).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import promlab.scrape as scrape
import promlab.scrape.loop as scrape_loop
from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        now_ms = int(time.time() * 1000)
        if self.path == "/skewed":
            body = (f"good 1\nrecent 2 {now_ms - 30_000}\nfuture 3 {now_ms + 86_400_000}\n"
                    f"ancient 4 1000\nnear_future 5 {now_ms + 60_000}\n").encode()
            self._send(body)
        elif self.path == "/endless":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            line = b'endless_metric{pad="' + b"x" * 200 + b'"} 1\n'
            try:
                while True:
                    self.wfile.write(line * 1000)
            except (BrokenPipeError, ConnectionResetError):
                return
        else:
            self._send(b"".join(b'healthy{i="%d"} %d\n' % (i, i) for i in range(50)))

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _wait(cond: Any, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _select(store: Any, name: str) -> dict[Labels, np.ndarray]:
    ss = store.querier(-(1 << 62), 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", name)])
    return {ls: ss.ts_ms[ss.offsets[i]:ss.offsets[i + 1]] for i, ls in enumerate(ss.labels)}


def test_far_timestamps_dropped_per_sample_counted_no_flush_storm(server: str, tmp_path: Path) -> None:
    cfg = {"global": {"scrape_interval": "200ms", "scrape_timeout": "200ms"},
           "scrape_configs": [{"job_name": "skewed", "metrics_path": "/skewed",
                               "static_configs": [{"targets": [server]}]}]}
    with open_store(tmp_path / "data", wal_fsync=False) as store:
        with scrape.start(cfg, data=store) as h:
            _wait(lambda: (h.targets()["scrapes"] >= 15).all(), timeout=20)
            m = h.manager
            df = h.targets()
            scrapes = int(df["scrapes"].iloc[0])
            dropped = m.samples_out_of_bounds
        assert df["health"].iloc[0] == "up" and df["last_error"].iloc[0] == ""
        # Two samples a scrape (a day ahead, 1970) dropped; nothing lost besides them.
        assert dropped == 2 * scrapes or dropped == 2 * (scrapes - 1) + 2
        assert _select(store, "future") == {} and _select(store, "ancient") == {}
        for name in ("good", "recent", "near_future"):
            assert len(next(iter(_select(store, name).values()))) >= 1, name
        assert len(next(iter(_select(store, "good").values()))) >= scrapes - 1
        assert store.blocks() == []  # no flush, no compaction


def test_store_does_not_flush_on_every_commit_after_an_outlier(tmp_path: Path) -> None:
    """A far-future sample written straight to the store's appender (remote write refuses one
    more than 10 minutes ahead, as Prometheus) does not make every later commit flush (the
    issue's ~1 compaction/s). As in Prometheus's TSDB, the head's time now starts a day ahead:
    later samples of today are out of bounds, refused and counted, nothing else."""
    now = int(time.time() * 1000)
    with open_store(tmp_path / "data", wal_fsync=False, auto_compact=False) as store:
        app = store.appender()
        app.append(Labels({"__name__": "outlier"}), now + 86_400_000, 1.0)
        app.commit()
        refused = 0
        for k in range(50):
            app = store.appender()
            app.append(Labels({"__name__": "steady"}), now + k * 1000, float(k))
            refused += app.commit().out_of_bounds
        assert len(store.blocks()) <= 1
        assert refused == 50
        assert _select(store, "outlier") != {}


def test_endless_body_fails_only_its_scrape_with_a_clear_reason(
        server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scrape_loop, "DEFAULT_BODY_SIZE_LIMIT", 4 << 20)  # the 256 MiB default, smaller
    cfg = {"global": {"scrape_interval": "2s", "scrape_timeout": "2s"}, "scrape_configs": [
        {"job_name": "endless", "metrics_path": "/endless", "static_configs": [{"targets": [server]}]},
        {"job_name": "healthy", "static_configs": [{"targets": [server]}]}]}
    with open_store(tmp_path / "data", wal_fsync=False) as store:
        with scrape.start(cfg, data=store) as h:
            _wait(lambda: (h.targets()["scrapes"] >= 3).all(), timeout=30)
            df = h.targets().set_index("scrape_pool")
            too_big = h.manager.exceeded_body_size_limit
        assert df.loc["endless", "health"] == "down"
        assert df.loc["endless", "last_error"].startswith("body size limit exceeded (promlab's default limit, 4MiB")
        assert df.loc["healthy", "health"] == "up"
        assert too_big >= 3
        up = _select(store, "up")
        by_job = {ls.get("job"): ts for ls, ts in up.items()}
        assert set(by_job) == {"endless", "healthy"}
        assert _select(store, "endless_metric") == {}


@pytest.mark.slow
def test_noisy_neighbours_do_not_starve_a_healthy_target() -> None:
    """Two 200k-series (~49 MB) targets beside a 1 s target, 20 s measured after their first
    scrape is committed. Guard for CI (2 shared cores: measured 20-100 ms p99 under load 2-5, so
    500 ms keeps a wide margin); the strict p99 < 200 ms figure is ``python -m benchmarks.noisy``."""
    from benchmarks.noisy import run

    r = run(big=2, series=200_000, big_interval="10s", measure_s=20, store_kind="parquet")
    assert r["big_up"] == 1.0 and r["big_scrapes"] >= 2
    assert r["failed"] == 0
    assert r["healthy_scrapes"] >= 0.9 * r["expected"], r
    assert r["lateness_p99_ms"] < 500, r
    assert r["warmup_max_ms"] < 2000, r  # the first scrape's series creation stalls nobody for long
