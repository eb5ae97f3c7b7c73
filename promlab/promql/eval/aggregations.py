"""Aggregation operators of the numpy evaluator.

Every aggregation receives the input vector ``(S, T)``, a group id per series and the reduced
group label sets, and reduces all steps at once. Order-dependent numerics (Kahan sums, the
overflow-safe mean, Welford variance) loop over the *rank of a series inside its group*
(vectorised over groups and steps). The selections (``topk``, ``bottomk``, ``limitk``,
``limit_ratio``, ``quantile``) and ``count_values`` live in
:mod:`promlab.promql.eval.aggregations_select` and share the grouping helpers defined here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from promlab.errors import QueryError
from promlab.promql.eval.calls import AggregationCall, AggregationTable
from promlab.promql.eval.functions._common import (
    format_float_f,
    kahan_fold,
    kahan_inc,
    prometheus_labels_hash,
)
from promlab.promql.values import F64, I64, B, Scalar, Vector

__all__ = [
    "Groups",
    "aggregation",
    "empty_result",
    "format_float_f",
    "group_count",
    "prometheus_labels_hash",
    "scalar_param",
    "vector_result",
]

# This module's implementations; promlab.promql.eval.registry merges them.
aggregation = AggregationTable()


# --- helpers ---------------------------------------------------------------------------------------

class Groups:
    """Series sorted by group: ``order`` (stable), ``starts``/``sizes`` per group."""

    def __init__(self, gid: I64, n_groups: int) -> None:
        self.gid = gid
        self.n = n_groups
        self.order = np.argsort(gid, kind="stable")
        self.sizes = np.bincount(gid, minlength=n_groups).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.max_size = int(self.sizes.max()) if self.sizes.size else 0

    def ranks(self, subset: I64 | None = None) -> Iterator[tuple[int, I64, I64]]:
        """Yield ``(k, groups, rows)``: the k-th member row of every group (of ``subset``)
        that has one."""
        sizes = self.sizes if subset is None else self.sizes[subset]
        ids = np.arange(self.n) if subset is None else subset
        top = int(sizes.max()) if sizes.size else 0
        for k in range(top):
            g = ids[sizes > k]
            yield k, g, self.order[self.starts[g] + k]

    def members(self, g: int) -> I64:
        """The rows of group ``g`` in input order."""
        out: I64 = self.order[self.starts[g]:self.starts[g] + self.sizes[g]]
        return out

    def reduce(self, ufunc: np.ufunc, data: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """``ufunc`` over the member rows of each group (groups must be non-empty)."""
        out: npt.NDArray[Any] = ufunc.reduceat(data[self.order], self.starts, axis=0)
        return out


def vector_result(a: AggregationCall, values: F64, present: B, drop: B | None = None) -> Vector:
    """One series per group with a sample at some step; absent cells zeroed, ``drop`` per group
    (by default from the members' drop-name marks)."""
    values = np.where(present, values, 0.0)
    if drop is None:
        drop = _group_drop_name(a)
    keep = present.any(axis=1) if present.size else np.zeros(0, bool)
    idx = np.flatnonzero(keep)
    return Vector([a.groups[i] for i in idx], values[idx], present[idx], drop[idx])


def _group_drop_name(a: AggregationCall) -> B:
    # A group drops its (kept, e.g. ``by (__name__)``) name if a member series that would drop
    # it has a sample at the group's last step: Prometheus decides per step and the last step
    # where the group has samples sets the output series' mark.
    out = np.zeros(len(a.groups), bool)
    v = a.vector
    dn = v.drop_name_mask()
    if not dn.any() or not v.present.size:
        return out
    t = v.present.shape[1]
    if t == 1:  # an instant query: the one step is every group's last
        hit = v.present[:, 0] & dn
    else:
        seen = Groups(a.group_ids, len(a.groups)).reduce(np.logical_or, v.present)
        last = t - 1 - np.argmax(seen[:, ::-1], axis=1)
        hit = v.present[np.arange(len(v)), last[a.group_ids]] & dn
    out[a.group_ids[hit]] = True
    return out


def group_count(a: AggregationCall, gr: Groups) -> I64:
    """Members with a sample, per group and step."""
    return gr.reduce(np.add, a.vector.present.astype(np.int64))


def scalar_param(a: AggregationCall) -> F64:
    """The aggregation's scalar parameter as one value per step."""
    p = a.param
    if isinstance(p, Scalar):
        return np.asarray(p.values, dtype=np.float64)
    if isinstance(p, int | float):
        return np.full(a.ctx.num_steps, float(p))
    raise QueryError(f"expected scalar parameter for {a.node.op}")


def empty_result(a: AggregationCall) -> Vector:
    """The empty vector over the query's steps."""
    return Vector.empty(a.ctx.num_steps)


# Cells _exact_ints looks at first.
_HEAD_CELLS = 4096

# Groups larger than this are summed in interleaved Kahan "lanes" (vectorised across lanes)
# instead of strictly series by series: still compensated, but O(sqrt(n)) Python iterations.
_BIG_GROUP = 512


# Groups padded to the largest one are summed at once while the padded frame holds at most
# _PAD_FACTOR times the input's cells (or _PAD_MIN_CELLS).
_PAD_FACTOR = 4
_PAD_MIN_CELLS = 1 << 16


def _kahan_sum(filled: F64, gr: Groups) -> tuple[F64, F64]:
    """Kahan (Neumaier) sum and compensation per group and step of ``filled`` (absent = 0).

    Members are summed in input order exactly as Prometheus does, all groups at once
    (:func:`.kahan_fold` over the members' ranks) unless padding every group to the largest
    one would take too much memory; then groups up to ``_BIG_GROUP`` members are summed rank
    by rank, and bigger ones in ``L`` interleaved lanes whose sums are combined with Kahan.
    """
    t = filled.shape[1]
    if gr.max_size * gr.n * t <= max(_PAD_FACTOR * filled.size, _PAD_MIN_CELLS):
        # Every group at once: members by rank along a padded leading axis (0.0 pads).
        block = np.zeros((gr.max_size, gr.n, t))
        g_sorted = gr.gid[gr.order]
        block[np.arange(gr.order.shape[0]) - gr.starts[g_sorted], g_sorted] = filled[gr.order]
        return kahan_fold(block)
    s = np.zeros((gr.n, t))
    c = np.zeros((gr.n, t))
    small = np.flatnonzero(gr.sizes <= _BIG_GROUP)
    with np.errstate(all="ignore"):
        if small.size:
            for _k, g, rows in gr.ranks(small):
                s[g], c[g] = kahan_inc(filled[rows], s[g], c[g])
        for big in np.flatnonzero(gr.sizes > _BIG_GROUP).tolist():
            members = gr.members(big)
            lanes = int(np.ceil(np.sqrt(members.size)))
            n_iter = -(-members.size // lanes)
            flat_block = np.zeros((n_iter * lanes, t))
            flat_block[:members.size] = filled[members]
            block = flat_block.reshape(n_iter, lanes, t)
            ls, lc = np.zeros((lanes, t)), np.zeros((lanes, t))
            for i in range(n_iter):
                ls, lc = kahan_inc(block[i], ls, lc)
            tot, comp = np.zeros(t), np.zeros(t)
            for j in range(lanes):
                tot, comp = kahan_inc(ls[j], tot, comp)
                comp = comp + np.where(np.isinf(ls[j]), 0.0, lc[j])
            s[big], c[big] = tot, np.where(np.isinf(tot), 0.0, comp)
    return s, c


def _exact_ints(values: F64, present: B, max_terms: int) -> bool:
    # A non-integer (or non-finite) value among the first cells settles it without a pass
    # over the whole frame (rates, averages: almost always).
    head = values.ravel()[:_HEAD_CELLS][present.ravel()[:_HEAD_CELLS]]
    if head.size and not bool((head == np.trunc(head)).all()):
        return False
    v = values[present]
    if v.size == 0:
        return True
    if not np.isfinite(v).all():
        return False
    return float(np.abs(v).max()) * max(max_terms, 1) < 2.0**52 and bool((v == np.trunc(v)).all())


# --- sum, avg, count, group, min, max -------------------------------------------------------------

@aggregation("sum")
def agg_sum(a: AggregationCall) -> Vector:
    """``sum``: Kahan (Neumaier) summation per group and step."""
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    gr = Groups(a.group_ids, len(a.groups))
    present = group_count(a, gr) > 0
    filled = np.where(v.present, v.values, 0.0)
    if _exact_ints(v.values, v.present, gr.max_size):
        return vector_result(a, gr.reduce(np.add, filled), present)
    sm, comp = _kahan_sum(filled, gr)
    with np.errstate(invalid="ignore"):
        return vector_result(a, sm + comp, present)


@aggregation("avg")
def agg_avg(a: AggregationCall) -> Vector:
    """``avg``: Kahan sum / count, switching to an incremental mean where the sum overflows."""
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    gr = Groups(a.group_ids, len(a.groups))
    cnt_total = group_count(a, gr)
    present = cnt_total > 0
    if _exact_ints(v.values, v.present, gr.max_size):
        filled = np.where(v.present, v.values, 0.0)
        with np.errstate(all="ignore"):
            return vector_result(a, gr.reduce(np.add, filled) / cnt_total, present)
    filled = np.where(v.present, v.values, 0.0)
    sm, comp = _kahan_sum(filled, gr)
    with np.errstate(all="ignore"):
        # sum/n + c/n as Prometheus divides, not (sum + c)/n: after a cancellation the two
        # differ (avg of -1e16, 3, 1e308, -1e308, 1e16: 0.75 there, 0.666... here before).
        res = sm / cnt_total + comp / cnt_total
    bad = np.flatnonzero((~np.isfinite(sm) & present).any(axis=1))
    if bad.size:
        res[bad] = _avg_incremental(v, gr, bad)
    return vector_result(a, res, present)


def _avg_incremental(v: Vector, gr: Groups, subset: I64) -> F64:
    """Prometheus's avg for ``subset`` groups, switching to an incremental mean on overflow."""
    shape = (gr.n, v.values.shape[1])
    s, c, mean = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    cnt = np.zeros(shape)
    incr = np.zeros(shape, bool)
    with np.errstate(all="ignore"):
        for _k, g, rows in gr.ranks(subset):
            p = v.present[rows]
            f = v.values[rows]
            sg, cg, mg, ig = s[g], c[g], mean[g], incr[g]
            n = cnt[g] + p
            first = p & (n == 1)
            ns, nc = kahan_inc(f, sg, cg)
            over = np.isinf(ns)
            later = p & (n > 1)
            direct = later & ~ig & ~over
            switch = later & ~ig & over
            sg = np.where(first, f, np.where(direct, ns, sg))
            cg = np.where(first, 0.0, np.where(direct, nc, cg))
            mg = np.where(switch, sg / (n - 1), mg)
            cg = np.where(switch, cg / (n - 1), cg)
            ig = ig | switch
            step = later & ig
            q = (n - 1) / n
            nm, nc2 = kahan_inc(f / n, q * mg, q * cg)
            mg, cg = np.where(step, nm, mg), np.where(step, nc2, cg)
            s[g], c[g], mean[g], incr[g], cnt[g] = sg, cg, mg, ig, n
        res = np.where(incr, mean + c, s / cnt + c / cnt)
    out: F64 = res[subset]
    return out


@aggregation("count")
def agg_count(a: AggregationCall) -> Vector:
    """``count``: number of series per group and step."""
    if len(a.vector) == 0:
        return empty_result(a)
    gr = Groups(a.group_ids, len(a.groups))
    cnt = group_count(a, gr)
    return vector_result(a, cnt.astype(np.float64), cnt > 0)


@aggregation("group")
def agg_group(a: AggregationCall) -> Vector:
    """``group``: 1 for every group with a sample."""
    if len(a.vector) == 0:
        return empty_result(a)
    gr = Groups(a.group_ids, len(a.groups))
    cnt = group_count(a, gr)
    return vector_result(a, np.ones(cnt.shape), cnt > 0)


def _minmax(a: AggregationCall, ufunc: np.ufunc) -> Vector:
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    gr = Groups(a.group_ids, len(a.groups))
    cnt = group_count(a, gr)
    filled = np.where(v.present, v.values, np.nan)
    out = gr.reduce(ufunc, filled)
    zero = v.present & (v.values == 0)
    if (zero & np.signbit(v.values)).any():  # -0 is rare: one check when there is none
        # Of equal 0 and -0 Prometheus keeps the first in input order (it replaces its value
        # only by a strictly greater/smaller one); numpy's reduction keeps either.
        rows = np.where(zero, np.arange(len(v))[:, None], len(v))
        first = gr.reduce(np.minimum, rows)
        at = (out == 0) & (first < len(v))
        if at.any():
            steps = np.nonzero(at)[1]
            out[at] = v.values[first[at], steps]
    return vector_result(a, out, cnt > 0)


@aggregation("max")
def agg_max(a: AggregationCall) -> Vector:
    """``max``: NaN only if every value is NaN."""
    return _minmax(a, np.fmax)


@aggregation("min")
def agg_min(a: AggregationCall) -> Vector:
    """``min``: NaN only if every value is NaN."""
    return _minmax(a, np.fmin)


def _variance(a: AggregationCall, sqrt: bool) -> Vector:
    v = a.vector
    if len(v) == 0:
        return empty_result(a)
    gr = Groups(a.group_ids, len(a.groups))
    shape = (gr.n, v.values.shape[1])
    cnt, mean, acc = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    small = np.flatnonzero(gr.sizes <= _BIG_GROUP)
    big = np.flatnonzero(gr.sizes > _BIG_GROUP)
    with np.errstate(all="ignore"):
        if big.size:
            # Two-pass (compensated) variance for very large groups; NaN/Inf give NaN.
            filled = np.where(v.present, v.values, 0.0)
            n_all = group_count(a, gr).astype(np.float64)
            sm, comp = _kahan_sum(filled, gr)
            mu = (sm + comp) / n_all
            dev = np.where(v.present, (v.values - mu[a.group_ids]) ** 2, 0.0)
            sq, sqc = _kahan_sum(dev, gr)
            nonfinite = gr.reduce(np.add, (v.present & ~np.isfinite(v.values)).astype(np.int64))
            acc[big] = np.where(nonfinite[big] > 0, np.nan, sq[big] + sqc[big])
            cnt[big] = n_all[big]
        for _k, g, rows in gr.ranks(small):
            p = v.present[rows]
            f = v.values[rows]
            n = cnt[g] + p
            mg, ag = mean[g], acc[g]
            first = p & (n == 1)
            later = p & (n > 1)
            delta = f - mg
            new_mean = mg + delta / n
            new_acc = ag + delta * (f - new_mean)
            mean[g] = np.where(first, f, np.where(later, new_mean, mg))
            acc[g] = np.where(first, np.where(np.isfinite(f), 0.0, np.nan),
                              np.where(later, new_acc, ag))
            cnt[g] = n
        var = acc / cnt
        res = np.sqrt(var) if sqrt else var
    return vector_result(a, res, cnt > 0)


@aggregation("stddev")
def agg_stddev(a: AggregationCall) -> Vector:
    """``stddev``: population standard deviation (Welford)."""
    return _variance(a, sqrt=True)


@aggregation("stdvar")
def agg_stdvar(a: AggregationCall) -> Vector:
    """``stdvar``: population variance (Welford)."""
    return _variance(a, sqrt=False)
