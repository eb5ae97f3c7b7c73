"""Parser tests: AST shapes, precedence, literals, modifiers and Prometheus's error messages.

The error table (``ORACLE_ERRORS``) was checked against a real Prometheus (``/api/v1/format_query``
of the Debian 2.42 binary) for the cases whose behaviour did not change in 3.x; the 3.x-only
cases below it follow Prometheus 3.x's grammar and parser source.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from promlab.errors import ParseError
from promlab.model import MatchType
from promlab.promql.parser import (
    ast,
    parse_duration_literal,
    parse_expr,
    parse_series_selector,
    to_string,
)
from promlab.promql.parser.ast import ValueType

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prometheus-api-examples"

ORACLE_ERRORS = [
    ('up{job=}', '1:8: parse error: unexpected "}" in label matching, expected string'),
    ('sum(up', '1:7: parse error: unclosed left parenthesis'),
    ('up $ 1', "1:4: parse error: unexpected character: '$'"),
    ('foo(up)', '1:1: parse error: unknown function with name "foo"'),
    ('rate(up)', '1:6: parse error: expected type range vector in call to function "rate", got instant vector'),
    ('1 == 1', '1:3: parse error: comparisons between scalars must use BOOL modifier'),
    ('1 and 1', '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ('foo and 1', '1:1: parse error: set operator "and" not allowed in binary scalar expression'),
    ('a + on(b) ignoring(c) d', '1:11: parse error: unexpected <ignoring>'),
    ('-"string"', '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "string"'),
    ('-test[5m]', '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector"'),
    ('*test', '1:1: parse error: unexpected <op:*>'),
    ('1 offset 1d', '1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery'),
    ('foo offset 1d offset 2d', '1:1: parse error: offset may not be set multiple times'),
    ('foo @ 1 @ 2', '1:1: parse error: @ <timestamp> may not be set multiple times'),
    ('foo[5m] offset 1m offset 2m', '1:1: parse error: offset may not be set multiple times'),
    ('foo offset 5m[10m]', '1:14: parse error: no offset modifiers allowed before range'),
    ('foo @ 10 [10m]', '1:10: parse error: no @ modifiers allowed before range'),
    ('(foo)[5m]', '1:6: parse error: ranges only allowed for vector selectors'),
    ('sum(foo)[5m]', '1:9: parse error: ranges only allowed for vector selectors'),
    ('foo[5m:1m][5m:1m]', '1:1: parse error: subquery is only allowed on instant vector, got matrix instead'),
    ('sum foo', '1:5: parse error: unexpected identifier "foo"'),
    ('sum by foo', '1:8: parse error: unexpected identifier "foo" in grouping opts, expected "("'),
    ('sum by (foo', '1:12: parse error: unclosed left parenthesis'),
    ('sum by (foo bar)', '1:13: parse error: unexpected identifier "bar" in grouping opts, expected "," or ")"'),
    ('sum(x,)', '1:6: parse error: trailing commas not allowed in function call args'),
    ('rate(x,)', '1:7: parse error: trailing commas not allowed in function call args'),
    ('sum()', '1:1: parse error: no arguments for aggregate expression provided'),
    ('topk(x)', '1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1'),
    ('topk(1, x, y)', '1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 3'),
    ('count_values(1, x)', '1:14: parse error: expected type string in aggregation parameter, got scalar'),
    ('quantile("a", x)', '1:10: parse error: expected type scalar in aggregation parameter, got string'),
    ('sum("a")', '1:5: parse error: expected type instant vector in aggregation expression, got string'),
    ('foo{a="b" c="d"}', '1:11: parse error: unexpected identifier "c" in label matching, expected "," or "}"'),
    ('foo{a}', '1:6: parse error: unexpected "}" in label matching, expected label matching operator'),
    ('foo{=}', '1:5: parse error: unexpected "=" in label matching, expected identifier or "}"'),
    ('{}', '1:1: parse error: vector selector must contain at least one non-empty matcher'),
    ('{a=""}', '1:1: parse error: vector selector must contain at least one non-empty matcher'),
    ('{a=~".*"}', '1:1: parse error: vector selector must contain at least one non-empty matcher'),
    ('foo{__name__="bar"}', '1:1: parse error: metric name must not be set twice: "foo" or "bar"'),
    ('foo bar', '1:5: parse error: unexpected identifier "bar"'),
    ('foo )', "1:6: parse error: unexpected right parenthesis ')'"),
    ('(1))', "1:5: parse error: unexpected right parenthesis ')'"),
    ('((1)', '1:5: parse error: unclosed left parenthesis'),
    ('(', '1:2: parse error: unclosed left parenthesis'),
    ('1 +', '1:4: parse error: unexpected end of input'),
    ('foo[5m', '1:7: parse error: unclosed left bracket'),
    ('foo[5m:', '1:8: parse error: unclosed left bracket'),
    ('foo[5m:1m', '1:10: parse error: unclosed left bracket'),
    ('foo[0s]', '1:5: parse error: duration must be greater than 0'),
    ('foo @', '1:6: parse error: unexpected end of input in @, expected timestamp'),
    ('foo @ bar', '1:7: parse error: unexpected identifier "bar" in @, expected timestamp'),
    ('foo @ start', '1:12: parse error: unexpected end of input in @, expected timestamp'),
    ('foo @ start(', '1:13: parse error: unclosed left parenthesis'),
    ('"abc', '1:1: parse error: unterminated quoted string'),
    ("'abc", '1:1: parse error: unterminated quoted string'),
    ('`abc', '1:1: parse error: unterminated raw string'),
    ('"\\q"', "1:1: parse error: unknown escape sequence U+0071 'q'"),
    ('"\\x4"', '1:1: parse error: illegal character U+0022 \'"\' in escape sequence'),
    ('\'\\"\'', '1:1: parse error: unknown escape sequence U+0022 \'"\''),
    ('"\\\'"', "1:1: parse error: unknown escape sequence U+0027 '''"),
    ('a =~ b', "1:3: parse error: unexpected character after '=': '~'"),
    ('a !~ b', "1:3: parse error: unexpected character after '!': '~'"),
    ('a ! b', "1:3: parse error: unexpected character after '!': ' '"),
    ('a = b', '1:3: parse error: unexpected "="'),
    ('foo{a!b}', "1:6: parse error: unexpected character after '!' inside braces: 'b'"),
    ('foo{a="b"', '1:10: parse error: unexpected end of input inside braces'),
    ('foo{', '1:5: parse error: unexpected end of input inside braces'),
    ('foo}', "1:4: parse error: unexpected character: '}'"),
    ('foo]', "1:4: parse error: unexpected right bracket ']'"),
    ('foo[5m]]', "1:8: parse error: unexpected right bracket ']'"),
    ('on', '1:1: parse error: unexpected <on>'),
    ('ignoring', '1:1: parse error: unexpected <ignoring>'),
    ('bool', '1:1: parse error: unexpected <bool>'),
    ('group_left', '1:1: parse error: unexpected <group_left>'),
    ('atan2', '1:1: parse error: unexpected <op:atan2>'),
    ('sum by (a) (x) by (b)', '1:16: parse error: unexpected <by>'),
    ('a * on(x) group_left(x) b', '1:3: parse error: label "x" must not occur in ON and GROUP clause at once'),
    ('a + bool b', '1:3: parse error: bool modifier can only be used on comparison operators'),
    ('a and bool b', '1:3: parse error: bool modifier can only be used on comparison operators'),
    ('a or on(x) group_left b', '1:1: parse error: no grouping allowed for "or" operation'),
    ('time() + bool 1', '1:8: parse error: bool modifier can only be used on comparison operators'),
    ('"a" + 1', '1:1: parse error: binary expression must contain only scalar and instant vector types'),
    ('x + "a"', '1:5: parse error: binary expression must contain only scalar and instant vector types'),
    ('abs(x[5m])', '1:5: parse error: expected type instant vector in call to function "abs", got range vector'),
    ('histogram_quantile(x, y)', '1:20: parse error: expected type scalar in call to function "histogram_quantile", got instant vector'),
    ('label_replace(x, "a", "b", "c")', '1:1: parse error: expected 5 argument(s) in call to "label_replace", got 4'),
    ('round(x, 1, 2)', '1:1: parse error: expected at most 2 argument(s) in call to "round", got 3'),
    ('day_of_month(x, y)', '1:1: parse error: expected at most 1 argument(s) in call to "day_of_month", got 2'),
    ('vector(1, 2)', '1:1: parse error: expected 1 argument(s) in call to "vector", got 2'),
    ('time(1)', '1:1: parse error: expected 0 argument(s) in call to "time", got 1'),
    ('RATE(x[5m])', '1:1: parse error: unknown function with name "RATE"'),
    ('0x', '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "0x": invalid syntax'),
    ('1e ', '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "1e": invalid syntax'),
    ('1e999', '1:1: parse error: error parsing number: strconv.ParseFloat: parsing "1e999": value out of range'),
    ('x @ Inf', '1:1: parse error: timestamp out of bounds for @ modifier: +Inf'),
    ('x @ NaN', '1:1: parse error: timestamp out of bounds for @ modifier: NaN'),
    ('# only a comment', '1:1: parse error: no expression found in input'),
    ('sum(x) by', '1:10: parse error: unexpected end of input in grouping opts, expected "("'),
    ('sum(x) by (', '1:12: parse error: unclosed left parenthesis'),
    ('sum(x) without', '1:15: parse error: unexpected end of input in grouping opts, expected "("'),
    ('sum by (a) x', '1:12: parse error: unexpected identifier "x" in aggregation'),
    ('sum by (a) (x', '1:14: parse error: unclosed left parenthesis'),
    ('sum(x) by (a b)', '1:14: parse error: unexpected identifier "b" in grouping opts, expected "," or ")"'),
    ('sum(x) by (1)', '1:12: parse error: unexpected number "1" in grouping opts, expected label'),
    # Columns count UTF-8 bytes, as Prometheus's (2.42 answered these: "ü" is two bytes).
    ('a{x="ü"} / bool b', '1:11: parse error: bool modifier can only be used on comparison operators'),
    ('a{x="üü"} foo', '1:13: parse error: unexpected identifier "foo"'),
    ('a{x="ü"}[5m:1m1]', '1:14: parse error: bad number or duration syntax: "1m1"'),
    # "without" may name a metric but not a grouping label (Prometheus 2.42 answered these; its
    # and 3.x's maybe_label rule leave WITHOUT out).
    ('sum(x) by (without)', '1:12: parse error: unexpected <without> in grouping opts, expected label'),
    ('x + on(without) x', '1:8: parse error: unexpected <without> in grouping opts, expected label'),
    ('x + on(a) group_left(without) x', '1:22: parse error: unexpected <without> in grouping opts, expected label'),
    ('topk by (a) (x)', '1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1'),
    ('count_values by (a) (x)', '1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1'),
    ('foo{,}', '1:5: parse error: unexpected "," in label matching, expected identifier or "}"'),
    ('foo{a="b",,}', '1:11: parse error: unexpected "," in label matching, expected identifier or "}"'),
    ('foo{a=="b"}', '1:7: parse error: unexpected "=" in label matching, expected string'),
    ('foo{a=~b}', '1:8: parse error: unexpected identifier "b" in label matching, expected string'),
    ('foo{1="b"}', "1:5: parse error: unexpected character inside braces: '1'"),
    ('foo{a="b"}{c="d"}', '1:11: parse error: unexpected "{"'),
    ('foo{a="b"}[5m]{c="d"}', '1:15: parse error: unexpected "{"'),
    ('foo[5m][5m]', '1:8: parse error: ranges only allowed for vector selectors'),
    ('foo[5m] + 1', '1:1: parse error: binary expression must contain only scalar and instant vector types'),
    ('foo[5m] > 1', '1:1: parse error: binary expression must contain only scalar and instant vector types'),
    ('1 + foo[5m]', '1:5: parse error: binary expression must contain only scalar and instant vector types'),
    ('-foo[5m]', '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector"'),
    ('sum(foo[5m])', '1:5: parse error: expected type instant vector in aggregation expression, got range vector'),
    ('rate(foo)', '1:6: parse error: expected type range vector in call to function "rate", got instant vector'),
    ('rate(1)', '1:6: parse error: expected type range vector in call to function "rate", got scalar'),
    ('rate("a")', '1:6: parse error: expected type range vector in call to function "rate", got string'),
    ('rate(foo[5m], 1)', '1:1: parse error: expected 1 argument(s) in call to "rate", got 2'),
    ('rate()', '1:1: parse error: expected 1 argument(s) in call to "rate", got 0'),
    ('label_replace(foo, 1, "a", "b", "c")', '1:20: parse error: expected type string in call to function "label_replace", got scalar'),
    ('scalar(foo[5m])', '1:8: parse error: expected type instant vector in call to function "scalar", got range vector'),
    ('vector(foo)', '1:8: parse error: expected type scalar in call to function "vector", got instant vector'),
    ('vector("a")', '1:8: parse error: expected type scalar in call to function "vector", got string'),
    ('time() == time()', '1:8: parse error: comparisons between scalars must use BOOL modifier'),
    ('foo + ignoring(a) 1', '1:1: parse error: vector matching only allowed between instant vectors'),
    ('foo + on(a) 1', '1:1: parse error: vector matching only allowed between instant vectors'),
    ('1 + on(a) foo', '1:1: parse error: vector matching only allowed between instant vectors'),
    ('foo and on(a) 1', '1:1: parse error: vector matching only allowed between instant vectors'),
    ('foo and on(a) group_left bar', '1:1: parse error: no grouping allowed for "and" operation'),
    ('foo or bool bar', '1:5: parse error: bool modifier can only be used on comparison operators'),
    ('foo * on(a) group_left(a) bar', '1:5: parse error: label "a" must not occur in ON and GROUP clause at once'),
    ('foo * group_left bar', '1:7: parse error: unexpected <group_left>'),
    ('foo * bool bar', '1:5: parse error: bool modifier can only be used on comparison operators'),
    ('foo * on bar', '1:10: parse error: unexpected identifier "bar" in grouping opts, expected "("'),
    ('foo * on(a) bool bar', '1:13: parse error: unexpected <bool>'),
    ('"a" + "b"', '1:1: parse error: binary expression must contain only scalar and instant vector types'),
    ('-"a"', '1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "string"'),
    ('(foo) offset 5m', '1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery'),
    ('foo[5m:] @ 5 @ 6', '1:1: parse error: @ <timestamp> may not be set multiple times'),
    ('foo[5m:] offset 1m offset 2m', '1:1: parse error: offset may not be set multiple times'),
    ('1[5m:]', '1:1: parse error: subquery is only allowed on instant vector, got scalar instead'),
    ('"a"[5m:]', '1:1: parse error: subquery is only allowed on instant vector, got string instead'),
    ('foo[5m][5m:]', '1:1: parse error: subquery is only allowed on instant vector, got matrix instead'),
    ('foo[5m:1m:1m]', "1:10: parse error: unexpected colon ':'"),
    ('foo[5m 1m]', '1:8: parse error: unexpected duration "1m" in subquery or range, expected ":" or "]"'),
    ('foo[1m:1m 1m]', '1:11: parse error: unexpected duration "1m" in subquery selector, expected "]"'),
    ('foo @ start(1)', '1:13: parse error: unexpected number "1" in @, expected timestamp'),
    ('foo @ stop()', '1:7: parse error: unexpected identifier "stop" in @, expected timestamp'),
    ('foo @ -Inf', '1:1: parse error: timestamp out of bounds for @ modifier: -Inf'),
    ('foo @ 1e30', '1:1: parse error: timestamp out of bounds for @ modifier: 1000000000000000019884624838656.000000'),
    ('1 offset 5m', '1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery'),
    ('"a" offset 5m', '1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery'),
    ('sum(x) @ 5', '1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery'),
    ('foo!', "1:4: parse error: unexpected character after '!': '�'"),
    ('foo!=', '1:6: parse error: unexpected end of input'),
    ('foo =', '1:5: parse error: unexpected "="'),
    ('foo ==', '1:7: parse error: unexpected end of input'),
    ('foo ~ bar', "1:5: parse error: unexpected character: '~'"),
    ('a.b', "1:2: parse error: unexpected character: '.'"),
    ('foo bar $', '1:5: parse error: unexpected identifier "bar"'),
    ('sum(x) by (a) $', "1:15: parse error: unexpected character: '$'"),
    ('1 + $', "1:5: parse error: unexpected character: '$'"),
    ('foo{a="b"} $', "1:12: parse error: unexpected character: '$'"),
    ('rate(x[5m] $', "1:12: parse error: unexpected character: '$'"),
    ('foo[5m] $', "1:9: parse error: unexpected character: '$'"),
    ('foo offset 5m $', "1:15: parse error: unexpected character: '$'"),
    ('sum(x $', "1:7: parse error: unexpected character: '$'"),
    ('sum $', "1:5: parse error: unexpected character: '$'"),
    ('foo @ $', "1:7: parse error: unexpected character: '$'"),
    ('foo{a=$}', "1:7: parse error: unexpected character inside braces: '$'"),
    ('foo{$}', "1:5: parse error: unexpected character inside braces: '$'"),
    ('(foo $)', "1:6: parse error: unexpected character: '$'"),
    ('foo $ bar', "1:5: parse error: unexpected character: '$'"),
    ('-$', "1:2: parse error: unexpected character: '$'"),
]

ERRORS_3X = [
    # The number scanner's rules (since 2.48): an exponent at the end of the input is no number.
    ("1e", '1:1: parse error: bad number or duration syntax: "1e"'),
    ("foo[5m:0]", "1:8: parse error: duration must be greater than 0"),
    ("foo[-5m]", "1:5: parse error: duration must be greater than 0"),
    ("foo offset", "1:11: parse error: unexpected end of input in offset, expected number, "
                   "duration, step(), or range()"),
    ("foo[]", '1:5: parse error: unexpected "]" in subquery or range selector, expected number, '
              "duration, step(), or range()"),
    ("foo[5x]", '1:5: parse error: bad number or duration syntax: "5"'),
    ("foo[5m1]", '1:5: parse error: bad number or duration syntax: "5m1"'),
    ("foo[5m:x]", '1:8: parse error: unexpected identifier "x" in subquery selector, expected '
                  'number, duration, step(), range(), or "]"'),
    ("foo[1h/0]", "1:7: parse error: division by zero"),
    ("foo[1h%0]", "1:7: parse error: modulo by zero"),
    ("sum by (\"\") (x)", '1:9: parse error: invalid label name for grouping: ""'),
    ("(foo) anchored", "1:1: parse error: anchored modifier not implemented"),
    ("foo[5m:] smoothed", "1:1: parse error: smoothed modifier is not supported for subqueries"),
    ("foo[5m] anchored smoothed", "1:1: parse error: anchored and smoothed modifiers cannot be used "
                                  "together"),
    ("a and fill(0) b", "1:1: parse error: filling in missing series not allowed for set operators"),
    ("a + fill(0) 1", "1:1: parse error: filling in missing series only allowed between instant "
                      "vectors"),
    ("info(x, y)", "1:9: parse error: expected label selectors only, got vector selector instead"),
    ("info(x, 1)", "1:1: parse error: expected type instant vector in call to function \"info\", got "
                   "scalar"),
    ("histogram_quantiles(x, \"q\")", '1:1: parse error: expected at least 3 argument(s) in call to '
                                      '"histogram_quantiles", got 2'),
    ("limitk(x)", "1:1: parse error: wrong number of arguments for aggregate expression provided, "
                  "expected 2, got 1"),
    ("limit_ratio(\"a\", x)", "1:13: parse error: expected type scalar in aggregation parameter, "
                              "got string"),
    ("foo(up) +", '1:1: parse error: unknown function with name "foo"'),
    ("", "1:1: parse error: no expression found in input"),
    ("  ", "1:1: parse error: no expression found in input"),
]


@pytest.mark.parametrize(("query", "message"), [pytest.param(q, m, id=q or "<empty>")
                                                for q, m in ORACLE_ERRORS + ERRORS_3X])
def test_error_messages(query: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_expr(query)
    assert str(info.value) == message


def _reference_cases() -> list[object]:
    if not REFERENCE.is_dir():
        return []
    out = []
    for path in sorted(REFERENCE.glob("error_parse_*.json")):
        doc = json.loads(path.read_text())
        prefix = 'invalid parameter "query": '
        out.append(pytest.param(doc["request"]["params"]["query"],
                                doc["body"]["error"].removeprefix(prefix), id=path.stem))
    return out


@pytest.mark.parametrize(("query", "message"), _reference_cases())
def test_reference_api_errors(query: str, message: str) -> None:
    """The messages recorded from a real Prometheus's HTTP API."""
    with pytest.raises(ParseError) as info:
        parse_expr(query)
    assert str(info.value) == message


