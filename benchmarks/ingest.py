"""Ingest measurements: bulk import vs promtool, and bytes/sample of a real node_exporter scrape.

Usage::

    python -m benchmarks.ingest import [--file F] [--no-promtool] [--no-backfill]
    python -m benchmarks.ingest node [--seconds 180] [--interval 1]
    python -m benchmarks.ingest write [--new-commits 1000] [--new-per-commit 1000]
                                      [--targets 1000] [--samples-per-target 1000] [--rounds 10]
    python -m benchmarks.ingest headquery [--metrics 1000] [--per-metric 1000] [--new 1000]
                                          [--rounds 10] [--steps 1]

``import`` times ``promlab.importer.import_file`` into a fresh Parquet store (parse + append +
commit; with the default backfill path that includes writing the blocks) and then ``close()``
separately, each in wall-clock and CPU seconds (the machine may be shared), then
``promtool tsdb create-blocks-from openmetrics`` on the same file (wall and child CPU seconds).
The file defaults to the standard dataset (:mod:`promlab.datasets`).

``node`` starts ``prometheus-node-exporter`` on a free port, scrapes it every ``--interval``
seconds for ``--seconds`` into a fresh store (one :class:`~promlab.exposition.Parser`, one
commit per scrape, like the scrape loop), closes the store (flushing the head to a block) and
reports block bytes per sample.

``write`` measures the writer's commit cost against ``open_store`` (see :func:`bench_write`).

``headquery`` measures a query right after a commit that adds new series (churn) with a big
head (see :func:`bench_headquery`).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import realprom
from promlab import datasets

__all__ = ["bench_headquery", "bench_import", "bench_node", "bench_write", "main"]


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def bench_import(path: str | os.PathLike[str], *, promtool: bool = True, backfill: bool = True
                 ) -> dict[str, Any]:
    """Import ``path`` with promlab (and promtool); returns the figures."""
    from promlab.importer import import_file
    from promlab.storage import open_store

    out: dict[str, Any] = {"file": os.fspath(path), "bytes": os.path.getsize(path)}
    with tempfile.TemporaryDirectory(prefix="promlab-ingest-") as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        store = open_store(Path(tmp) / "promlab")
        stats = import_file(path, store, progress=False, backfill=backfill)
        w1, c1 = time.perf_counter(), time.process_time()
        store.close()
        w2, c2 = time.perf_counter(), time.process_time()
        with open_store(Path(tmp) / "promlab", readonly=True) as ro:
            s = ro.stats()
        out["samples"] = stats.samples
        out["promlab"] = {
            "import_wall_s": w1 - w0, "import_cpu_s": c1 - c0,
            "parse_wall_s": stats.parse_seconds, "append_wall_s": stats.append_seconds,
            "block_write_wall_s": stats.write_seconds,
            "close_wall_s": w2 - w1, "close_cpu_s": c2 - c1,
            "samples_per_wall_s": stats.samples / (w1 - w0),
            "samples_per_cpu_s": stats.samples / (c1 - c0),
            "blocks": s["blocks"], "block_bytes": s["block_bytes"],
            "bytes_per_sample": s["block_bytes"] / max(stats.samples, 1),
        }
        if promtool and realprom.find_binary("promtool") is not None:
            cc = _child_cpu()
            res = realprom.backfill(path, Path(tmp) / "prometheus")
            cpu = _child_cpu() - cc
            out["promtool"] = {"wall_s": res.seconds, "cpu_s": cpu,
                               "samples_per_wall_s": res.samples / res.seconds,
                               "samples_per_cpu_s": res.samples / cpu if cpu else float("nan"),
                               "blocks": res.blocks, "block_bytes": res.bytes,
                               "bytes_per_sample": res.bytes_per_sample}
    return out


def bench_node(seconds: float = 180.0, interval: float = 1.0) -> dict[str, Any]:
    """Scrape node_exporter into a fresh store; returns samples, bytes and bytes/sample."""
    import httpx

    from promlab.exposition import ACCEPT_HEADER, NO_TIMESTAMP, Parser
    from promlab.model import now_ms
    from promlab.storage import open_store

    tmp = tempfile.mkdtemp(prefix="promlab-node-")
    try:
        parser = Parser()
        samples = scrapes = 0
        with realprom.node_exporter() as ne, open_store(Path(tmp) / "data") as store:
            client = httpx.Client(timeout=10, headers={"Accept": ACCEPT_HEADER})
            try:
                deadline = time.monotonic() + seconds
                nxt = time.monotonic()
                while nxt < deadline:
                    ts = now_ms()
                    r = client.get(ne.url + "/metrics")
                    page = parser.parse(r.content, r.headers.get("content-type"))
                    t = np.where(page.timestamps_ms == NO_TIMESTAMP, ts, page.timestamps_ms)
                    app = store.appender()
                    app.append_batch(page.series, page.refs, t, page.values)
                    samples += app.commit().appended
                    scrapes += 1
                    nxt += interval
                    time.sleep(max(0.0, nxt - time.monotonic()))
            finally:
                client.close()
        with open_store(Path(tmp) / "data", readonly=True) as ro:
            s = ro.stats()
            sample_file = sum(os.path.getsize(os.path.join(b.path, "samples.parquet")) for b in ro.blocks())
        return {"seconds": seconds, "interval_s": interval, "scrapes": scrapes,
                "series": len(parser.series), "samples": samples, "blocks": s["blocks"],
                "block_bytes": s["block_bytes"], "bytes_per_sample": s["block_bytes"] / max(samples, 1),
                "samples_file_bytes_per_sample": sample_file / max(samples, 1)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_write(new_commits: int = 1000, new_per_commit: int = 1000, targets: int = 1000,
                samples_per_target: int = 1000, rounds: int = 10) -> dict[str, Any]:
    """Writer-side cost of ``open_store`` commits (fsync off, so CPU is measured).

    (a) ``new_commits`` commits each adding ``new_per_commit`` new series (a scrape warm-up);
    (b) steady state: ``targets`` series lists of ``samples_per_target`` series each (the
    scraper passes each target's parser list, the same object every scrape), warmed up with
    one commit, then ``rounds`` commits of all targets; the median commit latency and the
    cost per 1,000 samples.
    """
    from promlab.model import Labels
    from promlab.storage import open_store

    out: dict[str, Any] = {}
    tmp = tempfile.mkdtemp(prefix="promlab-write-")
    try:
        with open_store(Path(tmp) / "a", wal_fsync=False, auto_compact=False) as st:
            total, slowest = 0.0, 0.0
            for c in range(new_commits):
                series = [Labels({"__name__": "m", "c": str(c), "i": str(i)}) for i in range(new_per_commit)]
                idx = np.arange(new_per_commit, dtype=np.int64)
                app = st.appender()
                app.append_batch(series, idx, np.full(new_per_commit, 1000 + c, np.int64),
                                 np.ones(new_per_commit))
                t0 = time.perf_counter()
                app.commit()
                dt = time.perf_counter() - t0
                total += dt
                slowest = max(slowest, dt)
            out["create"] = {"series": new_commits * new_per_commit, "commits": new_commits,
                             "total_s": total, "mean_commit_ms": total / new_commits * 1e3,
                             "slowest_commit_ms": slowest * 1e3}
        lists = [[Labels({"__name__": "m", "target": str(t), "i": str(i)})
                  for i in range(samples_per_target)] for t in range(targets)]
        idx = np.arange(samples_per_target, dtype=np.int64)
        vals = np.ones(samples_per_target)
        with open_store(Path(tmp) / "b", wal_fsync=False, auto_compact=False) as st:
            times = []
            for r in range(rounds + 1):
                ts = np.full(samples_per_target, 1000 + 15_000 * r, np.int64)
                app = st.appender()
                for series in lists:
                    app.append_batch(series, idx, ts, vals)
                t0 = time.perf_counter()
                app.commit()
                times.append(time.perf_counter() - t0)
            steady = sorted(times[1:])[len(times[1:]) // 2]
            n = targets * samples_per_target
            out["steady"] = {"samples_per_commit": n, "warmup_commit_ms": times[0] * 1e3,
                             "median_commit_ms": steady * 1e3,
                             "ms_per_1000_samples": steady * 1e3 / (n / 1000)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def bench_headquery(metrics: int = 1000, per_metric: int = 1000, new: int = 1000,
                    rounds: int = 10, steps: int = 1) -> dict[str, Any]:
    """A one-metric ``select`` right after each commit that adds ``new`` series.

    The head holds ``metrics`` × ``per_metric`` series (``steps`` samples each, one commit per
    metric);
    then ``rounds`` times: a commit of ``new`` new series (a churned metric, new label values
    every round) and, right after, ``querier()`` + ``select`` of one existing metric
    (``per_metric`` series). Reports the median querier-creation and select times.
    """
    from promlab.model import Labels, Matcher, MatchType
    from promlab.storage import open_store

    out: dict[str, Any] = {}
    tmp = tempfile.mkdtemp(prefix="promlab-headquery-")
    try:
        with open_store(Path(tmp) / "a", wal_fsync=False, auto_compact=False) as st:
            idx = np.repeat(np.arange(per_metric, dtype=np.int64), steps)
            ts0 = np.tile(np.arange(steps, dtype=np.int64) * 10, per_metric)
            t0 = time.perf_counter()
            for m in range(metrics):
                series = [Labels({"__name__": f"m{m}", "instance": f"host{i % 100}", "i": str(i)})
                          for i in range(per_metric)]
                app = st.appender()
                app.append_batch(series, idx, 1000 + ts0, np.ones(idx.shape[0]))
                app.commit()
            out["setup_s"] = time.perf_counter() - t0
            out["head_series"] = st.stats()["head_series"]
            out["head_samples"] = st.stats()["head_samples"]
            sel = [Matcher(MatchType.EQUAL, "__name__", f"m{metrics // 2}")]
            q = st.querier(0, 10_000_000)
            q.select(sel)  # warm: the first index build is not what is measured
            nidx = np.arange(new, dtype=np.int64)
            qtimes, stimes, ctimes = [], [], []
            n_found = 0
            for r in range(rounds):
                churn = [Labels({"__name__": "churn", "round": str(r), "i": str(i)}) for i in range(new)]
                app = st.appender()
                app.append_batch(churn, nidx, np.full(new, 2000 + r, np.int64), np.ones(new))
                t0 = time.perf_counter()
                app.commit()
                t1 = time.perf_counter()
                q = st.querier(0, 10_000_000)
                t2 = time.perf_counter()
                ss = q.select(sel)
                t3 = time.perf_counter()
                n_found = len(ss.labels)
                ctimes.append(t1 - t0)
                qtimes.append(t2 - t1)
                stimes.append(t3 - t2)
            med = lambda xs: sorted(xs)[len(xs) // 2] * 1e3  # noqa: E731
            out["selected_series"] = n_found
            out["median_commit_ms"] = med(ctimes)
            out["median_querier_ms"] = med(qtimes)
            out["median_select_ms"] = med(stimes)
            out["median_query_total_ms"] = med([a + b for a, b in zip(qtimes, stimes, strict=True)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.ingest", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser("import", help="bulk import: promlab vs promtool")
    imp.add_argument("--file", help="OpenMetrics file (default: the standard dataset)")
    imp.add_argument("--no-promtool", action="store_true")
    imp.add_argument("--no-backfill", action="store_true", help="append through WAL + head")
    node = sub.add_parser("node", help="bytes/sample of a node_exporter scrape")
    node.add_argument("--seconds", type=float, default=180.0)
    node.add_argument("--interval", type=float, default=1.0)
    wr = sub.add_parser("write", help="commit cost: series creation and steady state")
    wr.add_argument("--new-commits", type=int, default=1000)
    wr.add_argument("--new-per-commit", type=int, default=1000)
    wr.add_argument("--targets", type=int, default=1000)
    wr.add_argument("--samples-per-target", type=int, default=1000)
    wr.add_argument("--rounds", type=int, default=10)
    hq = sub.add_parser("headquery", help="select right after a commit adding new series")
    hq.add_argument("--metrics", type=int, default=1000)
    hq.add_argument("--per-metric", type=int, default=1000)
    hq.add_argument("--new", type=int, default=1000)
    hq.add_argument("--rounds", type=int, default=10)
    hq.add_argument("--steps", type=int, default=1, help="samples per series in the head")
    args = ap.parse_args(argv)
    if args.cmd == "headquery":
        r = bench_headquery(args.metrics, args.per_metric, args.new, args.rounds, args.steps)
    elif args.cmd == "write":
        r = bench_write(args.new_commits, args.new_per_commit, args.targets,
                        args.samples_per_target, args.rounds)
    elif args.cmd == "import":
        path = args.file or datasets.standard_dataset().path
        r = bench_import(path, promtool=not args.no_promtool, backfill=not args.no_backfill)
    else:
        if realprom.find_binary("node_exporter") is None:
            print("node_exporter not installed", file=sys.stderr)
            return 1
        r = bench_node(args.seconds, args.interval)
    for k, v in r.items():
        if isinstance(v, dict):
            print(f"{k}:")
            for k2, v2 in v.items():
                print(f"  {k2:22} {v2:,.3f}" if isinstance(v2, float) else f"  {k2:22} {v2}")
        else:
            print(f"{k:24} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
