"""API benchmarks: remote-write ingest, the receiver on two frameworks, query round trips
through the API, remote-read import.

``python -m benchmarks.api [--parts write,frameworks,query,push,import] [--quick]``

- **write**: the same remote-write 1.0 payloads (2,000 one-sample series per request, as a
  Prometheus queue shard sends them) POSTed over 4 connections to promlab (Starlette/uvicorn,
  a Parquet store) and to a real Prometheus with ``--web.enable-remote-write-receiver``, in
  alternating rounds. The default load generator (:mod:`benchmarks.rwload`) sends pre-built
  requests from one process per connection, so it is not what limits the rate; ``--client
  httpx`` uses the earlier httpx threads instead.
- **frameworks**: the same :class:`promlab.api.remote.RemoteWriteReceiver` served by aiohttp
  and by Starlette/uvicorn (each in its own process), same payloads and load generator.
- **query**: range queries of :data:`benchmarks.promql.QUERIES` over the standard dataset: the
  engine alone, through promlab's API, through Prometheus's (:mod:`benchmarks.apiquery`).
- **push**: PUTs of the same body (100 gauges and a histogram, 10 grouping keys) to promlab's
  push endpoint and to the real Pushgateway, one connection each.
- **import**: ``promlab import --from`` (Session.import_from, streamed XOR chunks) from a real
  Prometheus holding the standard dataset, against ``promtool tsdb dump`` of the same range.

Each server runs in its own process, so the clients do not share its GIL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from benchmarks import realprom

SERIES_PER_REQUEST = 2000
WARM = 8  # requests per round of all series (16,000 / 2,000)


def make_payloads(n_requests: int, *, n_series: int = 16_000, start_ms: int | None = None
                  ) -> list[bytes]:
    """Snappy-compressed 1.0 WriteRequests: each series once per request, time moving on."""
    from promlab.remote.codec import compress
    from promlab.remote.proto import prometheus_remote_pb2 as pb

    t0 = start_ms if start_ms is not None else int(time.time() * 1000) - 3_600_000
    labels = [[("__name__", f"bench_metric_{i % 100}"), ("instance", f"host-{i % 500}:9100"),
               ("job", "bench"), ("shard", str(i // 100))] for i in range(n_series)]
    per_round = max(1, n_series // SERIES_PER_REQUEST)
    out = []
    for r in range(n_requests):
        req = pb.WriteRequest()
        base = (r % per_round) * SERIES_PER_REQUEST
        ts = t0 + (r // per_round) * 15_000
        for i in range(base, base + SERIES_PER_REQUEST):
            s = req.timeseries.add()
            for k, v in labels[i % n_series]:
                s.labels.add(name=k, value=v)
            s.samples.add(timestamp=ts, value=float(i * 7 + r))
        out.append(compress(req.SerializeToString()))
    return out


def send(url: str, payloads: Sequence[bytes], *, threads: int = 4) -> float:
    """POST every payload (``threads`` connections); returns samples/s. Fails on a non-2xx."""
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "promlab-bench"}
    clients = [httpx.Client(timeout=120) for _ in range(threads)]

    def work(k: int) -> None:
        c = clients[k]
        for body in payloads[k::threads]:
            r = c.post(url, content=body, headers=headers)
            if r.status_code // 100 != 2:
                raise RuntimeError(f"{url}: HTTP {r.status_code}: {r.text[:300]}")

    # Warm up (series creation) with the first round, untimed. A request's series recur every
    # ``per_round`` requests; with per_round a multiple of ``threads`` they stay on one
    # connection, so each series' samples arrive in order (as a Prometheus shard sends them).
    for body in payloads[:WARM]:
        clients[0].post(url, content=body, headers=headers).raise_for_status()
    payloads = payloads[WARM:]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(work, range(threads)))
    dt = time.perf_counter() - t0
    for c in clients:
        c.close()
    return len(payloads) * SERIES_PER_REQUEST / dt


def _serve(kind: str, data: str, port: int) -> None:
    """Child process: serve ``/api/v1/write`` with ``kind`` = starlette | aiohttp."""
    from promlab import Session

    if kind == "query":  # a query server, as ``promlab serve`` (PROMLAB_MALLOC=default: off)
        from promlab.api.malloc import fix_malloc_policy

        fix_malloc_policy()
    session = Session(data, progress=False, read_only=kind == "query")
    if kind in ("starlette", "query"):
        from promlab.api import Server

        server = Server(session, listen=f"127.0.0.1:{port}")
        if kind == "query":
            server.app.router.routes.append(static_route())
        with server:
            while True:
                time.sleep(3600)
    from aiohttp import web

    from promlab.api.remote import RemoteWriteReceiver

    rx = RemoteWriteReceiver(session.storage)

    async def write(request: web.Request) -> web.Response:
        import asyncio

        body = await request.read()
        res = await asyncio.get_running_loop().run_in_executor(
            None, rx.handle, body, request.headers.get("Content-Type"),
            request.headers.get("Content-Encoding"))
        return web.Response(status=res.status, text=None if res.status == 204 else res.message,
                            headers=res.headers)

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/api/v1/write", write)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def static_route() -> Any:
    """``GET /bench/static?bytes=N``: N bytes (a JSON string), the same each time: the transfer
    floor of a response of that size from the same server (routing, middleware, the socket)."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    bodies: dict[int, bytes] = {}

    async def static(request: Request) -> Response:
        n = max(int(request.query_params.get("bytes", "2")), 2)
        body = bodies.get(n)
        if body is None:
            body = bodies[n] = b'"' + b"x" * (n - 2) + b'"'
        return Response(body, media_type="application/json")

    return Route("/bench/static", static, methods=["GET"])


