"""The classic-histogram fast paths (remembered layout, dense cells, cell-by-cell quantiles)
agree bit for bit with the array path they shortcut.

One step of a bucket vector takes the dense layout and the cell-by-cell quantile; the same
step repeated past :data:`histcells.MAX_SMALL_CELLS` steps takes the array quantile; a hole at
one more step takes the general (sorted, coalescing) cell build. All three must agree.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import promlab.promql.eval.functions  # noqa: F401  (registers the implementations)
from promlab.model import Labels
from promlab.promql.eval.functions import histcells
from promlab.promql.eval.registry import FUNCTION_IMPLS, FunctionCall
from promlab.promql.parser import parse_expr
from promlab.promql.values import EvalContext, Scalar, Vector

INF = math.inf
NAN = math.nan

# (id, q, histograms: list of [(le, count), ...])
CASES = [
    ("plain", 0.9, [[("0.1", 1.0), ("0.5", 4.0), ("1", 9.0), ("+Inf", 10.0)]]),
    ("median", 0.5, [[("1", 3.0), ("2", 5.0), ("4", 8.0), ("+Inf", 8.0)]]),
    ("unsorted-input", 0.3, [[("+Inf", 10.0), ("1", 9.0), ("0.1", 1.0), ("0.5", 4.0)]]),
    ("non-monotonic", 0.7, [[("1", 5.0), ("2", 3.0), ("4", 9.0), ("+Inf", 9.0)]]),
    ("precision-fix", 0.5, [[("1", 1e15), ("2", 1e15 + 0.5), ("+Inf", 3e15)]]),
    ("nan-count", 0.5, [[("1", NAN), ("2", 3.0), ("+Inf", 4.0)]]),
    ("inf-count", 0.5, [[("1", 1.0), ("2", INF), ("+Inf", INF)]]),
    ("zero-obs", 0.5, [[("1", 0.0), ("+Inf", 0.0)]]),
    ("q-zero", 0.0, [[("1", 0.0), ("2", 2.0), ("+Inf", 4.0)]]),
    ("q-zero-first-filled", 0.0, [[("1", 1.0), ("2", 2.0), ("+Inf", 4.0)]]),
    ("q-one", 1.0, [[("1", 1.0), ("2", 2.0), ("+Inf", 4.0)]]),
    ("q-negative", -0.5, [[("1", 1.0), ("+Inf", 4.0)]]),
    ("q-above-one", 1.5, [[("1", 1.0), ("+Inf", 4.0)]]),
    ("q-nan", NAN, [[("1", 1.0), ("+Inf", 4.0)]]),
    ("negative-bound", 0.2, [[("-1", 1.0), ("0", 2.0), ("1", 3.0), ("+Inf", 5.0)]]),
    ("minus-inf-bound", 0.5, [[("-Inf", 1.0), ("1", 3.0), ("+Inf", 5.0)]]),
    ("no-inf-bucket", 0.5, [[("1", 1.0), ("2", 3.0)]]),
    ("only-inf-bucket", 0.5, [[("+Inf", 3.0)]]),
    ("all-in-inf", 0.99, [[("1", 1.0), ("2", 1.0), ("+Inf", 5.0)]]),
    ("zero-counts-to-divide", 0.5, [[("1", 0.0), ("2", 0.0), ("3", 4.0), ("+Inf", 4.0)]]),
    ("two-histograms", 0.9, [[("1", 2.0), ("+Inf", 3.0)],
                             [("1", 7.0), ("5", 8.0), ("+Inf", 10.0)]]),
    ("equal-width-two", 0.25, [[("1", 2.0), ("2", 6.0), ("+Inf", 8.0)],
                               [("1", 1.0), ("2", 1.5), ("+Inf", 2.0)]]),
    ("negative-counts", 0.5, [[("1", -2.0), ("2", -1.0), ("+Inf", 4.0)]]),
    ("bad-le", 0.5, [[("1", 2.0), ("x", 5.0), ("+Inf", 3.0)]]),
    ("all-negative-counts", 1.0, [[("0.1", -0.002), ("0.5", -0.001), ("2.5", -0.0007),
                                   ("+Inf", -0.0005)]]),
    ("close-negative-counts", 0.5, [[("1", -2.0), ("2", -2.0 * (1 + 1e-13)), ("+Inf", -1.0)]]),
    ("close-to-running-max", 1.0, [[("1", 10.0), ("2", 5.0), ("+Inf", 10.000000000001)]]),
]


def _vector(hists: list[list[tuple[str, float]]], steps: int, hole: bool) -> Vector:
    labels: list[Labels] = []
    vals: list[float] = []
    for h, buckets in enumerate(hists):
        for le, count in buckets:
            labels.append(Labels({"job": f"j{h}", "le": le}))
            vals.append(count)
    t = steps + (1 if hole else 0)
    values = np.repeat(np.array(vals)[:, None], t, axis=1)
    present = np.ones(values.shape, bool)
    if hole:
        present[0, -1] = False
    return Vector(labels, values, present)


def _quantile(q: float, v: Vector) -> Vector:
    query = "histogram_quantile(0.5, x)"
    node = parse_expr(query)
    t = v.values.shape[1]
    st = np.arange(t, dtype=np.int64) * 60_000 + 60_000
    ctx = EvalContext(steps_ms=st, start_ms=int(st[0]), end_ms=int(st[-1]), step_ms=60_000,
                      query=query)
    out = FUNCTION_IMPLS["histogram_quantile"](
        FunctionCall(node, [Scalar(np.full(t, q)), v], ctx))
    assert isinstance(out, Vector)
    return out


@pytest.mark.parametrize(("q", "hists"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fast_paths_agree_with_array_path(q: float, hists: list[list[tuple[str, float]]],
                                          ) -> None:
    one = _quantile(q, _vector(hists, 1, hole=False))
    many = _quantile(q, _vector(hists, histcells.MAX_SMALL_CELLS + 1, hole=False))
    general = _quantile(q, _vector(hists, histcells.MAX_SMALL_CELLS + 1, hole=True))
    assert one.labels == many.labels == general.labels
    for other in (many, general):
        for col in range(histcells.MAX_SMALL_CELLS + 1):
            np.testing.assert_array_equal(one.values[:, 0], other.values[:, col])
            np.testing.assert_array_equal(one.present[:, 0], other.present[:, col])


def test_known_answer() -> None:
    # rank 9 of 10 falls in (0.5, 1] holding 5 of the 9 below it: 0.5 + 0.5 * (5 / 5).
    out = _quantile(0.9, _vector(CASES[0][2], 1, hole=False))
    assert out.values.tolist() == [[1.0]]


@pytest.mark.parametrize(("case", "want"), [
    # Prometheus's precision fix is almost.Equal (relative to |a| + |b|): negative counts
    # are not "close" just because their difference over the count is negative, so these
    # increasing negative counts put rank q * obs past every bucket: the second-last bound.
    pytest.param("all-negative-counts", 2.5, id="negative-counts-not-fixed"),
    # A count within 1e-12 of the largest kept so far (not of its raw neighbour, which went
    # down) takes that count: obs is 10 and rank 10 falls in the first bucket.
    pytest.param("close-to-running-max", 1.0, id="fix-against-running-max"),
])
def test_bucket_precision_fix_answers(case: str, want: float) -> None:
    q, hists = next((c[1], c[2]) for c in CASES if c[0] == case)
    for steps in (1, histcells.MAX_SMALL_CELLS + 1):
        out = _quantile(q, _vector(hists, steps, hole=False))
        assert out.values[0].tolist() == [want] * steps


@pytest.mark.parametrize(("a", "b", "close"), [
    pytest.param(1.0, 1.0 + 1e-13, True, id="close"),
    pytest.param(1.0, 1.0 + 1e-11, False, id="apart"),
    pytest.param(-2.0, -2.0 * (1 + 1e-13), True, id="close-negative"),
    pytest.param(-2.0, -1.0, False, id="negative-apart"),
    pytest.param(0.0, 1e-300, False, id="zero-vs-tiny"),
    pytest.param(0.0, 1e-321, True, id="zero-vs-subnormal"),  # < 1e-12 of the smallest normal
    pytest.param(0.0, 0.0, True, id="zeros"),
    pytest.param(NAN, NAN, True, id="nans"),
    pytest.param(NAN, 1.0, False, id="nan-number"),
    pytest.param(INF, INF, True, id="infs"),
    pytest.param(INF, 1e308, False, id="inf-finite"),
])
def test_almost_equal(a: float, b: float, close: bool) -> None:
    assert histcells.almost_equal(np.array([a]), np.array([b])).tolist() == [close]
    assert histcells.almost_equal(np.array([b]), np.array([a])).tolist() == [close]


def test_layout_is_remembered_per_list() -> None:
    v = _vector(CASES[0][2], 1, hole=False)
    calls: list[int] = []

    def build(labels: list[Labels]) -> histcells.Layout:
        calls.append(len(labels))
        return histcells.with_grid(np.zeros(len(labels), np.int64), np.arange(len(labels),
                                   dtype=np.float64), [Labels()], [])

    histcells.clear()
    first = histcells.layout(v.labels, build)
    assert histcells.layout(list(v.labels), build) is first  # an equal list: same layout
    assert calls == [4]
    assert first.grid is not None and first.grid.tolist() == [[0, 1, 2, 3]]
    histcells.layout(v.labels[::-1], build)  # another list: built again
    assert calls == [4, 4]
