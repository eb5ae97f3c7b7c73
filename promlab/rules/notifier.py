"""Sending alerts to Alertmanager (its v2 API), off the evaluation thread.

As Prometheus's ``notifier.Manager``: :meth:`Notifier.send` adds the external labels an alert
lacks, applies ``alert_relabel_configs`` (a dropped alert is not sent), and puts the alerts on a
bounded queue (when it overflows the oldest alerts are dropped and counted); a sender thread
takes batches of up to ``max_batch_size`` and POSTs each batch as one JSON list to every
Alertmanager at once (``{scheme}://{address}{path_prefix}/api/v2/alerts``, with the
Alertmanager's ``timeout``, basic auth or authorization, TLS). A batch that no Alertmanager took
is dropped and counted. Nothing here blocks or raises into the caller.

Alertmanagers come from ``static_configs``, ``file_sd_configs`` and ``http_sd_configs``
(their targets relabelled by the Alertmanager's ``relabel_configs`` with ``__address__``,
``__scheme__`` and ``__alerts_path__``, as Prometheus does; see :mod:`promlab.rules.amtargets`).

Metrics, Prometheus's names: ``prometheus_notifications_sent_total{alertmanager}``,
``prometheus_notifications_errors_total{alertmanager}``,
``prometheus_notifications_latency_seconds{alertmanager}``,
``prometheus_notifications_dropped_total``, ``prometheus_notifications_queue_length``,
``prometheus_notifications_queue_capacity``, ``prometheus_notifications_alertmanagers_discovered``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Summary

from promlab.config import AlertingConfig
from promlab.config.httpclient import build_client
from promlab.config.relabel import process
from promlab.errors import PromlabError
from promlab.model import Labels
from promlab.rules.alerting import Alert
from promlab.rules.amtargets import (
    AlertmanagerDiscovery,
    AlertmanagerTarget,
    alertmanager_targets,
    needs_discovery,
)

__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "DEFAULT_QUEUE_CAPACITY",
    "AlertmanagerTarget",
    "Notifier",
    "NotifierAlert",
    "alertmanager_targets",
    "format_rfc3339_ms",
    "generator_url",
    "to_notifier_alerts",
]

log = logging.getLogger("promlab.notifier")

DEFAULT_QUEUE_CAPACITY = 10_000  # --alertmanager.notification-queue-capacity
DEFAULT_MAX_BATCH_SIZE = 256  # --alertmanager.notification-batch-size (3.x; 2.42 sent 64)


def format_rfc3339_ms(ms: int) -> str:
    """``2024-01-15T10:00:00.000Z``: the alert times' JSON form (Go's RFC 3339 with millis)."""
    dt = datetime.fromtimestamp(ms // 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def generator_url(external_url: str, expr: str) -> str:
    """The link back to the expression's table view, as Prometheus builds it."""
    return f"{external_url}/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1"


@dataclass(frozen=True, slots=True)
class NotifierAlert:
    """One alert as Alertmanager receives it (times in ms; ``ends_at_ms`` None: not set)."""

    labels: Labels
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at_ms: int = 0
    ends_at_ms: int | None = None
    generator_url: str = ""

    def to_json(self) -> dict[str, Any]:
        """The Alertmanager v2 ``PostableAlert``: no ``annotations`` when there are none and no
        ``generatorURL`` when empty (Prometheus's ``omitempty``)."""
        out: dict[str, Any] = {"labels": self.labels.to_dict()}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        out["startsAt"] = format_rfc3339_ms(self.starts_at_ms)
        if self.ends_at_ms is not None:
            out["endsAt"] = format_rfc3339_ms(self.ends_at_ms)
        if self.generator_url:
            out["generatorURL"] = self.generator_url
        return out


