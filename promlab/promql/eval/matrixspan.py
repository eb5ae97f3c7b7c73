"""A matrix selector's CSR arrays read in place from a selection in view form.

A :class:`~promlab.storage.interface.SeriesSet` in view form holds each series' run as
``ts_ms[starts[i]:ends[i]]`` inside a shared (cached, decoded) array; between two runs lie the
samples storage cut off: the end of series ``i`` after the range and the start of series
``i + 1`` before it. Copying the runs out (``compact``) costs a pass over every sample.

A range function never looks outside its windows, and window bounds are found from the
timestamps (:meth:`~promlab.promql.values.Matrix.window_bounds`). So the matrix can keep the
whole span ``ts_ms[starts[0]:ends[-1]]`` as its CSR arrays, each gap split between its two
neighbours: the samples after the range go to the series before the gap, those before the
range to the series after it. Every row is then strictly increasing and its samples inside
the range are exactly its run. :func:`spanned_arrays` checks that this holds (the gap samples
are outside the range, after-range ones first, each part strictly increasing) and that the
gaps are small; otherwise the caller copies the runs as before.
"""

from __future__ import annotations

import numpy as np

from promlab.model import stale_mask
from promlab.promql.values import F64, I64
from promlab.storage.interface import SeriesSet

__all__ = ["MAX_EXTRA_FRACTION", "MIN_RUN_SAMPLES", "MIN_SPAN_SAMPLES", "spanned_arrays"]

#: Below this many samples copying the runs is cheap: the span is not worth its checks.
MIN_SPAN_SAMPLES = 1 << 15
#: Below this many samples per series on average, copying the runs is cheap too (one gather),
#: and a one-step query's windows are then the runs themselves (no search of their bounds);
#: longer runs are copied one slice per series, which costs more than the span's checks.
MIN_RUN_SAMPLES = 64
#: Most gap samples in the span, as a fraction of the runs' samples (every pass over the
#: matrix's samples covers them too).
MAX_EXTRA_FRACTION = 1 / 2


def spanned_arrays(ss: SeriesSet, lo_ms: int, hi_ms: int) -> tuple[I64, I64, F64] | None:
    """``offsets, ts_ms, values`` of the CSR layout over the span of ``ss``'s runs (views of
    its arrays, gaps given to their neighbours), or None when ``ss`` is not in view form, holds
    histograms, start timestamps or a stale marker in the span, or the layout does not hold.

    ``[lo_ms, hi_ms]`` is the range the selection was cut to (its runs lie inside it).
    """
    if ss.starts is None or ss.ends is None or ss.histograms is not None \
            or ss.start_ts_ms is not None:
        return None
    starts, ends = ss.starts, ss.ends
    n_series = starts.shape[0]
    if n_series == 0:
        return None
    lens = ends - starts
    total = int(lens.sum())
    a, b = int(starts[0]), int(ends[-1])
    if total < MIN_SPAN_SAMPLES or total < MIN_RUN_SAMPLES * n_series \
            or (b - a - total) > total * MAX_EXTRA_FRACTION \
            or not bool((lens > 0).all()) or not bool((starts[1:] >= ends[:-1]).all()):
        return None
    after = _after_counts(ss.ts_ms, starts, ends, lo_ms, hi_ms)
    if after is None:
        return None
    values = ss.values[a:b]
    if bool(stale_mask(values).any()):
        return None
    offsets = np.empty(n_series + 1, np.int64)
    offsets[0] = 0
    offsets[1:-1] = ends[:-1] + after - a
    offsets[-1] = b - a
    return offsets, ss.ts_ms[a:b], values


def _after_counts(ts_ms: I64, starts: I64, ends: I64, lo_ms: int, hi_ms: int) -> I64 | None:
    """Per gap ``ts_ms[ends[k]:starts[k + 1]]``: how many leading samples are after the range
    (the rest must be before it), or None when a gap breaks the layout (a sample inside the
    range, one after the range following one before it, or a row not strictly increasing).

    One pass over the span finds where its timestamps do not rise. Every row of the layout
    (a gap's before part, a run, the next gap's after part) must rise strictly, so such a
    place must be a row break, at most one per gap: the break of a gap that holds samples
    (there must be one: its samples would lie between two runs, inside the range) tells its
    after part from its before part. A rising row then lies outside the range where its ends
    do: a row's after part starts above ``hi_ms`` and its before part ends below ``lo_ms``.
    """
    a = int(starts[0])
    span = ts_ms[a:int(ends[-1])]
    gap_lo, gap_hi = ends[:-1] - a, starts[1:] - a
    n_gaps = gap_lo.shape[0]
    falls = np.flatnonzero(span[1:] <= span[:-1])  # span[p + 1] <= span[p]
    # The gap of each fall: a break before index q of gap k has gap_lo[k] <= q <= gap_hi[k].
    gap = np.searchsorted(gap_hi, falls + 1, side="left")
    if falls.size and (int(gap[-1]) >= n_gaps or not bool((falls + 1 >= gap_lo[gap]).all())
                       or not bool((gap[1:] > gap[:-1]).all())):
        return None
    breaks = gap_lo.copy()
    breaks[gap] = falls + 1
    broken = np.zeros(n_gaps, bool)
    broken[gap] = True
    if not bool((broken | (gap_hi == gap_lo)).all()):
        return None
    after = breaks - gap_lo
    with_after, with_before = after > 0, breaks < gap_hi
    if not bool((span[gap_lo[with_after]] > hi_ms).all()) \
            or not bool((span[gap_hi[with_before] - 1] < lo_ms).all()):
        return None
    return after
