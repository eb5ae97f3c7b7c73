"""``session.scrape``: start, stop, reload and inspect the scraper of a :class:`Session`."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from promlab.errors import ConfigError
from promlab.storage.interface import Storage

if TYPE_CHECKING:
    import pandas as pd

    from promlab.config import Config
    from promlab.scrape import ScrapeHandle

__all__ = ["COUNTERS", "ScrapeControl"]


class _Owner(Protocol):
    """What the scrape control needs of its session."""

    read_only: bool

    @property
    def storage(self) -> Storage: ...

    @property
    def config(self) -> Config | None: ...

    @property
    def config_source(self) -> Any: ...

    def set_config(self, config: Any) -> Config: ...


class ScrapeControl:
    """The scraper of a session: one background thread scraping into the session's store.

    Examples
    --------
    >>> from promlab import MemoryStorage, Session
    >>> with Session(MemoryStorage()) as s:
    ...     _ = s.scrape.start({"scrape_configs": []})
    ...     s.scrape.running, len(s.scrape.targets())
    (True, 0)
    """

    def __init__(self, owner: _Owner) -> None:
        self._owner = owner
        self._lock = threading.Lock()
        self._handle: ScrapeHandle | None = None
        # What the scrapers stopped before counted: the session's counters continue over a
        # stop and start (promlab's /metrics), as a Prometheus process's over a reload.
        self._counted = dict.fromkeys(COUNTERS, 0)

    @property
    def running(self) -> bool:
        h = self._handle
        return h is not None and h.running

    @property
    def handle(self) -> ScrapeHandle | None:
        """The running :class:`~promlab.scrape.ScrapeHandle` (None when stopped)."""
        return self._handle

    def start(self, config: Any = None) -> ScrapeHandle:
        """Start scraping ``config`` (a ``prometheus.yml`` path, dict or Config; default the
        session's) into the session's store.

        Raises
        ------
        ConfigError
            When there is no config, it is invalid, or the scraper already runs.
        StorageError
            When the session is read-only.
        """
        from promlab.scrape import ScrapeHandle  # loaded when scraping starts, not with the session

        with self._lock:
            if self.running:
                raise ConfigError("the scraper is already running: stop it or reload it")
            storage = self._owner.storage  # raises on a read-only session
            if config is not None:
                self._owner.set_config(config)
            cfg = self._owner.config
            if cfg is None:
                raise ConfigError("no configuration: pass a prometheus.yml (path or dict)")
            self._handle = ScrapeHandle(cfg, storage)
            return self._handle

    def reload(self, config: Any = None) -> Config:
        """Re-read the config (the file it came from, or ``config``) and apply it without a gap.

        A bad new config raises :class:`~promlab.errors.ConfigError` and the running one stays.
        """
        with self._lock:
            if config is not None:
                new = self._owner.set_config(config)
            else:
                src = self._owner.config_source
                new = self._owner.set_config(src if src is not None else self._owner.config)
            if self._handle is not None and self._handle.running:
                self._handle.reload(new)
            return new

    def stop(self) -> None:
        """Stop scraping (idempotent). The store stays open with the session."""
        with self._lock:
            h, self._handle = self._handle, None
            if h is not None:
                h.stop()
                for name, n in _counts(h).items():
                    self._counted[name] += n

    def counters(self) -> dict[str, int]:
        """The scrapers' totals since the session opened (stopped ones included): samples
        appended, samples out of bounds and scrapes over the body size limit (the keys of
        :data:`COUNTERS`)."""
        with self._lock:
            h = self._handle
            got = dict(self._counted)
            for name, n in (_counts(h) if h is not None else {}).items():
                got[name] += n
            return got

    def targets(self) -> pd.DataFrame:
        """Active and dropped targets with their health (an empty table when not scraping)."""
        from promlab.scrape.health import targets_frame

        h = self._handle
        return h.targets() if h is not None else targets_frame([])

    def metadata(self) -> list[dict[str, str]]:
        """Distinct ``{metric, type, help, unit}`` rows of what the targets expose, sorted."""
        h = self._handle
        return h.manager.metadata() if h is not None else []

    def __repr__(self) -> str:
        return repr(self._handle) if self._handle is not None else "<ScrapeControl stopped>"


#: The scraper counters a session keeps over stop and start (:meth:`ScrapeControl.counters`).
COUNTERS = ("samples_appended", "samples_out_of_bounds", "exceeded_body_size_limit")


def _counts(handle: ScrapeHandle) -> dict[str, int]:
    return {name: int(getattr(handle.manager, name, 0)) for name in COUNTERS}
