"""PromQL functions end to end: MemoryStorage -> parser -> Engine -> registry implementations.

Expected values follow Prometheus 3.x (several are taken from its promqltest corpus).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from promlab.errors import QueryError
from promlab.model import Labels
from promlab.promql.engine import Engine, Result
from promlab.promql.values import Scalar, Vector
from promlab.storage import MemoryStorage

S = 1000
M = 60 * S
NAN = float("nan")
INF = float("inf")


def labels_of(text: str) -> Labels:
    """``'foo{a="b"}'`` -> Labels (simple test syntax, no escapes or commas in values)."""
    name, _, rest = text.partition("{")
    pairs = {"__name__": name} if name else {}
    for item in filter(None, (p.strip() for p in rest.rstrip("}").split(","))):
        k, _, v = item.partition("=")
        pairs[k.strip()] = v.strip().strip('"')
    return Labels(pairs)


def store_with(series: dict[str, list[float | None]], interval_ms: int = 5 * M) -> MemoryStorage:
    """Sample ``i`` of each series at ``i * interval_ms`` (None = no sample)."""
    store = MemoryStorage()
    for text, values in series.items():
        ts = [i * interval_ms for i, v in enumerate(values) if v is not None]
        vs = [float(v) for v in values if v is not None]
        store.add_series(labels_of(text), ts, vs)
    return store


def run(store: MemoryStorage, query: str, t_ms: int) -> Result:
    return Engine(features="all").instant(store, query, t_ms)


def as_dict(result: Result) -> dict[str, float]:
    v = result.value
    if isinstance(v, Scalar):
        return {"scalar": float(v.values[0])}
    assert isinstance(v, Vector)
    return {str(ls): float(v.values[i, 0]) for i, ls in enumerate(v.labels) if v.present[i, 0]}


def assert_result(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want), (got, want)
    for k, w in want.items():
        g = got[k]
        if math.isnan(w):
            assert math.isnan(g), (k, g)
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-12), (k, g, w)


COUNTERS = {
    'http_requests_total{job="api"}': [i * 10.0 for i in range(11)],
    'http_requests_total{job="db"}': [0, 10, 20, 5, 15, 25, 35, 45, 55, 65, 75],
    "gauge": [1, 3, 2, 5, 4, 6, 8, 7, 9, 10, 12],
}

RANGE_CASES = [
    pytest.param("rate(http_requests_total[50m])", 50 * M,
                 {'{job="api"}': 100 / 3000, '{job="db"}': 85 / 2700}, id="rate-with-reset"),
    pytest.param("increase(http_requests_total[50m])", 50 * M,
                 {'{job="api"}': 100.0, '{job="db"}': 85 * 3000 / 2700}, id="increase"),
    pytest.param('increase(http_requests_total{job="api"}[25m])', 50 * M,
                 {'{job="api"}': 50.0}, id="increase-extrapolated"),
    pytest.param('increase(http_requests_total{job="api"}[12m])', 50 * M,
                 {'{job="api"}': 24.0},
                 id="increase-partial-extrapolation"),
    pytest.param("delta(gauge[50m])", 50 * M, {"{}": 9 * 3000 / 2700}, id="delta"),
    pytest.param("irate(http_requests_total[50m])", 50 * M,
                 {'{job="api"}': 10 / 300, '{job="db"}': 10 / 300}, id="irate"),
    pytest.param("irate(http_requests_total[50m])", 15 * M,
                 {'{job="api"}': 10 / 300, '{job="db"}': 5 / 300}, id="irate-reset"),
    pytest.param("idelta(gauge[50m])", 35 * M, {"{}": -1.0}, id="idelta"),
    pytest.param("changes(gauge[50m])", 50 * M, {"{}": 9.0}, id="changes"),
    pytest.param("resets(http_requests_total[50m])", 50 * M,
                 {'{job="api"}': 0.0, '{job="db"}': 1.0}, id="resets"),
    pytest.param('deriv(http_requests_total{job="api"}[50m])', 50 * M,
                 {'{job="api"}': 10 / 300}, id="deriv"),
    pytest.param('predict_linear(http_requests_total{job="api"}[50m], 3600)', 50 * M,
                 {'{job="api"}': 100 + 3600 * 10 / 300}, id="predict_linear"),
    pytest.param("sum_over_time(gauge[50m])", 50 * M, {"{}": 66.0}, id="sum_over_time"),
    pytest.param("avg_over_time(gauge[50m])", 50 * M, {"{}": 6.6}, id="avg_over_time"),
    pytest.param("count_over_time(gauge[50m])", 50 * M, {"{}": 10.0}, id="count_over_time"),
    pytest.param("max_over_time(gauge[50m])", 50 * M, {"{}": 12.0}, id="max_over_time"),
    pytest.param("min_over_time(gauge[50m])", 50 * M, {"{}": 2.0}, id="min_over_time"),
    pytest.param("last_over_time(gauge[50m])", 50 * M, {"gauge": 12.0}, id="last-keeps-name"),
    pytest.param("first_over_time(gauge[50m])", 50 * M, {"gauge": 3.0}, id="first-keeps-name"),
    pytest.param("present_over_time(gauge[50m])", 50 * M, {"{}": 1.0}, id="present"),
    pytest.param("ts_of_max_over_time(gauge[50m])", 50 * M, {"{}": 3000.0}, id="ts_of_max"),
    pytest.param("ts_of_min_over_time(gauge[50m])", 50 * M, {"{}": 600.0}, id="ts_of_min"),
    pytest.param("ts_of_first_over_time(gauge[50m])", 50 * M, {"{}": 300.0}, id="ts_of_first"),
    pytest.param("ts_of_last_over_time(gauge[50m])", 50 * M, {"{}": 3000.0}, id="ts_of_last"),
    pytest.param("stdvar_over_time(gauge[50m])", 50 * M,
                 {"{}": float(np.var([3, 2, 5, 4, 6, 8, 7, 9, 10, 12]))}, id="stdvar"),
    pytest.param("stddev_over_time(gauge[50m])", 50 * M,
                 {"{}": float(np.std([3, 2, 5, 4, 6, 8, 7, 9, 10, 12]))}, id="stddev"),
    pytest.param("quantile_over_time(0.5, gauge[50m])", 50 * M, {"{}": 6.5}, id="median"),
    pytest.param("quantile_over_time(0.75, gauge[50m])", 50 * M, {"{}": 8.75}, id="q75"),
    pytest.param("mad_over_time(gauge[50m])", 50 * M, {"{}": 2.5}, id="mad"),
    pytest.param("rate(gauge[1m])", 50 * M, {}, id="one-sample-no-rate"),
]


@pytest.mark.parametrize(("query", "t_ms", "want"), RANGE_CASES)
def test_range_functions(query: str, t_ms: int, want: dict[str, float]) -> None:
    assert_result(as_dict(run(store_with(COUNTERS), query, t_ms)), want)


def test_double_exponential_smoothing_reference() -> None:
    # Hand-computed Holt linear recursion for 3 1 4 1 5 with sf=0.5, tf=0.5.
    store = store_with({"x": [3, 1, 4, 1, 5]})
    s0, s1, b = 0.0, 3.0, -2.0
    for i, x in enumerate([1, 4, 1, 5], start=1):
        if i > 1:
            b = 0.5 * (s1 - s0) + 0.5 * b
        s0, s1 = s1, 0.5 * x + 0.5 * (s1 + b)
    got = as_dict(run(store, "double_exponential_smoothing(x[30m], 0.5, 0.5)", 20 * M))
    assert_result(got, {"{}": s1})


def test_double_exponential_smoothing_infinite_start_is_nan_without_warning() -> None:
    # Inf - Inf for the first trend is NaN in Go, silently (the suite turns numpy's
    # RuntimeWarning into an error; found by the differential fuzzer).
    store = store_with({"x": [INF, INF, 1]})
    got = as_dict(run(store, "double_exponential_smoothing(x[30m], 0.5, 0.5)", 10 * M))
    assert math.isnan(got["{}"])


@pytest.mark.parametrize("args", ["0, 0.5", "1, 0.5", "0.5, 1.5"], ids=["sf0", "sf1", "tf"])
def test_double_exponential_smoothing_bad_factors(args: str) -> None:
    with pytest.raises(QueryError, match=r"invalid (smoothing|trend) factor"):
        run(store_with(COUNTERS), f"double_exponential_smoothing(gauge[50m], {args})", 50 * M)


# Prometheus checks the factors in each call, one per window that holds a sample: 2.42 (as
# holt_winters) answered these in the differential fuzzer — "invalid smoothing factor ... got:
# -0.100000" for g[1m] (one sample per window), nothing for a NaN factor (sf <= 0 || sf >= 1 is
# false), "invalid trend factor ... got: 1.000000" for (NaN, 1); an empty window checks nothing.
FACTOR_CASES = [
    pytest.param("gauge[3m], -0.1, 0.9", "invalid smoothing factor. Expected: 0 < sf < 1, got: "
                 "-0.100000", id="one-sample-window-checks"),
    pytest.param("gauge[3m], 0.5, 0", "invalid trend factor. Expected: 0 < tf < 1, got: "
                 "0.000000", id="one-sample-window-checks-tf"),
    pytest.param("gauge[50m], NaN, 0.5", None, id="nan-sf-passes"),
    pytest.param("gauge[50m], NaN, 1", "invalid trend factor. Expected: 0 < tf < 1, got: "
                 "1.000000", id="nan-sf-then-bad-tf"),
    pytest.param("gauge[50m], Inf, 0.5", "invalid smoothing factor. Expected: 0 < sf < 1, got: "
                 "+Inf", id="inf-sf-go-format"),
    pytest.param("gauge[50m] offset 2h, -1, -1", None, id="empty-window-checks-nothing"),
]


@pytest.mark.parametrize(("args", "error"), FACTOR_CASES)
def test_double_exponential_smoothing_factor_checks(args: str, error: str | None) -> None:
    store = store_with(COUNTERS)
    if error is None:
        run(store, f"double_exponential_smoothing({args})", 50 * M)
        return
    with pytest.raises(QueryError) as info:
        run(store, f"double_exponential_smoothing({args})", 50 * M)
    assert str(info.value) == error


KAHAN = {"metric": [1, 1e100, 1, -1e100]}


@pytest.mark.parametrize(("query", "want"), [
    pytest.param("sum_over_time(metric[2m])", 2.0, id="sum"),
    pytest.param("avg_over_time(metric[2m])", 0.5, id="avg"),
])
def test_kahan_over_time(query: str, want: float) -> None:
    got = as_dict(run(store_with(KAHAN, 10 * S), query, M))
    assert_result(got, {"{}": want})


def test_avg_over_time_overflow_switches_to_incremental_mean() -> None:
    store = store_with({"m": [-1.78264e215, 0.76342771, 1.9592258, 2.258e220, 7.69805412,
                              -458.90154]}, 5 * S)
    got = as_dict(run(store, "avg_over_time(m[1m])", 55 * S))
    assert got["{}"] == pytest.approx(3.76330362266667e219, rel=1e-12)


def test_rate_non_counter_info_with_position() -> None:
    res = run(store_with(COUNTERS), "rate(gauge[50m])", 50 * M)
    assert res.annotations.infos == [
        'PromQL info: metric might not be a counter, name does not end in '
        '_total/_sum/_count/_bucket: "gauge" (1:6)']
    res = run(store_with(COUNTERS), "rate(http_requests_total[50m])", 50 * M)
    assert res.annotations.infos == []


COUNTER_INFO_CASES = [
    pytest.param('rate({__name__="gauge"}[50m])', ["gauge"], id="name-matcher"),
    pytest.param('increase({__name__=~"gauge|http_requests_total"}[50m])', ["gauge"],
                 id="name-regex"),
    pytest.param('rate({__name__=~".+", job="db"}[50m])', [], id="regex-counter-only"),
    pytest.param("rate(gauge[50m] offset 1h)", [], id="pinned-no-sample-in-range"),
    pytest.param("rate(nothing_here[50m])", [], id="pinned-no-series"),
    pytest.param("rate(gauge[50m:5m])", ["gauge"], id="subquery"),
]


@pytest.mark.parametrize(("expr", "names"), COUNTER_INFO_CASES)
def test_rate_non_counter_info_per_name(expr: str, names: list[str]) -> None:
    res = run(store_with(COUNTERS), expr, 50 * M)
    assert [i.split('"')[1] for i in res.annotations.infos] == names


def test_rate_range_query_matches_instant() -> None:
    store = store_with(COUNTERS)
    rng = Engine(features="all").range(store, "rate(http_requests_total[20m])", 20 * M, 50 * M, 5 * M)
    assert isinstance(rng.value, Vector)
    for j, t in enumerate(range(20 * M, 50 * M + 1, 5 * M)):
        inst = as_dict(run(store, "rate(http_requests_total[20m])", t))
        for i, ls in enumerate(rng.value.labels):
            assert rng.value.values[i, j] == pytest.approx(inst[str(ls)])


INSTANT_CASES = [
    pytest.param("abs(v)", {'{k="a"}': 1.5, '{k="b"}': 2.0, '{k="c"}': NAN}, id="abs"),
    pytest.param("ceil(v)", {'{k="a"}': -1.0, '{k="b"}': 2.0, '{k="c"}': NAN}, id="ceil"),
    pytest.param("sgn(v)", {'{k="a"}': -1.0, '{k="b"}': 1.0, '{k="c"}': NAN}, id="sgn"),
    pytest.param("round(v)", {'{k="a"}': -1.0, '{k="b"}': 2.0, '{k="c"}': NAN}, id="round-ties-up"),
    pytest.param("round(v, 5)", {'{k="a"}': 0.0, '{k="b"}': 0.0, '{k="c"}': NAN}, id="round-5"),
    pytest.param("clamp(v, -1, 1)", {'{k="a"}': -1.0, '{k="b"}': 1.0, '{k="c"}': NAN}, id="clamp"),
    pytest.param("clamp(v, 1, -1)", {}, id="clamp-empty"),
    pytest.param("clamp_min(v, 0)", {'{k="a"}': 0.0, '{k="b"}': 2.0, '{k="c"}': NAN}, id="clamp_min"),
    pytest.param("clamp_max(v, 0)", {'{k="a"}': -1.5, '{k="b"}': 0.0, '{k="c"}': NAN}, id="clamp_max"),
    pytest.param("exp(v{k=\"b\"})", {'{k="b"}': math.exp(2)}, id="exp"),
    pytest.param("deg(v{k=\"b\"})", {'{k="b"}': 2 * 180 / math.pi}, id="deg"),
    pytest.param("scalar(v)", {"scalar": NAN}, id="scalar-many"),
    pytest.param('scalar(v{k="b"})', {"scalar": 2.0}, id="scalar-one"),
    pytest.param("vector(3)", {"{}": 3.0}, id="vector"),
    pytest.param("pi()", {"scalar": math.pi}, id="pi"),
    pytest.param("absent(v)", {}, id="absent-present"),
    pytest.param('absent(nope{job="x", a=~"b"})', {'{job="x"}': 1.0}, id="absent-labels"),
    pytest.param('absent_over_time(nope{job="x"}[5m])', {'{job="x"}': 1.0}, id="absent_over_time"),
    pytest.param("timestamp(v)", {'{k="a"}': 0.0, '{k="b"}': 0.0, '{k="c"}': 0.0}, id="timestamp"),
    pytest.param("time()", {"scalar": 60.0}, id="time"),
    pytest.param("year(vector(1136239445))", {"{}": 2006.0}, id="year"),
    pytest.param("month(vector(1456790399))", {"{}": 2.0}, id="month"),
    pytest.param("day_of_month(vector(1456790399))", {"{}": 29.0}, id="day_of_month"),
    pytest.param("day_of_week(vector(1136239445))", {"{}": 1.0}, id="day_of_week"),
    pytest.param("day_of_year(vector(1483191420))", {"{}": 366.0}, id="day_of_year"),
    pytest.param("days_in_month(vector(1454284800))", {"{}": 29.0}, id="days_in_month"),
    pytest.param("hour(vector(1136239445))", {"{}": 22.0}, id="hour"),
    pytest.param("minute(vector(1136239445))", {"{}": 4.0}, id="minute"),
    pytest.param("minute()", {"{}": 1.0}, id="minute-now"),
    pytest.param("histogram_count(v)", {}, id="native-only-empty"),
]


@pytest.mark.parametrize(("query", "want"), INSTANT_CASES)
def test_instant_functions(query: str, want: dict[str, float]) -> None:
    store = store_with({'v{k="a"}': [-1.5], 'v{k="b"}': [2], 'v{k="c"}': [NAN]})
    assert_result(as_dict(run(store, query, M)), want)


def test_sort_orders_and_nan_last() -> None:
    store = store_with({'v{k="a"}': [3], 'v{k="b"}': [NAN], 'v{k="c"}': [1], 'v{k="d"}': [2]})
    asc = run(store, "sort(v)", M).value
    desc = run(store, "sort_desc(v)", M).value
    assert [ls["k"] for ls in asc.labels] == ["c", "d", "a", "b"]
    assert [ls["k"] for ls in desc.labels] == ["a", "d", "c", "b"]


# Prometheus's sort of up to 12 samples is Go's insertion sort with a comparator under which
# NaNs pass each other: they end last in reverse input order; equal values keep theirs. 2.42
# gave sort(vector(NaN) or label_replace(vector(NaN), "a", "b", "", "") or
# label_replace(vector(1), "a", "c", "", "")) as {a="c"}, {a="b"}, {} (differential fuzzer).
SORT_ORDER_CASES = [
    pytest.param("sort(v)", {"a": NAN, "b": 1, "c": NAN, "d": NAN, "e": 0},
                 ["e", "b", "d", "c", "a"], id="nans-reversed"),
    pytest.param("sort_desc(v)", {"a": NAN, "b": 1, "c": NAN, "d": 2},
                 ["d", "b", "c", "a"], id="desc-nans-reversed"),
    pytest.param("sort(v)", {"a": 1, "b": 0, "c": 1, "d": 0},
                 ["b", "d", "a", "c"], id="ties-keep-input-order"),
    pytest.param("sort_desc(v)", {"a": 1, "b": 0, "c": 1, "d": 0},
                 ["a", "c", "b", "d"], id="desc-ties-keep-input-order"),
]


@pytest.mark.parametrize(("query", "values", "want"), SORT_ORDER_CASES)
def test_sort_order_like_go_insertion_sort(query: str, values: dict[str, float],
                                           want: list[str]) -> None:
    store = store_with({f'v{{k="{k}"}}': [v] for k, v in values.items()})
    got = run(store, query, M).value
    assert isinstance(got, Vector)
    assert [ls["k"] for ls in got.labels] == want


def test_sort_by_label_is_natural() -> None:
    store = store_with({f'v{{inst="host{i}"}}': [i] for i in (10, 2, 1)})
    got = run(store, 'sort_by_label(v, "inst")', M).value
    assert [ls["inst"] for ls in got.labels] == ["host1", "host2", "host10"]
    got = run(store, 'sort_by_label_desc(v, "inst")', M).value
    assert [ls["inst"] for ls in got.labels] == ["host10", "host2", "host1"]


def test_sort_in_range_query_warns() -> None:
    store = store_with({'v{k="a"}': [3, 3]})
    res = Engine(features="all").range(store, "sort(v)", 0, 5 * M, M)
    assert res.annotations.warnings == [
        "PromQL warning: sort is ineffective for range queries since results are always "
        "ordered by labels (1:1)"]


LABEL_CASES = [
    pytest.param('label_replace(t, "dst", "d-$1", "src", "s-(.*)")',
                 {'t{dst="d-1", src="s-1"}', 't{dst="d-2", src="s-2"}'}, id="replace"),
    pytest.param('label_replace(t, "dst", "d-$1", "src", "-(.*)")',
                 {'t{dst="orig", src="s-1"}', 't{dst="orig", src="s-2"}'}, id="full-match-only"),
    pytest.param('label_replace(t, "dst", "${1}x$name", "src", "s-(?P<name>.*)")',
                 {'t{dst="1x1", src="s-1"}', 't{dst="2x2", src="s-2"}'}, id="named-groups"),
    pytest.param('label_replace(t, "dst", "", "dst", ".*")',
                 {'t{src="s-1"}', 't{src="s-2"}'}, id="empty-removes"),
    pytest.param('label_join(t, "j", "-", "src", "missing", "dst")',
                 {'t{dst="orig", j="s-1--orig", src="s-1"}',
                  't{dst="orig", j="s-2--orig", src="s-2"}'}, id="join"),
]


@pytest.mark.parametrize(("query", "want"), LABEL_CASES)
def test_label_functions(query: str, want: set[str]) -> None:
    store = store_with({'t{src="s-1", dst="orig"}': [1], 't{src="s-2", dst="orig"}': [2]})
    assert set(as_dict(run(store, query, M))) == want


@pytest.mark.parametrize("query", [
    pytest.param('label_replace(t, "src", "", "", "")', id="duplicate-labelsets"),
    pytest.param('label_replace(t, "dst", "x", "src", "(.*")', id="bad-regex"),
    pytest.param('label_join(t, "src", "", "dst")', id="join-duplicates"),
])
def test_label_function_errors(query: str) -> None:
    store = store_with({'t{src="s-1", dst="orig"}': [1], 't{src="s-2", dst="orig"}': [2]})
    with pytest.raises(QueryError):
        run(store, query, M)



# The vector argument, t / on() t, fails (many-to-many matching); a bad literal argument is
# checked before it is evaluated, so that is the error, as in Prometheus (found by the
# differential fuzzer, seed 4242).
@pytest.mark.parametrize(("query", "message"), [
    pytest.param('label_replace(t / on() t, "dst", "x", "src", "[")',
                 "invalid regular expression in label_replace(): [", id="replace-regex"),
    pytest.param('label_replace(t / on() t, "", "x", "src", ".*")',
                 "invalid destination label name in label_replace(): ", id="replace-dst"),
    pytest.param('label_join(t / on() t, "dst", "-", "", "src")',
                 "invalid source label name in label_join(): ", id="join-src"),
    pytest.param('label_join(t / on() t, "", "-", "src")',
                 "invalid destination label name in label_join(): ", id="join-dst"),
    pytest.param('label_replace(t / on() t, "dst", "x", "src", ".*")',
                 "many-to-many matching not allowed", id="vector-error-when-args-fine"),
])
def test_label_function_literals_checked_before_the_vector(query: str, message: str) -> None:
    store = store_with({'t{src="s-1", dst="orig"}': [1], 't{src="s-2", dst="orig"}': [2]})
    with pytest.raises(QueryError) as info:
        run(store, query, M)
    assert message in str(info.value)


HIST = {
    'h_bucket{le="0.1"}': [0, 10],
    'h_bucket{le="0.5"}': [0, 30],
    'h_bucket{le="1"}': [0, 40],
    'h_bucket{le="+Inf"}': [0, 50],
    'bad_bucket{le="0.1"}': [0, 5],
    'bad_bucket{le="1"}': [0, 3],
    'bad_bucket{le="+Inf"}': [0, 10],
    'neg_bucket{le="-1"}': [0, 10],
    'neg_bucket{le="+Inf"}': [0, 20],
}

HIST_CASES = [
    pytest.param("histogram_quantile(0.5, h_bucket)", {"{}": 0.1 + 0.4 * 15 / 20}, id="median"),
    pytest.param("histogram_quantile(0.99, h_bucket)", {"{}": 1.0}, id="in-inf-bucket"),
    pytest.param("histogram_quantile(0.1, h_bucket)", {"{}": 0.05}, id="first-bucket-from-zero"),
    pytest.param("histogram_quantile(-1, h_bucket)", {"{}": -INF}, id="q-negative"),
    pytest.param("histogram_quantile(2, h_bucket)", {"{}": INF}, id="q-above-one"),
    pytest.param("histogram_quantile(0.3, neg_bucket)", {"{}": -1.0}, id="negative-first-bucket"),
    pytest.param("histogram_quantile(0.5, bad_bucket)", {"{}": 0.1}, id="non-monotonic"),
    pytest.param('histogram_quantile(0.5, h_bucket{le!="+Inf"})', {"{}": NAN}, id="no-inf-bucket"),
    pytest.param("histogram_fraction(0, 0.5, h_bucket)", {"{}": 0.6}, id="fraction"),
    pytest.param("histogram_fraction(0, 0.3, h_bucket)", {"{}": 0.4}, id="fraction-interp"),
    pytest.param("histogram_fraction(-Inf, +Inf, h_bucket)", {"{}": 1.0}, id="fraction-all"),
    pytest.param("histogram_fraction(2, 3, h_bucket)", {"{}": 0.0}, id="fraction-inf-bucket"),
    pytest.param("histogram_fraction(-5, -1, neg_bucket)", {"{}": 0.0}, id="fraction-neg-inf"),
    # le values read as Go's strconv.ParseFloat does (Prometheus 2.42 agreed on each kind in the
    # differential fuzzer: h_bucket relabelled to these le values): "1_0" and "0x1.4p3" are 10,
    # so the 0.75 quantile lands in (0.5, 10]; " 1", "1e400" (out of range) and "+nan" are
    # errors, that bucket is skipped and the quantile falls in +Inf (the last finite bound, 0.5).
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket, "le", "1_0", "le", "1"))',
                 {"{}": 0.5 + 9.5 * 7.5 / 10}, id="le-underscore-separator"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket, "le", "0x1.4p3", "le", "1"))',
                 {"{}": 0.5 + 9.5 * 7.5 / 10}, id="le-hex-float"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket, "le", " 1", "le", "1"))',
                 {"{}": 0.5}, id="le-leading-space"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket, "le", "1e400", "le", "1"))',
                 {"{}": 0.5}, id="le-out-of-range"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket, "le", "+nan", "le", "1"))',
                 {"{}": 0.5}, id="le-signed-nan"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket, "le", "1__0", "le", "1"))',
                 {"{}": 0.5}, id="le-double-underscore"),
]


@pytest.mark.parametrize(("query", "want"), HIST_CASES)
def test_histogram_functions(query: str, want: dict[str, float]) -> None:
    assert_result(as_dict(run(store_with(HIST), query, 5 * M)), want)


def test_histogram_quantile_annotations() -> None:
    store = store_with(HIST)
    res = run(store, "histogram_quantile(0.5, bad_bucket)", 5 * M)
    assert res.annotations.infos == [
        "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
        "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
        'for metric name "bad_bucket" (1:25)']
    res = run(store, "histogram_quantile(NaN, nothing)", 5 * M)
    assert res.annotations.warnings == [
        "PromQL warning: quantile value should be between 0 and 1, got NaN (1:20)"]
    store.add_series(Labels({"__name__": "series", "ale": "1"}), [0], [1.0])
    res = run(store, "histogram_quantile(0.8, series)", 0)
    assert res.annotations.warnings == [
        'PromQL warning: bucket label "le" is missing or has a malformed value of "" for '
        'metric name "series" (1:25)']


def test_histogram_quantiles_labels() -> None:
    got = as_dict(run(store_with(HIST), 'histogram_quantiles(h_bucket, "q", 0.5, 1)', 5 * M))
    assert_result(got, {'{q="0.5"}': 0.4, '{q="1.0"}': 1.0})


def test_duration_functions() -> None:
    res = Engine(features="all").range(store_with({}), "end() - start() + step() + range()", 60 * S,
                         180 * S, 30 * S)
    values = res.value.values
    assert np.allclose(values, 120 + 30 + 120)


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param("info(up)", [{"__name__": "up", "instance": "a", "job": "j", "version": "1.0", "region": "eu"}],
                 id="all-data-labels"),
    pytest.param('info(up, {version=~".+"})', [{"__name__": "up", "instance": "a", "job": "j", "version": "1.0"}],
                 id="one-data-label"),
    pytest.param('info(up, {nope=~".+"})', [], id="required-label-missing-drops"),
    pytest.param('info(up, {__name__="build_info"})', [{"__name__": "up", "instance": "a", "job": "j"}],
                 id="no-such-info-metric-keeps"),
    pytest.param("info(target_info)", [{"__name__": "target_info", "instance": "a", "job": "j",
                                        "version": "1.0", "region": "eu"},
                                       {"__name__": "target_info", "instance": "b", "job": "j", "version": "2.0"}],
                 id="info-series-pass-through"),
])
def test_info(query: str, expected: list[dict[str, str]]) -> None:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "up", "instance": "a", "job": "j"}), [0], [1.0])
    st.add_series(Labels({"__name__": "target_info", "instance": "a", "job": "j", "version": "1.0",
                          "region": "eu"}), [0], [1.0])
    st.add_series(Labels({"__name__": "target_info", "instance": "b", "job": "j", "version": "2.0"}), [0], [1.0])
    res = run(st, query, M)
    assert sorted((dict(ls.pairs) for ls in res.value.labels), key=str) == sorted(expected, key=str)


def test_rate_is_vectorised_fast() -> None:
    """rate[5m] over 200 series x 721 steps from 15 s samples: one frame, well under a second."""
    import time

    store = MemoryStorage()
    ts = np.arange(0, 3 * 3600 * S, 15 * S)
    for i in range(200):
        store.add_series(Labels({"__name__": "c_total", "i": str(i)}), ts, np.cumsum(
            np.full(ts.size, 1.0 + i % 7)))
    t0 = time.perf_counter()
    res = Engine(features="all").range(store, "rate(c_total[5m])", 3600 * S, 3 * 3600 * S, 10 * S)
    assert time.perf_counter() - t0 < 5.0
    assert isinstance(res.value, Vector)
    assert np.allclose(res.value.values[0], 1.0 / 15)
