"""The parser's ``keep_refused`` mode: samples Prometheus reads and refuses only once relabeled.

A repeated label name, ``__name__`` beside a metric name and text-format blanks before the name
fail a page in every other mode; with ``keep_refused`` (the scraper's) such a line gets a ref
of its own, listed in ``Page.refused`` with its labels as Prometheus reads them, and the scrape
decides after relabeling (tests/scrape/test_loop_refused.py).
"""

from __future__ import annotations

import pytest

from promlab.errors import ExpositionError
from promlab.exposition import Parser
from promlab.model import Labels

OM = "application/openmetrics-text"

KEPT = [
    pytest.param("text", 'ok 1\na{b="c",b="d"} 2\n', (("__name__", "a"), ("b", "c"), ("b", "d")),
                 {"__name__": "a", "b": "c"}, "duplicate label name 'b'", id="dup"),
    pytest.param("text", 'ok 1\na{b="d", b="c"} 2\n', (("__name__", "a"), ("b", "d"), ("b", "c")),
                 {"__name__": "a", "b": "d"}, "duplicate label name 'b'", id="dup-line-order-kept"),
    pytest.param("text", 'ok 1\na{z="1",b="",b="x"} 2\n',
                 (("__name__", "a"), ("b", ""), ("b", "x"), ("z", "1")),
                 {"__name__": "a", "z": "1"}, "duplicate label name 'b'", id="dup-with-empty-copy"),
    pytest.param("text", 'ok 1\na{__name__="x"} 2\n', (("__name__", "a"), ("__name__", "x")),
                 {"__name__": "a"}, "metric name specified twice (name and __name__ label)", id="name-label"),
    pytest.param("text", "ok 1\n \ta 2\n", (("__name__", " \ta"),), {"__name__": " \ta"},
                 "whitespace before the metric name", id="blanks-in-name"),
    pytest.param("openmetrics", 'ok 1\na{b="c",b="d"} 2\n# EOF\n', (("__name__", "a"), ("b", "c"), ("b", "d")),
                 {"__name__": "a", "b": "c"}, "duplicate label name 'b'", id="om-dup"),
]


@pytest.mark.parametrize(("fmt", "body", "pairs", "first", "reason"), KEPT)
def test_refused_line_kept_with_its_labels(fmt: str, body: str, pairs: tuple[tuple[str, str], ...],
                                           first: dict[str, str], reason: str) -> None:
    ctype = OM if fmt == "openmetrics" else None
    p = Parser(strict=False, keep_refused=True)
    page = p.parse(body, ctype)
    assert len(page) == 2 and page.values.tolist() == [1.0, 2.0]
    ref = int(page.refs[1])
    assert set(page.refused) == {ref}
    assert page.refused[ref].pairs == pairs
    assert page.refused[ref].reason == reason
    assert page.series[ref] == Labels(first)
    again = p.parse(body, ctype)  # through the prefix cache: same ref, nothing new
    assert again.refs.tolist() == page.refs.tolist() and len(p) == 2
    with pytest.raises(ExpositionError, match="line 2") as info:  # every other mode fails
        Parser(strict=False).parse(body, ctype)
    assert info.value.read_as_sample


def test_refused_copies_in_other_order_are_other_series() -> None:
    page = Parser(strict=False, keep_refused=True).parse('a{b="c",b="d"} 1\na{b="d",b="c"} 2\na{b="c"} 3\n')
    assert len(set(page.refs.tolist())) == 3
    assert set(page.refused) == set(page.refs.tolist()[:2])


NOT_READ = [
    pytest.param("text", ' {"a"} 1\n', "whitespace before the metric name", id="blanks-before-brace"),
    pytest.param("openmetrics", " a 1\n# EOF\n", "whitespace before the metric name", id="om-blanks"),
    pytest.param("text", 'a{b="c",b="d"} 1\nbad{ 2\n', "line 2", id="later-bad-line-reported"),
    pytest.param("text", 'a{b="c",b="d"} x\n', "invalid value", id="unreadable-refused-line"),
]


@pytest.mark.parametrize(("fmt", "body", "error"), NOT_READ)
def test_lines_prometheus_cannot_read_still_fail(fmt: str, body: str, error: str) -> None:
    with pytest.raises(ExpositionError, match=error) as info:
        Parser(strict=False, keep_refused=True).parse(body, OM if fmt == "openmetrics" else None)
    assert not info.value.read_as_sample
