"""Refused samples under target labels and ``metric_relabel_configs`` in the scrape loop.

Prometheus reads a sample with a repeated label name, ``__name__`` beside a metric name or (text
format) blanks before the name, and refuses it only after its scrape loop attached the target
labels and relabeled it: a sample relabeling drops or mends is no error. The expectations here
are what a real Prometheus 2.42 stores for the same pages (test_scrape_realprom_refused.py
checks that against the binary); these run without it. Every page is scraped twice more after
a first good page, so the second run goes through the parser's and the loop's caches.
"""

from __future__ import annotations

from typing import Any

import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage

from .pagetarget import StaticPage
from .test_loop_failed_pages import OM, run

DROP_A = {"source_labels": ["__name__"], "regex": "a", "action": "drop"}
LABELDROP_B = {"regex": "b", "action": "labeldrop"}
LABELMAP = {"regex": "lbl_(.+)", "action": "labelmap", "replacement": "${1}"}
TRIM_NAME = {"source_labels": ["__name__"], "regex": "[ \t]*(.*)", "target_label": "__name__"}
DUP = 'ok 1\na{b="c",b="d"} 2\nz 3\n'

# fmt, page, scrape config keys, error (substring; "" for an accepted page), scraped, post,
# the series stored from the page (without target labels) with their values.
CASES = [
    pytest.param("text", DUP, {}, 'label name "b" is not unique', 2, 1, {}, id="dup-fails"),
    pytest.param("text", DUP, {"metric_relabel_configs": [DROP_A]}, "", 3, 2, {"ok": 1, "z": 3},
                 id="dup-dropped"),
    pytest.param("openmetrics", DUP + "# EOF\n", {"metric_relabel_configs": [DROP_A]}, "", 3, 2,
                 {"ok": 1, "z": 3}, id="om-dup-dropped"),
    pytest.param("text", DUP, {"metric_relabel_configs": [LABELDROP_B]}, "", 3, 3,
                 {"ok": 1, "a": 2, "z": 3}, id="dup-labeldropped"),
    pytest.param("text", DUP, {"metric_relabel_configs": [{"source_labels": ["b"], "target_label": "b"}]},
                 "", 3, 3, {"ok": 1, 'a{b="c"}': 2, "z": 3}, id="dup-set-to-first-value"),
    pytest.param("text", DUP, {"metric_relabel_configs": [
        {"source_labels": ["__name__"], "regex": "ok|a", "action": "keep"}]},
        'label name "b" is not unique', 2, 1, {}, id="dup-kept"),
    pytest.param("text", 'a{b="c",b="d"} 1\na{b="d",b="c"} 2\n', {"metric_relabel_configs": [
        {"source_labels": ["b"], "regex": "c", "action": "drop"}, LABELDROP_B]},
        "", 2, 1, {"a": 2}, id="dup-lookup-sees-first-copy"),
    pytest.param("text", 'a{lbl_b="1",lbl_b="2"} 1\n', {"metric_relabel_configs": [
        LABELMAP, {"regex": "lbl_.+", "action": "labeldrop"}]}, "", 1, 1, {'a{b="2"}': 1},
        id="dup-labelmap-last-copy-wins"),
    pytest.param("text", 'a{lbl_b="1",lbl_b="2"} 1\n', {"metric_relabel_configs": [LABELMAP]},
                 'label name "lbl_b" is not unique', 1, 0, {}, id="dup-labelmap-keeps-source"),
    pytest.param("text", 'ok 1\na{job="x",job="y"} 2\n', {}, "", 2, 2, {"ok": 1, 'a{exported_job="x"}': 2},
                 id="dup-target-label-set"),
    pytest.param("text", 'ok 1\na{job="x",job="y"} 2\n', {"honor_labels": True},
                 'label name "job" is not unique', 2, 1, {}, id="dup-target-label-honored"),
    pytest.param("text", 'ok 1\na{b="",b="x"} 2\n', {}, "", 2, 2, {"ok": 1, "a": 2}, id="dup-empty-copy-deletes"),
    pytest.param("text", 'a{b="c",b="d"} 1\nok 2\n', {"metric_relabel_configs": [DROP_A], "sample_limit": 1},
                 "", 2, 1, {"ok": 2}, id="dropped-not-in-sample-limit"),
    pytest.param("text", 'ok 1\na{b="c",b="d"} 2\nbad{ 3\n', {"metric_relabel_configs": [DROP_A]},
                 "line 3", 2, 1, {}, id="dropped-then-parse-error"),
    pytest.param("text", 'a{__name__="x"} 1\n', {"metric_relabel_configs": [
        {"source_labels": ["__name__"], "target_label": "__name__"}]}, "", 1, 1, {"a": 1},
        id="name-label-name-rewritten"),
    pytest.param("openmetrics", 'a{__name__="x"} 1\n# EOF\n', {"metric_relabel_configs": [DROP_A]}, "",
                 1, 0, {}, id="om-name-label-dropped"),
    pytest.param("text", 'a{__name__="x"} 1\n', {"metric_relabel_configs": [
        {"source_labels": ["__name__"], "regex": "x", "action": "drop"}]},
        'label name "__name__" is not unique', 1, 0, {}, id="name-label-lookup-sees-name"),
    pytest.param("text", "ok 1\n  a 2\n", {"metric_relabel_configs": [TRIM_NAME]}, "", 2, 2, {"ok": 1, "a": 2},
                 id="blank-name-trimmed"),
    pytest.param("text", "ok 1\n\ta 2\n", {"metric_relabel_configs": [
        {"source_labels": ["__name__"], "regex": "\ta", "action": "drop"}]}, "", 2, 1, {"ok": 1},
        id="tab-name-dropped"),
    pytest.param("text", "ok 1\n  a 2\n", {"metric_relabel_configs": [DROP_A]},
                 "whitespace before the metric name", 2, 1, {}, id="blank-name-not-matched"),
]


def _page_series(store: MemoryStorage, ts: int) -> dict[str, float]:
    """The samples at ``ts`` of series from the page (target labels left out of the key)."""
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
    out: dict[str, float] = {}
    for i in range(len(ss)):
        ls, tss, vs = ss.series(i)
        if ls.name.startswith(("up", "scrape_")):
            continue
        rest = {k: v for k, v in ls.to_dict().items() if k not in ("__name__", "instance", "job")}
        key = ls.name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(rest.items())) + "}" if rest else "")
        for t, v in zip(tss.tolist(), vs.tolist(), strict=True):
            if t == ts:
                out[key] = v
    return out


@pytest.mark.parametrize(("fmt", "page", "extra", "error", "scraped", "post", "series"), CASES)
def test_refused_sample_judged_after_relabeling(
        static_page: tuple[str, StaticPage], fmt: str, page: str, extra: dict[str, Any], error: str,
        scraped: int, post: int, series: dict[str, float]) -> None:
    _, state = static_page
    state.content_type = OM if fmt == "openmetrics" else state.content_type
    store, results = run(static_page, ["ok 1\n" + ("# EOF\n" if fmt == "openmetrics" else ""), page, page],
                         extra)
    for r in results[1:]:
        assert r.ok == (not error), r.error
        assert error in r.error, r.error
        assert (r.scraped, r.post_relabel) == (scraped, post)
    assert _page_series(store, 3000) == series
