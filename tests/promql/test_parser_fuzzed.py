"""Parse errors found by a differential fuzz of the parser against a real Prometheus.

Each row's message is what Prometheus 2.42 (``/api/v1/format_query`` of the Debian binary)
answers; every row is a case whose behaviour Prometheus 3.x's grammar (``generated_parser.y``)
and lexer keep, so promlab (which follows 3.x) must answer the same.
"""

from __future__ import annotations

import pytest

from promlab.errors import ParseError
from promlab.promql.parser import parse_expr

FUZZED_ERRORS = [
    # A lexer failure at the end of the input after a ")" comes after that ")" is refused.
    pytest.param("max_over_time(data[2m)",
                 '1:22: parse error: unexpected ")" in subquery or range, expected ":" or "]"',
                 id="unclosed-bracket-after-paren"),
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


@pytest.mark.parametrize("query", [
    pytest.param("f(a,,b)", id="double-comma-unknown"),
    pytest.param("label_replace(x,, \"a\", \"b\", \"c\", \"d\")", id="double-comma-known"),
])
def test_double_comma_is_only_a_trailing_comma(query: str) -> None:
    with pytest.raises(ParseError, match="trailing commas not allowed"):
        parse_expr(query)
