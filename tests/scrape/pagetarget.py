"""A target that serves one settable page: tests change ``page.data`` between scrapes.

Used as the ``static_page`` fixture (tests/scrape/conftest.py): ``(address, page)``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class StaticPage:
    """What the target answers every GET with."""

    data: bytes = b""
    content_type: str = TEXT_0_0_4


@contextlib.contextmanager
def serve_page(page: StaticPage) -> Iterator[str]:
    """Serve ``page`` on 127.0.0.1 until the block exits; yields ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = page.data
            self.send_response(200)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
