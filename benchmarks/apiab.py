"""A/B of promlab query servers in the same minute: requests interleaved, page faults counted.

``python -m benchmarks.apiab [--rounds 15] [--queries NAME,...] NAME=TREE[:VAR=VALUE,...] ...``

Each variant is a source tree (a checkout, or ``git archive REV promlab benchmarks | tar -x -C
DIR``) and optional environment variables (``new=/work/main:PROMLAB_MALLOC=default``); each runs
its own server child (``python -m benchmarks.api --serve query``) on one store of the
standard dataset. Per range query of :data:`benchmarks.promql.QUERIES`, every round times the
engine alone in this process (under the server's malloc policy), then one request to each
server, the servers' order reversed every other round, so that the machine's load falls on
all of them alike. Printed: median and min round trip (ms), the server's median minor page
faults per request (Linux: ``/proc/<pid>/stat`` read around each request) and the overhead
(server − engine) / engine from the medians. The answers of all variants must be
byte-identical.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from benchmarks import realprom

__all__ = ["Variant", "main", "parse_variant"]

Variant = tuple[str, str, dict[str, str]]


def parse_variant(text: str) -> Variant:
    """``NAME=TREE[:VAR=VALUE,...]`` into the name, the tree and its environment."""
    name, _, rest = text.partition("=")
    tree, _, envs = rest.partition(":")
    if not name or not tree:
        raise SystemExit(f"bad variant {text!r}: want NAME=TREE[:VAR=VALUE,...]")
    env = dict(kv.partition("=")[::2] for kv in envs.split(",") if kv)
    return name, tree, env


def _minflt(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[7])


def _start(tree: str, env: dict[str, str], data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = realprom.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.api", "--serve", "query", str(data), str(port)],
        cwd=tree, env={**os.environ, "PYTHONPATH": tree, **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            httpx.get(url + "/-/ready", timeout=2)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the server of {tree} did not start")


def _timed(fn: Callable[[], object], pid: int | None) -> tuple[float, int]:
    f0 = _minflt(pid) if pid else 0
    t0 = time.perf_counter()
    fn()
    ms = (time.perf_counter() - t0) * 1000
    return ms, (_minflt(pid) - f0) if pid else 0


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.apiab",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", metavar="NAME=TREE[:VAR=VALUE,...]")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--queries", help="comma list of query names (default: all)")
    ap.add_argument("--hours", type=float, default=6)
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--step", type=int, default=30, help="range query step (s)")
    a = ap.parse_args(argv)

    from benchmarks.promql import QUERIES, import_store
    from promlab import datasets
    from promlab.api.malloc import fix_malloc_policy
    from promlab.promql.engine import Engine
    from promlab.storage import open_store

    fix_malloc_policy()
    variants = [parse_variant(v) for v in a.variants]
    queries = [(n, e) for n, e in QUERIES if not a.queries or n in a.queries.split(",")]
    info = datasets.standard_dataset(hours=a.hours, scale=a.scale, progress=False)
    end_ms = (info.spec.end_ms // 60_000) * 60_000 - 30_000
    start_ms = end_ms - int(a.hours * 3600_000) + 3600_000
    params = {"start": start_ms / 1000, "end": end_ms / 1000, "step": a.step}
    engine = Engine(max_samples=2_000_000_000, timeout=None)
    times: dict[tuple[str, str], list[tuple[float, int]]] = {}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="promlab-apiab-") as tmp:
        data = Path(tmp) / "store"
        import_store(info.path, data)
        servers = [(name, *_start(tree, env, data)) for name, tree, env in variants]
        try:
            with open_store(data, readonly=True) as store, httpx.Client(timeout=300) as client:
                for qname, expr in queries:
                    def evaluate(expr: str = expr) -> object:
                        return engine.range(store, expr, start_ms, end_ms, a.step * 1000)

                    bodies = set()
                    for _, _, url in servers:
                        r = client.get(url + "/api/v1/query_range",
                                       params={"query": expr, **params})
                        r.raise_for_status()
                        bodies.add(r.content)
                    if len(bodies) != 1:
                        raise RuntimeError(f"{qname}: the variants answer differently")
                    sizes[qname] = len(bodies.pop())
                    evaluate()
                    for rnd in range(a.rounds):
                        times.setdefault((qname, "engine"), []).append(_timed(evaluate, None))
                        for name, proc, url in servers if rnd % 2 == 0 else servers[::-1]:
                            def request(url: str = url, expr: str = expr) -> bytes:
                                return client.get(url + "/api/v1/query_range",
                                                  params={"query": expr, **params}).content

                            times.setdefault((qname, name), []).append(
                                _timed(request, proc.pid))
        finally:
            for _, proc, _ in servers:
                proc.terminate()
                proc.wait(30)
    print(format_table(queries, [v[0] for v in variants], times, sizes))


def format_table(queries: Sequence[tuple[str, str]], names: Sequence[str],
                 times: dict[tuple[str, str], list[tuple[float, int]]],
                 sizes: dict[str, int]) -> str:
    """Median/min ms and median faults per query and variant; overheads on the medians."""
    cols = ["engine", *names]
    lines = [f"{'range query':<20}{'MB':>6}" + "".join(f"{c + ' med':>14}{'min':>7}{'flt':>6}"
                                                      for c in cols)]
    total = dict.fromkeys(cols, 0.0)
    for qname, _ in queries:
        line = f"{qname:<20}{sizes[qname] / 1e6:>6.2f}"
        for c in cols:
            ms = [t for t, _ in times[qname, c]]
            total[c] += statistics.median(ms)
            line += (f"{statistics.median(ms):>14.2f}{min(ms):>7.2f}"
                     f"{statistics.median(f for _, f in times[qname, c]):>6.0f}")
        lines.append(line)
    lines.append(f"{'all (medians)':<26}" + "".join(f"{total[c]:>14.1f}{'':>13}" for c in cols))
    eng = total["engine"]
    lines.append("overhead (server - engine) / engine: " + ", ".join(
        f"{n} {(total[n] - eng) / eng * 100:.0f}%" for n in names))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