def test_reference_examples_present() -> None:
    if not REFERENCE.is_dir():
        import os

        if os.environ.get("CI") == "true":
            pytest.fail(f"reference data missing: {REFERENCE}")
        pytest.skip(f"reference data missing: {REFERENCE}")
    assert len(_reference_cases()) >= 5


def test_error_attributes() -> None:
    with pytest.raises(ParseError) as info:
        parse_expr("sum(up")
    err = info.value
    assert err.query == "sum(up"
    assert err.pos == 6
    assert err.reason == "unclosed left parenthesis"
    assert err.line_col() == (1, 7)


def test_error_position_on_later_line() -> None:
    with pytest.raises(ParseError) as info:
        parse_expr("sum(\n  foo\n) $")
    assert str(info.value) == "3:3: parse error: unexpected character: '$'"


# --- AST shapes ----------------------------------------------------------------------------------

def vs(name: str | None, *matchers: tuple[str, str, str], **kw: object) -> ast.VectorSelector:
    from promlab.model import Matcher

    ms = [Matcher(MatchType(op), n, v) for n, op, v in matchers]
    if name is not None:
        ms.append(Matcher(MatchType.EQUAL, "__name__", name))
    return ast.VectorSelector(name=name, matchers=tuple(ms), **kw)  # type: ignore[arg-type]


