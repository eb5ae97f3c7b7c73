"""Scraping: discovery, relabeling and scrape loops writing to a store.

:func:`start` runs a :class:`ScrapeManager` in a background thread over any store. People start
it through a :class:`promlab.Session` (``session.scrape.start(config)``), in a notebook or as the
daemon (:mod:`promlab.daemon`).

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
from promlab.config.relabel import RelabelConfig, process
from promlab.scrape.health import targets_frame
from promlab.scrape.manager import ScrapeManager
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


class ScrapeHandle:
    """A running scraper (background thread). Use :func:`start` to make one."""

    def __init__(self, config: Config | Mapping[str, Any] | str | os.PathLike[str],
                 storage: Storage) -> None:
        self._source = config if isinstance(config, str | os.PathLike) else None
        self.config = load_config(config)
        self.storage = storage
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
        """Stop scraping (no staleness markers, as on a Prometheus shutdown); the store stays open."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            try:
                self.scheduler.call(self.manager.close(), timeout=30)
            finally:
                self.scheduler.close()
                self.manager.writer.close()  # no-op when manager.close did it
                self.manager.parse_pool.shutdown(wait=True)

    def __enter__(self) -> ScrapeHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        n = sum(len(p.loops) for p in self.manager.pools.values())
        return f"<ScrapeHandle jobs={len(self.manager.pools)} targets={n} running={self.running}>"


def start(config: Config | Mapping[str, Any] | str | os.PathLike[str], data: Storage) -> ScrapeHandle:
    """Start scraping ``config`` into the store ``data`` in a background thread.

    Parameters
    ----------
    config
        A ``prometheus.yml`` path, a dict of the same shape, or a parsed :class:`Config`.
    data
        Any :class:`~promlab.storage.interface.Storage`; it stays open when scraping stops. To
        scrape into a store directory, use :class:`promlab.Session` (``session.scrape.start``),
        which owns the one store that scraping and querying share.
    """
    if not isinstance(data, Storage):
        raise TypeError("data must be a Storage (with .appender()); for a store directory use "
                        f"promlab.Session(path).scrape.start(config), not {type(data).__name__}")
    return ScrapeHandle(config, data)
