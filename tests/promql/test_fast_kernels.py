"""The fast range-vector kernels agree with the reference (Prometheus-order) kernels.

Random irregular frames (gaps, uneven counts, series of one sample, empty series) with benign
and hostile values (huge/tiny magnitudes, cancellation, NaN, ±Inf); each fast path is checked
against the position-by-position kernel that replicates Prometheus's arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import promlab.promql.eval.functions  # noqa: F401  (registers the implementations)
from promlab.model import Labels
from promlab.promql.eval.functions._common import WindowSet, reduce_windows
from promlab.promql.eval.functions._fast import count_groups, window_sums
from promlab.promql.eval.functions.overtime import (
    _avg_kahan,
    _variance_kahan,
    _window_quantiles,
    window_sum,
)
from promlab.promql.eval.functions.rangefuncs import _linear_regression
from promlab.promql.eval.registry import FUNCTION_IMPLS, FunctionCall
from promlab.promql.parser import parse_expr
from promlab.promql.values import EvalContext, Matrix, Scalar, Vector

STEP = 10_000
RANGE = 45_000


def random_matrix(kind: str, seed: int = 1, n_series: int = 12, n_steps: int = 40,
                  range_ms: int = RANGE) -> Matrix:
    rng = np.random.default_rng(seed)
    steps = np.arange(n_steps, dtype=np.int64) * STEP + 100_000
    ts_all: list[np.ndarray] = [np.zeros(0, np.int64)]
    vs_all: list[np.ndarray] = [np.zeros(0)]
    offs = [0]
    for i in range(n_series):
        n = 0 if i == 3 else 1 if i == 4 else int(rng.integers(5, 120))
        ts = np.sort(rng.choice(np.arange(40_000, 520_000, 1_000), n, replace=False))
        if kind == "benign":
            vs = np.round(rng.normal(1e6, 1e3, n).cumsum(), 2)
        elif kind == "integer":
            vs = rng.integers(0, 50, n).cumsum().astype(np.float64)
        elif kind == "constant":
            vs = np.full(n, 0.1)
        else:  # hostile
            pool = np.array([1e100, -1e100, 1.0, 0.1, -3.5, 1e-300, 2.0**60, np.nan, np.inf,
                             -np.inf, 1e308, 0.0, -0.0, 7.0])
            vs = rng.choice(pool, n, p=None)
            vs = np.where(rng.random(n) < 0.5, np.round(rng.normal(0, 10, n), 1), vs)
        ts_all.append(ts)
        vs_all.append(vs)
        offs.append(offs[-1] + n)
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(n_series)]
    return Matrix(labels, np.array(offs, np.int64), np.concatenate(ts_all).astype(np.int64),
                  np.concatenate(vs_all), steps - range_ms, steps, range_ms)


def call(query: str, args: list, m: Matrix) -> Vector:
    node = parse_expr(query)
    st = m.window_end_ms
    ctx = EvalContext(steps_ms=st, start_ms=int(st[0]), end_ms=int(st[-1]), step_ms=STEP,
                      query=query)
    out = FUNCTION_IMPLS[node.func.name](FunctionCall(node, args, ctx))
    assert isinstance(out, Vector)
    return out


def grid(m: Matrix, out: Vector) -> tuple[np.ndarray, np.ndarray]:
    """Output values and presence on the full (S, T) grid of the input series."""
    idx = {ls: i for i, ls in enumerate(m.labels)}
    vals = np.zeros((len(m), m.window_end_ms.size))
    pres = np.zeros(vals.shape, bool)
    for row, ls in enumerate(out.labels):
        key = next(lab for lab in m.labels if lab.without("__name__") == ls.without("__name__"))
        vals[idx[key]] = out.values[row]
        pres[idx[key]] = out.present[row]
    return vals, pres


def reference(m: Matrix, kernel, min_count: int = 1) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    lo, hi = m.window_bounds()
    ws = WindowSet(m, lo, hi, min_count)
    return ws.scatter(kernel(m, ws)), ws.mask


def assert_same(got: np.ndarray, want: np.ndarray, mask: np.ndarray, rtol: float = 0.0) -> None:
    g, w = got[mask], want[mask]
    both_nan = np.isnan(g) & np.isnan(w)
    if rtol == 0.0:
        bad = ~both_nan & (g != w)
    else:
        with np.errstate(invalid="ignore"):
            bad = ~both_nan & ~np.isclose(g, w, rtol=rtol, atol=0.0)
    assert not bad.any(), list(zip(g[bad][:5], w[bad][:5], strict=True))


KINDS = [pytest.param(k, id=k) for k in ("benign", "integer", "constant", "hostile")]


def brute_bounds(m: Matrix) -> tuple[np.ndarray, np.ndarray]:
    lo = np.zeros((len(m), m.window_end_ms.size), np.int64)
    hi = lo.copy()
    for i in range(len(m)):
        a, b = int(m.offsets[i]), int(m.offsets[i + 1])
        for j, (s, e) in enumerate(zip(m.window_start_ms, m.window_end_ms, strict=True)):
            sel = np.flatnonzero((m.ts_ms[a:b] > s) & (m.ts_ms[a:b] <= e))
            lo[i, j] = a + (sel[0] if sel.size else np.searchsorted(m.ts_ms[a:b], e, "right"))
            hi[i, j] = lo[i, j] + sel.size
    return lo, hi


@pytest.mark.parametrize("range_ms", [pytest.param(r, id=f"range{r}") for r in
                                      (RANGE, 40_000, 10_000, 1, 200_000)])
def test_window_bounds_match_brute_force(range_ms: int) -> None:
    m = random_matrix("benign", seed=range_ms, range_ms=range_ms)
    lo, hi = m.window_bounds()
    blo, bhi = brute_bounds(m)
    assert ((hi - lo) == (bhi - blo)).all()
    nonempty = hi > lo
    assert (lo[nonempty] == blo[nonempty]).all()


def test_window_bounds_many_chunks() -> None:
    rng = np.random.default_rng(9)
    n_series, n_steps = 300, 700
    counts = rng.integers(0, 400, n_series)
    ts = np.concatenate([np.sort(rng.choice(800_000, c, replace=False)) for c in counts])
    offs = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    steps = np.arange(n_steps, dtype=np.int64) * 1_100 + 10_000
    labels = [Labels({"i": str(i)}) for i in range(n_series)]
    m = Matrix(labels, offs, ts.astype(np.int64), np.zeros(ts.size), steps - 7_000, steps, 7_000)
    lo, hi = m.window_bounds()
    for i in range(n_series):
        seg = m.ts_ms[offs[i]:offs[i + 1]]
        assert (lo[i] == offs[i] + np.searchsorted(seg, steps - 7_000, "right")).all()
        assert (hi[i] == offs[i] + np.searchsorted(seg, steps, "right")).all()


def test_window_bounds_empty_frames() -> None:
    m = random_matrix("benign", n_series=0)
    assert m.window_bounds()[0].shape == (0, 40)
    m = random_matrix("benign", n_steps=0)
    assert m.window_bounds()[0].shape == (12, 0)


@pytest.mark.parametrize("kind", KINDS)
def test_sum_over_time_matches_kahan(kind: str) -> None:
    m = random_matrix(kind)
    got, pres = grid(m, call("sum_over_time(m[45s])", [m], m))
    want, mask = reference(m, window_sum)
    assert (pres == mask).all()
    assert_same(got, want, mask, rtol=0.0 if kind != "benign" else 1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_avg_over_time_matches_kahan(kind: str) -> None:
    m = random_matrix(kind)
    got, pres = grid(m, call("avg_over_time(m[45s])", [m], m))
    want, mask = reference(m, _avg_kahan)
    assert (pres == mask).all()
    assert_same(got, want, mask, rtol=1e-15)


@pytest.mark.parametrize("fn", ["stddev_over_time", "stdvar_over_time"])
@pytest.mark.parametrize("kind", KINDS)
def test_variance_is_bit_identical(kind: str, fn: str) -> None:
    m = random_matrix(kind)
    got, pres = grid(m, call(f"{fn}(m[45s])", [m], m))
    want, mask = reference(m, _variance_kahan)
    if fn == "stddev_over_time":
        with np.errstate(invalid="ignore"):
            want = np.sqrt(want)
    assert (pres == mask).all()
    assert_same(got, want, mask)


@pytest.mark.parametrize("fn", ["deriv", "predict_linear"])
@pytest.mark.parametrize("kind", KINDS)
def test_regression_is_bit_identical(kind: str, fn: str) -> None:
    m = random_matrix(kind)
    t = m.window_end_ms.size
    if fn == "deriv":
        got, pres = grid(m, call("deriv(m[45s])", [m], m))

        def kernel(mm: Matrix, ws: WindowSet) -> np.ndarray:
            return _linear_regression(mm, ws, mm.ts_ms[ws.lo])[0]
    else:
        got, pres = grid(m, call("predict_linear(m[45s], 60)", [m, Scalar(np.full(t, 60.0))], m))

        def kernel(mm: Matrix, ws: WindowSet) -> np.ndarray:
            steps = np.broadcast_to(mm.window_end_ms[None, :], ws.shape).ravel()[ws.flat]
            slope, icpt = _linear_regression(mm, ws, steps)
            with np.errstate(all="ignore"):
                return slope * 60.0 + icpt
    want, mask = reference(m, kernel, min_count=2)
    assert (pres == mask).all()
    assert_same(got, want, mask)


@pytest.mark.parametrize("q", [pytest.param(q, id=f"q{q}") for q in (0.0, 0.25, 0.5, 0.9, 1.0,
                                                                      -1.0, 2.0)])
@pytest.mark.parametrize("kind", KINDS)
def test_quantile_over_time_matches_sort(kind: str, q: float) -> None:
    m = random_matrix(kind)
    t = m.window_end_ms.size
    got, pres = grid(m, call(f"quantile_over_time({q}, m[45s])", [Scalar(np.full(t, q)), m], m))
    want, mask = reference(m, lambda mm, ws: _window_quantiles(mm, ws, np.full(ws.flat.size, q)))
    assert (pres == mask).all()
    assert_same(got, want, mask)


@pytest.mark.parametrize("kind", KINDS)
def test_mad_over_time_matches_sort(kind: str) -> None:
    m = random_matrix(kind)
    got, pres = grid(m, call("mad_over_time(m[45s])", [m], m))
    want, mask = reference(
        m, lambda mm, ws: _window_quantiles(mm, ws, np.full(ws.flat.size, 0.5), mad=True))
    assert (pres == mask).all()
    assert_same(got, want, mask)


def test_quantile_over_time_per_step_q() -> None:
    m = random_matrix("benign")
    t = m.window_end_ms.size
    qs = np.linspace(0, 1, t)
    got, _ = grid(m, call("quantile_over_time(0.5, m[45s])", [Scalar(qs), m], m))
    lo, hi = m.window_bounds()
    ws = WindowSet(m, lo, hi)
    want = ws.scatter(_window_quantiles(m, ws, np.broadcast_to(qs, lo.shape).ravel()[ws.flat]))
    assert_same(got, want, ws.mask)


def test_window_sums_flags_cancellation_and_nonfinite() -> None:
    v = np.array([1e100, 1.0, -1e100, 2.0, np.nan, 3.0, 0.5, 0.25])
    lo = np.array([0, 1, 3, 5, 3])
    hi = np.array([3, 2, 5, 8, 4])
    sums, exact = window_sums(v, lo, hi)
    assert not exact[0] and not exact[2]  # cancellation; NaN
    want = [1.0, 1.0, np.nan, 3.75, 2.0]
    assert all(sums[i] == want[i] for i in np.flatnonzero(exact))
    v = np.array([0.1, 0.2, 0.3, 1e6 + 0.01, -5.5, 7.0])
    sums, exact = window_sums(v, np.array([0, 1, 3, 0]), np.array([2, 4, 6, 6]))
    assert exact.all()
    assert sums.tolist() == [0.1 + 0.2, 1000000.51, 1000001.51, 1000002.11]


def test_count_groups_covers_every_window_once() -> None:
    rng = np.random.default_rng(3)
    lo = rng.integers(0, 50, (7, 9))
    hi = lo + rng.integers(0, 70, (7, 9))
    seen = []
    for n, flat, starts in count_groups(lo, hi, min_count=1, chunk_elems=64):
        assert ((hi - lo).ravel()[flat] == n).all()
        assert (lo.ravel()[flat] == starts).all()
        seen.extend(flat.tolist())
    assert sorted(seen) == np.flatnonzero((hi - lo).ravel() >= 1).tolist()


def test_reset_correction_matches_reduceat() -> None:
    m = random_matrix("integer", seed=5)
    v = m.values.copy()
    v[::7] = 0.0  # many resets, several per window
    m = Matrix(m.labels, m.offsets, m.ts_ms, v, m.window_start_ms, m.window_end_ms, m.range_ms)
    got, pres = grid(m, call("increase(m[45s])", [m], m))
    lo, hi = m.window_bounds()
    prev = np.concatenate([[np.nan], v[:-1]])
    start = np.zeros(v.size, bool)
    start[m.offsets[:-1][np.diff(m.offsets) > 0]] = True
    drops = np.where((v < prev) & ~start, prev, 0.0)
    corr = reduce_windows(np.add, drops, np.minimum(lo + 1, hi), hi)
    first = np.take(v, lo, mode="clip")
    last = np.take(v, hi - 1, mode="clip")
    raw = last - first + corr
    # increase = raw * extrapolation factor > 0: same sign and zero-ness as the raw increase
    ok = pres & (raw != 0)
    assert (np.sign(got[ok]) == np.sign(raw[ok])).all()
    assert (got[pres & (raw == 0)] == 0).all()


def regular_matrix(phases: list[int], seed: int = 2, gap: int = 15_000) -> Matrix:
    """Regularly sampled series (one per phase), steps not aligned with the samples."""
    rng = np.random.default_rng(seed)
    steps = np.arange(30, dtype=np.int64) * 7_000 + 200_000
    ts = [np.arange(100_000 + p, 420_000, gap, dtype=np.int64) for p in phases]
    vs = [np.round(rng.normal(5e9, 1e5, t.size).cumsum(), 2) for t in ts]
    offs = np.cumsum([0] + [t.size for t in ts]).astype(np.int64)
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(len(phases))]
    return Matrix(labels, offs, np.concatenate(ts), np.concatenate(vs), steps - RANGE, steps,
                  RANGE)


@pytest.mark.parametrize("phases", [pytest.param([0, 0, 0], id="aligned"),
                                    pytest.param([0, 1_234, 7_001, 14_999], id="phases"),
                                    pytest.param(list(range(0, 15_000, 150)), id="many-phases")])
@pytest.mark.parametrize("fn", ["deriv", "predict_linear"])
def test_regression_regular_sampling_is_bit_identical(phases: list[int], fn: str) -> None:
    m = regular_matrix(phases)
    t = m.window_end_ms.size
    lo, hi = m.window_bounds()
    ws = WindowSet(m, lo, hi, 2)
    if fn == "deriv":
        got, _ = grid(m, call("deriv(m[45s])", [m], m))
        want = ws.scatter(_linear_regression(m, ws, m.ts_ms[ws.lo])[0])
    else:
        got, _ = grid(m, call("predict_linear(m[45s], 60)", [m, Scalar(np.full(t, 60.0))], m))
        steps = np.broadcast_to(m.window_end_ms[None, :], lo.shape).ravel()[ws.flat]
        slope, icpt = _linear_regression(m, ws, steps)
        want = ws.scatter(slope * 60.0 + icpt)
    assert_same(got, want, ws.mask)


@pytest.mark.parametrize(("ts", "offsets", "want"), [
    pytest.param([0, 10, 20, 5, 15], [0, 3, 5], 10, id="regular"),
    pytest.param([0, 10, 21], [0, 3], None, id="jitter"),
    pytest.param([0, 5, 15, 25], [0, 1, 4], 10, id="single-sample-series"),
    pytest.param([7], [0, 1], None, id="one-sample"),
])
def test_regular_gap(ts: list[int], offsets: list[int], want: int | None) -> None:
    from promlab.promql.eval.functions._fast import regular_gap
    assert regular_gap(np.array(ts, np.int64), np.array(offsets, np.int64)) == want


def _sparse_windows(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values and one window per 'series' (an instant query's layout): few windows, each
    summed directly rather than from prefix sums."""
    rng = np.random.default_rng(7)
    n = 4000
    v = {
        "gauge": 8.6e9 + np.round(rng.random(n) * 1e7, 2),
        "mixed": rng.standard_normal(n) * 10.0 ** rng.integers(-8, 12, n),
        "cancel": np.tile([1e17, 3.5, -1e17, 0.25], n // 4),
        "nonfinite": np.where(rng.random(n) < 0.01, np.inf, rng.random(n)),
    }[kind]
    lo = np.arange(0, n, 200, dtype=np.int64)
    hi = lo + rng.integers(0, 200, lo.shape[0])
    hi[3] = lo[3]  # an empty window
    return v, lo[:, None], hi[:, None]


@pytest.mark.parametrize("kind", ["gauge", "mixed", "cancel", "nonfinite"])
def test_window_sums_direct_sums_are_within_the_bound(kind: str) -> None:
    v, lo, hi = _sparse_windows(kind)
    sums, exact = window_sums(v, lo, hi)
    assert sums.shape == exact.shape == lo.shape
    for i in range(lo.shape[0]):
        xs = v[lo[i, 0]:hi[i, 0]]
        if not np.isfinite(xs).all():
            assert not exact[i, 0]
            continue
        if exact[i, 0]:
            want = math.fsum(xs.tolist())
            assert abs(sums[i, 0] - want) <= abs(want) * 2.0**-50
    assert exact[3, 0] and sums[3, 0] == 0.0
    if kind == "gauge":
        assert exact.all()
    if kind == "cancel":
        assert not exact[hi - lo > 2].all()
