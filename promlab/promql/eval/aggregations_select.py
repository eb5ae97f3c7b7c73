"""Selection aggregations of the numpy evaluator: ``topk``, ``bottomk``, ``limitk``,
``limit_ratio``, ``quantile`` and ``count_values``.

Split out of :mod:`promlab.promql.eval.aggregations`, whose grouping helpers they share; the
selections sort every step's column with one ``lexsort`` (``topk``/``bottomk`` with a constant k
over a range go through :mod:`promlab.promql.eval.kselect` first).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from promlab.errors import QueryError
from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.promql.eval import kselect
from promlab.promql.eval.aggregations import (
    Groups,
    empty_result,
    group_count,
    scalar_param,
    vector_result,
)
from promlab.promql.eval.calls import AggregationCall, AggregationTable
from promlab.promql.eval.functions._common import (
    format_float_f,
    format_go_g,
    prometheus_labels_hash,
    string_arg,
    warn,
)
from promlab.promql.eval.gosort import ReplayBudget, go_sort
from promlab.promql.eval.kcheck import check_k
from promlab.promql.parser.literals import go_quote
from promlab.promql.values import F64, I64, B, Vector, group_labels

__all__ = ["aggregation"]

# This module's implementations; promlab.promql.eval.registry merges them.
aggregation = AggregationTable()


# --- selections ----------------------------------------------------------------------------------

def _column_sort(a: AggregationCall, value_key: F64 | None, nan_first: bool,
                 ignore_nan: bool = False) -> tuple[I64, I64]:
    """Per step, sort rows by (group, absent last, NaN, value_key, input order).

    Returns ``order`` (S, T) and the rank of each sorted position inside its group.
    """
    v = a.vector
    s, t = v.values.shape
    gid = np.broadcast_to(a.group_ids[:, None], (s, t))
    idx = np.broadcast_to(np.arange(s)[:, None], (s, t))
    absent = ~v.present
    nan = np.isnan(v.values) & v.present & (not ignore_nan)
    nan_key = ~nan if nan_first else nan
    vk = np.zeros((s, t)) if value_key is None else np.where(np.isnan(value_key), 0.0, value_key)
    order = np.lexsort((idx, vk, nan_key, absent, gid), axis=0)
    sizes = np.bincount(a.group_ids, minlength=len(a.groups))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(s)[:, None] - starts[a.group_ids[order]]
    return order, rank


def _k_param(a: AggregationCall) -> I64:
    p = scalar_param(a)
    if not a.k_checked:
        check_k(p, a.ctx.steps_ms)
    # A k below 1 selects nothing; past int64 it is an error (checked).
    p = np.clip(np.nan_to_num(p, nan=0.0), -(2.0**63), 2.0**63 - 1024)
    return np.trunc(p).astype(np.int64)


def _select(a: AggregationCall, selected_sorted: B, order: I64, sort_output: bool) -> Vector:
    v = a.vector
    s, t = v.values.shape
    sel = np.zeros((s, t), bool)
    cols = np.broadcast_to(np.arange(t)[None, :], (s, t))
    sel[order, cols] = selected_sorted
    sel &= v.present
    rows = np.flatnonzero(sel.any(axis=1))
    if sort_output and t == 1:
        # Instant query: groups in order of first appearance, then the selection order.
        pos = np.empty(s, np.int64)
        pos[order[:, 0]] = np.arange(s)
        first_seen = np.full(len(a.groups), s, np.int64)
        np.minimum.at(first_seen, a.group_ids, np.arange(s))
        rows = rows[np.argsort(first_seen[a.group_ids[rows]] * (s + 1) + pos[rows],
                               kind="stable")]
    dn = v.drop_name_mask()
    return Vector([v.labels[r] for r in rows], v.values[rows], sel[rows], dn[rows])


def _topk(a: AggregationCall, top: bool) -> Vector:
    k = _k_param(a)
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    t = v.values.shape[1]
    if t > 1 and (k == k[0]).all():
        sel = kselect.select_k(v.values, v.present, a.group_ids, len(a.groups), int(k[0]), top)
        if sel is not None:
            sel &= v.present
            rows = np.flatnonzero(sel.any(axis=1))
            dn = v.drop_name_mask()
            return Vector([v.labels[r] for r in rows], v.values[rows], sel[rows], dn[rows])
    if t == 1:
        return _topk_instant(a, int(k[0]), top)
    key = -v.values if top else v.values
    order, rank = _column_sort(a, key, nan_first=False)
    return _select(a, rank < k[None, :], order, sort_output=True)


def _topk_instant(a: AggregationCall, k: int, top: bool) -> Vector:
    """``_topk`` of one step (an instant query): one 1-D sort by (group, absent last, NaN
    after numbers, value, input order); groups in order of first appearance, then each
    group's selection in order."""
    v = a.vector
    s = len(v)
    vals = v.values[:, 0]
    present = v.present[:, 0]
    nan = np.isnan(vals)
    cls = (~present).astype(np.int8) * 2 + (nan & present)
    vk = np.where(nan, 0.0, -vals if top else vals)
    gid = a.group_ids
    n_groups = len(a.groups)
    if n_groups == 1:
        order = np.lexsort((vk, cls))
        rank = np.arange(s)
    else:
        order = np.lexsort((vk, cls, gid))
        starts = np.zeros(n_groups, np.int64)
        np.cumsum(np.bincount(gid, minlength=n_groups)[:-1], out=starts[1:])
        rank = np.arange(s) - starts[gid[order]]
    chosen = order[(rank < k) & present[order]]
    if n_groups > 1 and chosen.shape[0]:
        first_seen = np.full(n_groups, s, np.int64)
        np.minimum.at(first_seen, gid, np.arange(s))
        chosen = chosen[np.argsort(first_seen[gid[chosen]], kind="stable")]
    dn = v.drop_name_mask()
    return Vector([v.labels[r] for r in chosen.tolist()], v.values[chosen],
                  np.ones((chosen.shape[0], 1), bool), dn[chosen])


