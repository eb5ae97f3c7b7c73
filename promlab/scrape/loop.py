"""One scrape loop per target: schedule, fetch, parse, attach labels, limits, staleness, append.

The loop runs on the scheduler's event loop. Scrapes start at ``offset + k * interval`` in wall
time, where the offset comes from a hash of the target (and the external labels), so targets
spread over the interval as in Prometheus and keep their phase across reloads. The sample
timestamp is the scrape start, snapped to the scheduled time when within 2 ms (Prometheus's
timestamp tolerance), which keeps timestamps regular.

A failed scrape (transport, status, parse error, a limit) writes nothing from the page, writes
staleness markers for every series of the previous scrape and reports ``up`` 0 with the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

import promlab.exposition as expo
from promlab.config import ScrapeConfig
from promlab.errors import ExpositionError, ScrapeError
from promlab.exposition.page import MetricMetadata
from promlab.model import STALE_NAN, Labels
from promlab.scrape.fetch import fetch
from promlab.scrape.series import SeriesCache, report_labels
from promlab.scrape.targets import Target

__all__ = ["Batch", "ScrapeLoop", "ScrapeResult"]

log = logging.getLogger("promlab.scrape.loop")

REPORT_NAMES = ("up", "scrape_duration_seconds", "scrape_samples_scraped",
                "scrape_samples_post_metric_relabeling", "scrape_series_added")
TIMESTAMP_TOLERANCE_MS = 2


@dataclass
class Batch:
    """Samples to append in one commit: ``(series, index, ts_ms, values)`` parts."""

    parts: list[tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=list)

    def add(self, series: list[Labels], index: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
            values: npt.NDArray[np.float64]) -> None:
        if index.shape[0]:
            self.parts.append((series, index, ts, values))

    @property
    def num_samples(self) -> int:
        return sum(int(p[1].shape[0]) for p in self.parts)


@dataclass
class ScrapeResult:
    ok: bool
    error: str
    scraped: int = 0
    post_relabel: int = 0
    added: int = 0


class ScrapeLoop:
    """Scrapes one target on its schedule and appends through ``commit(batch)``.

    Parameters
    ----------
    target, cfg
        The target and its job's scrape config.
    client
        The ``httpx.AsyncClient`` to fetch with (closed on :meth:`stop` when ``owns_client``).
    commit
        Coroutine function that appends and commits a :class:`Batch` (off the event loop).
    jitter_seed
        Mixed into the schedule offset (Prometheus uses the external labels and host name).
    carry_stale
        Series written by a previous loop for the same target (after a reload): those missing
        from the first scrape get staleness markers.
    """

    def __init__(self, target: Target, cfg: ScrapeConfig, *, client: httpx.AsyncClient | None,
                 commit: Callable[[Batch], Any], owns_client: bool = False, jitter_seed: int = 0,
                 carry_stale: list[Labels] | None = None, on_lateness: Callable[[float], None] | None = None,
                 forced_error: str = "") -> None:
        self.target = target
        self.cfg = cfg
        self.client = client
        self.owns_client = owns_client
        self._commit = commit
        self.jitter_seed = jitter_seed
        self.interval_ms = target.interval_ms
        self.timeout_ms = target.timeout_ms
        self.url = target.url
        self.forced_error = forced_error
        self.sample_labels = target.sample_labels
        self.cache = SeriesCache(cfg, self.sample_labels)
        self._parser: Any = None
        self._prev: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self._ever: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self._carry = carry_stale or []
        self._report = [report_labels(n, self.sample_labels) for n in REPORT_NAMES]
        self._report_idx = np.arange(len(REPORT_NAMES), dtype=np.int64)
        self._on_lateness = on_lateness
        self._task: asyncio.Task[None] | None = None
        # Health, read by the targets view (from any thread).
        self.health = "unknown"
        self.last_error = ""
        self.last_scrape_ms = 0
        self.last_duration_s = 0.0
        self.last_samples = 0
        self.scrapes = 0
        self.scrape_log: deque[tuple[int, int, bool]] = deque(maxlen=512)  # (scheduled_ms, ts_ms, ok)
        # HELP/TYPE/UNIT of the last good page (the parser memoises it: no copy per scrape).
        self.metadata: Mapping[str, MetricMetadata] = {}

    # --- schedule --------------------------------------------------------------------------------
    def offset_ms(self) -> int:
        return (self.target.hash ^ self.jitter_seed) % self.interval_ms

    def next_scheduled_ms(self, now_ms: int) -> int:
        """First time strictly after ``now_ms`` that is ``offset`` modulo the interval."""
        iv = self.interval_ms
        k = (now_ms - self.offset_ms()) // iv + 1
        return k * iv + self.offset_ms()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        wall_minus_mono = time.time() - loop.time()
        sched = self.next_scheduled_ms(int(time.time() * 1000))
        while True:
            await asyncio.sleep(max(0.0, sched / 1000 - wall_minus_mono - loop.time()))
            start_wall = time.time()
            late_ms = start_wall * 1000 - sched
            if self._on_lateness is not None:
                self._on_lateness(late_ms / 1000)
            ts = sched if abs(late_ms) <= TIMESTAMP_TOLERANCE_MS else int(start_wall * 1000)
            try:
                await self.scrape_once(ts, scheduled_ms=sched)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one loop must not kill it: log and go on
                log.exception("scrape of %s failed unexpectedly", self.url)
            now = int(time.time() * 1000)
            sched += self.interval_ms
            if sched <= now:  # missed slots are skipped, as a ticker drops ticks
                sched = self.next_scheduled_ms(now)

    async def stop(self, *, stale: bool) -> list[Labels]:
        """Cancel the loop; with ``stale`` write markers for the last scrape's series.

        Returns the series of the last scrape (for a replacement loop's ``carry_stale``).
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.owns_client and self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        last = self.last_series()
        if stale and (last or self.scrapes):
            ts = int(time.time() * 1000)
            batch = Batch()
            series = last + self._report
            n = len(series)
            batch.add(series, np.arange(n, dtype=np.int64), np.full(n, ts, np.int64), np.full(n, STALE_NAN))
            await self._commit(batch)
        return last

    def last_series(self) -> list[Labels]:
        sel = np.flatnonzero(self._prev)
        return [self.cache.series[i] for i in sel.tolist()] + list(self._carry)

    # --- one scrape ------------------------------------------------------------------------------
    async def scrape_once(self, ts_ms: int, *, scheduled_ms: int | None = None) -> ScrapeResult:
        """Fetch, process and append one scrape stamped ``ts_ms``."""
        t0 = time.perf_counter()
        body: bytes | None = None
        ctype: str | None = None
        error = self.forced_error
        if not error:
            try:
                if self.client is None:
                    raise ScrapeError("no HTTP client for this target")
                res = await fetch(self.client, self.url, timeout_s=self.timeout_ms / 1000,
                                  accept=expo.ACCEPT_HEADER,
                                  body_size_limit=self.cfg.body_size_limit,
                                  sni_hostname=self.cfg.http.tls_config.server_name)
                body, ctype = res.body, res.content_type
            except ScrapeError as exc:
                error = str(exc)
        duration = time.perf_counter() - t0
        batch = Batch()
        if body is not None:
            result = self.process(body, ctype, ts_ms, batch)
        else:
            result = ScrapeResult(False, error)
        if not result.ok:
            batch = Batch()
            self._append_stale_all(batch, ts_ms)
        duration = time.perf_counter() - t0
        self._append_report(batch, ts_ms, duration, result)
        await self._commit(batch)
        self.health = "up" if result.ok else "down"
        self.last_error = result.error
        self.last_scrape_ms = ts_ms
        self.last_duration_s = duration
        self.last_samples = result.post_relabel
        self.scrapes += 1
        self.scrape_log.append((scheduled_ms if scheduled_ms is not None else ts_ms, ts_ms, result.ok))
        return result

    def process(self, body: bytes, content_type: str | None, ts_ms: int, batch: Batch) -> ScrapeResult:
        """Parse a page and add its samples and staleness markers to ``batch``."""
        if self._parser is None:
            self._parser = expo.Parser()
        try:
            page = self._parser.parse(body, content_type)
        except ExpositionError as exc:
            return ScrapeResult(False, str(exc))
        self.metadata = page.metadata
        cache = self.cache
        ref_map = cache.map(page.series, page.empty_labels)
        n_out = len(cache)
        idx = ref_map[page.refs] if len(page) else np.zeros(0, np.int64)
        keep = idx >= 0
        if not keep.all():
            idx = idx[keep]
            values = page.values[keep]
            page_ts = page.timestamps_ms[keep]
        else:
            values, page_ts = page.values, page.timestamps_ms
        scraped, post = len(page), int(idx.shape[0])
        if self.cfg.sample_limit and post > self.cfg.sample_limit:
            return ScrapeResult(False, "sample limit exceeded", scraped, post)
        if cache.errors and post and cache.bad[idx].any():
            first = int(idx[np.argmax(cache.bad[idx])])
            return ScrapeResult(False, cache.errors[first], scraped, post)
        if post > 1:
            counts = np.bincount(idx, minlength=n_out)
            if counts.max() > 1:  # duplicate series in one page: the first sample wins
                _, first_pos = np.unique(idx, return_index=True)
                sel = np.sort(first_pos)
                idx, values, page_ts = idx[sel], values[sel], page_ts[sel]
        expo_no_ts = np.iinfo(np.int64).min
        explicit = page_ts != expo_no_ts
        if self.cfg.honor_timestamps and explicit.any():
            ts = np.where(explicit, page_ts, ts_ms)
            tracked = idx[~explicit]
        else:
            ts = np.full(idx.shape[0], ts_ms, np.int64)
            tracked = idx
        present = np.zeros(n_out, bool)
        present[tracked] = True
        prev = self._grow(self._prev, n_out)
        ever = self._grow(self._ever, n_out)
        added = int(np.count_nonzero(present & ~ever))
        batch.add(cache.series, idx, ts, values)
        stale = np.flatnonzero(prev & ~present)
        if stale.shape[0]:
            batch.add(cache.series, stale, np.full(stale.shape[0], ts_ms, np.int64),
                      np.full(stale.shape[0], STALE_NAN))
        if self._carry:
            seen = {cache.series[i] for i in tracked.tolist()} if self._carry else set()
            gone = [ls for ls in self._carry if ls not in seen]
            if gone:
                batch.add(gone, np.arange(len(gone), dtype=np.int64), np.full(len(gone), ts_ms, np.int64),
                          np.full(len(gone), STALE_NAN))
            self._carry = []
        self._prev = present
        self._ever = ever | present
        if len(cache.series) > 2 * post + 5_000:
            self._reset_cache()
        return ScrapeResult(True, "", scraped, post, added)

    def _reset_cache(self) -> None:
        """Forget the parser's and the cache's series when they hold far more than a page (a
        target whose series churn); the current series carry over for staleness."""
        self._carry = self.last_series()
        self._parser = None
        self.cache = SeriesCache(self.cfg, self.sample_labels)
        self._prev = np.zeros(0, bool)
        self._ever = np.zeros(0, bool)

    @staticmethod
    def _grow(a: npt.NDArray[np.bool_], n: int) -> npt.NDArray[np.bool_]:
        if a.shape[0] >= n:
            return a[:n]
        out = np.zeros(n, bool)
        out[: a.shape[0]] = a
        return out

    def _append_stale_all(self, batch: Batch, ts_ms: int) -> None:
        last = self.last_series()
        if last:
            n = len(last)
            batch.add(last, np.arange(n, dtype=np.int64), np.full(n, ts_ms, np.int64), np.full(n, STALE_NAN))
        self._prev = np.zeros(0, bool)
        self._carry = []

    def _append_report(self, batch: Batch, ts_ms: int, duration: float, r: ScrapeResult) -> None:
        up = 1.0 if r.ok else 0.0
        scraped = float(r.scraped)
        vals = np.array([up, duration, scraped, float(r.post_relabel) if r.ok else 0.0,
                         float(r.added) if r.ok else 0.0], np.float64)
        if not math.isfinite(duration):
            vals[1] = 0.0
        batch.add(self._report, self._report_idx, np.full(len(self._report), ts_ms, np.int64), vals)
