"""A reverse proxy in front of the local S3-compatible server that holds every request back by
a fixed delay: the round-trip time of a real object store (tens of milliseconds), which moto on
127.0.0.1 (well under a millisecond) does not have. With it, a benchmark shows what a first
query on S3 waits for: its round trips one after another, not its bytes.

    with LatencyProxy("http://127.0.0.1:PORT", delay_ms=20) as proxy:
        options = {**s3_options, "endpoint_url": proxy.url}
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["LatencyProxy"]

#: Request headers not passed on (aiohttp sets its own).
_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class LatencyProxy:
    """Forward every request to ``upstream`` after ``delay_ms``, on a thread of its own.

    The ``Host`` header reaches the server as the client sent it (S3 signatures cover it).
    """

    def __init__(self, upstream: str, *, delay_ms: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay_s = delay_ms / 1000
        self.url = ""
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="s3-latency-proxy",
                                        daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await asyncio.sleep(self.delay_s)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["Host"] = request.headers.get("Host", "")
        body = await request.read()
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         headers=headers, data=body,
                                         allow_redirects=False) as up:
            data = await up.read()
            out = {k: v for k, v in up.headers.items() if k.lower() not in _HOP}
            if request.method == "HEAD":  # no body: the object's length as the server gave it
                resp = web.StreamResponse(status=up.status, headers=out)
                if "Content-Length" in up.headers:
                    resp.content_length = int(up.headers["Content-Length"])
                await resp.prepare(request)
                return resp
            return web.Response(status=up.status, body=data, headers=out)

    async def _start(self, port: int) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def __enter__(self) -> LatencyProxy:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(port), self._loop).result(timeout=30)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