def _child(kind: str, data: str) -> tuple[subprocess.Popen[bytes], str]:
    port = realprom.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.api", "--serve", kind, data,
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/v1/write"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.post(url, content=b"", timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{kind} server did not start")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _round_payloads(n_requests: int, rounds: int) -> list[list[bytes]]:
    """``rounds`` sets of payloads, each later in time than the one before (the last ends
    before now), so every round's samples are new to a store that took the earlier ones."""
    span = (n_requests // WARM + 1) * 15_000 + 60_000
    t0 = int(time.time() * 1000) - rounds * span - 60_000
    return [make_payloads(n_requests, start_ms=t0 + k * span) for k in range(rounds)]


def bench_write(n_requests: int, *, rounds: int = 3, connections: int = 4,
                client: str = "raw") -> dict[str, list[float]]:
    """Remote-write ingest (samples/s per round): promlab (Starlette) vs a real Prometheus.

    Both servers run at once (idle between runs) and take the same payloads in alternating
    runs, so a busy moment of the machine does not favour either. ``client``: ``raw``
    (:func:`benchmarks.rwload.send_raw`, one process per connection, pre-built requests) or
    ``httpx`` (:func:`send`, threads of one process).
    """
    from benchmarks.rwload import send_raw

    def post(url: str, payloads: Sequence[bytes]) -> float:
        if client == "httpx":
            return send(url, payloads, threads=connections)
        return send_raw(url, payloads, connections=connections,
                        samples_per_request=SERIES_PER_REQUEST, warm=WARM)

    out: dict[str, list[float]] = {"promlab": [], "prometheus": []}
    realprom.require_binary("prometheus")
    sets = _round_payloads(n_requests, rounds)
    with tempfile.TemporaryDirectory() as d:
        proc, url = _child("starlette", os.path.join(d, "promlab"))
        try:
            with realprom.prometheus(data_dir=Path(d) / "prom",
                                     extra_args=["--web.enable-remote-write-receiver"]) as prom:
                for k, payloads in enumerate(sets):
                    order = [("promlab", url), ("prometheus", prom.url + "/api/v1/write")]
                    for name, target in order if k % 2 == 0 else order[::-1]:
                        out[name].append(post(target, payloads))
        finally:
            _stop(proc)
    return out


def bench_frameworks(payloads: Sequence[bytes]) -> dict[str, float]:
    """The same receiver handler on aiohttp and on Starlette/uvicorn (samples/s)."""
    from benchmarks.rwload import send_raw

    out: dict[str, float] = {}
    for kind in ("aiohttp", "starlette"):
        with tempfile.TemporaryDirectory() as d:
            proc, url = _child(kind, os.path.join(d, "data"))
            try:
                out[kind] = send_raw(url, payloads, samples_per_request=SERIES_PER_REQUEST,
                                     warm=WARM)
            finally:
                _stop(proc)
    return out


def bench_import(*, hours: float = 6, scale: float = 0.2) -> dict[str, float]:
    """Import from a live Prometheus (samples/s) vs ``promtool tsdb dump`` of the same range."""
    from promlab import Session, datasets
    from promlab.datasets import DatasetSpec

    realprom.require_binary("promtool")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        spec = DatasetSpec(hours=hours, scale=scale)
        info = datasets.generate(Path(d) / "ds.om", spec, progress=False)
        realprom.backfill(info.path, Path(d) / "prom", progress=False)
        with realprom.prometheus(data_dir=Path(d) / "prom") as prom:
            with Session(os.path.join(d, "copy"), progress=False) as s:
                t0 = time.perf_counter()
                st = s.import_from(prom.url, match='{__name__=~".+"}', start=spec.start_ms / 1000,
                                   end=spec.end_ms / 1000, slice="2h", progress=False)
                dt = time.perf_counter() - t0
            out["samples"] = st.samples
            out["promlab_import"] = st.samples / dt
            out["promlab_read_only"] = st.samples / st.read_seconds if st.read_seconds else 0.0
        promtool = realprom.find_binary("promtool")
        t0 = time.perf_counter()
        proc = subprocess.run([str(promtool), "tsdb", "dump", f"--min-time={spec.start_ms}",
                               f"--max-time={spec.end_ms}", str(Path(d) / "prom")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
        dt = time.perf_counter() - t0
        lines = proc.stdout.count(b"\n")
        out["promtool_dump"] = lines / dt
    return out


def push_body(n_series: int = 100) -> bytes:
    """A push of ``n_series`` gauges and a 10-bucket histogram (text format 0.0.4)."""
    from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest

    reg = CollectorRegistry()
    g = Gauge("bench_job_value", "A value.", ["shard"], registry=reg)
    for i in range(n_series):
        g.labels(str(i)).set(i * 1.5)
    h = Histogram("bench_job_seconds", "Durations.", registry=reg)
    for i in range(100):
        h.observe(i / 10)
    return generate_latest(reg)


def bench_push(n_pushes: int, *, groups: int = 10, n_series: int = 100) -> dict[str, float]:
    """PUT ``n_pushes`` pushes (spread over ``groups`` grouping keys) to promlab's push
    endpoint and to the real Pushgateway, one connection each; pushes per second."""
    realprom.require_binary("pushgateway")
    body = push_body(n_series)
    headers = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d, realprom.pushgateway() as pgw:
        proc, url = _child("starlette", os.path.join(d, "data"))
        try:
            bases = {"promlab": url.removesuffix("/api/v1/write"), "pushgateway": pgw.url}
            for name, base in bases.items():
                with httpx.Client(timeout=60) as c:
                    def put(k: int, c: httpx.Client = c, base: str = base) -> None:
                        r = c.put(f"{base}/metrics/job/bench/instance/i{k % groups}",
                                  content=body, headers=headers)
                        if r.status_code // 100 != 2:
                            raise RuntimeError(f"{base}: HTTP {r.status_code}: {r.text[:200]}")

                    for k in range(groups):  # warm-up: every group exists
                        put(k)
                    t0 = time.perf_counter()
                    for k in range(n_pushes):
                        put(k)
                    out[name] = n_pushes / (time.perf_counter() - t0)
        finally:
            _stop(proc)
    return out


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {}


def _part_write(a: argparse.Namespace) -> None:
    r = bench_write(a.requests, rounds=a.rounds, client=a.client)
    print(f"remote write ingest ({a.requests} requests x {SERIES_PER_REQUEST} samples per round, "
          f"4 connections, {a.client} client; best and median of {a.rounds} alternating rounds):")
    names = {"promlab": "promlab (Starlette/uvicorn, Parquet store)",
             "prometheus": "Prometheus 2.42 receiver"}
    for k, v in r.items():
        print(f"  {names[k]:<44}{max(v):>12,.0f} samples/s  (median {statistics.median(v):,.0f})")


def _part_frameworks(a: argparse.Namespace) -> None:
    payloads = make_payloads(a.requests)
    r = bench_frameworks(payloads)
    best = max(r, key=r.__getitem__)
    print("same remote-write handler on two frameworks:")
    for k, v in r.items():
        print(f"  {k:<40}  {v:>12,.0f} samples/s")
    print(f"  faster: {best}")


def _part_query(a: argparse.Namespace) -> None:
    from benchmarks.apiquery import bench_queries, format_rows

    rows = bench_queries(hours=a.hours, scale=a.scale, step_s=a.step, repeat=a.repeat)
    print(f"range queries through the API ({a.hours:g} h dataset, scale {a.scale:g}, "
          f"step {a.step} s; medians of {a.repeat} warm runs; overhead = (API - engine) / engine, net = (API - engine - transfer) / engine; ms):")
    print(format_rows(rows))


def _part_import(a: argparse.Namespace) -> None:
    r = bench_import(hours=a.hours, scale=a.scale)
    print(f"import from a live Prometheus ({r['samples']:,.0f} samples):")
    print(f"  promlab import --from (remote read, XOR)    {r['promlab_import']:>12,.0f} samples/s")
    print(f"    of which reading+decoding alone           {r['promlab_read_only']:>12,.0f} samples/s")
    print(f"  promtool tsdb dump (same range)             {r['promtool_dump']:>12,.0f} samples/s")


def _part_push(a: argparse.Namespace) -> None:
    n = 40 if a.quick else a.pushes
    r = bench_push(n)
    print(f"pushes ({n} PUTs of 100 gauges + a histogram, 10 groups, one connection):")
    names = {"promlab": "promlab push endpoint (Starlette/uvicorn)",
             "pushgateway": "Pushgateway (Debian package)"}
    for k, v in r.items():
        print(f"  {names[k]:<44}{v:>10,.0f} pushes/s  ({1000 / v:.2f} ms per push)")


PARTS.update(write=_part_write, frameworks=_part_frameworks, query=_part_query,
             push=_part_push, **{"import": _part_import})


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.api", description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)}")
    ap.add_argument("--requests", type=int, default=400, help="remote-write requests per run")
    ap.add_argument("--hours", type=float, default=6, help="import: dataset hours")
    ap.add_argument("--scale", type=float, default=0.2, help="import: dataset scale")
    ap.add_argument("--rounds", type=int, default=3, help="write: alternating rounds")
    ap.add_argument("--client", choices=["raw", "httpx"], default="raw",
                    help="write: load generator (raw: benchmarks.rwload, httpx: threads)")
    ap.add_argument("--step", type=int, default=30, help="query: range query step (s)")
    ap.add_argument("--repeat", type=int, default=7, help="query: warm runs per figure")
    ap.add_argument("--pushes", type=int, default=500, help="push: PUTs per server")
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--serve", nargs=3, metavar=("KIND", "DATA", "PORT"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        _serve(a.serve[0], a.serve[1], int(a.serve[2]))
        return 0
    if a.quick:
        a.requests, a.hours, a.scale, a.rounds, a.repeat = 40, 1, 0.02, 2, 3
    for name in a.parts.split(","):
        PARTS[name.strip()](a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
