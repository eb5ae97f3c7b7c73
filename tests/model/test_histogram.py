"""Native histogram model: bounds, conversions, reduction, compaction, text forms."""

from __future__ import annotations

import math

import pytest

from promlab.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    Histogram,
    HistogramError,
    bucket_lower,
    bucket_upper,
    from_bucket_map,
)
from promlab.model.histogram_text import format_histogram_text, parse_histogram_text

BOUNDS = [
    (0, 0, 1.0), (0, 1, 2.0), (0, -1, 0.5), (1, 1, 1.414213562373095), (1, 2, 2.0), (-1, 1, 4.0),
    (-4, 1, 65536.0), (3, 1, 2 ** (1 / 8)), (8, 256, 2.0), (0, 1024, 1.7976931348623157e308),
    (0, 1025, math.inf), (2, 4096, 1.7976931348623157e308),
]


@pytest.mark.parametrize(("schema", "index", "upper"), BOUNDS, ids=[f"s{s}i{i}" for s, i, _ in BOUNDS])
def test_bucket_upper(schema: int, index: int, upper: float) -> None:
    assert bucket_upper(schema, index) == upper


def test_custom_bounds() -> None:
    cv = (1.0, 5.0)
    assert [bucket_lower(-53, i, cv) for i in range(3)] == [-math.inf, 1.0, 5.0]
    assert [bucket_upper(-53, i, cv) for i in range(3)] == [1.0, 5.0, math.inf]


STRINGS = [
    ("{{schema:0 count:5 sum:3 z_bucket:1 z_bucket_w:0.001 buckets:[1 2] n_buckets:[1]}}",
     "{count:5, sum:3, [-1,-0.5):1, [-0.001,0.001]:1, (0.5,1]:1, (1,2]:2}"),
    ("{{schema:1 count:3 sum:4 buckets:[1 0 2] offset:-1}}",
     "{count:3, sum:4, (0.5,0.7071067811865475]:1, (1,1.414213562373095]:2}"),
    ("{{schema:-53 count:3 sum:3 custom_values:[1 5] buckets:[1 1 1]}}",
     "{count:3, sum:3, (-Inf,1]:1, (1,5]:1, (5,+Inf]:1}"),
]


@pytest.mark.parametrize(("text", "expected"), STRINGS, ids=["exp", "offset", "nhcb"])
def test_string_form(text: str, expected: str) -> None:
    assert str(parse_histogram_text(text)) == expected


ROUND_TRIPS = [
    "{{count:3 offset:-1 buckets:[1 0 2]}}",
    "{{schema:-53 count:3 sum:3 custom_values:[1 5] offset:0 buckets:[1 1 1]}}",
    "{{schema:2 count:9 sum:-1.5 z_bucket:2 z_bucket_w:0.01 counter_reset_hint:gauge offset:3 "
    "buckets:[1 2] n_offset:-2 n_buckets:[4]}}",
]


@pytest.mark.parametrize("text", ROUND_TRIPS, ids=["plain", "nhcb", "full"])
def test_text_round_trip(text: str) -> None:
    h = parse_histogram_text(text)
    assert format_histogram_text(h) == text
    assert parse_histogram_text(format_histogram_text(h)) == h


BAD = ["{schema:0}", "{{schema:x}}", "{{count:1 count:2}}", "{{foo:1}}", "{{buckets:1}}",
       "{{counter_reset_hint:maybe}}"]


@pytest.mark.parametrize("text", BAD, ids=["braces", "schema", "dup", "key", "list", "hint"])
def test_text_errors(text: str) -> None:
    with pytest.raises(HistogramError):
        parse_histogram_text(text)


def test_int_float_conversion() -> None:
    h = Histogram(schema=0, count=8, sum=10.0, zero_count=1, positive_spans=((0, 2), (2, 1)),
                  positive_buckets=(2, 1, -2), negative_spans=((1, 1),), negative_buckets=(1,),
                  counter_reset_hint=CounterResetHint.NOT_COUNTER_RESET)
    f = h.to_float()
    assert f.positive_buckets == (2.0, 3.0, 1.0)
    assert list(f.buckets()) == [(0, 2.0), (1, 3.0), (4, 1.0)]
    assert f.to_int() == h
    f.validate()
    assert h.equals(f) and str(h) == str(f)
    with pytest.raises(HistogramError):
        FloatHistogram(count=1, positive_spans=((0, 1),), positive_buckets=(0.5,)).to_int()


def test_reduce_resolution() -> None:
    h = from_bucket_map(2, {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 5.0, -3: 1.0}, sum=1.0)
    r = h.reduce_resolution(0)
    # schema 2 -> 0: four buckets merge into one; index i -> ((i - 1) >> 2) + 1
    assert dict(r.buckets()) == {0: 1.0, 1: 10.0, 2: 5.0}
    assert r.count == h.count and r.schema == 0
    with pytest.raises(HistogramError):
        r.reduce_resolution(1)


def test_compact_and_equals() -> None:
    a = FloatHistogram(count=3, positive_spans=((0, 2), (0, 2)), positive_buckets=(1, 0, 0, 2))
    c = a.compact()
    assert c.positive_spans == ((0, 1), (2, 1)) and c.positive_buckets == (1.0, 2.0)
    assert a.equals(FloatHistogram(count=3, positive_spans=((0, 4),), positive_buckets=(1, 0, 0, 2)))
    assert not a.equals(c)  # listed empty buckets count, as in Prometheus's Equals
    assert FloatHistogram(sum=math.nan).equals(FloatHistogram(sum=math.nan))


INVALID = [
    FloatHistogram(schema=9),
    FloatHistogram(count=1, positive_spans=((0, 2),), positive_buckets=(1.0,)),
    FloatHistogram(count=1, positive_spans=((0, 1),), positive_buckets=(-1.0,)),
    FloatHistogram(count=1, positive_spans=((0, 1),), positive_buckets=(2.0,)),
    FloatHistogram(schema=-53, custom_values=(2.0, 1.0)),
    FloatHistogram(schema=-53, custom_values=(1.0,), count=1, positive_spans=((2, 1),),
                   positive_buckets=(1.0,)),
]


@pytest.mark.parametrize("h", INVALID, ids=["schema", "spans", "negative", "count", "cv-order",
                                            "cv-range"])
def test_validate(h: FloatHistogram) -> None:
    with pytest.raises(HistogramError):
        h.validate()
