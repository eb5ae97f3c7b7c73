"""Micro-benchmark of the range-vector function kernels (no storage, no Prometheus).

Builds a :class:`~promlab.promql.values.Matrix` shaped like a range query over the standard
dataset (``--series`` series, one sample every 15 s over 24 h plus the window, 1,441 steps at
60 s, 5 m windows: about 20 samples per window) and times each function implementation on it
(CPU time, best of ``--repeat``). Counters (integer increments with rare resets) feed the
counter functions; gauges (random walks of values with two decimals around 1e8..1e10, like
``node_memory_usage_bytes``) feed the others.

Usage::

    python -m benchmarks.kernels [--series 1000] [--repeat 3] [--only rate,deriv]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

import promlab.promql.eval.functions  # noqa: F401  (registers the implementations)
from promlab.model import Labels
from promlab.promql.eval.registry import FUNCTION_IMPLS, FunctionCall
from promlab.promql.parser import parse_expr
from promlab.promql.parser.ast import Call
from promlab.promql.values import EvalContext, Matrix, Scalar

SCRAPE_MS = 15_000
STEP_MS = 60_000
RANGE_MS = 5 * 60_000
HOURS = 24

#: (function, data kind, extra scalar arguments placed as in the call)
CASES: list[tuple[str, str, str]] = [
    ("window_bounds", "gauge", ""),
    ("rate", "counter", ""),
    ("increase", "counter", ""),
    ("delta", "gauge", ""),
    ("irate", "counter", ""),
    ("idelta", "gauge", ""),
    ("changes", "gauge", ""),
    ("resets", "counter", ""),
    ("deriv", "gauge", ""),
    ("predict_linear", "gauge", ", 3600"),
    ("sum_over_time", "gauge", ""),
    ("avg_over_time", "gauge", ""),
    ("min_over_time", "gauge", ""),
    ("max_over_time", "gauge", ""),
    ("count_over_time", "gauge", ""),
    ("last_over_time", "gauge", ""),
    ("stddev_over_time", "gauge", ""),
    ("stdvar_over_time", "gauge", ""),
    ("quantile_over_time", "gauge", "0.9, "),
    ("mad_over_time", "gauge", ""),
]


def make_matrix(n_series: int, kind: str, seed: int = 7) -> tuple[Matrix, EvalContext]:
    """A Matrix of ``n_series`` regular series and the context of the range query over it."""
    rng = np.random.default_rng(seed)
    end_ms = 1_705_276_800_000 - 30_000
    start_ms = end_ms - HOURS * 3600_000
    steps = np.arange(start_ms, end_ms + 1, STEP_MS, dtype=np.int64)
    first = start_ms - RANGE_MS + 1_234
    ts1 = np.arange(first, end_ms + 1, SCRAPE_MS, dtype=np.int64)
    n = ts1.size
    if kind == "counter":
        lam = np.exp(rng.normal(1.0, 1.2, n_series))
        inc = rng.poisson(lam[:, None], (n_series, n)).astype(np.float64)
        vals = np.cumsum(inc, axis=1) + rng.integers(0, 1_000_000, n_series)[:, None]
        resets = rng.random((n_series, n)) < 1e-3
        for i, j in zip(*np.nonzero(resets), strict=True):
            vals[i, j:] -= vals[i, j] - inc[i, j]
    else:
        start = rng.integers(10**10, 10**12, n_series).astype(np.float64)
        sigma = rng.uniform(1e4, 1e7, n_series)
        walk = np.rint(rng.normal(0.0, 1.0, (n_series, n)) * sigma[:, None])
        vals = np.abs(start[:, None] + np.cumsum(walk, axis=1)) / 100.0
    labels = [Labels({"__name__": "m_total" if kind == "counter" else "m", "i": str(i)})
              for i in range(n_series)]
    m = Matrix(labels=labels,
               offsets=np.arange(n_series + 1, dtype=np.int64) * n,
               ts_ms=np.tile(ts1, n_series), values=vals.ravel(),
               window_start_ms=steps - RANGE_MS, window_end_ms=steps.copy(),
               range_ms=RANGE_MS)
    ctx = EvalContext(steps_ms=steps, start_ms=start_ms, end_ms=end_ms, step_ms=STEP_MS,
                      query="")
    return m, ctx


def make_call(name: str, extra: str, m: Matrix, ctx: EvalContext) -> FunctionCall:
    text = f"{name}({extra}m[5m])" if extra.endswith(", ") else f"{name}(m[5m]{extra})"
    node = parse_expr(text)
    assert isinstance(node, Call)
    args: list[object] = []
    t = ctx.num_steps
    if name == "quantile_over_time":
        args = [Scalar(np.full(t, 0.9)), m]
    elif name == "predict_linear":
        args = [m, Scalar(np.full(t, 3600.0))]
    else:
        args = [m]
    return FunctionCall(node=node, args=args, ctx=ctx)  # type: ignore[arg-type]


def time_case(name: str, kind: str, extra: str, matrices: dict[str, tuple[Matrix, EvalContext]],
              repeat: int) -> float:
    m, ctx = matrices[kind]
    if name == "window_bounds":
        def fn() -> object:
            return m.window_bounds()
    else:
        impl = FUNCTION_IMPLS[name]
        call = make_call(name, extra, m, ctx)

        def fn() -> object:
            return impl(call)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated function names")
    args = ap.parse_args(argv)
    only = {s for s in args.only.split(",") if s}
    t0 = time.perf_counter()
    matrices = {k: make_matrix(args.series, k) for k in ("counter", "gauge")}
    m = matrices["gauge"][0]
    print(f"{args.series} series x {matrices['gauge'][1].num_steps} steps, "
          f"{m.values.size:,} samples per matrix (built in {time.perf_counter() - t0:.1f} s)")
    for name, kind, extra in CASES:
        if only and name not in only:
            continue
        secs = time_case(name, kind, extra, matrices, args.repeat)
        print(f"{name:22s} {secs * 1000:9.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