def num(v: float) -> ast.NumberLiteral:
    return ast.NumberLiteral(value=v)


def binop(op: str, lhs: ast.Expr, rhs: ast.Expr, **kw: object) -> ast.BinaryExpr:
    if "matching" not in kw and lhs.type is ValueType.VECTOR and rhs.type is ValueType.VECTOR:
        card = "many-to-many" if op in ("and", "or", "unless") else "one-to-one"
        kw["matching"] = ast.VectorMatching(card=card)  # type: ignore[arg-type]
    return ast.BinaryExpr(op=op, lhs=lhs, rhs=rhs, **kw)  # type: ignore[arg-type]


SHAPES = [
    ("foo", vs("foo")),
    ("foo:bar:baz", vs("foo:bar:baz")),
    ('foo{a="b"}', vs("foo", ("a", "=", "b"))),
    ('{a="b", c!="d", e=~"f", g!~"h"}',
     vs(None, ("a", "=", "b"), ("c", "!=", "d"), ("e", "=~", "f"), ("g", "!~", "h"))),
    ('{__name__="x"}', vs(None, ("__name__", "=", "x"))),
    ('{"my.metric", "a.b"="v"}', vs(None, ("__name__", "=", "my.metric"), ("a.b", "=", "v"))),
    ("by", vs("by")),
    ("sum", vs("sum")),
    ("offset", vs("offset")),
    ("and", vs("and")),
    ("start", vs("start")),
    ("step", vs("step")),
    ("anchored", vs("anchored")),
    ('by{a="b"}', vs("by", ("a", "=", "b"))),
    ("1", num(1)),
    ("-1", num(-1)),
    ("+1.5", num(1.5)),
    ("0x1f", num(31)),
    ("1e3", num(1000)),
    ("010", num(8)),
    ("1_000", num(1000)),
    ("Inf", num(math.inf)),
    ("-inf", num(-math.inf)),
    ("5m", ast.NumberLiteral(value=300.0, duration=True)),
    ("1h30m", num(5400)),
    ('"a\\nb"', ast.StringLiteral(value="a\nb")),
    ("'it\\'s'", ast.StringLiteral(value="it's")),
    ("`raw\\n`", ast.StringLiteral(value="raw\\n")),
    ('"\\u00e9\\x41\\101\\U0001F600"', ast.StringLiteral(value="\u00e9AA\U0001F600")),
    ('"\\xc3\\xa9"', ast.StringLiteral(value="\u00e9")),
    ("-2 ^ 2", ast.UnaryExpr(op="-", expr=binop("^", num(2), num(2)))),
    ("2 ^ 3 ^ 2", binop("^", num(2), binop("^", num(3), num(2)))),
    ("1 + 2 * 3", binop("+", num(1), binop("*", num(2), num(3)))),
    ("1 - 2 - 3", binop("-", binop("-", num(1), num(2)), num(3))),
    ("-a * b", binop("*", ast.UnaryExpr(op="-", expr=vs("a")), vs("b"))),
    ("a atan2 b * c", binop("*", binop("atan2", vs("a"), vs("b")), vs("c"))),
    ("a or b and c unless d",
     binop("or", vs("a"), binop("unless", binop("and", vs("b"), vs("c")), vs("d")))),
    ("a > b + 1", binop(">", vs("a"), binop("+", vs("b"), num(1)))),
    ("1 > bool 2", binop(">", num(1), num(2), return_bool=True)),
    ("a + on(x, y) group_left(z) b",
     binop("+", vs("a"), vs("b"), matching=ast.VectorMatching(
         card="many-to-one", matching_labels=("x", "y"), on=True, include=("z",)))),
    ("a - ignoring(x) group_right b",
     binop("-", vs("a"), vs("b"), matching=ast.VectorMatching(
         card="one-to-many", matching_labels=("x",)))),
    ("a and on() b", binop("and", vs("a"), vs("b"), matching=ast.VectorMatching(
        card="many-to-many", on=True))),
    ("a * 2", binop("*", vs("a"), num(2))),
    ("a + fill(0) b", binop("+", vs("a"), vs("b"), matching=ast.VectorMatching(
        fill_lhs=0.0, fill_rhs=0.0))),
    ("a + fill_left(1) fill_right(-2) b", binop("+", vs("a"), vs("b"), matching=ast.VectorMatching(
        fill_lhs=1.0, fill_rhs=-2.0))),
    ("foo offset 5m", vs("foo", offset_ms=300_000)),
    ("foo offset -1h", vs("foo", offset_ms=-3_600_000)),
    ("foo offset 90", vs("foo", offset_ms=90_000)),
    ("foo @ 100", vs("foo", at_ms=100_000)),
    ("foo @ -1.5", vs("foo", at_ms=-1500)),
    ("foo @ 1.0005", vs("foo", at_ms=1001)),
    ("foo @ start()", vs("foo", at_modifier="start")),
    ("foo offset 1m @ end()", vs("foo", offset_ms=60_000, at_modifier="end")),
    ("foo[5m]", ast.MatrixSelector(vector_selector=vs("foo"), range_ms=300_000)),
    ("foo[90]", ast.MatrixSelector(vector_selector=vs("foo"), range_ms=90_000)),
    ("foo[5m] offset 1m @ 10",
     ast.MatrixSelector(vector_selector=vs("foo", offset_ms=60_000, at_ms=10_000),
                        range_ms=300_000)),
    ("foo[5m] anchored", ast.MatrixSelector(vector_selector=vs("foo", anchored=True),
                                            range_ms=300_000)),
    ("foo smoothed", vs("foo", smoothed=True)),
    ("foo[26m+4m]", ast.MatrixSelector(vector_selector=vs("foo"), range_ms=1_800_000)),
    ("foo[1h/2]", ast.MatrixSelector(vector_selector=vs("foo"), range_ms=1_800_000)),
    ("foo offset (2 ^ 2)", vs("foo", offset_ms=4000)),
    ("foo offset -2 ^ 2", binop("^", vs("foo", offset_ms=-2000), num(2))),
    ("foo[5m:]", ast.SubqueryExpr(expr=vs("foo"), range_ms=300_000)),
    ("foo[5m:1m] offset 1m @ 5",
     ast.SubqueryExpr(expr=vs("foo"), range_ms=300_000, step_ms=60_000, offset_ms=60_000,
                      at_ms=5000)),
    ("foo offset 5m [10m:]", ast.SubqueryExpr(expr=vs("foo", offset_ms=300_000), range_ms=600_000)),
    ("sum(foo)", ast.AggregateExpr(op="sum", expr=vs("foo"))),
    ("SUM BY (a) (foo)", ast.AggregateExpr(op="sum", expr=vs("foo"), grouping=("a",))),
    ("sum(foo) without (a, b)",
     ast.AggregateExpr(op="sum", expr=vs("foo"), grouping=("a", "b"), without=True)),
    ("topk(3, foo)", ast.AggregateExpr(op="topk", expr=vs("foo"), param=num(3))),
    ('count_values("v", foo)',
     ast.AggregateExpr(op="count_values", expr=vs("foo"), param=ast.StringLiteral(value="v"))),
    ("limitk by (a) (2, foo)",
     ast.AggregateExpr(op="limitk", expr=vs("foo"), param=num(2), grouping=("a",))),
    ('sum by ("a.b", on) (foo)', ast.AggregateExpr(op="sum", expr=vs("foo"),
                                                   grouping=("a.b", "on"))),
    ("(1)", ast.ParenExpr(expr=num(1))),
    ("-(1)", ast.UnaryExpr(op="-", expr=ast.ParenExpr(expr=num(1)))),
]


