"""promlab: Prometheus as a Jupyter-native analysis environment.

Scrape targets into a Parquet time-series store, query it with PromQL on pandas/numpy, and get
DataFrames back.

Examples
--------
>>> import promlab
>>> store = promlab.MemoryStorage()
>>> app = store.appender()
>>> app.append(promlab.Labels({"__name__": "up", "job": "demo"}), 0, 1.0)
>>> _ = app.commit()
>>> df = promlab.query("up", time=60, data=store)
>>> df[["job", "value"]].to_dict("records")
[{'job': 'demo', 'value': 1.0}]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from promlab.errors import (
    ConfigError,
    ExpositionError,
    ParseError,
    PromlabError,
    QueryCanceled,
    QueryError,
    QueryTimeout,
    StorageError,
    TooManySamples,
)
from promlab.model import Labels, Matcher, MatchType

if TYPE_CHECKING:
    from promlab.promql import Engine, Result
    from promlab.rules.backtest import backtest, backtest_sweep
    from promlab.session import Session, close_sessions, query, query_range
    from promlab.storage import MemoryStorage, open_store

from promlab.version import __version__


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext promlab``: the ``%promql``/``%%promql``/``%promlab`` magics (see
    :mod:`promlab.notebook`)."""
    from promlab.notebook.extension import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext promlab``: stop the scraper and widget threads, remove the magics."""
    from promlab.notebook.extension import unload_ipython_extension as unload

    unload(shell)


def explore(session: Any = None, expr: str = "", **options: Any) -> Any:
    """The query explorer widget (:class:`promlab.notebook.widgets.explorer.Explorer`)."""
    from promlab.notebook.widgets.explorer import Explorer

    return Explorer(session, expr=expr, **options)


def dashboard(panels: Any, refresh: str | None = "15s", *, session: Any = None,
              **options: Any) -> Any:
    """A grid of PromQL panels (:class:`promlab.notebook.widgets.dashboard.Dashboard`) from a
    list of panels, a YAML file or text, or a Grafana dashboard JSON."""
    from promlab.notebook.widgets.dashboard import Dashboard

    return Dashboard(panels, refresh=refresh, session=session, **options)


def targets_view(session: Any = None, refresh: str | None = "5s") -> Any:
    """Live scrape health (:class:`promlab.notebook.widgets.targets.TargetsView`)."""
    from promlab.notebook.widgets.targets import TargetsView

    return TargetsView(session, refresh=refresh)


def rule_lab(rule_or_file: Any, session: Any = None, **options: Any) -> Any:
    """The alert-rule lab widget (:class:`promlab.notebook.widgets.rulelab.RuleLab`): edit an
    alerting rule, backtest it over the store, sweep its threshold and ``for``, export it."""
    from promlab.notebook.widgets.rulelab import RuleLab

    return RuleLab(rule_or_file, session=session, **options)


# Loaded on first use (module ``__getattr__``), so ``import promlab.storage.interface`` or
# ``import promlab.model`` does not pull in the engine, pandas and pyarrow.
_LAZY = {
    "Engine": "promlab.promql",
    "Result": "promlab.promql",
    "Session": "promlab.session",
    "close_sessions": "promlab.session",
    "query": "promlab.session",
    "query_range": "promlab.session",
    "MemoryStorage": "promlab.storage",
    "open_store": "promlab.storage",
    "backtest": "promlab.rules.backtest",
    "backtest_sweep": "promlab.rules.backtest",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])

__all__ = [
    "ConfigError",
    "Engine",
    "ExpositionError",
    "Labels",
    "MatchType",
    "Matcher",
    "MemoryStorage",
    "ParseError",
    "PromlabError",
    "QueryCanceled",
    "QueryError",
    "QueryTimeout",
    "Result",
    "Session",
    "StorageError",
    "TooManySamples",
    "__version__",
    "backtest",
    "backtest_sweep",
    "close_sessions",
    "dashboard",
    "explore",
    "load_ipython_extension",
    "open_store",
    "query",
    "query_range",
    "rule_lab",
    "targets_view",
    "unload_ipython_extension",
]
