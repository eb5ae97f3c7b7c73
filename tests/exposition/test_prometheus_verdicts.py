"""Pages where promlab used to disagree with a real Prometheus 2.42 scrape (found by a mutation
fuzzer judged by ``prometheus`` itself): values Go's ``ParseFloat`` refuses, text-format
spellings Prometheus and prometheus_client both read, and the scraper's lenient mode
(``Parser(strict=False)``), which checks what a Prometheus scrape checks and no more."""

from __future__ import annotations

import math

import pytest

from promlab.errors import ExpositionError
from promlab.exposition import Parser

OM = "openmetrics"

# Go's ParseFloat: a finite literal beyond float64 is an error (not ±Inf); NaN takes no sign.
# Each page is parsed cold and after a warm-up page that caches its series (the bulk path).
REJECTED_VALUES = [
    pytest.param("a 1\nb 1e400\n", "text", 2, "out of the float64 range", id="overflow"),
    pytest.param("a 1\nb -1e400\n", "text", 2, "out of the float64 range", id="negative-overflow"),
    pytest.param("a 1\nb " + "9" * 400 + "\n", "text", 2, "out of the float64 range", id="huge-integer"),
    pytest.param("a +NaN\nb 1\n", "text", 1, "invalid value '+NaN'", id="plus-nan"),
    pytest.param("a 1\nb -nan\n", "text", 2, "invalid value '-nan'", id="minus-nan"),
    pytest.param("a 1\nb 1e400\n# EOF\n", OM, 2, "out of the float64 range", id="om-overflow"),
    pytest.param("a_total 1 # {t=\"x\"} 1e999\n# EOF\n", OM, 1, "exemplar value", id="om-exemplar-overflow"),
]


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "scrape"])
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize(("data", "fmt", "lineno", "reason"), REJECTED_VALUES)
def test_values_go_rejects(data: str, fmt: str, lineno: int, reason: str, warm: bool, strict: bool) -> None:
    p = Parser(strict=strict)
    if warm:
        p.parse("a 1\nb 1\n" + ("# EOF\n" if fmt == OM else ""), fmt)
    with pytest.raises(ExpositionError) as info:
        p.parse(data, fmt)
    assert info.value.lineno == lineno, str(info.value)
    assert reason in str(info.value)
    assert len(str(info.value)) < 300  # a 400-digit token is shortened


ACCEPTED = [
    pytest.param("a 1\nb 1e-400\n", "text", [("a", {}, 1.0), ("b", {}, 0.0)], id="underflow-is-zero"),
    pytest.param("a Inf\nb -infinity\nc nan\n", "text",
                 [("a", {}, math.inf), ("b", {}, -math.inf), ("c", {}, math.nan)], id="inf-nan-spellings"),
    pytest.param('a{b="c"}1\n', "text", [("a", {"b": "c"}, 1.0)], id="value-right-after-brace"),
    pytest.param('a{b="c"}1 5\n', "text", [("a", {"b": "c"}, 1.0)], id="value-after-brace-and-ts"),
    pytest.param('a{b="x\\qy"} 1\n', "text", [("a", {"b": "x\\qy"}, 1.0)], id="unknown-escape-kept"),
    pytest.param("# HELP a bad \\q escape\na 1\n", "text", [("a", {}, 1.0)], id="help-unknown-escape"),
    pytest.param(b"# hello \xff\xfe\na 1\n", "text", [("a", {}, 1.0)], id="plain-comment-not-utf8"),
    pytest.param(b"# TYPE\xccx gauge\na 1\n", "text", [("a", {}, 1.0)], id="type-word-not-followed-by-space"),
]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize(("data", "fmt", "expected"), ACCEPTED)
def test_spellings_prometheus_reads(data: str | bytes, fmt: str,
                                    expected: list[tuple[str, dict[str, str], float]], warm: bool) -> None:
    p = Parser()
    page = p.parse(data, fmt)
    if warm:
        page = p.parse(data, fmt)
    got = [(ls.get("__name__"), {k: v for k, v in ls.to_dict().items() if k != "__name__"}, v)
           for ls, v, _ in page.iter_samples()]
    assert [(n, ls) for n, ls, _ in got] == [(n, ls) for n, ls, _ in expected]
    for (_, _, gv), (_, _, ev) in zip(got, expected, strict=True):
        assert gv == ev or (math.isnan(gv) and math.isnan(ev))


def test_value_after_brace_caches_a_valid_key() -> None:
    p = Parser()
    p.parse('a{b="c"}1\n')
    page = p.parse('a{b="c"} 7\n')
    assert page.iter_samples()[0][1] == 7.0
    with pytest.raises(ExpositionError, match="line 1: invalid value"):
        p.parse('a{b="c"}x\n')


