"""Delayed ``__name__`` removal (Prometheus 3 with the flag on) and label-set collisions.

Operations that would drop the metric name only mark the series (``drop_name``); the names go
when the result leaves the engine. Rows that end up with the same label set are merged when
they never have a sample at the same step, else the query fails the way Prometheus does.
"""

from __future__ import annotations

import numpy as np

from promlab.errors import QueryError
from promlab.model import METRIC_NAME, Labels
from promlab.promql.labelmemo import distinct, without_name_labels
from promlab.promql.values import Matrix, Vector

__all__ = ["DUPLICATE_LABELSET", "check_range_call_collisions", "finalize_names",
           "merge_same_labels"]

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"
# Dropping the name drops the metadata labels of the type-and-unit feature with it.
NAME_LABELS = (METRIC_NAME, "__type__", "__unit__")


def merge_same_labels(vec: Vector) -> Vector:
    """Merge rows with identical label sets; fail if two of them are present at one step."""
    n = len(vec.labels)
    if n < 2 or distinct(vec.labels):
        return vec
    row_of: dict[Labels, int] = {}
    ids = np.empty(n, np.int64)
    out_labels: list[Labels] = []
    for i, ls in enumerate(vec.labels):
        r = row_of.get(ls)
        if r is None:
            r = row_of[ls] = len(out_labels)
            out_labels.append(ls)
        ids[i] = r
    if len(out_labels) == n:
        return vec
    m = len(out_labels)
    counts = np.zeros((m, vec.present.shape[1]), np.int64)
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    counts[sorted_ids[starts]] = np.add.reduceat(vec.present[order].astype(np.int64), starts,
                                                 axis=0)
    if (counts > 1).any():
        raise QueryError(DUPLICATE_LABELSET)
    values = np.zeros((m, vec.present.shape[1]))
    present = counts > 0
    rows, cols = np.nonzero(vec.present)
    values[ids[rows], cols] = vec.values[rows, cols]
    drop = np.zeros(m, bool)
    np.logical_or.at(drop, ids, vec.drop_name_mask())
    ts = None
    if vec.timestamps_ms is not None:
        ts = np.zeros((m, vec.present.shape[1]), np.int64)
        ts[ids[rows], cols] = vec.timestamps_ms[rows, cols]
    hists = None
    if vec.histograms is not None:
        hists = np.full((m, vec.present.shape[1]), None, object)
        hists[ids[rows], cols] = vec.histograms[rows, cols]
    return Vector(out_labels, values, present, drop, ts, hists)


def check_range_call_collisions(vec: Vector, seen: dict[Labels, Labels] | None = None) -> None:
    """Fail if two series of a range-vector function's result share a label set once their
    names go, at any steps: Prometheus checks the whole result matrix of such a call
    (``mat.ContainsSameLabelset()``), not step by step, so ``deriv({__name__=~"a|b"}[1m])``
    fails in a range query even where a and b have results at different steps only.
    Series without any result do not count.

    ``seen`` holds the rows of the same call's result over the other step slices of its range
    (label set without the name -> the series' own label set) when the range is evaluated in
    slices: a row colliding with a different series of an earlier slice fails too, and the
    rows of ``vec`` are added to it.
    """
    drop = vec.drop_name
    if drop is None or not drop.any() or (seen is None and len(vec.labels) < 2):
        return
    rows = np.flatnonzero(vec.present.any(axis=1))
    if rows.size < (1 if seen is not None else 2):
        return
    named = [vec.labels[i] for i in rows.tolist()]
    dropped = drop[rows]
    stripped = iter(without_name_labels([ls for ls, d in zip(named, dropped.tolist(),
                                                             strict=True) if d]))
    labels = [next(stripped) if d else ls for ls, d in zip(named, dropped.tolist(), strict=True)]
    if len(set(labels)) != len(labels):
        raise QueryError(DUPLICATE_LABELSET)
    if seen is None:
        return
    mine = dict(zip(labels, named, strict=True))
    # Pairs not seen before: new rows, or a label set that an earlier slice's different
    # series already has (set operations in C: a Python step only for the new pairs).
    for key, _ in mine.items() - seen.items():
        if key in seen:
            raise QueryError(DUPLICATE_LABELSET)
    seen.update(mine)


def finalize_names(value: Vector | Matrix) -> Vector | Matrix:
    """Remove ``__name__`` (and ``__type__``/``__unit__``) from the marked series, then merge
    rows that now collide."""
    drop = value.drop_name
    if drop is None or not drop.any():
        if isinstance(value, Vector):
            return merge_same_labels(Vector(value.labels, value.values, value.present, None,
                                            value.timestamps_ms, value.histograms))
        return value
    if drop.all():
        labels = without_name_labels(value.labels)
        # Interned: distinct objects are distinct label sets, nothing can collide.
        if len(set(map(id, labels))) == len(labels):
            if isinstance(value, Vector):
                return Vector(labels, value.values, value.present, None, value.timestamps_ms,
                              value.histograms)
            return Matrix(labels, value.offsets, value.ts_ms, value.values,
                          value.window_start_ms, value.window_end_ms, value.range_ms, None,
                          histograms=value.histograms)
    else:
        stripped = iter(without_name_labels([ls for ls, d in zip(value.labels, drop.tolist(),
                                                                 strict=True) if d]))
        labels = [next(stripped) if d else ls
                  for ls, d in zip(value.labels, drop.tolist(), strict=True)]
    if isinstance(value, Vector):
        return merge_same_labels(Vector(labels, value.values, value.present, None,
                                        value.timestamps_ms, value.histograms))
    if len(set(labels)) != len(labels):
        raise QueryError(DUPLICATE_LABELSET)
    return Matrix(labels, value.offsets, value.ts_ms, value.values, value.window_start_ms,
                  value.window_end_ms, value.range_ms, None, histograms=value.histograms)
