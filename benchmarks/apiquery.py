"""API overhead on range queries: the engine alone, the same query through promlab's HTTP API,
and through a real Prometheus's, over the standard dataset.

The dataset (:func:`promlab.datasets.standard_dataset`) is imported into a promlab store and
backfilled into Prometheus with promtool. promlab's server runs in a child process on the
store opened read-only (``python -m benchmarks.api --serve query DIR PORT``); the engine is
timed in this process on its own read-only open of the same store. Every figure is the median
of ``repeat`` warm runs; HTTP times are a full round trip read to the last byte (the JSON is not
parsed, for either server). ``overhead`` = (API − engine) / engine: what the HTTP layer adds to
the evaluation (request parsing, JSON building, transfer). Two floors make it honest:
``encode`` is :func:`promlab.api.encode.query_response` of the same result alone (in this
process), ``transfer`` the round trip of a static body of the same size from the same server
(``/bench/static``, mounted by the benchmark child only): routing, middleware, socket, client.
``net`` = (API − engine − transfer) / engine is what is left to the API's own work.

Figures (issue 12), load ~1-1.6 (other engineers' jobs on the 2 cores), ``--repeat 7`` (last
row 11), totals over the 11 queries, ms (2026-12-07); these runs are sequential, so the load
of the moment moves them by +-10 %::

                                   engine  encode  transfer    API  overhead  net   Prom HTTP
    padded-matrix encoder (before)   36.4    69.1      22.3  142.6     292%  230%     1119.3
    per-width + fixed malloc         35.8    38.6      22.4  107.9     202%  139%     1049.0
    per-width, PROMLAB_MALLOC=default
                                     33.8    34.7      23.3  148.7     341%  272%     1017.6
    value groups + joints            39.0    33.4      23.6  109.9     182%  121%     1163.3
    same, quiet machine (load 0.2)   36.7    27.9      20.0   97.1     164%  110%     1052.5

Both this process (the engine alone) and the server child run under ``promlab serve``'s fixed
glibc malloc policy (:mod:`promlab.api.malloc`). Without it, glibc's adaptive trim threshold
follows the largest block freed so far; the per-width encoder frees only small temporaries,
and the engine's next arrays then fault in page by page: 2,000-5,700 minor faults per query;
with it, 0. Interleaved (:mod:`benchmarks.apiab`, 15 rounds, the engine alone timed in the
same rounds, so it pays the same cache and load effects; sums of medians over the 11 queries,
load ~1.5)::

                                 engine   server  overhead  faults/query
    padded-matrix encoder          44.9    143.3      219%             0
    value groups + joints          44.9    102.5      128%             0
    same, PROMLAB_MALLOC=default   44.9    154.3      244%   2,022-5,684

4 MB answers 18.5-23.0 -> 11.1-15.5 ms each; small ones the same or up to 0.5 ms faster (sum
by rate 7.36 -> 6.98, binop on() 8.60 -> 8.08, histogram_quantile 7.02 -> 7.07).

Small answers: sum by rate engine 4.0, encode 0.2-0.3, transfer 0.6, API 5.6-7.5 ms
(45-87 %); count by 1.6 -> 2.7-3.2 (68-91 %); 200-series x 601-step answers (4 MB) 195-570 %
(rate: engine 3.4, encode 5.8 (was 13.3), transfer 3.6, API 15.7 (was 22.2)). Queries whose
last evaluation + encoding took <= 5 ms run on the event loop (:mod:`promlab.api.costs`):
about 0.1 ms of CPU and two thread wake-ups less per query (A/B, same minute: vector(1) 0.79
-> 0.69 ms, count by 2.70 -> 2.41 ms round trip, min).

The 10 % target is out of reach for every query here. Small answers: the transfer floor alone
(0.4-0.6 ms for a 20-100 kB body) exceeds 10 % of these 1.6-5 ms evaluations, and ~0.27 ms of
it is the httpx client (a raw-socket client: vector(1) 0.31 ms round trip, httpx 0.58);
uvicorn runs on uvloop and httptools already, Starlette's stack costs ~16 us per request, and
writing head and body in one send changed nothing measurable. Inside the server, an answer
costs its evaluation (~10 % slower than back-to-back in this process: caches), ~0.1-0.3 ms of
encoding and ~0.05 ms of parameters and bookkeeping. 4 MB answers cost more to encode
(~1.2-1.5 ns per byte, a third of it orjson's float formatting and finding its commas) and to
read than to evaluate. Prometheus answers every query 4-20x slower than promlab over HTTP.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks import realprom

__all__ = ["QueryRow", "bench_queries", "format_rows"]


@dataclass
class QueryRow:
    name: str
    series: int
    steps: int
    json_bytes: int
    engine_ms: float
    api_ms: float
    prom_ms: float
    prom_bytes: int
    transfer_ms: float = 0.0
    encode_ms: float = 0.0
    #: Prometheus asked for ``Accept-Encoding: identity``: its answer without gzip (both
    #: servers' ``Prom HTTP``/``API`` columns use httpx's default, which asks for gzip;
    #: Prometheus compresses then, promlab only for peers off loopback: promlab.api.compress).
    prom_plain_ms: float = math.nan

    @property
    def overhead(self) -> float:
        """(API − engine) / engine, in percent."""
        return (self.api_ms - self.engine_ms) / self.engine_ms * 100 if self.engine_ms else 0.0

    @property
    def overhead_net(self) -> float:
        """(API − engine − transfer floor) / engine, in percent: what is left to the API's own
        work (parameters, encoding, the worker hop) once the bytes' round trip is paid."""
        if not self.engine_ms:
            return 0.0
        return (self.api_ms - self.engine_ms - self.transfer_ms) / self.engine_ms * 100


