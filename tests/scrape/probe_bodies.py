"""Hand-made scrape bodies at the edges of the exposition grammars (the probe set of the 2.42
fidelity hunt of promlab.exposition): values, timestamps, whitespace, labels, metadata and
OpenMetrics types, each a page of its own.

:data:`PROBES` lists ``(id, format, body)``; the id starts with ``text-`` or ``om-``. Every
OpenMetrics body ends with ``# EOF`` unless its case is about the end marker. The bodies are
judged by tests/scrape/test_scrape_realprom_probes.py against a real Prometheus 2.42.
"""

from __future__ import annotations

__all__ = ["PROBES"]

TEXT, OM = "text", "openmetrics"
PROBES: list[tuple[str, str, str]] = []


def _text(name: str, body: str) -> None:
    PROBES.append((f"text-{name}", TEXT, body))


def _om(name: str, body: str, eof: bool = True) -> None:
    PROBES.append((f"om-{name}", OM, body + ("# EOF\n" if eof else "")))


def _both(name: str, body: str) -> None:
    _text(name, body)
    _om(name, body)


VALUES = ["nan", "Nan", "NaN", "NAN", "inf", "Inf", "+inf", "-inf", "+Inf", "-Inf", "INF", "Infinity",
          "+Infinity", "-infinity", "infinit", "0x10", "0x1p3", "1_000", "+1", "+1.5", ".5", "5.", "1e3",
          "1E+3", "1e", "-0", "00012", "1.5e-400", "0.1e1", "1__0", "--1", "+-1", "1,5", "١"]
TIMESTAMPS = ["123", "-123", "1.5", "1e3", "+123", "0x10", "1_0", "NaN", "+Inf", "9223372036854775807",
              "9223372036854775808", "-9223372036854775808", "1700000000", "1700000000.123", "-1.5",
              "1.5e9", "1E9", ".5", "5.", "0", "00017", "1e-3", "1.23456789", "-0"]
