"""Scrape throughput: N fake exporters × 1,000 samples at a 15 s interval.

``python -m benchmarks.scrape [--targets 1000] [--interval 15s] [--measure 30] [--store null|memory|parquet]``

A separate process serves every target from one asyncio server (target ``i`` is the path
``/metrics/i``; each page has 1,000 samples in 10 families). promlab scrapes them all; after one
interval of warm-up (first scrapes create the series) it measures for ``--measure`` seconds:

* samples/s appended (scrape samples + synthetic series),
* CPU of the scraping process (all threads: process CPU time / wall) and that per 10k samples/s,
* scrape-start lateness p50/p99.

The CPU is shared with whatever else runs on the machine, so the figures are upper bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import numpy as np

import promlab.scrape as scrape
from promlab.model import Labels

SAMPLES_PER_PAGE = 1000


def make_page(variant: int) -> bytes:
    lines = []
    for f in range(10):
        name = f"bench_metric_{f}_total"
        lines.append(f"# HELP {name} A benchmark counter.\n# TYPE {name} counter\n")
        for s in range(SAMPLES_PER_PAGE // 10):
            lines.append(f'{name}{{shard="{s % 7}",series="s{s}",path="/api/v{s % 3}/items"}} '
                         f"{(variant + 1) * 1000 + s * 3 + f}\n")
    return "".join(lines).encode()


async def _serve(port: int) -> None:
    pages = [make_page(v) for v in range(2)]
    heads = [f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {len(p)}\r\n\r\n".encode()
             for p in pages]
    counter = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                counter[0] += 1
                v = counter[0] & 1
                writer.write(heads[v] + pages[v])
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


class _NullStore:
    """Counts appended samples and keeps nothing (isolates the scraper's own cost)."""

    def __init__(self) -> None:
        self.samples = 0
        self.lock = threading.Lock()

    def appender(self) -> _NullStore:
        return self

    def append_batch(self, series: Any, index: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        self.samples += int(index.shape[0])

    def append(self, labels: Labels, ts: int, value: float) -> None:
        self.samples += 1

    def commit(self) -> None:
        return None

    def rollback(self) -> None:
        pass

    def querier(self, mint: int, maxt: int) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(targets: int, interval: str, measure_s: float, store_kind: str) -> dict[str, float]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.scrape", "--serve", str(port)],
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    tmp = tempfile.TemporaryDirectory(prefix="promlab-bench-scrape-")
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise RuntimeError("fake exporter did not start")
        cfg = {"global": {"scrape_interval": interval},
               "scrape_configs": [{"job_name": "bench", "static_configs": [
                   {"targets": [f"127.0.0.1:{port}"], "labels": {"__metrics_path__": f"/metrics/{i}",
                                                                  "instance": f"t{i}"}}
                   for i in range(targets)]}]}
        if store_kind == "null":
            store: Any = _NullStore()
        elif store_kind == "memory":
            from promlab.storage import MemoryStorage

            store = MemoryStorage()
        else:
            from promlab.storage import open_store

            store = open_store(os.path.join(tmp.name, "data"))
        handle = scrape.start(cfg, data=store)
        try:
            # Warm-up: the first scrape of a target creates its series (label work ~10x a steady
            # scrape), so wait until every target has been scraped twice.
            iv = handle.config.global_config.scrape_interval_ms / 1000
            t_warm = time.monotonic()
            while time.monotonic() - t_warm < 8 * iv:
                time.sleep(1)
                if (handle.targets()["scrapes"] >= 2).all():
                    break
            # ... and until the backlog of those first scrapes is gone (starts are on time again).
            while time.monotonic() - t_warm < 12 * iv:
                recent = handle.lateness()[-100:]
                if recent.size and np.percentile(recent, 99) < 0.1:
                    break
                time.sleep(1)
            warmup_s = time.monotonic() - t_warm
            m = handle.manager
            a0, c0, w0, l0 = m.samples_appended, time.process_time(), time.monotonic(), len(m.lateness)
            time.sleep(measure_s)
            a1, c1, w1 = m.samples_appended, time.process_time(), time.monotonic()
            late = np.array(list(m.lateness)[l0:]) if len(m.lateness) < m.lateness.maxlen else handle.lateness()
            df = handle.targets()
            commits = np.array(list(m.commit_seconds))
            errs = df.loc[df["health"] == "down", "last_error"].str.slice(0, 80).value_counts().head(3)
            for text, n in errs.items():
                print(f"  down: {n} x {text}", file=sys.stderr)
            n_commits = m.commits
        finally:
            t_stop = time.monotonic()
            handle.stop()
            print(f"stopped in {time.monotonic() - t_stop:.1f} s", file=sys.stderr)
            if store_kind == "parquet":
                store.close()
        wall = w1 - w0
        rate = (a1 - a0) / wall
        cpu = (c1 - c0) / wall
        return {
            "targets": targets, "up": float((df["health"] == "up").mean()), "samples_per_s": rate,
            "cpu_cores": cpu, "cpu_per_10k_samples_s": cpu / (rate / 10_000) if rate else float("nan"),
            "lateness_p50_ms": float(np.percentile(late, 50) * 1000) if late.size else float("nan"),
            "lateness_p99_ms": float(np.percentile(late, 99) * 1000) if late.size else float("nan"),
            "scrapes_measured": float(late.size), "warmup_s": warmup_s, "commits": float(n_commits),
            "commit_p99_ms": float(np.percentile(commits, 99) * 1000) if commits.size else float("nan"),
            "commit_max_ms": float(commits.max() * 1000) if commits.size else float("nan"),
        }
    finally:
        server.terminate()
        server.wait(10)
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--interval", default="15s")
    ap.add_argument("--measure", type=float, default=30.0, help="seconds measured after warm-up")
    ap.add_argument("--store", choices=("null", "memory", "parquet"), default="parquet")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    r = run(args.targets, args.interval, args.measure, args.store)
    print(f"targets={r['targets']} store={args.store} interval={args.interval} up={r['up']:.0%} "
          f"(warm-up {r['warmup_s']:.0f} s, measured {args.measure:.0f} s)")
    print(f"samples/s ingested   {r['samples_per_s']:,.0f}")
    print(f"CPU (cores)          {r['cpu_cores']:.3f}   per 10k samples/s: {r['cpu_per_10k_samples_s']:.3f}")
    print(f"lateness p50 / p99   {r['lateness_p50_ms']:.1f} ms / {r['lateness_p99_ms']:.1f} ms "
          f"({r['scrapes_measured']:.0f} scrapes)")
    print(f"store commits        {r['commits']:.0f} total, p99 {r['commit_p99_ms']:.1f} ms, "
          f"max {r['commit_max_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
