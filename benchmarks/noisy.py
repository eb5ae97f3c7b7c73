"""Noisy neighbours: a healthy 1 s target's scrape-start lateness beside huge targets.

``python -m benchmarks.noisy [--big 2] [--series 200000] [--big-interval 10s] [--measure 40]
[--store parquet|memory]``

A separate process serves ``--big`` targets of ``--series`` series each (about 245 bytes a line:
200k series make a ~49 MB page, the issue 15 case) and one small target (100 series). promlab
scrapes the small one every second and the big ones every ``--big-interval`` into one store; the
figure is the small target's lateness (actual start - scheduled start) p50/p99/max over the
measured window, plus how many of its scrapes happened and the longest gap between them. The
window starts once the big targets' first scrape (which creates their 400k series) is parsed and
committed; the warm-up's own lateness is reported apart.
Goal (issue 15): p99 < 200 ms beside two 200k-series targets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

import promlab.scrape as scrape

LABEL_PAD = "x" * 120


def big_page(series: int, variant: int) -> bytes:
    """``series`` lines of about 245 bytes (10 families of long label sets)."""
    out = []
    per = max(series // 10, 1)
    for f in range(10):
        name = f"noisy_family_{f}_bytes_total"
        out.append(f"# HELP {name} A big family.\n# TYPE {name} counter\n")
        out.extend(f'{name}{{pod="pod-{s:07d}",namespace="ns-{s % 97}",container="c{s % 5}",'
                   f'pad="{LABEL_PAD}"}} {variant * 7 + s}\n' for s in range(per))
    return "".join(out).encode()


def small_page(variant: int) -> bytes:
    return "".join(f'healthy_metric{{i="{i}"}} {variant + i}\n' for i in range(100)).encode()


async def _serve(port: int, series: int) -> None:
    pages = {"big": [big_page(series, v) for v in range(2)], "small": [small_page(v) for v in range(2)]}
    count = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                kind = "big" if b"GET /big" in head else "small"
                count[0] += 1
                body = pages[kind][count[0] & 1]
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode())
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=64)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*, big: int = 2, series: int = 200_000, big_interval: str = "10s", measure_s: float = 40.0,
        warmup_s: float | None = None, store_kind: str = "parquet") -> dict[str, float]:
    """Run the scenario; returns the small target's lateness figures (milliseconds)."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.noisy", "--serve", str(port),
                               "--series", str(series)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    tmp = tempfile.TemporaryDirectory(prefix="promlab-bench-noisy-")
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"ready":
            raise RuntimeError("fake exporter did not start")
        cfg = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"}, "scrape_configs": [
            {"job_name": "healthy", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
             "metrics_path": "/small"},
            {"job_name": "noisy", "scrape_interval": big_interval, "scrape_timeout": big_interval,
             "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                 "labels": {"__metrics_path__": f"/big/{i}", "instance": f"big{i}"}}
                                for i in range(big)]}]}
        if store_kind == "memory":
            from promlab.storage import MemoryStorage

            store: Any = MemoryStorage()
        else:
            from promlab.storage import open_store

            store = open_store(os.path.join(tmp.name, "data"))
        handle = scrape.start(cfg, data=store)
        try:
            healthy = next(iter(handle.manager.pools["healthy"].loops.values()))
            t0 = time.monotonic()
            # Warm-up: the big targets' first scrape creates their series (the costly one): wait
            # until it is parsed and committed (the writer idle), then measure the steady state.
            limit = warmup_s if warmup_s is not None else 120.0
            noisy = list(handle.manager.pools["noisy"].loops.values())
            writer = handle.manager.writer
            while time.monotonic() - t0 < limit and (min(lp.scrapes for lp in noisy) < 1 or not writer.idle):
                time.sleep(0.2)
            warm_s = time.monotonic() - t0
            warm_log = list(healthy.scrape_log)[-healthy.scrapes:] if healthy.scrapes else []
            s0 = healthy.scrapes
            big0 = sum(lp.scrapes for lp in noisy)
            time.sleep(measure_s)
            log = list(healthy.scrape_log)[-(healthy.scrapes - s0):] if healthy.scrapes > s0 else []
            big_scrapes = sum(lp.scrapes for lp in noisy) - big0
            big_up = all(lp.health == "up" for lp in noisy)
        finally:
            handle.stop()
            if store_kind == "parquet":
                store.close()
        late = np.array([(ts - sched) for sched, ts, _ in log], np.float64)
        warm = np.array([(ts - sched) for sched, ts, _ in warm_log], np.float64)
        scheds = np.array([sched for sched, _, _ in log], np.float64)
        gaps = np.diff(scheds) if scheds.size > 1 else np.zeros(1)
        return {
            "healthy_scrapes": float(len(log)), "expected": measure_s,
            "failed": float(sum(1 for _, _, ok in log if not ok)),
            "lateness_p50_ms": float(np.percentile(late, 50)) if late.size else float("nan"),
            "lateness_p99_ms": float(np.percentile(late, 99)) if late.size else float("nan"),
            "lateness_max_ms": float(late.max()) if late.size else float("nan"),
            "max_gap_ms": float(gaps.max()), "big_scrapes": float(big_scrapes), "big_up": float(big_up),
            "warmup_s": warm_s, "warmup_scrapes": float(warm.size),
            "warmup_p99_ms": float(np.percentile(warm, 99)) if warm.size else float("nan"),
            "warmup_max_ms": float(warm.max()) if warm.size else float("nan"),
        }
    finally:
        server.terminate()
        server.wait(10)
        tmp.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", type=int, default=2)
    ap.add_argument("--series", type=int, default=200_000)
    ap.add_argument("--big-interval", default="10s")
    ap.add_argument("--measure", type=float, default=40.0)
    ap.add_argument("--store", choices=("memory", "parquet"), default="parquet")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds to wait at most for the big targets' first scrape (0: measure it)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve, args.series))
        return 0
    r = run(big=args.big, series=args.series, big_interval=args.big_interval, measure_s=args.measure,
            warmup_s=args.warmup, store_kind=args.store)
    print(f"big targets {args.big} x {args.series:,} series every {args.big_interval} "
          f"({r['big_scrapes']:.0f} scrapes, all up: {bool(r['big_up'])}); store={args.store}")
    print(f"healthy 1 s target: {r['healthy_scrapes']:.0f} scrapes in {args.measure:.0f} s "
          f"({r['failed']:.0f} failed), longest gap {r['max_gap_ms']:.0f} ms")
    print(f"lateness p50/p99/max {r['lateness_p50_ms']:.1f} / {r['lateness_p99_ms']:.1f} / "
          f"{r['lateness_max_ms']:.1f} ms")
    print(f"warm-up (big targets' first scrape parsed and committed): {r['warmup_s']:.0f} s, "
          f"{r['warmup_scrapes']:.0f} healthy scrapes, lateness p99/max {r['warmup_p99_ms']:.1f} / "
          f"{r['warmup_max_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
