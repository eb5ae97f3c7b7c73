"""Sorting and de-duplicating samples keyed by (series, timestamp), without Python loops.

Everywhere samples from several places meet (head chunks, overlapping blocks, head ∪ blocks) they
are concatenated oldest write first, sorted stably by (series, ts) and, among equal keys, the
last one is kept: the last write wins.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["dedup_last", "gather_runs", "group_order", "merge_parts", "runs_order", "sort_dedup",
           "sort_order"]

_KEY_LIMIT = 1 << 62


def sort_order(group: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Stable permutation sorting by ``(group, ts)``.

    When both fit, the pair is packed into one int64 key so a single stable argsort (timsort,
    fast on the already-sorted runs that concatenated sources consist of) does the work.
    """
    n = group.shape[0]
    if n == 0:
        return np.zeros(0, np.intp)
    tmin = int(ts.min())
    span = int(ts.max()) - tmin + 1
    gmax = int(group.max()) + 1
    if int(group.min()) >= 0 and span * gmax < _KEY_LIMIT:
        key = group.astype(np.int64) * np.int64(span) + (ts - np.int64(tmin))
        return np.argsort(key, kind="stable")
    return np.lexsort((ts, group))


def group_order(group: npt.NDArray[np.int64]) -> npt.NDArray[np.intp] | None:
    """Stable permutation sorting ``group`` (non-negative), or None when already sorted.

    Groups below 65536 are sorted as uint16, which numpy sorts stably with a radix sort (linear).
    """
    n = group.shape[0]
    if n < 2 or bool((group[1:] >= group[:-1]).all()):
        return None
    if int(group.max()) < 1 << 16 and int(group.min()) >= 0:
        return np.argsort(group.astype(np.uint16), kind="stable")
    return np.argsort(group, kind="stable")


def dedup_last(group: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """For arrays sorted by (group, ts): mask keeping the last of each run of equal keys."""
    keep = np.ones(group.shape[0], bool)
    if group.shape[0] > 1:
        keep[:-1] = (group[1:] != group[:-1]) | (ts[1:] != ts[:-1])
    return keep


def sort_dedup(group: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
               values: npt.NDArray[np.float64]
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Sort by (group, ts) and keep the last write of each duplicate key."""
    order = group_order(group)
    g, t, v = (group, ts, values) if order is None else (group[order], ts[order], values[order])
    if g.shape[0] > 1 and bool(((g[1:] != g[:-1]) | (t[1:] > t[:-1])).all()):
        return g, t, v  # each group's samples were in time order already: no duplicates
    order = sort_order(group, ts)
    g, t, v = group[order], ts[order], values[order]
    keep = dedup_last(g, t)
    if keep.all():
        return g, t, v
    return g[keep], t[keep], v[keep]


def runs_order(keys: npt.NDArray[np.int64]) -> npt.NDArray[np.int64] | None:
    """Stable permutation sorting ``keys`` when equal keys already form contiguous runs.

    Only the runs are sorted (one entry per series, not per sample), then expanded, so this is
    linear in the number of samples. Returns None when ``keys`` is already sorted.
    """
    n = keys.shape[0]
    if n == 0:
        return None
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    run_keys = keys[starts]
    if starts.shape[0] == 1 or bool((run_keys[1:] >= run_keys[:-1]).all()):
        return None
    lens = np.diff(np.append(starts, n))
    ro = np.argsort(run_keys, kind="stable")
    return gather_runs(starts[ro], lens[ro])


def gather_runs(starts: npt.NDArray[np.int64], lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Indices of the rows ``starts[i]:starts[i]+lens[i]`` for each i in turn (no Python loop;
    :func:`promlab.storage.pool.run_index`, built in place)."""
    # Imported here: pool loads pyarrow, and the sample-acceptance rules (storage.accept, used
    # by MemoryStorage) import this module from promlab.storage's light import path.
    from promlab.storage.pool import run_index

    return run_index(starts, lens)


def merge_parts(parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                  npt.NDArray[np.float64]]]
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Merge ``(key, ts, value)`` parts given oldest write first, into (key, ts) order.

    Each part holds its samples in runs of equal key; a key's runs are in time order (one run
    per series, or one per series and time bucket) with increasing, unique ``ts``.
    Parts that do not overlap in time are merged in linear time; otherwise a full sort runs and
    the last write of equal (key, ts) wins.
    """
    parts = [p for p in parts if p[0].shape[0]]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    spans = sorted((int(p[1].min()), int(p[1].max()), i) for i, p in enumerate(parts))
    if all(spans[k][1] < spans[k + 1][0] for k in range(len(spans) - 1)):
        ordered = [parts[i] for _, _, i in spans]
        k = np.concatenate([p[0] for p in ordered]) if len(ordered) > 1 else ordered[0][0]
        t = np.concatenate([p[1] for p in ordered]) if len(ordered) > 1 else ordered[0][1]
        v = np.concatenate([p[2] for p in ordered]) if len(ordered) > 1 else ordered[0][2]
        perm = runs_order(k)
        if perm is None:
            return k, t, v
        return k[perm], t[perm], v[perm]
    return sort_dedup(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                      np.concatenate([p[2] for p in parts]))
