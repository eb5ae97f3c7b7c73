"""The differential fuzzer's regressions: differences it found, pinned without Prometheus
(each expression also runs against Prometheus in test_differential_fuzz.py)."""

from __future__ import annotations

import pytest

__all__ = ["K_OVER_LATER_INF", "NAN_LE", "RANGE_REGRESSIONS", "REGRESSIONS"]

# k = 2 up to ten minutes before INSTANT_S, 1e300 for one 10 s step, then +Inf.
K_OVER_LATER_INF = ("count_over_time(({fn}(scalar(vector(2) and on() vector(time()) < 1700001350 "
                    "or vector(1e300) and on() vector(time()) < 1700001360 or vector(Inf)), m))"
                    "[{range}:10s])")

# Buckets 1, NaN, 2, +Inf in this input order (an "or" chain keeps it).
NAN_LE = ('histogram_quantile({q}, label_replace(vector(1), "le", "1", "", "") or '
          'label_replace(vector(2), "le", "NaN", "", "") or label_replace(vector(3), "le", "2", '
          '"", "") or label_replace(vector(4), "le", "+Inf", "", ""))')

# (expression, instant value at INSTANT_S as the API writes it; one series or a scalar result)
REGRESSIONS = [
    # clamp is Go's math.Max(min, math.Min(max, v)): an infinite sample beats a NaN bound.
    pytest.param("clamp_max(vector(-Inf), NaN)", "-Inf", id="clamp-max-neg-inf-nan-bound"),
    pytest.param("clamp_min(vector(Inf), NaN)", "+Inf", id="clamp-min-inf-nan-bound"),
    pytest.param("clamp(vector(-Inf), NaN, NaN)", "NaN", id="clamp-nan-bounds"),
    pytest.param("clamp_max(-vector(0), 0)", "-0", id="clamp-max-keeps-neg-zero"),
    pytest.param("clamp_min(-vector(0), 0)", "0", id="clamp-min-positive-zero"),
    # Date functions read int64(v) as Go on amd64 does: NaN, ±Inf and |v| >= 2^63 become the
    # smallest int64, whose date wraps to year 292277026596; large values are not clipped.
    pytest.param("year(vector(NaN))", "292277026596", id="year-nan"),
    pytest.param("month(vector(Inf))", "12", id="month-inf"),
    pytest.param("day_of_month(vector(-1e19))", "4", id="day-of-month-out-of-range"),
    pytest.param("day_of_week(vector(NaN))", "0", id="day-of-week-nan"),
    pytest.param("day_of_year(vector(NaN))", "339", id="day-of-year-nan"),
    pytest.param("days_in_month(vector(NaN))", "31", id="days-in-month-nan"),
    pytest.param("hour(vector(NaN))", "15", id="hour-nan"),
    pytest.param("minute(vector(NaN))", "30", id="minute-nan"),
    pytest.param("year(vector(4.7e18))", "148937072952", id="year-beyond-2-62"),
    pytest.param("minute(vector(4.7e18))", "33", id="minute-beyond-2-62"),
    pytest.param("year(vector(-1e12))", "-29719", id="year-negative"),
    # log2/log10 as Go computes them (the last bit shows in count_values labels).
    pytest.param("log2(vector(2.5))", "1.3219280948873622", id="log2-go"),
    pytest.param("log2(vector(3))", "1.5849625007211563", id="log2-go-3"),
    pytest.param("log2(vector(0.125))", "-3", id="log2-power-of-two"),
    pytest.param("log10(vector(0.1))", "-0.9999999999999999", id="log10-go"),
    pytest.param("log10(vector(12345.678))", "4.091514945509201", id="log10-go-2"),
    pytest.param("log10(vector(0))", "-Inf", id="log10-zero"),
    pytest.param("log2(vector(-1))", "NaN", id="log2-negative"),
    # sinh/cosh as Go: Exp(|x|)/2 past 21 overflows where C's sinh/cosh do not yet.
    pytest.param("sinh(vector(710))", "+Inf", id="sinh-overflow"),
    pytest.param("sinh(vector(-710))", "-Inf", id="sinh-overflow-negative"),
    pytest.param("cosh(vector(710))", "+Inf", id="cosh-overflow"),
    pytest.param("sinh(-vector(0))", "-0", id="sinh-neg-zero"),
    # tanh as Go from |x| = 0.625: 1 - 2/(Exp(2|x|)+1); C's tanh rounds -19 to -1.
    pytest.param("tanh(vector(-19))", "-0.9999999999999999", id="tanh-go-saturating"),
    pytest.param("tanh(vector(19))", "0.9999999999999999", id="tanh-go-saturating-positive"),
    pytest.param("tanh(vector(-0.7))", "-0.6043677771171635", id="tanh-go-mid"),
    # Go's amd64 Exp (assembly) refuses 2**1024 as its scale: +Inf from 709.44 on, where C's
    # exp still has 1.35e308; Sinh and Cosh overflow with it. Its last bits, and Log's, are
    # not C's either (tests/promql/test_golibm.py compares many values with Prometheus).
    pytest.param("exp(vector(709.5))", "+Inf", id="exp-amd64-overflow"),
    pytest.param("sinh(vector(-709.5))", "-Inf", id="sinh-amd64-overflow"),
    pytest.param("cosh(vector(709.5))", "+Inf", id="cosh-amd64-overflow"),
    pytest.param("exp(vector(1.5))", "4.481689070338065", id="exp-go-bits"),
    pytest.param("ln(vector(3))", "1.0986122886681096", id="ln-go-bits"),
    pytest.param("log10(vector(3))", "0.4771212547196624", id="log10-go-bits"),
    pytest.param("tanh(vector(0.6249))", "0.5545304765944485", id="tanh-go-small"),
    pytest.param("vector(0.0743573318942028) ^ 0.37", "0.38228724252948626", id="pow-go-exp-log"),
    # Go's trigonometry is Cephes' in Go (Payne-Hanek from 2**29), not C's libm.
    pytest.param("sin(vector(1e22))", "-0.8522008497671889", id="sin-go-payne-hanek"),
    pytest.param("vector(1.5) atan2 vector(1.7)", "0.7229793534014909", id="atan2-go-bits"),
    pytest.param("asinh(vector(1.5))", "1.1947632172871094", id="asinh-go-log1p"),
    pytest.param("atanh(vector(0.3))", "0.30951960420311175", id="atanh-go-log1p"),
    # "^" is Go's math.Pow (repeated squaring of frexp mantissas, 1/Sqrt for -0.5), not C's
    # pow: the last bits differ, and cos/tan of a huge power differ altogether.
    pytest.param("vector(3) ^ 42", "109418989131512370000", id="pow-integer-exponent"),
    pytest.param("cos(vector(3) ^ 42)", "0.9955360283693284", id="pow-then-cos"),
    pytest.param("vector(3) ^ -0.5", "0.5773502691896258", id="pow-minus-half"),
    pytest.param("vector(-2) ^ -3", "-0.125", id="pow-negative-base"),
    pytest.param("vector(-2) ^ 0.5", "NaN", id="pow-negative-base-fraction"),
    pytest.param("-vector(0) ^ -3", "-Inf", id="pow-neg-zero-odd"),
    pytest.param("vector(-Inf) ^ -0.5", "0", id="pow-neg-inf-minus-half"),
    pytest.param("(-vector(0)) ^ 0.5", "0", id="pow-neg-zero-half"),
    pytest.param("vector(-Inf) ^ 0.5", "+Inf", id="pow-neg-inf-half"),
    pytest.param("vector(-Inf) ^ 3", "-Inf", id="pow-neg-inf-odd"),
    pytest.param("vector(-Inf) ^ -3", "-0", id="pow-neg-inf-negative-odd"),
    # count_values groups by the value's text: -0 apart from 0.
    pytest.param('count(count_values("v", 0 / g{kind=~"flat|neg"}))', "2",
                 id="count-values-negative-zero"),
    # max/min_over_time: of equal 0 and -0 the window's first stays (a strict > in Go).
    pytest.param('max_over_time((0 / g{kind="frac"})[5m:15s])', "0", id="max-over-time-zero-sign"),
    # timestamp(v @ t offset o): lookback from t, samples read up to t - o (Prometheus 8433).
    pytest.param("timestamp(short @ 1700002130 offset 3m)", "empty", id="timestamp-at-offset"),
    pytest.param("timestamp((short @ 1700002130 offset 3m))", "empty",
                 id="timestamp-at-offset-paren"),
    pytest.param("timestamp(short @ 1700002130 offset 1m)", "empty",
                 id="timestamp-at-offset-1m"),
    pytest.param("timestamp(short @ 1700001890 offset 1m)", "1700001787",
                 id="timestamp-at-offset-found"),
    pytest.param("timestamp(short offset 3m @ 1700001950)", "1700001727",
                 id="timestamp-at-offset-inside-lookback"),
    # ... and with o < 0 the lookback from t finds the latest sample up to t (not t - o), kept
    # only after t - o - lookback (the start of what the selector loaded).
    pytest.param("timestamp(short @ 1700001750 offset -1m)", "1700001727",
                 id="timestamp-at-negative-offset"),
    pytest.param("timestamp(short @ 1700001750 offset -5m)", "empty",
                 id="timestamp-at-negative-offset-past-lookback"),
    pytest.param('timestamp(g{kind="special"} @ end() offset -90s)', "1700001907",
                 id="timestamp-at-end-negative-offset"),
    # A bool comparison's many-to-one results are checked without __name__ when names go at
    # once: two left series that differ only by name clash inside the match.
    pytest.param('{__name__=~"dup_.*"} != bool on(a) group_left() short',
                 "error: multiple matches for labels: grouping labels must ensure unique matches",
                 id="bool-group-left-name-dropped-clash"),
    # @ times at the ends of int64 as Go converts and subtracts them (int64(2^63 ms) is the
    # smallest int64; an offset wraps around): nothing there, where numpy overflowed.
    pytest.param("g @ 9223372036854776", "empty", id="at-beyond-int64"),
    pytest.param("g @ 9223372036854774 offset -1h", "empty", id="at-offset-wraps"),
    pytest.param("count_over_time(g[5m:1m] @ -9223372036854774 offset 1h)", "empty",
                 id="at-offset-wraps-subquery"),
    pytest.param("absent(g @ 9223372036854775 offset 1s)", "1", id="at-int64-absent"),
    # A φ so large that φ * (n - 1) overflows is a plain ±Inf (no overflow warning).
    pytest.param("quantile(1e308, g)", "+Inf", id="quantile-huge-phi"),
    pytest.param('quantile_over_time(-1e308, g{kind="flat"}[5m])', "-Inf",
                 id="quantile-over-time-huge-phi"),
    # k beyond int64 is an error, not "all series".
    pytest.param("topk(Inf, g)", "error: Scalar value +Inf overflows int64", id="topk-inf"),
    pytest.param("topk(1e300, g)", "error: Scalar value 1e+300 overflows int64", id="topk-huge"),
    # le labels as Go's strconv.ParseFloat reads them ("1_0" = 10, 0x1p3 = 8; " 2.5" and the
    # out-of-range 1e400 are malformed, so that bucket is skipped).
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket{job="web"}, "le", "1_0", '
                 '"le", "2.5"))', "9.563218390804597", id="le-underscore"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket{job="web"}, "le", "0x1p3", '
                 '"le", "2.5"))', "7.655172413793103", id="le-hex"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket{job="web"}, "le", " 2.5", '
                 '"le", "2.5"))', "0.5", id="le-space"),
    pytest.param('histogram_quantile(0.75, label_replace(h_bucket{job="web"}, "le", "1e400", '
                 '"le", "2.5"))', "0.5", id="le-out-of-range"),
    # An le of NaN is neither below nor above any bound to Go's sort, so it stays where the
    # input put it (insertion sort below 13 buckets), and +Inf can still come last.
    pytest.param(NAN_LE.format(q="0.2"), "0.8", id="le-nan-in-place"),
    pytest.param(NAN_LE.format(q="0.9"), "2", id="le-nan-in-place-upper"),
    # holt_winters checks its factors in every window with a sample; NaN passes the check.
    pytest.param("holt_winters(g[1m], -0.1, 0.9)",
                 "error: invalid smoothing factor. Expected: 0 < sf < 1, got: -0.100000",
                 id="holt-winters-one-sample-windows"),
    pytest.param('holt_winters(g{kind="flat"}[10m], NaN, 0.5)', "NaN",
                 id="holt-winters-nan-factor"),
    # A subquery whose window holds no point of its step grid still evaluates its
    # step-invariant parts once (Prometheus's StepInvariantExpr at a start past the end).
    pytest.param("idelta((bottomk (Inf, log10(g @ 1700001230)))[30s:2m])",
                 "error: Scalar value +Inf overflows int64", id="empty-subquery-grid-invariant"),
    pytest.param("idelta((bottomk (Inf, log10(g)))[30s:2m])", "empty",
                 id="empty-subquery-grid-not-invariant"),
    # ... that next grid time lies past the planned read range: its selectors read nothing
    # (k = scalar(...) is NaN there, also in Prometheus), where the storage crashed.
    pytest.param('absent_over_time((topk(scalar(g{kind="flat"}), vector(-0.5)))[30s:20m])',
                 "error: Parameter value is NaN", id="empty-subquery-grid-past-read-range"),
    # Negative bucket counts are never "almost equal" because their difference over the
    # count is negative (almost.Equal is relative to |a| + |b|).
    pytest.param('histogram_quantile(1, ((-0.5 / h_bucket{job="api"} offset -2m)))', "2.5",
                 id="negative-bucket-counts-no-precision-fix"),
    # The rank's bucket is found by Go's binary search (sort.Search): a NaN count in the middle
    # sends it past the buckets a scan would stop at.
    pytest.param('histogram_quantile(0.1, (rate(h_bucket{job="api",le="0.5"}[5m]) * NaN '
                 'or rate(h_bucket{job="api",le!="0.5"}[5m])))', "NaN",
                 id="histogram-quantile-nan-count-binary-search"),
    pytest.param("holt_winters(g[10m], NaN, 1)",
                 "error: invalid trend factor. Expected: 0 < tf < 1, got: 1.000000",
                 id="holt-winters-nan-then-bad-trend"),
    # sort/sort_desc in a subquery whose window holds no step of its grid: nothing to order
    # (an IndexError on the step-less frame).
    pytest.param("deriv((sort_desc(year()))[1500ms:] offset -2m)", "empty",
                 id="sort-no-steps"),
    # timestamp() in a subquery evaluated in step slices, some before the data begin: the
    # samples' times, not the steps' (slices without series dropped them all; fuzz seed 44).
    pytest.param('last_over_time((timestamp(h_sum{job="api"}))[1w:])', "1700001907",
                 id="timestamp-in-sliced-subquery"),
    pytest.param('irate((timestamp(h_sum{job="api"} offset 90s))[1w:] offset -2m)', "4",
                 id="timestamp-in-sliced-subquery-irate"),
    # min/max keep the first of equal 0 and -0 in input order (Prometheus replaces its value
    # only by a strictly smaller/greater one).
    pytest.param('min(0 * {__name__=~"g|m|h_bucket"})', "-0", id="min-first-zero"),
    pytest.param('max(-0 * {__name__=~"g|m|h_bucket"})', "0", id="max-first-zero"),
    # quantile over a group of more than 12 with both zeros: Go's pdqsort arrangement.
    pytest.param('quantile(0.05, {__name__=~"g|m|h_bucket"} * ({__name__=~"g|m|h_bucket"} % 2 '
                 '> bool 0.5))', "0", id="quantile-aggregation-pdqsort-zero"),
    # A window of more than 12 values is sorted by Go's pdqsort (not stable, but
    # deterministic): the zero a quantile lands on is the one its moves leave there.
    pytest.param('quantile_over_time(0.05, (g{kind="frac"} * (g{kind="frac"} > bool 0))'
                 '[13m:1m])', "0", id="pdqsort-zero-sign-13"),
    pytest.param('quantile_over_time(0.2, (g{kind="frac"} * (g{kind="frac"} > bool 0))'
                 '[13m:1m])', "-0", id="pdqsort-zero-sign-13-neg"),
    pytest.param('quantile_over_time(0.37, (g{kind="frac"} * (g{kind="frac"} > bool 0))'
                 '[1h:15s])', "-0", id="pdqsort-zero-sign-240"),
    pytest.param('quantile_over_time(0.63, (g{kind="special"} * 0)[1h:15s])', "0",
                 id="pdqsort-zero-sign-nan"),
    pytest.param('quantile_over_time(0.5, (g{kind="special"} * 0)[50m:3s])', "-0",
                 id="pdqsort-zero-sign-1000"),
    # An @ <time> selector inside an aggregation's parameter moves along with the steps of a
    # range evaluation (here the subquery's), over the data loaded around its @ time: +Inf
    # for the first 5 steps, then NaN (promlab kept it pinned: 20).
    pytest.param('count_over_time((quantile(scalar(m{a="1"} @ 1700001230), g) > 0)[20m:1m])',
                 "5", id="pinned-selector-in-param-moves"),
    # ... but timestamp(v @ t) stays pinned (Prometheus sets its offset at every step).
    pytest.param('count_over_time((quantile(scalar(timestamp(m{a="1"} @ 1700001230)), g) > 0)'
                 '[20m:1m])', "20", id="pinned-timestamp-in-param-stays"),
    pytest.param('count_over_time((topk(scalar(max_over_time(g{kind="flat"}[3m] @ 1700001230)),'
                 ' m))[20m:1m])', "error: Parameter value is NaN",
                 id="pinned-range-in-param-moves"),
    # k out of int64 at some steps only: the value named is the first such step's in time
    # order, as 2.42 names it (promlab named the largest: "+Inf overflows"), in or out of step
    # slices (a subquery of 720 steps is evaluated in slices) ...
    pytest.param(K_OVER_LATER_INF.format(fn="topk", range="2h"),
                 "error: Scalar value 1e+300 overflows int64", id="k-first-overflow-sliced"),
    pytest.param(K_OVER_LATER_INF.format(fn="bottomk", range="20m"),
                 "error: Scalar value 1e+300 overflows int64", id="k-first-overflow"),
    # ... and checked over all the steps of the range, not slice by slice: the first slice's k
    # is -Inf or 0 (nothing to select there), a later one's 2, so the -Inf fails (promlab
    # answered; 2.42 fails with "-Inf overflows", the k-below-one class).
    pytest.param('count_over_time((topk(scalar(vector(-Inf) and on() vector(time()) < 1699995160'
                 ' or vector(0) and on() vector(time()) < 1699995760 or vector(2)), m))[2h:10s])',
                 "error: Scalar value -Inf underflows int64", id="k-checked-across-slices"),
    # A node pinned with @ below a subquery that starts where its evaluator starts despite an
    # offset is read that offset away from its @ time (Prometheus's @ offsets count the
    # subquery's offset, and are not set again when the start is unchanged): 2.42 and 3.x read
    # g at 1700001175 (promlab read it at 1700001230: 25.04), h_sum at end() - 1m (319.68).
    pytest.param('max_over_time((g{kind="temp"} @ 1700001230)[1m:10s] offset -55s)', "22.943",
                 id="at-below-unmoved-subquery"),
    pytest.param('max_over_time((g{kind="temp"} @ 1700001230)[1m:10s] offset -45s)', "25.04",
                 id="at-below-moved-subquery"),
    pytest.param('max_over_time((last_over_time((h_sum{job="api"} @ end())[2m30s:2m] offset -1m))'
                 '[7m30s:3m] offset -3m)', "310.8", id="at-below-nested-unmoved-subquery"),
    # ... but timestamp(v @ t) stays pinned there (its offset is set at every step).
    pytest.param("last_over_time((timestamp(short @ end()))[5m:10s] offset -4m55s)",
                 "1700001787", id="timestamp-at-below-unmoved-subquery"),
]