@pytest.mark.parametrize(("query", "expected"), [pytest.param(q, e, id=q) for q, e in SHAPES])
def test_shapes(query: str, expected: ast.Expr) -> None:
    assert parse_expr(query) == expected


def test_call_shapes() -> None:
    e = parse_expr("rate(foo[5m])")
    assert isinstance(e, ast.Call)
    assert e.func.name == "rate"
    assert e.type is ValueType.VECTOR
    assert e.args == (ast.MatrixSelector(vector_selector=vs("foo"), range_ms=300_000),)
    e = parse_expr("label_join(x, \"a\", \",\", \"b\", \"c\", \"d\")")
    assert isinstance(e, ast.Call) and len(e.args) == 6
    assert isinstance(parse_expr("time()"), ast.Call)
    e = parse_expr("vector(step())")
    assert isinstance(e, ast.Call) and isinstance(e.args[0], ast.Call)
    assert e.args[0].func.name == "step"
    for q in ("start()", "end()", "range()", "min_of(1, 2)", "histogram_quantiles(x, \"q\", 0.5, 0.9)",
              "info(x)", 'info(x, {k="v"})', 'info(x, {__name__=~".+_info"})',
              "first_over_time(x[1m])", "start_timestamp(x)", "sort_by_label(x, \"a\", \"b\")"):
        assert isinstance(parse_expr(q), ast.Call), q