def to_notifier_alerts(expr: str, alerts: Sequence[Alert], external_url: str) -> list[NotifierAlert]:
    """Rule alerts as notifications: ``startsAt`` the firing time, ``endsAt`` the resolution
    time of a resolved alert, else its ``valid_until`` (set by the group when sending)."""
    url = generator_url(external_url, expr)
    out = []
    for a in alerts:
        ends = a.resolved_at_ms if a.resolved_at_ms is not None else a.valid_until_ms
        starts = a.fired_at_ms if a.fired_at_ms is not None else a.active_at_ms
        out.append(NotifierAlert(a.labels, dict(a.annotations), starts, ends, url))
    return out


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        am = ["alertmanager"]
        self.latency = Summary("prometheus_notifications_latency_seconds",
                               "Latency quantiles for sending alert notifications.", am,
                               registry=registry)
        self.errors = Counter("prometheus_notifications_errors_total",
                              "Total number of sent alerts affected by errors.", am,
                              registry=registry)
        self.sent = Counter("prometheus_notifications_sent_total",
                            "Total number of alerts sent.", am, registry=registry)
        self.dropped = Counter("prometheus_notifications_dropped_total",
                               "Total number of alerts dropped due to errors when sending to "
                               "Alertmanager.", registry=registry)
        self.queue_length = Gauge("prometheus_notifications_queue_length",
                                  "The number of alert notifications in the queue.",
                                  registry=registry)
        self.queue_capacity = Gauge("prometheus_notifications_queue_capacity",
                                    "The capacity of the alert notifications queue.",
                                    registry=registry)
        self.discovered = Gauge("prometheus_notifications_alertmanagers_discovered",
                                "The number of alertmanagers discovered and active.",
                                registry=registry)


