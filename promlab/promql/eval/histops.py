"""Arithmetic on native histograms (:class:`~promlab.model.histogram.FloatHistogram`) for PromQL.

Histograms are combined as Prometheus does: exponential histograms of different schemas are
reduced to the coarser one, zero buckets widened to the larger threshold (absorbing the buckets
it covers); custom-bucket histograms (NHCB) with different bounds are reconciled to the bounds
they share (:class:`Reconciled` tells the caller to emit Prometheus's info annotation); an
exponential and a custom-bucket histogram cannot be combined (:class:`IncompatibleSchemas`).

Buckets are handled as ``{index: count}`` dicts: histograms in PromQL results are small
(tens of buckets) and a per-sample Python loop over them is what the kernels cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from promlab.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    CounterResetHint,
    FloatHistogram,
    bucket_lower,
    bucket_upper,
    from_bucket_map,
)

__all__ = [
    "Combine",
    "IncompatibleSchemas",
    "add",
    "detect_reset",
    "mul",
    "neg",
    "sub",
]


class IncompatibleSchemas(ValueError):
    """An exponential and a custom-bucket histogram met in one operation."""


@dataclass(slots=True)
class Combine:
    """What combining histograms noticed (custom bounds reconciled, counter-reset hints in
    conflict), for the caller's annotations."""

    reconciled: bool = False
    hint_conflict: bool = False
    hints: set[CounterResetHint] = field(default_factory=set)


def _side(h: FloatHistogram, positive: bool, schema: int) -> dict[int, float]:
    delta = h.schema - schema
    out: dict[int, float] = {}
    for i, c in h.buckets(positive):
        k = ((i - 1) >> delta) + 1 if delta > 0 else i
        out[k] = out.get(k, 0.0) + c
    return out


def _widen_zero(h: FloatHistogram, schema: int, threshold: float,
                ) -> tuple[dict[int, float], dict[int, float], float]:
    """Buckets at ``schema`` with those inside ``[-threshold, threshold]`` moved to the zero
    bucket; returns (positive, negative, zero count)."""
    pos, neg = _side(h, True, schema), _side(h, False, schema)
    zc = h.zero_count
    if threshold > h.zero_threshold:
        for m in (pos, neg):
            for i in [i for i in m if bucket_upper(schema, i) <= threshold]:
                zc += m.pop(i)
    return pos, neg, zc


def _zero_threshold_for(a: FloatHistogram, b: FloatHistogram, schema: int) -> float:
    t = max(a.zero_threshold, b.zero_threshold)
    # A threshold inside a populated bucket of the other histogram grows to that bucket's upper
    # bound (Prometheus's zeroCountForLargerThreshold).
    changed = True
    while changed:
        changed = False
        for h in (a, b):
            if h.zero_threshold >= t:
                continue
            for positive in (True, False):
                for i, c in _side(h, positive, schema).items():
                    lo, up = bucket_lower(schema, i), bucket_upper(schema, i)
                    if c and lo < t < up:
                        t = up
                        changed = True
    return t


def _custom(a: FloatHistogram, b: FloatHistogram, sign: float, note: Combine) -> FloatHistogram:
    if a.custom_values == b.custom_values:
        pa, pb = dict(a.buckets(True)), dict(b.buckets(True))
        cv = a.custom_values
    else:
        note.reconciled = True
        common = tuple(sorted(set(a.custom_values) & set(b.custom_values)))
        pa, pb = _rebucket(a, common), _rebucket(b, common)
        cv = common
    out = dict(pa)
    for i, c in pb.items():
        out[i] = out.get(i, 0.0) + sign * c
    return from_bucket_map(CUSTOM_BUCKETS_SCHEMA, out, count=a.count + sign * b.count,
                           sum=a.sum + sign * b.sum, custom_values=cv, keep_empty=True)


def _rebucket(h: FloatHistogram, bounds: tuple[float, ...]) -> dict[int, float]:
    """A custom-bucket histogram's counts summed into the buckets of ``bounds`` (a subset)."""
    out: dict[int, float] = {}
    for i, c in h.buckets(True):
        upper = h.custom_values[i] if i < len(h.custom_values) else math.inf
        k = next((j for j, b in enumerate(bounds) if upper <= b), len(bounds))
        out[k] = out.get(k, 0.0) + c
    return out


