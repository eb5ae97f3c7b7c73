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

import dataclasses
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from promlab.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    CounterResetHint,
    FloatHistogram,
    bucket_lower,
    bucket_upper,
    from_bucket_map,
    spans_to_indexes,
)

__all__ = [
    "Combine",
    "IncompatibleSchemas",
    "KahanSum",
    "add",
    "adjust_hint",
    "detect_reset",
    "mul",
    "neg",
    "sub",
    "sub_compacted",
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
    if delta <= 0:  # the same schema: only the map (0.0 + c: -0.0 counts added as below)
        return {i: 0.0 + c for i, c in h.buckets(positive)}
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
    elif a.schema == b.schema and a.zero_threshold == b.zero_threshold and \
            a.positive_spans == b.positive_spans and a.negative_spans == b.negative_spans and \
            _canonical(a.positive_spans) and _canonical(a.negative_spans):
        # One layout on both sides: bucket-by-bucket arithmetic, as the general path computes.
        out = FloatHistogram(
            schema=a.schema, zero_threshold=a.zero_threshold,
            zero_count=float(a.zero_count + sign * b.zero_count),
            count=float(a.count + sign * b.count), sum=float(a.sum + sign * b.sum),
            positive_spans=a.positive_spans,
            positive_buckets=tuple(float(x + sign * y)
                                   for x, y in zip(a.positive_buckets, b.positive_buckets, strict=True)),
            negative_spans=a.negative_spans,
            negative_buckets=tuple(float(x + sign * y)
                                   for x, y in zip(a.negative_buckets, b.negative_buckets, strict=True)))
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


def _canonical(spans: tuple[tuple[int, int], ...]) -> bool:
    """Whether ``spans`` are as ``from_bucket_map`` writes them (no empty span, gaps between)."""
    return all(n > 0 for _, n in spans) and all(o > 0 for o, _ in spans[1:])


def add(a: FloatHistogram, b: FloatHistogram, note: Combine | None = None) -> FloatHistogram:
    """``a + b`` (hint: GAUGE unless both agree, as Prometheus's ``Add``)."""
    out = _combine(a, b, 1.0, note or Combine())
    return out.with_hint(_sum_hint(a, b))


def sub(a: FloatHistogram, b: FloatHistogram, note: Combine | None = None) -> FloatHistogram:
    """``a - b``; the result is a gauge histogram."""
    return _combine(a, b, -1.0, note or Combine()).with_hint(CounterResetHint.GAUGE)


def _diff_map(a: FloatHistogram, b: FloatHistogram, positive: bool) -> dict[int, float]:
    m = dict(a.buckets(positive))
    for i, c in b.buckets(positive):
        m[i] = m.get(i, 0.0) - c
    return m


def sub_compacted(a: FloatHistogram, b: FloatHistogram) -> FloatHistogram:
    """``sub(a, b).compact()`` for two exponential histograms of one schema and zero threshold
    (the caller checks): the same buckets and counts without the intermediate histogram (a
    bucket's difference is ``x - y`` on both routes; only zeros, which compaction drops, could
    differ in sign)."""
    if a.positive_spans == b.positive_spans and a.negative_spans == b.negative_spans and \
            _canonical(a.positive_spans) and _canonical(a.negative_spans):
        pb = tuple(map(operator.sub, a.positive_buckets, b.positive_buckets))
        nb = tuple(map(operator.sub, a.negative_buckets, b.negative_buckets))
        if 0.0 not in pb and 0.0 not in nb:
            return FloatHistogram(
                schema=a.schema, zero_threshold=a.zero_threshold,
                zero_count=float(a.zero_count - b.zero_count), count=float(a.count - b.count),
                sum=float(a.sum - b.sum), positive_spans=a.positive_spans, positive_buckets=pb,
                negative_spans=a.negative_spans, negative_buckets=nb,
                counter_reset_hint=CounterResetHint.GAUGE)
    return from_bucket_map(a.schema, _diff_map(a, b, True), _diff_map(a, b, False),
                           count=a.count - b.count, sum=a.sum - b.sum,
                           zero_count=a.zero_count - b.zero_count, zero_threshold=a.zero_threshold,
                           counter_reset_hint=CounterResetHint.GAUGE)


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
        custom_values=h.custom_values,
        counter_reset_hint=CounterResetHint.GAUGE if f < 0 else h.counter_reset_hint)


