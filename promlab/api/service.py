"""What the HTTP API needs of a :class:`~promlab.session.Session`, as a Protocol.

The API sits below the Session in the import layers (``Session.serve()`` builds the server), so
it never imports ``promlab.session``: it reads the session through these attributes only. Any
object with them can be served (tests use the real Session).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry

from promlab.promql.engine import Engine
from promlab.storage.interface import Queryable

if TYPE_CHECKING:
    import pandas as pd

    from promlab.config import Config

__all__ = ["RulesView", "ScrapeView", "Service"]


class ScrapeView(Protocol):
    """``session.scrape``: targets and metadata of the running scraper."""

    @property
    def running(self) -> bool: ...

    @property
    def handle(self) -> Any: ...

    def targets(self) -> pd.DataFrame: ...

    def metadata(self) -> list[dict[str, str]]: ...

    def reload(self, config: Any = None) -> Config: ...


class RulesView(Protocol):
    """``session.rules``: the API views of the rule manager."""

    @property
    def running(self) -> bool: ...

    def rules_data(self) -> list[dict[str, Any]]: ...

    def alerts_data(self) -> list[dict[str, Any]]: ...

    def alertmanagers_data(self) -> dict[str, list[dict[str, str]]]: ...

    def reload(self, files: Any = None) -> Any: ...


class Service(Protocol):
    """The session attributes the API reads (read-only: the API never rebinds them)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def store(self) -> Queryable: ...

    @property
    def registry(self) -> CollectorRegistry: ...

    @property
    def external_url(self) -> str: ...

    @property
    def read_only(self) -> bool: ...

    @property
    def path(self) -> str | None: ...

    @property
    def scrape(self) -> ScrapeView: ...

    @property
    def rules(self) -> RulesView: ...


    @property
    def config(self) -> Config | None: ...

    @property
    def config_source(self) -> Any: ...

    @property
    def closed(self) -> bool: ...

    def info(self) -> Any: ...
