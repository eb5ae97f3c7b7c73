"""Bytes per native histogram sample: promlab's store against Prometheus 2.42's TSDB, same data.

The data: ``--series`` counter histograms (exponential schema 3, as client_golang's default
factor 1.1 gives; log-normal latencies, ~``--rate`` observations per series and step, so
tens of populated buckets), one sample every 15 s for ``--samples`` steps, integer counts.

- promlab: appended through the Appender (one commit per step, as scrapes do) into
  ``open_store`` in a temporary directory, then ``flush()`` (compaction per 24 h window);
  bytes are those of ``histograms/*.parquet`` (checksum sidecars counted apart).
- Prometheus: ``prometheus --enable-feature=native-histograms --web.enable-remote-write-receiver``
  gets the same samples by remote write 1.0 (in time order); its head compacts into 2 h blocks
  (then larger ones) by itself; bytes and samples are those of the block directories (``meta.json``
  ``numSamples``), so only samples that reached blocks are counted on its side.

Usage::

    python -m benchmarks.histograms_storage [--series 100] [--samples 3000] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import realprom
from promlab.model import Labels
from promlab.model.histogram import Histogram, from_bucket_map

__all__ = ["generate", "main", "run"]

STEP_MS = 15_000
SCHEMA = 3


def generate(series: int, samples: int, *, rate: float = 40.0, seed: int = 1,
             end_ms: int | None = None) -> Iterator[tuple[int, list[Histogram]]]:
    """``(timestamp_ms, [histogram of each series])`` per step, oldest first."""
    rng = np.random.default_rng(seed)
    end = end_ms if end_ms is not None else (int(time.time() * 1000) // STEP_MS) * STEP_MS
    start = end - (samples - 1) * STEP_MS
    buckets: list[dict[int, int]] = [{} for _ in range(series)]
    counts = np.zeros(series, np.int64)
    sums = np.zeros(series, np.float64)
    mu = rng.uniform(-4.0, -1.0, series)  # median latencies 18 ms .. 370 ms
    for k in range(samples):
        n = rng.poisson(rate, series)
        obs = rng.lognormal(np.repeat(mu, n), 0.8)
        owner = np.repeat(np.arange(series), n)
        idx = np.ceil(np.log2(obs) * (1 << SCHEMA)).astype(np.int64)
        np.add.at(sums, owner, obs)
        counts += n
        for s, i in zip(owner.tolist(), idx.tolist(), strict=True):
            b = buckets[s]
            b[i] = b.get(i, 0) + 1
        out = [from_bucket_map(SCHEMA, {i: float(c) for i, c in buckets[s].items()}, count=float(counts[s]),
                               sum=float(sums[s])).to_int() for s in range(series)]
        yield start + k * STEP_MS, out


def labels(series: int) -> list[Labels]:
    return [Labels({"__name__": "http_request_duration_seconds", "job": "api", "instance": f"host-{i // 10:03d}",
                    "handler": f"/h{i % 10}"}) for i in range(series)]


def _promlab(data: list[tuple[int, list[Histogram]]], lsets: list[Labels], root: Path) -> dict[str, Any]:
    from promlab.storage import open_store

    t0 = time.perf_counter()
    store = open_store(root / "promlab", wal_fsync=False)
    idx = np.arange(len(lsets), dtype=np.int64)
    for ts, hists in data:
        app = store.appender()
        app.append_histogram_batch(lsets, idx, np.full(len(lsets), ts, np.int64), hists)
        app.commit()
    store.flush()
    store.close()
    hdir = root / "promlab" / "histograms"
    files = [p for p in hdir.iterdir() if p.suffix == ".parquet"]
    sidecars = [p for p in hdir.iterdir() if p.name.endswith(".crc.json")]
    samples = len(data) * len(lsets)
    nbytes = sum(p.stat().st_size for p in files)
    return {"samples": samples, "bytes": nbytes, "sidecar_bytes": sum(p.stat().st_size for p in sidecars),
            "files": len(files), "bytes_per_sample": nbytes / samples, "seconds": time.perf_counter() - t0,
            "column_bytes_per_sample": {k: round(v / samples, 2) for k, v in _column_bytes(files).items()}}


def _column_bytes(files: list[Path]) -> dict[str, int]:
    """Compressed bytes of each Parquet column over ``files``."""
    import pyarrow.parquet as pq

    out: dict[str, int] = {}
    for p in files:
        md = pq.ParquetFile(p).metadata
        for rg in range(md.num_row_groups):
            for c in range(md.num_columns):
                col = md.row_group(rg).column(c)
                name = col.path_in_schema.split(".")[0]
                out[name] = out.get(name, 0) + col.total_compressed_size
    return out


def _write_request(lsets: list[Labels], chunk: list[tuple[int, list[Histogram]]]) -> bytes:
    import cramjam

    from promlab.remote.proto import prometheus_remote_pb2 as rpb

    req = rpb.WriteRequest()
    for s, ls in enumerate(lsets):
        ts_pb = req.timeseries.add()
        for k, v in ls.items():
            ts_pb.labels.add(name=k, value=v)
        for t, hists in chunk:
            h = hists[s]
            hp = ts_pb.histograms.add(count_int=int(h.count), sum=h.sum, schema=h.schema,
                                      zero_threshold=h.zero_threshold, zero_count_int=int(h.zero_count),
                                      timestamp=t)
            for o, n in h.positive_spans:
                hp.positive_spans.add(offset=o, length=n)
            hp.positive_deltas.extend(int(d) for d in h.positive_buckets)
            for o, n in h.negative_spans:
                hp.negative_spans.add(offset=o, length=n)
            hp.negative_deltas.extend(int(d) for d in h.negative_buckets)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def _prometheus(data: list[tuple[int, list[Histogram]]], lsets: list[Labels], root: Path,
                timeout: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    args = ["--enable-feature=native-histograms", "--web.enable-remote-write-receiver"]
    with realprom.prometheus(data_dir=root / "prom", extra_args=args) as prom:
        per_request = max(1, 20_000 // len(lsets))
        for i in range(0, len(data), per_request):
            body = _write_request(lsets, data[i:i + per_request])
            r = prom.post("/api/v1/write", content=body, headers={
                "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                "X-Prometheus-Remote-Write-Version": "0.1.0"})
            if r.status_code >= 300:
                raise RuntimeError(f"remote write refused: {r.status_code} {r.text}")
        compacted = prom.wait_for_compaction(timeout)
        deadline = time.monotonic() + timeout  # the head keeps ~1.5 block ranges; wait for the rest
        want = max(0, len(data) * len(lsets) - int(4 * 3_600_000 / STEP_MS) * len(lsets))
        while realprom.block_samples(prom.data_dir) < want and time.monotonic() < deadline:
            time.sleep(2)
        prom.wait_for_compaction(timeout)
        samples = realprom.block_samples(prom.data_dir)
        nbytes = prom.block_bytes()
        blocks = len(prom.blocks())
    return {"samples": samples, "bytes": nbytes, "blocks": blocks, "compacted": compacted,
            "bytes_per_sample": nbytes / samples if samples else math.nan, "seconds": time.perf_counter() - t0}


def run(series: int = 100, samples: int = 3000, *, rate: float = 40.0, prometheus: bool = True,
        timeout: float = 300, work_dir: str | None = None) -> dict[str, Any]:
    lsets = labels(series)
    data = list(generate(series, samples, rate=rate))
    buckets = [len(h.positive_buckets) for h in data[-1][1]]
    out: dict[str, Any] = {"series": series, "samples_per_series": samples,
                           "buckets_last": {"min": min(buckets), "mean": sum(buckets) / len(buckets),
                                            "max": max(buckets)}}
    with tempfile.TemporaryDirectory(prefix="promlab-hist-bench-", dir=work_dir) as tmp:
        root = Path(tmp)
        out["promlab"] = _promlab(data, lsets, root)
        if prometheus:
            realprom.require_binary("prometheus")
            out["prometheus"] = _prometheus(data, lsets, root, timeout)
    if "prometheus" in out and out["prometheus"]["samples"]:
        out["ratio"] = out["promlab"]["bytes_per_sample"] / out["prometheus"]["bytes_per_sample"]
    return out


def format_table(r: dict[str, Any]) -> str:
    lines = [f"{r['series']} series x {r['samples_per_series']} native histogram samples (schema {SCHEMA}, "
             f"{r['buckets_last']['mean']:.0f} buckets on average at the end, "
             f"{r['buckets_last']['min']}..{r['buckets_last']['max']})",
             f"{'store':<12}{'samples':>12}{'bytes':>14}{'bytes/sample':>14}"]
    for name in ("promlab", "prometheus"):
        if name in r:
            x = r[name]
            lines.append(f"{name:<12}{x['samples']:>12}{x['bytes']:>14}{x['bytes_per_sample']:>14.2f}")
    cols = r["promlab"].get("column_bytes_per_sample", {})
    if cols:
        lines.append("promlab columns (bytes/sample): " + ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(cols.items(), key=lambda kv: -kv[1]) if v >= 0.05))
    if "ratio" in r:
        lines.append(f"promlab / Prometheus bytes per sample: {r['ratio']:.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--rate", type=float, default=40.0, help="observations per series and step")
    ap.add_argument("--no-prometheus", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--work-dir")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    r = run(a.series, a.samples, rate=a.rate, prometheus=not a.no_prometheus, timeout=a.timeout,
            work_dir=a.work_dir)
    print(json.dumps(r, indent=2) if a.json else format_table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