def div(h: FloatHistogram, d: float) -> FloatHistogram:
    """Every count and the sum divided by ``d`` as Go divides floats (``x/0`` is ±Inf or NaN);
    dividing by zero removes the buckets, a negative ``d`` makes a gauge (Prometheus's Div)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.array([h.zero_count, h.count, h.sum], np.float64) / np.float64(d)
    zc, cnt, sm = (float(x) for x in q)
    if d == 0:
        return FloatHistogram(schema=h.schema, zero_threshold=h.zero_threshold, zero_count=zc,
                              count=cnt, sum=sm, custom_values=h.custom_values,
                              counter_reset_hint=h.counter_reset_hint)
    out = _div(h, d)
    return out.with_hint(CounterResetHint.GAUGE) if d < 0 else out


def _div(h: FloatHistogram, d: float) -> FloatHistogram:
    return dataclasses.replace(
        h, zero_count=h.zero_count / d, count=h.count / d, sum=h.sum / d,
        positive_buckets=tuple(c / d for c in h.positive_buckets),
        negative_buckets=tuple(c / d for c in h.negative_buckets))


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
        if cur.custom_values == prev.custom_values:
            return _side_dropped(cur, prev, True)
        # Mismatched bounds: compare the buckets both reconcile to.
        common = tuple(sorted(set(cur.custom_values) & set(prev.custom_values)))
        rc = _rebucket(cur, common)
        return any(c > rc.get(i, 0.0) for i, c in _rebucket(prev, common).items())
    if cur.schema > prev.schema:
        return True
    if cur.zero_threshold < prev.zero_threshold:
        return True
    if cur.schema == prev.schema and cur.zero_threshold == prev.zero_threshold:
        # The common case: the same layout rules, so no bucket merging or zero widening.
        return cur.zero_count < prev.zero_count or _side_dropped(cur, prev, True) or \
            _side_dropped(cur, prev, False)
    ppos, pneg, pz = _widen_zero(prev, cur.schema, cur.zero_threshold)
    if _zero_threshold_for(prev, cur, cur.schema) != cur.zero_threshold:
        return True
    if cur.zero_count < pz:
        return True
    cpos, cneg = _side(cur, True, cur.schema), _side(cur, False, cur.schema)
    return any(c > cpos.get(i, 0.0) for i, c in ppos.items()) or \
        any(c > cneg.get(i, 0.0) for i, c in pneg.items())


def _side_dropped(cur: FloatHistogram, prev: FloatHistogram, positive: bool) -> bool:
    """Whether a bucket of ``prev`` on one side holds more than the same bucket of ``cur``
    (both of one schema; a bucket ``cur`` lacks counts as empty)."""
    cs, cb = (cur.positive_spans, cur.positive_buckets) if positive else \
        (cur.negative_spans, cur.negative_buckets)
    ps, pb = (prev.positive_spans, prev.positive_buckets) if positive else \
        (prev.negative_spans, prev.negative_buckets)
    if cs == ps:
        return any(map(operator.gt, pb, cb))
    have = dict(zip(spans_to_indexes(cs), cb, strict=True))
    return any(c > have.get(i, 0.0) for i, c in zip(spans_to_indexes(ps), pb, strict=True))


def kahan_inc(inc: float, s: float, c: float) -> tuple[float, float]:
    """Neumaier-compensated ``s + inc`` (Prometheus's ``kahansum.Inc``) on Python floats."""
    t = s + inc
    if math.isinf(t):
        return t, 0.0
    if abs(s) >= abs(inc):
        return t, c + ((s - t) + inc)
    return t, c + ((inc - t) + s)


_kinc = kahan_inc


def _merge_map(m: dict[int, float], comp: dict[int, float], delta: int,
               ) -> tuple[dict[int, float], dict[int, float]]:
    """Buckets and compensations of ``m`` merged ``delta`` schemas down."""
    out: dict[int, float] = {}
    oc: dict[int, float] = {}
    for i in sorted(m):
        k = ((i - 1) >> delta) + 1
        out[k], oc[k] = _kinc(m[i], out.get(k, 0.0), oc.get(k, 0.0) + comp.get(i, 0.0))
    return out, oc


def _rebucket_map(m: dict[int, float], cv: tuple[float, ...], bounds: tuple[float, ...],
                  ) -> dict[int, float]:
    out: dict[int, float] = {}
    for i, c in m.items():
        upper = cv[i] if i < len(cv) else math.inf
        k = next((j for j, b in enumerate(bounds) if upper <= b), len(bounds))
        out[k] = out.get(k, 0.0) + c
    return out


def adjust_hint(a: CounterResetHint, b: CounterResetHint) -> tuple[CounterResetHint, bool]:
    """The counter-reset hint of ``a + b`` and whether the two collided (reset vs not reset),
    as Prometheus's ``adjustCounterReset``."""
    if a == b or a == CounterResetHint.GAUGE:
        return a, False
    if b == CounterResetHint.GAUGE:
        return b, False
    if CounterResetHint.UNKNOWN in (a, b):
        return CounterResetHint.UNKNOWN, False
    return CounterResetHint.UNKNOWN, True


class KahanSum:
    """A Kahan-compensated running sum of histograms (Prometheus's ``KahanAdd``), for ``sum``,
    ``avg`` and ``sum_over_time``/``avg_over_time``.

    :meth:`add` raises :class:`IncompatibleSchemas` when an exponential and a custom-bucket
    histogram meet. ``reconciled`` (custom bounds intersected), ``reset_seen`` and
    ``not_reset_seen`` (hints of the inputs) are read by the caller for its annotations.
    """

    def __init__(self, first: FloatHistogram, *, mean: bool = False) -> None:
        # ``mean``: an average is wanted; once the running sum overflows, it switches to an
        # incremental mean (Prometheus's avg), kept in the same fields.
        self.mean = mean
        self.incremental = False
        self.custom = first.is_custom
        self.schema = first.schema
        self.zt = first.zero_threshold
        self.cv = first.custom_values
        self.pos = dict(first.buckets(True))
        self.neg = dict(first.buckets(False))
        self.cpos: dict[int, float] = {}
        self.cneg: dict[int, float] = {}
        self.zc, self.czc = first.zero_count, 0.0
        self.count, self.ccount = first.count, 0.0
        self.sum, self.csum = first.sum, 0.0
        self.hint = first.counter_reset_hint
        self.n = 1
        self.reconciled = False
        self.reset_seen = self.hint == CounterResetHint.COUNTER_RESET
        self.not_reset_seen = self.hint == CounterResetHint.NOT_COUNTER_RESET

    @property
    def hint_conflict(self) -> bool:
        return self.reset_seen and self.not_reset_seen

    def add(self, h: FloatHistogram) -> None:
        if h.is_custom != self.custom:
            raise IncompatibleSchemas()
        if not self.mean:
            self._add(h)
            return
        if not self.incremental:
            saved = self._state()
            self._add(h)
            if not self._overflow():
                return
            self._restore(saved)
            self._scale(lambda x: x / self.n)
            self.incremental = True
        n = self.n + 1
        q = (n - 1) / n
        self._scale(lambda x: x * q)
        self._add(_div(h, n))

    _FIELDS = ("schema", "zt", "cv", "pos", "neg", "cpos", "cneg", "zc", "czc", "count",
               "ccount", "sum", "csum", "hint", "n", "reconciled", "reset_seen", "not_reset_seen")

    def _state(self) -> tuple[object, ...]:
        return tuple(dict(v) if isinstance(v, dict) else v
                     for v in (getattr(self, f) for f in self._FIELDS))

    def _restore(self, state: tuple[object, ...]) -> None:
        for f, v in zip(self._FIELDS, state, strict=True):
            setattr(self, f, v)

    def _overflow(self) -> bool:
        return any(math.isinf(x) for x in (self.count, self.sum, self.zc)) or \
            any(math.isinf(x) for m in (self.pos, self.neg) for x in m.values())

    def _scale(self, f: Callable[[float], float]) -> None:
        for m in (self.pos, self.neg, self.cpos, self.cneg):
            for i in m:
                m[i] = f(m[i])
        self.zc, self.czc = f(self.zc), f(self.czc)
        self.count, self.ccount = f(self.count), f(self.ccount)
        self.sum, self.csum = f(self.sum), f(self.csum)

    def _add(self, h: FloatHistogram) -> None:
        self.n += 1
        self.reset_seen |= h.counter_reset_hint == CounterResetHint.COUNTER_RESET
        self.not_reset_seen |= h.counter_reset_hint == CounterResetHint.NOT_COUNTER_RESET
        self.hint = adjust_hint(self.hint, h.counter_reset_hint)[0]
        self.count, self.ccount = _kinc(h.count, self.count, self.ccount)
        self.sum, self.csum = _kinc(h.sum, self.sum, self.csum)
        if self.custom:
            if h.custom_values == self.cv:
                other = dict(h.buckets(True))
            else:
                self.reconciled = True
                common = tuple(sorted(set(self.cv) & set(h.custom_values)))
                self.pos = _rebucket_map(self.pos, self.cv, common)
                self.cpos = _rebucket_map(self.cpos, self.cv, common)
                other = _rebucket(h, common)
                self.cv = common
            self._add_side(self.pos, self.cpos, other)
            return
        if h.schema < self.schema:
            delta = self.schema - h.schema
            self.pos, self.cpos = _merge_map(self.pos, self.cpos, delta)
            self.neg, self.cneg = _merge_map(self.neg, self.cneg, delta)
            self.schema = h.schema
        opos, oneg = _side(h, True, self.schema), _side(h, False, self.schema)
        ozc = h.zero_count
        if h.zero_threshold != self.zt:
            t = _zero_threshold_for(self._snapshot(), h, self.schema)
            if t > self.zt:
                for m, cm in ((self.pos, self.cpos), (self.neg, self.cneg)):
                    for i in [i for i in m if bucket_upper(self.schema, i) <= t]:
                        self.zc, self.czc = _kinc(m.pop(i), self.zc, self.czc)
                        self.czc += cm.pop(i, 0.0)
                self.zt = t
            if t > h.zero_threshold:
                for m in (opos, oneg):
                    for i in [i for i in m if bucket_upper(self.schema, i) <= t]:
                        ozc += m.pop(i)
        self.zc, self.czc = _kinc(ozc, self.zc, self.czc)
        self._add_side(self.pos, self.cpos, opos)
        self._add_side(self.neg, self.cneg, oneg)

    @staticmethod
    def _add_side(m: dict[int, float], cm: dict[int, float], other: dict[int, float]) -> None:
        # kahan_inc inlined: this loop runs once per bucket of every summed histogram.
        isinf = math.isinf
        for i, inc in other.items():
            s = m.get(i, 0.0)
            c = cm.get(i, 0.0)
            t = s + inc
            if isinf(t):
                m[i], cm[i] = t, 0.0
            elif abs(s) >= abs(inc):
                m[i], cm[i] = t, c + ((s - t) + inc)
            else:
                m[i], cm[i] = t, c + ((inc - t) + s)

    def _snapshot(self) -> FloatHistogram:
        return from_bucket_map(self.schema, self.pos, self.neg, count=self.count, sum=self.sum,
                               zero_count=self.zc, zero_threshold=self.zt, keep_empty=True)

    def result(self, divisor: float = 1.0) -> FloatHistogram:
        """The (compensated) sum divided by ``divisor`` (the mean itself once incremental)."""
        d = 1.0 if self.incremental else divisor

        def fix(m: dict[int, float], cm: dict[int, float]) -> dict[int, float]:
            return {i: v / d + cm.get(i, 0.0) / d for i, v in m.items()}

        return from_bucket_map(
            self.schema, fix(self.pos, self.cpos), fix(self.neg, self.cneg),
            count=self.count / d + self.ccount / d, sum=self.sum / d + self.csum / d,
            zero_count=self.zc / d + self.czc / d, zero_threshold=self.zt,
            custom_values=self.cv, counter_reset_hint=self.hint)
