"""Table-driven tests of the exposition parser: valid lines, malformed input, the series cache."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promlab.errors import ExpositionError
from promlab.exposition import ACCEPT_HEADER, NO_TIMESTAMP, Parser, detect_format, negotiate, parse
from promlab.model import Labels

INF = math.inf


def samples(data: str | bytes, fmt: str = "text") -> list[tuple[dict[str, str], float, int | None]]:
    return [(ls.to_dict(), v, t) for ls, v, t in parse(data, fmt).iter_samples()]


VALID = [
    pytest.param("a 1\n", "text", [({"__name__": "a"}, 1.0, None)], id="bare"),
    pytest.param("a 1", "text", [({"__name__": "a"}, 1.0, None)], id="no-final-newline"),
    pytest.param('a{b="c",d="e"} 2.5 1000\n', "text",
                 [({"__name__": "a", "b": "c", "d": "e"}, 2.5, 1000)], id="labels-ts"),
    pytest.param('a{b="c",} 1\n', "text", [({"__name__": "a", "b": "c"}, 1.0, None)], id="trailing-comma"),
    pytest.param("a{} 1\n", "text", [({"__name__": "a"}, 1.0, None)], id="empty-braces"),
    pytest.param('a{b=""} 1\n', "text", [({"__name__": "a"}, 1.0, None)], id="empty-value-dropped"),
    pytest.param('a { b = "c" , d="e" }\t 3 \t 5 \n', "text",
                 [({"__name__": "a", "b": "c", "d": "e"}, 3.0, 5)], id="text-whitespace"),
    pytest.param('a{p="C:\\\\DIR\\\\F",e="x:\\n\\"F\\""} 1\n', "text",
                 [({"__name__": "a", "p": "C:\\DIR\\F", "e": 'x:\n"F"'}, 1.0, None)], id="escapes"),
    pytest.param('a{b="} ,=# {"} 1\n', "text", [({"__name__": "a", "b": "} ,=# {"}, 1.0, None)],
                 id="specials-in-value"),
    pytest.param('a{b="日本 🙂"} 1\n', "text", [({"__name__": "a", "b": "日本 🙂"}, 1.0, None)], id="utf8-value"),
    pytest.param('{"my.metric", "a.b"="v"} 1\n', "text",
                 [({"__name__": "my.metric", "a.b": "v"}, 1.0, None)], id="quoted-names"),
    pytest.param('{"a.b"="v", "my.metric"} 1\n', "text",
                 [({"__name__": "my.metric", "a.b": "v"}, 1.0, None)], id="quoted-name-later"),
    pytest.param("a NaN\nb +Inf\nc -Inf\nd inf\ne 1e-3\nf -0.5\ng .5\n", "text",
                 [({"__name__": "a"}, math.nan, None), ({"__name__": "b"}, INF, None),
                  ({"__name__": "c"}, -INF, None), ({"__name__": "d"}, INF, None),
                  ({"__name__": "e"}, 0.001, None), ({"__name__": "f"}, -0.5, None),
                  ({"__name__": "g"}, 0.5, None)], id="special-floats"),
    pytest.param("# HELP a x\n# TYPE a gauge\n# other\n\n   \na 1\n", "text",
                 [({"__name__": "a"}, 1.0, None)], id="comments-blank"),
    pytest.param("a 1 1\na 2 2\n", "text", [({"__name__": "a"}, 1.0, 1), ({"__name__": "a"}, 2.0, 2)],
                 id="same-series-twice"),
    pytest.param("# TYPE a counter\na_total 1 1520879607.789\n# EOF\n", "openmetrics",
                 [({"__name__": "a_total"}, 1.0, 1520879607789)], id="om-float-ts"),
    pytest.param("a 1 123\n# EOF", "openmetrics", [({"__name__": "a"}, 1.0, 123000)], id="om-int-ts-no-newline"),
    pytest.param('a{b="\\q"} 1\n# EOF\n', "openmetrics", [({"__name__": "a", "b": "\\q"}, 1.0, None)],
                 id="om-literal-backslash"),
    pytest.param("# TYPE a counter\na_total 3\na_created 1.5e9\n# EOF\n", "openmetrics",
                 [({"__name__": "a_total"}, 3.0, None), ({"__name__": "a_created"}, 1.5e9, None)],
                 id="om-created-kept"),
    pytest.param('{"my.metric","a.b"="v"} 1\n# EOF\n', "openmetrics",
                 [({"__name__": "my.metric", "a.b": "v"}, 1.0, None)], id="om-quoted-names"),
    pytest.param("a 1\n", "openmetrics-noeof", [({"__name__": "a"}, 1.0, None)], id="om-eof-optional"),
]


@pytest.mark.parametrize(("data", "fmt", "expected"), VALID)
def test_valid(data: str, fmt: str, expected: list[tuple[dict[str, str], float, int | None]]) -> None:
    if fmt == "openmetrics-noeof":
        got = [(ls.to_dict(), v, t) for ls, v, t in Parser().parse(data, "openmetrics", require_eof=False).iter_samples()]
    else:
        got = samples(data, fmt)
    assert len(got) == len(expected)
    for (gl, gv, gt), (el, ev, et) in zip(got, expected, strict=True):
        assert gl == el
        assert gt == et
        assert gv == ev or (math.isnan(gv) and math.isnan(ev))


ERRORS = [
    # text format
    pytest.param("a{b} 1\n", "text", 1, "expected '='", id="label-no-equals"),
    pytest.param('a{b="c" d="e"} 1\n', "text", 1, "expected ',' or '}'", id="label-no-comma"),
    pytest.param('a{b="c} 1\n', "text", 1, "quoted value", id="unterminated-value"),
    pytest.param('a{b="c",\n', "text", 1, "unterminated label set", id="unterminated-labels"),
    pytest.param('a{1b="c"} 1\n', "text", 1, "invalid label name", id="bad-label-name"),
    pytest.param('ok 1\na{b="c",b="d"} 1\n', "text", 2, "duplicate label name 'b'", id="duplicate-label"),
    pytest.param("a x\n", "text", 1, "invalid value 'x'", id="bad-value"),
    pytest.param("a 1_000\n", "text", 1, "invalid value", id="underscore-value"),
    pytest.param("a\n", "text", 1, "expected whitespace and a value", id="missing-value"),
    pytest.param("a 1 1.5\n", "text", 1, "invalid timestamp", id="float-ts-in-text"),
    pytest.param("a 1 99999999999999999999\n", "text", 1, "out of int64 range", id="ts-overflow"),
    pytest.param("a 1 2 3\n", "text", 1, "unexpected text after timestamp", id="extra-token"),
    pytest.param("a 1 -9223372036854775808\n", "text", 1, "invalid timestamp", id="ts-int64-min"),
    pytest.param("a 1 9223372036854775808\n", "text", 1, "out of int64 range", id="ts-past-int64-max"),
    pytest.param('{__name__="x",b="c"} 1\n', "text", 1, "metric name missing", id="name-as-label"),
    pytest.param("  a 1\n", "text", 1, "whitespace before the metric name", id="leading-space"),
    pytest.param("1abc 1\n", "text", 1, "invalid metric name", id="bad-metric-name"),
    pytest.param('{a="b"} 1\n', "text", 1, "metric name missing", id="no-metric-name"),
    pytest.param('a{__name__="b"} 1\n', "text", 1, "metric name specified twice", id="name-twice"),
    pytest.param('{"x", "y"} 1\n', "text", 1, "metric name specified twice", id="quoted-name-twice"),
    pytest.param('a{""="v"} 1\n', "text", 1, "empty label name", id="empty-label-name"),
    pytest.param(b"a{b=\"\xff\"} 1\n", "text", 1, "invalid UTF-8", id="bad-utf8"),
    pytest.param("a 1\n# TYPE a gauge\n", "text", 2, "TYPE line for metric 'a' after its samples",
                 id="type-after-samples"),
    pytest.param("a_sum 1\n# TYPE a histogram\n", "text", 2, "after its samples", id="type-after-histogram-samples"),
    pytest.param("# TYPE a gauge\n# TYPE a gauge\na 1\n", "text", 2, "second TYPE", id="duplicate-type"),
    pytest.param("# HELP a x\n# HELP a y\n", "text", 2, "second HELP", id="duplicate-help"),
    pytest.param("# TYPE a bogus\n", "text", 1, "invalid metric type 'bogus'", id="invalid-type"),
    pytest.param("# TYPE a\n", "text", 1, "invalid metric type", id="type-missing"),
    pytest.param("# TYPE 1a gauge\n", "text", 1, "invalid metric name", id="type-bad-name"),
    pytest.param("a 1\nb 2\nc nope\n", "text", 3, "invalid value 'nope'", id="error-line-number"),
    # OpenMetrics
    pytest.param("a 1\n", "openmetrics", 1, "does not end with '# EOF'", id="om-missing-eof"),
    pytest.param("a 1\n# EOF\nb 1\n", "openmetrics", 3, "unexpected data after '# EOF'", id="om-data-after-eof"),
    pytest.param("a 1\n# EOF\nb 1\n# EOF\n", "openmetrics", 3, "unexpected data after '# EOF'", id="om-two-eof"),
    pytest.param("a 1\n\nb 1\n# EOF\n", "openmetrics", 2, "empty line", id="om-blank-line"),
    pytest.param("# hello\n# EOF\n", "openmetrics", 1, "invalid comment", id="om-free-comment"),
    pytest.param("a  1\n# EOF\n", "openmetrics", 1, "invalid value", id="om-double-space"),
    pytest.param("a\t1\n# EOF\n", "openmetrics", 1, "expected a single space", id="om-tab"),
    pytest.param('a{b="c", d="e"} 1\n# EOF\n', "openmetrics", 1, "invalid label name", id="om-space-in-labels"),
    pytest.param("# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n", "openmetrics", 2,
                 "not a suffix", id="om-unit-not-suffix"),
    pytest.param("# TYPE a counter\na_total 1\n# HELP a late\n# EOF\n", "openmetrics", 3,
                 "HELP line for metric 'a' after its samples", id="om-help-after-samples"),
    pytest.param("# TYPE a summary\n# TYPE a gauge\n# EOF\n", "openmetrics", 2, "second TYPE", id="om-duplicate-type"),
    pytest.param("# TYPE a untyped\n# EOF\n", "openmetrics", 1, "invalid metric type", id="om-untyped"),
    pytest.param("a 1 NaN\n# EOF\n", "openmetrics", 1, "invalid timestamp", id="om-nan-ts"),
    pytest.param("a 1 # {x=\"y\"}\n# EOF\n", "openmetrics", 1, "exemplar", id="om-exemplar-no-value"),
    pytest.param("a 1 # x 2\n# EOF\n", "openmetrics", 1, "expected '{'", id="om-exemplar-no-labels"),
    pytest.param(f'a 1 # {{t="{"x" * 130}"}} 2\n# EOF\n', "openmetrics", 1, "128", id="om-exemplar-too-long"),
    pytest.param("a 1 2 3\n# EOF\n", "openmetrics", 1, "after timestamp", id="om-extra-token"),
]


@pytest.mark.parametrize(("data", "fmt", "lineno", "reason"), ERRORS)
def test_errors(data: str | bytes, fmt: str, lineno: int, reason: str) -> None:
    p = Parser()
    with pytest.raises(ExpositionError) as info:
        p.parse(data, fmt)
    assert info.value.lineno == lineno, str(info.value)
    assert reason in str(info.value)
    assert f"line {lineno}:" in str(info.value)


def test_first_lineno_offsets_errors() -> None:
    with pytest.raises(ExpositionError) as info:
        Parser().parse("a 1\nb x\n", first_lineno=101)
    assert info.value.lineno == 102


def test_warm_cache_reuses_labels() -> None:
    body = b'# TYPE h histogram\nh_bucket{a="x",le="1"} 1\nh_bucket{a="x",le="+Inf"} 2\nh_sum{a="x"} 3\nh_count{a="x"} 2\n'
    p = Parser()
    first = p.parse(body)
    n_series = len(p.series)
    second = p.parse(body.replace(b"} 2\n", b"} 7\n"))
    assert len(p.series) == n_series == 4
    assert second.series is p.series
    assert [p.series[r] for r in second.refs] == [p.series[r] for r in first.refs]
    assert all(a is b for a, b in zip((p.series[r] for r in first.refs), (p.series[r] for r in second.refs), strict=True))
    assert second.values.tolist() == [1.0, 7.0, 3.0, 7.0]
    assert second.metadata["h"].type == "histogram"


def test_braces_and_spacing_variants_share_a_series() -> None:
    p = Parser()
    page = p.parse("a 1\na{} 2\na  3\na\t4 5\n")
    assert len(p.series) == 1
    assert page.refs.tolist() == [0, 0, 0, 0]
    page = p.parse("a 1\na{} 2\na  3\na\t4 5\n")
    assert page.values.tolist() == [1, 2, 3, 4]
    assert page.timestamps_ms.tolist() == [NO_TIMESTAMP] * 3 + [5]


def test_warm_mixed_timestamps_and_new_series() -> None:
    p = Parser()
    p.parse('a{x="1"} 1\nb 2 100\n')
    page = p.parse('a{x="1"} 5 200\nb 6\nc 7 300\n')
    got = [(str(ls), v, t) for ls, v, t in page.iter_samples()]
    assert got == [('a{x="1"}', 5.0, 200), ("b", 6.0, None), ("c", 7.0, 300)]


@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
@pytest.mark.parametrize(("bad", "reason"), [
    pytest.param("bogus", "invalid value", id="value"),
    pytest.param("1_0", "invalid value", id="underscore"),
    pytest.param("1 x", "invalid timestamp", id="timestamp"),
])
def test_warm_bad_value_names_line(fmt: str, bad: str, reason: str) -> None:
    eof = "# EOF\n" if fmt == "openmetrics" else ""
    good = "a 1\nb 2\nc 3\n" + eof
    p = Parser()
    p.parse(good, fmt)
    with pytest.raises(ExpositionError) as info:
        p.parse(f"a 1\nb {bad}\nc 3\n" + eof, fmt)
    assert info.value.lineno == 2
    assert reason in str(info.value)
    assert p.parse(good, fmt).values.tolist() == [1.0, 2.0, 3.0]


def test_error_leaves_cache_intact() -> None:
    p = Parser()
    p.parse('a{x="1"} 1\n')
    with pytest.raises(ExpositionError):
        p.parse('a{x="1"} 1\nnew{y="2"} oops\nother{z="3"} 1\nbad{ 1\n')
    page = p.parse('new{y="2"} 4\na{x="1"} 2\nother{z="3"} 5\n')
    got = [(str(ls), v) for ls, v, _ in page.iter_samples()]
    assert got == [('new{y="2"}', 4.0), ('a{x="1"}', 2.0), ('other{z="3"}', 5.0)]
    assert all(s.name for s in p.series)


def test_formats_keep_separate_caches() -> None:
    p = Parser()
    p.parse("a  1\n")  # text allows two spaces and caches "a " as a prefix
    with pytest.raises(ExpositionError):
        p.parse("a  1\n# EOF\n", "openmetrics")


def test_exemplars_and_metadata() -> None:
    body = (
        "# TYPE foo_seconds histogram\n# UNIT foo_seconds seconds\n# HELP foo_seconds Latency \\\\ and \\n.\n"
        'foo_seconds_bucket{le="0.1"} 8 # {} 0.054\n'
        'foo_seconds_bucket{le="1"} 11 # {trace_id="KOO5S4vxi0o"} 0.67\n'
        'foo_seconds_bucket{le="+Inf"} 17 # {trace_id="oHg5SJYRHA0"} 9.8 1520879607.789\n'
        "foo_seconds_count 17\nfoo_seconds_sum 324789.3\n# EOF\n"
    )
    for _ in range(2):  # cold, then warm
        p = Parser()
        page = p.parse(body, "application/openmetrics-text; version=1.0.0")
    assert len(page) == 5
    assert [(e.index, e.labels.to_dict(), e.value, e.timestamp_ms) for e in page.exemplars] == [
        (0, {}, 0.054, None),
        (1, {"trace_id": "KOO5S4vxi0o"}, 0.67, None),
        (2, {"trace_id": "oHg5SJYRHA0"}, 9.8, 1520879607789),
    ]
    meta = page.metadata["foo_seconds"]
    assert (meta.type, meta.unit, meta.help) == ("histogram", "seconds", "Latency \\ and \n.")


def test_text_untyped_is_unknown() -> None:
    assert parse("# TYPE a untyped\na 1\n").metadata["a"].type == "unknown"


def test_empty_and_comment_only_pages() -> None:
    for body in (b"", b"\n", b"# HELP a x\n"):
        page = parse(body)
        assert len(page) == 0 and page.refs.dtype == np.int32
    assert len(parse(b"# EOF\n", "openmetrics")) == 0


def test_page_columns() -> None:
    page = parse("a 1 5\nb 2\n")
    assert page.refs.dtype == np.int32
    assert page.values.dtype == np.float64
    assert page.timestamps_ms.dtype == np.int64
    assert page.timestamps_ms.tolist() == [5, NO_TIMESTAMP]
    assert page.series == [Labels({"__name__": "a"}), Labels({"__name__": "b"})]


@pytest.mark.parametrize(("header", "expected"), [
    pytest.param("application/openmetrics-text; version=1.0.0; charset=utf-8", "openmetrics", id="om-1.0.0"),
    pytest.param("application/openmetrics-text;version=0.0.1", "openmetrics", id="om-0.0.1"),
    pytest.param("application/openmetrics-text", "openmetrics", id="om-no-version"),
    pytest.param("text/plain; version=0.0.4; charset=utf-8", "text", id="text-0.0.4"),
    pytest.param("text/plain;version=1.0.0;escaping=allow-utf-8", "text", id="text-1.0.0"),
    pytest.param("text/plain", "text", id="text-no-version"),
    pytest.param(None, "text", id="missing"),
    pytest.param("application/json", "text", id="unsupported-fallback"),
    pytest.param("openmetrics", "openmetrics", id="shorthand"),
])
def test_negotiate(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_negotiate_without_fallback_raises() -> None:
    with pytest.raises(ExpositionError, match="unsupported"):
        negotiate("application/vnd.google.protobuf", fallback=None)


def test_accept_header_prefers_openmetrics() -> None:
    parts = [p.strip() for p in ACCEPT_HEADER.split(",")]
    assert parts[0].startswith("application/openmetrics-text;version=1.0.0")
    assert "text/plain;version=0.0.4" in ACCEPT_HEADER
    qs = [float(p.rsplit("q=", 1)[1]) for p in parts]
    assert qs == sorted(qs, reverse=True)
    assert parts[-1].startswith("*/*")


@pytest.mark.parametrize(("head", "tail", "expected"), [
    pytest.param(b"a 1\n", b"a 1\n# EOF\n", "openmetrics", id="eof"),
    pytest.param(b"# TYPE a gauge\n# UNIT a x\n", b"a 1\n", "openmetrics", id="unit"),
    pytest.param(b"# TYPE a info\n", b"a_info 1\n", "openmetrics", id="info-type"),
    pytest.param(b"# TYPE a gauge\na 1 1000\n", b"a 1 1000\n", "text", id="text"),
])
def test_detect_format(head: bytes, tail: bytes, expected: str) -> None:
    assert detect_format(head, tail) == expected


WHITESPACE_LINES = [
    pytest.param("foo 1 \n", (1.0, None), id="trailing-space"),
    pytest.param("foo  1\n", (1.0, None), id="double-space"),
    pytest.param("foo\t1\n", (1.0, None), id="tab"),
    pytest.param("foo 1\t2\n", (1.0, 2), id="tab-before-ts"),
    pytest.param("foo  1  2  \n", (1.0, 2), id="runs-of-spaces"),
]


@pytest.mark.parametrize(("line", "expected"), WHITESPACE_LINES)
@pytest.mark.parametrize("primer", ["foo 5\n", "foo 5 6\n", "foo  5\n", "foo\t5 6\n"])
def test_text_whitespace_with_warm_cache(primer: str, line: str, expected: tuple[float, int | None]) -> None:
    p = Parser()
    p.parse(primer)
    for _ in range(2):
        (labels, v, t), = p.parse(line).iter_samples()
        assert (str(labels), v, t) == ("foo", *expected)


def test_many_lines_of_few_new_series() -> None:
    """An import-like chunk: new series repeated on many lines, found in bulk."""
    lines = [f'm{{i="{k % 7}"}} {k} {1000 + k}' for k in range(3000)]
    p = Parser()
    page = p.parse("\n".join(lines) + "\n")
    assert len(p.series) == 7
    assert page.values.tolist() == [float(k) for k in range(3000)]
    assert page.timestamps_ms.tolist() == [1000 + k for k in range(3000)]
    assert [int(p.series[r]["i"]) for r in page.refs[:14]] == [k % 7 for k in range(14)]
    lines[2500] = 'm{i="1"} 1 x'
    with pytest.raises(ExpositionError) as info:
        Parser().parse("\n".join(lines) + "\n")
    assert info.value.lineno == 2501


@pytest.mark.parametrize(("token", "expected"), [
    pytest.param("-0", -0.0, id="negative-zero"),
    pytest.param("007", 7.0, id="leading-zeros"),
    pytest.param("9007199254740993", 9007199254740992.0, id="beyond-2**53"),
])
def test_value_conversion_edges(token: str, expected: float) -> None:
    p = Parser()
    for _ in range(2):
        (v,) = p.parse(f"a {token}\nb 1\n").values[:1].tolist()
        assert v == expected and math.copysign(1, v) == math.copysign(1, expected)


def test_openmetrics_timestamp_forms() -> None:
    p = Parser()
    body = "a 1 1700000000\nb 1 1700000000.5\nc 1 1.7e9\n# EOF\n"
    for _ in range(2):
        assert p.parse(body, "openmetrics").timestamps_ms.tolist() == [1700000000000, 1700000000500, 1700000000000]
    # Beyond int64 milliseconds: Prometheus keeps the page and drops the sample as too old.
    far = p.parse("a 1 99999999999999999999\nb 1\n# EOF\n", "openmetrics")
    assert far.timestamps_ms.tolist() == [-(2**63) + 1, NO_TIMESTAMP]


@pytest.mark.parametrize("fmt", ["text", "openmetrics"])
def test_after_timestamped_pages_mixed_page_still_right(fmt: str) -> None:
    """A parser primed with all-timestamp pages (import chunks) reads any later page correctly."""
    eof = "# EOF\n" if fmt == "openmetrics" else ""
    primer = "".join(f'm{{i="{k % 5}"}} {k} {k + 1}\n' for k in range(300)) + eof
    mixed = '# TYPE m gauge\nm{i="1"} 7\nm{i="2"} 8 9\nnew{a="b c"} 1 2\nnew{a="b c"} 3\n'
    if fmt == "openmetrics":
        mixed += 'm{i="3"} 4 5 # {t="x"} 1\n'
    else:
        mixed += '\nm{i="4"}  4 5\nm{i="4"} 6\t7\n'
    mixed += eof
    kw = {"require_eof": False}  # import chunks: the OpenMetrics type rules are not checked
    p = Parser()
    for _ in range(3):
        p.parse(primer, fmt, **kw)
    for _ in range(2):
        assert p.parse(mixed, fmt, **kw).iter_samples() == Parser().parse(mixed, fmt, **kw).iter_samples()
    assert p.parse(primer, fmt, **kw).iter_samples() == Parser().parse(primer, fmt, **kw).iter_samples()