def test_query_dependent_duration_expressions() -> None:
    e = parse_expr("count_over_time(x[step() + 1ms])")
    assert isinstance(e, ast.Call)
    ms = e.args[0]
    assert isinstance(ms, ast.MatrixSelector)
    assert ms.range_ms == 0
    assert isinstance(ms.range_expr, ast.BinaryExpr)
    assert to_string(ms.range_expr) == "step() + 1ms"
    sq = parse_expr("x[range():step()] offset -step()")
    assert isinstance(sq, ast.SubqueryExpr)
    assert to_string(sq.range_expr) == "range()"  # type: ignore[arg-type]
    assert to_string(sq.step_expr) == "step()"  # type: ignore[arg-type]
    assert to_string(sq.offset_expr) == "-step()"  # type: ignore[arg-type]
    v = parse_expr("x offset min_of(step(), 1s)")
    assert isinstance(v, ast.VectorSelector) and v.offset_expr is not None and v.offset_ms == 0


def test_binary_matching_normalised() -> None:
    e = parse_expr("a + 1")
    assert isinstance(e, ast.BinaryExpr) and e.matching is None
    e = parse_expr("a or b")
    assert isinstance(e, ast.BinaryExpr) and e.matching == ast.VectorMatching(card="many-to-many")
    e = parse_expr("1 + 2")
    assert isinstance(e, ast.BinaryExpr) and e.matching is None and e.type is ValueType.SCALAR


