"""Parse errors found by a differential fuzz of the parser against a real Prometheus.

Each row's message is what Prometheus 2.42 (``/api/v1/format_query`` of the Debian binary)
answers; every row is a case whose behaviour Prometheus 3.x's grammar (``generated_parser.y``)
and lexer keep, so promlab (which follows 3.x) must answer the same.
"""

from __future__ import annotations

import pytest

from promlab.errors import ParseError
from promlab.promql.parser import parse_expr, to_string

FUZZED_ERRORS = [
    # Go's regexp refuses bytes that are not UTF-8 (shown as U+FFFD in the API's JSON).
    pytest.param('x{a=~"\\xff"}', "1:3: parse error: error parsing regexp: invalid UTF-8: "
                 "`\ufffd)$`", id="regex-not-utf8"),
    pytest.param('x{a!~"a\\377b"}', "1:3: parse error: error parsing regexp: invalid UTF-8: "
                 "`\ufffdb)$`", id="regex-octal-not-utf8"),
    # Numbers are scanned by Prometheus 3's rules (2.42's scanner, before underscores, read
    # "1.2" and stopped): a second dot or exponent, a fraction in a hex number, "._" or ".."
    # and an exponent or "_" before "._eE" end the scan as no number.
    pytest.param("1.2.3", '1:1: parse error: bad number or duration syntax: "1.2."',
                 id="number-second-dot"),
    pytest.param("x[1.2.3]", '1:3: parse error: bad number or duration syntax: "1.2."',
                 id="range-number-second-dot"),
    pytest.param("0x1.8p1", '1:1: parse error: bad number or duration syntax: "0x1."',
                 id="hex-fraction"),
    pytest.param("1e5e5", '1:1: parse error: bad number or duration syntax: "1e5e"',
                 id="second-exponent"),
    pytest.param("1..", '1:1: parse error: bad number or duration syntax: "1.."', id="dot-dot"),
    pytest.param("1_.5", '1:1: parse error: bad number or duration syntax: "1_."',
                 id="underscore-dot"),
    pytest.param("x + 1_", '1:5: parse error: bad number or duration syntax: "1_"',
                 id="underscore-at-end"),
    pytest.param("0xee", '1:1: parse error: bad number or duration syntax: "0xee"',
                 id="hex-e-read-as-exponent"),
    pytest.param("0.2.3", '1:1: parse error: error parsing number: strconv.ParseFloat: '
                 'parsing "0.2.3": invalid syntax', id="first-dot-not-counted"),
    pytest.param('x{a="b" # comment', "1:18: parse error: unexpected end of input inside braces",
                 id="comment-to-end-inside-braces"),
    # A lexer failure at the end of the input after a ")" comes after that ")" is refused.
    pytest.param("max_over_time(data[2m)",
                 '1:22: parse error: unexpected ")" in subquery or range, expected ":" or "]"',
                 id="unclosed-bracket-after-paren"),
    # Before an aggregation without a leading by/without is checked, the next token is read.
    pytest.param("avg())", "1:7: parse error: unexpected right parenthesis ')'",
                 id="aggregation-args-after-lexer-error"),
    pytest.param("topk(x[13m]))", "1:14: parse error: unexpected right parenthesis ')'",
                 id="aggregation-count-after-lexer-error"),
    pytest.param("sum by (a) ())", "1:1: parse error: no arguments for aggregate expression "
                 "provided", id="aggregation-modifier-first-no-lookahead"),
    # After group_left, a token that can start no operand is refused in the grouping labels.
    pytest.param("x / on(a) group_left atan2 y",
                 '1:22: parse error: unexpected <op:atan2> in grouping opts, expected "("',
                 id="group-left-atan2"),
    pytest.param("x / on(a) group_left == y",
                 '1:22: parse error: unexpected <op:==> in grouping opts, expected "("',
                 id="group-left-comparison"),
    pytest.param("x / on(a) group_left [5m]",
                 '1:22: parse error: unexpected "[" in grouping opts, expected "("',
                 id="group-left-bracket"),
    # 3.x checks a quoted grouping label as UTF-8 (2.42 refused any quoted label here).
    pytest.param('sum by ("\\xff") (x)',
                 '1:9: parse error: invalid label name for grouping: "\\xff"',
                 id="grouping-label-not-utf8"),
    pytest.param("sum(x))", "1:8: parse error: unexpected right parenthesis ')'",
                 id="unbalanced-paren"),
    # An unknown function is named when the whole call is reduced, after its arguments.
    pytest.param("metri([5m])", '1:7: parse error: unexpected "["', id="unknown-fn-after-args"),
    pytest.param("abset(", "1:7: parse error: unclosed left parenthesis", id="unknown-fn-unclosed"),
    pytest.param("s(umum(x)", '1:3: parse error: unknown function with name "umum"',
                 id="unknown-fn-inner-first"),
    pytest.param("foo(rate(x))", '1:1: parse error: unknown function with name "foo"',
                 id="unknown-fn-before-type-check"),
    # A comma before a token that cannot start an argument is a trailing comma, reported at
    # the comma even when more arguments follow.
    pytest.param("topk(3,, http_requests)",
                 "1:7: parse error: trailing commas not allowed in function call args",
                 id="double-comma"),
    pytest.param("avg(topk(9,  @ foo))",
                 "1:11: parse error: trailing commas not allowed in function call args",
                 id="comma-then-at"),
    pytest.param("label_replace(x, ignoring,)",
                 "1:16: parse error: trailing commas not allowed in function call args",
                 id="comma-then-keyword"),
    # A syntax error inside an aggregation's arguments that no nearer rule names.
    pytest.param("avg(metric start)", '1:12: parse error: unexpected "start" in aggregation',
                 id="aggregation-keyword"),
    pytest.param("topk((3 x)", '1:9: parse error: unexpected identifier "x" in aggregation',
                 id="aggregation-in-paren"),
    pytest.param("sum(rate(x[5m]) 1)", '1:17: parse error: unexpected number "1" in aggregation',
                 id="aggregation-in-call"),
    pytest.param('min(job"a")', '1:8: parse error: unexpected string "\\"a\\"" in aggregation',
                 id="aggregation-string"),
    pytest.param("sum by (a) (x 0s)",
                 '1:15: parse error: unexpected duration "0s" in aggregation',
                 id="aggregation-after-modifier"),
    pytest.param("rate(sum(x) y)", '1:13: parse error: unexpected identifier "y"',
                 id="after-aggregation-plain"),
    pytest.param("sum(x) y", '1:8: parse error: unexpected identifier "y"',
                 id="aggregation-done-plain"),
    # 3.x's lexer reads "y" after "[5m" as an identifier (2.42's bracket lexer did not).
    pytest.param("sum(x[5m y])",
                 '1:10: parse error: unexpected identifier "y" in subquery or range, expected ":" '
                 'or "]"', id="aggregation-range-keeps-context"),
    pytest.param("sum(a + on b)",
                 '1:12: parse error: unexpected identifier "b" in grouping opts, expected "("',
                 id="aggregation-grouping-keeps-context"),
]


@pytest.mark.parametrize(("query", "message"), FUZZED_ERRORS)
def test_fuzzed_error_messages(query: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expr(query)
    assert str(info.value) == message


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param('0 * x{# comment\ngroup="canary"}', '0 * x{group="canary"}',
                 id="comment-inside-braces"),
    pytest.param('x{a # comment\n="b"}', 'x{a="b"}', id="comment-before-operator"),
    # 3.x's maybe_label takes a metric identifier, valid as a UTF-8 label name (2.42 refused).
    pytest.param('sum by (jo:) (x)', 'sum by (jo:) (x)', id="colon-grouping-label-3x"),
    pytest.param("0xee + 0x1e5", "238 + 485", id="hex-with-e-digits"),
])
def test_fuzzed_accepted(query: str, expected: str) -> None:
    assert to_string(parse_expr(query)) == expected


@pytest.mark.parametrize("query", [
    pytest.param("f(a,,b)", id="double-comma-unknown"),
    pytest.param("label_replace(x,, \"a\", \"b\", \"c\", \"d\")", id="double-comma-known"),
])
def test_double_comma_is_only_a_trailing_comma(query: str) -> None:
    with pytest.raises(ParseError, match="trailing commas not allowed"):
        parse_expr(query)
