"""Native histograms: the second sample value kind beside floats.

Two representations, as in Prometheus:

* :class:`Histogram` — the *integer* histogram of ingest (protobuf exposition, WAL, blocks):
  counts are ints and bucket lists hold **deltas** (each bucket relative to the previous one in
  its list; the first is absolute).
* :class:`FloatHistogram` — the *float* histogram of computation (the querier returns these,
  PromQL works on them, recording rules store them): bucket lists hold **absolute** float counts.

Both are immutable (frozen dataclasses of tuples, hashable). Buckets are sparse: ``*_spans`` is a
tuple of ``(offset, length)`` pairs; the first span's offset is the index of the first bucket,
each later offset the number of skipped (empty) indexes since the previous span's end; the span
lengths sum to the length of the bucket tuple. ``negative_*`` mirror ``positive_*`` for values
below zero.

Schemas: ``-4 … 8`` are the standard exponential schemas — positive bucket ``i`` is
``(2**2**-schema)**(i-1), (2**2**-schema)**i]`` (:func:`bucket_upper`); ``-53``
(:data:`CUSTOM_BUCKETS_SCHEMA`, NHCB) uses ``custom_values`` as the upper bounds: bucket ``i``
(positive list only) is ``(custom_values[i-1], custom_values[i]]`` with ``-Inf``/``+Inf`` at the
ends. The zero bucket ``[-zero_threshold, zero_threshold]`` holds ``zero_count`` observations.
``count`` counts all observations (it may exceed the bucket total by the NaN observations),
``sum`` sums them. ``counter_reset_hint`` is a :class:`CounterResetHint`.

Helpers: :meth:`FloatHistogram.buckets` iterates ``(index, count)`` pairs,
:func:`from_bucket_map` builds a histogram from ``{index: count}`` maps,
:meth:`FloatHistogram.reduce_resolution` merges buckets down to a lower schema,
:meth:`FloatHistogram.compact` drops empty buckets and merges spans, :meth:`~FloatHistogram.equals`
is Prometheus's semantic equality, ``str()`` is Prometheus's ``String()``
(``{count:3, sum:5, [-1,-0.5):1, [-0.001,0.001]:1, (0.5,1]:1}``), and
:mod:`promlab.model.histogram_text` reads and writes the test-script notation
``{{schema:0 count:3 sum:5 buckets:[1 2]}}``.
"""

from __future__ import annotations

import decimal
import functools
import itertools
import math
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum

from promlab.model.value import format_float_g

__all__ = [
    "CUSTOM_BUCKETS_SCHEMA",
    "MAX_SCHEMA",
    "MIN_SCHEMA",
    "CounterResetHint",
    "FloatHistogram",
    "Histogram",
    "HistogramError",
    "Span",
    "bucket_lower",
    "bucket_upper",
    "from_bucket_map",
    "spans_to_indexes",
]

CUSTOM_BUCKETS_SCHEMA = -53
MIN_SCHEMA, MAX_SCHEMA = -4, 8
Span = tuple[int, int]  # (offset, length)
_MAX_FLOAT = sys.float_info.max


class HistogramError(ValueError):
    """An invalid histogram (spans and buckets disagree, negative counts, unknown schema)."""


class CounterResetHint(IntEnum):
    """Prometheus's ``histogram.CounterResetHint`` (same numbers as its protobuf/WAL encoding)."""

    UNKNOWN = 0
    COUNTER_RESET = 1
    NOT_COUNTER_RESET = 2
    GAUGE = 3


def is_valid_schema(schema: int) -> bool:
    return schema == CUSTOM_BUCKETS_SCHEMA or MIN_SCHEMA <= schema <= MAX_SCHEMA


@functools.cache
def _fractions(schema: int) -> tuple[float, ...]:
    """``2**(j / 2**schema) / 2`` for ``j < 2**schema`` (schema > 0).

    Rounded to 16 significant digits first, as the constants of Prometheus's bounds table are
    written (``0.7071067811865475``, one ulp below the correctly rounded ``2**-0.5``), so that
    bucket bounds agree with Prometheus's to the bit.
    """
    ctx = decimal.Context(prec=40)
    n = 1 << schema
    return tuple(float(f"{ctx.power(decimal.Decimal(2), decimal.Decimal(j) / n) / 2:.16g}")
                 for j in range(n))


