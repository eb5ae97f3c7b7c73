"""Scale-out benchmark: the ``benchmarks.promql`` queries on 1 and 2 local Dask workers.

``python -m benchmarks.scale [--hours H] [--scale S] [--repeat N]`` imports the standard dataset
into a temporary store, starts a ``LocalCluster`` of 1 then 2 worker processes (one thread
each) that open the store themselves, and runs every query as a range query (1 h to the end,
60 s steps). Per query and worker count it prints the wall time, the phases (resolve: client
seconds resolving and splitting the series into shards; read and evaluate: worker seconds summed
over shards; wait: client wall time until the shards answered; combine: client seconds), samples read and bytes sent back to the client, and checks the answer against
the single-process engine. Then the combine cost for 2..32 shards of one aggregation.

``--s3`` puts the store in object storage: a moto S3-compatible server on 127.0.0.1 (started
here), the dataset imported straight into ``s3://promlab-bench/store`` (blocks uploaded, the WAL
local); the one-process baseline and the workers read it over HTTP with ranged GETs. Then each
query's first touch (store opened by the workers, nothing cached) is reported too: its wall time
and the bytes and requests the workers fetched from S3, and the warm queries' fetches.

``--many-metrics N`` measures only the series index's selectivity on S3 (no Dask): a one-day
store of N metrics x 20 series written into the moto server, opened read-only, then per fresh
open the bytes and GETs of ``series.arrow`` (and of all objects) fetched by a first instant query
on one series, against the file's size and by a first query over every metric (format 7 reads
the first piece, the footer and the queried metric's batch only).
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.promql import QUERIES, import_store, write_many_metrics
from promlab import Session, datasets


def _same(a: Any, b: Any) -> bool:
    if getattr(a, "labels", None) != getattr(b, "labels", None):
        return False
    return bool(np.allclose(a.values, b.values, rtol=1e-9, equal_nan=True))


def _run(session: Session, expr: str, start: float, end: float, repeat: int,
         ) -> tuple[float, Any, Any]:
    times, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = session.evaluate(expr, start=start, end=end, step=60)
        times.append(time.perf_counter() - t0)
    stats = getattr(session.engine, "last_stats", None)
    return statistics.median(times), res, stats


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--s3", action="store_true", help="the store in a local S3-compatible server (moto)")
    ap.add_argument("--many-metrics", type=int, default=0,
                    help="only: bytes a first one-metric query fetches of an N-metric store on S3")
    ap.add_argument("--s3-latency-ms", type=float, default=20.0,
                    help="with --many-metrics: also time first queries through a proxy that "
                         "holds each S3 request back this long (0: skip)")
    args = ap.parse_args(argv)
    if args.many_metrics:
        with _S3Server(True) as srv, tempfile.TemporaryDirectory(prefix="promlab-scale-") as tmp:
            assert srv.options is not None
            print(s3_index_reads(args.many_metrics, srv.options, tmp,
                                 latency_ms=args.s3_latency_ms), flush=True)
        return 0
    from distributed import Client, LocalCluster

    info = datasets.standard_dataset(hours=args.hours, scale=args.scale)
    print(f"dataset: {info.series:,} series, {info.samples:,} samples", flush=True)
    end = info.spec.end_ms / 1000 - 30
    start = end - 3600
    with tempfile.TemporaryDirectory(prefix="promlab-scale-") as tmp, _S3Server(args.s3) as s3:
        data = str(Path(tmp) / "data")
        opts: dict[str, Any] = {}
        if s3.options is not None:
            data = "s3://promlab-bench/store"
            opts = {"storage_options": s3.options, "local_dir": str(Path(tmp) / "local")}
            print(f"import into {data}: {_import_s3(info.path, data, opts):.1f} s", flush=True)
        else:
            print(f"import: {import_store(info.path, Path(data)):.1f} s", flush=True)
        base: dict[str, tuple[float, Any]] = {}
        with Session(data, read_only=True, **opts) as one:
            for name, expr in QUERIES:
                one.evaluate(expr, start=start, end=end, step=60)
                t, res, _ = _run(one, expr, start, end, args.repeat)
                base[name] = (t, res.value)
            if s3.options is not None:
                print(f"one process read from S3: {one.store.fs.counters()}")  # type: ignore[attr-defined]
        print("| query | workers | ms | one process ms | resolve ms | read s | eval s | wait s "
              "| combine ms | samples | MB to client | same | first ms | first MB from S3 "
              "| first GETs | warm MB from S3 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client, \
                    Session(data, read_only=True, cluster=client, **opts) as dist:
                for name, expr in QUERIES:
                    t0 = time.perf_counter()
                    dist.evaluate(expr, start=start, end=end, step=60)  # first touch: open + warm
                    first_s = time.perf_counter() - t0
                    first: Any = dist.engine.last_stats  # type: ignore[attr-defined]
                    t, res, st = _run(dist, expr, start, end, args.repeat)
                    same = _same(base[name][1], res.value)
                    print(f"| {name} | {workers} | {t * 1e3:.0f} | {base[name][0] * 1e3:.0f} | "
                          f"{st.resolve_s * 1e3:.1f} | {st.read_s:.3f} | {st.eval_s:.3f} | {st.wait_s:.3f} | "
                          f"{st.combine_s * 1e3:.1f} | {st.samples:,} | "
                          f"{st.bytes_to_client / 1e6:.2f} | {'yes' if same else 'NO'} | "
                          f"{first_s * 1e3:.0f} | {first.store_bytes / 1e6:.2f} | "
                          f"{first.store_requests} | {st.store_bytes / 1e6:.2f} |", flush=True)
                if workers == 2:
                    _combine_cost(dist, start, end)
    return 0


class _S3Server:
    """moto's S3-compatible server on a free 127.0.0.1 port (when ``enabled``), bucket created."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.options: dict[str, Any] | None = None
        self._server: Any = None

    def __enter__(self) -> _S3Server:
        if not self.enabled:
            return self
        import s3fs
        from moto.server import ThreadedMotoServer

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.options = {"endpoint_url": f"http://127.0.0.1:{port}", "key": "bench", "secret": "bench"}
        s3fs.S3FileSystem(**self.options, skip_instance_cache=True).mkdir("promlab-bench")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()


