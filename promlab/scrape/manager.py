"""The scrape manager: scrape pools per job, fed by discovery, writing to one store.

Runs entirely on the :class:`~promlab.scrape.scheduler.Scheduler`'s event loop. ``apply(config)``
is both the first start and a reload: jobs whose scrape config is unchanged keep their pools and
loops untouched; changed jobs get new loops for the same targets (same schedule phase, so no
scrape is lost, and the old loop's series carry over for staleness); removed jobs and vanished
targets get staleness markers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import hashlib
import logging
import socket
import ssl
from collections import deque
from typing import Any

import httpx

from promlab.config import Config, ScrapeConfig
from promlab.config.httpclient import build_client, ssl_context
from promlab.discovery import DiscoveryManager, providers_for
from promlab.model import Labels
from promlab.scrape.loop import Batch, ScrapeLoop, ScrapeResult
from promlab.scrape.scheduler import Scheduler
from promlab.scrape.targets import DroppedTarget, Target, build_targets
from promlab.scrape.writer import Writer
from promlab.storage.exemplars import exemplars_of
from promlab.storage.interface import Storage

__all__ = ["ScrapeManager", "ScrapePool"]

log = logging.getLogger("promlab.scrape.manager")


def jitter_seed(external_labels: Labels) -> int:
    """Per-server offset seed from the external labels and host name, like Prometheus."""
    h = hashlib.blake2b(digest_size=8)
    h.update(external_labels.hash.to_bytes(8, "little", signed=True))
    h.update(socket.gethostname().encode())
    return int.from_bytes(h.digest(), "little")


class ScrapePool:
    """The targets and loops of one job."""

    def __init__(self, cfg: ScrapeConfig, manager: ScrapeManager) -> None:
        self.cfg = cfg
        self.manager = manager
        self.loops: dict[int, ScrapeLoop] = {}
        self.dropped: list[DroppedTarget] = []
        self.verify: ssl.SSLContext | None = None
        self.client_error = ""
        try:
            self.verify = ssl_context(cfg.http)
        except (OSError, ssl.SSLError) as exc:
            self.client_error = f"unable to load TLS configuration: {exc}"
            log.error("job %s: %s", cfg.job_name, self.client_error)

    def new_client(self) -> httpx.AsyncClient | None:
        """A client for one target (one keep-alive connection), sharing the job's TLS context."""
        if self.verify is None:
            return None
        return build_client(self.cfg.http, timeout_s=self.cfg.scrape_timeout_ms / 1000, max_connections=2,
                            verify=self.verify, keepalive_s=self.keepalive_s())

    def keepalive_s(self) -> float:
        """Idle keep-alive of a target's connection: past the job's interval (and the default
        interval, which targets may set with ``__scrape_interval__``), so it is reused."""
        iv = self.cfg.scrape_interval_ms
        glob = self.manager.config.global_config.scrape_interval_ms if self.manager.config else 0
        return 2 * max(iv, glob) / 1000 + 5.0

    def sync(self, targets: list[Target], dropped: list[DroppedTarget],
             carry: dict[int, list[Labels]] | None = None) -> list[ScrapeLoop]:
        """Start loops for new targets; return the loops of targets that went away."""
        self.dropped = dropped
        limit_error = ""
        if self.cfg.target_limit and len(targets) > self.cfg.target_limit:
            limit_error = f"target_limit exceeded (number of targets: {len(targets)}, limit: {self.cfg.target_limit})"
        wanted = {t.hash: t for t in targets}
        gone = [lp for h, lp in self.loops.items() if h not in wanted]
        for lp in gone:
            del self.loops[lp.target.hash]
        for h, t in wanted.items():
            existing = self.loops.get(h)
            if existing is not None:
                existing.forced_error = limit_error or self.client_error
                continue
            lp = ScrapeLoop(t, self.cfg, client=self.new_client(), owns_client=True, commit=self.manager.commit,
                            jitter_seed=self.manager.jitter, carry_stale=carry.pop(h, None) if carry else None,
                            on_lateness=self.manager.record_lateness,
                            forced_error=limit_error or self.client_error,
                            executor=self.manager.parse_pool, on_result=self.manager.record_result)
            self.loops[h] = lp
            lp.start()
        return gone

    async def close(self, *, stale: bool) -> dict[int, list[Labels]]:
        """Stop every loop; returns each target's last series (for a replacement pool)."""
        loops, self.loops = list(self.loops.values()), {}
        lasts = await asyncio.gather(*(lp.stop(stale=stale) for lp in loops))
        return {lp.target.hash: last for lp, last in zip(loops, lasts, strict=True)}