def bucket_upper(schema: int, index: int, custom_values: tuple[float, ...] = ()) -> float:
    """The upper (inclusive) bound of positive bucket ``index``.

    >>> bucket_upper(0, 1), bucket_upper(1, 1), bucket_upper(-1, 1), bucket_upper(0, -1)
    (2.0, 1.414213562373095, 4.0, 0.5)
    """
    if schema == CUSTOM_BUCKETS_SCHEMA:
        return custom_values[index] if index < len(custom_values) else math.inf
    if schema <= 0:
        exp = index << -schema
        if exp == 1024:
            return _MAX_FLOAT
        if exp > 1024:
            return math.inf
        return math.ldexp(1.0, exp)
    frac = _fractions(schema)[index & ((1 << schema) - 1)]
    exp = (index >> schema) + 1
    if frac == 0.5 and exp == 1025:
        return _MAX_FLOAT
    if exp > 1024:
        return math.inf
    return math.ldexp(frac, exp)


def bucket_lower(schema: int, index: int, custom_values: tuple[float, ...] = ()) -> float:
    """The lower (exclusive) bound of positive bucket ``index``."""
    if schema == CUSTOM_BUCKETS_SCHEMA:
        return -math.inf if index == 0 else custom_values[index - 1]
    upper = bucket_upper(schema, index - 1)
    return _MAX_FLOAT if math.isinf(upper) else upper


def spans_to_indexes(spans: tuple[Span, ...]) -> Iterator[int]:
    """The bucket indexes the spans cover, in order."""
    out: list[int] = []
    idx = 0
    for k, (offset, length) in enumerate(spans):
        idx = offset if k == 0 else idx + offset
        out.extend(range(idx, idx + length))  # one range per span: no Python step per bucket
        idx += max(length, 0)
    return iter(out)


def _spans_of(indexes: list[int]) -> tuple[Span, ...]:
    """Spans covering sorted distinct ``indexes`` exactly."""
    spans: list[list[int]] = []
    prev = 0
    for i in indexes:
        if spans and i == prev + 1:
            spans[-1][1] += 1
        else:
            spans.append([i if not spans else i - prev - 1, 1])
        prev = i
    return tuple((o, n) for o, n in spans)


def _is_compact(spans: tuple[Span, ...], counts: tuple[float, ...]) -> bool:
    """Whether ``spans``/``counts`` are as :func:`from_bucket_map` writes them (no empty bucket
    or span, no zero-length gap, float counts)."""
    return (0.0 not in counts and all(n > 0 for _, n in spans)
            and all(o > 0 for o, _ in spans[1:]) and all(type(c) is float for c in counts))


def _check_spans(spans: tuple[Span, ...], n: int, side: str) -> None:
    if sum(length for _, length in spans) != n:
        raise HistogramError(f"{side} spans cover {sum(ln for _, ln in spans)} buckets, {n} given")
    if any(length < 0 for _, length in spans) or any(o < 0 for o, _ in spans[1:]):
        raise HistogramError(f"{side} spans must have non-negative offsets after the first")


