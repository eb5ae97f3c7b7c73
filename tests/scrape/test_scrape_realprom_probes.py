"""Grammar-edge pages scraped by a real Prometheus 2.42 and by promlab: what each one stores.

Every body of :data:`tests.scrape.probe_bodies.PROBES` (about 400 hand-made pages at the edges of
the text format and OpenMetrics) is served as a job of its own, to one Prometheus and to one
promlab scraper running the same config (the harness of test_scrape_realprom_diff.py). After
:data:`ROUNDS` scrapes the samples of the last compared scrape are read from both stores, the
report series included (``up``, ``scrape_samples_scraped``,
``scrape_samples_post_metric_relabeling``, ``scrape_series_added``; not
``scrape_duration_seconds``), plus samples at the page's own timestamps. Each body is one test
id; the stores must agree, and a failed page must fail in both (Prometheus's ``lastError`` is
shown for a difference, not compared: promlab words its errors with line numbers).

Deliberate differences are in :data:`KNOWN_DIFFERENCES` with their reason; a listed case that
stops differing fails, so the table cannot go stale.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.scrape.probe_bodies import PROBES
from tests.scrape.realprom_jobs import Stored, differences, scrape_jobs
from tests.scrape.test_scrape_realprom_diff import OM, TEXT, Case

pytestmark = pytest.mark.realprom

ROUNDS = 3
"""Scrapes per job; the last one is compared (the first ones fill both scrape caches)."""
RETRY_GROUP = 40
"""Probes per retry (of those whose first outcome was not the expected one)."""

_UTF8 = ("Prometheus 3 reads UTF-8 metric and label names in double quotes and so does promlab; "
         "2.42's lexer fails the page")
KNOWN_DIFFERENCES: dict[str, str] = {
    "text-quoted-name": _UTF8,
    "om-quoted-name": _UTF8,
    "text-quoted-name-label": _UTF8,
    "text-type-quoted": _UTF8 + " (a quoted name after TYPE)",
    "om-type-quoted": _UTF8 + " (a quoted name after TYPE)",
}
"""Probe id -> why promlab stores something else than Prometheus 2.42 for it."""


@pytest.fixture(scope="module")
def stored() -> dict[str, Stored]:
    """Scrape every probe with one Prometheus and one promlab scraper (about 30 s)."""
    cases = [Case(f"p{k}", [body], ctype=OM if fmt == "openmetrics" else TEXT)
             for k, (_, fmt, body) in enumerate(PROBES)]
    ids = {f"p{k}": probe_id for k, (probe_id, _, _) in enumerate(PROBES)}
    got = scrape_jobs(cases, ids, rounds=ROUNDS, page_times=True)
    # ~800 scrapes a second of one Python server on two cores: a scrape may miss its 900 ms
    # timeout, on either side, and the compared round then differs (its error may be gone by
    # the end), or a known difference hides behind two failed scrapes. A probe whose outcome
    # is not the expected one is scraped again on its own, with the few others: a page read
    # differently differs again and fails its test.
    again = [c for c in cases
             if bool(differences(got[ids[c.name]])) != (ids[c.name] in KNOWN_DIFFERENCES)]
    # When the machine was slow, many may be: they are scraped again in small groups, so the
    # retry is not as loaded as the first round.
    for k in range(0, len(again), RETRY_GROUP):
        part = again[k:k + RETRY_GROUP]
        got.update(scrape_jobs(part, {c.name: ids[c.name] for c in part}, rounds=ROUNDS,
                               page_times=True))
    return got


def _params() -> list[Any]:
    return [pytest.param(probe_id, body, id=probe_id) for probe_id, _, body in PROBES]


@pytest.mark.parametrize(("probe_id", "body"), _params())
def test_probe_stored_as_prometheus_stores_it(stored: dict[str, Stored], probe_id: str, body: str) -> None:
    s = stored[probe_id]
    assert any(ls.name == "up" for ls in s.prometheus), f"Prometheus did not scrape {probe_id} in time"
    diffs = differences(s)
    if probe_id in KNOWN_DIFFERENCES:
        assert diffs, f"{probe_id} no longer differs from 2.42: remove it from KNOWN_DIFFERENCES"
        return
    assert not diffs, (f"body {body[:200]!r}\nprometheus error: {s.prometheus_error!r}\n"
                       f"promlab error:    {s.promlab_error!r}\n" + "\n".join(diffs))
    # A failed page fails in both: ``up`` of the compared scrape is among the samples compared
    # (the last errors are shown only: they may come from a later scrape than the compared one).


def test_known_differences_name_probes() -> None:
    ids = {probe_id for probe_id, _, _ in PROBES}
    assert len(ids) == len(PROBES), "probe ids must be unique"
    assert set(KNOWN_DIFFERENCES) <= ids, set(KNOWN_DIFFERENCES) - ids
