"""Refused samples under metric relabeling: what a real Prometheus 2.42 and promlab store.

Prometheus reads some samples and refuses them only when it appends them: a repeated label
name (``label name "b" is not unique``), ``__name__`` beside a metric name (the same, for
``__name__``), text-format blanks before the name (an invalid metric name). Its scrape loop
attaches the target labels and runs ``metric_relabel_configs`` on a new series *before* those
checks, so a rule that drops the sample, removes the repeated label or rewrites ``__name__``
saves the page, and a page whose only bad sample is relabeled away is accepted.

Each case is a job of its own with its own scrape config, served the same body every time, to
one Prometheus and to one promlab scraper (the harness of test_scrape_realprom_diff.py). After
:data:`ROUNDS` scrapes (the later ones go through both scrape caches) the last scrape's samples
are compared, the report series included (``up``, ``scrape_samples_scraped``,
``scrape_samples_post_metric_relabeling``, ``scrape_series_added``), and a failed page must
fail in both. Each case also states whether Prometheus accepts it (``up`` 1), so a case that
stops testing what it names fails.

Relabeling can also make a name invalid: a ``labelmap`` whose replacement expands to nothing
names a label ``""`` (in metric or target relabeling), and every sample carrying it fails the
page (``invalid metric name or label names``). Names that are only invalid in 2.42's legacy
syntax (``__name__`` rewritten to ``1abc``, a label mapped to ``1x``) fail the page in 2.42 and
are valid UTF-8 names in 3.x and promlab: :data:`UTF8_NAMES` pins that known difference.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scrape.realprom_jobs import Stored, differences, scrape_jobs
from tests.scrape.test_scrape_realprom_diff import OM, TEXT, Case

pytestmark = pytest.mark.realprom

ROUNDS = 3
"""Scrapes per job; the last one is compared."""


def _drop(regex: str) -> dict[str, Any]:
    return {"source_labels": ["__name__"], "regex": regex, "action": "drop"}


def _keep(regex: str) -> dict[str, Any]:
    return {"source_labels": ["__name__"], "regex": regex, "action": "keep"}


_LABELDROP_B = {"regex": "b", "action": "labeldrop"}
_NAME_FROM_NAME = {"source_labels": ["__name__"], "target_label": "__name__"}
_NAME_TRIMMED = {"source_labels": ["__name__"], "regex": "[ \t]*(.*)", "target_label": "__name__"}
_LABELMAP = {"regex": "lbl_(.+)", "action": "labelmap", "replacement": "${1}"}
_LABELDROP_LBL = {"regex": "lbl_.+", "action": "labeldrop"}

_LABELMAP_ALL = {"regex": "lbl_(.*)", "action": "labelmap", "replacement": "${1}"}
_SET_LBL = {"target_label": "lbl_", "replacement": "v"}


def _rename(to: str) -> dict[str, Any]:
    return {"source_labels": ["__name__"], "regex": "a", "target_label": "__name__", "replacement": to}


_DUP = 'ok 1\na{b="c",b="d"} 2\nz 3\n'
_NAMED = 'ok 1\na{__name__="x"} 2\nz 3\n'
_BLANK = "ok 1\n  a 2\nz 3\n"

# id, format, body, scrape config keys, whether Prometheus 2.42 accepts the page.
REFUSED: list[tuple[str, str, str, dict[str, Any], bool]] = [
    # Repeated label names.
    ("dup-no-relabel", "text", _DUP, {}, False),
    ("dup-drop-name", "text", _DUP, {"metric_relabel_configs": [_drop("a")]}, True),
    ("dup-drop-other", "text", _DUP, {"metric_relabel_configs": [_drop("ok")]}, False),
    ("dup-labeldrop", "text", _DUP, {"metric_relabel_configs": [_LABELDROP_B]}, True),
    ("dup-keep-others", "text", _DUP, {"metric_relabel_configs": [_keep("ok|z")]}, True),
    ("dup-keep-it", "text", _DUP, {"metric_relabel_configs": [_keep("ok|a")]}, False),
    ("dup-replace-same-value", "text", _DUP,
     {"metric_relabel_configs": [{"source_labels": ["b"], "target_label": "b"}]}, True),
    ("dup-replace-no-match", "text", _DUP,
     {"metric_relabel_configs": [{"source_labels": ["b"], "regex": "nomatch", "target_label": "b"}]}, False),
    ("dup-labelmap-then-labeldrop", "text", 'ok 1\na{lbl_b="1",lbl_b="2"} 2\nz 3\n',
     {"metric_relabel_configs": [_LABELMAP, _LABELDROP_LBL]}, True),
    ("dup-labelmap-only", "text", 'ok 1\na{lbl_b="1",lbl_b="2"} 2\nz 3\n',
     {"metric_relabel_configs": [_LABELMAP]}, False),
    ("labelmap-onto-existing", "text", 'ok 1\na{lbl_b="1",b="2"} 2\nz 3\n',
     {"metric_relabel_configs": [_LABELMAP]}, True),
    ("dup-first-value-decides", "text", 'a{b="c",b="d"} 1\na{b="d",b="c"} 2\n',
     {"metric_relabel_configs": [{"source_labels": ["b"], "regex": "c", "action": "drop"},
                                 _LABELDROP_B]}, True),
    ("dup-target-label", "text", 'ok 1\na{job="x",job="y"} 2\n', {}, True),
    ("dup-target-label-honored", "text", 'ok 1\na{job="x",job="y"} 2\n', {"honor_labels": True}, False),
    ("dup-empty-copy", "text", 'ok 1\na{b="",b="x"} 2\n', {}, True),
    ("dup-dropped-then-parse-error", "text", 'ok 1\na{b="c",b="d"} 2\nbad{ 3\n',
     {"metric_relabel_configs": [_drop("a")]}, False),
    ("dup-dropped-not-in-sample-limit", "text", 'a{b="c",b="d"} 1\nok 2\n',
     {"metric_relabel_configs": [_drop("a")], "sample_limit": 1}, True),
    # __name__ beside a metric name.
    ("name-label-no-relabel", "text", _NAMED, {}, False),
    ("name-label-drop-name", "text", _NAMED, {"metric_relabel_configs": [_drop("a")]}, True),
    ("name-label-drop-label-value", "text", _NAMED, {"metric_relabel_configs": [_drop("x")]}, False),
    ("name-label-replace-name", "text", _NAMED, {"metric_relabel_configs": [_NAME_FROM_NAME]}, True),
    # Text-format blanks before the name.
    ("blank-no-relabel", "text", _BLANK, {}, False),
    ("blank-drop-name", "text", _BLANK, {"metric_relabel_configs": [_drop("[ \t]+a")]}, True),
    ("blank-drop-trimmed-name", "text", _BLANK, {"metric_relabel_configs": [_drop("a")]}, False),
    ("blank-replace-name", "text", _BLANK, {"metric_relabel_configs": [_NAME_TRIMMED]}, True),
    ("tab-replace-name", "text", "ok 1\n\ta{b=\"c\"} 2\n", {"metric_relabel_configs": [_NAME_TRIMMED]}, True),
    # OpenMetrics.
    ("om-dup-no-relabel", "openmetrics", _DUP + "# EOF\n", {}, False),
    ("om-dup-drop-name", "openmetrics", _DUP + "# EOF\n", {"metric_relabel_configs": [_drop("a")]}, True),
    ("om-dup-labeldrop", "openmetrics", _DUP + "# EOF\n", {"metric_relabel_configs": [_LABELDROP_B]}, True),
    ("om-dup-keep-others", "openmetrics", _DUP + "# EOF\n", {"metric_relabel_configs": [_keep("ok|z")]}, True),
    ("om-dup-labelmap-then-labeldrop", "openmetrics", 'ok 1\na{lbl_b="1",lbl_b="2"} 2\n# EOF\n',
     {"metric_relabel_configs": [_LABELMAP, _LABELDROP_LBL]}, True),
    ("om-name-label-replace-name", "openmetrics", _NAMED + "# EOF\n",
     {"metric_relabel_configs": [_NAME_FROM_NAME]}, True),
    ("om-name-label-drop-name", "openmetrics", _NAMED + "# EOF\n",
     {"metric_relabel_configs": [_drop("a")]}, True),
    ("om-dup-dropped-no-eof", "openmetrics", _DUP, {"metric_relabel_configs": [_drop("a")]}, False),
    # Names relabeling makes invalid, or removes.
    ("labelmap-to-empty-name", "text", 'ok 1\na{lbl_="v"} 2\nz 3\n', {"metric_relabel_configs": [_LABELMAP_ALL]},
     False),
    ("labelmap-to-empty-name-dropped", "text", 'ok 1\na{lbl_="v"} 2\nz 3\n',
     {"metric_relabel_configs": [_LABELMAP_ALL, {"regex": "", "action": "labeldrop"}]}, True),
    ("target-labelmap-to-empty-name", "text", "ok 1\na 2\n", {"relabel_configs": [_SET_LBL, _LABELMAP_ALL]},
     False),
    ("om-labelmap-to-empty-name", "openmetrics", 'ok 1\na{lbl_="v"} 2\n# EOF\n',
     {"metric_relabel_configs": [_LABELMAP_ALL]}, False),
    ("replace-to-invalid-target-skipped", "text", 'ok 1\na{b="1x"} 2\n',
     {"metric_relabel_configs": [{"source_labels": ["b"], "target_label": "${1}", "replacement": "v"}]}, True),
    ("replace-name-with-nothing", "text", "ok 1\na 2\n", {"metric_relabel_configs": [_rename("")]}, False),
    ("labeldrop-name", "text", "ok 1\na 2\n",
     {"metric_relabel_configs": [{"regex": "__name__", "action": "labeldrop"}]}, False),
]

# id, body, metric_relabel_configs: names 2.42 refuses (the page fails) and 3.x and promlab keep.
UTF8_NAMES: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("rename-to-digit-first", "ok 1\na 2\n", [_rename("1abc")]),
    ("rename-to-dotted", "ok 1\na 2\n", [_rename("a.b")]),
    ("labelmap-to-digit-first", 'ok 1\na{lbl_1x="v"} 2\n', [_LABELMAP_ALL]),
]


@pytest.fixture(scope="module")
def stored() -> dict[str, Stored]:
    """Scrape every case with one Prometheus and one promlab scraper."""
    cases = [Case(f"r{k}", [body], cfg=cfg, ctype=OM if fmt == "openmetrics" else TEXT)
             for k, (_, fmt, body, cfg, _) in enumerate(REFUSED)]
    cases += [Case(f"u{k}", [body], cfg={"metric_relabel_configs": rules})
              for k, (_, body, rules) in enumerate(UTF8_NAMES)]
    ids = {f"r{k}": case_id for k, (case_id, *_) in enumerate(REFUSED)}
    ids.update({f"u{k}": case_id for k, (case_id, *_) in enumerate(UTF8_NAMES)})
    return scrape_jobs(cases, ids, rounds=ROUNDS, page_times=False)


@pytest.mark.parametrize(("case_id", "body", "accepted"),
                         [pytest.param(c, body, ok, id=c) for c, _, body, _, ok in REFUSED])
def test_refused_sample_relabeled_as_prometheus_does(stored: dict[str, Stored], case_id: str, body: str,
                                                     accepted: bool) -> None:
    s = stored[case_id]
    up = [v for ls, samples in s.prometheus.items() if ls.name == "up" for _, v in samples]
    assert up, f"Prometheus did not scrape {case_id} in time"
    assert up == ["1.0" if accepted else "0.0"], (
        f"Prometheus {'refused' if accepted else 'accepted'} {body!r}: {s.prometheus_error!r}")
    diffs = differences(s)
    assert not diffs, (f"body {body!r}\nprometheus error: {s.prometheus_error!r}\n"
                       f"promlab error:    {s.promlab_error!r}\n" + "\n".join(diffs))
    # A failed page fails in both: ``up`` of the compared scrape is among the samples compared
    # (the last errors are shown only: they may come from a later scrape than the compared one).


@pytest.mark.parametrize("case_id", [c for c, *_ in UTF8_NAMES])
def test_utf8_name_from_relabeling_is_kept(stored: dict[str, Stored], case_id: str) -> None:
    """Known difference: 2.42 fails the page, promlab (as 3.x) stores the renamed series."""
    s = stored[case_id]
    up = {ls.name: [v for _, v in samples] for ls, samples in s.prometheus.items() if ls.name == "up"}
    assert up == {"up": ["0.0"]}, f"Prometheus 2.42 accepted {case_id}: does it still differ from 3.x?"
    assert "invalid metric name or label names" in s.prometheus_error
    mine = {ls.name: [v for _, v in samples] for ls, samples in s.promlab.items()}
    assert mine["up"] == ["1.0"] and mine["scrape_samples_post_metric_relabeling"] == ["2.0"], s.promlab_error
    assert set(s.promlab) - set(s.prometheus), "promlab stored no renamed series"


def test_case_ids_unique() -> None:
    ids = [c for c, *_ in REFUSED] + [c for c, *_ in UTF8_NAMES]
    assert len(set(ids)) == len(ids)