# Pages a Prometheus 2.42 scrape ingests (up 1) although they break prometheus_client's rules:
# the scraper's Parser(strict=False) takes them; the default strict parser does not.
SCRAPE_ACCEPTS = [
    pytest.param("# TYPE a gauge\n# TYPE a counter\na 1\n", "text", 1, id="duplicate-type"),
    pytest.param("# HELP a x\n# HELP a y\na 1\n", "text", 1, id="duplicate-help"),
    pytest.param("a 1\n# TYPE a gauge\n", "text", 1, id="type-after-samples"),
    pytest.param("# TYPE c counter\nc 1\n# EOF\n", OM, 1, id="counter-without-total"),
    pytest.param("a 1\nb 1\na{x=\"y\"} 2\n# EOF\n", OM, 3, id="interleaved-families"),
    pytest.param("# TYPE a counter\na_total 1\n# HELP a late\n# EOF\n", OM, 1, id="help-after-samples"),
    pytest.param("# TYPE c counter\nc_total -1\n# EOF\n", OM, 1, id="negative-counter"),
    pytest.param("# TYPE h histogram\nh_bucket{le=\"+inf\"} 1\nh_count 2\n# EOF\n", OM, 2, id="odd-histogram"),
    pytest.param("# TYPE s summary\ns{quantile=\"1.5\"} 1\n# EOF\n", OM, 1, id="quantile-out-of-range"),
    pytest.param("# TYPE s stateset\ns{s=\"a\"} 2\n# EOF\n", OM, 1, id="stateset-value"),
    pytest.param("# TYPE g gauge\ng_total 1 # {a=\"b\"} 1\n# EOF\n", OM, 1, id="exemplar-on-total-name"),
]


@pytest.mark.parametrize(("data", "fmt", "n"), SCRAPE_ACCEPTS)
def test_scrape_mode_takes_what_prometheus_takes(data: str, fmt: str, n: int) -> None:
    if fmt == "text" or "exemplar" not in data:
        with pytest.raises(ExpositionError):
            Parser().parse(data, fmt)
    p = Parser(strict=False)
    for _ in range(2):  # cold, then warm (memoised metadata)
        assert len(p.parse(data, fmt)) == n


def test_scrape_mode_last_metadata_line_wins() -> None:
    page = Parser(strict=False).parse("# TYPE a gauge\n# HELP a one\n# TYPE a counter\n# HELP a two\na 1\n")
    assert (page.metadata["a"].type, page.metadata["a"].help) == ("counter", "two")


# What a Prometheus scrape still rejects (up 0) and so does the scraper's parser.
SCRAPE_REJECTS = [
    pytest.param('g 1 # {a="b"} 1\n# EOF\n', 1, "metric name 'g' does not support exemplars", id="exemplar-on-gauge"),
    pytest.param('# TYPE h histogram\nh_count 1 # {a="b"} 1\n# EOF\n', 2, "'h_count' does not support",
                 id="exemplar-on-count"),
    pytest.param('c_created 1 # {a="b"} 1\n# EOF\n', 1, "'c_created' does not support", id="exemplar-on-created"),
    pytest.param("a 1\n# EOF\nb 1\n# EOF\n", 3, "after '# EOF'", id="data-after-eof"),
    pytest.param("a 1\n", 1, "does not end with '# EOF'", id="missing-eof"),
    pytest.param('a{x="1",x="2"} 1\n# EOF\n', 1, "duplicate label name", id="duplicate-label"),
]


@pytest.mark.parametrize(("data", "lineno", "reason"), SCRAPE_REJECTS)
def test_scrape_mode_still_rejects(data: str, lineno: int, reason: str) -> None:
    with pytest.raises(ExpositionError) as info:
        Parser(strict=False).parse(data, OM)
    assert info.value.lineno == lineno, str(info.value)
    assert reason in str(info.value)


