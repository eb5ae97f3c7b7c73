"""PromQL benchmark: promlab's engine against a real Prometheus on the standard dataset.

The standard dataset (``benchmarks.dataset``) is backfilled into Prometheus with promtool and
loaded into a promlab :class:`~promlab.storage.MemoryStorage` (data warm in memory). Each query
runs as a range query over the whole span at ``--step`` and as an instant query at the end;
we report the median latency of both engines (Prometheus over HTTP, including JSON encoding
and decoding, and its own ``evalTotalTime`` from ``stats=all``), the ratios, promlab's peak
traced memory for the query, Prometheus's peak RSS, and whether the results agree (relative
1e-9; topk compares the selected values per step, since ties may pick other series).

Usage::

    python -m benchmarks.promql [--hours 24] [--scale 1.0] [--repeat 5] [--step 60]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import dataset, realprom
from promlab.errors import PromlabError
from promlab.model import Labels
from promlab.promql.engine import Engine, Result
from promlab.storage import MemoryStorage

QUERIES: list[tuple[str, str]] = [
    ("raw selector", 'node_memory_usage_bytes{kind="free"}'),
    ("rate", "rate(http_requests_total[5m])"),
    ("sum by rate", "sum by (status) (rate(http_requests_total[5m]))"),
    ("topk", "topk(5, rate(http_requests_total[5m]))"),
    ("histogram_quantile",
     "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("avg_over_time", "avg_over_time(node_memory_usage_bytes[10m])"),
    ("max_over_time", "max_over_time(node_memory_usage_bytes[1h])"),
    ("binop on()", "sum by (instance) (rate(http_requests_total[5m])) / on (instance) "
                   "rate(http_request_duration_seconds_count[5m])"),
    ("count by", "count by (method) (http_requests_total > 1000)"),
    ("subquery", "max_over_time(rate(http_requests_total[5m])[30m:1m])"),
    ("arith vector/scalar", "node_memory_usage_bytes / 1024 / 1024"),
]


def load_openmetrics(path: Path) -> MemoryStorage:
    """Load the dataset's simple ``series value timestamp`` lines into memory (vectorised)."""
    df = pd.read_csv(path, sep=" ", header=None, comment="#", names=["series", "value", "ts"],
                     dtype={"series": "string", "value": np.float64, "ts": np.float64},
                     engine="c")
    codes, uniques = pd.factorize(df["series"], sort=False)
    ts = np.round(df["ts"].to_numpy() * 1000).astype(np.int64)
    values = df["value"].to_numpy(np.float64)
    order = np.argsort(codes, kind="stable")
    codes_sorted = codes[order]
    bounds = np.searchsorted(codes_sorted, np.arange(len(uniques) + 1))
    store = MemoryStorage()
    for i, text in enumerate(uniques):
        rows = order[bounds[i]:bounds[i + 1]]
        store.add_series(_parse_series(str(text)), ts[rows], values[rows])
    return store


def _parse_series(text: str) -> Labels:
    name, _, rest = text.partition("{")
    pairs = {"__name__": name}
    for part in rest.rstrip("}").split('",'):
        if not part:
            continue
        k, _, v = part.partition("=")
        pairs[k] = v.strip('"')
    return Labels(pairs)


@dataclass
class Row:
    name: str
    mode: str
    promlab_ms: float
    prom_ms: float
    prom_eval_ms: float
    peak_mb: float
    series: int
    agree: str

    @property
    def ratio(self) -> float:
        return self.prom_ms / self.promlab_ms if self.promlab_ms else math.nan

    @property
    def eval_ratio(self) -> float:
        return self.prom_eval_ms / self.promlab_ms if self.promlab_ms else math.nan


def _ours_to_points(res: Result) -> dict[Labels, dict[int, float]]:
    return _theirs_to_points(res.to_frame().prom.to_prometheus_json())


def _theirs_to_points(data: dict[str, Any]) -> dict[Labels, dict[int, float]]:
    out: dict[Labels, dict[int, float]] = {}
    for item in data["result"]:
        pts = item.get("values") or [item["value"]]
        out[Labels(item["metric"])] = {round(float(t) * 1000): float(v) for t, v in pts}
    return out


def _agree(a: dict[Labels, dict[int, float]], b: dict[Labels, dict[int, float]]) -> str:
    if set(a) != set(b):
        return f"series differ ({len(a)} vs {len(b)})"
    worst = 0.0
    for ls, pa in a.items():
        pb = b[ls]
        if set(pa) != set(pb):
            return f"points differ for {ls}"
        for t, va in pa.items():
            vb = pb[t]
            if math.isnan(va) and math.isnan(vb):
                continue
            if va == vb:
                continue
            rel = abs(va - vb) / max(abs(va), abs(vb))
            worst = max(worst, rel)
    return "yes" if worst <= 1e-9 else f"max rel err {worst:.1e}"


