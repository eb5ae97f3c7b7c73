"""Histogram functions on classic (``le``-labelled) bucket series.

``histogram_quantile`` and ``histogram_fraction`` group the float bucket series by their labels
without ``le`` and evaluate every (histogram, step) cell at once on dense ``(cells, buckets)``
arrays: buckets sorted by ``le``, duplicates coalesced, tiny precision errors and
non-monotonic counts fixed as Prometheus does (the latter with an info annotation).
Native histograms are not part of the value frames yet, so the native-only functions
(``histogram_count`` & co.) return an empty vector for float input, as Prometheus does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions import histcells
from promlab.promql.eval.functions._common import (
    format_go_g,
    info,
    scalar_arg,
    string_arg,
    vector_out,
    warn,
)
from promlab.promql.eval.functions.native import (
    concat_vectors,
    histogram_cells,
    native_fraction,
    native_quantile,
    quantile_infos,
    without_histograms,
)
from promlab.promql.eval.gomath import go_parse_float
from promlab.promql.eval.gosort import go_sort_by
from promlab.promql.labelmemo import filtered
from promlab.promql.values import F64, I64, B, Vector

__all__ = ["BucketCells", "bucket_cells", "function", "parse_le"]

# This module's implementations; promlab.promql.eval.registry merges them.
function = FunctionTable()

_MONOTONIC_INFO = ("input to histogram_quantile needed to be fixed for monotonicity (see "
                   "https://prometheus.io/docs/prometheus/latest/querying/functions/"
                   "#histogram_quantile)")


_LE = frozenset(("le",))


def parse_le(value: str | None) -> float | None:
    """Parse an ``le`` label value like Go's ``strconv.ParseFloat`` (None if malformed)."""
    return None if value is None else go_parse_float(value)


@dataclass
class BucketCells:
    """Dense per-(histogram, step) bucket lists.

    ``hist_labels`` label set of each histogram; ``cell_hist``/``cell_step`` the histogram and
    step of each cell; ``les``/``counts`` ``(C, Bmax)`` sorted, coalesced buckets; ``nb`` the
    bucket count of each cell.
    """

    hist_labels: list[Labels]
    hist_drop: B
    cell_hist: I64
    cell_step: I64
    les: F64
    counts: F64
    nb: I64


def _layout(labels: Sequence[Labels]) -> histcells.Layout:
    """Each series' histogram (its label set without ``le``, by identity) and bound."""
    hist_of = np.full(len(labels), -1, np.int64)
    le_of = np.zeros(len(labels))
    keys = filtered(labels, _LE, keep=False)  # memoised, interned: compared by identity
    index: dict[int, int] = {}
    hist_labels: list[Labels] = []
    bad: list[int] = []
    for i, (ls, key) in enumerate(zip(labels, keys, strict=True)):
        le = parse_le(ls.get("le"))
        if le is None:
            bad.append(i)
            continue
        h = index.get(id(key))
        if h is None:
            h = index[id(key)] = len(hist_labels)
            hist_labels.append(key)
        hist_of[i] = h
        le_of[i] = le
    return histcells.with_grid(hist_of, le_of, hist_labels, bad)


