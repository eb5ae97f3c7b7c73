"""The evaluator's value frames: every node evaluates to one of these over *all* steps at once.

A query has ``T`` evaluation timestamps (``EvalContext.steps_ms``; ``T == 1`` for an instant
query). Frames are shaped for numpy, never per step:

* :class:`Scalar` — ``values`` of shape ``(T,)``.
* :class:`Vector` — an instant vector at every step: ``labels`` (``S`` label sets),
  ``values`` ``(S, T)`` float64 and ``present`` ``(S, T)`` bool. NaN is a value; a sample that is
  not there is ``present == False`` (its ``values`` cell is ignored, conventionally 0).
  ``drop_name`` ``(S,)`` marks series whose ``__name__`` is removed when the result leaves the
  engine (Prometheus 3's delayed name removal).
* :class:`Matrix` — a range vector at every step, CSR: series ``i``'s samples are
  ``ts_ms[offsets[i]:offsets[i+1]]``; at step ``j`` the window is
  ``(window_start_ms[j], window_end_ms[j]]`` (left-open). Stale markers are already removed.
  With ``extension`` set (``anchored``/``smoothed`` selectors) the arrays also hold the samples
  within ``lookback_ms`` outside the windows, for :mod:`.eval.functions.extended`.
* :class:`String` — a string literal.

Frames are treated as immutable once built: functions return new frames (they may share arrays).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.promql.labelmemo import group_keys

__all__ = [
    "Annotations",
    "EvalContext",
    "Matrix",
    "Scalar",
    "String",
    "Value",
    "Vector",
    "group_labels",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@dataclass(slots=True)
class Annotations:
    """Non-fatal problems found while evaluating: Prometheus's warnings and infos.

    Messages are stored as Prometheus renders them, e.g.
    ``PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: "foo"``;
    the position suffix (`` (1:6)``) is added from ``pos`` when given.
    """

    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def info(self, message: str) -> None:
        if message not in self.infos:
            self.infos.append(message)

    def merge(self, other: Annotations) -> None:
        for w in other.warnings:
            self.warn(w)
        for i in other.infos:
            self.info(i)


@dataclass(slots=True)
class EvalContext:
    """Per-query evaluation settings and state shared by every node."""

    steps_ms: I64                      # (T,) evaluation timestamps, ascending
    start_ms: int                      # query start (for @ start())
    end_ms: int                        # query end (for @ end())
    step_ms: int                       # query step (0 for instant queries)
    lookback_ms: int = 5 * 60 * 1000
    default_subquery_step_ms: int = 60 * 1000
    max_samples: int = 50_000_000
    annotations: Annotations = field(default_factory=Annotations)
    query: str = ""                    # query text (for annotation positions)
    delayed_name_removal: bool = True  # False: __name__ dropped at each operation (eager)
    use_start_timestamps: bool = False  # the use-start-timestamps feature
    # First step of the query's or subquery's range when steps_ms is a slice of it (None:
    # steps_ms[0]); where Prometheus evaluates step-invariant subtrees (eval/stepinvariant.py).
    range_start_ms: int | None = None
    # Inside an aggregation's parameter, which Prometheus never preprocesses: a selector or
    # subquery pinned with ``@ <time>`` moves along with the steps there (eval/selectors.py
    # param_drift), over only the data Prometheus loads for it; ``read_until_ms`` is then the
    # latest time (before their own offsets) the unpinned selectors below a pinned subquery read.
    at_moves: bool = False
    read_until_ms: int | None = None
    # How far Prometheus moves a node pinned with ``@`` below subqueries that begin where the
    # range evaluating them begins (eval/subquery.py at_shift): it adjusts ``@`` offsets for the
    # subqueries' offsets but not again when such a subquery's aligned start is unchanged.
    at_shift_ms: int = 0

    @property
    def num_steps(self) -> int:
        return int(self.steps_ms.shape[0])


@dataclass(slots=True)
class Scalar:
    values: F64  # (T,)


@dataclass(slots=True)
class String:
    value: str


@dataclass(slots=True)
class Vector:
    labels: list[Labels]
    values: F64          # (S, T)
    present: B           # (S, T)
    drop_name: B | None = None  # (S,) or None meaning all False
    # (S, T) timestamp of each sample when fresh from a vector selector (what timestamp()
    # returns); None once any operation has produced new values.
    timestamps_ms: I64 | None = None
    # Native histograms: None when no cell holds one, else an (S, T) object array with a
    # FloatHistogram at each histogram cell (its ``values`` cell is NaN) and None elsewhere.
    histograms: npt.NDArray[np.object_] | None = None
    # (S, T) start timestamp of each sample fresh from a vector selector when the
    # ``use-start-timestamps`` feature is on (0 = unknown); None otherwise.
    start_ts_ms: I64 | None = None

    @classmethod
    def empty(cls, num_steps: int) -> Vector:
        return cls([], np.zeros((0, num_steps)), np.zeros((0, num_steps), bool))

    def __len__(self) -> int:
        return len(self.labels)

    def drop_name_mask(self) -> B:
        if self.drop_name is None:
            return np.zeros(len(self.labels), bool)
        return self.drop_name


@dataclass(slots=True)
class Matrix:
    labels: list[Labels]
    offsets: I64          # (S+1,)
    ts_ms: I64            # (N,)
    values: F64           # (N,)
    window_start_ms: I64  # (T,) exclusive
    window_end_ms: I64    # (T,) inclusive
    range_ms: int
    drop_name: B | None = None
    # ``"anchored"`` / ``"smoothed"`` (experimental range modifiers): the CSR arrays also hold
    # the samples up to ``lookback_ms`` before each window (and after it, smoothed) that those
    # functions use; :meth:`window_bounds` still bounds the plain window.
    extension: str | None = None
    lookback_ms: int = 0
    # Native histograms: None when no sample is one (float code paths unchanged), else an
    # object array parallel to ``values`` (a FloatHistogram per histogram sample, None per float
    # sample; ``values`` holds a NaN placeholder there).
    histograms: npt.NDArray[np.object_] | None = None
    # Start timestamps parallel to ``ts_ms`` (0 = unknown), only from a range selector with
    # the ``use-start-timestamps`` feature on; None otherwise (subqueries cut them).
    start_ts_ms: I64 | None = None
    # What :meth:`window_bounds` returns, when the builder knows it (a subquery's grid);
    # None: computed from the timestamps.
    bounds: tuple[I64, I64] | None = None
    # Samples the matrix holds for the sample limit, when the CSR arrays hold more than its
    # windows' samples (a selection kept in place, :mod:`.eval.matrixspan`: its gap samples lie
    # outside every window); None: all of ``ts_ms``.
    held_samples: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def histogram_mask(self) -> B:
        """Per sample: True for a native histogram sample (all False without histograms)."""
        if self.histograms is None:
            return np.zeros(self.values.shape[0], bool)
        return np.fromiter((h is not None for h in self.histograms), bool, self.histograms.size)

    def window_bounds(self) -> tuple[I64, I64]:
        """Index bounds ``lo, hi`` of shape ``(S, T)``: step ``j`` of series ``i`` covers
        ``ts_ms[lo[i, j]:hi[i, j]]`` (global indexes into the CSR arrays).

        Only the distinct window edges are placed (when the range is a multiple of the step,
        window starts are earlier window ends: about ``T`` edges, not ``2 T``), by
        :func:`_place_edges`. The results may be views of one array: treat them as read-only.
        """
        if self.bounds is not None:
            return self.bounds
        n_series = len(self.labels)
        n_steps = self.window_end_ms.shape[0]
        if n_series == 0 or n_steps == 0:
            z = np.zeros((n_series, n_steps), np.int64)
            return z, z
        edges = np.concatenate([self.window_start_ms, self.window_end_ms])
        uniq, inv = np.unique(edges, return_inverse=True)
        found = _place_edges(self.ts_ms, self.offsets, uniq)
        inv = inv.ravel()
        return _take_columns(found, inv[:n_steps]), _take_columns(found, inv[n_steps:])

    def window_bounds_times(self) -> tuple[I64, I64, I64, I64]:
        """:meth:`window_bounds` ``lo, hi`` and the timestamps of every window's first and
        last sample, ``ts_ms[lo]`` and ``ts_ms[hi - 1]`` (meaningless where a window is
        empty). Placing the edges gathers them already: no further pass."""
        n_series = len(self.labels)
        n_steps = self.window_end_ms.shape[0]
        if self.bounds is not None or n_series == 0 or n_steps == 0 or self.ts_ms.size == 0:
            lo, hi = self.window_bounds()
            if self.ts_ms.size == 0:
                z = np.zeros(lo.shape, np.int64)
                return lo, hi, z, z
            return lo, hi, np.take(self.ts_ms, lo, mode="clip"), \
                np.take(self.ts_ms, hi - 1, mode="clip")
        edges = np.concatenate([self.window_start_ms, self.window_end_ms])
        uniq, inv = np.unique(edges, return_inverse=True)
        after = np.empty((n_series, uniq.shape[0]), np.int64)
        before = np.empty_like(after)
        found = _place_edges(self.ts_ms, self.offsets, uniq, (after, before))
        inv = inv.ravel()
        lo_cols, hi_cols = inv[:n_steps], inv[n_steps:]
        return (_take_columns(found, lo_cols), _take_columns(found, hi_cols),
                _take_columns(after, lo_cols), _take_columns(before, hi_cols))


#: Cells (series x edges) placed at once by :func:`_place_edges` (a cache-sized block).
_PLACE_CELLS = 1 << 16


def _place_edges(ts_ms: I64, offsets: I64, edges: I64,
                 times: tuple[I64, I64] | None = None) -> I64:
    """``(S, E)``: for every series and sorted edge, the global index of the series' first
    sample after the edge (``offsets[i]`` + how many of its samples are ``<= edge``).

    Each series' samples are taken as evenly spaced between its first and last one: that
    guesses every position by arithmetic, and two gathers check each guess (the sample before
    it is at or before the edge, the one at it after). Scrapes are nearly regular, so the
    guesses almost always hold; the series of a block with a wrong guess are searched
    (:func:`_search_edges`). Blocks of series keep the temporaries cache-resident.

    ``times`` (two ``(S, E)`` arrays) receives the timestamps of the sample after and of the
    sample at or before every edge (the checks' gathers; clipped indexes at the array ends,
    another series' samples at a series' ends).
    """
    n_series, n_edges = offsets.shape[0] - 1, edges.shape[0]
    found = np.empty((n_series, n_edges), np.int64)
    if ts_ms.shape[0] == 0:
        found[:] = 0
        if times is not None:
            times[0][:] = 0
            times[1][:] = 0
        return found
    edges_f = edges.astype(np.float64)
    last = ts_ms.shape[0] - 1
    ts_next = ts_ms[1:] if last else ts_ms  # ts_next[p] is ts_ms[p + 1]
    moderate = max(abs(float(edges_f[0])), abs(float(edges_f[-1]))) < 2.0**45
    rows = max(1, _PLACE_CELLS // max(n_edges, 1))
    for i in range(0, n_series, rows):
        j = min(n_series, i + rows)
        start, end = offsets[i:j], offsets[i + 1:j + 1]
        count = end - start
        first = ts_ms[np.minimum(start, last)].astype(np.float64)
        final = ts_ms[np.clip(end - 1, 0, last)].astype(np.float64)
        span = final - first
        many = (count >= 2) & (span > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_ms = np.where(many, (count - 1) / span, 0.0)
        # p = start + floor((edge - first) * per_ms): the guessed last sample at or before
        # the edge, in [start - 1, end - 1] (truncation is the floor but in (-1, 0), where a
        # wrong guess fails its check like any other).
        x = np.multiply(edges_f[None, :], per_ms[:, None])
        x += (start - first * per_ms)[:, None]
        # Only the edges outside some series' first..last sample need clamping (inside,
        # rounding stays far below one sample for edges within +-2**45 ms).
        k0, k1 = 0, 0
        if moderate and many.all():
            k0 = int(np.searchsorted(edges_f, first.max(), side="left"))
            k1 = max(k0, int(np.searchsorted(edges_f, final.min(), side="right")))
        for cols in (slice(0, k0), slice(k1, n_edges)) if k1 > k0 else (slice(None),):
            xc = x[:, cols]
            np.minimum(xc, (end - 1)[:, None].astype(np.float64), out=xc)
            np.maximum(xc, (start - 1)[:, None].astype(np.float64), out=xc)
        p = x.astype(np.int64)
        if times is None:
            after = np.take(ts_next, p, mode="clip")
            before = np.take(ts_ms, p, mode="clip")
        else:
            after = np.take(ts_next, p, mode="clip", out=times[0][i:j])
            before = np.take(ts_ms, p, mode="clip", out=times[1][i:j])
        if i == 0:
            after[p == -1] = ts_ms[0]  # ts_next has no index -1 (clipped to ts_ms[1])
        g = found[i:j]
        np.add(p, 1, out=g)
        late = np.greater(before, edges)
        early = np.less_equal(after, edges)
        if not (late.any() or early.any()):
            continue
        # At a series' ends the gathered neighbour belongs to another series: no check there.
        late &= g != start[:, None]
        early &= g != end[:, None]
        late |= early
        redo = np.flatnonzero(late.any(axis=1))
        if redo.size:
            g[redo] = _search_edges(ts_ms, start[redo], end[redo], edges)
            if times is not None:
                times[0][i + redo] = np.take(ts_ms, g[redo], mode="clip")
                times[1][i + redo] = np.take(ts_ms, g[redo] - 1, mode="clip")
    return found


def _search_edges(ts_ms: I64, start: I64, end: I64, edges: I64) -> I64:
    """:func:`_place_edges` for the runs ``ts_ms[start[r]:end[r]]`` by binary search.

    One ``searchsorted`` per group of runs for all its (run, edge) pairs: each run's
    timestamps are shifted by ``r * span`` so the group's concatenation is sorted. Groups
    hold a bounded number of samples and cells (cache-resident keys and queries).
    """
    n_rows, n_edges = start.shape[0], edges.shape[0]
    out = np.empty((n_rows, n_edges), np.int64)
    lens = end - start
    nonempty = lens > 0
    lo_t, hi_t = int(edges[0]), int(edges[-1])
    if nonempty.any():
        lo_t = min(lo_t, int(ts_ms[start[nonempty]].min()))
        hi_t = max(hi_t, int(ts_ms[end[nonempty] - 1].max()))
    span = hi_t - lo_t + 2
    rel_edges = edges - lo_t
    cum = np.zeros(n_rows + 1, np.int64)
    np.cumsum(lens, out=cum[1:])
    per_q = max(1, (1 << 17) // max(n_edges, 1))
    i = 0
    while i < n_rows:
        j = int(np.searchsorted(cum, cum[i] + (1 << 16), side="right")) - 1
        j = min(max(j, i + 1), i + per_q, n_rows)
        n = int(cum[j] - cum[i])
        take = np.repeat(start[i:j] - (cum[i:j] - cum[i]), lens[i:j])
        take += np.arange(n, dtype=np.int64)
        shift = np.arange(j - i, dtype=np.int64) * span
        keys = ts_ms[take] - lo_t
        keys += np.repeat(shift, lens[i:j])
        found = np.searchsorted(keys, shift[:, None] + rel_edges[None, :], side="right")
        found += (start[i:j] - (cum[i:j] - cum[i]))[:, None]
        out[i:j] = found
        i = j
    return out


def _take_columns(a: I64, cols: I64) -> I64:
    """``a[:, cols]``, as a slice view when ``cols`` is a run of consecutive columns."""
    if cols.size and int(cols[-1]) - int(cols[0]) == cols.size - 1 \
            and bool((np.diff(cols) == 1).all()):
        return a[:, int(cols[0]):int(cols[-1]) + 1]
    return a[:, cols]


Value = Scalar | String | Vector | Matrix


def group_labels(labels: Sequence[Labels], names: Sequence[str], *, without: bool,
                 ) -> tuple[I64, list[Labels]]:
    """Group series by a subset of their labels.

    ``without=False`` keeps only ``names`` (``by``/``on``); ``without=True`` drops ``names`` and
    ``__name__`` (``without``/``ignoring``). Returns the group id of each series and the label
    set of each group, groups numbered in order of first appearance.
    """
    keys = group_keys(labels, names, without=without)
    # Keys are interned: equal keys are one object, so groups are told apart by identity
    # (dicts keep the first appearance's position; a repeated id keeps the same object).
    first = dict(zip(map(id, keys), keys, strict=True))
    out = list(first.values())
    pos = {k: i for i, k in enumerate(first)}
    ids = np.fromiter(map(pos.__getitem__, map(id, keys)), np.int64, len(keys))
    return ids, out