def test_positions() -> None:
    e = parse_expr("sum(rate(foo[5m])) by (job) + bar")
    assert isinstance(e, ast.BinaryExpr)
    assert (e.pos.start, e.pos.end) == (0, 33)
    assert (e.lhs.pos.start, e.lhs.pos.end) == (0, 27)
    assert (e.rhs.pos.start, e.rhs.pos.end) == (30, 33)


def test_nan_literals_compare_equal() -> None:
    assert parse_expr("NaN") == parse_expr("nan")
    assert parse_expr("a + fill(NaN) b") == parse_expr("a + fill(nan) b")


@pytest.mark.parametrize(("text", "name", "matchers"), [
    pytest.param('metric{l="v"}', "metric", [("l", "=", "v"), ("__name__", "=", "metric")],
                 id="name-and-label"),
    pytest.param('{__name__="x"}', "x", [("__name__", "=", "x")], id="name-matcher"),
    pytest.param('{"my.metric", "a.b"="v"}', "my.metric",
                 [("__name__", "=", "my.metric"), ("a.b", "=", "v")], id="utf8"),
    pytest.param("{}", None, [], id="empty"),
    pytest.param('up{job=~"a.*"}', "up", [("job", "=~", "a.*"), ("__name__", "=", "up")],
                 id="regex"),
    pytest.param("sum", "sum", [("__name__", "=", "sum")], id="keyword-name"),
])
def test_parse_series_selector(text: str, name: str | None, matchers: list[tuple[str, str, str]]) \
        -> None:
    got_name, got = parse_series_selector(text)
    assert got_name == name
    assert [(m.name, m.type.value, m.value) for m in got] == matchers