def _combine(a: FloatHistogram, b: FloatHistogram, sign: float, note: Combine) -> FloatHistogram:
    if a.is_custom != b.is_custom:
        raise IncompatibleSchemas()
    if a.is_custom:
        out = _custom(a, b, sign, note)
    else:
        schema = min(a.schema, b.schema)
        t = _zero_threshold_for(a, b, schema)
        pa, na, za = _widen_zero(a, schema, t)
        pb, nb, zb = _widen_zero(b, schema, t)
        for m, o in ((pa, pb), (na, nb)):
            for i, c in o.items():
                m[i] = m.get(i, 0.0) + sign * c
        out = from_bucket_map(schema, pa, na, count=a.count + sign * b.count,
                              sum=a.sum + sign * b.sum, zero_count=za + sign * zb,
                              zero_threshold=t, keep_empty=True)
    return out


def add(a: FloatHistogram, b: FloatHistogram, note: Combine | None = None) -> FloatHistogram:
    """``a + b`` (hint: GAUGE unless both agree, as Prometheus's ``Add``)."""
    out = _combine(a, b, 1.0, note or Combine())
    return out.with_hint(_sum_hint(a, b))


def sub(a: FloatHistogram, b: FloatHistogram, note: Combine | None = None) -> FloatHistogram:
    """``a - b``; the result is a gauge histogram."""
    return _combine(a, b, -1.0, note or Combine()).with_hint(CounterResetHint.GAUGE)


def _sum_hint(a: FloatHistogram, b: FloatHistogram) -> CounterResetHint:
    if a.counter_reset_hint == CounterResetHint.GAUGE or b.counter_reset_hint == CounterResetHint.GAUGE:
        return CounterResetHint.GAUGE
    return a.counter_reset_hint if a.counter_reset_hint == b.counter_reset_hint else \
        CounterResetHint.UNKNOWN


def mul(h: FloatHistogram, f: float) -> FloatHistogram:
    """Every count and the sum multiplied by ``f`` (a negative ``f`` flips no buckets)."""
    return FloatHistogram(
        schema=h.schema, zero_threshold=h.zero_threshold, zero_count=h.zero_count * f,
        count=h.count * f, sum=h.sum * f, positive_spans=h.positive_spans,
        positive_buckets=tuple(c * f for c in h.positive_buckets),
        negative_spans=h.negative_spans,
        negative_buckets=tuple(c * f for c in h.negative_buckets),
        custom_values=h.custom_values, counter_reset_hint=h.counter_reset_hint)


def neg(h: FloatHistogram) -> FloatHistogram:
    return mul(h, -1.0)


def detect_reset(cur: FloatHistogram, prev: FloatHistogram) -> bool:
    """Whether ``cur`` follows a counter reset after ``prev`` (Prometheus's ``DetectReset``)."""
    if cur.counter_reset_hint == CounterResetHint.COUNTER_RESET:
        return True
    if cur.counter_reset_hint == CounterResetHint.NOT_COUNTER_RESET:
        return False
    if cur.is_custom != prev.is_custom:
        return True
    if cur.count < prev.count:
        return True
    if cur.is_custom:
        if cur.custom_values != prev.custom_values:
            return True
        pc = dict(cur.buckets(True))
        return any(c > pc.get(i, 0.0) for i, c in prev.buckets(True))
    if cur.schema > prev.schema:
        return True
    if cur.zero_threshold < prev.zero_threshold:
        return True
    ppos, pneg, pz = _widen_zero(prev, cur.schema, cur.zero_threshold)
    if _zero_threshold_for(prev, cur, cur.schema) != cur.zero_threshold:
        return True
    if cur.zero_count < pz:
        return True
    cpos, cneg = _side(cur, True, cur.schema), _side(cur, False, cur.schema)
    return any(c > cpos.get(i, 0.0) for i, c in ppos.items()) or \
        any(c > cneg.get(i, 0.0) for i, c in pneg.items())
