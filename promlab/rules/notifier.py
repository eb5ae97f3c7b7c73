"""Sending alerts to Alertmanager (its v2 API), off the evaluation thread.

As Prometheus 3.x's ``notifier.Manager``: :meth:`Notifier.send` adds the external labels an alert
lacks and applies ``alerting.alert_relabel_configs`` (a dropped alert is not sent); then, for each
``alertmanagers`` entry (an Alertmanager *set*), the entry's own ``alert_relabel_configs``; then
the alerts go onto the queue of each of the set's Alertmanagers. Every Alertmanager has its own
bounded queue (when it overflows the oldest alerts are dropped and counted) and its own sender,
which takes batches of up to ``max_batch_size`` and POSTs each as one JSON list
(``{scheme}://{address}{path_prefix}/api/v2/alerts``, with the entry's ``timeout``, basic auth or
authorization, TLS); a batch the Alertmanager did not take is dropped and counted. So a slow or
dead Alertmanager delays only its own queue, never the others' (Prometheus 2.x had one queue and
sent each batch to all Alertmanagers at once, the slowest setting the pace). See
:mod:`promlab.rules.sendloop`. Nothing here blocks or raises into the caller.

Alertmanagers come from ``static_configs``, ``file_sd_configs`` and ``http_sd_configs``
(their targets relabelled by the entry's ``relabel_configs`` with ``__address__``,
``__scheme__`` and ``__alerts_path__``, as Prometheus does; see :mod:`promlab.rules.amtargets`).
Those the relabelling drops are listed by :meth:`Notifier.dropped_alertmanagers`.

Metrics, Prometheus 3.x's names, per Alertmanager (label ``alertmanager``, its alerts URL):
``prometheus_notifications_sent_total`` (alerts the Alertmanager took),
``prometheus_notifications_errors_total``, ``prometheus_notifications_dropped_total``,
``prometheus_notifications_queue_length``, ``prometheus_notifications_latency_seconds`` and
``prometheus_notifications_latency_histogram_seconds`` (successful POSTs); without labels
``prometheus_notifications_queue_capacity`` (each queue's) and
``prometheus_notifications_alertmanagers_discovered``. A removed Alertmanager's series go once
its queue is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from prometheus_client import CollectorRegistry

from promlab.config import AlertingConfig, AlertmanagerConfig
from promlab.config.relabel import RelabelConfig, process
from promlab.model import Labels
from promlab.rules.alerting import Alert
from promlab.rules.amtargets import (
    AlertmanagerDiscovery,
    AlertmanagerTarget,
    SetTargets,
    alertmanager_targets,
    needs_discovery,
    static_set_targets,
)
from promlab.rules.sendloop import SendLoop, notifier_metrics

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


#: An Alertmanager set: its config entry and how many identical entries precede it. A set whose
#: entry is unchanged by a reload keeps its send loops (and their queues), as Prometheus keeps
#: them by the entry's config hash.
SetKey = tuple[AlertmanagerConfig, int]


def _set_keys(alerting: AlertingConfig) -> list[SetKey]:
    seen: dict[AlertmanagerConfig, int] = {}
    keys = []
    for am in alerting.alertmanagers:
        n = seen.get(am, 0)
        seen[am] = n + 1
        keys.append((am, n))
    return keys


def _relabel(alerts: Sequence[NotifierAlert], relabel: Sequence[RelabelConfig],
             external: Mapping[str, str]) -> list[NotifierAlert]:
    """Prometheus's ``relabelAlerts``: external labels an alert lacks (or has empty) added, then
    the relabelling; an alert it drops (or leaves without labels) is not sent."""
    out: list[NotifierAlert] = []
    for a in alerts:
        lbls = a.labels
        missing = {k: v for k, v in external.items() if not lbls.get(k)}
        if missing:
            lbls = lbls.update(missing)
        got = process(lbls, relabel) if relabel else lbls
        if got is None or not len(got):
            continue
        out.append(a if got is a.labels else NotifierAlert(
            got, a.annotations, a.starts_at_ms, a.ends_at_ms, a.generator_url))
    return out


class Notifier:
    """Send alerts to Alertmanagers, one queue and one sender per Alertmanager.

    Parameters
    ----------
    alerting
        The config's ``alerting`` section (Alertmanagers and ``alert_relabel_configs``).
    external_labels
        Added to every alert that lacks the label (before relabelling).
    queue_capacity, max_batch_size
        Each Alertmanager's queue bound (the oldest alerts are dropped past it) and the most
        alerts per POST.
    registry
        Where the ``prometheus_notifications_*`` metrics go (a private one if None; a registry
        given to several notifiers in turn holds one set of metrics).

    The senders run on one event-loop thread that starts with :meth:`start` (or the first
    :meth:`send`) and ends with :meth:`stop`.
    """

    def __init__(self, alerting: AlertingConfig | None = None, *,
                 external_labels: Mapping[str, str] | None = None,
                 queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
                 max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
                 registry: CollectorRegistry | None = None) -> None:
        self.queue_capacity = int(queue_capacity)
        self.max_batch_size = int(max_batch_size)
        self.metrics = notifier_metrics(registry if registry is not None else CollectorRegistry())
        self.metrics.queue_capacity.set(self.queue_capacity)
        self._cond = threading.Condition()
        self._sets: list[tuple[SetKey, SetTargets]] = []
        self._loops: dict[SetKey, dict[str, SendLoop]] = {}
        self._retired: list[SendLoop] = []  # removed Alertmanagers' loops, still draining
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._alerting = AlertingConfig()
        self._external: dict[str, str] = {}
        self._discovery: AlertmanagerDiscovery | None = None
        self.apply_config(alerting or AlertingConfig(), external_labels)
        # The registry's series of a stopped notifier's Alertmanagers (its rules were
        # restarted) go now; those this notifier sends to too continue.
        self.metrics.attach(self)
        self.metrics.prune()

    # --- configuration and targets ------------------------------------------------------------------
    def apply_config(self, alerting: AlertingConfig,
                     external_labels: Mapping[str, str] | None = None) -> None:
        """Use a new ``alerting`` section (and external labels).

        The send loops of Alertmanagers that stay (same entry, same URL) keep their queues; the
        loops of those that go send what they hold, then end. Static Alertmanagers apply at
        once; an entry with file or HTTP discovery keeps the Alertmanagers it had (if the entry
        is unchanged) or uses its static ones until its providers send their first groups.
        """
        with self._cond:
            old, self._discovery = self._discovery, None
            self._alerting = alerting
            self._external = dict(external_labels or {})
            before = dict(self._sets)
        if old is not None:
            old.stop()
        sets = []
        for key, am in zip(_set_keys(alerting), alerting.alertmanagers, strict=True):
            kept = before.get(key) if am.file_sd_configs or am.http_sd_configs else None
            sets.append(kept if kept is not None else static_set_targets(am))
        self._apply(alerting, sets)
        if needs_discovery(alerting):
            disc = AlertmanagerDiscovery(alerting, lambda got: self._apply(alerting, got))
            with self._cond:
                stale = self._stopping or self._alerting is not alerting
                if not stale:
                    self._discovery = disc
            if stale:
                disc.stop()

    def _apply(self, alerting: AlertingConfig, sets: Sequence[SetTargets]) -> None:
        """Make ``sets`` (one per entry of ``alerting``) the Alertmanagers; ignored once another
        config replaced ``alerting`` (an old discovery loop must not undo the new targets)."""
        keys = _set_keys(alerting)
        retire: list[SendLoop] = []
        with self._cond:
            if self._alerting is not alerting or self._stopping:
                return
            old = self._loops
            new: dict[SetKey, dict[str, SendLoop]] = {}
            for key, st in zip(keys, sets, strict=True):
                loops = new.setdefault(key, {})
                prev = old.get(key, {})
                for t in st.active:
                    if t.url in loops:
                        continue
                    loop = prev.pop(t.url, None)
                    if loop is None:
                        loop = SendLoop(t, capacity=self.queue_capacity,
                                        max_batch_size=self.max_batch_size, metrics=self.metrics,
                                        cond=self._cond, on_done=self._loop_done)
                        if self._loop is not None:
                            loop.start(self._loop)
                    loops[t.url] = loop
            for prev in old.values():
                retire.extend(prev.values())
            self._loops = new
            self._sets = list(zip(keys, sets, strict=True))
            self._retired.extend(retire)
            self.metrics.discovered.set(sum(len(st.active) for st in sets))
        for loop in retire:
            loop.close(drain=True)
            if not loop.started and not self.running:
                self._loop_done(loop)  # nothing will send it: gone now (its queue dropped)

    def _loop_done(self, loop: SendLoop) -> None:
        """A send loop ended: a removed Alertmanager's series go (unless its URL is back)."""
        with self._cond:
            if loop not in self._retired:
                return
            self._retired.remove(loop)
            live = any(loop.url in loops for loops in self._loops.values())
            if not loop.started:
                loop.abandon()
        if not live:
            self.metrics.forget(loop.url)

    def alertmanagers(self) -> list[str]:
        """The alerts URLs notifications go to, entry by entry (``activeAlertmanagers``)."""
        with self._cond:
            return [t.url for _, st in self._sets for t in st.active]

    def dropped_alertmanagers(self) -> list[str]:
        """The URLs of discovered Alertmanagers an entry's ``relabel_configs`` dropped
        (``droppedAlertmanagers``)."""
        with self._cond:
            return [u for _, st in self._sets for u in st.dropped]

    @property
    def queue_length(self) -> int:
        """Alerts queued, over all Alertmanagers' queues."""
        with self._cond:
            return sum(loop.queue_length for loop in self._all_loops())

    def live_urls(self) -> set[str]:
        """The Alertmanagers this notifier sends (or still drains) to; none once stopped."""
        with self._cond:
            return set() if self._stopping else {x.url for x in self._all_loops()}

    def _all_loops(self) -> list[SendLoop]:
        return [x for loops in self._loops.values() for x in loops.values()] + self._retired

    # --- producer side ------------------------------------------------------------------------------
    def send(self, alerts: Sequence[NotifierAlert]) -> None:
        """Queue ``alerts`` for every Alertmanager; returns at once.

        External labels are added and ``alert_relabel_configs`` applied once, then each entry's
        own ``alert_relabel_configs`` for its Alertmanagers; each Alertmanager's queue gets the
        result (and drops its oldest alerts when full).
        """
        with self._cond:
            if self._stopping:
                return
            ext, relabel = self._external, self._alerting.alert_relabel_configs
        ready = _relabel(alerts, relabel, ext)
        if not ready:
            return
        with self._cond:
            if self._stopping:
                return
            targets = [(key[0].alert_relabel_configs, list(loops.values()))
                       for key, loops in self._loops.items()]
        for set_relabel, loops in targets:
            batch = _relabel(ready, set_relabel, {}) if set_relabel else ready
            for loop in loops:
                loop.add(batch)
        self.start()

    # --- lifecycle ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def start(self) -> None:
        """Start the senders' thread (idempotent)."""
        with self._cond:
            if self._thread is not None or self._stopping:
                return
            loop = self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._run, args=(loop,),
                                            name="promlab-notifier", daemon=True)
            self._thread.start()
            for x in self._all_loops():
                x.start(loop)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every Alertmanager's queue is empty and nothing is being sent; False on
        timeout (a dead Alertmanager holds a batch for its ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(x.idle for x in self._all_loops()):
                left = deadline - time.monotonic()
                if left <= 0 or not self.running:
                    return False
                self._cond.wait(left)
        return True

    def stop(self, timeout: float = 5.0, *, drain: bool = True) -> None:
        """Stop the senders; nothing is queued after this. Idempotent.

        With ``drain`` (Prometheus 3's ``--alertmanager.drain-notification-queue-on-shutdown``,
        on by default) each Alertmanager's queue is still sent, for up to ``timeout`` seconds
        in all; what is left then (or everything, without ``drain``), including a batch still
        under way, is dropped and counted for its Alertmanager. The metrics stay in the registry
        until another notifier on it starts (see :meth:`~promlab.rules.sendloop.NotifierMetrics.prune`).
        """
        with self._cond:
            self._stopping = True
            disc, self._discovery = self._discovery, None
            loops = self._all_loops()
            running = self.running
            self._cond.notify_all()
        if disc is not None:
            disc.stop()
        for x in loops:
            x.close(drain=drain and running and x.started)
        deadline = time.monotonic() + timeout
        if running:
            with self._cond:
                while not all(x.finished for x in loops if x.started):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
        loop, t = self._loop, self._thread
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(loop.stop)  # cancels the senders still at work
        if t is not None and t is not threading.current_thread():
            t.join(max(1.0, deadline - time.monotonic()))
        for x in loops:
            x.abandon()

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
            with self._cond:
                self._cond.notify_all()
