"""``sum`` and ``avg`` over vectors holding native histograms.

The float cells go through the ordinary (vectorised) aggregation; the histogram cells are
summed per (group, step) with :class:`~promlab.promql.eval.histops.KahanSum`, one Python
iteration per histogram cell — or, for ``sum`` over exponential histograms of one schema and
zero threshold (the usual case), all at once in :func:`_dense_sums`: the cells as rows of a
dense bucket matrix, the same Neumaier-compensated additions in the same order, vectorised over
every (group, step) and bucket. A group with floats and histograms at the same step yields no
sample there (Prometheus's "mix of histograms and floats" warning); one with exponential and
custom-bucket histograms neither (its "mix of ... schemas" warning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    from_bucket_map,
    spans_to_indexes,
)
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


#: Most elements (cells × bucket range) of one dense matrix :func:`_dense_sums` builds; more
#: cells are summed in chunks of whole (group, step) keys.
DENSE_LIMIT = 1 << 22


@dataclass(frozen=True, slots=True)
class _Summed:
    """A (group, step)'s sum from :func:`_dense_sums`, answering as a finished KahanSum."""

    hist: FloatHistogram
    hint_conflict: bool
    n: int
    reconciled: bool = False

    def result(self, divisor: float = 1.0) -> FloatHistogram:
        return self.hist


def _hint_of(hints: set[int]) -> CounterResetHint:
    """The hint of a sum whose inputs had ``hints`` (folding Prometheus's ``adjustCounterReset``:
    a gauge makes a gauge, unanimity keeps the hint, anything else is unknown)."""
    if CounterResetHint.GAUGE in hints:
        return CounterResetHint.GAUGE
    return CounterResetHint(hints.pop()) if len(hints) == 1 else CounterResetHint.UNKNOWN