def _by_step(a: dict[Labels, dict[int, float]]) -> dict[Labels, dict[int, float]]:
    """Sorted values per timestamp, as pseudo-series (topk ties pick arbitrary series)."""
    steps: dict[int, list[float]] = {}
    for pts in a.values():
        for t, v in pts.items():
            steps.setdefault(t, []).append(v)
    out: dict[Labels, dict[int, float]] = {}
    for t, vs in steps.items():
        for rank, v in enumerate(sorted(vs, reverse=True)):
            out.setdefault(Labels({"rank": str(rank)}), {})[t] = v
    return out


def _median_time(fn: Any, repeat: int) -> tuple[float, Any]:
    times = []
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def run(hours: float, scale: float, repeat: int, step_s: int) -> list[Row]:
    info = dataset.standard_dataset(hours=hours, scale=scale)
    spec = info.spec
    print(f"dataset: {info.series:,} series, {info.samples:,} samples ({info.path})", flush=True)
    t0 = time.perf_counter()
    store = load_openmetrics(info.path)
    print(f"promlab load: {time.perf_counter() - t0:.1f} s", flush=True)
    # Steps sit 30 s after round minutes: subquery sub-steps (round minutes) then never fall on
    # a window edge, where Prometheus 2.x (left-closed windows) and 3.x (left-open) differ.
    end_ms = (spec.end_ms // 60_000) * 60_000 - 30_000
    start_ms = end_ms - int(hours * 3600_000) + 60 * 60_000  # leave an hour for the windows
    engine = Engine(max_samples=2_000_000_000, timeout=None)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="promlab-bench-") as tmp:
        t0 = time.perf_counter()
        realprom.backfill(info.path, Path(tmp) / "data")
        print(f"promtool backfill: {time.perf_counter() - t0:.1f} s", flush=True)
        with realprom.prometheus(data_dir=Path(tmp) / "data") as prom:
            for name, expr in QUERIES:
                for mode in ("range", "instant"):
                    rows.append(_bench_one(engine, store, prom, name, expr, mode, start_ms,
                                           end_ms, step_s, repeat))
                    r = rows[-1]
                    print(f"{name:20s} {mode:8s} promlab {r.promlab_ms:8.1f} ms  prometheus "
                          f"{r.prom_ms:8.1f} ms (eval {r.prom_eval_ms:7.1f})  x{r.ratio:5.2f} "
                          f"(eval x{r.eval_ratio:5.2f})  peak {r.peak_mb:7.1f} MB  "
                          f"series {r.series:5d}  agree {r.agree}", flush=True)
            rss = _peak_rss_mb(prom.process.pid)
    print(f"Prometheus peak RSS: {rss:.0f} MB")
    return rows


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _bench_one(engine: Engine, store: MemoryStorage, prom: realprom.Prometheus, name: str,
               expr: str, mode: str, start_ms: int, end_ms: int, step_s: int,
               repeat: int) -> Row:
    if mode == "range":
        def ours() -> Result:
            return engine.range(store, expr, start_ms, end_ms, step_s * 1000)

        def theirs() -> dict[str, Any]:
            return prom.query_range(expr, start_ms / 1000, end_ms / 1000, step_s, stats="all")
    else:
        def ours() -> Result:
            return engine.instant(store, expr, end_ms)

        def theirs() -> dict[str, Any]:
            return prom.query(expr, end_ms / 1000, stats="all")
    try:
        ours()  # warm-up (and imports)
        t_ours, res = _median_time(ours, repeat)
        tracemalloc.start()
        ours()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    except PromlabError as exc:
        return Row(name, mode, math.nan, math.nan, math.nan, math.nan, 0,
                   f"promlab error: {exc}"[:80])
    theirs()
    evals: list[float] = []

    def theirs_timed() -> dict[str, Any]:
        d = theirs()
        evals.append(float(d.get("stats", {}).get("timings", {}).get("evalTotalTime", math.nan)))
        return d

    t_theirs, data = _median_time(theirs_timed, repeat)
    t_eval = statistics.median(evals) * 1000
    ours_pts, theirs_pts = _ours_to_points(res), _theirs_to_points(data)
    if expr.startswith("topk"):
        # Ties in topk may pick different series; compare the selected values per step.
        ours_pts, theirs_pts = _by_step(ours_pts), _by_step(theirs_pts)
    agree = _agree(ours_pts, theirs_pts)
    return Row(name, mode, t_ours, t_theirs, t_eval, peak / 1e6, len(res.value.labels)
               if hasattr(res.value, "labels") else 1, agree)


def table(rows: list[Row]) -> str:
    lines = ["| query | mode | promlab ms | Prometheus HTTP ms | Prometheus eval ms | speed-up (HTTP) "
             "| speed-up (eval) | promlab peak MB | series | agree |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.mode} | {r.promlab_ms:.1f} | {r.prom_ms:.1f} | "
                     f"{r.prom_eval_ms:.1f} | {r.ratio:.2f} | {r.eval_ratio:.2f} | "
                     f"{r.peak_mb:.1f} | {r.series} | {r.agree} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.promql", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--step", type=int, default=60, help="range-query step in seconds")
    args = ap.parse_args(argv)
    rows = run(args.hours, args.scale, args.repeat, args.step)
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
