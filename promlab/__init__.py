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
from promlab.promql import Engine, Result
from promlab.session import Session, close_sessions, query, query_range
from promlab.storage import MemoryStorage, open_store

__version__ = "0.1.0"

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
    "close_sessions",
    "open_store",
    "query",
    "query_range",
]
