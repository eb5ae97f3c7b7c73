"""The trim operators ``h </ x`` (keep observations below ``x``) and ``h >/ x`` (keep those
above), Prometheus's ``FloatHistogram.TrimBuckets``.

A bucket entirely on the kept side stays; one entirely on the other side is emptied; the bucket
holding ``x`` keeps the interpolated part (linearly for custom buckets and the zero bucket,
log-linearly for exponential buckets; buckets reaching ±Inf are kept or dropped whole). When any
bucket changed, ``count`` becomes the kept total and ``sum`` is re-estimated from each kept
part's midpoint (geometric for exponential buckets).
"""

from __future__ import annotations

import math

from promlab.model.histogram import FloatHistogram, bucket_lower, bucket_upper, from_bucket_map

__all__ = ["trim"]


def _midpoint(lo: float, up: float, positive: bool, linear: bool) -> float:
    if math.isinf(lo):
        if math.isinf(up):
            return 0.0
        return up / 2 if up > 0 else up
    if math.isinf(up):
        return lo
    if linear:
        return (lo + up) / 2
    g = math.sqrt(abs(lo * up))
    return g if positive else -g


def _fraction_below(lo: float, up: float, v: float, linear: bool) -> float:
    if linear:
        return (v - lo) / (up - lo)
    ll, lu, lv = math.log2(abs(lo)), math.log2(abs(up)), math.log2(abs(v))
    if v > 0:
        return (lv - ll) / (lu - ll)
    return 1 - (lv - lu) / (ll - lu)


def _infinite(upper_trim: bool, lo: float, up: float, count: float, x: float,
              ) -> tuple[float, float]:
    """Kept count and midpoint of a bucket with an infinite bound."""
    def finite(v: float) -> float:
        return 0.0 if math.isinf(v) else v

    if math.isinf(lo) and lo < 0:
        if upper_trim:
            if x >= up:
                return count, 0.0
            if x > 0 and up > 0 and not math.isinf(up):
                return count * x / up, x / 2
            if up <= 0:
                return count, x
            return 0.0, finite(up)
        if x <= lo:
            return count, 0.0
        if x >= 0 and up > x and not math.isinf(up):
            return count * (1 - x / up), (x + up) / 2
        return 0.0, finite(up)
    if upper_trim:
        return 0.0, finite(lo)
    if x >= lo:
        return count, x
    return 0.0, finite(lo)


def _bucket_trim(lo: float, up: float, count: float, x: float, upper_trim: bool, positive: bool,
                 linear: bool) -> tuple[float, float]:
    if math.isinf(lo) or math.isinf(up):
        return _infinite(upper_trim, lo, up, count, x)
    if x <= lo:
        under = 0.0
    elif x >= up:
        under = count
    else:
        under = count * _fraction_below(lo, up, x, linear)
    if upper_trim:
        return under, _midpoint(lo, x, positive, linear)
    return count - under, _midpoint(x, up, positive, linear)


def _zero_trim(h: FloatHistogram, x: float, has_neg: bool, has_pos: bool, upper_trim: bool,
               ) -> tuple[float, float]:
    lo, up = -h.zero_threshold, h.zero_threshold
    if has_neg and not has_pos:
        up = 0.0
    if has_pos and not has_neg:
        lo = 0.0
    if upper_trim:
        if x <= lo:
            return 0.0, 0.0
        if x >= up:
            return h.zero_count, (lo + up) / 2
        return h.zero_count * (x - lo) / (up - lo), (lo + x) / 2
    if x <= lo:
        return h.zero_count, (lo + up) / 2
    if x >= up:
        return 0.0, 0.0
    return h.zero_count * (up - x) / (up - lo), (x + up) / 2


def trim(h: FloatHistogram, x: float, upper_trim: bool) -> FloatHistogram:
    """``h </ x`` (``upper_trim``) or ``h >/ x``."""
    custom = h.is_custom
    cv = h.custom_values
    total = 0.0
    new_sum = 0.0
    changed = False
    seen = {True: False, False: False}
    sides: dict[bool, dict[int, float]] = {}
    for positive in (True, False):
        out: dict[int, float] = {}
        for i, c in h.buckets(positive):
            out[i] = c
            if c == 0:
                continue
            seen[positive] = True
            if positive:
                lo, up = bucket_lower(h.schema, i, cv), bucket_upper(h.schema, i, cv)
            else:
                lo, up = -bucket_upper(h.schema, i), -bucket_lower(h.schema, i)
            whole = up <= x if upper_trim else lo >= x
            partial = lo < x if upper_trim else up > x
            if whole:
                total += c
                new_sum += _midpoint(lo, up, positive, custom) * c
            elif partial:
                keep, mid = _bucket_trim(lo, up, c, x, upper_trim, positive, custom)
                total += keep
                new_sum += mid * keep
                if keep != c:
                    out[i] = keep
                    changed = True
            else:
                out[i] = 0.0
                changed = True
        sides[positive] = out
    zc = h.zero_count
    if zc > 0:
        keep, mid = _zero_trim(h, x, seen[False], seen[True], upper_trim)
        if keep != zc:
            zc = keep
            changed = True
        new_sum += mid * keep
        total += keep
    if not changed:
        return h
    return from_bucket_map(h.schema, sides[True], sides[False], count=total, sum=new_sum,
                           zero_count=zc, zero_threshold=h.zero_threshold, custom_values=cv,
                           counter_reset_hint=h.counter_reset_hint)
