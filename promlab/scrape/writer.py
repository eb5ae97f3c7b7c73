"""The store writer: one dedicated thread that appends and commits what the scrape loops hand it.

Scrape loops run on the event loop and must never wait for the store there. A loop hands its
:class:`~promlab.scrape.loop.Batch` (columns: series list, index, timestamps, values) to
:meth:`Writer.submit` and awaits a future that the writer resolves once the batch is committed;
meanwhile the event loop serves every other target. The writer sleeps until a batch arrives, then
lingers a few milliseconds so that the batches of nearby scrapes share one commit (one WAL write
and fsync per cycle, not per scrape), commits them and resolves their futures with a single
call into the event loop.

The queue is fair: batches below ``big_samples`` (most targets) are committed before big ones,
and a big batch (a 200k-series page) gets a commit of its own, after which the small batches that
arrived meanwhile go first again. So a healthy target never waits for a neighbour's huge commit
to finish before its own scrape is acknowledged and it can start the next one.

The queue is bounded by construction: a loop has at most one batch in flight (it awaits its
commit before it scrapes again), so at most one batch per target is queued. A commit slower than
the scrape interval makes loops skip slots rather than pile up memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from typing import Any

from promlab.scrape.gcpause import paused_gc
from promlab.storage.exemplars import exemplars_of
from promlab.storage.interface import Storage

__all__ = ["Writer"]

log = logging.getLogger("promlab.scrape.writer")


class Writer:
    """Commits batches to ``storage`` on its own thread.

    Parameters
    ----------
    storage
        Where to append.
    loop
        The event loop whose futures :meth:`submit` returns.
    linger_s
        How long the writer waits after the first batch of a cycle for more to join it.
    big_samples
        Batches of at least this many samples are committed alone, after the small ones.
    """

    def __init__(self, storage: Storage, loop: asyncio.AbstractEventLoop, *, linger_s: float = 0.02,
                 name: str = "promlab-scrape-writer", big_samples: int = 20_000) -> None:
        self.storage = storage
        self.loop = loop
        self.linger_s = linger_s
        self.big_samples = big_samples
        self.samples_appended = 0
        self.commits = 0
        self.commit_errors = 0
        self.commit_seconds: deque[float] = deque(maxlen=10_000)
        self._queue: deque[tuple[Any, asyncio.Future[None]]] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._busy = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    # --- event-loop side -------------------------------------------------------------------------
    def submit(self, batch: Any) -> asyncio.Future[None]:
        """Queue ``batch`` (call on the event loop); the future is done once it is committed."""
        fut: asyncio.Future[None] = self.loop.create_future()
        if self._closing:
            fut.set_result(None)
            return fut
        self._queue.append((batch, fut))
        self._wake.set()
        return fut

    @property
    def idle(self) -> bool:
        return not self._queue and not self._busy

    # --- writer thread -----------------------------------------------------------------------------
    def _main(self) -> None:
        while True:
            self._wake.wait()
            if not self._queue and self._closing:
                return
            if self.linger_s and not self._closing:
                time.sleep(self.linger_s)
            self._busy = True
            self._wake.clear()
            big: deque[tuple[Any, asyncio.Future[None]]] = deque()
            while True:
                small: list[tuple[Any, asyncio.Future[None]]] = []
                while self._queue:
                    item = self._queue.popleft()
                    (big if _size(item[0]) >= self.big_samples else small).append(item)
                items = small or ([big.popleft()] if big else [])
                if not items:
                    break
                self._commit([b for b, _ in items])
                if not big and not self._queue:
                    self._busy = False  # before the futures resolve: a waiter then sees the writer idle
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                    self.loop.call_soon_threadsafe(_resolve, [f for _, f in items])
            self._busy = False
            if self._closing and not self._queue:
                return

    def _commit(self, batches: list[Any]) -> None:
        t0 = time.perf_counter()
        try:
            if any(_size(b) >= self.big_samples for b in batches):
                # A big target's batch may create 200k series in the store: GC paused, and the
                # new objects frozen rather than walked (see scrape.gcpause).
                with paused_gc() as gcf:
                    stats = self._append_commit(batches)
                    gcf.freeze = getattr(stats, "new_series", 0) >= self.big_samples
            else:
                stats = self._append_commit(batches)
            self.samples_appended += stats.appended if stats is not None else sum(b.num_samples for b in batches)
            self.commits += 1
        except Exception:  # keep scraping; the store reports its own state
            self.commit_errors += 1
            log.exception("append/commit failed")
        self.commit_seconds.append(time.perf_counter() - t0)

    def _append_commit(self, batches: list[Any]) -> Any:
        app = self.storage.appender()
        for batch in batches:
            for series, index, ts, values in batch.parts:
                app.append_batch(series, index, ts, values)
            for series, index, ts, hists in getattr(batch, "histograms", ()):
                app.append_histogram_batch(series, index, ts, hists)
        stats = app.commit()
        exemplars = [e for b in batches for e in getattr(b, "exemplars", ())]
        if exemplars:
            store = exemplars_of(self.storage)
            if store is not None:
                store.append_many(exemplars)
        return stats

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued and stop the thread (call from any thread but the writer)."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)


def _size(batch: Any) -> int:
    n = getattr(batch, "num_samples", 0)
    return int(n)


def _resolve(futs: list[asyncio.Future[None]]) -> None:
    for f in futs:
        if not f.done():
            f.set_result(None)
