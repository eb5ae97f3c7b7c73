"""The :class:`Session`: one store, one engine, the scraper (and later rules and the API server).

Every front end (the CLI, the daemon, the notebook extension, the HTTP API) wraps a Session and
keeps no state of its own. A Session opened on a directory owns its store and closes it; one
given a store object (a :class:`~promlab.storage.MemoryStorage`, an open
:class:`~promlab.storage.ParquetStore`, any Queryable) leaves it open.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from promlab.errors import BadData, ConfigError, StorageError
from promlab.model import Labels, Matcher, MatchType, parse_duration, parse_time
from promlab.promql.engine import Engine, Result
from promlab.promql.parser import parse_series_selector
from promlab.session.rules import RuleControl
from promlab.session.scraping import ScrapeControl
from promlab.storage.interface import Queryable, Storage
from promlab.storage.lookup import label_lookup, series_lookup

if TYPE_CHECKING:
    import pandas as pd

    from promlab.api.server import Server
    from promlab.config import Config
    from promlab.importer import ImportStats
    from promlab.promql.parser.ast import Expr
    from promlab.session.remote_import import RemoteImportStats
    from promlab.storage.inspect import StoreInfo

__all__ = ["Session"]

#: Querier bounds for "all of time" (the API's default for series/labels without start/end).
MIN_TIME_MS = -(2**62)
MAX_TIME_MS = 2**62

_ALL_SERIES = (Matcher(MatchType.REGEX, "__name__", ".+"),)


class Session:
    """A store with everything that works on it: PromQL engine, scraper, rules, API server.

    Parameters
    ----------
    data
        A store directory (opened, or created, and closed by :meth:`close`), a URL where the
        store's blocks live (``"s3://bucket/prefix"``; give ``storage_options=`` and optionally
        ``local_dir=`` for its WAL, see :func:`~promlab.storage.open_store`) or a store object
        such as :class:`~promlab.storage.MemoryStorage` (used as it is and left open).
    config
        A ``prometheus.yml`` path, a dict of the same shape or a parsed config. It is what
        :meth:`ScrapeControl.start` runs when called without one; a Session does not start
        scraping by itself.
    read_only
        Open the directory as a reader beside another process that writes it (a daemon):
        queries see its blocks and, within a moment, what it commits to its WAL; the reader
        never takes the writer's lock. Scraping is refused.
    engine
        The :class:`~promlab.promql.engine.Engine` to evaluate with (its limits: lookback,
        ``max_samples``, timeout); a default one otherwise.
    progress
        Show progress bars (WAL replay when opening, flushes); None uses the process default.
    external_url
        The URL people reach this Prometheus at: ``$externalURL`` in rule templates and the
        start of alerts' ``generatorURL`` (default ``http://<hostname>:9090``).
    features
        PromQL feature flags with Prometheus's ``--enable-feature`` names (a list or a
        comma-separated string, ``"all"`` for every one), e.g.
        ``features=["promql-experimental-functions"]``; see :mod:`promlab.promql.features`.
    cluster
        A ``dask.distributed.Client``: queries run on its workers, series shard by shard, with
        partial aggregations combined here (:mod:`promlab.promql.distributed`; needs
        ``promlab[dask]``). Workers open a directory/URL store themselves (read-only); a store
        object is sent to them.
    store_options
        Passed to :func:`promlab.storage.open_store` (``retention_time``, ``cache_size``, ...).

    Examples
    --------
    >>> from promlab import MemoryStorage, Labels
    >>> with Session(MemoryStorage()) as s:
    ...     s.store.add_series(Labels({"__name__": "up", "job": "a"}), [0], [1.0])
    ...     s.query("up", time=10)[["job", "value"]].to_dict("records")
    [{'job': 'a', 'value': 1.0}]
    """

    def __init__(self, data: Any = "data", config: Any = None, *, read_only: bool = False,
                 engine: Engine | None = None, progress: bool | None = None,
                 external_url: str | None = None, features: Any = None, cluster: Any = None,
                 **store_options: Any) -> None:
        self._lock = threading.RLock()
        self.external_url = (external_url if external_url is not None
                             else f"http://{socket.gethostname()}:9090").rstrip("/")
        #: The session's own metrics (``prometheus_rule_*``, ``prometheus_notifications_*``).
        self.registry = CollectorRegistry()
        self._closed = False
        self.read_only = read_only
        if engine is not None and features is not None:
            raise BadData("pass either engine= or features=, not both (give the Engine its features)")
        self.engine = engine if engine is not None else Engine(features=features)
        self.path: str | None = None
        self._config_source = config
        self._config: Config | None = None
        if isinstance(data, str | os.PathLike):
            from promlab.storage.store import open_store

            self.path = os.fspath(data)
            self.store: Queryable = open_store(self.path, readonly=read_only, progress=progress,
                                               **store_options)
            self._owns_store = True
        elif isinstance(data, Queryable):
            if store_options:
                raise TypeError("store options apply only when data is a directory")
            self.store = data
            self._owns_store = False
        else:
            raise TypeError("data must be a store directory or a store (with .querier()), "
                            f"not {type(data).__name__}")
        if cluster is not None:
            self.engine = _distributed_engine(self.engine, cluster, self.path, self.store,
                                              store_options)
        # prometheus.yml's storage.tsdb.out_of_order_time_window sets the window of a store
        # this session opened, unless ooo_window= was given (which wins).
        self._config_sets_window = self._owns_store and "ooo_window" not in store_options
        try:
            if config is not None:
                self._config = _load_config(config)
                self._apply_window()
        except BaseException:
            self._close_store()
            raise
        self.scrape = ScrapeControl(self)
        self.rules = RuleControl(self)
        self._server: Server | None = None

    # --- configuration ----------------------------------------------------------------------------
    @property
    def config(self) -> Config | None:
        """The session's ``prometheus.yml`` (None when it was opened without one)."""
        return self._config

    def set_config(self, config: Any) -> Config:
        """Load ``config`` (path, dict or Config) as the session's configuration."""
        cfg = _load_config(config)
        with self._lock:
            self._config_source = config
            self._config = cfg
            self._apply_window()
        return cfg

    def _apply_window(self) -> None:
        """The config's out-of-order window on the store (reloadable, as in Prometheus)."""
        if self._config is not None and self._config_sets_window and hasattr(self.store, "ooo_window_ms"):
            self.store.ooo_window_ms = self._config.out_of_order_time_window_ms

    @property
    def config_source(self) -> Any:
        """What the config was loaded from (a path re-read on reload, or the object given)."""
        return self._config_source

    # --- queries ------------------------------------------------------------------------------------
    def evaluate(self, expr: str | Expr, *, time: Any = None, start: Any = None, end: Any = None,
                 step: Any = None, cancel: threading.Event | None = None) -> Result:
        """Run a query and return the engine's :class:`~promlab.promql.engine.Result`.

        An instant query at ``time`` (default now), or a range query when ``start``, ``end``
        and ``step`` are given. Front ends that encode results themselves (the HTTP API, rule
        evaluation) use this; people use :meth:`query` and :meth:`query_range`.
        """
        self._check_open()
        ranged = start is not None or end is not None or step is not None
        if ranged:
            if start is None or end is None or step is None:
                raise BadData("a range query needs start, end and step")
            if time is not None:
                raise BadData("time excludes start, end and step")
            return self.engine.range(self.store, expr, _time(start, "start"), _time(end, "end"),
                                     _step(step), cancel=cancel)
        return self.engine.instant(self.store, expr, _time(time, "time"), cancel=cancel)

    def query(self, expr: str | Expr, time: Any = None) -> pd.DataFrame:
        """Evaluate an instant query and return a tidy DataFrame.

        ``time`` is a datetime, ``pd.Timestamp``, unix seconds, RFC 3339 or ``"now-1h"``
        (default now).
        """
        return self.evaluate(expr, time=time).to_frame()

    def query_range(self, expr: str | Expr, start: Any, end: Any, step: Any) -> pd.DataFrame:
        """Evaluate ``expr`` from ``start`` to ``end`` (inclusive) every ``step``.

        ``step`` is a duration: ``"30s"``, seconds as a number, or a timedelta.
        """
        return self.evaluate(expr, start=start, end=end, step=step).to_frame()

    # --- series and labels --------------------------------------------------------------------------
    def select_series(self, *matchers: str, start: Any = None, end: Any = None) -> list[Labels]:
        """Label sets of the series matching any of ``matchers`` (series selectors such as
        ``'up{job="a"}'``; all series when none), with samples in ``[start, end]``."""
        sets = [parse_series_selector(m)[1] for m in matchers] or [_ALL_SERIES]
        return series_lookup(self.store, *self._bounds(start, end), sets)

    def series(self, *matchers: str, start: Any = None, end: Any = None) -> pd.DataFrame:
        """The matching series as a table: one row per series, one column per label name
        (``__name__`` first); a label a series does not have is ``None``."""
        import pandas as pd

        rows = [ls.to_dict() for ls in self.select_series(*matchers, start=start, end=end)]
        cols = sorted({k for r in rows for k in r}, key=lambda k: (k != "__name__", k))
        df = pd.DataFrame.from_records(rows, columns=cols).astype(object)
        return df.where(df.notna(), None)

    def labels(self, *matchers: str, start: Any = None, end: Any = None) -> list[str]:
        """Sorted label names of the series matching any of ``matchers`` (all when none)."""
        return self._label_query(None, matchers, start, end)

    def label_values(self, name: str, *matchers: str, start: Any = None, end: Any = None,
                     ) -> list[str]:
        """Sorted values of label ``name`` over the series matching any of ``matchers``."""
        return self._label_query(name, matchers, start, end)

    def _label_query(self, name: str | None, matchers: Sequence[str], start: Any, end: Any,
                     ) -> list[str]:
        sets = [parse_series_selector(m)[1] for m in matchers] or [()]
        return label_lookup(self.store, *self._bounds(start, end), sets, name=name)

    def metadata(self, metric: str | None = None) -> pd.DataFrame:
        """``# HELP``/``# TYPE``/``# UNIT`` of the metrics the running scraper has seen.

        One row per distinct (metric, type, help, unit), as Prometheus's ``/api/v1/metadata``.
        Metadata is not stored: a read-only session or one that is not scraping has none.
        """
        import pandas as pd

        rows = self.scrape.metadata()
        if metric is not None:
            rows = [r for r in rows if r["metric"] == metric]
        return pd.DataFrame(rows, columns=["metric", "type", "help", "unit"])

    def _bounds(self, start: Any, end: Any) -> tuple[int, int]:
        """``[start, end]`` in ms (all of time where not given), checked."""
        self._check_open()
        mint = MIN_TIME_MS if start is None else _time(start, "start")
        maxt = MAX_TIME_MS if end is None else _time(end, "end")
        if maxt < mint:
            raise BadData("end timestamp must not be before start time")
        return mint, maxt

    # --- writing --------------------------------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        """The store as a writable :class:`~promlab.storage.interface.Storage`.

        Raises
        ------
        StorageError
            When the session is read-only or its store cannot be written.
        """
        self._check_open()
        if self.read_only or not isinstance(self.store, Storage):
            raise StorageError("this session is read-only: open it without read_only=True to write")
        return self.store

    def import_file(self, path: str | os.PathLike[str], *, progress: bool | None = None,
                    **options: Any) -> ImportStats:
        """Import an OpenMetrics or Prometheus text file (with timestamps) into the store, then
        flush the head to blocks. ``options`` go to :func:`promlab.importer.import_file`."""
        from promlab.importer import import_file

        storage = self.storage
        stats = import_file(path, storage, progress=bool(progress) if progress is not None
                            else getattr(storage, "progress", False), **options)
        self.flush()
        return stats

    def import_from(self, url: str, *, match: str | Sequence[str], start: Any, end: Any,
                    slice: Any = "1h", username: str | None = None, password: str | None = None,
                    bearer_token: str | None = None, ca_file: str | None = None,
                    insecure_skip_verify: bool = False, cert_file: str | None = None,
                    key_file: str | None = None, progress: bool | None = None,
                    resume: bool = True) -> RemoteImportStats:
        """Copy the raw samples of a live Prometheus server through its remote-read endpoint.

        ``match`` is one or more series selectors (``'{job="api"}'``); ``start``/``end`` are
        times (RFC 3339, unix seconds, ``now-1h``...); the range is read in ``slice``-long
        requests of streamed XOR chunks and written to the store (history older than the head
        straight to blocks), then the head is flushed. Completed slices are remembered in the
        data directory, so the same call after an interruption resumes. ``username``/
        ``password`` (basic auth), ``bearer_token``, ``ca_file``, ``insecure_skip_verify`` and
        ``cert_file``/``key_file`` (client certificate) configure the connection. See
        :mod:`promlab.session.remote_import`.
        """
        from promlab.session.remote_import import import_from

        selectors = [match] if isinstance(match, str) else list(match)
        if not selectors:
            raise BadData("import_from: at least one match[] selector is needed")
        matchers = [list(parse_series_selector(sel)[1]) for sel in selectors]
        storage = self.storage
        verify: bool | str = False if insecure_skip_verify else (ca_file or True)
        cert = (cert_file, key_file) if cert_file and key_file else cert_file
        stats = import_from(
            storage, self.path, url, matchers=matchers, start_ms=_time(start, "start"),
            end_ms=_time(end, "end"), slice_ms=_step(slice),
            auth=(username, password or "") if username else None, bearer_token=bearer_token,
            verify=verify, cert=cert,
            progress=bool(progress) if progress is not None else getattr(storage, "progress", False),
            resume=resume)
        self.flush()
        return stats

    def flush(self) -> None:
        """Write the head's samples to Parquet blocks (a store without blocks ignores this)."""
        flush = getattr(self.storage, "flush", None)
        if flush is not None:
            flush()

    def info(self) -> StoreInfo:
        """Series, samples, time span, label names, blocks and bytes of a directory store."""
        from promlab.storage.inspect import describe_store
        from promlab.storage.store import ParquetStore

        self._check_open()
        if not isinstance(self.store, ParquetStore):
            raise StorageError("store information needs a directory store")
        return describe_store(self.store)

    # --- HTTP API -------------------------------------------------------------------------------------
    def serve(self, listen: str = "127.0.0.1:9090", **options: Any) -> Server:
        """Serve the Prometheus HTTP API for this session in the background.

        ``listen`` is ``host:port`` (127.0.0.1 unless another host is named; port 0 picks a free
        one); ``options`` go to :class:`promlab.api.Server` (``web_config``,
        ``enable_lifecycle``, ``enable_admin_api``, ``bearer_token``, ...). :meth:`close` stops
        it first.

        Raises
        ------
        ConfigError
            Already serving, or the address cannot be bound.
        """
        from promlab.api.server import Server

        with self._lock:
            self._check_open()
            if self._server is not None and self._server.running:
                raise ConfigError(f"already serving on {self._server.url}: stop it first "
                                  "(session.server.stop(), or %promlab serve stop)")
            server = Server(self, listen=listen, **options)
            server.start()
            self._server = server
        return server

    @property
    def server(self) -> Server | None:
        """The server started by :meth:`serve` (None before)."""
        return self._server

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the session is closed")

    def close(self) -> None:
        """Stop what runs (the server, rules, scraper), then close an owned store.

        Idempotent, and safe to call from another thread than the one using the session.
        """
        with self._lock:
            if self._closed:
                return
            server, self._server = self._server, None
        if server is not None:
            server.stop()  # first, while the session is whole: requests in flight finish
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.rules.stop()
            self.scrape.stop()
        finally:
            self._close_store()

    def _close_store(self) -> None:
        if getattr(self, "_owns_store", False):
            close = getattr(self.store, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path if self.path is not None else type(self.store).__name__
        mode = "read-only" if self.read_only else "read-write"
        state = "closed" if self._closed else ("scraping" if self.scrape.running else "idle")
        dask = getattr(self.engine, "dashboard_link", None)
        on = f" on Dask {dask}" if dask else ""
        return f"<Session {where} {mode} {state}{on}>"

    def _repr_html_(self) -> str:
        import html

        text = html.escape(repr(self))
        dask = getattr(self.engine, "dashboard_link", None)
        if dask:
            link = html.escape(dask, quote=True)
            text += f' &mdash; <a href="{link}" target="_blank">Dask dashboard</a>'
        return f"<p>{text}</p>"


def _distributed_engine(engine: Engine, cluster: Any, path: str | None, store: Queryable,
                        store_options: dict[str, Any]) -> Engine:
    from promlab.promql.distributed import DistributedEngine, StoreLocation

    location = None
    if path is not None:
        location = StoreLocation(path, {k: v for k, v in store_options.items()
                                        if k in ("storage_options", "local_dir")})
    return DistributedEngine.from_engine(engine, cluster, location=location, location_store=store)


def _load_config(config: Any) -> Config:
    from promlab.config import load_config

    return load_config(config)


def _time(value: Any, what: str) -> int:
    try:
        return parse_time(value)
    except (ValueError, TypeError) as exc:
        raise BadData(f"invalid parameter {what!r}: {exc}") from None


def _step(value: Any) -> int:
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise BadData(f"invalid parameter 'step': {exc}") from None
