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
