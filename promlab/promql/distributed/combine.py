"""The client's half: merge the shards' frames and combine partial aggregation states.

Shards partition the series, and a shard-local node keeps each series' labels, so the whole
answer of a ``gather`` node is the shards' rows in label order (the order one process reads
them in). A ``partial`` node's states are combined with the engine's own aggregations where the
state is itself aggregatable (sum of sums, sum of counts, min of mins, topk of the shards'
topk) and with the exact formulas of Chan et al. for variance; groups then take the order of
their earliest input series, as in one process.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from promlab.model import Labels
from promlab.promql.eval.registry import AGGREGATIONS, AggregationCall
from promlab.promql.parser.ast import AggregateExpr
from promlab.promql.values import F64, EvalContext, Matrix, Value, Vector, group_labels

__all__ = ["combine_partials", "kahan_groups", "merge_frames", "sum_state"]

_SAMPLE_FIELDS = ("ts_ms", "values", "histograms")
_SHARED_FIELDS = ("window_start_ms", "window_end_ms", "range_ms")


def _label_order(labels: Sequence[Labels]) -> list[int]:
    return sorted(range(len(labels)), key=labels.__getitem__)


def _stack_rows(parts: Sequence[Any], name: str, sizes: Sequence[int]) -> Any:
    """Concatenate per-row field ``name`` of ``parts``; None where every part has None."""
    arrays = [getattr(p, name, None) for p in parts]
    if all(a is None for a in arrays):
        return None
    ref = next(a for a in arrays if a is not None)
    filled = []
    for a, n in zip(arrays, sizes, strict=True):
        if a is None:
            a = np.zeros((n, *ref.shape[1:]), ref.dtype)
            if ref.dtype == object:
                a[...] = None
        filled.append(a)
    return np.concatenate(filled)


def merge_vectors(parts: Sequence[Vector], num_steps: int) -> Vector:
    """The shards' vectors as one, rows in label order."""
    parts = [p for p in parts if len(p.labels)]
    if not parts:
        return Vector.empty(num_steps)
    if len(parts) == 1:
        return parts[0]
    labels = [ls for p in parts for ls in p.labels]
    order = np.asarray(_label_order(labels), np.int64)
    sizes = [len(p.labels) for p in parts]
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(Vector):
        if f.name == "labels":
            kw["labels"] = [labels[i] for i in order.tolist()]
            continue
        if f.name == "drop_name":
            stacked = np.concatenate([p.drop_name_mask() for p in parts])
        else:
            stacked = _stack_rows(parts, f.name, sizes)
        kw[f.name] = None if stacked is None else stacked[order]
    return Vector(**kw)


def merge_matrices(parts: Sequence[Matrix]) -> Matrix:
    """The shards' range vectors as one CSR matrix, series in label order."""
    nonempty = [p for p in parts if len(p.labels)]
    if len(nonempty) <= 1:
        return nonempty[0] if nonempty else parts[0]
    labels = [ls for p in nonempty for ls in p.labels]
    order = np.asarray(_label_order(labels), np.int64)
    lengths = np.concatenate([np.diff(p.offsets) for p in nonempty])
    starts = np.concatenate([p.offsets[:-1] + base for p, base in zip(
        nonempty, np.cumsum([0] + [int(p.offsets[-1]) for p in nonempty[:-1]]), strict=True)])
    new_len = lengths[order]
    offsets = np.zeros(order.shape[0] + 1, np.int64)
    np.cumsum(new_len, out=offsets[1:])
    take = np.repeat(starts[order] - offsets[:-1], new_len) + np.arange(int(offsets[-1]))
    kw: dict[str, Any] = {"labels": [labels[i] for i in order.tolist()], "offsets": offsets}
    first = nonempty[0]
    for f in dataclasses.fields(Matrix):
        if f.name in ("labels", "offsets"):
            continue
        if f.name == "bounds":
            kw[f.name] = None  # index bounds of one shard's arrays: recomputed when read
            continue
        if f.name in _SHARED_FIELDS or not _per_row(getattr(first, f.name)):
            # Window bounds and the matrix's scalars (range, lookback, extension) are the
            # same on every shard.
            kw[f.name] = getattr(first, f.name)
        elif f.name == "drop_name":
            kw[f.name] = np.concatenate([_matrix_drop(p) for p in nonempty])[order]
        else:
            stacked = _stack_rows(nonempty, f.name, [int(p.offsets[-1]) for p in nonempty])
            kw[f.name] = None if stacked is None else stacked[take]
    return Matrix(**kw)