@aggregation("topk")
def agg_topk(a: AggregationCall) -> Vector:
    """``topk(k, v)``: the k largest samples per group and step, keeping input labels."""
    return _topk(a, top=True)


@aggregation("bottomk")
def agg_bottomk(a: AggregationCall) -> Vector:
    """``bottomk(k, v)``: the k smallest samples per group and step."""
    return _topk(a, top=False)


@aggregation("limitk")
def agg_limitk(a: AggregationCall) -> Vector:
    """``limitk(k, v)``: the first k series (input order) per group and step."""
    k = _k_param(a)
    if len(a.vector) == 0:
        return empty_result(a)
    # NaN values are not special for limitk: only presence and input order matter.
    order, rank = _column_sort(a, None, nan_first=False, ignore_nan=True)
    return _select(a, rank < k[None, :], order, sort_output=False)


@aggregation("limit_ratio")
def agg_limit_ratio(a: AggregationCall) -> Vector:
    """``limit_ratio(r, v)``: a deterministic, hash-based sample of about ``r`` of the series."""
    r = scalar_param(a)
    if np.isnan(r).any():
        raise QueryError("Ratio value is NaN")
    for bad in unique(r[(r < -1) | (r > 1)]):
        cap = 1.0 if bad > 1 else -1.0
        warn(a.ctx, f"ratio value should be between -1 and 1, got {format_go_g(float(bad))}, "
             f"capping to {format_go_g(cap)}", a.node.param)
    r = np.clip(r, -1.0, 1.0)
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    offset = np.array([prometheus_labels_hash(ls) / float(2**64 - 1) for ls in v.labels])
    keep = ((r[None, :] >= 0) & (offset[:, None] < r[None, :])) | (
        (r[None, :] < 0) & (offset[:, None] >= 1.0 + r[None, :]))
    sel = keep & v.present
    rows = np.flatnonzero(sel.any(axis=1))
    dn = v.drop_name_mask()
    return Vector([v.labels[i] for i in rows], v.values[rows], sel[rows], dn[rows])


@aggregation("quantile")
def agg_quantile(a: AggregationCall) -> Vector:
    """``quantile(φ, v)``: φ-quantile per group and step with linear interpolation."""
    qs = scalar_param(a)
    for qv in unique(qs[~((qs >= 0) & (qs <= 1))]):
        warn(a.ctx, f"quantile value should be between 0 and 1, got {format_go_g(float(qv))}",
             a.node.param)
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    s, t = v.values.shape
    gr = Groups(a.group_ids, len(a.groups))
    cnt = group_count(a, gr)
    order, _rank = _column_sort(a, v.values, nan_first=True)
    cols = np.broadcast_to(np.arange(t)[None, :], (s, t))
    sorted_vals = v.values[order, cols]
    _zeros_as_go_arranges(a, sorted_vals, cnt, gr)
    n = cnt.astype(np.float64)
    q = np.broadcast_to(qs[None, :], n.shape)
    with np.errstate(invalid="ignore", over="ignore"):  # a huge φ: ±Inf below anyway
        rank = q * (n - 1)
        fin = np.isfinite(rank)
        fl = np.floor(np.where(fin, rank, 0.0))
        lower = np.maximum(0, fl).astype(np.int64)
        upper = np.minimum(cnt - 1, lower + 1)
        weight = np.where(fin, rank, 0.0) - fl
        base = gr.starts[:, None]
        tcols = np.broadcast_to(np.arange(t)[None, :], n.shape)
        lo_v = sorted_vals[np.clip(base + lower, 0, s - 1), tcols]
        up_v = sorted_vals[np.clip(base + upper, 0, s - 1), tcols]
        res = lo_v * (1 - weight) + up_v * weight
    res = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, res))
    res = np.where(np.isnan(q), np.nan, res)
    return vector_result(a, res, cnt > 0)


