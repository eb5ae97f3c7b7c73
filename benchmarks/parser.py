"""Exposition parser throughput: promlab (cold and warm cache) vs prometheus_client.

Run with ``python -m benchmarks.parser``. Prints samples/s on

* a generated 5k-sample page (histograms, counters, gauges; 3-6 labels per series), text
  format and OpenMetrics;
* a real node_exporter page (``/usr/bin/prometheus-node-exporter`` started on a free port and
  fetched with httpx; skipped when the binary is missing).

"cold" parses with a fresh :class:`~promlab.exposition.Parser` each time; "warm" re-parses the
same target's page with the parser that has seen it (the steady state of a scrape loop).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks import realprom
from promlab.exposition import Parser


def make_page(n_samples: int = 5000, *, seed: int = 1, openmetrics: bool = False) -> bytes:
    """A realistic exposition page of about ``n_samples`` samples."""
    rnd = random.Random(seed)
    out: list[str] = []
    total = 0
    fam = 0
    methods = ["GET", "POST", "PUT", "DELETE"]
    codes = ["200", "201", "400", "404", "500"]
    buckets = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]
    while total < n_samples:
        kind = fam % 3
        name = f"app_{['request_duration_seconds', 'requests', 'queue_depth'][kind]}_{fam}"
        fam += 1
        if kind == 0:
            out.append(f"# HELP {name} Request latency in seconds.")
            out.append(f"# TYPE {name} histogram")
            for s in range(rnd.randint(4, 12)):
                base = (f'instance="10.0.{s % 7}.{s}:8080",job="api",method="{rnd.choice(methods)}",'
                        f'handler="/api/v1/items/{s}"')
                count = 0
                for le in buckets:
                    count += rnd.randint(0, 5000)
                    out.append(f'{name}_bucket{{{base},le="{le}"}} {count}')
                out.append(f"{name}_sum{{{base}}} {rnd.random() * 1e4:.6f}")
                out.append(f"{name}_count{{{base}}} {count}")
                total += len(buckets) + 2
        elif kind == 1:
            out.append(f"# HELP {name} Requests handled.")
            out.append(f"# TYPE {name} counter")
            for s in range(rnd.randint(10, 60)):
                sample = f"{name}_total" if openmetrics else name
                out.append(f'{sample}{{code="{rnd.choice(codes)}",instance="10.0.0.{s}:8080",job="api",'
                           f'method="{rnd.choice(methods)}",zone="z{s % 3}"}} {rnd.randint(0, 10**9)}')
                total += 1
        else:
            out.append(f"# HELP {name} Items waiting.")
            out.append(f"# TYPE {name} gauge")
            for s in range(rnd.randint(10, 40)):
                out.append(f'{name}{{instance="10.0.0.{s}:8080",job="worker",queue="q{s}"}} '
                           f"{rnd.random() * 100:.2f}")
                total += 1
    if openmetrics:
        out.append("# EOF")
    return ("\n".join(out) + "\n").encode()


def _rate(fn: Callable[[], int], min_time: float = 1.0) -> float:
    """Samples/s of ``fn`` (which returns its sample count), best of repeated runs."""
    fn()
    best = float("inf")
    deadline = time.perf_counter() + min_time
    samples = 0
    while True:
        t0 = time.perf_counter()
        samples = fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return samples / best


def bench_page(label: str, body: bytes, content_type: str) -> None:
    """Print cold/warm promlab and prometheus_client rates for one page."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
    from prometheus_client.parser import text_string_to_metric_families as text_families

    om = content_type == "openmetrics"
    warm = Parser()
    warm.parse(body, content_type)
    text = body.decode()
    client = om_families if om else text_families
    rates = {
        "promlab cold": _rate(lambda: len(Parser().parse(body, content_type))),
        "promlab warm": _rate(lambda: len(warm.parse(body, content_type))),
        "prometheus_client": _rate(lambda: sum(len(f.samples) for f in client(text)), 0.5),
    }
    n = len(warm.parse(body, content_type))
    print(f"{label} ({n} samples, {len(body) / 1024:.0f} KiB, {content_type})")
    for k, v in rates.items():
        print(f"  {k:<18} {v:>12,.0f} samples/s")
    print(f"  warm speed-up vs prometheus_client: {rates['promlab warm'] / rates['prometheus_client']:.1f}x")


def fetch_node_exporter() -> bytes | None:
    """Start node_exporter on a free port, fetch /metrics once, stop it."""
    if realprom.find_binary("node_exporter") is None:
        return None
    with realprom.node_exporter() as ne:
        r = httpx.get(f"{ne.url}/metrics", timeout=10, headers={"Accept": "text/plain;version=0.0.4"})
        r.raise_for_status()
        return r.content


def make_import_file(path: str, *, n_series: int = 1000, steps: int = 1000, seed: int = 2) -> int:
    """Write a backfill-style OpenMetrics file (timestamps in seconds, ``# EOF``); returns samples."""
    rnd = random.Random(seed)
    t0 = 1_700_000_000
    with open(path, "w") as f:
        f.write("# HELP http_requests Requests.\n# TYPE http_requests counter\n")
        for s in range(n_series):
            series = (f'http_requests_total{{instance="10.0.{s % 50}.{s}:9100",job="api",'
                      f'method="{("GET", "POST")[s % 2]}",code="{200 + s % 5}"}}')
            v = 0
            out = []
            for k in range(steps):
                v += rnd.randint(0, 50)
                out.append(f"{series} {v} {t0 + 15 * k}\n")
            f.write("".join(out))
        f.write("# EOF\n")
    return n_series * steps


def bench_import(n_series: int = 1000, steps: int = 1000) -> None:
    """Print import throughput: parse only, into MemoryStorage, into the Parquet store."""
    import tempfile

    from promlab.importer import import_file
    from promlab.storage import MemoryStorage

    def run(label: str, store: Any) -> None:
        cpu = time.process_time()
        stats = import_file(path, store, progress=False)
        cpu = time.process_time() - cpu
        print(f"  {label:<16} {stats.samples_per_second:>12,.0f} samples/s wall "
              f"({stats.samples / cpu:,.0f}/s per CPU second; parser alone "
              f"{stats.parse_samples_per_second:,.0f}/s wall)")

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/backfill.om"
        n = make_import_file(path, n_series=n_series, steps=steps)
        print(f"import of {n:,} samples ({n_series} series x {steps} steps, OpenMetrics)")
        run("parse only", None)
        run("MemoryStorage", MemoryStorage())
        try:
            from promlab.storage import open_store
        except ImportError:
            return
        with open_store(f"{tmp}/store", wal_fsync=False) as store:
            run("Parquet store", store)


def main() -> None:
    bench_page("generated page", make_page(5000), "text")
    bench_page("generated page", make_page(5000, openmetrics=True), "openmetrics")
    body = fetch_node_exporter()
    if body is None:
        print("node_exporter page: skipped (binary missing or not reachable)")
    else:
        bench_page("node_exporter page", body, "text")
    bench_import()


if __name__ == "__main__":
    main()