@pytest.mark.parametrize("text", ["foo bar", "foo{", "rate(x[5m])", "foo[5m]", "1"])
def test_parse_series_selector_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_series_selector(text)


@pytest.mark.parametrize(("text", "ms"), [("5m", 300_000), ("1h30m", 5_400_000), ("0", 0),
                                          ("250ms", 250), ("1y2w", 32_745_600_000)])
def test_parse_duration_literal(text: str, ms: int) -> None:
    assert parse_duration_literal(text) == ms


@pytest.mark.parametrize("text", ["5", "1.5m", "m", "5m1h", ""])
def test_parse_duration_literal_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_duration_literal(text)


@pytest.mark.parametrize(("pattern", "yes", "no"), [
    pytest.param("(?i)API", ["api", "API", "Api"], ["apix"], id="leading-flag"),
    pytest.param("((?i)PRO).*", ["production", "PROD"], ["xpro"], id="flag-in-group"),
    pytest.param("a(?i)b|c", ["aB", "C"], ["Ab"], id="flag-then-alternation"),
    pytest.param("[[:alpha:]]+", ["abC"], ["ab1"], id="posix-class"),
    pytest.param("[[]x", ["[x"], ["x"], id="bracket-in-class"),
    pytest.param(r"\Qa.b\E", ["a.b"], ["axb"], id="quoted-literal"),
    pytest.param("a.c", ["a\nc", "abc"], ["ac"], id="dot-matches-newline"),
])
def test_re2_matchers(pattern: str, yes: list[str], no: list[str]) -> None:
    e = parse_expr(f"x{{l=~{json.dumps(pattern)}}}")
    assert isinstance(e, ast.VectorSelector)
    m = e.matchers[0]
    assert m.value == pattern
    assert all(m.matches(v) for v in yes)
    assert not any(m.matches(v) for v in no)
    assert to_string(e) == f"x{{l=~{json.dumps(pattern)}}}"


def test_regex_error_message() -> None:
    with pytest.raises(ParseError) as info:
        parse_expr('x{a=~"("}')
    assert str(info.value) == "1:3: parse error: error parsing regexp: missing closing ): `^(?s:()$`"