# Found by probing a real Prometheus 2.42 scrape with one-line bodies (grammar corners). Each is
# rejected by both modes, cold and warm: Prometheus fails the scrape on it.
GRAMMAR_REJECTS = [
    pytest.param("a 1\nb 1 -123\n", "text", 2, "invalid timestamp '-123'", id="text-negative-ts"),
    pytest.param("a 1\nb 1 +123\n", "text", 2, "invalid timestamp '+123'", id="text-plus-ts"),
    pytest.param("a 1\nb 1 -0\n", "text", 2, "invalid timestamp '-0'", id="text-minus-zero-ts"),
    pytest.param("a 1\n b 1\n", "text", 2, "whitespace before the metric name", id="leading-space"),
    pytest.param("a 1\n\tb 1\n", "text", 2, "whitespace before the metric name", id="leading-tab"),
    pytest.param('a 1\n{__name__="b"} 1\n', "text", 2, "metric name missing", id="bare-name-label"),
    pytest.param('a 1\n{__name__="b"} 1\n# EOF\n', OM, 2, "metric name missing", id="om-bare-name-label"),
    pytest.param("# TYPE a gauge \na 1\n", "text", 1, "invalid metric type 'gauge '", id="type-trailing-space"),
    pytest.param('a 1\nb{c="d",} 1\n# EOF\n', OM, 2, "trailing comma", id="om-trailing-comma"),
    pytest.param('a_total 1\nb_total 1 # {t="x",} 2\n# EOF\n', OM, 2, "trailing comma",
                 id="om-exemplar-trailing-comma"),
    pytest.param("# HELP a\na 1\n# EOF\n", OM, 1, "missing help after metric name", id="om-help-without-text"),
    pytest.param("# TYPE a gauge\n# UNIT a\na 1\n# EOF\n", OM, 2, "missing unit after metric name",
                 id="om-unit-without-text"),
]


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "scrape"])
@pytest.mark.parametrize(("data", "fmt", "lineno", "reason"), GRAMMAR_REJECTS)
def test_grammar_prometheus_rejects(data: str, fmt: str, lineno: int, reason: str, strict: bool) -> None:
    p = Parser(strict=strict)
    for _ in range(2):  # cold, then with the good lines cached
        with pytest.raises(ExpositionError) as info:
            p.parse(data, fmt)
        assert info.value.lineno == lineno, str(info.value)
        assert reason in str(info.value)


GRAMMAR_ACCEPTS = [
    pytest.param('a {b="c"} 1\n', "text", [("a", {"b": "c"}, 1.0, None)], id="space-before-brace"),
    pytest.param("# HELP\n# TYPE\na 1\n", "text", [("a", {}, 1.0, None)], id="bare-help-type-are-comments"),
    pytest.param("a 1 9223372036854775807\n", "text", [("a", {}, 1.0, 2**63 - 1)], id="text-int64-max-ts"),
    # Past int64 milliseconds: the page stands, the sample gets a time every store drops as too old.
    pytest.param("a 1 9223372036854775807\nb 1\n# EOF\n", OM,
                 [("a", {}, 1.0, -(2**63) + 1), ("b", {}, 1.0, None)], id="om-ts-past-int64-ms"),
    pytest.param("a 1 -9223372036854775808\n# EOF\n", OM, [("a", {}, 1.0, -(2**63) + 1)], id="om-ts-before-int64-ms"),
]


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "scrape"])
@pytest.mark.parametrize(("data", "fmt", "expected"), GRAMMAR_ACCEPTS)
def test_grammar_prometheus_accepts(data: str, fmt: str, expected: list[tuple[str, dict[str, str], float, int | None]],
                                    strict: bool) -> None:
    p = Parser(strict=strict)
    for _ in range(2):
        got = [(ls.get("__name__"), {k: v for k, v in ls.to_dict().items() if k != "__name__"}, v, t)
               for ls, v, t in p.parse(data, fmt).iter_samples()]
        assert got == expected


def test_text_type_and_help_text_as_prometheus_reads_them() -> None:
    """One separator after the name is dropped; the rest is the text (TYPE must then be a type)."""
    page = Parser(strict=False).parse("# HELP a\t two  words \n# TYPE a\tcounter\na 1\n")
    assert (page.metadata["a"].help, page.metadata["a"].type) == (" two  words ", "counter")
    with pytest.raises(ExpositionError, match="line 1: invalid metric type ' gauge'"):
        Parser().parse("# TYPE a  gauge\na 1\n")


