"""Rules benchmark: backtest of one alerting rule over a month of history, against Prometheus.

Data: ``--series`` gauges ``queue_depth{instance, job}`` (default 1,000) sampled every minute for
``--days`` days (default 30: 43.2 M samples), integers 0..100 with a daily cycle, noise and about
one incident a day per series (values 85..100 for 2..40 minutes). A purpose-built generator
writes the same samples straight into a promlab store (``store.backfill()``) and as an
OpenMetrics file that ``promtool tsdb create-blocks-from openmetrics`` turns into Prometheus
blocks.

Rule: ``alert: QueueHigh, expr: queue_depth > 80, for: 5m`` evaluated every minute over the
whole span. Timed:

- promlab backtest (``promlab.rules.backtest`` on the store opened read-only): first run on a
  freshly opened store (cold) and the median of ``--repeat`` runs (warm); the range query alone
  for reference; peak traced memory (tracemalloc) and the process's peak RSS;
- Prometheus: the same expression as range queries over the same span and step. Its API
  refuses more than 11,000 steps per query, so the span is split into consecutive queries
  (as Grafana does); the times are summed (HTTP, and Prometheus's own ``evalTotalTime``).
  Median of ``--repeat`` after one warm-up.

Agreement: the number of (series, step) points where the expression is true must be equal.

Usage::

    python -m benchmarks.rules [--series 1000] [--days 30] [--repeat 3] [--work-dir DIR]

``--unittest`` times a long rule unit test instead (:mod:`benchmarks.rules_unittest`):
``promlab test rules`` against ``promtool test rules`` on one generated file, ``--series``
input series of ``--points`` points (defaults 20 and 10,000)::

    python -m benchmarks.rules --unittest [--series 20] [--points 10000] [--interval 15s]
        [--eval-interval 1m] [--repeat 1] [--work-dir DIR] [--profile FILE] [--alerts-first]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import realprom
from promlab import progress as _progress
from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.rules import AlertingRule, backtest
from promlab.rules import template as _template  # noqa: F401 (loaded before the timed runs)
from promlab.storage import open_store

T0_S = 1_704_067_200  # 2024-01-01T00:00:00Z
STEP_S = 60
EXPR = "queue_depth > 80"
RULE = AlertingRule(name="QueueHigh", expr=EXPR, for_ms=300_000,
                    annotations={"summary": "queue of {{ $labels.instance }} at {{ $value }}"})
#: Prometheus's limit of points per series in one range query.
PROM_MAX_STEPS = 11_000


def generate(n_series: int, days: float, seed: int = 1) -> np.ndarray:
    """``(n_series, steps)`` int16 values 0..100 (see the module docstring)."""
    rng = np.random.default_rng(seed)
    steps = int(days * 1440)
    t = np.arange(steps)
    phase = rng.uniform(0, 2 * np.pi, (n_series, 1))
    base = 40 + 15 * np.sin(2 * np.pi * t / 1440 + phase)
    vals = base + rng.normal(0, 6, (n_series, steps))
    n_inc = max(1, int(days))
    for s in range(n_series):
        starts = rng.integers(0, steps, n_inc)
        lens = rng.integers(2, 41, n_inc)
        for a, n in zip(starts.tolist(), lens.tolist(), strict=True):
            vals[s, a:a + n] = rng.uniform(85, 100, min(n, steps - a))
    return np.clip(np.rint(vals), 0, 100).astype(np.int16)


def _labels(n_series: int) -> list[Labels]:
    return [Labels({"__name__": "queue_depth", "instance": f"host-{i:04d}:9100", "job": "api"})
            for i in range(n_series)]


def write_store(path: Path, values: np.ndarray) -> float:
    """Write the samples into a new promlab store (bulk backfill); seconds."""
    t0 = time.perf_counter()
    labels = _labels(values.shape[0])
    ts = (T0_S + STEP_S * np.arange(values.shape[1], dtype=np.int64)) * 1000
    with open_store(path) as store:
        bf = store.backfill()
        for lo in range(0, len(labels), 100):
            block = values[lo:lo + 100]
            idx = np.repeat(np.arange(lo, lo + block.shape[0], dtype=np.int64), block.shape[1])
            bf.add(labels, idx, np.tile(ts, block.shape[0]), block.ravel().astype(np.float64))
        bf.finish()
    return time.perf_counter() - t0


def write_openmetrics(path: Path, values: np.ndarray) -> None:
    """The same samples as OpenMetrics text, fixed-width lines built with numpy."""
    n_s, n_t = values.shape
    ts_txt = np.array([list(str(T0_S + STEP_S * i).encode()) for i in range(n_t)], np.uint8)
    with open(path, "wb") as f:
        f.write(b"# HELP queue_depth Items waiting.\n# TYPE queue_depth gauge\n")
        for s, ls in enumerate(_labels(n_s)):
            prefix = f'queue_depth{{instance="{ls["instance"]}",job="api"}} '.encode()
            p = len(prefix)
            line = np.empty((n_t, p + 3 + 1 + ts_txt.shape[1] + 1), np.uint8)
            line[:, :p] = np.frombuffer(prefix, np.uint8)
            v = values[s].astype(np.int64)
            line[:, p] = 48 + v // 100
            line[:, p + 1] = 48 + v // 10 % 10
            line[:, p + 2] = 48 + v % 10
            line[:, p + 3] = 32
            line[:, p + 4:-1] = ts_txt
            line[:, -1] = 10
            f.write(line.tobytes())
        f.write(b"# EOF\n")


def promtool_backfill(om: Path, data: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([realprom.find_binary("promtool") or "promtool", "tsdb", "create-blocks-from",
                    # promtool parses the whole file once per block window: 20-day blocks
                    # make that two passes over a month instead of forty.
                    "openmetrics", "--max-block-duration=1000h", str(om), str(data)],
                   check=True, capture_output=True)
    return time.perf_counter() - t0


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _prom_range(prom: realprom.Prometheus, start_s: int, end_s: int) -> tuple[float, float, int]:
    """HTTP seconds, eval seconds and points of the expression over the span, in chunks."""
    http = evals = 0.0
    points = 0
    lo = start_s
    while lo <= end_s:
        hi = min(end_s, lo + (PROM_MAX_STEPS - 1) * STEP_S)
        t0 = time.perf_counter()
        d = prom.query_range(EXPR, lo, hi, STEP_S, stats="all")
        http += time.perf_counter() - t0
        evals += float(d.get("stats", {}).get("timings", {}).get("evalTotalTime", math.nan))
        points += sum(len(r["values"]) for r in d["result"])
        lo = hi + STEP_S
    return http, evals, points


def prepare(work: Path, n_series: int, days: float) -> None:
    """Generate the data into ``work/promlab`` and ``work/prom`` (kept when already there)."""
    done = work / f"done-{n_series}-{days:g}"
    if done.exists():
        print(f"reusing the stores in {work}", flush=True)
        return
    t0 = time.perf_counter()
    values = generate(n_series, days)
    print(f"generated {n_series:,} series x {values.shape[1]:,} steps = {values.size:,} samples "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)
    store_dir, om, prom_dir = work / "promlab", work / "data.om", work / "prom"
    print(f"promlab store write: {write_store(store_dir, values):.1f} s", flush=True)
    t0 = time.perf_counter()
    write_openmetrics(om, values)
    print(f"OpenMetrics file: {om.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - t0:.1f} s",
          flush=True)
    del values
    print(f"promtool backfill: {promtool_backfill(om, prom_dir):.1f} s", flush=True)
    om.unlink()
    done.touch()


def run(n_series: int, days: float, repeat: int, work_dir: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"series": n_series, "days": days, "samples": n_series * int(days * 1440)}
    start_ms = T0_S * 1000
    end_ms = start_ms + (int(days * 1440) - 1) * STEP_S * 1000
    with tempfile.TemporaryDirectory(prefix="promlab-bench-rules-") as tmp:
        work = Path(work_dir) if work_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepare(work, n_series, days)
        store_dir, prom_dir = work / "promlab", work / "prom"

        engine = Engine(max_samples=2_000_000_000, timeout=None)
        with open_store(store_dir, readonly=True) as store:
            t0 = time.perf_counter()
            ep = backtest(RULE, start_ms, end_ms, data=store, step="1m", engine=engine)
            out["backtest_cold_s"] = time.perf_counter() - t0
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                ep = backtest(RULE, start_ms, end_ms, data=store, step="1m", engine=engine)
                times.append(time.perf_counter() - t0)
            out["backtest_warm_s"] = statistics.median(times)
            t0 = time.perf_counter()
            res = engine.range(store, EXPR, start_ms, end_ms, STEP_S * 1000)
            out["promlab_range_s"] = time.perf_counter() - t0
            out["promlab_points"] = int(res.value.present.sum())  # type: ignore[union-attr]
            del res
            tracemalloc.start()
            backtest(RULE, start_ms, end_ms, data=store, step="1m", engine=engine)
            out["backtest_peak_traced_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
        out["episodes"] = len(ep)
        out["fired"] = int(ep["firing_at"].notna().sum())
        out["promlab_peak_rss_mb"] = _peak_rss_mb(os.getpid())

        with realprom.prometheus(data_dir=prom_dir) as prom:
            _prom_range(prom, start_ms // 1000, end_ms // 1000)  # warm-up
            runs = [_prom_range(prom, start_ms // 1000, end_ms // 1000) for _ in range(repeat)]
            out["prom_http_s"] = statistics.median(r[0] for r in runs)
            out["prom_eval_s"] = statistics.median(r[1] for r in runs)
            out["prom_points"] = runs[0][2]
            out["prom_peak_rss_mb"] = _peak_rss_mb(prom.process.pid)
    out["agree"] = out["prom_points"] == out["promlab_points"]
    return out


def format_table(r: dict[str, Any]) -> str:
    rows = [
        ("promlab backtest, cold (s)", f"{r['backtest_cold_s']:.2f}"),
        ("promlab backtest, warm median (s)", f"{r['backtest_warm_s']:.2f}"),
        ("promlab range query alone (s)", f"{r['promlab_range_s']:.2f}"),
        ("Prometheus range query, HTTP (s)", f"{r['prom_http_s']:.2f}"),
        ("Prometheus range query, evalTotalTime (s)", f"{r['prom_eval_s']:.2f}"),
        ("ratio backtest warm / Prometheus HTTP", f"{r['backtest_warm_s'] / r['prom_http_s']:.2f}"),
        ("promlab backtest peak traced memory (MB)", f"{r['backtest_peak_traced_mb']:.0f}"),
        ("promlab process peak RSS (MB)", f"{r['promlab_peak_rss_mb']:.0f}"),
        ("Prometheus peak RSS (MB)", f"{r['prom_peak_rss_mb']:.0f}"),
        ("episodes (fired)", f"{r['episodes']:,} ({r['fired']:,})"),
        ("points true: promlab / Prometheus", f"{r['promlab_points']:,} / {r['prom_points']:,}"
                                               f" ({'agree' if r['agree'] else 'DIFFER'})"),
    ]
    width = max(len(k) for k, _ in rows)
    head = f"{r['series']:,} series x {r['days']:g} days at 1m ({r['samples']:,} samples), rule: {EXPR}, for 5m"
    return "\n".join([head] + [f"  {k:<{width}}  {v}" for k, v in rows])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.rules", description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, help="input series (default 1,000; --unittest: 20)")
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--repeat", type=int, help="timed runs (default 3; --unittest: 1)")
    ap.add_argument("--work-dir", help="keep the generated stores here and reuse them next time")
    ap.add_argument("--unittest", action="store_true",
                    help="time a long rule unit test: promlab test rules against promtool test rules")
    ap.add_argument("--points", type=int, default=10_000, help="--unittest: points per input series")
    ap.add_argument("--interval", default="15s", help="--unittest: the input series' interval")
    ap.add_argument("--eval-interval", default="1m", help="--unittest: evaluation_interval")
    ap.add_argument("--profile", help="--unittest: write promlab's cProfile stats to this file")
    ap.add_argument("--alerts-first", action="store_true",
                    help="--unittest: evaluate the alerts group first (its rules read the recording "
                         "rules' output of the step before)")
    args = ap.parse_args(argv)
    if args.unittest:
        from benchmarks import rules_unittest

        return rules_unittest.main(args.series or 20, args.points, args.interval, args.eval_interval,
                                   repeat=args.repeat or 1, work_dir=args.work_dir, profile=args.profile,
                                   alerts_first=args.alerts_first)
    with _progress.defaulting(True):
        r = run(args.series or 1000, args.days, args.repeat or 3, args.work_dir)
    print()
    print(format_table(r))
    return 0 if r["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