def bucket_cells(call: FunctionCall, v: Vector, arg_index: int) -> BucketCells:
    """Group the bucket series of ``v`` into histograms and build the dense cell arrays."""
    ctx = call.ctx
    lay = histcells.layout(v.labels, _layout)
    if lay.bad:
        any_present = np.asarray(v.present.any(axis=1))
        for i in lay.bad:
            if any_present[i]:
                ls = v.labels[i]
                raw = ls.get("le")
                warn(ctx, f'bucket label "le" is missing or has a malformed value of '
                     f'"{raw or ""}" for metric name "{ls.name}"', call.node.args[arg_index])
    hist_labels = list(lay.hist_labels)
    dense = histcells.dense_cells(lay, v.values, v.present)
    if dense is not None:
        cell_h, cell_s, les_g, counts_g, nb_g = dense
        return BucketCells(hist_labels, np.ones(len(hist_labels), bool), cell_h, cell_s,
                           les_g, counts_g, nb_g)
    hist_of, le_of = lay.hist_of, lay.le_of
    hist_drop_l = [True] * len(hist_labels)
    rows, steps = np.nonzero(v.present & (hist_of >= 0)[:, None])
    t = v.values.shape[1] if v.values.ndim == 2 else ctx.num_steps
    cell_key = hist_of[rows] * t + steps
    les = le_of[rows]
    order = np.lexsort((les, cell_key))
    if np.isnan(les).any():
        order = _go_sorted_nan_cells(order, cell_key, les)
    cell_key, les, cnt = cell_key[order], les[order], v.values[rows[order], steps[order]]
    if cell_key.size == 0:
        z = np.zeros(0, np.int64)
        return BucketCells(hist_labels, np.array(hist_drop_l, bool), z, z, np.zeros((0, 0)),
                           np.zeros((0, 0)), z)
    # Coalesce equal upper bounds within a cell; number cells and buckets.
    new_cell = np.ones(cell_key.size, bool)
    new_cell[1:] = cell_key[1:] != cell_key[:-1]
    new_bucket = new_cell.copy()
    new_bucket[1:] |= les[1:] != les[:-1]
    cell_id = np.cumsum(new_cell) - 1
    bucket_id = np.cumsum(new_bucket) - 1
    cell_first_bucket = bucket_id[new_cell]
    pos = bucket_id - cell_first_bucket[cell_id]
    n_cells = int(cell_id[-1]) + 1
    # Positions rise within a cell: its bucket count is its last position plus one.
    last = np.empty(cell_key.size, bool)
    last[:-1] = new_cell[1:]
    last[-1] = True
    nb = pos[last] + 1
    bmax = int(nb.max())
    flat = cell_id * bmax + pos
    if int(bucket_id[-1]) + 1 == cell_key.size:  # no equal bounds to coalesce
        counts = np.zeros((n_cells, bmax))
        counts.reshape(-1)[flat] = cnt
    else:  # coalesced counts summed in input order, as accumulating them one by one
        counts = np.asarray(np.bincount(flat, cnt, n_cells * bmax), np.float64
                            ).reshape(n_cells, bmax)
    les_d = np.full((n_cells, bmax), np.inf)
    les_d[cell_id, pos] = les
    ck = cell_key[new_cell]
    return BucketCells(hist_labels, np.array(hist_drop_l, bool), ck // t, ck % t, les_d,
                       counts, nb)


def _go_sorted_nan_cells(order: I64, cell_key: I64, les: F64) -> I64:
    """``order`` with the buckets of every cell holding a NaN bound arranged as Prometheus's
    sort leaves them: ``sort.Sort`` (2.42) and ``slices.SortFunc`` (3.x) by ``<``, under which
    a NaN is neither smaller nor larger than anything, from the buckets' input order (so an
    ``le="NaN"`` bucket can stand between others, and the last bucket can still be +Inf)."""
    order = order.copy()
    keys = cell_key[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], keys.size]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        seg = order[a:b]
        if not np.isnan(les[seg]).any():
            continue
        items = [(float(les[i]), int(i)) for i in np.sort(seg)]  # input order
        go_sort_by(items, lambda x, y: x[0] < y[0])
        order[a:b] = [i for _, i in items]
    return order


def _fix_buckets(cells: BucketCells) -> B:
    """Prometheus's ``ensureMonotonicAndIgnoreSmallDeltas``, in place: going up the buckets, a
    count almost equal (:func:`.histcells.almost_equal`) to the largest one kept so far takes
    its value (precision fix), a smaller one too (forced monotonicity); returns forced per
    cell."""
    c = cells.counts
    nb = cells.nb
    if c.shape[1] == 0:
        return np.zeros(0, bool)
    forced = _fix_buckets_at_once(c, nb)
    if forced is not None:
        return forced
    forced = np.zeros(c.shape[0], bool)
    prev = c[:, 0].copy()
    with np.errstate(invalid="ignore"):
        for j in range(1, c.shape[1]):
            curr = c[:, j]
            differs = (j < nb) & ~(curr == prev)
            fix = differs & histcells.almost_equal(prev, curr)
            lower = differs & ~fix & (curr < prev)
            forced |= lower
            keep = differs & ~fix & ~lower
            c[:, j] = np.where(fix | lower, prev, curr)
            prev = np.where(keep, c[:, j], prev)
    return forced


def _fix_buckets_at_once(c: F64, nb: I64) -> B | None:
    """:func:`_fix_buckets` without a loop over buckets when no count is NaN and no precision
    fix applies (the usual case: then every cell's envelope is its running maximum); None
    (nothing changed) otherwise.

    The precision fix compares each bucket with the largest count kept below it; while nothing
    was fixed that is the running maximum of the raw counts, so when no count is close to the
    running maximum before it, none is fixed at all.
    """
    if np.isnan(c).any():
        return None
    act = np.arange(c.shape[1])[None, :] < nb[:, None]
    run = np.maximum.accumulate(np.where(act, c, -np.inf), axis=1)
    # Without a fix, the largest count kept before bucket j is the running maximum.
    before, curr = run[:, :-1], c[:, 1:]
    if (act[:, 1:] & (curr != before) & histcells.almost_equal(before, curr)).any():
        return None
    lower = act & (c < run)
    np.copyto(c, run, where=lower)
    out: B = np.any(lower, axis=1)
    return out


