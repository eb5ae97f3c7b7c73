"""One scrape loop per target: schedule, fetch, parse, attach labels, limits, staleness, append.

The loop runs on the scheduler's event loop. Scrapes start at ``offset + k * interval`` in wall
time, where the offset comes from a hash of the target (and the external labels), so targets
spread over the interval as in Prometheus and keep their phase across reloads. The sample
timestamp is the scrape start, snapped to the scheduled time when within 2 ms (Prometheus's
timestamp tolerance), which keeps timestamps regular.

A failed scrape (transport, status, parse error, a limit) writes nothing from the page, writes
staleness markers for every series of the previous scrape and reports ``up`` 0 with the error.

Isolation (issue 15): a body is read up to ``body_size_limit``, or :data:`DEFAULT_BODY_SIZE_LIMIT`
when the config sets none (Prometheus has no default; an endless body would otherwise grow the
process without bound), and exceeding it is a failed scrape ("body size limit exceeded ...").
Bodies of :data:`OFFLOAD_BYTES` or more are parsed and relabeled on the manager's worker threads,
not on the event loop, so a 50 MB page does not delay the other targets' scrape starts. A sample
whose own timestamp lies more than :data:`MAX_FUTURE_MS` after the scrape or more than
:data:`MAX_PAST_MS` before it is dropped as out of bounds (Prometheus: the scrape's
``timeLimitAppender`` and the head's minimum valid time); the scrape stays up, the drops are
counted (:attr:`ScrapeResult.out_of_bounds`, ``prometheus_target_scrapes_sample_out_of_bounds``)
and logged, and nothing far from now reaches the store to stretch its head.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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

from promlab.config import ScrapeConfig
from promlab.errors import ExpositionError, ScrapeError
from promlab.exposition.page import MetricMetadata
from promlab.model import STALE_NAN, Labels
from promlab.model.time import format_size
from promlab.scrape.fetch import fetch
from promlab.scrape.gcpause import paused_gc
from promlab.scrape.native import HistogramPart, accept_header, parser_for, take_histograms
from promlab.scrape.series import SeriesCache, report_labels
from promlab.scrape.targets import Target

__all__ = ["Batch", "ScrapeLoop", "ScrapeResult"]

log = logging.getLogger("promlab.scrape.loop")

REPORT_NAMES = ("up", "scrape_duration_seconds", "scrape_samples_scraped",
                "scrape_samples_post_metric_relabeling", "scrape_series_added")
TIMESTAMP_TOLERANCE_MS = 2
DEFAULT_BODY_SIZE_LIMIT = 256 << 20
"""Body size limit when the scrape config sets none (``body_size_limit: 0``): 256 MiB, five
times a 200k-series page; set ``body_size_limit`` higher for bigger targets."""
OFFLOAD_BYTES = 64 << 10
FREEZE_NEW_SERIES = 20_000
"""New series in one offloaded page past which its objects are frozen (scrape.gcpause)."""
MAX_FUTURE_MS = 10 * 60_000
"""How far after the scrape a sample's own timestamp may be (Prometheus: 10 minutes)."""
MAX_PAST_MS = 60 * 60_000
"""How far before the scrape it may be (Prometheus's head: half the 2 h block range)."""
MAX_PENDING_COMMITS = 3
"""Commits a running loop may have queued before it waits for the oldest (bounds memory)."""


