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


# --- storage hints (promqltest loader) and the incremental mean ----------------------------------
U, N, G, R = (CounterResetHint.UNKNOWN, CounterResetHint.NOT_COUNTER_RESET, CounterResetHint.GAUGE,
              CounterResetHint.COUNTER_RESET)


def _h(count: float, buckets: dict[int, float], *, hint: CounterResetHint = U, schema: int = 0,
       cv: tuple[float, ...] = ()) -> histops.FloatHistogram:
    return from_bucket_map(schema, buckets, count=count, sum=count, custom_values=cv,
                           counter_reset_hint=hint)


@pytest.mark.parametrize(("samples", "hints"), [
    pytest.param([_h(1, {0: 1}), _h(2, {0: 2}), _h(3, {0: 3})], [U, N, N], id="one-chunk"),
    pytest.param([_h(3, {0: 3}), _h(1, {0: 1}), _h(2, {0: 2})], [U, U, N], id="count-reset-cuts"),
    pytest.param([_h(1, {0: 1}), _h(2, {0: 1, 1: 1}), _h(2, {1: 2})], [U, N, U],
                 id="bucket-decrease-cuts"),
    pytest.param([_h(1, {0: 1}), _h(1, {0: 1}, schema=1)], [U, U], id="schema-change-cuts"),
    pytest.param([_h(1, {0: 1}, hint=G), _h(2, {0: 2}, hint=G), _h(3, {0: 3})], [G, G, U],
                 id="gauge-then-counter"),
    pytest.param([_h(1, {0: 1}), 5.0, _h(2, {0: 2})], [U, None, U], id="float-between"),
    pytest.param([_h(1, {0: 1}), _h(2, {0: 2}, hint=R)], [U, U], id="explicit-reset"),
    pytest.param([_h(1, {0: 1}, schema=CUSTOM_BUCKETS_SCHEMA, cv=(5.0,)),
                  _h(1, {0: 1}, schema=CUSTOM_BUCKETS_SCHEMA, cv=(5.0, 10.0))], [U, U],
                 id="custom-bounds-change-cuts"),
])
def test_storage_hints(samples: list, hints: list) -> None:  # type: ignore[type-arg]
    from promlab.promql.promqltest.hints import storage_hints

    got = storage_hints(list(range(0, 60_000 * len(samples), 60_000)), samples)
    assert [getattr(x, "counter_reset_hint", None) for x in got] == hints


def test_storage_hints_cut_at_chunk_range() -> None:
    from promlab.promql.promqltest.hints import CHUNK_RANGE_MS, storage_hints

    got = storage_hints([CHUNK_RANGE_MS - 1, CHUNK_RANGE_MS], [_h(1, {0: 1}), _h(2, {0: 2})])
    assert [x.counter_reset_hint for x in got] == [U, U]  # type: ignore[union-attr]


def test_mean_switches_to_incremental_on_overflow() -> None:
    big = _h(1e308, {0: 1e308})
    s = histops.KahanSum(big, mean=True)
    s.add(big)
    s.add(big)
    assert s.incremental
    got = s.result(float(s.n))
    assert got.count == pytest.approx(1e308) and math.isfinite(got.count)
    plain = histops.KahanSum(big)
    plain.add(big)
    assert math.isinf(plain.result(2.0).count)


@pytest.mark.parametrize(("d", "count", "buckets"), [
    pytest.param(0.0, math.inf, [], id="by-zero-drops-buckets"),
    pytest.param(-2.0, -1.0, [(0, -0.5), (1, -0.5)], id="negative"),
])
def test_div(d: float, count: float, buckets: list[tuple[int, float]]) -> None:
    got = histops.div(_h(2, {0: 1, 1: 1}), d)
    assert got.count == count and list(got.buckets(True)) == buckets
    assert (got.counter_reset_hint == G) == (d < 0)
