"""A local target for Session tests: a counter that goes up by one at every scrape."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class CounterTarget:
    address: str
    server: ThreadingHTTPServer
    scrapes: list[int]

    def config(self, interval: str = "200ms") -> dict[str, object]:
        return {"global": {"scrape_interval": interval, "scrape_timeout": interval},
                "scrape_configs": [{"job_name": "counter",
                                    "static_configs": [{"targets": [self.address]}]}]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scrapes: list[int]
    lock: threading.Lock

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with self.lock:
            self.scrapes[0] += 1
            n = self.scrapes[0]
        body = ("# HELP ticks_total Scrapes of this target.\n# TYPE ticks_total counter\n"
                f"ticks_total {n}\n# HELP temp_celsius A gauge.\n# TYPE temp_celsius gauge\n"
                "temp_celsius 21.5\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def counter_target() -> Iterator[CounterTarget]:
    scrapes = [0]
    handler = type("H", (_Handler,), {"scrapes": scrapes, "lock": threading.Lock()})
    srv = _Server(("127.0.0.1", 0), handler)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        yield CounterTarget(f"127.0.0.1:{srv.server_address[1]}", srv, scrapes)
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)
