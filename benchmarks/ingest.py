"""Ingest measurements: bulk import vs promtool, and bytes/sample of a real node_exporter scrape.

Usage::

    python -m benchmarks.ingest import [--file F] [--no-promtool] [--no-backfill]
    python -m benchmarks.ingest node [--seconds 180] [--interval 1]

``import`` times ``promlab.importer.import_file`` into a fresh Parquet store (parse + append +
commit; with the default backfill path that includes writing the blocks) and then ``close()``
separately, each in wall-clock and CPU seconds (the machine may be shared), then
``promtool tsdb create-blocks-from openmetrics`` on the same file (wall and child CPU seconds).
The file defaults to the standard dataset (:mod:`benchmarks.dataset`).

``node`` starts ``prometheus-node-exporter`` on a free port, scrapes it every ``--interval``
seconds for ``--seconds`` into a fresh store (one :class:`~promlab.exposition.Parser`, one
commit per scrape, like the scrape loop), closes the store (flushing the head to a block) and
reports block bytes per sample.
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

from benchmarks import dataset, realprom

__all__ = ["bench_import", "bench_node", "main"]


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
    args = ap.parse_args(argv)
    if args.cmd == "import":
        path = args.file or dataset.standard_dataset().path
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
