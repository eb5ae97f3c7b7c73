"""A remote-write load generator that is not the bottleneck: pre-built requests, raw sockets,
one process per connection.

Every HTTP request (headers and snappy body) is built before the clock starts; each sender
process owns one keep-alive connection and its own share of the payloads, writes a request,
reads the answer (status line, headers, ``Content-Length`` body) and goes on. A request costs
the client a ``sendall`` and a ``recv`` or two (tens of microseconds, against milliseconds of
server work per 2,000-sample request), and the processes share no GIL with each other or the
server.

A payload's series recur only on the connection that owns it (see
:func:`benchmarks.api.make_payloads`: request ``r`` covers series block ``r % per_round``, so
with ``per_round`` a multiple of the connection count each connection owns whole blocks), so
every series' samples arrive in time order, as from a Prometheus queue shard.

Examples
--------
>>> rate = send_raw("http://127.0.0.1:9090/api/v1/write", payloads, connections=4)  # doctest: +SKIP
"""

from __future__ import annotations

import multiprocessing as mp
import socket
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from urllib.parse import urlsplit

__all__ = ["HEADERS", "build_request", "send_raw"]

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "promlab-bench"}


def build_request(host: str, path: str, body: bytes) -> bytes:
    """One complete HTTP/1.1 POST of ``body`` with the remote-write 1.0 headers."""
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in HEADERS.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one response from ``sock`` (leftovers stay in ``buf``); returns its status code."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head = bytes(buf[:end]).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
        elif k.strip().lower() == "transfer-encoding":
            raise ConnectionError("chunked responses are not expected from a write endpoint")
    total = end + 4 + length
    while len(buf) < total:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    if status // 100 != 2:
        body = bytes(buf[end + 4:total]).decode("utf-8", "replace")
        raise RuntimeError(f"HTTP {status}: {body[:300]}")
    del buf[:total]
    return status


def _sender(addr: tuple[str, int], requests: Sequence[bytes], go: mp.synchronize.Event,
            out: Connection) -> None:
    try:
        with socket.create_connection(addr, timeout=120) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            buf = bytearray()
            go.wait()
            t0 = time.perf_counter()
            for req in requests:
                sock.sendall(req)
                _read_response(sock, buf)
            out.send(("ok", t0, time.perf_counter()))
    except Exception as exc:  # reported to the parent, which raises
        out.send(("error", repr(exc), 0.0))


def send_raw(url: str, payloads: Sequence[bytes], *, connections: int = 4,
             samples_per_request: int = 2000, warm: int = 0) -> float:
    """POST ``payloads`` over ``connections`` sender processes; returns samples/s.

    The first ``warm`` payloads go first, untimed, on one connection (series creation). The
    rest are dealt round-robin (payload ``i`` to connection ``i % connections``); the rate is
    all timed samples over the span from the first sender's start to the last one's end.
    Raises ``RuntimeError`` if any answer is not 2xx.
    """
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    hostport = f"{host}:{port}"
    reqs = [build_request(hostport, u.path, p) for p in payloads]
    ctx = mp.get_context("fork")
    if warm:
        go0 = ctx.Event()
        go0.set()
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_sender, args=((host, port), reqs[:warm], go0, w))
        p.start()
        res = r.recv()
        p.join()
        if res[0] != "ok":
            raise RuntimeError(f"{url}: {res[1]}")
    timed = reqs[warm:]
    go = ctx.Event()
    procs, pipes = [], []
    for k in range(connections):
        r, w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_sender, args=((host, port), timed[k::connections], go, w))
        p.start()
        procs.append(p)
        pipes.append(r)
    time.sleep(0.3)  # let every sender connect before the start signal
    go.set()
    results = [r.recv() for r in pipes]
    for p in procs:
        p.join()
    errors = [res[1] for res in results if res[0] != "ok"]
    if errors:
        raise RuntimeError(f"{url}: {errors[0]}")
    span = max(res[2] for res in results) - min(res[1] for res in results)
    return len(timed) * samples_per_request / span
