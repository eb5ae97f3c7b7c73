"""Counter-reset hints as Prometheus's TSDB reports them for loaded histogram samples.

Prometheus's test storage appends every histogram sample to in-memory chunks. A counter
histogram continues the current chunk while it is *appendable* there (same schema, zero
threshold and custom bounds, no count, zero bucket or bucket going down, no bucket
disappearing while populated, no explicit ``reset`` hint, and the chunk is not a gauge chunk);
otherwise a new chunk starts. Chunks are also cut when the encoding changes (float samples such
as stale markers in between) and at the head's chunk-range boundaries (2h).

Reading the samples back, the hint of every sample but the first of its chunk is
``not_reset``; the first of a chunk is reported ``unknown`` (Prometheus cannot be sure the
previous chunk still exists, prometheus/prometheus#15346); gauge samples stay ``gauge``.
:func:`storage_hints` applies those rules to one series' samples in time order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from promlab.model import is_stale
from promlab.model.histogram import CounterResetHint, FloatHistogram

__all__ = ["CHUNK_RANGE_MS", "appendable", "storage_hints"]

CHUNK_RANGE_MS = 2 * 3600 * 1000


def _populated_within(prev: FloatHistogram, cur: FloatHistogram, positive: bool) -> bool:
    """Every bucket of ``prev`` is in ``cur`` with no smaller count (absent only if empty)."""
    now = dict(cur.buckets(positive))
    for i, c in prev.buckets(positive):
        got = now.get(i)
        if got is None:
            if c != 0:
                return False
        elif got < c:
            return False
    return True


def appendable(prev: FloatHistogram, cur: FloatHistogram) -> bool:
    """Whether the counter histogram ``cur`` continues the chunk whose last sample is ``prev``."""
    if prev.counter_reset_hint == CounterResetHint.GAUGE:
        return False
    if cur.counter_reset_hint == CounterResetHint.COUNTER_RESET:
        return False
    if is_stale(cur.sum):
        return True
    if is_stale(prev.sum):
        return False
    if cur.count < prev.count:
        return False
    if cur.schema != prev.schema or not _same_float(cur.zero_threshold, prev.zero_threshold):
        return False
    if cur.is_custom and cur.custom_values != prev.custom_values:
        return False
    if cur.zero_count < prev.zero_count:
        return False
    return _populated_within(prev, cur, True) and _populated_within(prev, cur, False)


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def storage_hints(ts_ms: Sequence[int], items: Sequence[FloatHistogram | float]) -> list[FloatHistogram | float]:
    """``items`` (one series' samples in time order) with histogram hints as read back."""
    out: list[FloatHistogram | float] = []
    prev: FloatHistogram | None = None   # last sample of the current histogram chunk
    chunk_end = 0
    for t, x in zip(ts_ms, items, strict=True):
        if not isinstance(x, FloatHistogram):
            prev = None                  # a float chunk in between
            out.append(x)
            continue
        if x.counter_reset_hint == CounterResetHint.GAUGE:
            same = prev is not None and prev.counter_reset_hint == CounterResetHint.GAUGE
            hint = CounterResetHint.GAUGE
        else:
            same = prev is not None and appendable(prev, x)
            hint = CounterResetHint.NOT_COUNTER_RESET
        if same and t >= chunk_end:
            same = False
        if not same:
            chunk_end = (t // CHUNK_RANGE_MS + 1) * CHUNK_RANGE_MS
            if hint != CounterResetHint.GAUGE:
                hint = CounterResetHint.UNKNOWN
        prev = x
        out.append(x if x.counter_reset_hint == hint else x.with_hint(hint))
    return out
