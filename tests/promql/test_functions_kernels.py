"""Function kernels on hand-built value frames, called through the registry directly."""

from __future__ import annotations

import re

import numpy as np
import pytest

import promlab.promql.eval.functions  # noqa: F401  (registers the implementations)
from promlab.model import Labels
from promlab.model.re2 import expand as expand_template
from promlab.promql.eval.functions._common import (
    WindowSet,
    format_go_g,
    kahan_inc,
    pos_suffix,
    reduce_windows,
    reset_correction,
)
from promlab.promql.eval.functions.misc import natural_compare
from promlab.promql.eval.functions.overtime import quantile_of_sorted, sort_rows
from promlab.promql.eval.registry import FUNCTION_IMPLS, FunctionCall
from promlab.promql.parser import parse_expr
from promlab.promql.values import EvalContext, Matrix, Vector


def matrix(series: list[list[tuple[int, float]]], steps: list[int], range_ms: int) -> Matrix:
    offs = np.cumsum([0] + [len(s) for s in series]).astype(np.int64)
    ts = np.array([t for s in series for t, _ in s], np.int64)
    vs = np.array([v for s in series for _, v in s], np.float64)
    st = np.array(steps, np.int64)
    labels = [Labels({"__name__": "m_total", "i": str(i)}) for i in range(len(series))]
    return Matrix(labels, offs, ts, vs, st - range_ms, st, range_ms)


def call(query: str, args: list, steps: list[int]) -> Vector:
    node = parse_expr(query)
    st = np.array(steps, np.int64)
    ctx = EvalContext(steps_ms=st, start_ms=int(st[0]), end_ms=int(st[-1]),
                      step_ms=int(st[1] - st[0]) if len(st) > 1 else 0, query=query)
    out = FUNCTION_IMPLS[node.func.name](FunctionCall(node, args, ctx))
    assert isinstance(out, Vector)
    return out


def test_windows_are_left_open() -> None:
    m = matrix([[(0, 1.0), (10, 2.0), (20, 3.0)]], [20], 20)
    out = call("count_over_time(m_total[20ms])", [m], [20])
    assert out.values[0, 0] == 2  # the sample at 0 is outside (0, 20]


def test_counter_resets_do_not_cross_series() -> None:
    # Series 0 ends high, series 1 starts low: no reset may be counted between them.
    m = matrix([[(0, 100.0), (10, 200.0)], [(0, 1.0), (10, 2.0)]], [10], 20)
    out = call("resets(m_total[20ms])", [m], [10])
    assert out.values[:, 0].tolist() == [0.0, 0.0]
    out = call("increase(m_total[20ms])", [m], [10])
    assert np.all(out.values[:, 0] > 0)


def test_rate_over_steps_matches_per_step_reference() -> None:
    rng = np.random.default_rng(1)
    ts = np.sort(rng.choice(np.arange(0, 10_000, 7), 300, replace=False))
    vals = np.cumsum(rng.integers(0, 5, ts.size)).astype(float)
    vals[150:] -= vals[150] - 1  # a counter reset
    m = matrix([list(zip(ts.tolist(), vals.tolist(), strict=True))], list(range(500, 10_000, 250)),
               1000)
    out = call("increase(m_total[1s])", [m], list(range(500, 10_000, 250)))
    for j, t in enumerate(range(500, 10_000, 250)):
        sel = (ts > t - 1000) & (ts <= t)
        w_t, w_v = ts[sel], vals[sel]
        if w_t.size < 2:
            assert not out.present[0, j]
            continue
        res = w_v[-1] - w_v[0] + sum(w_v[i - 1] for i in range(1, w_v.size) if w_v[i] < w_v[i - 1])
        sampled = (w_t[-1] - w_t[0]) / 1000
        avg = sampled / (w_t.size - 1)
        ds, de = (w_t[0] - (t - 1000)) / 1000, (t - w_t[-1]) / 1000
        ds = avg / 2 if ds >= avg * 1.1 else ds
        if res > 0 and w_v[0] >= 0:
            ds = min(ds, sampled * w_v[0] / res)
        de = avg / 2 if de >= avg * 1.1 else de
        assert out.values[0, j] == pytest.approx(res * (sampled + ds + de) / sampled)


def test_reduce_windows_overlapping() -> None:
    data = np.arange(10, dtype=float)
    lo = np.array([[0, 2, 5]])
    hi = np.array([[4, 9, 10]])
    assert reduce_windows(np.add, data, lo, hi).tolist() == [[6.0, 35.0, 35.0]]


