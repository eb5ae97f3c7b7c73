"""Lexer tests: token streams, quoting helpers and lexer error messages."""

from __future__ import annotations

import pytest

from promlab.promql.parser.lexer import Token, go_quote, go_quote_rune, lex, unquote


def types(text: str) -> list[tuple[str, str]]:
    return [(t.typ, t.val) for t in lex(text)]


STREAMS = [
    ("foo", [("IDENTIFIER", "foo"), ("EOF", "")]),
    ("foo:bar", [("METRIC_IDENTIFIER", "foo:bar"), ("EOF", "")]),
    (":foo", [("METRIC_IDENTIFIER", ":foo"), ("EOF", "")]),
    ("SUM By OFFSET", [("SUM", "SUM"), ("BY", "By"), ("OFFSET", "OFFSET"), ("EOF", "")]),
    ("and or unless atan2", [("LAND", "and"), ("LOR", "or"), ("LUNLESS", "unless"),
                             ("ATAN2", "atan2"), ("EOF", "")]),
    ("Inf NaN nan", [("NUMBER", "Inf"), ("NUMBER", "NaN"), ("NUMBER", "nan"), ("EOF", "")]),
    ("1 1.5 .5 5. 1e3 1E-3 0x1F 1_000",
     [("NUMBER", v) for v in ["1", "1.5", ".5", "5.", "1e3", "1E-3", "0x1F", "1_000"]]
     + [("EOF", "")]),
    ("5m 1h30m 250ms 1y 2w", [("DURATION", v) for v in ["5m", "1h30m", "250ms", "1y", "2w"]]
     + [("EOF", "")]),
    ("+ - * / % ^ == != < <= > >= </ >/ @",
     [("ADD", "+"), ("SUB", "-"), ("MUL", "*"), ("DIV", "/"), ("MOD", "%"), ("POW", "^"),
      ("EQLC", "=="), ("NEQ", "!="), ("LSS", "<"), ("LTE", "<="), ("GTR", ">"), ("GTE", ">="),
      ("TRIM_UPPER", "</"), ("TRIM_LOWER", ">/"), ("AT", "@"), ("EOF", "")]),
    ('{a="b", c!~`d`, "e.f"=~\'g\', h!="i"}',
     [("LEFT_BRACE", "{"), ("IDENTIFIER", "a"), ("EQL", "="), ("STRING", '"b"'), ("COMMA", ","),
      ("IDENTIFIER", "c"), ("NEQ_REGEX", "!~"), ("STRING", "`d`"), ("COMMA", ","),
      ("STRING", '"e.f"'), ("EQL_REGEX", "=~"), ("STRING", "'g'"), ("COMMA", ","),
      ("IDENTIFIER", "h"), ("NEQ", "!="), ("STRING", '"i"'), ("RIGHT_BRACE", "}"), ("EOF", "")]),
    ("{sum=\"x\"}", [("LEFT_BRACE", "{"), ("IDENTIFIER", "sum"), ("EQL", "="), ("STRING", '"x"'),
                     ("RIGHT_BRACE", "}"), ("EOF", "")]),
    ("x[5m:1m]", [("IDENTIFIER", "x"), ("LEFT_BRACKET", "["), ("DURATION", "5m"), ("COLON", ":"),
                  ("DURATION", "1m"), ("RIGHT_BRACKET", "]"), ("EOF", "")]),
    ("x[step():]", [("IDENTIFIER", "x"), ("LEFT_BRACKET", "["), ("STEP", "step"),
                    ("LEFT_PAREN", "("), ("RIGHT_PAREN", ")"), ("COLON", ":"),
                    ("RIGHT_BRACKET", "]"), ("EOF", "")]),
    ("foo # a comment\n+ 1", [("IDENTIFIER", "foo"), ("ADD", "+"), ("NUMBER", "1"), ("EOF", "")]),
    ("start end step range anchored smoothed",
     [("START", "start"), ("END", "end"), ("STEP", "step"), ("RANGE", "range"),
      ("ANCHORED", "anchored"), ("SMOOTHED", "smoothed"), ("EOF", "")]),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=t) for t, e in STREAMS])
