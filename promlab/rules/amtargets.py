"""Which Alertmanagers the notifier posts to: static configs and service discovery.

Each ``alerting.alertmanagers`` entry yields target groups (``static_configs``,
``file_sd_configs``, ``http_sd_configs``, as a scrape job does); every target becomes the label
set ``{__address__, __scheme__, __alerts_path__}`` plus its group's labels, relabelled by the
entry's ``relabel_configs``, and then the URL ``{__scheme__}://{__address__}{__alerts_path__}``
(duplicates within an entry once; an entry is an Alertmanager *set*), as Prometheus's notifier
builds it. Targets the relabelling drops are kept as URLs too (``droppedAlertmanagers``).

Static-only configs are resolved at once (:func:`alertmanager_targets`). With file or HTTP
discovery an :class:`AlertmanagerDiscovery` runs the providers on its own event-loop thread and
calls back with every entry's :class:`SetTargets` whenever a provider's groups change (a file edited, an HTTP
poll answering differently); until the first groups arrive the static targets are used.
"""

from __future__ import annotations

import asyncio
import logging
import posixpath
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from promlab.config import AlertingConfig, AlertmanagerConfig
from promlab.config.relabel import process
from promlab.discovery import DiscoveryManager, TargetGroup, providers_for

__all__ = ["AlertmanagerDiscovery", "AlertmanagerTarget", "SetTargets", "alertmanager_targets",
           "needs_discovery", "set_targets", "static_set_targets", "targets_from_groups"]

log = logging.getLogger("promlab.notifier")


@dataclass(frozen=True, slots=True)
class AlertmanagerTarget:
    """One Alertmanager to post to: its alerts URL and the config entry it came from."""

    url: str
    config: AlertmanagerConfig


@dataclass(frozen=True, slots=True)
class SetTargets:
    """One ``alertmanagers`` entry's Alertmanagers: those kept by its ``relabel_configs``
    (deduplicated within the entry, in discovery order) and the URLs of those dropped."""

    active: tuple[AlertmanagerTarget, ...] = ()
    dropped: tuple[str, ...] = ()


def _url(scheme: str, address: str, path: str) -> str:
    if path and not path.startswith("/"):
        path = "/" + path  # as Go's URL.String() writes a path after a host
    return f"{scheme}://{address}{path}"


def _alerts_path(am: AlertmanagerConfig) -> str:
    """``/<path_prefix>/api/<version>/alerts`` cleaned as Go's ``path.Join("/", prefix, ...)``:
    a prefix without its leading slash, with doubled slashes, ``.`` or ``..`` still gives one
    absolute path (``am`` and ``/am/`` both give ``/am/api/v2/alerts``)."""
    joined = posixpath.normpath(f"/{am.path_prefix}/api/{am.api_version}/alerts")
    return "/" + joined.lstrip("/")  # normpath keeps a leading "//"; Go's Clean does not


def targets_from_groups(am: AlertmanagerConfig, groups: Sequence[TargetGroup],
                        seen: set[str] | None = None,
                        dropped: list[str] | None = None) -> list[AlertmanagerTarget]:
    """The relabelled targets of one Alertmanager entry's groups (URLs in ``seen`` skipped);
    the URLs of targets the relabelling drops (before relabelling) are added to ``dropped``."""
    seen = set() if seen is None else seen
    path = _alerts_path(am)
    out: list[AlertmanagerTarget] = []
    for g in groups:
        for target in g.targets:
            # As Prometheus: the target's labels, then the configured scheme and path (over the
            # target's), then the group's labels the target lacks (over scheme and path).
            lbls = {**target, "__scheme__": am.scheme, "__alerts_path__": path}
            lbls.update((k, v) for k, v in g.labels.items() if k not in target)
            got = process(lbls, am.relabel_configs)
            if got is None:
                if dropped is not None:
                    dropped.append(_url(lbls.get("__scheme__", ""), lbls.get("__address__", ""),
                                        lbls.get("__alerts_path__", "")))
                continue
            if not got.get("__address__"):
                continue
            url = _url(got.get("__scheme__", am.scheme), got["__address__"],
                       got.get("__alerts_path__", path))
            if url not in seen:
                seen.add(url)
                out.append(AlertmanagerTarget(url, am))
    return out


def _static_groups(am: AlertmanagerConfig) -> list[TargetGroup]:
    return [TargetGroup(tuple({"__address__": t} for t in sc.targets), sc.labels.to_dict())
            for sc in am.static_configs]


def set_targets(am: AlertmanagerConfig, groups: Sequence[TargetGroup]) -> SetTargets:
    """One entry's kept and dropped Alertmanagers for its target ``groups``."""
    dropped: list[str] = []
    active = targets_from_groups(am, groups, dropped=dropped)
    return SetTargets(tuple(active), tuple(dropped))


def static_set_targets(am: AlertmanagerConfig) -> SetTargets:
    """One entry's Alertmanagers from its ``static_configs`` alone."""
    return set_targets(am, _static_groups(am))


def alertmanager_targets(alerting: AlertingConfig) -> list[AlertmanagerTarget]:
    """The Alertmanagers of the ``alerting`` section's static configs, relabelled, entry by
    entry (deduplicated within an entry, as Prometheus: two entries naming one Alertmanager
    both post to it)."""
    return [t for am in alerting.alertmanagers for t in static_set_targets(am).active]


def needs_discovery(alerting: AlertingConfig) -> bool:
    """Whether any Alertmanager entry uses file or HTTP discovery."""
    return any(am.file_sd_configs or am.http_sd_configs for am in alerting.alertmanagers)


class AlertmanagerDiscovery:
    """Run the Alertmanager entries' discovery providers on a background event loop.

    ``on_change(sets)`` is called from that loop's thread with one :class:`SetTargets` per
    ``alertmanagers`` entry (in config order) each time a provider sends new groups. :meth:`stop` ends the providers and the thread.
    """

    def __init__(self, alerting: AlertingConfig,
                 on_change: Callable[[list[SetTargets]], None]) -> None:
        self.alerting = alerting
        self._on_change = on_change
        self._loop = asyncio.new_event_loop()
        self._manager: DiscoveryManager | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="promlab-am-discovery", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        def start() -> None:
            self._manager = DiscoveryManager(self._changed)
            jobs = {str(i): (i, providers_for(am.static_configs, am.file_sd_configs,
                                               am.http_sd_configs))
                    for i, am in enumerate(self.alerting.alertmanagers)}
            self._manager.apply(jobs)
            self._ready.set()

        self._loop.call_soon(start)
        try:
            self._loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self._loop)
            for t in pending:
                t.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    def _changed(self, _job: str) -> None:
        mgr = self._manager
        if mgr is None:
            return
        sets = [set_targets(am, mgr.groups(str(i)))
                for i, am in enumerate(self.alerting.alertmanagers)]
        try:
            self._on_change(sets)
        except Exception:  # the discovery loop must survive its listener
            log.exception("applying discovered alertmanagers failed")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the providers and the loop thread (idempotent)."""
        if self._loop.is_closed():
            return

        def halt() -> None:
            if self._manager is not None:
                self._manager.stop()
            self._loop.stop()

        try:
            self._loop.call_soon_threadsafe(halt)
        except RuntimeError:  # already closed
            return
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