def _dense_sums(hs: list[FloatHistogram], keys: npt.NDArray[np.int64],
                order: npt.NDArray[np.int64]) -> dict[int, _Summed] | None:
    """``sum`` of the cells ``hs`` per key (cells taken in ``order``, keys ascending along it),
    or None unless every cell is an exponential histogram of one schema and zero threshold.

    Absent buckets are zeros here: adding a zero leaves a Neumaier sum and its compensation as
    they were (or both infinite/NaN where the sum already is), so the result is KahanSum's.
    """
    first = hs[0]
    schema, zt = first.schema, first.zero_threshold
    if any(h.is_custom or h.schema != schema or h.zero_threshold != zt for h in hs):
        return None
    # Columns: count, sum, zero count, then each side's bucket range (first column, lowest index,
    # width); cells' buckets scattered into them.
    where: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[float]]] = []
    layout: list[tuple[int, int, int]] = []
    width = 3
    for positive in (True, False):
        idx: list[int] = []
        val: list[float] = []
        lens = np.zeros(len(hs), np.int64)
        for c, h in enumerate(hs):
            before = len(idx)
            idx.extend(spans_to_indexes(h.positive_spans if positive else h.negative_spans))
            val.extend(h.positive_buckets if positive else h.negative_buckets)
            lens[c] = len(idx) - before
        ix = np.asarray(idx, np.int64)
        lo, w = (int(ix.min()), int(ix.max() - ix.min()) + 1) if ix.size else (0, 0)
        where.append((np.repeat(np.arange(len(hs)), lens), ix - lo + width, val))
        layout.append((width, lo, w))
        width += w
    k = keys[order]
    start = np.ones(k.shape[0], bool)
    start[1:] = k[1:] != k[:-1]
    group = np.cumsum(start) - 1
    rank = np.arange(k.shape[0]) - np.flatnonzero(start)[group]
    bounds = np.append(np.flatnonzero(start), k.shape[0])
    # Every bucket element by the position of its cell in ``order`` (chunks are slices of it).
    pos_of = np.empty(len(hs), np.int64)
    pos_of[order] = np.arange(len(hs))
    el_pos = np.concatenate([pos_of[cells] for cells, _, _ in where])
    el_col = np.concatenate([col for _, col, _ in where])
    el_val = np.concatenate([np.asarray(val, np.float64) for _, _, val in where])
    by_pos = np.argsort(el_pos, kind="stable")
    el_pos, el_col, el_val = el_pos[by_pos], el_col[by_pos], el_val[by_pos]
    scalars = np.array([(h.count, h.sum, h.zero_count) for h in hs], np.float64).reshape(-1, 3)
    hint_codes = np.asarray([int(h.counter_reset_hint) for h in hs], np.int64)[order]
    keys_out = k[start].tolist()
    result: dict[int, _Summed] = {}
    per_chunk = max(1, DENSE_LIMIT // width)  # cells per dense matrix (whole groups, >= 1)
    g0, n_keys = 0, len(keys_out)
    while g0 < n_keys:
        g1 = max(g0 + 1, int(np.searchsorted(bounds, bounds[g0] + per_chunk, "right")) - 1)
        p0, p1 = int(bounds[g0]), int(bounds[g1])
        dense = np.zeros((p1 - p0, width))
        dense[:, :3] = scalars[order[p0:p1]]
        e0, e1 = np.searchsorted(el_pos, [p0, p1])
        dense[el_pos[e0:e1] - p0, el_col[e0:e1]] = el_val[e0:e1]
        out = _neumaier(dense, group[p0:p1] - g0, rank[p0:p1], start[p0:p1])
        for gi in range(g0, g1):
            row = out[gi - g0]
            hints = set(hint_codes[bounds[gi]:bounds[gi + 1]].tolist())
            sides = []
            for c0, lo, w in layout:
                seg = row[c0:c0 + w]
                nz = np.flatnonzero(seg)  # zero sums are dropped (NaN stays), as KahanSum.result
                sides.append(dict(zip((nz + lo).tolist(), seg[nz].tolist(), strict=True)))
            hist = from_bucket_map(schema, sides[0], sides[1], count=float(row[0]),
                                   sum=float(row[1]), zero_count=float(row[2]), zero_threshold=zt,
                                   counter_reset_hint=_hint_of(hints))
            conflict = CounterResetHint.COUNTER_RESET in hints and \
                CounterResetHint.NOT_COUNTER_RESET in hints
            result[keys_out[gi]] = _Summed(hist, conflict, int(bounds[gi + 1] - bounds[gi]))
        g0 = g1
    return result


def _neumaier(dense: npt.NDArray[np.float64], group: npt.NDArray[np.int64],
              rank: npt.NDArray[np.int64], start: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Per group, the compensated sum of its rows (in row order; ``rank``: position in the
    group, ``start``: first rows), as Prometheus's ``kahansum.Inc`` one row at a time."""
    total = dense[start].copy()
    comp = np.zeros_like(total)
    with np.errstate(over="ignore", invalid="ignore"):
        for r in range(1, int(rank.max(initial=0)) + 1):
            at = np.flatnonzero(rank == r)
            g, inc = group[at], dense[at]
            s = total[g]
            t = s + inc
            step = np.where(np.abs(s) >= np.abs(inc), (s - t) + inc, (inc - t) + s)
            comp[g] = np.where(np.isinf(t), 0.0, comp[g] + step)
            total[g] = t
        return total + comp


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
    dense = _dense_sums(hs, gids * t + steps, order) if op == "sum" else None
    for k in order.tolist() if dense is None else ():
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
    done: dict[tuple[int, int], histops.KahanSum | _Summed | None] = dict(acc) if dense is None \
        else {(key // t, key % t): summed for key, summed in dense.items()}
    for (g, j), total in done.items():
        if float_present[g, j]:
            warn(ctx, "encountered a mix of histograms and floats for aggregation", expr)
            present[g, j] = False
            continue
        if total is None:
            continue
        if total.reconciled:
            info(ctx, "mismatched custom buckets were reconciled during aggregation", expr)
        if total.hint_conflict:
            warn(ctx, "conflicting counter resets during histogram aggregation", expr)
        out[g, j] = total.result(float(total.n) if op == "avg" else 1.0)
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
