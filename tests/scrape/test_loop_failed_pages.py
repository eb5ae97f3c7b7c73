"""Failed pages and ``scrape_series_added`` as Prometheus stores them (regressions found by
tests/scrape/test_scrape_realprom_diff.py against Prometheus 2.42 and checked in Prometheus 3's
scrape.go).

- A page that fails after parsing began (a label limit, ``sample_limit``, a parse error) stores
  nothing of its own, but the series appended before the failure count as present: only the
  previous scrape's other series get staleness markers (promlab marked all of them stale).
- Its report carries the counts up to the failure: ``scrape_samples_scraped`` stops at the
  failing sample, ``scrape_samples_post_metric_relabeling`` and ``scrape_series_added`` are not
  zeroed (promlab reported 0).
- ``scrape_series_added`` counts series texts missing from Prometheus's scrape cache: a series
  absent from the last good scrape counts again when it is back, two texts relabeled into one
  series count twice, and series with explicit timestamps count (promlab counted only series
  never seen before, once per final series, without explicit timestamps).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from promlab.model import Matcher, MatchType, stale_mask
from promlab.storage import MemoryStorage

from .drive import scrape_rounds
from .pagetarget import StaticPage

TIMES = [1000, 2000, 3000]


def run(server: tuple[str, StaticPage], pages: list[str], extra: dict[str, Any]) -> tuple[MemoryStorage, list[Any]]:
    address, state = server
    store = MemoryStorage()

    def serve(i: int) -> None:
        state.data = pages[min(i, len(pages) - 1)].encode()

    config = {"scrape_configs": [{"job_name": "j", "static_configs": [{"targets": [address]}], **extra}]}
    return store, scrape_rounds(store, config, TIMES[: len(pages)], before=serve)


def stored(store: MemoryStorage) -> tuple[dict[str, list[tuple[int, float]]], set[tuple[str, int]]]:
    """Samples per metric name (markers left out) and the ``(name, ts)`` of staleness markers."""
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
    samples: dict[str, list[tuple[int, float]]] = {}
    markers: set[tuple[str, int]] = set()
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        for t, v, s in zip(ts.tolist(), vs.tolist(), stale_mask(vs).tolist(), strict=True):
            if s:
                markers.add((ls.name, t))
            else:
                samples.setdefault(ls.name, []).append((t, v))
    return samples, markers


FAILED_PAGES = [
    pytest.param(["a 1\nz 0\n", 'new 1\na 2\nb{x="1",y="2",w="3"} 3\nc 1\n', "a 4\n"], {"label_limit": 4},
                 [2, 3, 1], [2, 2, 1], [2, 1, 0], {("z", 2000), ("new", 3000)}, id="label-limit"),
    pytest.param(["a 1\nb 2\nc 3\n", "a 1\nnew 1\nb 2\nc 3\nd 4\n", "a 2\n"], {"sample_limit": 3},
                 [3, 5, 1], [3, 5, 1], [3, 1, 0], {("c", 2000), ("b", 3000), ("new", 3000)}, id="sample-limit"),
    pytest.param(["a 1\nb 2\nc 3\n", "a 2\nnew 1\nbad{ 1\nd 4\n", "a 3\n"], {},
                 [3, 2, 1], [3, 2, 1], [3, 1, 0], {("b", 2000), ("c", 2000), ("new", 3000)}, id="parse-error"),
]


@pytest.mark.parametrize(("pages", "extra", "scraped", "post", "added", "markers"), FAILED_PAGES)
def test_failed_page_keeps_series_seen_before_the_failure(
        static_page: tuple[str, StaticPage], pages: list[str], extra: dict[str, Any], scraped: list[int],
        post: list[int], added: list[int], markers: set[tuple[str, int]]) -> None:
    store, results = run(static_page, pages, extra)
    samples, got_markers = stored(store)
    assert [r.scraped for r in results] == scraped
    assert [r.post_relabel for r in results] == post
    assert [r.added for r in results] == added
    report = {n: [v for t, v in samples[n]] for n in ("scrape_samples_scraped",
                                                      "scrape_samples_post_metric_relabeling",
                                                      "scrape_series_added")}
    assert report == {"scrape_samples_scraped": scraped, "scrape_samples_post_metric_relabeling": post,
                      "scrape_series_added": added}
    assert got_markers == markers
    assert [r.ok for r in results] == [True, False, True]
    assert [t for t, _ in samples["a"]] == [1000, 3000]  # nothing of the failed page


ADDED = [
    pytest.param(["a 1\nb 1\n", "a 1\n", "a 1\nb 1\n"], {}, [2, 0, 1], id="back-after-a-good-scrape"),
    pytest.param(['x{t="1"} 1\nx{t="2"} 2\n', 'x{t="1"} 1\nx{t="2"} 2\n'],
                 {"metric_relabel_configs": [{"regex": "t", "action": "labeldrop"}]}, [2, 0], id="two-texts-one-series"),
    pytest.param(["a 1 500\nb 1\n", "a 1 500\nb 1\n"], {}, [2, 0], id="explicit-timestamp"),
    pytest.param(["a 1\na 2\nb 3\n"], {}, [2], id="duplicate-line"),
]


@pytest.mark.parametrize(("pages", "extra", "added"), ADDED)
def test_series_added_counts_as_prometheus_scrape_cache(
        static_page: tuple[str, StaticPage], pages: list[str], extra: dict[str, Any], added: list[int]) -> None:
    store, results = run(static_page, pages, extra)
    assert all(r.ok for r in results)
    assert [r.added for r in results] == added
    samples, _ = stored(store)
    assert all(np.isfinite(v) for _, v in samples.get("x", []))
    if "x" in samples:  # the first of the two texts wins
        assert [v for _, v in samples["x"]] == [1.0, 1.0]


OM = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Lines Prometheus's parser reads and its scrape refuses (once relabeled: test_loop_refused.py)
# count as scraped, the error in Prometheus's words; a page lacking only its '# EOF' appended
# all its samples first (checked against 2.42 by
# test_scrape_realprom_probes.py and the refused_sample / om_no_eof cases of the diff test).
COUNTED = [
    pytest.param("text", 'a 2\nnew 1\nx{l="1",l="2"} 3\nd 4\n', 3, 2, 'label name "l" is not unique',
                 id="duplicate-label-mid-page"),
    pytest.param("text", 'a{b="c",b="d"} 1\n', 1, 0, 'label name "b" is not unique', id="duplicate-label-first"),
    pytest.param("openmetrics", 'a{b="c",b="d"} 1\n# EOF\n', 1, 0, 'label name "b" is not unique',
                 id="om-duplicate-label"),
    pytest.param("text", 'a{__name__="b"} 1\n', 1, 0, 'label name "__name__" is not unique', id="name-label"),
    pytest.param("text", " a 1\n", 1, 0, "whitespace before the metric name", id="blank-before-name"),
    pytest.param("text", 'a 1\na{b="c",b="d"} x\n', 1, 1, "invalid value", id="unreadable-line-not-counted"),
    pytest.param("openmetrics", " a 1\n# EOF\n", 0, 0, "whitespace before the metric name",
                 id="om-blank-before-name-not-read"),
    pytest.param("openmetrics", "a 1\nb 2\n", 2, 2, "line 2: data does not end with '# EOF'", id="om-missing-eof"),
    pytest.param("openmetrics", "a 1\nbad{ 2\nc 3\n", 1, 1, "line 2: ", id="om-missing-eof-after-a-bad-line"),
]


@pytest.mark.parametrize(("fmt", "page", "scraped", "post", "error"), COUNTED)
def test_sample_read_then_refused_counts_as_scraped(
        static_page: tuple[str, StaticPage], fmt: str, page: str, scraped: int, post: int, error: str) -> None:
    _, state = static_page
    state.content_type = OM if fmt == "openmetrics" else state.content_type
    store, results = run(static_page, ["a 1\n" + ("# EOF\n" if fmt == "openmetrics" else ""), page], {})
    assert [r.ok for r in results] == [True, False]
    assert error in results[1].error, results[1].error
    assert (results[1].scraped, results[1].post_relabel) == (scraped, post)
    samples, _ = stored(store)
    assert samples["scrape_samples_scraped"][1] == (TIMES[1], scraped)
    assert "x" not in samples and "b" not in samples
