"""Pages served as jobs of their own to one real Prometheus and one promlab scraper, and what
each side stored at the compared scrape (the harness of test_scrape_realprom_probes.py and
test_scrape_realprom_refused.py, built on test_scrape_realprom_diff.py's servers and dumps)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import realprom
from promlab.model import Labels
from tests.scrape.test_scrape_realprom_diff import Case, Sample, normalise, scrape_both

__all__ = ["Stored", "differences", "scrape_jobs"]


@dataclass(frozen=True)
class Stored:
    """One job's samples at the compared scrape, as each side stored them."""

    prometheus: dict[Labels, list[Sample]]
    promlab: dict[Labels, list[Sample]]
    prometheus_error: str
    promlab_error: str


def _last_scrape(dump: dict[str, dict[Labels, list[Sample]]], rounds: int, page_times: bool,
                 ) -> dict[str, dict[Labels, list[Sample]]]:
    """Per job, the samples of scrape ``rounds - 1`` (and, with ``page_times``, those at the
    page's own timestamps), ``scrape_duration_seconds`` left out."""
    out: dict[str, dict[Labels, list[Sample]]] = {}
    for job, series in dump.items():
        for ls, samples in series.items():
            if ls.name == "scrape_duration_seconds":
                continue
            keep = [(p, v) for p, v in samples
                    if p == rounds - 1 or (page_times and isinstance(p, tuple))]
            if keep:
                out.setdefault(job, {})[ls] = keep
    return out


def scrape_jobs(cases: list[Case], ids: dict[str, str], *, rounds: int, page_times: bool,
                ) -> dict[str, Stored]:
    """Scrape every case (a job named by its ``Case.name``) with one Prometheus and one promlab
    scraper running the same config, ``rounds`` times at least; per id of ``ids`` (job name ->
    id) what each side stored at the last compared scrape and its last error."""
    realprom.require_binary("prometheus")
    with tempfile.TemporaryDirectory(prefix="promlab-jobs-") as tmp:
        theirs_raw, ours_raw, theirs_err, ours_err = scrape_both(cases, rounds, Path(tmp), slack=30)
    theirs = _last_scrape(normalise(theirs_raw, rounds), rounds, page_times)
    ours = _last_scrape(normalise(ours_raw, rounds), rounds, page_times)
    return {key: Stored(theirs.get(job, {}), ours.get(job, {}), theirs_err.get(job, "?"),
                        ours_err.get(job, "?"))
            for job, key in ids.items()}


def differences(s: Stored) -> list[str]:
    """The label sets whose samples differ between the two sides, each with both."""
    return [f"{ls}\n    prometheus: {s.prometheus.get(ls)}\n    promlab:    {s.promlab.get(ls)}"
            for ls in sorted(set(s.prometheus) | set(s.promlab))
            if s.prometheus.get(ls) != s.promlab.get(ls)]
