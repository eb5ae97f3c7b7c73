"""Differential tests: promlab's parsers against prometheus_client's on generated and real pages."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import realprom
from promlab.exposition import ACCEPT_HEADER, Parser, negotiate
from promlab.model import Labels
from tests.exposition.expo_gen import escape, om_page, page_samples, reference_samples, same, text_page


def _check(text: str, fmt: str) -> None:
    om = fmt == "openmetrics"
    ref = reference_samples(text, om)
    p = Parser()
    cold = page_samples(p.parse(text, fmt))
    warm = page_samples(p.parse(text, fmt))
    assert same(ref, cold), "cold parse differs from prometheus_client"
    assert same(ref, warm), "warm parse differs from prometheus_client"


@pytest.mark.parametrize("seed", range(40))
def test_generated_text_pages(seed: int) -> None:
    _check(text_page(seed), "text")


@pytest.mark.parametrize("seed", range(40))
def test_generated_openmetrics_pages(seed: int) -> None:
    _check(om_page(seed), "openmetrics")


def test_one_parser_across_many_pages() -> None:
    p = Parser()
    for seed in range(10):
        for fmt, text in (("text", text_page(seed)), ("openmetrics", om_page(seed))):
            assert same(reference_samples(text, fmt == "openmetrics"), page_samples(p.parse(text, fmt)))


label_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(label_text, min_size=1, max_size=4), value=st.floats(allow_nan=True),
       ts=st.none() | st.integers(-(2**63), 2**63 - 1))
def test_text_roundtrip_arbitrary_label_values(values: list[str], value: float, ts: int | None) -> None:
    labels = ",".join(f'l{i}="{escape(v)}"' for i, v in enumerate(values))
    num = repr(value).replace("inf", "Inf").replace("nan", "NaN")
    if num == "Inf":
        num = "+Inf"
    line = f"m{{{labels}}} {num}" + ("" if ts is None else f" {ts}") + "\n"
    got = page_samples(Parser().parse(line))
    assert got[0][2] == ts
    if ts is None or abs(ts) < 10**15:  # prometheus_client keeps timestamps as float seconds
        assert same(reference_samples(line, False), got)
    expected = {"__name__": "m"} | {f"l{i}": v for i, v in enumerate(values) if v}
    assert got[0][0] == Labels(expected)


@pytest.fixture(scope="module")
def node_exporter_url() -> Iterator[str]:
    realprom.require_binary("node_exporter")
    with realprom.node_exporter() as ne:
        yield ne.url


@pytest.mark.parametrize("accept", ["text/plain;version=0.0.4", ACCEPT_HEADER])
def test_real_node_exporter_page(node_exporter_url: str, accept: str) -> None:
    r = httpx.get(f"{node_exporter_url}/metrics", headers={"Accept": accept}, timeout=10)
    r.raise_for_status()
    fmt = negotiate(r.headers.get("content-type"))
    text = r.text
    ref = reference_samples(text, fmt == "openmetrics")
    p = Parser()
    page = p.parse(r.content, r.headers.get("content-type"))
    assert len(page) > 100
    assert same(ref, page_samples(page))
    assert same(ref, page_samples(p.parse(r.content, fmt)))
    assert any(m.type == "counter" for m in page.metadata.values())
