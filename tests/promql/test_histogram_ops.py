"""Histogram arithmetic helpers of the evaluator: the trim operators and the Kahan sum."""

from __future__ import annotations

import math

import pytest

from promlab.model.histogram import CUSTOM_BUCKETS_SCHEMA, CounterResetHint, from_bucket_map
from promlab.promql.eval import histops
from promlab.promql.eval.histtrim import trim

# Custom buckets (-Inf,0], (0,10], (10,20], (20,+Inf] holding 0, 4, 6, 0 observations.
NHCB = from_bucket_map(CUSTOM_BUCKETS_SCHEMA, {1: 4.0, 2: 6.0}, count=10, sum=120,
                       custom_values=(0.0, 10.0, 20.0))


@pytest.mark.parametrize(("x", "upper", "count", "total_sum"), [
    pytest.param(15.0, True, 7.0, 4 * 5 + 3 * 12.5, id="upper-mid-bucket"),
    pytest.param(15.0, False, 3.0, 3 * 17.5, id="lower-mid-bucket"),
    pytest.param(10.0, True, 4.0, 4 * 5, id="upper-on-bound"),
    pytest.param(30.0, True, 10.0, 120.0, id="upper-keeps-all"),
    pytest.param(-5.0, False, 10.0, 120.0, id="lower-keeps-all"),
    pytest.param(25.0, False, 0.0, 0.0, id="lower-drops-all"),
])
def test_trim_custom_buckets(x: float, upper: bool, count: float, total_sum: float) -> None:
    got = trim(NHCB, x, upper)
    assert got.count == pytest.approx(count)
    assert got.sum == pytest.approx(total_sum)
    assert sum(c for _, c in got.buckets(True)) == pytest.approx(count)


def test_trim_exponential_interpolates_log_linearly() -> None:
    h = from_bucket_map(0, {2: 4.0}, count=4, sum=12)          # bucket (2, 4]
    got = trim(h, math.sqrt(8), True)                          # half-way on a log scale
    assert got.count == pytest.approx(2.0)
    assert got.sum == pytest.approx(2.0 * math.sqrt(2 * math.sqrt(8)))


def test_kahan_sum_reduces_schema_and_reconciles_bounds() -> None:
    a = from_bucket_map(1, {1: 1.0, 2: 1.0}, count=2, sum=3)   # schema 1: (1,√2], (√2,2]
    b = from_bucket_map(0, {1: 1.0}, count=1, sum=1.5)         # schema 0: (1,2]
    s = histops.KahanSum(a)
    s.add(b)
    got = s.result()
    assert (got.schema, got.count, got.sum, dict(got.buckets(True))) == (0, 3.0, 4.5, {1: 3.0})
    assert s.result(3.0).count == pytest.approx(1.0)
    c1 = from_bucket_map(CUSTOM_BUCKETS_SCHEMA, {0: 1.0, 1: 2.0}, custom_values=(5.0, 10.0))
    c2 = from_bucket_map(CUSTOM_BUCKETS_SCHEMA, {0: 1.0}, custom_values=(10.0,))
    s = histops.KahanSum(c1)
    s.add(c2)
    assert s.reconciled and s.result().custom_values == (10.0,)
    assert dict(s.result().buckets(True)) == {0: 4.0}
    with pytest.raises(histops.IncompatibleSchemas):
        s.add(a)


@pytest.mark.parametrize(("a", "b", "hint", "collision"), [
    pytest.param(CounterResetHint.NOT_COUNTER_RESET, CounterResetHint.NOT_COUNTER_RESET,
                 CounterResetHint.NOT_COUNTER_RESET, False, id="same"),
    pytest.param(CounterResetHint.COUNTER_RESET, CounterResetHint.NOT_COUNTER_RESET,
                 CounterResetHint.UNKNOWN, True, id="collision"),
    pytest.param(CounterResetHint.COUNTER_RESET, CounterResetHint.GAUGE,
                 CounterResetHint.GAUGE, False, id="gauge-wins"),
    pytest.param(CounterResetHint.UNKNOWN, CounterResetHint.NOT_COUNTER_RESET,
                 CounterResetHint.UNKNOWN, False, id="unknown"),
])
def test_adjust_hint(a: CounterResetHint, b: CounterResetHint, hint: CounterResetHint,
                     collision: bool) -> None:
    assert histops.adjust_hint(a, b) == (hint, collision)
