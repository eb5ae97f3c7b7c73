"""Service discovery: providers that turn config into target groups.

A provider is an asyncio task that calls ``send(groups)`` with the full list of its current
:class:`TargetGroup` objects whenever they change. The :class:`DiscoveryManager` keeps the latest
groups per job and provider and tells its listener which jobs changed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from promlab.config import FileSDConfig, HTTPSDConfig, StaticConfig
from promlab.discovery.file import FileProvider
from promlab.discovery.group import TargetGroup, groups_from_data
from promlab.discovery.http import HTTPProvider
from promlab.discovery.static import StaticProvider

__all__ = [
    "DiscoveryManager",
    "FileProvider",
    "HTTPProvider",
    "StaticProvider",
    "TargetGroup",
    "groups_from_data",
    "providers_for",
]

log = logging.getLogger("promlab.discovery")

Provider = StaticProvider | FileProvider | HTTPProvider


def providers_for(static: tuple[StaticConfig, ...], files: tuple[FileSDConfig, ...],
                  https: tuple[HTTPSDConfig, ...]) -> list[Provider]:
    """One provider per SD config entry (all static configs share one provider)."""
    out: list[Provider] = []
    if static:
        out.append(StaticProvider(static))
    out.extend(FileProvider(f) for f in files)
    out.extend(HTTPProvider(h) for h in https)
    return out


class DiscoveryManager:
    """Runs providers per job on the scheduler's event loop and collects their groups.

    ``on_change(job)`` is called (on the loop) after a provider of ``job`` sent new groups.
    """

    def __init__(self, on_change: Callable[[str], Any]) -> None:
        self._on_change = on_change
        self._groups: dict[str, dict[int, list[TargetGroup]]] = {}
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._keys: dict[str, Any] = {}

    def groups(self, job: str) -> list[TargetGroup]:
        """The current target groups of ``job`` from all its providers."""
        out: list[TargetGroup] = []
        for _, gs in sorted(self._groups.get(job, {}).items()):
            out.extend(gs)
        return out

    def apply(self, jobs: dict[str, tuple[Any, list[Provider]]]) -> None:
        """Start providers for new or changed jobs, stop those of removed or changed jobs.

        ``jobs`` maps a job name to ``(key, providers)``; providers are restarted only when the
        key (the SD part of the job's config) changed.
        """
        for job in list(self._tasks):
            if job not in jobs or jobs[job][0] != self._keys.get(job):
                for t in self._tasks.pop(job):
                    t.cancel()
                self._groups.pop(job, None)
                self._keys.pop(job, None)
        for job, (key, providers) in jobs.items():
            if job in self._tasks:
                continue
            self._keys[job] = key
            self._groups[job] = {}
            self._tasks[job] = [
                asyncio.get_running_loop().create_task(self._run(job, i, p)) for i, p in enumerate(providers)
            ]
            if not providers:
                self._on_change(job)

    async def _run(self, job: str, idx: int, provider: Provider) -> None:
        def send(groups: list[TargetGroup]) -> None:
            if job in self._groups:
                self._groups[job][idx] = groups
                self._on_change(job)

        try:
            await provider.run(send)
        except asyncio.CancelledError:
            raise
        except Exception:  # a provider bug must not stop the others
            log.exception("discovery provider %s for job %s failed", type(provider).__name__, job)

    def stop(self) -> None:
        for tasks in self._tasks.values():
            for t in tasks:
                t.cancel()
        self._tasks.clear()
        self._groups.clear()
        self._keys.clear()