class Notifier:
    """Queue alerts and send them to Alertmanagers from a background thread.

    Parameters
    ----------
    alerting
        The config's ``alerting`` section (Alertmanagers and ``alert_relabel_configs``).
    external_labels
        Added to every alert that lacks the label (before relabelling).
    queue_capacity, max_batch_size
        The queue's bound (the oldest alerts are dropped past it) and the most alerts per POST.
    registry
        Where the ``prometheus_notifications_*`` metrics go (a private one if None).

    The thread starts with :meth:`start` (or the first :meth:`send`) and ends with :meth:`stop`.
    """

    def __init__(self, alerting: AlertingConfig | None = None, *,
                 external_labels: Mapping[str, str] | None = None,
                 queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 registry: CollectorRegistry | None = None) -> None:
        self.queue_capacity = int(queue_capacity)
        self.max_batch_size = int(max_batch_size)
        self.metrics = _Metrics(registry if registry is not None else CollectorRegistry())
        self.metrics.queue_capacity.set(self.queue_capacity)
        self._cond = threading.Condition()
        self._queue: deque[NotifierAlert] = deque()
        self._in_flight = 0
        self._stopping = False
        self._drain = False
        self._thread: threading.Thread | None = None
        self._alerting = AlertingConfig()
        self._external: dict[str, str] = {}
        self._targets: list[AlertmanagerTarget] = []
        self._discovery: AlertmanagerDiscovery | None = None
        self.apply_config(alerting or AlertingConfig(), external_labels)

    def apply_config(self, alerting: AlertingConfig,
                     external_labels: Mapping[str, str] | None = None) -> None:
        """Use a new ``alerting`` section (and external labels); queued alerts are kept.

        Static Alertmanagers apply at once; with file or HTTP discovery the static ones are used
        until the providers send their first groups.
        """
        with self._cond:
            old, self._discovery = self._discovery, None
            self._alerting = alerting
            self._external = dict(external_labels or {})
        if old is not None:
            old.stop()
        self._set_targets(alertmanager_targets(alerting))
        if needs_discovery(alerting):
            disc = AlertmanagerDiscovery(alerting, lambda targets: self._discovered(alerting, targets))
            with self._cond:
                stale = self._stopping or self._alerting is not alerting
                if not stale:
                    self._discovery = disc
            if stale:
                disc.stop()

    def _discovered(self, alerting: AlertingConfig, targets: list[AlertmanagerTarget]) -> None:
        """Targets from the discovery of ``alerting``: ignored once another config replaced it
        (an old discovery loop that has not stopped yet must not undo the new targets)."""
        with self._cond:
            if self._alerting is not alerting or self._stopping:
                return
            self._targets = targets
        self.metrics.discovered.set(len(targets))

    def _set_targets(self, targets: list[AlertmanagerTarget]) -> None:
        with self._cond:
            self._targets = targets
        self.metrics.discovered.set(len(targets))

    def alertmanagers(self) -> list[str]:
        """The alerts URLs of the Alertmanagers notifications go to."""
        return [t.url for t in self._targets]

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    # --- producer side ------------------------------------------------------------------------------
    def send(self, alerts: Sequence[NotifierAlert]) -> None:
        """Queue ``alerts`` (external labels added, relabelled); returns at once."""
        with self._cond:
            ext, relabel = self._external, self._alerting.alert_relabel_configs
        ready: list[NotifierAlert] = []
        for a in alerts:
            lbls = a.labels
            missing = {k: v for k, v in ext.items() if not lbls.get(k)}
            if missing:
                lbls = lbls.update(missing)
            got = process(lbls, relabel) if relabel else lbls
            if got is None or not len(got):
                continue
            ready.append(a if got is a.labels else NotifierAlert(
                got, a.annotations, a.starts_at_ms, a.ends_at_ms, a.generator_url))
        if not ready:
            return
        dropped = 0
        with self._cond:
            if self._stopping:
                return
            if len(ready) > self.queue_capacity:
                dropped += len(ready) - self.queue_capacity
                ready = ready[-self.queue_capacity:]
            over = len(self._queue) + len(ready) - self.queue_capacity
            for _ in range(max(0, over)):
                self._queue.popleft()
                dropped += 1
            self._queue.extend(ready)
            self.metrics.queue_length.set(len(self._queue))
            self._cond.notify_all()
        if dropped:
            log.warning("alert notification queue full: dropped %d alerts", dropped)
            self.metrics.dropped.inc(dropped)
        self.start()

    # --- lifecycle ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def start(self) -> None:
        """Start the sender thread (idempotent)."""
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            self._thread = threading.Thread(target=self._run, name="promlab-notifier", daemon=True)
            self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty and nothing is being sent; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = 5.0, *, drain: bool = True) -> None:
        """Stop the sender; nothing is queued after this. Idempotent.

        With ``drain`` (Prometheus 3's ``--alertmanager.drain-notification-queue-on-shutdown``,
        on by default) what is queued is still sent, for up to ``timeout`` seconds; what is left
        then (or everything, without ``drain``) is dropped and counted.
        """
        with self._cond:
            self._stopping = True
            self._drain = drain and self._thread is not None
            self._cond.notify_all()
            t = self._thread
            disc, self._discovery = self._discovery, None
        if disc is not None:
            disc.stop()
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        with self._cond:
            self._drain = False  # past the timeout: stop after the batch under way
            left = len(self._queue)
            self._queue.clear()
            self.metrics.queue_length.set(0)
            self._cond.notify_all()
        if left:
            log.warning("alert notification queue not drained on shutdown: dropped %d alerts", left)
            self.metrics.dropped.inc(left)

    # --- sender thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        clients: dict[int, httpx.AsyncClient] = {}
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._stopping:
                        self._cond.wait()
                    if self._stopping and not (self._drain and self._queue):
                        return
                    n = min(self.max_batch_size, len(self._queue))
                    batch = [self._queue.popleft() for _ in range(n)]
                    self._in_flight = n
                    targets = list(self._targets)
                    self.metrics.queue_length.set(len(self._queue))
                try:
                    ok = loop.run_until_complete(self._send_all(batch, targets, clients))
                except Exception as e:  # the thread must survive anything
                    log.error("sending alerts failed: %s", e)
                    ok = False
                if not ok:
                    self.metrics.dropped.inc(len(batch))
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()
        finally:
            for c in clients.values():
                loop.run_until_complete(c.aclose())
            loop.close()
            with self._cond:
                self._in_flight = 0
                self._cond.notify_all()

    async def _send_all(self, batch: list[NotifierAlert], targets: list[AlertmanagerTarget],
                        clients: dict[int, httpx.AsyncClient]) -> bool:
        if not targets:
            return False
        payload = json.dumps([a.to_json() for a in batch]).encode()
        jobs = []
        for t in targets:
            key = id(t.config)
            if key not in clients:
                try:
                    clients[key] = build_client(t.config.http, timeout_s=t.config.timeout_ms / 1000)
                except PromlabError as e:
                    log.error("alertmanager %s: %s", t.url, e)
                    self.metrics.errors.labels(t.url).inc(len(batch))
                    continue
            jobs.append(self._post(clients[key], t, payload, len(batch)))
        results = await asyncio.gather(*jobs)
        return any(results)

    async def _post(self, client: httpx.AsyncClient, t: AlertmanagerTarget, payload: bytes,
                    count: int) -> bool:
        start = time.perf_counter()
        ok = False
        try:
            r = await client.post(t.url, content=payload,
                                  headers={"Content-Type": "application/json"},
                                  timeout=t.config.timeout_ms / 1000)
            ok = 200 <= r.status_code < 300
            if not ok:
                log.error("alertmanager %s: bad response status %s", t.url, r.status_code)
        except (httpx.HTTPError, PromlabError, OSError) as e:
            log.error("alertmanager %s: error sending %d alerts: %s", t.url, count, e)
        if not ok:
            self.metrics.errors.labels(t.url).inc(count)
        self.metrics.latency.labels(t.url).observe(time.perf_counter() - start)
        self.metrics.sent.labels(t.url).inc(count)
        return ok
