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

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import promlab.scrape as scrape
from benchmarks import realprom
from promlab.model import Labels
from promlab.storage import open_store
from tests.scrape.probe_bodies import PROBES
from tests.scrape.test_scrape_realprom_diff import (
    OM,
    TEXT,
    Case,
    Sample,
    config,
    lab_dump,
    normalise,
    page_servers,
    prom_dump,
)

pytestmark = pytest.mark.realprom

ROUNDS = 3
"""Scrapes per job; the last one is compared (the first ones fill both scrape caches)."""

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


@dataclass(frozen=True)
class Stored:
    """One job's samples at the compared scrape, as each side stored them."""

    prometheus: dict[Labels, list[Sample]]
    promlab: dict[Labels, list[Sample]]
    prometheus_error: str
    promlab_error: str


def _last_scrape(dump: dict[str, dict[Labels, list[Sample]]]) -> dict[str, dict[Labels, list[Sample]]]:
    """Per job, the samples of scrape ``ROUNDS - 1`` and those at page timestamps."""
    out: dict[str, dict[Labels, list[Sample]]] = {}
    for job, series in dump.items():
        for ls, samples in series.items():
            if ls.name == "scrape_duration_seconds":
                continue
            keep = [(p, v) for p, v in samples if p == ROUNDS - 1 or isinstance(p, tuple)]
            if keep:
                out.setdefault(job, {})[ls] = keep
    return out


@pytest.fixture(scope="module")
def stored() -> dict[str, Stored]:
    """Scrape every probe with one Prometheus and one promlab scraper (about 30 s)."""
    realprom.require_binary("prometheus")
    jobs = {f"p{k}": probe_id for k, (probe_id, _, _) in enumerate(PROBES)}
    cases = [Case(f"p{k}", [body], ctype=OM if fmt == "openmetrics" else TEXT)
             for k, (_, fmt, body) in enumerate(PROBES)]
    with tempfile.TemporaryDirectory(prefix="promlab-probes-") as tmp, page_servers(cases) as servers:
        cfg = config(servers)
        store = open_store(Path(tmp) / "store", ooo_window=0, wal_fsync=False)
        try:
            with realprom.prometheus(config=cfg) as prom:
                with scrape.start(cfg, data=store) as handle:
                    deadline = time.monotonic() + ROUNDS + 30
                    while time.monotonic() < deadline:
                        if all(s.counts.get((who, s.case.name), 0) >= ROUNDS + 1
                               for s in servers for who in ("prom", "lab")):
                            break
                        time.sleep(0.2)
                    time.sleep(1.0)  # the last compared scrapes are committed
                    ours_raw = lab_dump(store)
                    ours_err = {r.scrape_pool: r.last_error if isinstance(r.last_error, str) else ""
                                for r in handle.targets().itertuples()}
                theirs_raw = prom_dump(prom)
                active = httpx.get(prom.url + "/api/v1/targets", timeout=30).json()["data"]["activeTargets"]
                theirs_err = {t["labels"]["job"]: t["lastError"] for t in active}
        finally:
            store.close()
    theirs = _last_scrape(normalise(theirs_raw, ROUNDS))
    ours = _last_scrape(normalise(ours_raw, ROUNDS))
    return {probe_id: Stored(theirs.get(job, {}), ours.get(job, {}), theirs_err.get(job, "?"),
                             ours_err.get(job, "?"))
            for job, probe_id in jobs.items()}


def _differences(s: Stored) -> list[str]:
    return [f"{ls}\n    prometheus: {s.prometheus.get(ls)}\n    promlab:    {s.promlab.get(ls)}"
            for ls in sorted(set(s.prometheus) | set(s.promlab)) if s.prometheus.get(ls) != s.promlab.get(ls)]


def _params() -> list[Any]:
    return [pytest.param(probe_id, body, id=probe_id) for probe_id, _, body in PROBES]


@pytest.mark.parametrize(("probe_id", "body"), _params())
def test_probe_stored_as_prometheus_stores_it(stored: dict[str, Stored], probe_id: str, body: str) -> None:
    s = stored[probe_id]
    assert any(ls.name == "up" for ls in s.prometheus), f"Prometheus did not scrape {probe_id} in time"
    diffs = _differences(s)
    if probe_id in KNOWN_DIFFERENCES:
        assert diffs, f"{probe_id} no longer differs from 2.42: remove it from KNOWN_DIFFERENCES"
        return
    assert not diffs, (f"body {body[:200]!r}\nprometheus error: {s.prometheus_error!r}\n"
                       f"promlab error:    {s.promlab_error!r}\n" + "\n".join(diffs))
    assert bool(s.prometheus_error) == bool(s.promlab_error), (s.prometheus_error, s.promlab_error)


def test_known_differences_name_probes() -> None:
    ids = {probe_id for probe_id, _, _ in PROBES}
    assert len(ids) == len(PROBES), "probe ids must be unique"
    assert set(KNOWN_DIFFERENCES) <= ids, set(KNOWN_DIFFERENCES) - ids
