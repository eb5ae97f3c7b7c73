"""One Alertmanager's notification queue and sender, as Prometheus 3.x's ``notifier.sendLoop``.

Since Prometheus 3 every Alertmanager has a queue of its own (``queue_capacity`` alerts; when it
overflows the oldest alerts are dropped) and a sender that takes batches of up to
``max_batch_size`` alerts and POSTs them to that Alertmanager alone. A slow or dead Alertmanager
(a POST waits for its ``timeout``) therefore only holds back its own queue; the others keep
receiving on time. Everything is counted per Alertmanager (``alertmanager`` label, its alerts
URL): alerts sent (only those the Alertmanager took), alerts affected by errors, alerts dropped
(queue overflow, a failed batch, a queue not drained on shutdown) and the queue's length.

A :class:`SendLoop` is driven by the :class:`~promlab.rules.notifier.Notifier`: alerts come in
from any thread (:meth:`SendLoop.add`), the sender runs as a task on the notifier's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from promlab.config.httpclient import build_client
from promlab.errors import PromlabError
from promlab.registries import PerRegistry
from promlab.rules.amtargets import AlertmanagerTarget

__all__ = ["NotifierMetrics", "Postable", "SendLoop", "notifier_metrics", "prune_notifier_metrics"]

log = logging.getLogger("promlab.notifier")


class Postable(Protocol):
    """An alert as the queue holds it (the notifier's ``NotifierAlert``)."""

    def to_json(self) -> dict[str, Any]:
        """The Alertmanager v2 ``PostableAlert``."""
        ...


class NotifierMetrics:
    """The ``prometheus_notifications_*`` metrics (Prometheus 3.x's names, help and labels)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        am, r = ["alertmanager"], registry
        self.latency = Summary("prometheus_notifications_latency_seconds",
                               "Latency quantiles for sending alert notifications.", am, registry=r)
        self.latency_histogram = Histogram(
            "prometheus_notifications_latency_histogram_seconds",
            "Latency histogram for sending alert notifications.", am,
            buckets=(0.01, 0.1, 1, 10), registry=r)
        self.errors = Counter("prometheus_notifications_errors_total",
                              "Total number of sent alerts affected by errors.", am, registry=r)
        self.sent = Counter("prometheus_notifications_sent_total",
                            "Total number of alerts sent.", am, registry=r)
        self.dropped = Counter("prometheus_notifications_dropped_total",
                               "Total number of alerts dropped due to errors when sending to "
                               "Alertmanager.", am, registry=r)
        self.queue_length = Gauge("prometheus_notifications_queue_length",
                                  "The number of alert notifications in the queue.", am, registry=r)
        self.queue_capacity = Gauge("prometheus_notifications_queue_capacity",
                                    "The capacity of the alert notifications queue.", registry=r)
        self.discovered = Gauge("prometheus_notifications_alertmanagers_discovered",
                                "The number of alertmanagers discovered and active.", registry=r)
        self._lock = threading.Lock()
        self._urls: set[str] = set()  # Alertmanagers with series
        # The notifiers on this registry; each reports the URLs it sends to (stopped: none).
        self._users: weakref.WeakSet[_User] = weakref.WeakSet()

    def init(self, url: str) -> None:
        """Show ``url``'s counters (at 0) and queue length from the start, as Prometheus."""
        with self._lock:
            self._urls.add(url)
        for m in (self.dropped, self.errors, self.sent):
            m.labels(url)
        self.queue_length.labels(url).set(0)

    def forget(self, url: str) -> None:
        """Remove ``url``'s series (its Alertmanager is gone)."""
        with self._lock:
            self._urls.discard(url)
        for m in (self.latency, self.latency_histogram, self.errors, self.sent, self.dropped,
                  self.queue_length):
            with contextlib.suppress(KeyError):
                m.remove(url)


    def attach(self, user: _User) -> None:
        """Count ``user`` (a notifier) among those whose Alertmanagers are live."""
        with self._lock:
            self._users.add(user)

    def prune(self) -> None:
        """Remove the series of Alertmanagers that no live notifier sends to (those of a
        stopped notifier, once another one starts on the registry or its rules start without
        one); with no live notifier, none are discovered."""
        with self._lock:
            users = list(self._users)
            urls = set(self._urls)
        live: set[str] = set()
        for u in users:
            live.update(u.live_urls())
        for url in urls - live:
            self.forget(url)
        if not live:
            self.discovered.set(0)


class _User(Protocol):
    """What :class:`NotifierMetrics` asks of the notifiers sharing it."""

    def live_urls(self) -> set[str]:
        """The Alertmanagers it sends (or still drains) to; none once stopped."""
        ...


def prune_notifier_metrics(registry: CollectorRegistry) -> None:
    """:meth:`NotifierMetrics.prune` on ``registry``'s metrics, if it has any."""
    got = notifier_metrics.get(registry)
    if got is not None:
        got.prune()


#: The :class:`NotifierMetrics` of a registry, registered on first use (a session's rules can
#: be stopped and started again with the same registry).
notifier_metrics: PerRegistry[NotifierMetrics] = PerRegistry(NotifierMetrics)


class SendLoop:
    """The queue of one Alertmanager and the task that empties it.

    Parameters
    ----------
    target
        The Alertmanager (alerts URL and its config entry: timeout, HTTP client settings).
    capacity, max_batch_size
        The queue's bound and the most alerts per POST.
    metrics
        Where the counts go, under ``alertmanager=<target.url>``.
    cond
        The notifier's condition: it guards the queue and is notified on every change, so that
        the notifier can wait for all its loops at once.
    on_done
        Called (from the event loop's thread) when the task ends.
    """

    def __init__(self, target: AlertmanagerTarget, *, capacity: int, max_batch_size: int,
                 metrics: NotifierMetrics, cond: threading.Condition,
                 on_done: Callable[[SendLoop], None] | None = None) -> None:
        self.target = target
        self.url = target.url
        self.capacity = max(0, int(capacity))
        self.max_batch_size = max(1, int(max_batch_size))
        self.metrics = metrics
        self._cond = cond
        self._on_done = on_done
        self._queue: deque[Postable] = deque()
        self.in_flight = 0
        self.closing = False
        self.finished = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._future: concurrent.futures.Future[None] | None = None
        metrics.init(self.url)

    def __repr__(self) -> str:
        return f"<SendLoop {self.url} queued={len(self._queue)} in_flight={self.in_flight}>"

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def started(self) -> bool:
        return self._future is not None

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being sent (read under the notifier's condition)."""
        return not self._queue and not self.in_flight

    # --- producer side (any thread) ----------------------------------------------------------------
    def add(self, alerts: Sequence[Postable]) -> None:
        """Queue ``alerts``; past the capacity the oldest queued (or given) alerts are dropped."""
        dropped = 0
        with self._cond:
            if self.closing:
                return
            if len(alerts) > self.capacity:
                dropped += len(alerts) - self.capacity
                alerts = alerts[len(alerts) - self.capacity:]
            for _ in range(max(0, len(self._queue) + len(alerts) - self.capacity)):
                self._queue.popleft()
                dropped += 1
            self._queue.extend(alerts)
            self.metrics.queue_length.labels(self.url).set(len(self._queue))
            self._cond.notify_all()
        if dropped:
            log.warning("alertmanager %s: notification queue full, dropped %d alerts", self.url,
                        dropped)
            self.metrics.dropped.labels(self.url).inc(dropped)
        self._notify()

    def close(self, *, drain: bool) -> None:
        """Take no more alerts. With ``drain`` the task still sends what is queued, then ends;
        without, the queue is dropped (and counted) and the task ends after the batch under way.
        """
        left = 0
        with self._cond:
            if self.closing:
                return
            self.closing = True
            if not drain:
                left = len(self._queue)
                self._queue.clear()
                self.metrics.queue_length.labels(self.url).set(0)
            self._cond.notify_all()
        if left:
            log.warning("alertmanager %s: notification queue not drained, dropped %d alerts",
                        self.url, left)
            self.metrics.dropped.labels(self.url).inc(left)
        self._notify()

    def abandon(self) -> int:
        """Drop (and count) what is left after the task was cancelled: the queue and the batch
        that was under way. Returns how many alerts that was."""
        with self._cond:
            left = len(self._queue) + self.in_flight
            self._queue.clear()
            self.in_flight = 0
            self.closing = True
            self._cond.notify_all()
        self.metrics.queue_length.labels(self.url).set(0)
        if left:
            log.warning("alertmanager %s: notifications not sent on shutdown, dropped %d alerts",
                        self.url, left)
            self.metrics.dropped.labels(self.url).inc(left)
        return left

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop was closed: nothing left to wake
            loop.call_soon_threadsafe(wake.set)

    # --- sender side (the event loop's thread) -----------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the sender as a task on ``loop`` (which runs in another thread). Idempotent."""
        if self._future is not None:
            return
        self._loop = loop
        self._future = asyncio.run_coroutine_threadsafe(self._run(), loop)

    def cancel(self) -> None:
        """Cancel the task (the batch under way is abandoned)."""
        if self._future is not None:
            self._future.cancel()

    def _next_batch(self) -> list[Postable]:
        n = min(self.max_batch_size, len(self._queue))
        batch = [self._queue.popleft() for _ in range(n)]
        self.in_flight = n
        self.metrics.queue_length.labels(self.url).set(len(self._queue))
        return batch

    async def _run(self) -> None:
        wake = asyncio.Event()
        with self._cond:
            self._wake = wake
        client: httpx.AsyncClient | None = None
        try:
            client = build_client(self.target.config.http,
                                  timeout_s=self.target.config.timeout_ms / 1000)
        except PromlabError as e:
            log.error("alertmanager %s: %s", self.url, e)
        try:
            while True:
                with self._cond:
                    batch = self._next_batch()
                    if not batch and self.closing:
                        return
                    if not batch:
                        wake.clear()  # under the lock: an add after this sets it again
                if not batch:
                    await wake.wait()
                    continue
                if not await self._send(client, batch):
                    self.metrics.dropped.labels(self.url).inc(len(batch))
                with self._cond:
                    self.in_flight = 0
                    self._cond.notify_all()
        finally:
            if client is not None:
                await client.aclose()
            with self._cond:
                self.finished = True
                self._cond.notify_all()
            if self._on_done is not None:
                self._on_done(self)

    async def _send(self, client: httpx.AsyncClient | None, batch: list[Postable]) -> bool:
        """POST one batch; True when the Alertmanager took it (any 2xx)."""
        cfg = self.target.config
        if cfg.api_version != "v2":  # Prometheus 3 speaks v2 only (not an error of the AM's)
            log.error("alertmanager %s: invalid Alertmanager API version %r, expected v2",
                      self.url, cfg.api_version)
            return False
        ok = False
        start = time.perf_counter()
        if client is not None:
            payload = json.dumps([a.to_json() for a in batch]).encode()
            timeout = cfg.timeout_ms / 1000
            try:
                # The timeout bounds the whole request, as Prometheus's context deadline (httpx's
                # own timeout is per read, which a server trickling bytes would never reach).
                r = await asyncio.wait_for(client.post(
                    self.url, content=payload, headers={"Content-Type": "application/json"},
                    timeout=timeout), timeout)
                ok = 200 <= r.status_code < 300
                if not ok:
                    log.error("alertmanager %s: error sending %d alerts: bad response status %s",
                              self.url, len(batch), r.status_code)
            except (httpx.HTTPError, PromlabError, OSError) as e:  # TimeoutError is an OSError
                log.error("alertmanager %s: error sending %d alerts: %s", self.url, len(batch),
                          e or type(e).__name__)
        if not ok:
            self.metrics.errors.labels(self.url).inc(len(batch))
            return False
        took = time.perf_counter() - start
        self.metrics.latency.labels(self.url).observe(took)
        self.metrics.latency_histogram.labels(self.url).observe(took)
        self.metrics.sent.labels(self.url).inc(len(batch))
        return True