WHITESPACE = [
    ("trail-space", "a 1 \n"), ("trail-tab", "a 1\t\n"), ("tab-sep", "a\t1\n"), ("two-spaces", "a  1\n"),
    ("lead-space", " a 1\n"), ("lead-tab", "\ta 1\n"), ("crlf", "a 1\r\nb 2\r\n"), ("crlf-ts", "a 1 5\r\n"),
    ("blank", "a 1\n\nb 2\n"), ("blank-ws", "a 1\n  \nb 2\n"), ("no-final-newline", "a 1\nb 2"),
    ("empty", ""), ("only-newline", "\n"), ("trail-space-ts", "a 1 5 \n"),
    ("space-in-braces", 'a{ b="c" } 1\n'), ("space-before-brace", 'a {b="c"} 1\n'),
    ("space-around-eq", 'a{b = "c"} 1\n'), ("space-after-comma", 'a{b="c", d="e"} 1\n'),
    ("cr-only", "a 1\rb 2\n"), ("vtab", "a\x0b1\n"), ("ff", "a 1\x0c\n"), ("nbsp", "a\u00a01\n"),
]
LABELS = [
    ("empty-set", "a{} 1\n"), ("trailing-comma", 'a{b="c",} 1\n'), ("only-comma", "a{,} 1\n"),
    ("dup-label", 'a{b="c",b="d"} 1\n'), ("dup-label-second-line", 'x 1\na{b="c",b="d"} 1\n'),
    ("digit-label", 'a{1b="c"} 1\n'), ("colon-label", 'a{b:c="d"} 1\n'), ("dot-label", 'a{b.c="d"} 1\n'),
    ("esc-bs", 'a{b="x\\\\y"} 1\n'), ("esc-q", 'a{b="x\\"y"} 1\n'), ("esc-n", 'a{b="x\\ny"} 1\n'),
    ("esc-t", 'a{b="x\\ty"} 1\n'), ("esc-u", 'a{b="x\\u0041"} 1\n'), ("esc-end", 'a{b="x\\"} 1\n'),
    ("raw-tab-in-value", 'a{b="x\ty"} 1\n'), ("utf8-value", 'a{b="日本🙂é"} 1\n'),
    ("empty-value", 'a{b=""} 1\n'), ("name-label", 'a{__name__="b"} 1\n'),
    ("only-name-label", '{__name__="b"} 1\n'), ("reserved-label", 'a{__x="y"} 1\n'),
    ("unquoted", "a{b=c} 1\n"), ("single-quote", "a{b='c'} 1\n"), ("double-comma", 'a{b="c",,d="e"} 1\n'),
    ("label-no-value", "a{b} 1\n"), ("name-digit", "1a 1\n"), ("name-colon", "a:b 1\n"),
    ("name-colon-first", ":a 1\n"), ("name-dot", "a.b 1\n"), ("name-dash", "a-b 1\n"),
    ("quoted-name", '{"a.b"} 1\n'), ("quoted-name-label", '{"a.b", "c.d"="e"} 1\n'),
    ("value-after-brace", 'a{b="c"}1\n'), ("brace-unclosed", 'a{b="c" 1\n'),
    ("long-label-value", 'a{b="' + "x" * 70000 + '"} 1\n'), ("long-name", "a" * 70000 + " 1\n"),
    ("many-labels", "a{" + ",".join(f'l{i}="v"' for i in range(300)) + "} 1\n"),
    ("nul-in-value", 'a{b="x\x00y"} 1\n'), ("del-in-value", 'a{b="x\x7fy"} 1\n'),
    ("hash-in-value", 'a{b="#"} 1\n'), ("brace-in-value", 'a{b="}"} 1\n'),
    # A raw line break inside a quoted label value (the text format's lexer reads it as part of
    # the value; OpenMetrics does not).
    ("label-value-newline-raw", 'a{b="x\ny"} 1\n'),
    ("label-value-newlines", 'a 1\nb{c="x\n\ny",d="p\nq"} 2\nc 3\n'),
    ("label-value-newline-escaped-before", 'a{b="x\\"\ny"} 1\n'),
    ("label-value-newline-after-backslash", 'a{b="x\\\ny"} 1\n'),
    ("label-value-newline-crlf", 'a{b="x\r\ny"} 1\r\n'),
    ("label-value-newline-unterminated", 'a 1\nb{c="x\n'),
    ("label-value-newline-then-bad", 'a{b="x\ny"} 1\nok 2\nbad{ 3\n'),
    ("label-value-newline-repeated", 'a{b="x\ny"} 1\na{b="x\ny"} 2\n'),
    ("label-value-newline-in-comment", '# HELP a x"y\na{b="x\ny"} 1\n'),
]
TEXT_METADATA = [
    ("help-esc", "# HELP a x\\\\y\\nz\na 1\n"), ("help-bad-esc", "# HELP a x\\qy\na 1\n"),
    ("help-quote-esc", '# HELP a x\\"y\na 1\n'), ("help-empty", "# HELP a\na 1\n"),
    ("help-noname", "# HELP\na 1\n"), ("type-noname", "# TYPE\na 1\n"), ("type-notype", "# TYPE a\na 1\n"),
    ("type-bad", "# TYPE a foo\na 1\n"), ("type-upper", "# TYPE a Gauge\na 1\n"),
    ("type-info", "# TYPE a info\na 1\n"), ("type-unknown", "# TYPE a unknown\na 1\n"),
    ("type-untyped", "# TYPE a untyped\na 1\n"), ("type-trailing", "# TYPE a gauge extra\na 1\n"),
    ("type-trail-space", "# TYPE a gauge \na 1\n"), ("dup-type", "# TYPE a gauge\n# TYPE a counter\na 1\n"),
    ("dup-help", "# HELP a x\n# HELP a y\na 1\n"), ("type-after", "a 1\n# TYPE a gauge\n"),
    ("help-after", "a 1\n# HELP a x\n"), ("interleave", 'a 1\nb 1\na{x="y"} 2\n'),
    ("nospace-hash", "#HELP a x\na 1\n"), ("hash-tab", "#\tHELP a x\na 1\n"),
    ("lead-space-comment", "  # HELP a x\na 1\n"), ("comment-plain", "# hello\na 1\n"),
    ("comment-empty", "#\na 1\n"), ("eof-text", "a 1\n# EOF\n"), ("eof-middle-text", "a 1\n# EOF\nb 2\n"),
    ("unit-text", "# UNIT a_s s\na_s 1\n"), ("help-bad-name", "# HELP 1a x\na 1\n"),
    ("type-bad-name", "# TYPE 1a gauge\na 1\n"), ("help-tab-sep", "# HELP\ta x\na 1\n"),
    ("help-utf8", "# HELP a 日本\na 1\n"), ("type-quoted", '# TYPE "a.b" gauge\n{"a.b"} 1\n'),
    ("type-other-name", "# TYPE b gauge\na 1\n"), ("help-trailing-ws", "# HELP a x  \na 1\n"),
    ("type-histogram-plain", "# TYPE a histogram\na 1\n"), ("type-summary-plain", "# TYPE a summary\na 1\n"),
    ("hist-no-le", "# TYPE a histogram\na_bucket 1\na_count 1\n"),
    ("hist-bad-le", '# TYPE a histogram\na_bucket{le="x"} 1\n'),
    ("summary-bad-q", '# TYPE a summary\na{quantile="x"} 1\n'),
    ("counter-total", "# TYPE a counter\na_total 1\n"), ("gauge-suffix", "# TYPE a gauge\na_total 1\n"),
]
OM_METADATA = [
    ("help-esc", "# HELP a x\\\\y\\nz\\\"q\na 1\n"), ("help-bad-esc", "# HELP a x\\qy\na 1\n"),
    ("help-empty", "# HELP a \na 1\n"), ("help-noval", "# HELP a\na 1\n"),
    ("type-bad", "# TYPE a foo\na 1\n"), ("type-untyped", "# TYPE a untyped\na 1\n"),
    ("type-notype", "# TYPE a\na 1\n"), ("type-trailing", "# TYPE a gauge extra\na 1\n"),
    ("dup-type", "# TYPE a gauge\n# TYPE a gauge\na 1\n"), ("dup-help", "# HELP a x\n# HELP a y\na 1\n"),
    ("dup-unit", "# TYPE a_s gauge\n# UNIT a_s s\n# UNIT a_s s\na_s 1\n"),
    ("type-after", "a 1\n# TYPE a gauge\n"), ("help-after", "# TYPE a gauge\na 1\n# HELP a x\n"),
    ("unit-ok", "# TYPE a_seconds gauge\n# UNIT a_seconds seconds\na_seconds 1\n"),
    ("unit-not-suffix", "# TYPE a gauge\n# UNIT a seconds\na 1\n"),
    ("unit-partial", "# TYPE abseconds gauge\n# UNIT abseconds seconds\nabseconds 1\n"),
    ("unit-equal-name", "# TYPE seconds gauge\n# UNIT seconds seconds\nseconds 1\n"),
    ("unit-empty", "# TYPE a gauge\n# UNIT a \na 1\n"), ("unit-noval", "# TYPE a gauge\n# UNIT a\na 1\n"),
    ("unit-counter", "# TYPE a_seconds counter\n# UNIT a_seconds seconds\na_seconds_total 1\n"),
    ("unit-counter-total",
     "# TYPE a_seconds_total counter\n# UNIT a_seconds_total seconds\na_seconds_total 1\n"),
    ("unit-info", "# TYPE a_s info\n# UNIT a_s s\na_s_info 1\n"),
    ("unit-stateset", '# TYPE a_s stateset\n# UNIT a_s s\na_s{a_s="x"} 1\n'),
    ("unit-before-type", "# UNIT a_s s\n# TYPE a_s gauge\na_s 1\n"),
    ("unit-after-sample", "# TYPE a_s gauge\na_s 1\n# UNIT a_s s\n"),
    ("unit-other-name", "# UNIT b_s s\na_s 1\n"),
    ("comment-plain", "# hello\na 1\n"), ("comment-empty", "#\na 1\n"), ("hash-only-space", "# \na 1\n"),
    ("type-quoted", '# TYPE "a.b" gauge\n{"a.b"} 1\n'), ("help-two-spaces", "# HELP a  x\na 1\n"),
    ("type-two-spaces", "# TYPE a  gauge\na 1\n"), ("type-upper", "# TYPE a Gauge\na 1\n"),
]
# Bodies about the end marker itself (no "# EOF" appended).
OM_END = [
    ("eof-space", "a 1\n# EOF \n"), ("eof-twice", "a 1\n# EOF\n# EOF\n"), ("eof-lower", "a 1\n# eof\n"),
    ("eof-middle", "a 1\n# EOF\nb 1\n"), ("eof-then-blank", "a 1\n# EOF\n\n"),
    ("eof-no-newline", "a 1\n# EOF"), ("eof-crlf", "a 1\r\n# EOF\r\n"), ("eof-then-text", "a 1\n# EOF\njunk"),
    ("eof-only", ""), ("missing-eof", "a 1\n"), ("missing-eof-three", "# TYPE a gauge\na 1\nb 2\nc 3\n"),
    ("missing-eof-and-bad-line", "a 1\nbad{ 2\nc 3\n"), ("eof-only-body", "# EOF\n"),
]
_H = "# TYPE h histogram\n"
_C = "# TYPE c counter\n"
OM_TYPES = [
    ("info", '# TYPE i info\ni_info{v="1"} 1\n'), ("info-2", '# TYPE i info\ni_info{v="1"} 2\n'),
    ("info-plain-name", '# TYPE i info\ni{v="1"} 1\n'),
    ("stateset", '# TYPE s stateset\ns{s="a"} 1\ns{s="b"} 0\n'), ("stateset-nolabel", "# TYPE s stateset\ns 1\n"),
    ("gh", '# TYPE g gaugehistogram\ng_bucket{le="1"} 1\ng_bucket{le="+Inf"} 2\ng_gcount 2\ng_gsum 3\n'),
    ("gh-neg-gsum", '# TYPE g gaugehistogram\ng_bucket{le="1"} 1\ng_bucket{le="+Inf"} 2\ng_gcount 2\n'
     "g_gsum -3\n"),
    ("gh-sum", '# TYPE g gaugehistogram\ng_bucket{le="+Inf"} 2\ng_count 2\ng_sum 3\n'),
    ("unknown", "# TYPE u unknown\nu 1\n"), ("unknown-total", "# TYPE u unknown\nu_total 1\n"),
    ("summary", '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="0.9"} 2\ns_sum 3\ns_count 4\n'
     "s_created 1.5\n"),
    ("summary-q-bad", '# TYPE s summary\ns{quantile="x"} 1\n'),
    ("summary-neg", '# TYPE s summary\ns{quantile="0.5"} -1\n'),
    ("hist", _H + 'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_count 2\nh_sum 3\nh_created 1700000000.5\n'),
    ("hist-le-inf-lower", _H + 'h_bucket{le="+inf"} 2\nh_count 2\nh_sum 1\n'),
    ("hist-le-Inf", _H + 'h_bucket{le="Inf"} 2\n'),
    ("hist-le-1.0", _H + 'h_bucket{le="1.0"} 1\nh_bucket{le="+Inf"} 1\n'),
    ("hist-le-1e0", _H + 'h_bucket{le="1e0"} 1\nh_bucket{le="+Inf"} 1\n'),
    ("hist-no-inf", _H + 'h_bucket{le="1"} 1\n'), ("hist-gsum", _H + 'h_bucket{le="+Inf"} 1\nh_gsum 1\nh_gcount 1\n'),
    ("hist-float-bucket", _H + 'h_bucket{le="+Inf"} 1.5\n'),
    ("hist-count-mismatch", _H + 'h_bucket{le="+Inf"} 1\nh_count 2\nh_sum 1\n'),
    ("counter", _C + "c_total 1\nc_created 1.5\n"), ("counter-no-total", _C + "c 1\n"),
    ("counter-nan", _C + "c_total NaN\n"), ("counter-neg", _C + "c_total -1\n"),
    ("counter-inf", _C + "c_total +Inf\n"), ("gauge-total", "# TYPE g gauge\ng_total 1\n"),
    ("ex-counter", 'c_total 1 # {t="x"} 2\n'), ("ex-counter-typed", _C + 'c_total 1 # {t="x"} 2\n'),
    ("ex-counter-ts", _C + 'c_total 1 # {t="x"} 2 1700000000.5\n'),
    ("ex-counter-sample-ts", _C + 'c_total 1 1700000000 # {t="x"} 2 1700000000.5\n'),
    ("ex-empty", _C + "c_total 1 # {} 2\n"),
    ("ex-bucket", _H + 'h_bucket{le="+Inf"} 1 # {t="x"} 0.5\nh_count 1\nh_sum 0.5\n'),
    ("ex-gauge", '# TYPE g gauge\ng 1 # {t="x"} 2\n'), ("ex-count", _H + 'h_count 1 # {t="x"} 2\n'),
    ("ex-128", _C + 'c_total 1 # {t="' + "x" * 127 + '"} 2\n'),
    ("ex-129", _C + 'c_total 1 # {t="' + "x" * 128 + '"} 2\n'),
    ("ex-128-runes", _C + 'c_total 1 # {t="' + "é" * 127 + '"} 2\n'),
    ("ex-129-runes", _C + 'c_total 1 # {t="' + "é" * 128 + '"} 2\n'),
    ("ex-128-two", _C + 'c_total 1 # {ab="' + "x" * 60 + '",cd="' + "y" * 64 + '"} 2\n'),
    ("ex-nan", _C + 'c_total 1 # {t="x"} NaN\n'), ("ex-noval", _C + 'c_total 1 # {t="x"}\n'),
    ("ex-ts-int", _C + 'c_total 1 # {t="x"} 2 17\n'), ("ex-ts-neg", _C + 'c_total 1 # {t="x"} 2 -17\n'),
    ("ex-ts-exp", _C + 'c_total 1 # {t="x"} 2 1.7e9\n'), ("ex-ts-bad", _C + 'c_total 1 # {t="x"} 2 abc\n'),
    ("ex-two-spaces", _C + 'c_total 1  # {t="x"} 2\n'), ("ex-no-space", _C + 'c_total 1 #{t="x"} 2\n'),
    ("ex-trailing", _C + 'c_total 1 # {t="x"} 2 3 4\n'), ("ex-dup-label", _C + 'c_total 1 # {t="x",t="y"} 2\n'),
    ("ex-name-label", _C + 'c_total 1 # {__name__="x"} 2\n'),
    ("ex-trailing-comma", _C + 'c_total 1 # {t="x",} 2\n'), ("ex-hex", _C + 'c_total 1 # {t="x"} 0x10\n'),
    ("ex-untyped-total", 'c_total 1 # {t="x"} 2\n'), ("created-only", _C + "c_created 1\n"),
    ("dup-series", "a 1\na 2\n"), ("dup-series-ts", "a 1 1\na 2 2\n"), ("ts-backwards", "a 1 2\na 2 1\n"),
    ("clash", "# TYPE a counter\na_total 1\n# TYPE a_total gauge\na_total 1\n"),
]

for _v in VALUES:
    _both(f"val-{_v}", f"ok 1\na {_v}\n")
for _t in TIMESTAMPS:
    _both(f"ts-{_t}", f"ok 1\na 1 {_t}\n")
for _name, _body in WHITESPACE + LABELS:
    _both(_name, _body)
for _name, _body in TEXT_METADATA:
    _text(_name, _body)
for _name, _body in OM_METADATA:
    _om(_name, _body)
for _name, _body in OM_END:
    _om(_name, _body, eof=False)
for _name, _body in OM_TYPES:
    _om(_name, _body)
