"""Scraping: ``prometheus.yml`` config, discovery, relabeling and scrape loops writing to a store.

Start it in a notebook or any program with :func:`start` (a background thread), or as a daemon
with :func:`promlab.scrape.daemon.run`; both use the same :class:`ScrapeManager`.

Examples
--------
>>> from promlab.storage import MemoryStorage
>>> h = start({"scrape_configs": []}, data=MemoryStorage())
>>> h.targets().empty
True
>>> h.stop()
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from promlab.config import Config, ScrapeConfig, load, load_config
from promlab.scrape.health import targets_frame
from promlab.scrape.manager import ScrapeManager
from promlab.scrape.relabel import RelabelConfig, process
from promlab.scrape.scheduler import Scheduler
from promlab.storage.interface import Storage

__all__ = [
    "Config",
    "RelabelConfig",
    "ScrapeConfig",
    "ScrapeHandle",
    "ScrapeManager",
    "load",
    "load_config",
    "process",
    "start",
]

log = logging.getLogger("promlab.scrape")


def _open_storage(data: Any) -> tuple[Storage, bool]:
    if isinstance(data, str | os.PathLike):
        from promlab.storage import open_store

        return open_store(str(data), progress=True), True
    if hasattr(data, "appender"):
        return data, False
    raise TypeError(f"data must be a store directory or a Storage, not {type(data).__name__}")


class ScrapeHandle:
    """A running scraper (background thread). Use :func:`start` to make one."""

    def __init__(self, config: Config | Mapping[str, Any] | str | os.PathLike[str], storage: Storage,
                 owns_storage: bool) -> None:
        self._source = config if isinstance(config, str | os.PathLike) else None
        self.config = load_config(config)
        self.storage = storage
        self._owns_storage = owns_storage
        self._lock = threading.Lock()
        self.scheduler = Scheduler()
        self.manager = ScrapeManager(storage, self.scheduler)
        try:
            self.scheduler.call(self.manager.apply(self.config))
        except BaseException:
            self.scheduler.close()
            self.manager.writer.close()
            raise
        self._stopped = False

    def reload(self, config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None) -> Config:
        """Re-read the config (the original file, or ``config``) and apply it without a gap.

        Raises
        ------
        ConfigError
            When the new config is invalid; the running one is kept.
        """
        with self._lock:
            new = load_config(config if config is not None else (self._source or self.config))
            self.scheduler.call(self.manager.apply(new))
            self.config = new
            if isinstance(config, str | os.PathLike):
                self._source = config
            return new

    def targets(self) -> pd.DataFrame:
        """Active and dropped targets with their health (see :func:`targets_frame`)."""
        return targets_frame(self.manager.snapshot())

    def lateness(self) -> np.ndarray:
        """Scrape-start lateness in seconds of recent scrapes (newest last)."""
        return np.array(list(self.manager.lateness), np.float64)

    @property
    def running(self) -> bool:
        return not self._stopped

    def stop(self) -> None:
        """Stop scraping (no staleness markers, as on a Prometheus shutdown); close an owned store."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            try:
                self.scheduler.call(self.manager.close(), timeout=30)
            finally:
                self.scheduler.close()
                self.manager.writer.close()  # no-op when manager.close did it
                if self._owns_storage:
                    flush = getattr(self.storage, "flush", None)
                    if flush is not None:
                        flush()
                    self.storage.close()

    def __enter__(self) -> ScrapeHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        n = sum(len(p.loops) for p in self.manager.pools.values())
        return f"<ScrapeHandle jobs={len(self.manager.pools)} targets={n} running={self.running}>"


def start(config: Config | Mapping[str, Any] | str | os.PathLike[str], data: Any) -> ScrapeHandle:
    """Start scraping ``config`` into ``data`` in a background thread.

    Parameters
    ----------
    config
        A ``prometheus.yml`` path, a dict of the same shape, or a parsed :class:`Config`.
    data
        A store directory (opened with ``promlab.storage.open_store`` and closed on ``stop``) or
        any :class:`~promlab.storage.interface.Storage` (left open).
    """
    cfg = load_config(config)
    storage, owns = _open_storage(data)
    try:
        return ScrapeHandle(config if isinstance(config, str | os.PathLike) else cfg, storage, owns)
    except BaseException:
        if owns:
            storage.close()
        raise