def _median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench_queries(*, hours: float = 6, scale: float = 0.2, step_s: int = 30, repeat: int = 7,
                  queries: Sequence[tuple[str, str]] | None = None) -> list[QueryRow]:
    """One :class:`QueryRow` per range query of :data:`benchmarks.promql.QUERIES`."""
    from benchmarks import api
    from benchmarks.promql import QUERIES, import_store
    from promlab import datasets
    from promlab.api.encode import query_response
    from promlab.api.malloc import fix_malloc_policy
    from promlab.promql.engine import Engine, Result
    from promlab.storage import open_store

    realprom.require_binary("promtool")
    # The engine alone runs under the server's allocator policy (promlab serve's): the same
    # evaluation cost on both sides of ``overhead``, not glibc's adaptive one in this process.
    fix_malloc_policy()
    info = datasets.standard_dataset(hours=hours, scale=scale, progress=False)
    spec = info.spec
    end_ms = (spec.end_ms // 60_000) * 60_000 - 30_000
    start_ms = end_ms - int(hours * 3600_000) + 3600_000  # an hour for the windows
    params = {"start": start_ms / 1000, "end": end_ms / 1000, "step": step_s}
    engine = Engine(max_samples=2_000_000_000, timeout=None)
    rows: list[QueryRow] = []
    with tempfile.TemporaryDirectory(prefix="promlab-apibench-") as tmp:
        data_dir = Path(tmp) / "promlab"
        import_store(info.path, data_dir)
        realprom.backfill(info.path, Path(tmp) / "prom", progress=False)
        proc, write_url = api._child("query", str(data_dir))
        base_url = write_url.removesuffix("/api/v1/write")
        ours_url = base_url + "/api/v1/query_range"
        try:
            with open_store(data_dir, readonly=True) as store, \
                    realprom.prometheus(data_dir=Path(tmp) / "prom") as prom, \
                    httpx.Client(timeout=300) as client:
                theirs_url = prom.url + "/api/v1/query_range"
                for name, expr in queries or QUERIES:
                    def ours(expr: str = expr) -> httpx.Response:
                        return client.get(ours_url, params={"query": expr, **params})

                    def theirs(expr: str = expr) -> httpx.Response:
                        return client.get(theirs_url, params={"query": expr, **params})

                    def theirs_plain(expr: str = expr) -> httpx.Response:
                        return client.get(theirs_url, params={"query": expr, **params},
                                          headers={"Accept-Encoding": "identity"})

                    def evaluate(expr: str = expr) -> object:
                        return engine.range(store, expr, start_ms, end_ms, step_s * 1000)

                    res = engine.range(store, expr, start_ms, end_ms, step_s * 1000)
                    a, b = ours(), theirs()

                    def static(n: int = len(a.content)) -> httpx.Response:
                        return client.get(base_url + "/bench/static", params={"bytes": n})

                    def encode(res: Result = res) -> bytes:
                        return bytes(query_response(res).body)

                    if len(static().content) != len(a.content) or encode() != a.content:
                        raise RuntimeError(f"{name}: static body or encoding differ")
                    for r in (a, b):
                        r.raise_for_status()
                        if not r.content.startswith(b'{"status":"success"'):
                            raise RuntimeError(f"{name}: {r.content[:200]!r}")
                    rows.append(QueryRow(
                        name=name, series=len(getattr(res.value, "labels", ())),
                        steps=len(res.steps_ms), json_bytes=len(a.content),
                        engine_ms=_median_ms(evaluate, repeat), api_ms=_median_ms(ours, repeat),
                        prom_ms=_median_ms(theirs, repeat), prom_bytes=len(b.content),
                        prom_plain_ms=_median_ms(theirs_plain, repeat),
                        transfer_ms=_median_ms(static, repeat),
                        encode_ms=_median_ms(encode, repeat)))
        finally:
            api._stop(proc)
    return rows


def format_rows(rows: Sequence[QueryRow]) -> str:
    """The table: sizes, engine, encode alone, transfer floor, API; both overheads; Prometheus."""
    head = (f"{'range query':<20}{'series':>7}{'MB':>6}{'engine':>8}{'encode':>8}"
            f"{'transfer':>9}{'API':>8}{'overhead':>9}{'net':>6}{'Prom HTTP':>10}{'API/Prom':>9}"
            f"{'Prom plain':>11}")
    lines = [head]
    for r in rows:
        lines.append(f"{r.name:<20}{r.series:>7}{r.json_bytes / 1e6:>6.2f}{r.engine_ms:>8.1f}"
                     f"{r.encode_ms:>8.1f}{r.transfer_ms:>9.1f}{r.api_ms:>8.1f}"
                     f"{r.overhead:>8.0f}%{r.overhead_net:>5.0f}%{r.prom_ms:>10.1f}"
                     f"{r.api_ms / r.prom_ms:>9.2f}{r.prom_plain_ms:>11.1f}")
    eng = sum(r.engine_ms for r in rows)
    enc = sum(r.encode_ms for r in rows)
    tr = sum(r.transfer_ms for r in rows)
    apis = sum(r.api_ms for r in rows)
    lines.append(f"{'all':<33}{eng:>8.1f}{enc:>8.1f}{tr:>9.1f}{apis:>8.1f}"
                 f"{(apis - eng) / eng * 100:>8.0f}%{(apis - eng - tr) / eng * 100:>5.0f}%"
                 f"{sum(r.prom_ms for r in rows):>10.1f}{'':>9}"
                 f"{sum(r.prom_plain_ms for r in rows):>11.1f}")
    return "\n".join(lines)
