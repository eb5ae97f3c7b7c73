"""Page.empty_labels: labels written with empty values (``instance=""``), which Labels drop."""

from __future__ import annotations

import pytest

from promlab.exposition import Parser

CASES = [
    pytest.param('a{instance="",job="x"} 1\nb{job="x"} 2\n', "text",
                 {"a": ("instance",)}, id="text"),
    pytest.param('a{instance="",job="x"} 1 5\nb{job="x"} 2 5\n', "text",
                 {"a": ("instance",)}, id="text-timestamps"),
    pytest.param('a{ instance = "" ,job="x"}   1\n', "text", {"a": ("instance",)}, id="text-whitespace"),
    pytest.param('a{x="",y=""} 1\n', "text", {"a": ("x", "y")}, id="two-empty"),
    pytest.param('a{instance="",job="x"} 1\nb 2\n# EOF\n', "openmetrics", {"a": ("instance",)}, id="om"),
    pytest.param('a{job="x"} 1\nb 2\n', "text", {}, id="none"),
]


def _named(page_empty: dict[int, tuple[str, ...]], series: list) -> dict[str, tuple[str, ...]]:
    return {series[r].name: names for r, names in page_empty.items()}


@pytest.mark.parametrize(("body", "fmt", "expected"), CASES)
def test_empty_labels_cold_and_warm(body: str, fmt: str, expected: dict[str, tuple[str, ...]]) -> None:
    p = Parser()
    for _ in range(3):  # cold, then served from the series cache
        page = p.parse(body, fmt)
        assert _named(page.empty_labels, p.series) == expected
    assert "instance" not in page.series[page.refs[0]]


def test_same_series_written_both_ways() -> None:
    """``a{instance=""}`` and ``a`` are one series; only pages that wrote the label list it."""
    p = Parser()
    assert p.parse('a{instance=""} 1\n').empty_labels == {0: ("instance",)}
    assert p.parse("a 1\n").empty_labels == {}
    assert p.parse('a{instance=""} 2\n').empty_labels == {0: ("instance",)}
    assert p.parse("b 1\n").empty_labels == {}


def test_import_mode_parser() -> None:
    """A parser in its timestamped (import) mode finds them too."""
    p = Parser()
    body = "".join(f'm{{i="{k % 7}",e=""}} {k} {k}\n' for k in range(700))
    for _ in range(2):
        page = p.parse(body)
        assert set(page.empty_labels.values()) == {("e",)} and len(page.empty_labels) == 7
