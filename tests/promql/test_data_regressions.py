"""Regressions the data-side differential test (test_differential_data.py) found, pinned
without Prometheus (expected values are 2.42's answers or its reference formulas)."""

from __future__ import annotations

import math

import pytest

from promlab.model import Labels
from promlab.storage import MemoryStorage
from tests.promql.test_differential_data import promlab_answer, rate_of

# A gauge that starts at 1e300 and then falls and rises: each fall counts as a counter reset.
# Prometheus adds the pre-reset values to last - first one by one, so 1e300 cancels first and
# the small drops survive; a separate sum of the drops (1e300 + small = 1e300) lost them: 0.
HUGE_DROPS = [1e300, 159443.61, 501099.693, -674715.824, -1177973.678, -867298.259, 281968.56,
              -1125420.001, 641696.218, -895537.608, -403655.811, 283122.47, -1147144.843,
              -2029575.274]
HUGE_DROPS_TS = [1699999230379, 1699999275449, 1699999320205, 1699999365966, 1699999410343,
                 1699999455664, 1699999500138, 1699999545701, 1699999590862, 1699999635886,
                 1699999680797, 1699999725173, 1699999770072, 1699999815408]  # seed 5's


@pytest.fixture
def huge_drops() -> MemoryStorage:
    store = MemoryStorage()
    store.add_series(Labels({"__name__": "g"}), HUGE_DROPS_TS, HUGE_DROPS)
    return store


@pytest.mark.parametrize(("expr", "want"), [
    pytest.param("increase(g[10m])", "-116890.33466717048", id="increase"),
    pytest.param("rate(g[10m])", str(-116890.33466717048 / 600), id="rate"),
])
def test_reset_drops_added_in_order(huge_drops: MemoryStorage, expr: str, want: str) -> None:
    _, res = promlab_answer(huge_drops, expr, "1699999830")  # 2.42 gave these answers
    assert math.isclose(float(res[0][1][0][1]), float(want), rel_tol=1e-12)


# Many steps, two resets in a few windows only (the path that visits the windows of each reset).
RARE_DROPS = [(1699999200000 + 15_000 * k, v) for k, v in enumerate(
    [5e299 + 1e299 * k for k in range(40)] + [7.0, 9.5, 1.25] + [3.0 + k for k in range(157)])]


@pytest.mark.parametrize(("samples", "when"), [
    pytest.param(list(zip(HUGE_DROPS_TS, HUGE_DROPS, strict=True)),
                 (1699999530, 1699999890, 15), id="many-drops"),
    pytest.param(RARE_DROPS, (1699999500, 1700002200, 5), id="rare-drops"),
])
def test_reset_drops_added_in_order_every_step(samples: list[tuple[int, float]],
                                               when: tuple[int, int, int]) -> None:
    """A range query (each step's window has its own run of drops) agrees with the reference
    formula, which adds the drops in order, at every step."""
    store = MemoryStorage()
    store.add_series(Labels({"__name__": "g"}), [t for t, _ in samples], [v for _, v in samples])
    _, res = promlab_answer(store, "increase(g[10m])", when)
    assert res
    for t, v in res[0][1]:
        end = int(t) * 1000
        window = [(ts, x) for ts, x in samples if end - 600_000 < ts <= end]
        ref = rate_of(window, end - 600_000, end, 600, fn="increase", v3=True)
        assert ref is not None and math.isclose(float(v), ref, rel_tol=1e-9, abs_tol=1e-6), t


NEAR_MAX = [1e308, -7e307, 1.0, 2.0, -3e307, 5.0]  # the absolute values sum to 1.7e308


@pytest.mark.parametrize("fn", ["sum_over_time", "avg_over_time"])
@pytest.mark.parametrize("when", ["1699999250", (1699999200, 1699999300, 10)], ids=["instant",
                                                                                    "range"])