def _cells_to_vector(cells: BucketCells, res: F64, num_steps: int) -> Vector:
    h = len(cells.hist_labels)
    vals = np.zeros((h, num_steps))
    present = np.zeros((h, num_steps), bool)
    vals[cells.cell_hist, cells.cell_step] = res
    present[cells.cell_hist, cells.cell_step] = True
    return vector_out(list(cells.hist_labels), vals, present, True)


def _quantile_warnings(call: FunctionCall, qs: F64, arg: int) -> None:
    if qs.size and qs.min() >= 0 and qs.max() <= 1:  # NaN fails both: checked below
        return
    for qv in unique(qs[~((qs >= 0) & (qs <= 1))]):
        warn(call.ctx, f"quantile value should be between 0 and 1, got {format_go_g(float(qv))}",
             call.node.args[arg])


def _bucket_quantile(cells: BucketCells, q: F64) -> tuple[F64, B]:
    """Prometheus's ``BucketQuantile`` for every cell (``q`` per cell); returns the
    quantiles and whether monotonicity had to be forced."""
    c, les, nb = cells.counts, cells.les, cells.nb
    small = histcells.small_quantiles(c, les, nb, q)
    if small is not None:
        return small
    rows = np.arange(c.shape[0])
    has_inf = np.isposinf(les[rows, nb - 1])
    forced = _fix_buckets(cells) & has_inf
    obs = c[rows, nb - 1]
    with np.errstate(all="ignore"):
        rank = q * obs
        b = _search_rank(c, rank, nb - 1)
        bprev = np.maximum(b - 1, 0)
        start = np.where(b > 0, les[rows, bprev], 0.0)
        end = les[rows, b]
        cnt_prev = np.where(b > 0, c[rows, bprev], 0.0)
        count = c[rows, b] - cnt_prev
        res = start + (end - start) * ((rank - cnt_prev) / count)
        res = np.where((b == 0) & (les[rows, 0] <= 0), les[rows, 0], res)
        res = np.where(b == nb - 1, les[rows, np.maximum(nb - 2, 0)], res)
        invalid = ~has_inf | (nb < 2) | (obs == 0)
        res = np.where(invalid, np.nan, res)
    res = np.where(np.isnan(q), np.nan, np.where(q < 0, -np.inf, np.where(q > 1, np.inf, res)))
    forced &= ~np.isnan(q) & (q >= 0) & (q <= 1)
    return res, forced


def _search_rank(c: F64, rank: F64, n: I64) -> I64:
    """Go's ``sort.Search(n, count >= rank)`` per cell, as Prometheus finds the rank's bucket:
    a binary search, so a NaN count (never ``>= rank``, and left in place by the monotonicity
    fix) steers it as it steers Go's, where a scan for the first count ``>= rank`` would pass
    over it."""
    rows = np.arange(c.shape[0])
    lo = np.zeros(c.shape[0], np.int64)
    hi = n.astype(np.int64, copy=True)
    with np.errstate(invalid="ignore"):
        while True:
            active = lo < hi
            if not active.any():
                return lo
            h = (lo + hi) // 2
            ok = c[rows, np.minimum(h, c.shape[1] - 1)] >= rank
            lo = np.where(active & ~ok, h + 1, lo)
            hi = np.where(active & ok, h, hi)


def _monotonic_info(call: FunctionCall, cells: BucketCells, forced: B, arg: int) -> None:
    for h in unique(cells.cell_hist[forced]):
        name = cells.hist_labels[h].name
        suffix = f' for metric name "{name}"' if name else ""
        info(call.ctx, _MONOTONIC_INFO + suffix, call.node.args[arg])


@function("histogram_quantile")
def func_histogram_quantile(call: FunctionCall) -> Vector:
    """``histogram_quantile(φ scalar, b instant-vector)`` over classic ``le`` buckets."""
    t = call.ctx.num_steps
    qs = scalar_arg(call.args, 0, t)
    _quantile_warnings(call, qs, 0)
    v = call.args[1]
    assert isinstance(v, Vector)
    classic, nat = split_mixed(call, v, 1)
    native = _native_quantiles(call, nat, qs, 1)
    cells = bucket_cells(call, classic, 1)
    if cells.cell_hist.size == 0:
        return native
    res, forced = _bucket_quantile(cells, qs[cells.cell_step])
    _monotonic_info(call, cells, forced, 1)
    return concat_vectors(_cells_to_vector(cells, res, t), native)


