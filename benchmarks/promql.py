"""PromQL benchmark: promlab's engine over its Parquet store against a real Prometheus.

The standard dataset (``promlab.datasets``) is imported into a temporary promlab store with
:func:`promlab.importer.import_file` (the ``promlab import`` path) and backfilled into Prometheus
with promtool. promlab then queries the store opened read-only with
:func:`promlab.storage.open_store`, as a notebook or the HTTP server would. Each query runs as a
range query over the whole span at ``--step`` and as an instant query at the end. Per query:

- cold: the first run on a freshly opened store, median of ``--cold-repeat`` such first
  touches (each on its own fresh open; the open itself is timed apart and printed as
  ``store open``), after the store's files were dropped from the OS page cache with
  ``posix_fadvise(DONTNEED)`` (best effort: the kernel may keep pages that are mapped
  elsewhere); it includes loading the touched blocks' series indexes and decoding what the
  query selects; ``cold/HTTP`` compares it with Prometheus's warm HTTP answer; the garbage of
  earlier queries is collected first (``gc.collect()``), so a full collection of the bench
  process's own objects (30-40 ms here) does not land at random on one query's single run,
  and the engine's process-wide memos (parsed texts, derived label sets, groupings:
  :func:`promlab.promql.engine.clear_caches`) are cleared, so no cold query profits from the
  ones before it. All first touches run before anything else is loaded (no warm store, no
  MemoryStorage copy in the process), one after another, as a notebook's first queries;
- warm: median of ``--repeat`` runs after a warm-up of ``--warmup`` runs (at most: runs stop after
  0.3 s), on the store kept open (decoded cache hot). CPython specializes a code path's
  bytecode over its first executions (3.11: a function's, after 8 calls), so one warm-up run
  is not enough for a small query: the instant raw selector's runs after the first took 246,
  139, 120, 110, 107, 167, 110, 98, 90, 90, 86, ... 75 us (``--warmup 1`` measures its 2nd to
  6th runs);
- memory: the in-memory upper bound (the same samples in a ``MemoryStorage``), warm median;
- Prometheus: median over HTTP (JSON encoding and decoding included) and its own
  ``evalTotalTime`` from ``stats=all``, after the same warm-up;
- ratio = promlab warm / Prometheus (below 1: promlab is faster), against HTTP and eval time;
- peak MB: promlab's peak traced memory for one warm run; agree: relative 1e-9 (topk compares
  the selected values per step, since ties may pick other series).

Usage::

    python -m benchmarks.promql [--hours 24] [--scale 1.0] [--repeat 5] [--cold-repeat 3]
                                [--warmup 10] [--step 60] [--open-days 30] [--many-metrics 500]

The dataset is imported into the store by a child process: the first touches run in a process
that holds nothing of the import (its heap of freed arrays and objects), as a notebook kernel
opening a store does.

``--open-days N`` also builds an N-day store (the dataset's day written into N daily blocks, its
timestamps shifted; a tenth of the samples, since opening reads metadata, not samples) and prints
its open time and the first instant query over its last day. ``--many-metrics N`` builds a
one-day store of N metrics x 20 series and prints the first instant query for one series next
to loading the block's whole series index (format 7 reads the queried metric's batch only).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
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

from benchmarks import realprom
from promlab import datasets
from promlab import progress as _progress
from promlab.errors import PromlabError
from promlab.importer import import_file
from promlab.model import Labels, Matcher, MatchType
from promlab.promql.engine import Engine, Result, clear_caches
from promlab.storage import MemoryStorage, open_store
from promlab.storage.store import ParquetStore
from promlab.storage.writer import write_block

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


def import_store(path: Path, data_dir: Path) -> float:
    """Import the dataset file into a new store at ``data_dir`` (``promlab import``); seconds."""
    t0 = time.perf_counter()
    with open_store(data_dir) as store:
        import_file(path, store, progress=False)
    return time.perf_counter() - t0


def import_store_apart(path: Path, data_dir: Path) -> float:
    """:func:`import_store` in a child process: this one keeps nothing of it."""
    import subprocess

    code = ("import sys; from pathlib import Path; from benchmarks.promql import import_store; "
            "print(import_store(Path(sys.argv[1]), Path(sys.argv[2])))")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code, str(path), str(data_dir)], cwd=root,
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


#: Warm-up runs before a warm median, at most (they stop after :data:`WARMUP_S`): see the
#: module docstring (``--warmup``).
WARMUP_RUNS = 10
WARMUP_S = 0.3


def _warm_up(fn: Any, runs: int) -> None:
    """``fn()`` ``runs`` times (at least once), stopping once :data:`WARMUP_S` has passed."""
    stop = time.perf_counter() + WARMUP_S
    for _ in range(max(1, runs)):
        fn()
        if time.perf_counter() > stop:
            break


def drop_page_cache(data_dir: Path) -> None:
    """Ask the kernel to drop the store's files from the page cache (best effort)."""
    for f in data_dir.rglob("*"):
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def memory_copy(store: ParquetStore) -> MemoryStorage:
    """The store's samples in a MemoryStorage (the in-memory upper bound)."""
    ss = store.querier(-(1 << 62), 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
    mem = MemoryStorage()
    for i in range(len(ss)):
        ls, ts, vals = ss.series(i)
        mem.add_series(ls, ts.copy(), vals.copy())
    return mem


@dataclass
class Row:
    name: str
    mode: str
    open_ms: float
    cold_ms: float
    warm_ms: float
    mem_ms: float
    prom_ms: float
    prom_eval_ms: float
    prom_first_ms: float
    peak_mb: float
    series: int
    agree: str

    @property
    def ratio(self) -> float:
        return self.warm_ms / self.prom_ms if self.prom_ms else math.nan

    @property
    def cold_ratio(self) -> float:
        return self.cold_ms / self.prom_ms if self.prom_ms else math.nan

    @property
    def eval_ratio(self) -> float:
        return self.warm_ms / self.prom_eval_ms if self.prom_eval_ms else math.nan


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


def run(hours: float, scale: float, repeat: int, step_s: int, cold_repeat: int = 3,
        warmup: int = WARMUP_RUNS) -> list[Row]:
    info = datasets.standard_dataset(hours=hours, scale=scale)
    spec = info.spec
    print(f"dataset: {info.series:,} series, {info.samples:,} samples ({info.path})", flush=True)
    # Steps sit 30 s after round minutes: subquery sub-steps (round minutes) then never fall on
    # a window edge, where Prometheus 2.x (left-closed windows) and 3.x (left-open) differ.
    end_ms = (spec.end_ms // 60_000) * 60_000 - 30_000
    start_ms = end_ms - int(hours * 3600_000) + 60 * 60_000  # leave an hour for the windows
    engine = Engine(max_samples=2_000_000_000, timeout=None)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="promlab-bench-") as tmp:
        data_dir = Path(tmp) / "promlab"
        secs = import_store_apart(info.path, data_dir)
        print(f"promlab import: {secs:.1f} s ({info.samples / secs / 1e6:.2f} M samples/s)",
              flush=True)
        t0 = time.perf_counter()
        realprom.backfill(info.path, Path(tmp) / "data")
        print(f"promtool backfill: {time.perf_counter() - t0:.1f} s", flush=True)
        todo = [(name, expr, mode) for name, expr in QUERIES for mode in ("range", "instant")]
        # The import's and the backfill's gigabyte of dirty pages written back now, not while
        # the first touches read (their page-cache drops would wait behind the writeback).
        os.sync()
        # First touches first, while the process holds nothing else (no warm store, no
        # MemoryStorage copy): as a notebook kernel's first queries on a store.
        # Each query's first touch is taken ``cold_repeat`` times (rounds over all queries, a
        # fresh open each time) and the median kept: one run is at the mercy of the machine.
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
        rounds = [(k, name, expr, mode) for k in range(cold_repeat) for name, expr, mode in todo]
        for _, name, expr, mode in _progress.iterate(None, rounds, desc="first touches",
                                                      unit="query"):
            runs.setdefault((name, mode), []).append(
                _cold_one(engine, data_dir, expr, mode, start_ms, end_ms, step_s))
        colds = {k: (statistics.median(o for o, _ in v), statistics.median(c for _, c in v))
                 for k, v in runs.items()}
        with open_store(data_dir, readonly=True) as warm_store:
            t0 = time.perf_counter()
            mem = memory_copy(warm_store)
            print(f"MemoryStorage copy: {time.perf_counter() - t0:.1f} s", flush=True)
            warm_store.cache.clear()
            with realprom.prometheus(data_dir=Path(tmp) / "data") as prom:
                for name, expr, mode in _progress.iterate(None, todo, desc="queries", unit="query"):
                    stores = (warm_store, mem)
                    rows.append(_bench_one(engine, stores, prom, name, expr, mode, start_ms,
                                           end_ms, step_s, repeat, colds[name, mode],
                                           warmup))
                    r = rows[-1]
                    _progress.write(f"{name:20s} {mode:8s} store open {r.open_ms:5.1f} | "
                                    f"cold {r.cold_ms:8.1f} (/HTTP {r.cold_ratio:5.2f}) "
                                    f"warm {r.warm_ms:7.1f} "
                                    f"mem {r.mem_ms:7.1f} | prometheus {r.prom_ms:7.1f} "
                                    f"(eval {r.prom_eval_ms:7.1f}) | ratio {r.ratio:5.2f} "
                                    f"(eval {r.eval_ratio:5.2f}) | peak {r.peak_mb:6.1f} MB | "
                                    f"series {r.series:5d} | agree {r.agree}")
                rss = _peak_rss_mb(prom.process.pid)
            cache = warm_store.cache
            print(f"decoded cache: {cache.nbytes / 1e6:.0f} MB in {len(cache)} entries "
                  f"(limit {cache.max_bytes / 1e6:.0f} MB)")
    print(f"Prometheus peak RSS: {rss:.0f} MB; promlab process peak RSS: "
          f"{_peak_rss_mb(os.getpid()):.0f} MB (dataset file and MemoryStorage included)")
    return rows


def long_store_open(hours: float, scale: float, days: int) -> str:
    """Open time of a ``days``-day store, and its first instant query (medians of 3 fresh opens; one
    line)."""
    info = datasets.standard_dataset(hours=hours, scale=scale)
    with tempfile.TemporaryDirectory(prefix="promlab-bench-long-") as tmp:
        one = Path(tmp) / "one"
        import_store(info.path, one)
        with open_store(one, readonly=True) as st:
            ss = st.querier(-(1 << 62), 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
            labels = list(ss.labels)
            counts = [int(n) for n in ss.offsets[1:] - ss.offsets[:-1]]
            ts, vals = ss.ts_ms.copy(), ss.values.copy()
            bucket = st.bucket_duration_ms
        group = np.repeat(np.arange(len(labels), dtype=np.int64), counts)
        keep = np.arange(ts.shape[0]) % 10 == 0
        group, ts, vals = group[keep], ts[keep], vals[keep]
        day = 86_400_000
        base = int(ts.min()) // day * day
        ts = ts - base  # within [0, day) when the dataset spans one day
        data = Path(tmp) / "long"
        blocks_dir = data / "blocks"
        blocks_dir.mkdir(parents=True)
        sids = np.array([ls.hash for ls in labels], np.int64)
        for d in range(days):
            w = ts < day
            write_block(str(blocks_dir), labels, sids, group[w], ts[w] + base + d * day,
                        vals[w], start=base + d * day, end=base + (d + 1) * day, seq=d + 1,
                        bucket_ms=bucket)
        os.sync()  # the blocks just written reach the disk first (as in run())
        opens, firsts = [], []
        for _ in range(3):  # fresh opens, page cache dropped and memos cleared: the median
            drop_page_cache(data)
            clear_caches()
            gc.collect()
            t0 = time.perf_counter()
            with open_store(data, readonly=True) as st:
                opens.append((time.perf_counter() - t0) * 1000)
                nblocks = len(st.blocks())
                end = base + days * day - 30_000
                t0 = time.perf_counter()
                Engine().instant(st, 'node_memory_usage_bytes{kind="free"}', end)
                firsts.append((time.perf_counter() - t0) * 1000)
        t_open, t_first = statistics.median(opens), statistics.median(firsts)
    return (f"{days}-day store ({nblocks} blocks, {len(labels):,} series/day): open "
            f"{t_open:.1f} ms; first instant raw selector on its last day {t_first:.1f} ms")


def write_many_metrics(path: str, metrics: int, series: int = 20, hours: int = 24,
                       **opts: Any) -> int:
    """Write ``metrics`` metrics (``node_metric_0000`` ..) x ``series`` series (``host0`` ..)
    over ``hours`` into one block of the store at ``path`` (``opts``: more
    :func:`open_store` arguments, a URL's ``storage_options`` and ``local_dir``); the last
    sample's time (ms)."""
    labels = [Labels({"__name__": f"node_metric_{m:04d}", "instance": f"host{i}", "job": "node"})
              for m in range(metrics) for i in range(series)]
    steps = hours * 12  # every 5 min: the index (24 chunks a series) as at 15 s, fewer samples
    start = 1_700_000_000_000 // 86_400_000 * 86_400_000
    rng = np.random.default_rng(1)
    with open_store(path, block_duration="24h", bucket_duration="1h", wal_fsync=False,
                    ooo_window=None, **opts) as st:
        for c in range(0, len(labels), 2000):
            part = labels[c:c + 2000]
            idx = np.repeat(np.arange(len(part)), steps)
            ts = np.tile(start + np.arange(steps, dtype=np.int64) * 300_000, len(part))
            app = st.appender()
            app.append_batch(part, idx, ts, np.round(rng.random(idx.shape[0]) * 100, 1))
            app.commit()
        st.flush()
    return start + steps * 300_000 - 1


def many_metrics(metrics: int, series: int = 20, hours: int = 24, repeat: int = 7) -> str:
    """First instant query for one series on a store of ``metrics`` metrics (one day block),
    next to loading the block's whole series index: what a first touch costs when the store
    holds many more metrics than the query selects (one line)."""
    with tempfile.TemporaryDirectory(prefix="promlab-bench-many-") as tmp:
        end = write_many_metrics(tmp, metrics, series, hours)
        engine = Engine()
        first: list[float] = []
        whole: list[float] = []
        expr = f'node_metric_{metrics // 3:04d}{{instance="host3"}}'
        for _ in range(repeat):
            for out, query in ((first, True), (whole, False)):
                drop_page_cache(Path(tmp))
                clear_caches()
                gc.collect()
                with open_store(tmp, readonly=True) as ro:
                    t0 = time.perf_counter()
                    if query:
                        engine.instant(ro, expr, end)
                    else:
                        ro.blocks()[0].index()
                    out.append((time.perf_counter() - t0) * 1000)
    return (f"{metrics} metrics x {series} series x {hours} h: first instant query for one "
            f"series {statistics.median(first):.1f} ms; the block's whole series index alone "
            f"{statistics.median(whole):.1f} ms")


def _peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def _cold_one(engine: Engine, data_dir: Path, expr: str, mode: str, start_ms: int,
              end_ms: int, step_s: int) -> tuple[float, float]:
    """``(open ms, first query ms)`` on a freshly opened store: page cache dropped, the
    engine's process-wide memos cleared, garbage collected first."""
    drop_page_cache(data_dir)
    clear_caches()
    gc.collect()
    try:
        t0 = time.perf_counter()
        with open_store(data_dir, readonly=True) as cold_store:
            t_open = (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            if mode == "range":
                engine.range(cold_store, expr, start_ms, end_ms, step_s * 1000)
            else:
                engine.instant(cold_store, expr, end_ms)
            return t_open, (time.perf_counter() - t0) * 1000
    except PromlabError:
        return math.nan, math.nan


def _bench_one(engine: Engine, stores: tuple[ParquetStore, MemoryStorage],
               prom: realprom.Prometheus, name: str, expr: str, mode: str, start_ms: int,
               end_ms: int, step_s: int, repeat: int, cold: tuple[float, float],
               warmup: int = WARMUP_RUNS) -> Row:
    warm_store, mem = stores
    t_open, t_cold = cold

    def ours_on(q: Any) -> Result:
        if mode == "range":
            return engine.range(q, expr, start_ms, end_ms, step_s * 1000)
        return engine.instant(q, expr, end_ms)

    def theirs() -> dict[str, Any]:
        if mode == "range":
            return prom.query_range(expr, start_ms / 1000, end_ms / 1000, step_s, stats="all")
        return prom.query(expr, end_ms / 1000, stats="all")

    try:
        _warm_up(lambda: ours_on(warm_store), warmup)  # (the first fills the decoded cache)
        t_ours, res = _median_time(lambda: ours_on(warm_store), repeat)
        _warm_up(lambda: ours_on(mem), warmup)
        t_mem, _ = _median_time(lambda: ours_on(mem), repeat)
        tracemalloc.start()
        ours_on(warm_store)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    except PromlabError as exc:
        return Row(name, mode, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan,
                   math.nan, math.nan, 0, f"promlab error: {exc}"[:80])
    t0 = time.perf_counter()
    theirs()
    t_first = (time.perf_counter() - t0) * 1000
    evals: list[float] = []

    def theirs_timed() -> dict[str, Any]:
        d = theirs()
        evals.append(float(d.get("stats", {}).get("timings", {}).get("evalTotalTime", math.nan)))
        return d

    _warm_up(theirs, warmup - 1)  # (the first touch above was one)
    t_theirs, data = _median_time(theirs_timed, repeat)
    t_eval = statistics.median(evals) * 1000
    ours_pts, theirs_pts = _ours_to_points(res), _theirs_to_points(data)
    if expr.startswith("topk"):
        # Ties in topk may pick different series; compare the selected values per step.
        ours_pts, theirs_pts = _by_step(ours_pts), _by_step(theirs_pts)
    agree = _agree(ours_pts, theirs_pts)
    return Row(name, mode, t_open, t_cold, t_ours, t_mem, t_theirs, t_eval, t_first, peak / 1e6,
               len(res.value.labels) if hasattr(res.value, "labels") else 1, agree)


def table(rows: list[Row]) -> str:
    opens = sorted(r.open_ms for r in rows if not math.isnan(r.open_ms))
    lines = [f"store open (before each cold query): median {statistics.median(opens):.1f} ms, "
             f"max {opens[-1]:.1f} ms" if opens else "store open: n/a", "",
             "| query | mode | cold ms | ratio cold/HTTP | warm ms | MemoryStorage ms "
             "| Prometheus HTTP ms | Prometheus eval ms | Prometheus first ms | ratio warm/HTTP "
             "| ratio warm/eval | peak MB | series | agree |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.mode} | {r.cold_ms:.1f} | {r.cold_ratio:.2f} | {r.warm_ms:.1f} | "
                     f"{r.mem_ms:.1f} | {r.prom_ms:.1f} | {r.prom_eval_ms:.1f} | "
                     f"{r.prom_first_ms:.1f} | {r.ratio:.2f} | {r.eval_ratio:.2f} | "
                     f"{r.peak_mb:.1f} | {r.series} | {r.agree} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.promql", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--step", type=int, default=60, help="range-query step in seconds")
    ap.add_argument("--warmup", type=int, default=WARMUP_RUNS,
                    help="warm-up runs before each warm median (at most: they stop after 0.3 s)")
    ap.add_argument("--cold-repeat", type=int, default=3,
                    help="first touches per query (median; each on a fresh open)")
    ap.add_argument("--open-days", type=int, default=30,
                    help="also time opening an N-day store (0: skip)")
    ap.add_argument("--many-metrics", type=int, default=500,
                    help="also time a first query on a store of N metrics (0: skip)")
    args = ap.parse_args(argv)
    with _progress.defaulting(True):  # bars on stderr: dataset, promtool, store, queries
        rows = run(args.hours, args.scale, args.repeat, args.step, args.cold_repeat,
                   args.warmup)
        if args.open_days:
            print(long_store_open(args.hours, args.scale, args.open_days))
        if args.many_metrics:
            print(many_metrics(args.many_metrics))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
