"""The differential fuzzer's known differences: classes of deliberate Prometheus 2.42 vs 3.x
differences (promlab follows 3.x), each with its reason, and the expressions 2.42 spells
differently (see test_differential_fuzz.py; test_differential_data.py uses them too)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from tests.promql.fuzz_compare import Answer, diff, loosely_same, without_names
from tests.promql.promql_gen_odd import SAFE_NESTED_RANGE

__all__ = ["KNOWN_DIFFERENCES", "REWRITES", "Known"]


@dataclass(frozen=True)
class Known:
    """A class of deliberate 2.42 vs 3.x differences. Expressions ``pattern`` matches are
    skipped, or, with ``values``, a sample where ``values(prometheus, promlab)`` holds is
    accepted."""

    name: str
    pattern: str
    reason: str
    values: Callable[[str, str], bool] | None = None
    answers: Callable[[Answer, Answer], bool] | None = None
    range_only: bool = False  # skip only the range query
    # ``values`` accepts samples of the range query only (and of an instant query whose input
    # order Prometheus leaves undefined: fuzz_compare.input_order_defined)
    range_values: bool = False

    def matches(self, expr: str) -> bool:
        return re.search(self.pattern, expr) is not None


def _unplaced(error: str) -> str:
    """An error text without its ``line:column:`` position."""
    return re.sub(r"\d+:\d+: ", "", error)


UTF8 = "Prometheus 3 validates label names as UTF-8 (any non-empty string is a valid name)"
KNOWN_DIFFERENCES: list[Known] = [
    Known("utf8-label-names", r'count_values\s*(\(|by|without).*"a b"', UTF8),
    Known("utf8-label-names", r'label_(replace|join)\(.*"(1bad|bad-name|1x|a-b)", "', UTF8),
    Known("new-functions",
          r"\b(first_over_time|histogram_(avg|stddev|stdvar)|start_timestamp)\(",
          "3.x functions that are not experimental there; 2.42 does not know them"),
    Known("durations-as-numbers", r"\d(ms|[smhdwy])\b",
          "3.x reads a duration where a number may stand as its seconds (vector(1h) is 3600: "
          "number_duration_literal); 2.42 fails with 'unexpected duration'",
          answers=lambda want, got: want[0] == "error"
          and "unexpected duration" in str(want[1])),  # 3.x goes on: any answer, any error
    Known("number-lexer", r"\d",
          "3.x's lexer refuses a malformed number itself ('bad number or duration syntax': "
          "1e, 1.2.3, 1__0); 2.42 lexes a prefix and fails in strconv or on the next token",
          answers=lambda want, got: want[0] == got[0] == "error"
          and re.search(r"error parsing number|unexpected (number|identifier)|unexpected "
                        r"character: '\.'|bad number or duration syntax", str(want[1])) is not None
          and "bad number or duration syntax" in str(got[1])),
    Known("numeric-durations", r"\[\d+\]|offset -?\d+(\.\d+)?(?![\w.])",
          "3.x reads a unitless number in a range selector or an offset as seconds; 2.42 "
          "rejects it"),
    Known("classic-histogram-fraction", r"histogram_fraction\(",
          "3.x histogram_fraction also reads classic le buckets; 2.42 only native histograms"),
    Known("single-nan-stddev", r"^(stddev|stdvar)\b(?!_)",
          "3.x: stddev/stdvar of a group whose only sample is NaN/±Inf is NaN; 2.42 gives 0",
          values=lambda want, got: want == "0" and got == "NaN"),
    Known("single-nan-stddev", r".\b(stddev|stdvar)\b(?!_)",
          "the same, inside a larger expression: the 0/NaN difference propagates"),
    Known("match-errors-before-filter", r"(==|!=|>=|<=|<|>)(?! bool)",
          "3.x raises many-to-one/grouping match errors before a comparison filters samples "
          "(conformance operators.test 'even when all but 0 or 1 series ... are filtered "
          "away'); 2.42 checks only the samples the filter keeps",
          answers=lambda want, got: got[0] == "error"
          and "multiple matches for labels" in str(got[1])
          and (want[0] != "error" or "found duplicate series" in str(want[1])
               or re.match(r"Scalar value |invalid (smoothing|trend) factor|vector cannot",
                           str(want[1])) is not None)),  # 3.x: that error comes first
    Known("label-fn-literals-first", r"\blabel_(replace|join)\(",
          "3.x checks label_replace/label_join's regex and label names before it evaluates "
          "the vector argument (evalLabelReplace/evalLabelJoin); 2.42 evaluates the vector "
          "first, so an error inside it wins there",
          answers=lambda want, got: want[0] == "error" and got[0] == "error"
          and str(got[1]).startswith("invalid ")),
    Known("match-error-precedence-across-steps", r"\bgroup_(left|right)\b",
          "when one step has a grouping clash and a later one a duplicate on the 'one' side, "
          "Prometheus reports the earlier step's error; promlab reports the duplicate "
          "(both fail; only the message differs)",
          answers=lambda want, got: want[0] == "error" and got[0] == "error"
          and "grouping labels must ensure unique matches" in str(want[1])
          and "found duplicate series" in str(got[1])),
    Known("unary-minus-merge", r"(^|[-+*/^%(,=<>]|\s)-\s*[A-Za-z_({]",
          "3.x merges the series that unary minus leaves with one label set (no two samples at "
          "one step); 2.42 fails with 'vector cannot contain metrics with the same labelset'",
          answers=lambda want, got: want[0] == "error" and "same labelset" in str(want[1])
          and got[0] != "error"),
    Known("nested-subquery-boundaries",
          r"(?=(.*\[\w+:\w*\]){2})(?=.*\[(?!" + SAFE_NESTED_RANGE + r":\dm\])\w+:\w*\])",
          "a subquery inside a subquery evaluates at times on its own step grid, so window "
          "starts meet sample times: 3.x leaves them out (left-open), 2.42 keeps them (not "
          "when every subquery has a range of whole minutes and a half and a step of whole "
          "minutes: promql_gen_odd's nested form)"),
    Known("mean-numerics", r"\bavg(_over_time)?\b",
          "3.x averages with a Kahan sum (exact 0 for cancelling values), 2.42 with an "
          "incremental mean that leaves ~1e-19 residues; division or sign tests magnify them",
          values=lambda want, got: loosely_same(want, got)),
    Known("regression-kahan-inf", r"\b(deriv|predict_linear|std(dev|var)_over_time)\(",
          "2.42's Kahan sums in linear regression and in stddev/stdvar_over_time turn an "
          "infinite sample or an overflow into NaN; 3.x keeps the infinity (kahanSumInc resets "
          "the compensation on ±Inf)",
          values=lambda want, got: want == "NaN" and got in ("+Inf", "-Inf")),
    Known("count-values-by-range", r"count_values\s*by\s*\(",
          "2.42 appends the value label to the aggregation's shared grouping list at every "
          "step of a range query, so later steps lose grouping labels (instant queries agree)",
          range_only=True),
    Known("kahan-negative-zero", r"\b(sum|avg)(_over_time)?\b",
          "3.x adds the Kahan compensation (+0) at the end, so a sum of -0 samples is 0; "
          "2.42 keeps -0", values=lambda want, got: want == "-0" and got == "0"),
    Known("extrapolation-before-data", r"\b(rate|increase)\(.*(\[(1h30m|1d|1w)[:\]]|offset 1h\b)",
          "a window reaching before the dataset's first sample: 3.x applies the extrapolation "
          "threshold before the counter's zero-point limit, 2.42 after it (extrapolatedRate), "
          "so a counter's start extrapolates differently"),
    Known("atan2-keeps-name", r"\batan2\b",
          "3.x drops the metric name in atan2's result like the other arithmetic operators "
          "(shouldDropMetricName, from 2.47); 2.42 keeps it",
          answers=lambda want, got: want[0] != "error" and got[0] != "error"
          and diff(without_names(want, got), got) is None),
    Known("atan2-keeps-name", r"\batan2\b.*__name__|__name__.*\batan2\b",
          "the same, where a later __name__ matcher, grouping or label function sees the name"),
    Known("number-underscores", r'(?<!["\w.])\d+(_\d+)+(?!["\w])|\b0[xX]_',
          "3.x reads underscores between digits of a number literal (1_000, 0x_1f); 2.42 rejects "
          "them"),
    Known("negative-zero-offset", r"offset -?0+(ms|[smhdwy])\b",
          "3.x accepts offset 0s and -0s (any offset duration expression); 2.42 wants it > 0"),
    Known("count-values-by-subquery", r"count_values\s*by\s*\(.*\[\w+:\w*\]",
          "the same 2.42 grouping bug inside a subquery (a range evaluation)"),
    Known("zero-sign-undefined-order", r"\b(min|max|topk|bottomk|quantile)\b",
          "which of equal 0 and -0 a min/max keeps (or a quantile lands on) depends on input "
          "order, which a range query (or a subquery, count_values, histogram_quantile, topk "
          "below) leaves undefined in Prometheus (map order); an instant query's is checked",
          values=lambda want, got: {want, got} == {"0", "-0"}, range_values=True),
    Known("k-ties-nested-range", r".\b(topk|bottomk)\b",
          "topk/bottomk break ties by input order, which a range query leaves undefined in "
          "Prometheus (map order); inside a larger expression other series then flow on",
          range_only=True),
    Known("mean-numerics-magnified",
          r"\b(ceil|floor|sgn)\(.*\bavg(_over_time)?\b|[%^].*\bavg(_over_time)?\b|"
          r"\bavg(_over_time)?\b.*[%^]",
          "the 2.42/3.x mean residues of mean-numerics (1e-17 against an exact 0) decide a "
          "ceil, floor or sign, or whether x % mean wraps (-1 % 0.05000000000000001); NaN ^ 1e-18 is NaN, "
          "NaN ^ 0 is 1"),
    Known("predict-linear-at", r"(predict_linear|quantile_over_time|holt_winters)\(.*@",
          "2.42 moves a pinned range of predict_linear (or of quantile_over_time/holt_winters "
          "with a computed parameter) along with the steps, so steps go missing (fixed in 3.x)"),
    Known("bottomk-ties-in-subquery", r"\b(topk|bottomk)\b.*\[\w+:\w*\]",
          "a subquery evaluates its inner expression over a range, where topk/bottomk break "
          "ties by series order, which Prometheus leaves undefined (map order): the series "
          "picked may change from point to point (rate((bottomk(1, x >= bool 0))[7m:3m]))"),
    Known("go-regexp-version", r"\(\?<[A-Za-z_]",
          "Go 1.22's regexp (Prometheus 3.x) reads (?<name>re) as a named group; the Go that "
          "built 2.42 rejects it"),
    Known("regex-dotall-anchor", r'=~\s*"',
          "3.x anchors a matcher's regex as ^(?s:re)$, 2.42 as ^(?:re)$: a parse error quotes it "
          "(positions aside: a rewritten spelling before the matcher moves them)",
          answers=lambda want, got: want[0] == got[0] == "error"
          and _unplaced(str(want[1]).replace("^(?:", "^(?s:")).endswith(_unplaced(str(got[1])))),
    Known("quoted-label-names", r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\"",
          UTF8 + "; 3.x reads a quoted name in a grouping list, 2.42 rejects it"),
    Known("duration-error-wording", r"\[\d+[A-Z]|offset \d+[A-Z]",
          "a malformed duration: 2.42 says 'bad duration syntax', 3.x 'bad number or duration "
          "syntax'",
          answers=lambda want, got: want[0] == got[0] == "error"
          and str(want[1]).replace("bad duration", "bad number or duration")
          .endswith(str(got[1]))),
    Known("k-nan-wording", r"\b(topk|bottomk)\b",
          "a NaN k: 2.42 says 'Scalar value NaN overflows int64', 3.x 'Parameter value is NaN'; "
          "3.x checks for a NaN k over all steps before the int64 range (newFParams, "
          "rangeEvalAgg), 2.42 fails at the first step whose k is NaN or out of range",
          answers=lambda want, got: want[0] == got[0] == "error"
          and re.search(r"Scalar value \S+ (over|under)flows int64", str(want[1])) is not None
          and str(got[1]) == "Parameter value is NaN"),
    Known("label-fn-literals-without-steps", r"\blabel_(replace|join)\(.*\[\w+:\w*\]",
          "3.x checks label_replace/label_join's regex and label names before evaluating "
          "(evalLabelReplace), so a subquery with no point of its step grid in the window fails "
          "too; 2.42 checks them at a step only and returns nothing",
          answers=lambda want, got: want[0] != "error" and got[0] == "error"
          and str(got[1]).startswith("invalid ")),
    Known("k-below-one", r"\b(topk|bottomk)\b",
          "3.x returns nothing when k < 1 at every step and checks int64 underflow only "
          "otherwise (rangeEvalAgg); 2.42 fails on a k of -Inf at once",
          answers=lambda want, got: want[0] == "error"
          and re.search(r"Scalar value -\S+ overflows int64", str(want[1])) is not None),
    Known("k-range-check-order", r"\b(topk|bottomk)\b",
          "a k out of the int64 range both ways at different steps: 3.x checks the smallest k "
          "over all steps first (rangeEvalAgg: underflow, then overflow), 2.42 fails at the "
          "first step out of range",
          answers=lambda want, got: want[0] == got[0] == "error"
          and re.fullmatch(r"Scalar value \S+ overflows int64", str(want[1])) is not None
          and re.fullmatch(r"Scalar value -\S+ underflows int64", str(got[1])) is not None),
    Known("timestamp-at-invariant-empty-subquery",
          r"timestamp\(\(*[^()]*@[^()]*\)*\).*\[\w+:\w*\]",
          "the same 3.x step invariance of timestamp(v @ t) inside a subquery whose window holds "
          "no step of its grid: 3.x still evaluates it once (its errors stand, such as names "
          "colliding once timestamp drops them), 2.42 evaluates nothing",
          answers=lambda want, got: want[0] != "error" and got[0] == "error"),
    Known("timestamp-at-step-invariant", r"\b(topk|bottomk|quantile)\b.*timestamp\(",
          "3.x treats timestamp(v @ t) as step invariant, so an aggregation over it takes its "
          "parameter at the first step (PR 17313); 2.42 at every step"),
]

# Expressions whose text 2.42 spells differently from 3.x: promlab runs the 3.x spelling.
REWRITES: list[tuple[str, str]] = [
    (r"\bholt_winters\(", "double_exponential_smoothing("),
]