class ScrapeManager:
    """All pools of a config. Create, ``apply`` and ``close`` from the scheduler's loop."""

    def __init__(self, storage: Storage, scheduler: Scheduler) -> None:
        self.storage = storage
        self.scheduler = scheduler
        self.config: Config | None = None
        self.pools: dict[str, ScrapePool] = {}
        self.discovery = DiscoveryManager(self._on_discovery)
        self.jitter = 0
        self.lateness: deque[float] = deque(maxlen=200_000)
        self.writer = Writer(storage, scheduler.loop)
        # Big pages are parsed and relabeled here, off the event loop (see ScrapeLoop).
        self.parse_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="promlab-scrape-parse")
        self.samples_out_of_bounds = 0
        self.exceeded_body_size_limit = 0
        self._gc_task: asyncio.Task[None] | None = None
        self._pending: set[str] = set()
        self._carry: dict[str, dict[int, list[Labels]]] = {}

    # --- wiring ----------------------------------------------------------------------------------
    def record_lateness(self, seconds: float) -> None:
        self.lateness.append(seconds)

    def record_result(self, result: ScrapeResult) -> None:
        """Count a scrape's dropped samples and size-limit failures (promlab's own metrics)."""
        self.samples_out_of_bounds += result.out_of_bounds
        if not result.ok and result.error.startswith("body size limit exceeded"):
            self.exceeded_body_size_limit += 1

    async def commit(self, batch: Batch) -> None:
        """Hand ``batch`` to the writer thread; returns once it is committed.

        Only this scrape loop waits: the event loop goes on serving the others. Batches that
        arrive close together share one commit (see :class:`~promlab.scrape.writer.Writer`).
        """
        if batch.parts:
            await asyncio.shield(self.writer.submit(batch))

    @property
    def samples_appended(self) -> int:
        return self.writer.samples_appended

    @property
    def commits(self) -> int:
        return self.writer.commits

    @property
    def commit_errors(self) -> int:
        return self.writer.commit_errors

    @property
    def commit_seconds(self) -> deque[float]:
        return self.writer.commit_seconds

    # --- config ----------------------------------------------------------------------------------
    async def apply(self, config: Config) -> None:
        """Start or reload with ``config``."""
        self.jitter = jitter_seed(config.global_config.external_labels)
        new = {sc.job_name: sc for sc in config.scrape_configs}
        # Removed and changed pools stop together: every loop is cancelled before any of them
        # waits for its queued commits, so none keeps scraping while another drains.
        removed = [job for job in self.pools if job not in new]
        changed = [job for job in self.pools if job in new and new[job] != self.pools[job].cfg]
        closing = [self.pools.pop(job).close(stale=job in removed) for job in removed + changed]
        lasts = await asyncio.gather(*closing)
        carries = dict(zip(changed, lasts[len(removed):], strict=True))
        self.config = config
        ex = exemplars_of(self.storage)
        if ex is not None:
            ex.resize(config.max_exemplars)
        sd: dict[str, tuple[Any, list[Any]]] = {}
        for job, sc in new.items():
            if job not in self.pools:
                self.pools[job] = ScrapePool(sc, self)
            key = (sc.static_configs, sc.file_sd_configs, sc.http_sd_configs)
            sd[job] = (key, providers_for(*key))
        self._carry.update(carries)
        for job in list(self._carry):
            if job not in new:
                del self._carry[job]
        self.discovery.apply(sd)
        for job in new:  # changed jobs whose discovery did not restart: re-sync now
            self._on_discovery(job)
        if self._gc_task is None:
            self._gc_task = asyncio.get_running_loop().create_task(self._freeze_new_objects())

    async def _freeze_new_objects(self, every_s: float = 5.0, min_new_series: int = 20_000) -> None:
        """Move long-lived objects (the series caches) out of the cyclic GC's reach.

        A thousand targets hold millions of small objects; a full collection over them pauses
        every thread for up to a second, which shows up as scrape lateness. After the caches
        grew, ``gc.freeze()`` parks what exists in the permanent generation (reference counting
        still frees it; only cycle detection skips it).
        """
        frozen_at = 0
        while True:
            await asyncio.sleep(every_s)
            total = sum(len(lp.cache) for pool in list(self.pools.values()) for lp in list(pool.loops.values()))
            if total - frozen_at >= min_new_series:
                gc.freeze()
                frozen_at = total

    def _on_discovery(self, job: str) -> None:
        if job in self._pending:
            return
        self._pending.add(job)
        asyncio.get_running_loop().call_soon(self._sync_job, job)

    def _sync_job(self, job: str) -> None:
        self._pending.discard(job)
        pool = self.pools.get(job)
        if pool is None:
            return
        targets, dropped = build_targets(self.discovery.groups(job), pool.cfg)
        for d in dropped:
            if d.error:
                log.warning("job %s: target %s: %s", job, dict(d.discovered_labels), d.error)
        gone = pool.sync(targets, dropped, self._carry.get(job))
        for lp in gone:
            asyncio.get_running_loop().create_task(lp.stop(stale=True))

    async def close(self) -> None:
        """Stop everything without staleness markers (a shutdown, as Prometheus does)."""
        if self._gc_task is not None:
            self._gc_task.cancel()
            self._gc_task = None
        self.discovery.stop()
        # All pools at once: closing them one by one left the later ones scraping while the
        # earlier ones waited on their queued commits (405 jobs under load took over 30 s).
        pools, self.pools = list(self.pools.values()), {}
        await asyncio.gather(*(pool.close(stale=False) for pool in pools))
        while not self.writer.idle:  # everything scraped so far gets committed
            await asyncio.sleep(0.01)
        self.writer.close()
        self.parse_pool.shutdown(wait=True)

    # --- views -----------------------------------------------------------------------------------
    def metadata(self) -> list[dict[str, str]]:
        """Distinct ``{metric, type, help, unit}`` of the targets' last pages, sorted.

        Prometheus's ``/api/v1/metadata`` view: a family exposed alike by many targets is one
        row; targets that disagree give one row each.
        """
        seen: set[tuple[str, str, str, str]] = set()
        for pool in list(self.pools.values()):
            for lp in list(pool.loops.values()):
                for md in list(lp.metadata.values()):
                    seen.add((md.name, md.type, md.help, md.unit))
        return [{"metric": m, "type": t, "help": h, "unit": u} for m, t, h, u in sorted(seen)]

    def snapshot(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for job, pool in list(self.pools.items()):
            for lp in list(pool.loops.values()):
                rows.append({
                    "scrape_pool": job, "url": lp.url, "health": lp.health,
                    "labels": lp.sample_labels.to_dict(),
                    "discovered_labels": lp.target.discovered_labels.to_dict(),
                    "last_scrape_ms": lp.last_scrape_ms, "last_scrape_duration": lp.last_duration_s,
                    "last_error": lp.last_error, "last_samples": lp.last_samples, "scrapes": lp.scrapes,
                    "scrape_interval_ms": lp.interval_ms, "scrape_timeout_ms": lp.timeout_ms,
                })
            for d in pool.dropped:
                rows.append({
                    "scrape_pool": job, "url": "", "health": "dropped", "labels": {},
                    "discovered_labels": d.discovered_labels.to_dict(), "last_scrape_ms": 0,
                    "last_scrape_duration": 0.0, "last_error": d.error, "last_samples": 0, "scrapes": 0,
                    "scrape_interval_ms": pool.cfg.scrape_interval_ms,
                    "scrape_timeout_ms": pool.cfg.scrape_timeout_ms,
                })
        return rows