def split_mixed(call: FunctionCall, v: Vector, arg: int) -> tuple[Vector, Vector]:
    """``v``'s classic buckets and its native histograms, without the cells where a native
    histogram and classic buckets (same labels but ``le``) meet at a step: those are dropped
    with Prometheus's mixed-histograms warning."""
    classic = without_histograms(v)
    rows, steps, hs = histogram_cells(v)
    if not hs:
        return classic, v
    index: dict[Labels, list[int]] = {}
    for i, ls in enumerate(v.labels):
        if parse_le(ls.get("le")) is not None:
            index.setdefault(ls.without(("le",)), []).append(i)
    if not index:
        return classic, v
    native_present = v.present.copy()
    classic_present = classic.present.copy()
    for r, st in zip(rows.tolist(), steps.tolist(), strict=True):
        mates = [i for i in index.get(v.labels[r], ()) if classic.present[i, st]]
        if not mates:
            continue
        warn(call.ctx, "vector contains a mix of classic and native histograms for metric name "
             f'"{v.labels[r].name}"', call.node.args[arg])
        native_present[r, st] = False
        classic_present[mates, st] = False
    return (Vector(classic.labels, classic.values, classic_present, classic.drop_name, None, None),
            Vector(v.labels, v.values, native_present, v.drop_name, None, v.histograms))


def _native_quantiles(call: FunctionCall, v: Vector, qs: F64, arg: int) -> Vector:
    rows, steps, hs = histogram_cells(v)
    if not hs:
        return Vector.empty(call.ctx.num_steps)
    out: list[float] = []
    notes: set[tuple[str, str]] = set()
    for r, st, h in zip(rows.tolist(), steps.tolist(), hs, strict=True):
        val, note = native_quantile(float(qs[st]), h)
        out.append(val)
        if note:
            notes.add((note, v.labels[r].name))
    quantile_infos(call, notes, arg)
    res = np.zeros(v.values.shape)
    present = np.zeros(v.values.shape, bool)
    res[rows, steps] = out
    present[rows, steps] = True
    return vector_out(list(v.labels), res, present, True)


def format_openmetrics_float(x: float) -> str:
    """OpenMetrics float text (``1.0``, ``0.25``, ``NaN``, ``+Inf``) as Prometheus labels it."""
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    s = format_go_g(x)
    if "e" not in s and "." not in s:
        s += ".0"
    return s


@function("histogram_quantiles")
def func_histogram_quantiles(call: FunctionCall) -> Vector:
    """``histogram_quantiles(b instant-vector, label string, φ scalar, ...)``: one output
    series per φ, told apart by ``label``."""
    t = call.ctx.num_steps
    v = call.args[0]
    assert isinstance(v, Vector)
    label = string_arg(call.args, call.node.args, 1)
    qargs = [scalar_arg(call.args, i, t) for i in range(2, len(call.node.args))]
    for i, qs in enumerate(qargs):
        _quantile_warnings(call, qs, i + 2)
    classic, nat = split_mixed(call, v, 0)
    labels: list[Labels] = []
    vals: list[F64] = []
    pres: list[B] = []
    for qs in qargs:
        nv = _native_quantiles(call, nat, qs, 0)
        for qv in unique(qs):
            at = np.isnan(qs) if np.isnan(qv) else qs == qv
            qstr = format_openmetrics_float(float(qv))
            for r in range(len(nv)):
                got = nv.present[r] & at
                if got.any():
                    labels.append(nv.labels[r].set(label, qstr))
                    vals.append(np.where(got, nv.values[r], 0.0))
                    pres.append(got)
    cells = bucket_cells(call, classic, 0)
    if cells.cell_hist.size == 0:
        if not labels:
            return Vector.empty(t)
        return vector_out(labels, np.array(vals), np.array(pres), True)
    forced_any = np.zeros(cells.cell_hist.size, bool)
    n_hist = len(cells.hist_labels)
    for qs in qargs:
        cell_q = qs[cells.cell_step]
        res, forced = _bucket_quantile(cells, cell_q)
        forced_any |= forced
        for qv in unique(qs):
            sel = np.isnan(cell_q) if np.isnan(qv) else cell_q == qv
            val = np.zeros((n_hist, t))
            got = np.zeros((n_hist, t), bool)
            val[cells.cell_hist[sel], cells.cell_step[sel]] = res[sel]
            got[cells.cell_hist[sel], cells.cell_step[sel]] = True
            qstr = format_openmetrics_float(float(qv))
            for h in np.flatnonzero(got.any(axis=1)):
                labels.append(cells.hist_labels[h].set(label, qstr))
                vals.append(val[h])
                pres.append(got[h])
    _monotonic_info(call, cells, forced_any, 0)
    if not labels:
        return Vector.empty(t)
    return vector_out(labels, np.array(vals), np.array(pres), True)


