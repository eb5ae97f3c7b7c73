"""``topk``/``bottomk`` over a range query without sorting every step's column.

The sort the instant path does (per step, by group, then present non-NaN before NaN before
absent, then value, then input order) is only needed for its first ``k`` places. With ``k`` the
same at every step, the ``k``-th smallest key of each column (``np.partition``, linear) is a
threshold: every cell below it is selected, and the cells equal to it fill the remaining places
in that same order (non-NaN first, then NaN, each in input order). The result is the same
selection as the full sort's, in ``O(S T)`` per group instead of ``O(S T log S)``.
"""

from __future__ import annotations

import numpy as np

from promlab.promql.values import F64, I64, B

__all__ = ["MAX_GROUPS", "select_k"]

#: Above this many groups the per-group loop loses to one sort of everything.
MAX_GROUPS = 64


def select_k(values: F64, present: B, group_ids: I64, n_groups: int, k: int, top: bool,
             ) -> B | None:
    """``(S, T)``: the cells ``topk(k)`` (``top``) or ``bottomk(k)`` selects per group and
    step; None when this path does not apply (too many groups)."""
    s, t = values.shape
    sel = np.zeros((s, t), bool)
    if k <= 0 or s == 0:
        return sel
    if n_groups > MAX_GROUPS:
        return None
    nan = np.isnan(values)
    # Present non-NaN cells sort by value; every other cell gets +inf and ranks after them.
    key = np.negative(values) if top else values.copy()
    key[nan | ~present] = np.inf
    nan &= present
    if n_groups == 1:
        _select_rows(key, nan, present, k, sel)
        return sel
    for g in range(n_groups):
        rows = np.flatnonzero(group_ids == g)
        if rows.size:
            part = np.zeros((rows.size, t), bool)
            _select_rows(key[rows], nan[rows], present[rows], k, part)
            sel[rows] = part
    return sel


def _select_rows(key: F64, nan: B, present: B, k: int, out: B) -> None:
    """Fill ``out`` with the first ``k`` present cells of each column of one group."""
    n = key.shape[0]
    if k >= n:
        out[...] = present
        return
    # Partitioned in place in a transposed copy: each column's cells contiguous (a partition
    # along axis 0 of the C-ordered frame walks every column strided, and copies it first).
    cols = np.ascontiguousarray(key.T)
    cols.partition(k - 1, axis=1)
    thr = cols[:, k - 1]
    np.less(key, thr[None, :], out=out)
    need = k - out.sum(axis=0)
    tie = key == thr[None, :]
    tie &= present
    # Columns whose ties all fit take them all (the usual case: one cell at the threshold).
    fits = tie.sum(axis=0) <= need
    out |= tie & fits[None, :]
    hard = np.flatnonzero(~fits)
    if hard.size == 0:
        return
    # Elsewhere ties fill the places left: non-NaN cells first, then NaN ones, in input order.
    tie, nan, need = tie[:, hard], nan[:, hard], need[hard]
    sub = out[:, hard]
    for kind in (~nan, nan):
        cand = tie & kind
        rank = np.cumsum(cand, axis=0)
        sub |= cand & (rank <= need[None, :])
        need = need - np.minimum(rank[-1], need)
    out[:, hard] = sub