def _import_s3(path: Path, url: str, opts: dict[str, Any]) -> float:
    """Import the dataset into the store at ``url`` (blocks uploaded as they are written)."""
    from promlab.importer import import_file
    from promlab.storage import open_store

    t0 = time.perf_counter()
    with open_store(url, **opts) as store:
        import_file(path, store, progress=False)
        c = store.fs.counters()  # type: ignore[attr-defined]
    print(f"uploaded {c['bytes_written'] / 1e6:.1f} MB in {c['requests']} requests", flush=True)
    return time.perf_counter() - t0


def s3_index_reads(metrics: int, options: dict[str, Any], tmp: str, *,
                   latency_ms: float = 0.0) -> str:
    """What first queries fetch of a store of ``metrics`` metrics x 20 series (one day, one
    block) at ``s3://promlab-bench/many`` (``options``: the server's s3fs storage options):
    the block's ``series.arrow`` bytes and GETs, and all objects', for a first instant query on
    one series and for a first query over every metric, each on a fresh read-only open. With
    ``latency_ms``, also the open and first one-series query times through
    :class:`~benchmarks.s3latency.LatencyProxy` (each request held back that long)."""
    from promlab.promql.engine import Engine
    from promlab.storage import open_store
    from promlab.storage.blocks import INDEX_FILE

    url = "s3://promlab-bench/many"
    end = write_many_metrics(url, metrics, storage_options=options, local_dir=f"{tmp}/w")
    lines = []
    for n, (what, expr) in enumerate((
            ("one series", f'node_metric_{metrics // 3:04d}{{instance="host3"}}'),
            ("every metric", 'count({__name__=~"node_metric_.+"})'))):
        with open_store(url, readonly=True, storage_options=options,
                        local_dir=f"{tmp}/r{n}") as ro:
            (blk,) = ro.blocks()
            fs: Any = ro.fs
            path = fs.join(blk.path, INDEX_FILE)
            rec = blk.meta.files[INDEX_FILE]
            before = fs.counters()
            Engine().instant(ro, expr, end)
            after, idx = fs.counters(), fs.object_counters(path)
            if n == 0:
                pieces = rec.get("pieces") or []
                batches = [int(p[1]) for p in pieces[1:-1]]
                lines.append(
                    f"S3, {metrics} metrics x 20 series x 24 h: series.arrow {rec['size'] / 1e3:.1f} KB "
                    f"in {len(batches)} metric batches (median {statistics.median(batches or [0]) / 1e3:.1f} KB), "
                    f"first piece {int(pieces[0][1]) / 1e3:.1f} KB, footer "
                    f"{int(pieces[-1][1]) / 1e3:.1f} KB" if pieces else
                    f"S3, {metrics} metrics: series.arrow {rec['size'] / 1e3:.1f} KB, no pieces")
            lines.append(
                f"  first instant query, {what}: series.arrow {idx['bytes_read'] / 1e3:.1f} KB "
                f"({100 * idx['bytes_read'] / rec['size']:.0f} % of it) in {idx['requests']} GETs; "
                f"all objects {(after['bytes_read'] - before['bytes_read']) / 1e3:.1f} KB in "
                f"{after['requests'] - before['requests']} requests")
    if latency_ms > 0:
        lines.append(_first_touch_latency(url, options, tmp, end, latency_ms,
                                          f'node_metric_{metrics // 3:04d}{{instance="host3"}}'))
    return "\n".join(lines)