def _zeros_as_go_arranges(a: AggregationCall, sorted_vals: F64, cnt: I64, gr: Groups) -> None:
    """Groups of more than 12 samples holding both 0 and -0 arranged in ``sorted_vals`` as Go's
    pdqsort leaves them (up to 12 it is an insertion sort, which the stable sort above
    agrees with): which zero an interpolated quantile lands on shows in its sign. (-0 is
    rare: one check when there is none.)"""
    v = a.vector
    neg = np.signbit(v.values)
    neg &= v.values == 0
    neg &= v.present
    if not neg.any():
        return
    pos = v.present & (v.values == 0) & ~neg
    mixed = gr.reduce(np.logical_or, neg) & gr.reduce(np.logical_or, pos) & (cnt > 12)
    budget = ReplayBudget()
    for g, t in zip(*np.nonzero(mixed), strict=True):
        rows = np.flatnonzero((a.group_ids == g) & v.present[:, t])  # in input order
        if not budget.take(rows.size):
            return  # (past it, the stable order stands)
        values = v.values[rows, t].tolist()
        go_sort(values)
        sorted_vals[gr.starts[g]:gr.starts[g] + len(values), t] = values


# --- count_values --------------------------------------------------------------------------------

@aggregation("count_values")
def agg_count_values(a: AggregationCall) -> Vector:
    """``count_values("label", v)``: count series per distinct value, in a new label."""
    node = a.node
    label = string_arg([a.param] if a.param is not None else [],
                       (node.param,) if node.param is not None else (), 0)
    try:
        label.encode("utf-8")
        valid = label != "" and "\ufffd" not in label
    except UnicodeEncodeError:
        valid = False
    if not valid:
        raise QueryError(f"invalid label name {go_quote(label)}")
    v = a.vector
    t = a.ctx.num_steps
    if len(v) == 0 or not v.present.any():
        return Vector.empty(t)
    base = [ls.without((label,)) for ls in v.labels]
    # The value label always joins a ``by`` grouping; ``without`` may drop it.
    participates = not node.without or (label not in node.grouping and label != "__name__")
    gid, groups = group_labels(base, node.grouping, without=node.without)
    rows, cols = np.nonzero(v.present)
    keys: npt.NDArray[Any] = v.values[rows, cols]
    if v.histograms is not None:
        # Histogram samples count under their text form; floats under their number.
        hcells = v.histograms[rows, cols]
        keys = np.array([format_float_f(float(x)) if h is None else str(h)
                         for x, h in zip(keys.tolist(), hcells.tolist(), strict=True)], dtype=object)
    if keys.dtype == np.float64:
        # Grouped by their text, as Prometheus does: -0 apart from 0, every NaN one value.
        bits = np.where(np.isnan(keys), np.nan, keys).view(np.int64)
        ubits, inv = np.unique(bits, return_inverse=True)
        uniq = ubits.view(np.float64)
        # in numeric order (-0 before 0, NaN last), as np.unique orders floats
        order = np.lexsort((~np.signbit(uniq), uniq))
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        uniq, inv = uniq[order], rank[inv]
    else:
        uniq, inv = np.unique(keys, return_inverse=True)
    if participates:
        key = gid[rows] * len(uniq) + inv
    else:
        key = gid[rows]
    ukeys, kinv = np.unique(key, return_inverse=True)
    counts = np.zeros((len(ukeys), t))
    np.add.at(counts, (kinv, cols), 1.0)
    out_labels: list[Labels] = []
    for kk in ukeys.tolist():
        if participates:
            g, u = divmod(kk, len(uniq))
            text = uniq[u] if isinstance(uniq[u], str) else format_float_f(float(uniq[u]))
            out_labels.append(groups[g].set(label, text))
        else:
            out_labels.append(groups[kk])
    return Vector(out_labels, counts, counts > 0, np.zeros(len(out_labels), bool))