@dataclass(frozen=True, slots=True)
class FloatHistogram:
    """A native histogram with float counts and absolute bucket populations (see the module)."""

    schema: int = 0
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    count: float = 0.0
    sum: float = 0.0
    positive_spans: tuple[Span, ...] = ()
    positive_buckets: tuple[float, ...] = ()
    negative_spans: tuple[Span, ...] = ()
    negative_buckets: tuple[float, ...] = ()
    custom_values: tuple[float, ...] = ()
    counter_reset_hint: CounterResetHint = CounterResetHint.UNKNOWN

    # --- structure -------------------------------------------------------------------------
    @property
    def is_custom(self) -> bool:
        return self.schema == CUSTOM_BUCKETS_SCHEMA

    def buckets(self, positive: bool = True) -> Iterator[tuple[int, float]]:
        """``(index, count)`` of every bucket the spans list (empty ones included), ascending."""
        spans, counts = ((self.positive_spans, self.positive_buckets) if positive
                         else (self.negative_spans, self.negative_buckets))
        return zip(spans_to_indexes(spans), counts, strict=True)

    def validate(self) -> None:
        """Raise :class:`HistogramError` unless the histogram is storable (as Prometheus checks)."""
        if not is_valid_schema(self.schema):
            raise HistogramError(f"histogram has invalid schema {self.schema}")
        _check_spans(self.positive_spans, len(self.positive_buckets), "positive")
        _check_spans(self.negative_spans, len(self.negative_buckets), "negative")
        if self.is_custom:
            if self.negative_buckets or self.zero_count or self.zero_threshold:
                raise HistogramError("custom-bucket histogram has negative or zero buckets")
            cv = self.custom_values
            if any(b <= a for a, b in itertools.pairwise(cv)) or any(math.isnan(v) for v in cv):
                raise HistogramError("custom bucket bounds must be increasing")
            if any(i > len(cv) for i, _ in self.buckets()):
                raise HistogramError("custom-bucket histogram has a bucket beyond its bounds")
        elif self.custom_values:
            raise HistogramError("exponential histogram must not have custom values")
        total = self.zero_count + sum(self.positive_buckets) + sum(self.negative_buckets)
        if min((self.zero_count, *self.positive_buckets, *self.negative_buckets)) < 0:
            raise HistogramError("histogram has a negative bucket count")
        if not math.isnan(self.sum) and total > self.count * (1 + 1e-12) + 1e-9:
            raise HistogramError(f"histogram count {self.count} < bucket total {total}")

    # --- conversions -----------------------------------------------------------------------
    def is_integer(self) -> bool:
        """Whether every count is a whole number (so :meth:`to_int` is exact)."""
        vals = (self.count, self.zero_count, *self.positive_buckets, *self.negative_buckets)
        return all(math.isfinite(v) and v == int(v) and v >= 0 for v in vals)

    def to_int(self) -> Histogram:
        """The integer (delta-encoded) form; raises :class:`HistogramError` unless :meth:`is_integer`."""
        if not self.is_integer():
            raise HistogramError("histogram has non-integer counts")
        return Histogram(
            schema=self.schema, zero_threshold=self.zero_threshold, zero_count=int(self.zero_count),
            count=int(self.count), sum=self.sum, positive_spans=self.positive_spans,
            positive_buckets=_deltas(self.positive_buckets), negative_spans=self.negative_spans,
            negative_buckets=_deltas(self.negative_buckets), custom_values=self.custom_values,
            counter_reset_hint=self.counter_reset_hint)

    def to_float(self) -> FloatHistogram:
        return self

    def with_hint(self, hint: CounterResetHint) -> FloatHistogram:
        if hint is self.counter_reset_hint:
            return self
        return FloatHistogram(self.schema, self.zero_threshold, self.zero_count, self.count,
                              self.sum, self.positive_spans, self.positive_buckets,
                              self.negative_spans, self.negative_buckets, self.custom_values, hint)

    # --- resolution and compaction ---------------------------------------------------------
    def reduce_resolution(self, target_schema: int) -> FloatHistogram:
        """Merge buckets down to ``target_schema`` (<= ``schema``; exponential schemas only)."""
        if self.is_custom or target_schema == self.schema:
            return self
        if target_schema > self.schema:
            raise HistogramError(f"cannot increase resolution from schema {self.schema} to {target_schema}")
        delta = self.schema - target_schema

        def merged(positive: bool) -> dict[int, float]:
            out: dict[int, float] = {}
            for i, c in self.buckets(positive):
                k = ((i - 1) >> delta) + 1
                out[k] = out.get(k, 0.0) + c
            return out

        return from_bucket_map(
            target_schema, merged(True), merged(False), count=self.count, sum=self.sum,
            zero_count=self.zero_count, zero_threshold=self.zero_threshold,
            counter_reset_hint=self.counter_reset_hint, keep_empty=True)

    def compact(self) -> FloatHistogram:
        """Drop empty buckets and merge adjacent spans (Prometheus's ``Compact(0)``)."""
        if _is_compact(self.positive_spans, self.positive_buckets) and \
                _is_compact(self.negative_spans, self.negative_buckets) and \
                type(self.count) is float and type(self.zero_count) is float and \
                type(self.sum) is float and type(self.custom_values) is tuple:
            return self  # already as from_bucket_map would write it
        return from_bucket_map(
            self.schema, dict(self.buckets(True)), dict(self.buckets(False)), count=self.count,
            sum=self.sum, zero_count=self.zero_count, zero_threshold=self.zero_threshold,
            custom_values=self.custom_values, counter_reset_hint=self.counter_reset_hint)

    # --- comparison and text ---------------------------------------------------------------
    def equals(self, other: FloatHistogram | Histogram) -> bool:
        """Prometheus's ``Equals``: same schema, zero bucket, count, sum (NaN equals NaN, bitwise
        otherwise), custom values and the same populated-or-listed buckets (span layout may
        differ as long as it lists the same indexes)."""
        o = other.to_float()

        def same(a: float, b: float) -> bool:
            return (math.isnan(a) and math.isnan(b)) or a == b

        return (self.schema == o.schema and self.zero_threshold == o.zero_threshold
                and same(self.zero_count, o.zero_count) and same(self.count, o.count)
                and same(self.sum, o.sum) and self.custom_values == o.custom_values
                and list(self.buckets(True)) == list(o.buckets(True))
                and list(self.buckets(False)) == list(o.buckets(False)))

    def __str__(self) -> str:
        parts = [f"{{count:{format_float_g(self.count)}, sum:{format_float_g(self.sum)}"]
        cv = self.custom_values
        for i, c in reversed(list(self.buckets(False))):
            if c:
                lo, up = -bucket_upper(self.schema, i), -bucket_lower(self.schema, i)
                parts.append(f"[{format_float_g(lo)},{format_float_g(up)}):{format_float_g(c)}")
        if self.zero_count:
            z = self.zero_threshold
            parts.append(f"[{format_float_g(-z)},{format_float_g(z)}]:{format_float_g(self.zero_count)}")
        for i, c in self.buckets(True):
            if c:
                lo, up = bucket_lower(self.schema, i, cv), bucket_upper(self.schema, i, cv)
                parts.append(f"({format_float_g(lo)},{format_float_g(up)}]:{format_float_g(c)}")
        return ", ".join(parts) + "}"