@function("histogram_fraction")
def func_histogram_fraction(call: FunctionCall) -> Vector:
    """``histogram_fraction(lower scalar, upper scalar, b instant-vector)`` over classic buckets."""
    t = call.ctx.num_steps
    lower_t, upper_t = scalar_arg(call.args, 0, t), scalar_arg(call.args, 1, t)
    v = call.args[2]
    assert isinstance(v, Vector)
    classic, nat = split_mixed(call, v, 2)
    native = _native_fractions(call, nat, lower_t, upper_t)
    cells = bucket_cells(call, classic, 2)
    if cells.cell_hist.size == 0:
        return native
    c, les, nb = cells.counts, cells.les, cells.nb
    rows = np.arange(c.shape[0])
    has_inf = np.isposinf(les[rows, nb - 1])
    _fix_buckets(cells)
    lower, upper = lower_t[cells.cell_step], upper_t[cells.cell_step]
    total = c[rows, nb - 1]
    w = rows.size
    rank = np.zeros(w)
    lo_rank, up_rank = np.zeros(w), np.zeros(w)
    lo_set, up_set = np.zeros(w, bool), np.zeros(w, bool)
    done = np.zeros(w, bool)
    with np.errstate(all="ignore"):
        for j in range(c.shape[1]):
            act = (j < nb) & ~done
            ub = les[:, j]
            if j == 0:
                lb = np.where(ub > 0, 0.0, -np.inf)
            else:
                lb = les[:, j - 1]
            bc = c[:, j]
            hit = act & ~lo_set & (lb >= lower)
            lo_rank, lo_set = np.where(hit, rank, lo_rank), lo_set | hit
            hit = act & ~up_set & (lb >= upper)
            up_rank, up_set = np.where(hit, rank, up_rank), up_set | hit
            done |= act & lo_set & up_set
            act = act & ~done
            # Infinite-width buckets are not interpolated: a bound in the lowest (-Inf) bucket
            # counts the whole bucket as below it, one in the +Inf bucket counts none of it.
            flat = np.where(np.isneginf(lb), bc, rank)
            inf_width = np.isinf(ub - lb)
            inside = act & ~lo_set & (lb < lower) & (ub > lower)
            interp = np.where(inf_width, flat, rank + (bc - rank) * (lower - lb) / (ub - lb))
            lo_rank, lo_set = np.where(inside, interp, lo_rank), lo_set | inside
            inside = act & ~up_set & (lb < upper) & (ub > upper)
            interp = np.where(inf_width, flat, rank + (bc - rank) * (upper - lb) / (ub - lb))
            up_rank, up_set = np.where(inside, interp, up_rank), up_set | inside
            done |= act & lo_set & up_set
            rank = np.where(act & ~done, bc, rank)
        lo_rank = np.where(~lo_set | (lo_rank > total), total, lo_rank)
        up_rank = np.where(~up_set | (up_rank > total), total, up_rank)
        res = (up_rank - lo_rank) / total
        res = np.where(lower >= upper, 0.0, res)
        res = np.where(~has_inf | (total == 0) | np.isnan(lower) | np.isnan(upper), np.nan, res)
    return concat_vectors(_cells_to_vector(cells, res, t), native)


def _native_fractions(call: FunctionCall, v: Vector, lower: F64, upper: F64) -> Vector:
    rows, steps, hs = histogram_cells(v)
    if not hs:
        return Vector.empty(call.ctx.num_steps)
    out: list[float] = []
    notes: set[tuple[str, str]] = set()
    for r, st, h in zip(rows.tolist(), steps.tolist(), hs, strict=True):
        val, nan_note = native_fraction(float(lower[st]), float(upper[st]), h)
        out.append(val)
        if nan_note:
            notes.add(("fraction", v.labels[r].name))
    quantile_infos(call, notes, 2)
    res = np.zeros(v.values.shape)
    present = np.zeros(v.values.shape, bool)
    res[rows, steps] = out
    present[rows, steps] = True
    return vector_out(list(v.labels), res, present, True)