def _windows(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Data and ``(S, T)`` window bounds for the doubling-table tests (fixed seed)."""
    rng = np.random.default_rng(7)
    data = rng.normal(size=3000)
    data[rng.random(3000) < 0.05] = np.nan
    if kind == "all-nan-window":
        data[100:140] = np.nan
    starts = np.arange(0, 2900)  # many overlapping windows: the table, not reduceat
    if kind == "mixed-lengths":
        length = rng.integers(0, 100, starts.size)  # empty and short windows too
    else:
        length = np.full(starts.size, 40)
    return data, starts.reshape(1, -1), (starts + length).reshape(1, -1)


@pytest.mark.parametrize("ufunc", [np.fmax, np.fmin, np.maximum, np.minimum],
                         ids=["fmax", "fmin", "maximum", "minimum"])
@pytest.mark.parametrize("kind", ["one-length", "mixed-lengths", "all-nan-window"])
def test_reduce_windows_doubling_table_matches_direct(ufunc: np.ufunc, kind: str) -> None:
    data, lo, hi = _windows(kind)
    got = reduce_windows(ufunc, data, lo, hi)
    assert got.shape == lo.shape
    nonempty = hi > lo
    want = np.array([ufunc.reduce(data[a:b]) for a, b in zip(lo[nonempty], hi[nonempty],
                                                             strict=True)])
    np.testing.assert_array_equal(got[nonempty], want)
    if kind == "all-nan-window":
        assert np.isnan(got[(lo >= 100) & (hi <= 140) & nonempty]).all()


@pytest.mark.parametrize(("reset_every", "steps"), [
    pytest.param(370, "ascending", id="rare-resets"),
    pytest.param(2, "ascending", id="resets-everywhere"),
    pytest.param(370, "descending", id="steps-out-of-order"),
])
def test_reset_correction_matches_per_window_sum(reset_every: int, steps: str) -> None:
    rng = np.random.default_rng(3)
    series = []
    for i in range(4):
        vals = np.cumsum(rng.random(2000) + 0.5) + 1000 * i
        for r in range(reset_every // 2 + i, 2000, reset_every):
            vals[r:] -= vals[r] - rng.random()  # the counter restarts near zero at sample r
        series.append([(t * 15_000, float(x)) for t, x in enumerate(vals)])
    grid = list(range(300_000, 2000 * 15_000, 60_000))
    m = matrix(series, grid[::-1] if steps == "descending" else grid, 300_000)
    lo, hi = m.window_bounds()
    got = reset_correction(m, lo, hi)
    assert got is not None
    v = m.values
    want = np.zeros(lo.shape)
    for (i, j), a in np.ndenumerate(lo):
        for k in range(a + 1, hi[i, j]):
            if v[k] < v[k - 1]:
                want[i, j] += v[k - 1]
    assert (want > 0).any()
    if reset_every > 2:
        np.testing.assert_array_equal(got, want)  # one reset per window: its drop exactly
    else:  # long sums of drops: reduceat's order of additions
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_window_set_prefix_positions() -> None:
    m = matrix([[(i, float(i)) for i in range(5)]], [1, 4, 2], 10)
    lo, hi = m.window_bounds()
    ws = WindowSet(m, lo, hi)
    assert ws.n.tolist() == [5, 3, 2]
    counts = [cnt for _k, _idx, cnt in ws.positions()]
    assert counts == [3, 3, 2, 1, 1]
    assert ws.scatter(np.array([1.0, 2.0, 3.0])).tolist() == [[3.0, 1.0, 2.0]]


def test_kahan_inc_recovers_small_terms() -> None:
    s, c = np.zeros(1), np.zeros(1)
    for x in (1.0, 1e100, 1.0, -1e100):
        s, c = kahan_inc(np.array([x]), s, c)
    assert (s + c).tolist() == [2.0]


@pytest.mark.parametrize(("x", "want"), [
    (1.1, "1.1"), (100.0, "100"), (1234567.0, "1.234567e+06"), (0.0001, "0.0001"),
    (1e-05, "1e-05"), (float("nan"), "NaN"), (float("-inf"), "-Inf"), (-0.1, "-0.1"),
])
def test_format_go_g(x: float, want: str) -> None:
    assert format_go_g(x) == want


@pytest.mark.parametrize(("template", "want"), [
    ("$1-$2", "a-b"), ("${1}x", "ax"), ("$1x", ""), ("$name!", "b!"), ("$$1", "$1"),
    ("$9", ""), ("a$", "a$"),
])
def test_expand_template_go_semantics(template: str, want: str) -> None:
    m = re.fullmatch(r"(a)-(?P<name>b)", "a-b")
    assert m is not None
    assert expand_template(template, m) == want


@pytest.mark.parametrize(("a", "b", "want"), [
    ("host2", "host10", -1), ("host10", "host2", 1), ("a", "a", 0), ("a1b", "a1c", -1),
])
def test_natural_compare(a: str, b: str, want: int) -> None:
    assert natural_compare(a, b) == want


def test_quantile_nan_sorts_first() -> None:
    block = np.array([[1.0, 2.0, 4.0, np.nan]])
    got = quantile_of_sorted(block, np.array([1]), np.array([4]), np.array([0.5]))
    assert got.tolist() == [1.5]  # ordered as NaN, 1, 2, 4


def test_pos_suffix_multiline() -> None:
    node = parse_expr("sum(\n  rate(x[5m]))")
    ctx = EvalContext(steps_ms=np.zeros(1, np.int64), start_ms=0, end_ms=0, step_ms=0,
                      query="sum(\n  rate(x[5m]))")
    inner = node.expr.args[0]
    assert pos_suffix(ctx, inner) == " (2:8)"


def test_sort_rows_keeps_zero_order() -> None:
    """Of equal 0 and -0 the earlier stays first (Go's insertion sort), on rows numpy's
    default sort would reorder too (many rows, mixed zeros, NaN)."""
    rng = np.random.default_rng(3)
    x = rng.choice([0.0, -0.0, np.nan, 1.0, -2.0], size=(4000, 10))
    got = sort_rows(x)
    for row, srt in zip(x, got, strict=True):
        zeros = row[row == 0]
        assert np.array_equal(np.signbit(srt[srt == 0]), np.signbit(zeros))
        assert np.array_equal(srt[~np.isnan(srt)], np.sort(row[~np.isnan(row)]))