def _deltas(counts: tuple[float, ...]) -> tuple[int, ...]:
    out: list[int] = []
    prev = 0
    for c in counts:
        out.append(int(c) - prev)
        prev = int(c)
    return tuple(out)


def _absolute(deltas: tuple[int, ...]) -> tuple[int, ...]:
    out: list[int] = []
    cur = 0
    for d in deltas:
        cur += d
        out.append(cur)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Histogram:
    """A native histogram with integer counts and **delta-encoded** buckets (see the module)."""

    schema: int = 0
    zero_threshold: float = 0.0
    zero_count: int = 0
    count: int = 0
    sum: float = 0.0
    positive_spans: tuple[Span, ...] = ()
    positive_buckets: tuple[int, ...] = ()
    negative_spans: tuple[Span, ...] = ()
    negative_buckets: tuple[int, ...] = ()
    custom_values: tuple[float, ...] = ()
    counter_reset_hint: CounterResetHint = CounterResetHint.UNKNOWN

    def to_float(self) -> FloatHistogram:
        """The float form with absolute counts (what queriers return)."""
        return FloatHistogram(
            schema=self.schema, zero_threshold=self.zero_threshold,
            zero_count=float(self.zero_count), count=float(self.count), sum=self.sum,
            positive_spans=self.positive_spans,
            positive_buckets=tuple(float(c) for c in _absolute(self.positive_buckets)),
            negative_spans=self.negative_spans,
            negative_buckets=tuple(float(c) for c in _absolute(self.negative_buckets)),
            custom_values=self.custom_values, counter_reset_hint=self.counter_reset_hint)

    def to_int(self) -> Histogram:
        return self

    def absolute_buckets(self, positive: bool = True) -> tuple[int, ...]:
        return _absolute(self.positive_buckets if positive else self.negative_buckets)

    def validate(self) -> None:
        if self.count < 0 or self.zero_count < 0:
            raise HistogramError("histogram has a negative count")
        self.to_float().validate()

    def equals(self, other: FloatHistogram | Histogram) -> bool:
        return self.to_float().equals(other)

    def __str__(self) -> str:
        return str(self.to_float())


def from_bucket_map(schema: int, positive: Mapping[int, float], negative: Mapping[int, float] = {},
                    *, count: float | None = None, sum: float = 0.0, zero_count: float = 0.0,
                    zero_threshold: float = 0.0, custom_values: tuple[float, ...] = (),
                    counter_reset_hint: CounterResetHint = CounterResetHint.UNKNOWN,
                    keep_empty: bool = False) -> FloatHistogram:
    """A :class:`FloatHistogram` from ``{bucket index: count}`` maps.

    Empty buckets are dropped unless ``keep_empty``; ``count`` defaults to the bucket total.

    >>> h = from_bucket_map(0, {1: 2.0, 3: 1.0, 0: 1.0}, sum=7.5)
    >>> h.positive_spans, h.positive_buckets, h.count
    (((0, 2), (1, 1)), (1.0, 2.0, 1.0), 4.0)
    """
    def side(m: Mapping[int, float]) -> tuple[tuple[Span, ...], tuple[float, ...]]:
        idx = sorted(m) if keep_empty else sorted([i for i, c in m.items() if c != 0])
        return _spans_of(idx), tuple(map(float, map(m.__getitem__, idx)))

    ps, pb = side(positive)
    ns, nb = side(negative)
    if count is None:
        count = zero_count + math.fsum(pb) + math.fsum(nb)
    return FloatHistogram(
        schema=schema, zero_threshold=zero_threshold, zero_count=float(zero_count),
        count=float(count), sum=float(sum), positive_spans=ps,
        positive_buckets=pb, negative_spans=ns, negative_buckets=nb,
        custom_values=tuple(custom_values), counter_reset_hint=counter_reset_hint)