# Exemplars a Prometheus scrape cannot store (labels over 128 runes, a repeated label name): the
# scrape keeps the sample and drops the exemplar; prometheus_client (the strict mode) rejects.
BAD_EXEMPLARS = [
    pytest.param('# TYPE c counter\nc_total 1 # {t="' + "x" * 128 + '"} 2\n# EOF\n', "exemplar labels exceed 128", id="129-chars"),
    pytest.param('# TYPE c counter\nc_total 1 # {t="' + "é" * 128 + '"} 2\n# EOF\n', "exemplar labels exceed 128", id="129-runes"),
    pytest.param('# TYPE c counter\nc_total 1 # {t="x",t="y"} 2\n# EOF\n', "duplicate exemplar label", id="dup-label"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_EXEMPLARS)
def test_unstorable_exemplar_dropped_by_scrape(data: str, reason: str) -> None:
    with pytest.raises(ExpositionError, match=f"line 2: {reason}"):
        Parser().parse(data, OM)
    p = Parser(strict=False)
    for _ in range(2):
        page = p.parse(data, OM)
        assert [(str(ls), v) for ls, v, _ in page.iter_samples()] == [("c_total", 1.0)]
        assert page.exemplars == []
    ok = '# TYPE c counter\nc_total 1 # {t="' + "é" * 127 + '"} 2\n# EOF\n'  # exactly 128 runes
    assert len(Parser().parse(ok, OM).exemplars) == 1


# A raw line break inside a quoted text-format label value: 2.42's lexer reads it as part of the
# value (the scraper's mode does too); OpenMetrics and prometheus_client (strict) reject it.
BROKEN_VALUES = [
    pytest.param('a{b="x\ny"} 1\n', [("a", {"b": "x\ny"}, 1.0)], id="one-break"),
    pytest.param('a 1\nb{c="x\n\ny",d="p\nq"} 2\nc 3\n',
                 [("a", {}, 1.0), ("b", {"c": "x\n\ny", "d": "p\nq"}, 2.0), ("c", {}, 3.0)], id="several-breaks"),
    pytest.param('a{b="x\\"\ny"} 1\n', [("a", {"b": 'x"\ny'}, 1.0)], id="after-an-escaped-quote"),
    pytest.param('# HELP a x"y\na{b="x\n# z"} 1\n', [("a", {"b": "x\n# z"}, 1.0)], id="quote-in-help-hash-in-value"),
    pytest.param('a{b="x\ny"} 1\na{b="x\\ny"} 2\n', [("a", {"b": "x\ny"}, 1.0), ("a", {"b": "x\ny"}, 2.0)],
                 id="same-as-the-escape"),
]


@pytest.mark.parametrize(("data", "expected"), BROKEN_VALUES)
def test_text_label_value_across_lines(data: str, expected: list[tuple[str, dict[str, str], float]]) -> None:
    p = Parser(strict=False)
    for _ in range(2):  # cold, then warm
        got = [(ls.get("__name__"), {k: v for k, v in ls.to_dict().items() if k != "__name__"}, v)
               for ls, v, _ in p.parse(data).iter_samples()]
        assert got == expected
    with pytest.raises(ExpositionError, match="expected a quoted value"):
        Parser().parse(data)
    with pytest.raises(ExpositionError):
        Parser(strict=False).parse(data + "# EOF\n", OM)


BROKEN_VALUE_ERRORS = [
    pytest.param('a 1\nb{c="x\n', 2, "expected a quoted value for label 'c'", id="never-closed"),
    pytest.param('a{b="x\\\ny"} 1\n', 1, "expected a quoted value", id="break-after-a-backslash"),
    pytest.param('a{b="x\ny"} 1\nok 2\nbad{ 3\n', 4, "invalid label name", id="later-error-keeps-its-line"),
]


@pytest.mark.parametrize(("data", "lineno", "reason"), BROKEN_VALUE_ERRORS)
def test_text_label_value_across_lines_errors(data: str, lineno: int, reason: str) -> None:
    with pytest.raises(ExpositionError) as info:
        Parser(strict=False).parse(data)
    assert info.value.lineno == lineno, str(info.value)
    assert reason in str(info.value)


# Lines Prometheus reads as samples and then refuses: the error says so (a scrape counts them).
READ_THEN_REFUSED = [
    pytest.param('a 1\nb{c="d",c="e"} 1\n', "text", True, id="duplicate-label"),
    pytest.param('b{__name__="x"} 1\n# EOF\n', OM, True, id="name-label-beside-a-name"),
    pytest.param(" b 1\n", "text", True, id="text-blank-before-name"),
    pytest.param(" b 1\n# EOF\n", OM, False, id="om-blank-before-name"),
    pytest.param('b{c="d",c="e"} x\n', "text", False, id="duplicate-label-and-bad-value"),
    pytest.param("b{ 1\n", "text", False, id="parse-error"),
]


@pytest.mark.parametrize("strict", [True, False], ids=["strict", "scrape"])
@pytest.mark.parametrize(("data", "fmt", "read"), READ_THEN_REFUSED)
def test_error_tells_a_refused_sample_from_a_parse_error(data: str, fmt: str, read: bool, strict: bool) -> None:
    with pytest.raises(ExpositionError) as info:
        Parser(strict=strict).parse(data, fmt)
    assert info.value.read_as_sample is read, str(info.value)


def test_text_label_value_across_lines_page_after_page() -> None:
    """A parser whose last page needed its values joined joins the next one first."""
    p = Parser(strict=False)
    broken, plain = 'a{b="x\ny"} 1\nc 2\n', 'a{b="x\\ny"} 3\nc 4\n'
    for data, value in [(broken, 1.0), (plain, 3.0), (broken, 1.0), (broken, 1.0), (plain, 3.0)]:
        assert [(str(ls), v) for ls, v, _ in p.parse(data).iter_samples()] == [
            ('a{b="x\\ny"}', value), ("c", value + 1)]
    p.parse(broken)
    with pytest.raises(ExpositionError, match="line 4: invalid value"):
        p.parse(broken + "d x\n")
    with pytest.raises(ExpositionError, match="line 1: expected a quoted value"):
        p.parse('a{b="x\n')
