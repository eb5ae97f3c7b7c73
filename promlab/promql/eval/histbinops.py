"""Binary operators on native-histogram cells (Prometheus's ``vectorElemBinop``).

:mod:`promlab.promql.eval.binops` computes every pair of matched cells vectorised as floats;
:func:`pair_cells` then redoes, one Python iteration each, the pairs where a side holds a
histogram:

* histogram ``+``/``-`` histogram (schemas reconciled by :mod:`.histops`; exponential against
  custom buckets drops the pair with "incompatible bucket layout"), ``==``/``!=`` (semantic
  equality of the histograms), ``*`` with a float on either side, ``/`` by a float, the trim
  operators ``</``/``>/`` by a float (:mod:`.histtrim`);
* anything else with a histogram drops the pair with Prometheus's "incompatible sample types"
  info (a ``bool`` comparison too).

:func:`trim_vector_scalar` is ``v </ s`` and ``v >/ s``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.eval.functions._common import info, warn
from promlab.promql.eval.functions.native import histogram_cells
from promlab.promql.eval.histtrim import trim
from promlab.promql.parser.ast import BinaryExpr
from promlab.promql.values import F64, B, EvalContext, Vector

__all__ = ["TRIM_OPS", "float_trim_info", "pair_cells", "trim_vector_scalar"]

TRIM_OPS = frozenset({"</", ">/"})
Obj = npt.NDArray[np.object_]


def _incompatible(ctx: EvalContext, node: BinaryExpr, lt: str, rt: str) -> None:
    info(ctx, f'incompatible sample types encountered for binary operator "{node.op}": '
         f"{lt} {node.op} {rt}", node)


def float_trim_info(node: BinaryExpr, ctx: EvalContext) -> None:
    """The info for a trim operator between two floats (which yields nothing)."""
    _incompatible(ctx, node, "float", "float")


def trim_vector_scalar(node: BinaryExpr, ctx: EvalContext, vec: Vector, scalar: F64, *,
                       swap: bool) -> Vector:
    """``vec </ scalar`` or ``vec >/ scalar`` (``swap``: the scalar is on the left, which
    trims nothing)."""
    shape = vec.values.shape
    rows, steps, hs = histogram_cells(vec)
    if bool((vec.present.sum() - len(hs)) > 0):
        _incompatible(ctx, node, "float", "float")
    out = np.full(shape, None, object)
    present = np.zeros(shape, bool)
    if swap:
        if hs:
            _incompatible(ctx, node, "float", "histogram")
    else:
        upper = node.op == "</"
        for r, c, h in zip(rows.tolist(), steps.tolist(), hs, strict=True):
            out[r, c] = trim(h, float(scalar[c]), upper)
            present[r, c] = True
    keep = np.flatnonzero(present.any(axis=1))
    return Vector([vec.labels[i] for i in keep.tolist()], np.full((keep.size, shape[1]), np.nan),
                  present[keep], vec.drop_name_mask()[keep], None, out[keep])


def _hist_hist(op: str, a: FloatHistogram, b: FloatHistogram, ctx: EvalContext,
               node: BinaryExpr) -> tuple[FloatHistogram | None, bool | None]:
    if op in ("==", "!="):
        same = a.compact().equals(b.compact())
        return a, same if op == "==" else not same
    if op in ("+", "-"):
        note = histops.Combine()
        try:
            if op == "+":
                res = histops.add(a, b, note)
            else:
                res = histops.sub(a, b, note)
        except histops.IncompatibleSchemas:
            warn(ctx, f"incompatible bucket layout encountered for binary operator {op}", node)
            return None, None
        what = "addition" if op == "+" else "subtraction"
        if histops.adjust_hint(a.counter_reset_hint, b.counter_reset_hint)[1]:
            warn(ctx, f"conflicting counter resets during histogram {what}", node)
        if note.reconciled:
            info(ctx, f"mismatched custom buckets were reconciled during {what}", node)
        if op == "-":
            res = res.with_hint(CounterResetHint.GAUGE)
        return res.compact(), True
    _incompatible(ctx, node, "histogram", "histogram")
    return None, None


def _one(op: str, lf: float, rf: float, lh: FloatHistogram | None, rh: FloatHistogram | None,
         ctx: EvalContext, node: BinaryExpr) -> tuple[FloatHistogram | None, bool | None]:
    if lh is not None and rh is not None:
        return _hist_hist(op, lh, rh, ctx, node)
    if rh is not None:
        if op == "*":
            return histops.mul(rh, lf).compact(), True
        _incompatible(ctx, node, "float", "histogram")
        return None, None
    assert lh is not None
    if op == "*":
        return histops.mul(lh, rf).compact(), True
    if op == "/":
        return histops.div(lh, rf).compact(), True
    if op in TRIM_OPS:
        return trim(lh, rf, op == "</"), True
    _incompatible(ctx, node, "histogram", "float")
    return None, None


def pair_cells(node: BinaryExpr, ctx: EvalContext, lv: F64, rv: F64, lh: Obj, rh: Obj,
               pair_present: B, values: F64, keep: B, *, return_bool: bool,
               ) -> tuple[F64, B, Obj]:
    """``values``/``keep`` (the float results of every pair) corrected where a side of a
    present pair is a histogram; returns them with the pairs' histogram results."""
    op = node.op
    hists = np.full(values.shape, None, object)
    is_h = np.frompyfunc(lambda x: x is not None, 1, 1)
    mask = (is_h(lh).astype(bool) | is_h(rh).astype(bool)) & pair_present
    values = values.copy()
    keep = keep.copy()
    for p, j in zip(*np.nonzero(mask), strict=True):
        res, ok = _one(op, float(lv[p, j]), float(rv[p, j]), lh[p, j], rh[p, j], ctx, node)
        if ok is None:
            keep[p, j] = False
            continue
        if return_bool:
            values[p, j] = 1.0 if ok else 0.0
            keep[p, j] = True
            continue
        keep[p, j] = ok
        values[p, j] = np.nan
        hists[p, j] = res if ok else None
    return values, keep, hists
