"""Local targets for scrape tests: a fault-injecting HTTP(S) server and a TLS CA made with openssl."""

from __future__ import annotations

import base64
import contextlib
import gzip
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.scrape.pagetarget import StaticPage, serve_page

TEXT = "text/plain; version=0.0.4; charset=utf-8"


def page(n: int, *, prefix: str = "m", value: float = 1.0, extra: str = "") -> bytes:
    lines = [f"# TYPE {prefix}_total counter"]
    lines += [f'{prefix}_total{{i="{i}"{extra}}} {value + i}' for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class FaultState:
    """Mutable behaviour of the fault server (tests flip it while scraping)."""

    series: list[str] = field(default_factory=lambda: ["a", "b", "c"])
    requests: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FaultState

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, code: int, body: bytes, ctype: str = TEXT, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        path = u.path
        with self.state.lock:
            self.state.requests[path] = self.state.requests.get(path, 0) + 1
            self.state.headers[path] = dict(self.headers.items())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route(path, q)

    def _route(self, path: str, q: dict[str, list[str]]) -> None:
        n = int(q.get("n", ["3"])[0])
        if path == "/ok":
            self._send(200, page(n))
        elif path == "/params":
            body = "".join(f'param{{name="{k}",value="{v[0]}"}} 1\n' for k, v in sorted(q.items()))
            self._send(200, body.encode())
        elif path == "/slow":
            time.sleep(float(q.get("s", ["3"])[0]))
            self._send(200, page(1))
        elif path == "/500":
            self._send(500, b"boom\n")
        elif path == "/garbage":
            self._send(200, b"this is { not a metric\n")
        elif path == "/big":
            self._send(200, page(20000))
        elif path == "/gzip":
            self._send(200, gzip.compress(page(n)), headers={"Content-Encoding": "gzip"})
        elif path == "/trickle":
            body = page(200)
            self.send_response(200)
            self.send_header("Content-Type", TEXT)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for i in range(0, len(body), 64):
                self.wfile.write(body[i:i + 64])
                self.wfile.flush()
                time.sleep(0.05)
        elif path == "/toggle":
            with self.state.lock:
                names = list(self.state.series)
            self._send(200, "".join(f"toggle_{s} 1\n" for s in names).encode())
        elif path == "/conflict":
            self._send(200, b'c{job="theirs",instance="x",exported_job="e"} 1\nd{foo="bar"} 2\n')
        elif path == "/timestamps":
            self._send(200, b"with_ts 1 1000\nwithout_ts 2\n")
        elif path == "/basic":
            want = "Basic " + base64.b64encode(b"user:secret").decode()
            if self.headers.get("Authorization") != want:
                self._send(401, b"unauthorized\n")
            else:
                self._send(200, page(2))
        elif path == "/bearer":
            if self.headers.get("Authorization") != "Bearer s3cret":
                self._send(401, b"unauthorized\n")
            else:
                self._send(200, page(2))
        elif path == "/longlabels":
            self._send(200, b'm{a="' + b"x" * 300 + b'"} 1\n')
        else:
            self._send(404, b"not found\n")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that time out and hang up are part of the tests


@dataclass
class FaultServer:
    url: str
    address: str
    state: FaultState
    server: ThreadingHTTPServer


def _serve(ctx: ssl.SSLContext | None = None) -> Iterator[FaultServer]:
    state = FaultState()
    handler = type("H", (_Handler,), {"state": state})
    srv = _QuietServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if ctx is not None:
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    addr = f"127.0.0.1:{srv.server_address[1]}"
    try:
        yield FaultServer(f"{scheme}://{addr}", addr, state, srv)
    finally:
        srv.shutdown()
        srv.server_close()
        th.join(5)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    yield from _serve()


@dataclass
class CA:
    ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    """A self-signed CA and a server certificate for ``localhost``/127.0.0.1 signed by it."""
    from benchmarks.realprom import require_binary

    openssl = shutil.which("openssl") or require_binary("openssl")  # skips, or fails under CI=true
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=promlab test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    return CA(d / "ca.crt", d / "server.crt", d / "server.key")


@pytest.fixture
def tls_server(tls_ca: CA) -> Iterator[FaultServer]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tls_ca.cert_file, tls_ca.key_file)
    yield from _serve(ctx)


@pytest.fixture
def static_page() -> Iterator[tuple[str, StaticPage]]:
    """``(address, page)``: a target answering every scrape with ``page.data``."""
    page = StaticPage()
    with serve_page(page) as address:
        yield address, page
