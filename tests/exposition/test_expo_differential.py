"""Differential tests: promlab's parsers against prometheus_client's on generated and real pages.

``PROMLAB_EXPO_SEEDS=N`` (default 40) generates N pages per format, ``PROMLAB_EXPO_SEED_BASE=B``
starts at seed B (longer hunts: ``PROMLAB_EXPO_SEEDS=2000``).
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import realprom
from promlab.errors import ExpositionError
from promlab.exposition import ACCEPT_HEADER, Parser, negotiate
from promlab.model import Labels
from tests.exposition.expo_gen import (
    escape,
    om_page,
    page_samples,
    reference_samples,
    same,
    text_page,
)

SEEDS = range(int(os.environ.get("PROMLAB_EXPO_SEED_BASE", "0")),
              int(os.environ.get("PROMLAB_EXPO_SEED_BASE", "0")) + int(os.environ.get("PROMLAB_EXPO_SEEDS", "40")))


def _check(text: str, fmt: str) -> None:
    om = fmt == "openmetrics"
    ref = reference_samples(text, om)
    p = Parser()
    cold = page_samples(p.parse(text, fmt))
    warm = page_samples(p.parse(text, fmt))
    assert same(ref, cold), "cold parse differs from prometheus_client"
    assert same(ref, warm), "warm parse differs from prometheus_client"


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_text_pages(seed: int) -> None:
    _check(text_page(seed), "text")


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_openmetrics_pages(seed: int) -> None:
    _check(om_page(seed), "openmetrics")


def test_one_parser_across_many_pages() -> None:
    p = Parser()
    for fmt in ("text", "openmetrics"):  # timestamped pages switch the parser to its import mode
        # (interleaved families: import-chunk style, so the OpenMetrics type rules are off)
        p.parse("".join(f"x{k % 3} {k} {k}\n" for k in range(600)) + "# EOF\n" * (fmt == "openmetrics"), fmt,
                require_eof=False)
    for seed in range(10):
        for fmt, text in (("text", text_page(seed)), ("openmetrics", om_page(seed))):
            assert same(reference_samples(text, fmt == "openmetrics"), page_samples(p.parse(text, fmt)))


label_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=150, deadline=None)
@given(values=st.lists(label_text, min_size=1, max_size=4), value=st.floats(allow_nan=True),
       ts=st.none() | st.integers(0, 2**63 - 1))
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


def _fuzz_line(rnd: random.Random, fmt: str, bad: float) -> str:
    series = rnd.choice(['a', 'b_total', 'c{x="1"}', 'c{x="1 2"}', 'd{y="é",z="#"}', '{"q.r"}', "e{}",
                         'f{a="b",}'])
    value = rnd.choice(["1", "2.5", "NaN", "+Inf", "-3", "1e3", "007", "-0"])
    sep = " " if fmt == "openmetrics" else rnd.choice([" ", " ", " ", "  ", "\t"])
    line = series + sep + value
    if rnd.random() < 0.5:
        line += sep + (str(rnd.randint(0, 10**6)) if fmt == "text" else rnd.choice(["17", "17.5", "1.7e3"]))
    if fmt == "text" and rnd.random() < 0.1:
        line = rnd.choice(["  ", ""]) + line + rnd.choice([" ", "\t"])
    if fmt == "openmetrics" and series == "b_total" and rnd.random() < 0.2:
        line += ' # {t="1"} 2'
    if rnd.random() < bad:
        line = line.replace(value, "zz", 1)
    return line


def _outcome(p: Parser, body: str, fmt: str) -> object:
    try:
        page = p.parse(body, fmt)
    except ExpositionError as exc:
        return ("error", exc.lineno, exc.reason)
    return ([(ls, math.copysign(1, v), "nan" if math.isnan(v) else v, t) for ls, v, t in page.iter_samples()],
            [(e.index, e.labels, e.value) for e in page.exemplars])


def test_shared_parser_agrees_with_fresh_parser() -> None:
    """Whatever a parser has cached (warm pages, timestamped pages, errors), it reads every page
    exactly as a fresh parser does, errors (line and reason) included."""
    rnd = random.Random(8)
    shared = Parser()
    for _ in range(300):
        fmt = rnd.choice(["text", "openmetrics"])
        bad = rnd.choice([0.0, 0.0, 0.0, 0.002])
        body = "\n".join(_fuzz_line(rnd, fmt, bad) for _ in range(rnd.randint(1, 300))) + "\n"
        body += "# EOF\n" if fmt == "openmetrics" else ""
        assert _outcome(shared, body, fmt) == _outcome(Parser(), body, fmt), body
