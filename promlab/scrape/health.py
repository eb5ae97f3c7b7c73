"""The targets view: one row per active or dropped target, as a DataFrame."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["COLUMNS", "targets_frame"]

COLUMNS = [
    "scrape_pool", "url", "health", "labels", "discovered_labels", "last_scrape",
    "last_scrape_duration", "last_error", "last_samples", "scrapes", "scrape_interval", "scrape_timeout",
]


def targets_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows from :meth:`ScrapeManager.snapshot` as a frame.

    ``health`` is ``up``, ``down``, ``unknown`` (not scraped yet) or ``dropped`` (relabeling
    dropped it; ``discovered_labels`` shows what it was). ``labels`` and ``discovered_labels``
    hold dicts (labels after and before relabeling); ``last_scrape`` is a UTC timestamp (NaT
    before the first scrape); durations are seconds.
    """
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    df = pd.DataFrame(rows)
    ms = df.pop("last_scrape_ms").astype("int64")
    df["last_scrape"] = pd.to_datetime(ms.where(ms > 0), unit="ms", utc=True)
    df["scrape_interval"] = df.pop("scrape_interval_ms") / 1000.0
    df["scrape_timeout"] = df.pop("scrape_timeout_ms") / 1000.0
    df = df[COLUMNS]
    return df.sort_values(["scrape_pool", "health", "url"], kind="stable").reset_index(drop=True)