def _first_touch_latency(url: str, options: dict[str, Any], tmp: str, end: int,
                         latency_ms: float, expr: str, repeat: int = 5) -> str:
    """Median open and first instant query times (fresh read-only opens) through a proxy
    holding each S3 request back ``latency_ms``; the query's requests and round trips."""
    from benchmarks.s3latency import LatencyProxy
    from promlab.promql.engine import Engine
    from promlab.storage import open_store

    opens, firsts, reqs = [], [], []
    rounds = math.nan
    with LatencyProxy(options["endpoint_url"], delay_ms=latency_ms) as proxy:
        slow = {**options, "endpoint_url": proxy.url}
        for k in range(repeat):
            t0 = time.perf_counter()
            with open_store(url, readonly=True, storage_options=slow,
                            local_dir=f"{tmp}/lat{k}") as ro:
                t1 = time.perf_counter()
                n0 = proxy.requests
                Engine().instant(ro, expr, end)
                firsts.append((time.perf_counter() - t1) * 1000)
                opens.append((t1 - t0) * 1000)
                reqs.append(proxy.requests - n0)
                fs: Any = ro.fs
                log = getattr(fs, "object_log", None)
                if log is not None:  # round trips: a plain GET, or prefetches taken together
                    (blk,) = ro.blocks()
                    rounds = sum(_round_trips(log(fs.join(blk.path, f)))
                                 for f in ("series.arrow", "samples.parquet"))
    return (f"  through a proxy adding {latency_ms:.0f} ms per S3 request: open "
            f"{statistics.median(opens):.0f} ms, first instant query for one series "
            f"{statistics.median(firsts):.0f} ms ({statistics.median(reqs):.0f} requests, "
            f"{rounds} round trips to the block's files)")


def _round_trips(log: list[tuple[str, int, int]]) -> int:
    """Round trips in an object's read log (``ObjectStoreFS.object_log``): each plain GET,
    and each group of prefetches started before the reader took the first of them."""
    n, pending = 0, False
    for kind, _, _ in log:
        if kind == "get":
            n += 1
        elif kind == "prefetch":
            pending = True
        elif pending:
            n, pending = n + 1, False
    return n + pending


def _combine_cost(dist: Session, start: float, end: float) -> None:
    print("\n| shards | combine ms (sum by status) | combine ms (topk 5) | wall ms |")
    print("|---|---|---|---|")
    engine: Any = dist.engine
    for shards in (2, 4, 8, 16, 32):
        engine.shards = shards
        row = []
        wall = 0.0
        for expr in ("sum by (status) (rate(http_requests_total[5m]))",
                     "topk(5, rate(http_requests_total[5m]))"):
            dist.evaluate(expr, start=start, end=end, step=60)
            t0 = time.perf_counter()
            dist.evaluate(expr, start=start, end=end, step=60)
            wall += time.perf_counter() - t0
            row.append(engine.last_stats.combine_s * 1e3)
        print(f"| {shards} | {row[0]:.1f} | {row[1]:.1f} | {wall * 1e3:.0f} |", flush=True)
    engine.shards = None


if __name__ == "__main__":
    raise SystemExit(main())
