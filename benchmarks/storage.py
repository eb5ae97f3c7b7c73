"""promlab's store against Prometheus's TSDB on the standard dataset: import speed and size.

Both tools get the same OpenMetrics file (:mod:`promlab.datasets`):

- promlab: ``promlab.importer.import_file`` into ``promlab.storage.open_store`` in a temporary
  directory, then ``flush()`` and ``compact()``; bytes are those of the Parquet blocks.
- Prometheus: ``promtool tsdb create-blocks-from openmetrics`` (2 h blocks); bytes are those of the
  block directories (no WAL). Then Prometheus itself is started on the directory and left to run
  its first compaction cycle (it checks once a minute; the newest block is never compacted), and
  the blocks are measured again.

Usage::

    python -m benchmarks.storage [--hours 24] [--scale 1] [--no-prometheus-compaction] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import realprom
from promlab import datasets
from promlab import progress as _progress

__all__ = ["format_table", "main", "run"]


def _promlab(info: datasets.DatasetInfo, root: Path) -> dict[str, Any]:
    from promlab.importer import import_file
    from promlab.storage import open_store

    out: dict[str, Any] = {}
    with open_store(root / "promlab") as store:
        t0 = time.perf_counter()
        import_file(info.path, store, progress=False)
        out["import_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        store.flush()
        store.compact()
        out["flush_compact_s"] = time.perf_counter() - t0
        stats = store.stats()
    out.update(blocks=stats["blocks"], samples=stats["block_samples"], bytes=stats["block_bytes"])
    return out


def _prometheus(info: datasets.DatasetInfo, root: Path, *, compaction: bool) -> dict[str, Any]:
    data = root / "prometheus"
    res = realprom.backfill(info.path, data)
    out: dict[str, Any] = {"import_s": res.seconds, "blocks": res.blocks, "samples": res.samples, "bytes": res.bytes}
    if compaction:
        if realprom.find_binary("prometheus") is None:
            out["compaction"] = "prometheus binary not installed"
        else:
            t0 = time.perf_counter()
            with realprom.prometheus(data_dir=data) as prom:
                done = prom.wait_for_compaction(timeout=180)
            out["compaction"] = "done" if done else "did not happen within 180 s"
            out["compaction_wait_s"] = time.perf_counter() - t0
            out["compacted_blocks"] = len(realprom.block_dirs(data))
            out["compacted_bytes"] = realprom.block_bytes(data)
    return out


def run(hours: float = 24.0, scale: float = 1.0, *, compaction: bool = True,
        cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Measure both tools; returns a dict of figures (:func:`format_table` prints them)."""
    t0 = time.perf_counter()
    info = datasets.standard_dataset(hours=hours, scale=scale, cache_dir=cache_dir)
    result: dict[str, Any] = {"series": info.series, "samples": info.samples, "file_bytes": info.bytes,
                              "dataset_s": time.perf_counter() - t0}
    with tempfile.TemporaryDirectory(prefix="promlab-bench-") as tmp:
        root = Path(tmp)
        try:
            result["promlab"] = _promlab(info, root)
        except ImportError as e:
            result["promlab"] = {"error": f"not available yet: {e}"}
        result["prometheus"] = _prometheus(info, root, compaction=compaction)
    return result


def _rate(side: dict[str, Any], n: int) -> str:
    return f"{n / side['import_s']:,.0f}" if "import_s" in side else "-"


def _bps(nbytes: int | None, n: int) -> str:
    return f"{nbytes / n:.3f}" if nbytes is not None and n else "-"


def format_table(r: dict[str, Any]) -> str:
    n = r["samples"]
    pl, pr = r["promlab"], r["prometheus"]
    rows = [
        ("import samples/s", _rate(pl, n), _rate(pr, n)),
        ("import seconds", f"{pl['import_s']:.1f}" if "import_s" in pl else "-", f"{pr['import_s']:.1f}"),
        ("seconds until blocks are on disk",
         f"{pl['import_s'] + pl['flush_compact_s']:.1f}" if "import_s" in pl else "-", f"{pr['import_s']:.1f}"),
        ("samples in blocks", f"{pl.get('samples', 0):,}", f"{pr['samples']:,}"),
        ("blocks", str(pl.get("blocks", "-")), str(pr["blocks"])),
        ("bytes/sample (blocks)", _bps(pl.get("bytes"), n), _bps(pr["bytes"], n)),
    ]
    if "compacted_bytes" in pr:
        rows.append(("bytes/sample after Prometheus compaction", "", _bps(pr["compacted_bytes"], n)))
        rows.append(("blocks after Prometheus compaction", "", str(pr["compacted_blocks"])))
    width = max(len(r[0]) for r in rows)
    lines = [f"standard dataset: {r['series']:,} series, {n:,} samples, {r['file_bytes'] / 1e6:,.0f} MB of text",
             "", f"{'':{width}}  {'promlab':>14}  {'Prometheus':>14}"]
    lines += [f"{a:{width}}  {b:>14}  {c:>14}" for a, b, c in rows]
    if pl.get("bytes"):
        best = pr.get("compacted_bytes", pr["bytes"])
        lines.append("")
        lines.append(f"size ratio Prometheus/promlab: {best / pl['bytes']:.2f}x")
    if "error" in pl:
        lines.append(f"promlab: {pl['error']}")
    if "compaction" in pr:
        lines.append(f"Prometheus compaction: {pr['compaction']}"
                     + (f" (waited {pr['compaction_wait_s']:.0f} s)" if "compaction_wait_s" in pr else ""))
    else:
        lines.append("Prometheus compaction: not run (--no-prometheus-compaction); promtool writes 2 h blocks")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.storage", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--no-prometheus-compaction", action="store_true",
                    help="skip starting Prometheus to let it compact the backfilled blocks")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    with _progress.defaulting(True):  # bars on stderr: dataset, promtool, flush/compaction
        r = run(args.hours, args.scale, compaction=not args.no_prometheus_compaction)
    print(json.dumps(r, indent=1) if args.json else format_table(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
