"""``sum`` and ``avg`` over vectors holding native histograms.

The float cells go through the ordinary (vectorised) aggregation; the histogram cells are
summed per (group, step) with :class:`~promlab.promql.eval.histops.KahanSum`, one Python
iteration per histogram cell. A group with floats and histograms at the same step yields no
sample there (Prometheus's "mix of histograms and floats" warning); one with exponential and
custom-bucket histograms neither (its "mix of ... schemas" warning).
"""

from __future__ import annotations

import numpy as np

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.eval.calls import AggregationCall, AggregationImpl
from promlab.promql.eval.functions._common import info, warn
from promlab.promql.eval.functions.native import histogram_cells, without_histograms
from promlab.promql.values import Vector

__all__ = ["histogram_aware_sum", "keeping_histograms"]


def histogram_aware_sum(op: str, impl: AggregationImpl) -> AggregationImpl:
    """``impl`` (``sum`` or ``avg``) extended to histogram cells."""
    def call(a: AggregationCall) -> Vector:
        v = a.vector
        if v.histograms is None:
            return impl(a)
        rows, steps, hs = histogram_cells(v)
        if not hs:
            return impl(AggregationCall(a.node, without_histograms(v), a.param, a.group_ids,
                                        a.groups, a.ctx))
        floats = impl(AggregationCall(a.node, without_histograms(v), a.param, a.group_ids,
                                      a.groups, a.ctx))
        return _combine(a, op, floats, rows, steps, hs)

    call.__doc__ = impl.__doc__
    return call


def _combine(a: AggregationCall, op: str, floats: Vector, rows: np.ndarray, steps: np.ndarray,
             hs: list[FloatHistogram]) -> Vector:
    v, ctx = a.vector, a.ctx
    n_groups, t = len(a.groups), v.values.shape[1]
    pos_of = {ls: g for g, ls in enumerate(a.groups)}
    values = np.zeros((n_groups, t))
    present = np.zeros((n_groups, t), bool)
    drop = np.zeros(n_groups, bool)
    fidx = np.asarray([pos_of[ls] for ls in floats.labels], np.int64)
    if fidx.size:
        values[fidx] = floats.values
        present[fidx] = floats.present
        drop[fidx] = floats.drop_name_mask()
    float_present = present.copy()
    out = np.full((n_groups, t), None, object)
    gids = a.group_ids[rows]
    order = np.argsort(gids * t + steps, kind="stable")
    expr = a.node.expr
    acc: dict[tuple[int, int], histops.KahanSum | None] = {}
    for k in order.tolist():
        key = (int(gids[k]), int(steps[k]))
        h = hs[k]
        if key not in acc:
            acc[key] = histops.KahanSum(h, mean=op == "avg")
            continue
        s = acc[key]
        if s is None:
            continue
        try:
            s.add(h)
        except histops.IncompatibleSchemas:
            warn(ctx, "vector contains a mix of histograms with exponential and custom buckets "
                 f'schemas for metric name "{v.labels[int(rows[k])].name}"', expr)
            acc[key] = None
    dn = v.drop_name_mask()
    for k in np.flatnonzero(dn[rows]).tolist():
        drop[int(gids[k])] = True
    for (g, j), s in acc.items():
        if float_present[g, j]:
            warn(ctx, "encountered a mix of histograms and floats for aggregation", expr)
            present[g, j] = False
            continue
        if s is None:
            continue
        if s.reconciled:
            info(ctx, "mismatched custom buckets were reconciled during aggregation", expr)
        if s.hint_conflict:
            warn(ctx, "conflicting counter resets during histogram aggregation", expr)
        out[g, j] = s.result(float(s.n) if op == "avg" else 1.0)
        present[g, j] = True
        values[g, j] = np.nan
    keep = np.flatnonzero(present.any(axis=1))
    labels: list[Labels] = [a.groups[i] for i in keep.tolist()]
    return Vector(labels, values[keep], present[keep], drop[keep], None, out[keep])


def keeping_histograms(impl: AggregationImpl) -> AggregationImpl:
    """``impl`` (a selection: ``limitk``, ``limit_ratio``) with the selected rows' histogram
    cells carried over from the input (input label sets are unique)."""
    def call(a: AggregationCall) -> Vector:
        out = impl(a)
        v = a.vector
        if v.histograms is None or not len(out):
            return out
        row = {ls: i for i, ls in enumerate(v.labels)}
        idx = np.asarray([row[ls] for ls in out.labels], np.int64)
        hists = v.histograms[idx].copy()
        hists[~out.present] = None
        return Vector(out.labels, out.values, out.present, out.drop_name, out.timestamps_ms, hists)

    call.__doc__ = impl.__doc__
    return call