def test_window_sums_near_float_max(fn: str, when: str | tuple[int, int, int]) -> None:
    """Samples whose absolute values sum to nearly the largest float: the exact-sum grid
    overflowed (an OverflowError out of the engine); now the sums are exact as Kahan's."""
    store = MemoryStorage()
    ts = [1699999200000 + 15_000 * k for k in range(len(NEAR_MAX))]
    store.add_series(Labels({"__name__": "g"}), ts, NEAR_MAX)
    _, res = promlab_answer(store, f"{fn}(g[40s])", when)
    assert res and res[0][1]
    for t, v in res[0][1]:
        window = [x for s, x in zip(ts, NEAR_MAX, strict=True) if t * 1000 - 40_000 < s <= t * 1000]
        want = math.fsum(window) / (len(window) if fn == "avg_over_time" else 1)
        assert math.isclose(float(v), want, rel_tol=1e-15), (t, v, want)


@pytest.mark.parametrize(("expr", "want"), [
    # Go's amd64 math.Log reads a subnormal's exponent as -1022 without normalising it (values
    # from Prometheus 2.42 on amd64).
    pytest.param("ln(vector(5e-324))", "-709.0895657128241", id="ln-smallest-subnormal"),
    pytest.param("ln(vector(2.5e-310))", "-709.0783927810453", id="ln-subnormal"),
    pytest.param("ln(vector(1e-315))", "-709.0895656678817", id="ln-subnormal-low-half"),
    pytest.param("log10(vector(5e-324))", "-307.9536855642528", id="log10-subnormal"),
    pytest.param("log10(vector(2.5e-310))", "-307.9488332216346", id="log10-subnormal-2"),
    pytest.param("log2(vector(5e-324))", "-1074", id="log2-subnormal-normalised"),
    pytest.param("ln(vector(2.2250738585072014e-308))", "-708.3964185322641", id="ln-min-normal"),
    pytest.param("ln(vector(-2.5e-310))", "NaN", id="ln-negative-subnormal"),
])
def test_logarithms_of_subnormals(expr: str, want: str) -> None:
    _, res = promlab_answer(MemoryStorage(), expr, "1700000000")
    assert res[0][1][0][1] == want



@pytest.mark.parametrize(("expr", "when", "want"), [
    # dup_a has results at the first steps only, dup_b at the last: Prometheus checks the whole
    # result matrix of a range-vector function (2.42 and 3.x without delayed name removal).
    pytest.param("deriv({__name__=~\"dup_.*\"}[1m])", (1700000000, 1700000600, 60),
                 "error: vector cannot contain metrics with the same labelset", id="deriv-range"),
    pytest.param("predict_linear({__name__=~\"dup_.*\"}[1m], 60)", (1700000000, 1700000600, 60),
                 "error: vector cannot contain metrics with the same labelset",
                 id="predict-linear-range"),
    pytest.param("rate({__name__=~\"dup_.*\"}[2m:30s])", (1700000000, 1700000600, 60),
                 "error: vector cannot contain metrics with the same labelset",
                 id="subquery-range"),
    pytest.param("last_over_time({__name__=~\"dup_.*\"}[1m])", (1700000000, 1700000600, 60),
                 "2", id="name-kept"),
    pytest.param("absent_over_time({__name__=~\"dup_.*\"}[1m])", (1700000000, 1700000600, 60),
                 "1", id="absent-over-time-exempt"),
    pytest.param("deriv({__name__=~\"dup_.*\"}[1m])", "1700000060", "1", id="instant"),
    pytest.param("-{__name__=~\"dup_.*\"}", (1700000000, 1700000600, 60), "1",
                 id="per-step-elsewhere"),
])
def test_range_function_results_checked_over_all_steps(
        expr: str, when: str | tuple[int, int, int], want: str) -> None:
    store = MemoryStorage()
    store.add_series(Labels({"__name__": "dup_a", "job": "x"}),
                     [1700000000000 + 15_000 * k for k in range(8)], [float(k) for k in range(8)])
    store.add_series(Labels({"__name__": "dup_b", "job": "x"}),
                     [1700000400000 + 15_000 * k for k in range(8)], [float(k) for k in range(8)])
    kind, res = promlab_answer(store, expr, when)
    assert (f"error: {res}" if kind == "error" else str(len(res))) == want
