"""Scrape throughput: N fake exporters × 1,000 samples at a 15 s interval.

``python -m benchmarks.scrape [--targets 1000] [--interval 15s] [--measure 30] [--store null|memory|parquet]``

A separate process serves every target from one asyncio server (target ``i`` is the path
``/metrics/i``; each page has 1,000 samples in 10 families). promlab scrapes them all; after one
interval of warm-up (first scrapes create the series) it measures for ``--measure`` seconds:

* samples/s appended (scrape samples + synthetic series),
* CPU of the scraping process only (psutil; the exporters are another process), all threads and
  split into the event-loop thread and the store writer thread, and that per 10k samples/s,
* scrape-start lateness (actual start - scheduled start) p50/p99/max over every scrape started in
  the window, store commit latency p50/p99/max and failed scrapes.

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
import psutil

import promlab.scrape as scrape
from promlab import progress as _progress
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


def _cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def _thread_cpu(proc: psutil.Process, names: dict[int | None, str]) -> dict[str, float]:
    """CPU seconds per thread name (threads started later are looked up again)."""
    names = {**names, **{t.native_id: t.name for t in threading.enumerate()}}
    out: dict[str, float] = {}
    for t in proc.threads():
        name = names.get(t.id, "other")
        out[name] = out.get(name, 0.0) + t.user_time + t.system_time
    return out


def _failures(m: Any) -> int:
    """Failed scrapes so far (all loops' scrape counters minus their up ones is not kept, so
    count the ``ok=False`` entries of each loop's recent log)."""
    return sum(sum(1 for _, _, ok in lp.scrape_log if not ok)
               for pool in list(m.pools.values()) for lp in list(pool.loops.values()))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(targets: int, interval: str, measure_s: float, store_kind: str, *,
        progress: bool | None = None) -> dict[str, float]:
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
            with _progress.bar(progress, total=round(12 * iv), desc="warm-up (at most)", unit="s",
                               bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s") as wbar:
                while time.monotonic() - t_warm < 8 * iv:
                    time.sleep(1)
                    wbar.update(round(time.monotonic() - t_warm) - wbar.n)
                    if (handle.targets()["scrapes"] >= 2).all():
                        break
                # ... and until the backlog of those first scrapes is gone (starts are on time again).
                while time.monotonic() - t_warm < 12 * iv:
                    recent = handle.lateness()[-100:]
                    if recent.size and np.percentile(recent, 99) < 0.1:
                        break
                    time.sleep(1)
                    wbar.update(round(time.monotonic() - t_warm) - wbar.n)
            warmup_s = time.monotonic() - t_warm
            m = handle.manager
            proc = psutil.Process()
            by_name = {t.native_id: t.name for t in threading.enumerate()}
            k0 = m.commits
            f0 = _failures(m)
            a0, c0, w0, l0 = m.samples_appended, _cpu(proc), time.monotonic(), len(m.lateness)
            t0 = _thread_cpu(proc, by_name)
            _progress.sleep(progress, measure_s, desc="measuring")
            a1, c1, w1 = m.samples_appended, _cpu(proc), time.monotonic()
            t1 = _thread_cpu(proc, by_name)
            late = np.array(list(m.lateness)[l0:]) if len(m.lateness) < m.lateness.maxlen else handle.lateness()
            df = handle.targets()
            n_window = min(m.commits - k0, len(m.commit_seconds))
            commits = np.array(list(m.commit_seconds)[len(m.commit_seconds) - n_window:])
            failures = _failures(m) - f0
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
        threads = {k: (t1.get(k, 0.0) - t0.get(k, 0.0)) / wall for k in t1}
        return {
            "targets": targets, "up": float((df["health"] == "up").mean()), "samples_per_s": rate,
            "cpu_cores": cpu, "cpu_per_10k_samples_s": cpu / (rate / 10_000) if rate else float("nan"),
            "lateness_p50_ms": float(np.percentile(late, 50) * 1000) if late.size else float("nan"),
            "lateness_p99_ms": float(np.percentile(late, 99) * 1000) if late.size else float("nan"),
            "lateness_max_ms": float(late.max() * 1000) if late.size else float("nan"),
            "scrapes_measured": float(late.size), "warmup_s": warmup_s, "commits": float(commits.size),
            "commits_total": float(n_commits), "failures": float(failures),
            "commit_p50_ms": float(np.percentile(commits, 50) * 1000) if commits.size else float("nan"),
            "commit_p99_ms": float(np.percentile(commits, 99) * 1000) if commits.size else float("nan"),
            "commit_max_ms": float(commits.max() * 1000) if commits.size else float("nan"),
            "cpu_loop_cores": threads.get("promlab-scrape", 0.0),
            "cpu_writer_cores": sum(v for k, v in threads.items() if "writer" in k),
        }
    finally:
        server.terminate()
        server.wait(10)
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--interval", default="15s")
    ap.add_argument("--measure", type=float, default=60.0, help="seconds measured after warm-up")
    ap.add_argument("--store", choices=("null", "memory", "parquet"), default="parquet")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    r = run(args.targets, args.interval, args.measure, args.store, progress=True)
    print(f"targets={r['targets']} store={args.store} interval={args.interval} up={r['up']:.0%} "
          f"(warm-up {r['warmup_s']:.0f} s, measured {args.measure:.0f} s)")
    print(f"samples/s ingested   {r['samples_per_s']:,.0f}")
    print(f"CPU (cores)          {r['cpu_cores']:.3f}   per 10k samples/s: {r['cpu_per_10k_samples_s']:.3f}"
          f"   (event loop {r['cpu_loop_cores']:.3f}, writer {r['cpu_writer_cores']:.3f})")
    print(f"lateness p50/p99/max {r['lateness_p50_ms']:.1f} / {r['lateness_p99_ms']:.1f} / "
          f"{r['lateness_max_ms']:.1f} ms ({r['scrapes_measured']:.0f} scrapes, {r['failures']:.0f} failed)")
    print(f"store commits        {r['commits']:.0f} in window, p50/p99/max {r['commit_p50_ms']:.1f} / "
          f"{r['commit_p99_ms']:.1f} / {r['commit_max_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
