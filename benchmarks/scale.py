"""Scale-out benchmark: the ``benchmarks.promql`` queries on 1 and 2 local Dask workers.

``python -m benchmarks.scale [--hours H] [--scale S] [--repeat N]`` imports the standard dataset
into a temporary store, starts a ``LocalCluster`` of 1 then 2 worker processes (one thread
each) that open the store themselves, and runs every query as a range query (1 h to the end,
60 s steps). Per query and worker count it prints the wall time, the phases (read and evaluate:
worker seconds summed over shards; wait: client wall time until the shards answered; combine:
client seconds), samples read and bytes sent back to the client, and checks the answer against
the single-process engine. Then the combine cost for 2..32 shards of one aggregation.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.promql import QUERIES, import_store
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
    args = ap.parse_args(argv)
    from distributed import Client, LocalCluster

    info = datasets.standard_dataset(hours=args.hours, scale=args.scale)
    print(f"dataset: {info.series:,} series, {info.samples:,} samples", flush=True)
    end = info.spec.end_ms / 1000 - 30
    start = end - 3600
    with tempfile.TemporaryDirectory(prefix="promlab-scale-") as tmp:
        data = Path(tmp) / "data"
        print(f"import: {import_store(info.path, data):.1f} s", flush=True)
        base: dict[str, tuple[float, Any]] = {}
        with Session(str(data), read_only=True) as one:
            for name, expr in QUERIES:
                one.evaluate(expr, start=start, end=end, step=60)
                t, res, _ = _run(one, expr, start, end, args.repeat)
                base[name] = (t, res.value)
        print("| query | workers | ms | one process ms | read s | eval s | wait s | combine ms "
              "| samples | MB to client | same |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client, \
                    Session(str(data), read_only=True, cluster=client) as dist:
                for name, expr in QUERIES:
                    dist.evaluate(expr, start=start, end=end, step=60)  # workers open + warm
                    t, res, st = _run(dist, expr, start, end, args.repeat)
                    same = _same(base[name][1], res.value)
                    print(f"| {name} | {workers} | {t * 1e3:.0f} | {base[name][0] * 1e3:.0f} | "
                          f"{st.read_s:.3f} | {st.eval_s:.3f} | {st.wait_s:.3f} | "
                          f"{st.combine_s * 1e3:.1f} | {st.samples:,} | "
                          f"{st.bytes_to_client / 1e6:.2f} | {'yes' if same else 'NO'} |",
                          flush=True)
                if workers == 2:
                    _combine_cost(dist, start, end)
    return 0


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
