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