@dataclass
class Batch:
    """Samples to append in one commit: ``(series, index, ts_ms, values)`` parts."""

    parts: list[tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(
        default_factory=list)
    #: Native histogram samples, ``(series, index, ts_ms, histograms)`` parts (see scrape.native).
    histograms: list[HistogramPart] = field(default_factory=list)
    #: Exemplars, ``(series, exemplar labels, value, ts_ms, has_timestamp)`` (the writer stores
    #: them after the samples; see promlab.storage.exemplars).
    exemplars: list[tuple[Labels, Labels, float, int, bool]] = field(default_factory=list)

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
    out_of_bounds: int = 0


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
    executor
        Where bodies of :data:`OFFLOAD_BYTES` or more are processed (``None``: on the event loop).
    on_result
        Called with each scrape's :class:`ScrapeResult` (the manager's counters).
    """

    def __init__(self, target: Target, cfg: ScrapeConfig, *, client: httpx.AsyncClient | None,
                 commit: Callable[[Batch], Any], owns_client: bool = False, jitter_seed: int = 0,
                 carry_stale: list[Labels] | None = None, on_lateness: Callable[[float], None] | None = None,
                 forced_error: str = "", executor: concurrent.futures.Executor | None = None,
                 on_result: Callable[[ScrapeResult], None] | None = None) -> None:
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
        # Parser refs Prometheus's scrape cache would hold (for scrape_series_added).
        self._cached: npt.NDArray[np.bool_] = np.zeros(0, bool)
        self._carry = carry_stale or []
        self._report = [report_labels(n, self.sample_labels) for n in REPORT_NAMES]
        self._report_idx = np.arange(len(REPORT_NAMES), dtype=np.int64)
        self._on_lateness = on_lateness
        self._executor = executor
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._on_result = on_result
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
                await self.scrape_once(ts, scheduled_ms=sched, wait_commit=False)
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
        for fut in list(self._pending):  # scrapes already done still get committed
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fut
        self._pending.clear()
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
    async def scrape_once(self, ts_ms: int, *, scheduled_ms: int | None = None,
                          wait_commit: bool = True) -> ScrapeResult:
        """Fetch, process and append one scrape stamped ``ts_ms``.

        With ``wait_commit=False`` (the running loop) it returns once the batch is queued: a
        commit stuck behind a neighbour's huge one does not delay the next scrape's start. Up to
        :data:`MAX_PENDING_COMMITS` may be queued; batches are committed in order.
        """
        t0 = time.perf_counter()
        body: bytes | None = None
        ctype: str | None = None
        error = self.forced_error
        if not error:
            try:
                if self.client is None:
                    raise ScrapeError("no HTTP client for this target")
                res = await fetch(self.client, self.url, timeout_s=self.timeout_ms / 1000,
                                  accept=accept_header(self.cfg),
                                  body_size_limit=self.cfg.body_size_limit or DEFAULT_BODY_SIZE_LIMIT,
                                  sni_hostname=self.cfg.http.tls_config.server_name)
                body, ctype = res.body, res.content_type
            except ScrapeError as exc:
                error = str(exc)
                if error == "body size limit exceeded" and not self.cfg.body_size_limit:
                    error += (f" (promlab's default limit, {format_size(DEFAULT_BODY_SIZE_LIMIT)}: "
                              "set body_size_limit in the scrape config to raise it)")
        duration = time.perf_counter() - t0
        batch = Batch()
        if body is not None and self._executor is not None and len(body) >= OFFLOAD_BYTES:
            result = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._process_big, body, ctype, ts_ms, batch)
        elif body is not None:
            result = self.process(body, ctype, ts_ms, batch)
        else:
            result = ScrapeResult(False, error)
        if body is None:
            self._append_stale_all(batch, ts_ms)
        duration = time.perf_counter() - t0
        self._append_report(batch, ts_ms, duration, result)
        while self._pending and (self._pending[0].done() or len(self._pending) >= MAX_PENDING_COMMITS):
            await self._pending.popleft()
        fut = asyncio.ensure_future(self._commit(batch))
        self._pending.append(fut)
        if wait_commit:
            while self._pending:
                await self._pending.popleft()
        self.health = "up" if result.ok else "down"
        self.last_error = result.error
        self.last_scrape_ms = ts_ms
        self.last_duration_s = duration
        self.last_samples = result.post_relabel
        self.scrapes += 1
        self.scrape_log.append((scheduled_ms if scheduled_ms is not None else ts_ms, ts_ms, result.ok))
        if self._on_result is not None:
            self._on_result(result)
        return result

    def _process_big(self, body: bytes, content_type: str | None, ts_ms: int, batch: Batch) -> ScrapeResult:
        """:meth:`process` on a worker thread, the cyclic GC paused (see scrape.gcpause): a first
        scrape's new series are frozen rather than walked by collections that stall the loop."""
        with paused_gc() as gcf:
            n0 = len(self.cache)
            result = self.process(body, content_type, ts_ms, batch)
            gcf.freeze = len(self.cache) - n0 >= FREEZE_NEW_SERIES
        return result

    def process(self, body: bytes, content_type: str | None, ts_ms: int, batch: Batch) -> ScrapeResult:
        """Parse a page and add its samples and staleness markers to ``batch``.

        A page that fails (a parse error, a label limit, a missing name, ``sample_limit``) adds
        nothing of its own, but as in Prometheus its series appended before the failure count
        as present for staleness: only the previous scrape's other series get markers, and the
        report carries the counts up to the failure.
        """
        parser, switched = parser_for(self._parser, content_type, self.cfg)
        if switched:  # the target changed formats: refs of the old parser do not carry over
            self._reset_cache()
        self._parser = parser
        try:
            page = self._parser.parse(body, content_type)
        except ExpositionError as exc:
            # Prometheus counts a sample it read and refused (a repeated label name, say) as
            # scraped before it fails the page. The text parser keeps such samples for the
            # series cache to judge after relabeling (scrape.series); a parser that does not
            # (the NHCB one) raises, and then no relabeling can save the page.
            refused = int(exc.read_as_sample)
            head = self._page_before(body, content_type, exc)
            if head is None:
                self._append_stale_all(batch, ts_ms)
                return ScrapeResult(False, str(exc), refused)
            r = self._admit(head, ts_ms, batch, failed=str(exc))
            return ScrapeResult(False, str(exc), r.scraped + refused, r.post_relabel, r.added)
        self.metadata = page.metadata
        return self._admit(page, ts_ms, batch)

    def _page_before(self, body: bytes, content_type: str | None, exc: ExpositionError) -> Any:
        """The lines of a text page before its parse error, parsed (Prometheus's streaming parser
        appends them before it stops); None when that is not possible. An OpenMetrics page that
        fails on its last line may lack only its ``# EOF``: then all its lines count."""
        ends = body.endswith(b"\n")
        if exc.lineno == body.count(b"\n") + (not ends) and not exc.read_as_sample:
            with contextlib.suppress(ExpositionError, ValueError):
                return self._parser.parse(body + (b"# EOF\n" if ends else b"\n# EOF\n"), content_type)
        if exc.lineno <= 1:
            return None
        head = b"\n".join(body.split(b"\n", exc.lineno - 1)[: exc.lineno - 1]) + b"\n"
        for text in (head, head + b"# EOF\n"):  # an OpenMetrics head needs its end marker
            with contextlib.suppress(ExpositionError, ValueError):
                return self._parser.parse(text, content_type)
        return None

    def _admit(self, page: Any, ts_ms: int, batch: Batch, failed: str = "") -> ScrapeResult:
        """Append ``page`` (Prometheus's ``scrapeLoop.append``) or, when it fails, only update
        staleness. ``failed`` is an error that fails the page anyway (its parse error)."""
        cache = self.cache
        ref_map = cache.map(page.series, page.empty_labels, page.refused)
        n_out = len(cache)
        n = len(page)
        refs = page.refs.astype(np.int64)
        full = ref_map[refs] if n else np.zeros(0, np.int64)
        error, end = failed, n
        if cache.errors and n:
            bad = cache.bad[np.maximum(full, 0)] & (full >= 0)
            if bad.any():  # Prometheus stops at the first series that fails validation (it
                # comes before ``failed``'s line: a failed page's head is the lines before it)
                end = int(np.argmax(bad))
                error = cache.errors[int(full[end])]
        scraped = end + 1 if end < n else n
        pos = np.flatnonzero(full[:end] >= 0)
        post = int(pos.shape[0])
        idx, prefs = full[pos], refs[pos]
        values, page_ts = page.values[pos], page.timestamps_ms[pos]
        explicit = (page_ts != np.iinfo(np.int64).min) if self.cfg.honor_timestamps else np.zeros(post, bool)
        # A series text repeated without a timestamp is not appended again; the rest count
        # against sample_limit, in page order.
        first = np.zeros(post, bool)
        if post:
            first[np.unique(prefs, return_index=True)[1]] = True
        appends = first | explicit
        order = np.cumsum(appends)
        limit = self.cfg.sample_limit
        ok = appends & (order <= limit) if limit else appends
        if limit and int(order[-1] if post else 0) > limit:
            error = error or "sample limit exceeded"
        n_refs = len(page.series)
        cached = self._grow(self._cached, n_refs)
        new = ok & first & ~cached[prefs]
        before_limit = (order <= limit) if limit else np.ones(post, bool)
        added = int(np.count_nonzero(new & before_limit))
        cached[prefs[new]] = True
        present = np.zeros(n_out, bool)
        present[idx[ok & ~explicit]] = True
        prev = self._grow(self._prev, n_out)
        if error:
            self._cached = cached
            self._append_stale(batch, ts_ms, prev, present)
            return ScrapeResult(False, error, scraped, post, added)
        in_page = np.zeros(n_refs, bool)
        in_page[prefs] = True
        self._cached = cached & in_page
        if post > 1 and np.bincount(idx, minlength=n_out).max() > 1:
            # The same series twice in one page (or two texts relabeled alike) at one time: the
            # first wins. Explicit timestamps that differ are samples of their own (appended in
            # page order, so the store's order rules apply to them as in Prometheus).
            eff = np.where(explicit, page_ts, ts_ms)
            pairs = np.stack([idx, eff], axis=1)
            sel = np.sort(np.unique(pairs, axis=0, return_index=True)[1])
            idx, values, page_ts, explicit = idx[sel], values[sel], page_ts[sel], explicit[sel]
        oob = 0
        if explicit.any():
            ts = np.where(explicit, page_ts, ts_ms)
            bad = (ts > ts_ms + MAX_FUTURE_MS) | (ts < ts_ms - MAX_PAST_MS)
            if bad.any():
                oob = int(bad.sum())
                log.warning("%s: %d samples dropped: too old or too far into the future (first: %s at %d)",
                            self.url, oob, cache.series[int(idx[np.argmax(bad)])], int(ts[np.argmax(bad)]))
                idx, values, ts = idx[~bad], values[~bad], ts[~bad]
        else:
            ts = np.full(idx.shape[0], ts_ms, np.int64)
        if page.exemplars:
            self._exemplars(page, cache.ref_map, ts_ms, batch)
        idx, ts, values = take_histograms(page, cache.ref_map, cache.series, idx, ts, values, batch.histograms)
        batch.add(cache.series, idx, ts, values)
        self._append_stale(batch, ts_ms, prev, present)
        if len(cache.series) > 2 * post + 5_000:
            self._reset_cache()
        return ScrapeResult(True, "", scraped, post, added, oob)

    def _append_stale(self, batch: Batch, ts_ms: int, prev: npt.NDArray[np.bool_],
                      present: npt.NDArray[np.bool_]) -> None:
        """Markers for the previous scrape's series not in ``present``; ``present`` becomes the
        previous scrape's."""
        cache = self.cache
        stale = np.flatnonzero(prev & ~present)
        if stale.shape[0]:
            batch.add(cache.series, stale, np.full(stale.shape[0], ts_ms, np.int64),
                      np.full(stale.shape[0], STALE_NAN))
        if self._carry:
            seen = {cache.series[i] for i in np.flatnonzero(present).tolist()}
            gone = [ls for ls in self._carry if ls not in seen]
            if gone:
                batch.add(gone, np.arange(len(gone), dtype=np.int64), np.full(len(gone), ts_ms, np.int64),
                          np.full(len(gone), STALE_NAN))
            self._carry = []
        self._prev = present

    def _exemplars(self, page: Any, ref_map: npt.NDArray[np.int64], ts_ms: int, batch: Batch) -> None:
        """The page's exemplars with their series' final labels; an exemplar without a
        timestamp gets the scrape's (as in Prometheus); those of series dropped by relabeling go."""
        series = self.cache.series
        for ex in page.exemplars:
            final = int(ref_map[int(page.refs[ex.index])])
            if final >= 0:
                has_ts = ex.timestamp_ms is not None
                batch.exemplars.append((series[final], ex.labels, ex.value,
                                        ex.timestamp_ms if has_ts else ts_ms, has_ts))

    def _reset_cache(self) -> None:
        """Forget the parser's and the cache's series when they hold far more than a page (a
        target whose series churn); the current series carry over for staleness."""
        self._carry = self.last_series()
        self._parser = None
        self.cache = SeriesCache(self.cfg, self.sample_labels)
        self._prev = np.zeros(0, bool)
        self._cached = np.zeros(0, bool)

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
        vals = np.array([up, duration, scraped, float(r.post_relabel), float(r.added)], np.float64)
        if not math.isfinite(duration):
            vals[1] = 0.0
        batch.add(self._report, self._report_idx, np.full(len(self._report), ts_ms, np.int64), vals)
