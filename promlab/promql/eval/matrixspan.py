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

__all__ = ["MAX_EXTRA_FRACTION", "MIN_SPAN_SAMPLES", "spanned_arrays"]

#: Below this many samples copying the runs is cheap: the span is not worth its checks.
MIN_SPAN_SAMPLES = 1 << 15
#: Most gap samples in the span, as a fraction of the runs' samples.
MAX_EXTRA_FRACTION = 1 / 16


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
    if total < MIN_SPAN_SAMPLES or (b - a - total) > total * MAX_EXTRA_FRACTION \
            or not bool((lens > 0).all()) or not bool((starts[1:] >= ends[:-1]).all()):
        return None
    after = _after_counts(ss.ts_ms, ends[:-1], starts[1:], lo_ms, hi_ms)
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


def _after_counts(ts_ms: I64, gap_lo: I64, gap_hi: I64, lo_ms: int, hi_ms: int) -> I64 | None:
    """Per gap ``ts_ms[gap_lo[k]:gap_hi[k]]``: how many leading samples are after the range
    (the rest must be before it), or None when a gap breaks the layout (a sample inside the
    range, one after the range following one before it, or a part not strictly increasing)."""
    n_gaps = gap_lo.shape[0]
    widths = gap_hi - gap_lo
    n = int(widths.sum())
    if n == 0:
        return np.zeros(n_gaps, np.int64)
    first = np.zeros(n_gaps, np.int64)  # position of each gap's first sample among all gaps
    np.cumsum(widths[:-1], out=first[1:])
    gap_of = np.repeat(np.arange(n_gaps, dtype=np.int64), widths)
    rank = np.arange(n, dtype=np.int64) - first[gap_of]  # position inside its gap
    gts = ts_ms[gap_lo[gap_of] + rank]
    post = gts > hi_ms
    if not bool((post | (gts < lo_ms)).all()):
        return None
    after = np.bincount(gap_of[post], minlength=n_gaps).astype(np.int64)
    if not bool((post == (rank < after[gap_of])).all()):
        return None
    same = (gap_of[1:] == gap_of[:-1]) & (post[1:] == post[:-1])
    if not bool((gts[1:][same] > gts[:-1][same]).all()):
        return None
    return after
