"""Counter-reset hints as Prometheus's histogram-stats reader produces them.

When a selector's histograms only feed ``histogram_count``/``histogram_sum``/``histogram_avg``
(no subquery, ``histogram_quantile(s)``/``histogram_fraction`` or trim operator on the way up),
Prometheus reads them through a reader that skips the buckets and, to keep counter resets
detectable, re-detects them on the fly: a sample whose stored hint is ``unknown`` gets
``reset``/``not_reset`` from comparing it with the histogram read just before it, or stays
``unknown`` when it is the first histogram read since the reader last jumped forward. Those
fresh ``reset`` hints can then collide with ``not_reset`` ones in ``sum``/``avg``/
``sum_over_time``/``avg_over_time`` (the "conflicting counter resets" warning).

Which samples are read in one run follows the engine's iterators: each step seeks to
``target - delta`` (jumping forward, and forgetting the previous histogram, only when that is
past the current sample), then reads every sample up to ``target``:

* instant vector selectors: ``target`` = the reference time, ``delta`` = the lookback delta,
  and the sample at or after the reference time is read too;
* range selectors: ``target`` = the window end (plus the lookback delta, smoothed), ``delta``
  = the range (plus the lookback delta, anchored; twice it, smoothed), from the second step on
  at most the query step; a sample exactly at ``target`` is read.

:func:`stats_selectors` finds the selectors; :func:`redetect` rewrites a series set's hints.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from promlab.model import is_stale
from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.promql.eval import histops
from promlab.promql.parser import ast
from promlab.storage.interface import SeriesSet

__all__ = ["STATS_FUNCTIONS", "matrix_seeks", "redetect", "reread", "stats_selectors", "vector_seeks"]

STATS_FUNCTIONS = frozenset({"histogram_count", "histogram_sum", "histogram_avg"})
_BUCKET_FUNCTIONS = frozenset({"histogram_quantile", "histogram_quantiles", "histogram_fraction"})
_TRIM_OPS = frozenset({"</", ">/"})


def stats_selectors(root: ast.Expr) -> frozenset[int]:
    """``id()`` of every vector selector (plain or inside a range selector) of ``root`` read
    through the stats reader: below a stats function, with no subquery, bucket function or
    trim operator anywhere above it."""
    out: set[int] = set()
    stack: list[tuple[ast.Expr, bool]] = [(root, False)]
    while stack:
        node, below_stats = stack.pop()
        if isinstance(node, ast.VectorSelector):
            if below_stats:
                out.add(id(node))
            continue
        if isinstance(node, ast.SubqueryExpr):
            continue
        if isinstance(node, ast.BinaryExpr) and node.op in _TRIM_OPS:
            continue
        if isinstance(node, ast.Call):
            if node.func.name in _BUCKET_FUNCTIONS:
                continue
            if node.func.name in STATS_FUNCTIONS:
                below_stats = True
        stack.extend((c, below_stats) for c in ast.children(node))
    return frozenset(out)


class _Reader:
    """One series read as Prometheus's iterators read it (see the module docstring)."""

    def __init__(self, ts: Sequence[int], hs: Sequence[FloatHistogram | None]) -> None:
        self.ts = ts
        self.hs = hs
        self.pos = 0
        self.cur_t = -(1 << 62)          # the iterator's "last time" before the first seek
        self.last: FloatHistogram | None = None
        self.done: dict[int, CounterResetHint] = {}

    def read(self, k: int) -> None:
        h = self.hs[k]
        if h is None or k in self.done or is_stale(h.sum):
            return
        hint = h.counter_reset_hint
        if hint == CounterResetHint.UNKNOWN and self.last is not None:
            hint = (CounterResetHint.COUNTER_RESET if histops.detect_reset(h, self.last)
                    else CounterResetHint.NOT_COUNTER_RESET)
        self.done[k] = hint
        self.last = h

    def seek(self, target: int, delta: int, *, read_current: bool) -> None:
        n = len(self.ts)
        if self.pos >= n:
            return
        t0 = target - delta
        if t0 > self.cur_t:
            if self.pos < n and t0 > self.ts[self.pos]:
                self.last = None
            self.pos = bisect.bisect_left(self.ts, t0, self.pos)
            if self.pos >= n:
                return
            self.cur_t = self.ts[self.pos]
        while self.cur_t < target:
            self.read(self.pos)
            self.pos += 1
            if self.pos >= n:
                return
            self.cur_t = self.ts[self.pos]
        if read_current or self.cur_t == target:
            self.read(self.pos)


def redetect(ss: SeriesSet, seeks: Sequence[tuple[int, int]], *, vector: bool) -> SeriesSet:
    """``ss`` with the hints of its histogram samples as the stats reader returns them, for
    the ``(target, delta)`` seeks of the evaluation steps in order (``vector``: an instant
    vector selector's reader, which also reads the sample at or after the target)."""
    if ss.histograms is None:
        return ss
    hs_all = ss.histograms
    out = hs_all.copy()
    changed = False
    for i in range(len(ss.labels)):
        a, b = int(ss.offsets[i]), int(ss.offsets[i + 1])
        hs = list(hs_all[a:b])
        if all(h is None for h in hs):
            continue
        reader = _Reader(ss.ts_ms[a:b].tolist(), hs)
        prev: tuple[int, int] | None = None
        for s in seeks:
            if s != prev:
                reader.seek(*s, read_current=vector)
                prev = s
        for k, hint in reader.done.items():
            h = hs[k]
            assert h is not None
            if h.counter_reset_hint != hint:
                out[a + k] = h.with_hint(hint)
                changed = True
    if not changed:
        return ss
    return SeriesSet(ss.labels, ss.offsets, ss.ts_ms, ss.values, out, ss.start_ts_ms)


def reread(ss: SeriesSet, seeks: Sequence[tuple[int, int]], start_ms: int, *,
           vector: bool) -> SeriesSet:
    """:func:`redetect` over ``ss`` (selected from one millisecond earlier than needed, so
    the sample at the first seek's ``target - delta`` is read), then without the samples
    before ``start_ms``."""
    ss = redetect(ss, seeks, vector=vector)
    keep = ss.ts_ms >= start_ms
    if keep.all():
        return ss
    series_of = np.repeat(np.arange(len(ss.labels), dtype=np.int64), np.diff(ss.offsets))
    counts = np.bincount(series_of[keep], minlength=len(ss.labels))
    offsets = np.zeros(len(ss.labels) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    hs = None if ss.histograms is None else ss.histograms[keep]
    st = None if ss.start_ts_ms is None else ss.start_ts_ms[keep]
    return SeriesSet(ss.labels, offsets, ss.ts_ms[keep], ss.values[keep], hs, st)


def vector_seeks(ref: np.ndarray, lookback_ms: int) -> list[tuple[int, int]]:
    """The seeks of an instant vector selector over reference times ``ref``."""
    return [(int(t), lookback_ms) for t in ref.tolist()]


def matrix_seeks(ends: np.ndarray, range_ms: int, *, extension: str | None, lookback_ms: int,
                 step_ms: int) -> list[tuple[int, int]]:
    """The seeks of a range selector whose windows end at ``ends``."""
    after = lookback_ms if extension == "smoothed" else 0
    extra = {"anchored": lookback_ms, "smoothed": 2 * lookback_ms}.get(extension or "", 0)
    first = range_ms + extra
    later = min(first, step_ms) if step_ms > 0 else first
    return [(int(t) + after, first if j == 0 else later) for j, t in enumerate(ends.tolist())]