# (expression, what a range query over RANGE gives: "error: ..." or the number of series)
RANGE_REGRESSIONS = [
    # A subquery's inner expression drops names eagerly too (it ran with delayed removal, so
    # colliding series passed unnoticed when the outer function returned nothing).
    pytest.param('rate((-{__name__=~"dup_.*"})[5m:3m])',
                 "error: vector cannot contain metrics with the same labelset",
                 id="subquery-inner-eager-name-removal"),
]


RANGE_REGRESSIONS.append(pytest.param(
    # Many-to-one at the first step (c_total{job="web", instance="a"} is in its gap there),
    # duplicates on the right only later: Prometheus, going step by step, reports the former.
    '(c_total == bool on() c_total{job=~"w.*"})',
    "error: multiple matches for labels: many-to-one matching must be explicit "
    "(group_left/group_right)", id="first-step-error-wins"))


RANGE_REGRESSIONS += [
    # An aggregation over a step-invariant expression runs once, at the first step: k = 0
    # there, so nothing at any step.
    pytest.param('topk(scalar(m{c!=""}), g{kind=~"temp|flat"} @ start())', "0",
                 id="invariant-aggregation-param-at-start"),
    # @ start() inside an aggregation's parameter is ignored (k read at every step).
    pytest.param('topk(scalar(m{c!=""} @ start()), g)', "5", id="start-in-param-ignored"),
    # ... and nothing inside a parameter is evaluated once per range: an aggregation there over
    # a step-invariant expression still reads its own parameter at every step (φ > 1 at some
    # steps: k = +Inf there).
    pytest.param('bottomk(scalar(quantile(scalar(m{a="1"}), vector(10))), g)',
                 "error: Scalar value +Inf overflows int64", id="invariant-aggregation-in-param"),
    # ... and its data are read for every step, not only around the @ end() time (k is
    # g{kind="special"} at the first step, -11.87: nothing, where reading no data gave NaN).
    pytest.param('bottomk by (a) (scalar(g{kind="special"} @ end()), m @ 1700001230)', "0",
                 id="param-data-without-at-end"),
    # Only the first step's parameter is evaluated: the many-to-many clash at later steps
    # (short exists from minute 38) never happens; k is NaN at the first step (2.42: "Scalar
    # value NaN overflows int64", the k-nan-wording class).
    pytest.param('bottomk(scalar(short <= on() group_left(instance) {__name__=~"c_total|g"}), '
                 'c_total @ end())', "error: Parameter value is NaN",
                 id="invariant-aggregation-param-first-step-only"),
    # A range query: a pinned selector (or subquery) in the parameter reads nothing once the
    # steps have carried it past its @ time's lookback (k NaN from the third step).
    pytest.param('topk(scalar(g{kind="flat"} @ 1700001230), m)', "error: Parameter value is NaN",
                 id="pinned-selector-in-param-range"),
    pytest.param('topk(scalar(count_over_time(m{a="1"}[20m:1m] @ 1700001230 offset 1m)), g)',
                 "error: Parameter value is NaN", id="pinned-subquery-in-param-range"),
]