def test_token_streams(text: str, expected: list[tuple[str, str]]) -> None:
    assert types(text) == expected


ERRORS = [
    ("$", "unexpected character: '$'", 0),
    ("a ! b", "unexpected character after '!': ' '", 2),
    ("a =~ b", "unexpected character after '=': '~'", 2),
    ('"abc', "unterminated quoted string", 0),
    ('"a\nb"', "unterminated quoted string", 0),
    ("`abc", "unterminated raw string", 0),
    ('x "\\q"', "unknown escape sequence U+0071 'q'", 2),
    ('"\\x4"', "illegal character U+0022 '\"' in escape sequence", 0),
    ('"\\uD800"', "escape sequence is an invalid Unicode code point", 0),
    ("(", "unclosed left parenthesis", 1),
    ("x)", "unexpected right parenthesis ')'", 2),
    ("x[5m", "unclosed left bracket", 4),
    ("x]", "unexpected right bracket ']'", 1),
    ("x[[", "unexpected left bracket '['", 2),
    ("{a", "unexpected end of input inside braces", 2),
    ("{a{", "unexpected left brace '{'", 2),
    ("{1}", "unexpected character inside braces: '1'", 1),
    ("{a!b}", "unexpected character after '!' inside braces: 'b'", 2),
    ("5x", 'bad number or duration syntax: "5"', 0),
    ("0deg", 'bad number or duration syntax: "0de"', 0),
    ("5m1", 'bad number or duration syntax: "5m1"', 0),
    ("x[1m::]", "unexpected colon ':'", 5),
]


@pytest.mark.parametrize(("text", "message", "pos"), [pytest.param(t, m, p, id=t)
                                                      for t, m, p in ERRORS])
def test_lexer_errors(text: str, message: str, pos: int) -> None:
    last = lex(text)[-1]
    assert (last.typ, last.val, last.pos) == ("ERROR", message, pos)


@pytest.mark.parametrize(("raw", "value"), [
    ('"plain"', "plain"),
    ("'single \\' quote'", "single ' quote"),
    ('"tab\\tnew\\nline\\\\"', "tab\tnew\nline\\"),
    ('"\\a\\b\\f\\r\\v"', "\a\b\f\r\v"),
    ('"\\x41\\101\\u00e9\\U0001F600"', "AA\u00e9\U0001F600"),
    ('"\\xe2\\x82\\xac"', "\u20ac"),
    ('"a\\xc5z"', "a\udcc5z"),
    ("`raw \\n stays`", "raw \\n stays"),
])
def test_unquote(raw: str, value: str) -> None:
    toks = lex(raw)
    assert toks[0].typ == "STRING"
    assert unquote(toks[0].val) == value


@pytest.mark.parametrize(("value", "quoted"), [
    ("a", '"a"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("\n\t", '"\\n\\t"'),
    ("\x00\x7f", '"\\x00\\x7f"'), ("\u00e9", '"\u00e9"'), ("\u200b", '"\\u200b"'),
])
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


def test_go_quote_rune() -> None:
    assert go_quote_rune("$") == "'$'"
    assert go_quote_rune("'") == "'\\''"
    assert go_quote_rune("\n") == "'\\n'"


@pytest.mark.parametrize(("token", "desc"), [
    (Token("IDENTIFIER", "foo", 0), 'identifier "foo"'),
    (Token("METRIC_IDENTIFIER", "a:b", 0), 'metric identifier "a:b"'),
    (Token("NUMBER", "1", 0), 'number "1"'),
    (Token("DURATION", "5m", 0), 'duration "5m"'),
    (Token("STRING", '"a"', 0), 'string "\\"a\\""'),
    (Token("STRING", '"abcdefghijkl"', 0), 'string "\\"abcdefghi"...'),
    (Token("MUL", "*", 0), "<op:*>"),
    (Token("LAND", "and", 0), "<op:and>"),
    (Token("SUM", "sum", 0), "<aggr:sum>"),
    (Token("BY", "by", 0), "<by>"),
    (Token("RIGHT_BRACE", "}", 0), '"}"'),
    (Token("EOF", "", 0), "end of input"),
])
def test_token_desc(token: Token, desc: str) -> None:
    assert token.desc() == desc