def _per_row(value: Any) -> bool:
    """Whether a frame field holds per-series or per-sample arrays (None: maybe, on a shard)."""
    return value is None or isinstance(value, np.ndarray)


def _matrix_drop(m: Matrix) -> np.ndarray[Any, np.dtype[np.bool_]]:
    return m.drop_name if m.drop_name is not None else np.zeros(len(m.labels), bool)


def merge_frames(parts: Sequence[Value], num_steps: int) -> Value:
    """Merge a ``gather`` node's frames from all shards."""
    if all(isinstance(p, Vector) for p in parts):
        return merge_vectors([p for p in parts if isinstance(p, Vector)], num_steps)
    if all(isinstance(p, Matrix) for p in parts):
        return merge_matrices([p for p in parts if isinstance(p, Matrix)])
    raise TypeError(f"cannot merge frames of kinds {sorted({type(p).__name__ for p in parts})}")


# --- partial aggregations ------------------------------------------------------------------------

def _kahan_inc(inc: F64, s: F64, c: F64) -> tuple[F64, F64]:
    """Neumaier-compensated ``s + inc`` (Prometheus's ``kahansum.Inc``), element-wise."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = s + inc
        c = c + np.where(np.abs(s) >= np.abs(inc), (s - t) + inc, (inc - t) + s)
        c[np.isinf(t)] = 0.0
    return t, c


def kahan_groups(values: F64, gid: np.ndarray[Any, np.dtype[np.int64]], n_groups: int,
                 comp: F64 | None = None) -> tuple[F64, F64]:
    """Per group and step, the compensated sum ``(s, c)`` of ``values`` rows in row order.

    ``comp`` (same shape as ``values``) are compensations carried by the rows (partial sums):
    they are added to the group's compensation. One numpy step per rank inside the groups.
    """
    t = values.shape[1]
    s = np.zeros((n_groups, t))
    c = np.zeros((n_groups, t))
    order = np.argsort(gid, kind="stable")
    sizes = np.bincount(gid, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    for k in range(int(sizes.max()) if sizes.size else 0):
        g = np.flatnonzero(sizes > k)
        rows = order[starts[g] + k]
        s[g], c[g] = _kahan_inc(values[rows], s[g], c[g])
        if comp is not None:
            with np.errstate(invalid="ignore"):
                c[g] = np.where(np.isinf(s[g]), 0.0, c[g] + comp[rows])
    return s, c


def sum_state(vec: Vector, gid: np.ndarray[Any, np.dtype[np.int64]], group_rows: Vector,
              groups: Sequence[Labels]) -> tuple[Vector, Vector]:
    """A shard's partial sum: the compensated sum and its compensation per group, as two
    vectors with the rows (and name marks) of ``group_rows`` (the engine's ``group`` output)."""
    filled = np.where(vec.present, vec.values, 0.0)
    s, c = kahan_groups(filled, gid, len(groups))
    pos = {ls: i for i, ls in enumerate(groups)}
    rows = np.asarray([pos[ls] for ls in group_rows.labels], np.int64)
    p = group_rows.present
    return (Vector(group_rows.labels, np.where(p, s[rows], 0.0), p, group_rows.drop_name),
            Vector(group_rows.labels, np.where(p, c[rows], 0.0), p, group_rows.drop_name))


def _sum_parts(node: AggregateExpr, sums: Sequence[Vector], comps: Sequence[Vector],
               ctx: EvalContext) -> tuple[Vector, F64, F64]:
    """The shards' partial sums combined: the output rows (the engine's ``group`` of them),
    and per row and step the compensated sum and its compensation, apart."""
    t = ctx.num_steps
    merged = merge_vectors(sums, t)
    if not len(merged.labels):
        empty = np.zeros((0, t))
        return Vector.empty(t), empty, empty
    merged_c = merge_vectors(comps, t)
    out = _reaggregate("group", node, merged, None, ctx)
    gid, groups = _exact_groups(merged)
    s, c = kahan_groups(np.where(merged.present, merged.values, 0.0), gid, len(groups),
                        np.where(merged_c.present, merged_c.values, 0.0))
    pos = {ls: i for i, ls in enumerate(groups)}
    rows = np.asarray([pos[ls] for ls in out.labels], np.int64)
    return out, s[rows], c[rows]


def _sum_combine(node: AggregateExpr, sums: Sequence[Vector], comps: Sequence[Vector],
                 ctx: EvalContext) -> Vector:
    out, s, c = _sum_parts(node, sums, comps, ctx)
    with np.errstate(invalid="ignore"):
        total = s + c
    return Vector(out.labels, np.where(out.present, total, 0.0), out.present, out.drop_name)

def _exact_groups(vec: Vector) -> tuple[np.ndarray[Any, np.dtype[np.int64]], list[Labels]]:
    ids = np.empty(len(vec.labels), np.int64)
    seen: dict[Labels, int] = {}
    out: list[Labels] = []
    for i, ls in enumerate(vec.labels):
        g = seen.setdefault(ls, len(out))
        if g == len(out):
            out.append(ls)
        ids[i] = g
    return ids, out


def _reaggregate(op: str, node: AggregateExpr, vec: Vector, param: Value | None,
                 ctx: EvalContext) -> Vector:
    """The engine's ``op`` over partial rows that are already one row per group and shard."""
    if not len(vec.labels):
        return Vector.empty(ctx.num_steps)
    gid, groups = _exact_groups(vec)
    return AGGREGATIONS[op](AggregationCall(node, vec, param, gid, groups, ctx))


def _aligned(vec: Vector, labels: Sequence[Labels]) -> tuple[F64, np.ndarray[Any, Any]]:
    pos = {ls: i for i, ls in enumerate(vec.labels)}
    rows = np.asarray([pos[ls] for ls in labels], np.int64)
    return vec.values[rows], vec.present[rows]


def _avg(node: AggregateExpr, states: dict[str, list[Vector]], ctx: EvalContext) -> Vector:
    t = ctx.num_steps
    total, sm, comp = _sum_parts(node, states["sum"], states["sum_c"], ctx)
    counts = _reaggregate("sum", node, merge_vectors(states["count"], t), None, ctx)
    n, _ = _aligned(counts, total.labels)
    with np.errstate(all="ignore"):
        # sum/n + c/n, as the engine's avg (and Prometheus) divides, not (sum + c)/n.
        mean = sm / n + comp / n
    bad = total.present & ~np.isfinite(sm)
    if bad.any():
        # The sum overflowed: a weighted mean of the shards' means (as the engine's
        # incremental mean, it stays finite when the mean is).
        acc = np.zeros_like(mean)
        for part_avg, part_cnt in zip(states["avg"], states["count"], strict=True):
            if not len(part_avg.labels):
                continue
            pos = {ls: i for i, ls in enumerate(part_avg.labels)}
            for r, ls in enumerate(total.labels):
                i = pos.get(ls)
                if i is None:
                    continue
                cpos = part_cnt.labels.index(ls)
                w = np.where(part_avg.present[i], part_cnt.values[cpos] / np.where(
                    n[r] > 0, n[r], 1.0), 0.0)
                with np.errstate(all="ignore"):
                    acc[r] += np.where(part_avg.present[i], part_avg.values[i] * w, 0.0)
        mean = np.where(bad, acc, mean)
    return Vector(total.labels, np.where(total.present, mean, 0.0), total.present,
                  total.drop_name)


def _variance(node: AggregateExpr, states: dict[str, list[Vector]], ctx: EvalContext) -> Vector:
    t = ctx.num_steps
    counts = _reaggregate("sum", node, merge_vectors(states["count"], t), None, ctx)
    labels = counts.labels
    shape = (len(labels), t)
    n_tot = np.zeros(shape)
    mean = np.zeros(shape)
    m2 = np.zeros(shape)
    pos = {ls: i for i, ls in enumerate(labels)}
    with np.errstate(all="ignore"):
        for c, a, v in zip(states["count"], states["avg"], states["stdvar"], strict=True):
            if not len(c.labels):
                continue
            # A shard has one row per group: all its rows fold in at once (``r`` is unique).
            r = np.asarray([pos[ls] for ls in c.labels], np.int64)
            p = c.present
            nb = np.where(p, c.values, 0.0)
            mb, _ = _aligned(a, c.labels)
            vb, _ = _aligned(v, c.labels)
            na = n_tot[r]
            tot = na + nb
            first = p & (na == 0)
            later = p & (na > 0)
            delta = mb - mean[r]
            new_mean = mean[r] + delta * (nb / np.where(tot > 0, tot, 1.0))
            new_m2 = m2[r] + vb * nb + delta * delta * na * nb / np.where(tot > 0, tot, 1.0)
            mean[r] = np.where(first, mb, np.where(later, new_mean, mean[r]))
            m2[r] = np.where(first, vb * nb, np.where(later, new_m2, m2[r]))
            n_tot[r] = tot
        var = m2 / np.where(n_tot > 0, n_tot, 1.0)
        res = np.sqrt(var) if node.op == "stddev" else var
    present = counts.present
    return Vector(labels, np.where(present, res, 0.0), present, counts.drop_name)


def _count_values(node: AggregateExpr, states: dict[str, list[Vector]], label: str,
                  ctx: EvalContext) -> Vector:
    merged = merge_vectors(states["count_values"], ctx.num_steps)
    out = _reaggregate("sum", node, merged, None, ctx)
    out.drop_name = np.zeros(len(out.labels), bool)
    return out


def _group_order(labels: Sequence[Labels], group_of: Sequence[Labels],
                 first_keys: dict[Labels, Labels], tiebreak: Sequence[Any] | None = None,
                 ) -> list[int]:
    def key(i: int) -> Any:
        k = first_keys.get(group_of[i])
        return (k is None, k if k is not None else labels[i],
                0 if tiebreak is None else tiebreak[i])
    return sorted(range(len(labels)), key=key)


def _take_rows(vec: Vector, rows: Sequence[int]) -> Vector:
    idx = np.asarray(rows, np.int64)
    kw: dict[str, Any] = {}
    for f in dataclasses.fields(Vector):
        v = getattr(vec, f.name)
        if f.name == "labels":
            kw["labels"] = [vec.labels[i] for i in rows]
        else:
            kw[f.name] = None if v is None else v[idx]
    return Vector(**kw)


def _value_key(text: str) -> tuple[bool, float]:
    try:
        x = float(text)
    except ValueError:
        return True, 0.0
    return bool(np.isnan(x)), 0.0 if np.isnan(x) else x


def combine_partials(node: AggregateExpr, results: Sequence[dict[str, Vector]],
                     first_keys: dict[Labels, Labels], param: Value | None,
                     ctx: EvalContext) -> Vector:
    """Combine the shards' partial states of aggregation ``node`` into its whole answer."""
    op = node.op
    t = ctx.num_steps
    states = {name: [r[name] for r in results] for name in results[0]} if results else {}
    if not results:
        return Vector.empty(t)
    if op == "sum":
        out = _sum_combine(node, states["sum"], states["sum_c"], ctx)
    elif op in ("min", "max", "group"):
        out = _reaggregate(op, node, merge_vectors(states[op], t), None, ctx)
    elif op == "count":
        out = _reaggregate("sum", node, merge_vectors(states["count"], t), None, ctx)
    elif op == "avg":
        out = _avg(node, states, ctx)
    elif op in ("stddev", "stdvar"):
        out = _variance(node, states, ctx)
    elif op in ("topk", "bottomk"):
        cand = merge_vectors(states[op], t)
        if not len(cand.labels):
            return Vector.empty(t)
        gid, groups = group_labels(cand.labels, node.grouping, without=node.without)
        out = AGGREGATIONS[op](AggregationCall(node, cand, param, gid, groups, ctx))
        if t != 1:
            return out  # range steps: rows stay in input (label) order, as in one process
        gids, grp = group_labels(out.labels, node.grouping, without=node.without)
        group_of = [grp[g] for g in gids.tolist()]
        return _take_rows(out, _group_order(out.labels, group_of, first_keys,
                                            list(range(len(out.labels)))))
    elif op == "count_values":
        label = getattr(param, "value", "")
        out = _count_values(node, states, label, ctx)
        participates = not node.without or (label not in node.grouping and label != "__name__")
        group_of = [ls.without((label,)) if participates else ls for ls in out.labels]
        tiebreak = [_value_key(ls.get(label, "")) for ls in out.labels]
        return _take_rows(out, _group_order(out.labels, group_of, first_keys, tiebreak))
    else:  # pragma: no cover - the planner only marks SPLITTABLE operators
        raise ValueError(f"no partial combine for {op!r}")
    return _take_rows(out, _group_order(out.labels, out.labels, first_keys))
