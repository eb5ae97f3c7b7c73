"""Storage: the head + WAL + Parquet block store, and the in-memory store.

The interface and the in-memory store load with the package; the Parquet store (and pyarrow)
only when one of its names is first used, so code that needs only
:mod:`promlab.storage.interface` (the engine, the scraper) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from promlab.storage.interface import (
    Appender,
    AppendStats,
    Querier,
    Queryable,
    SelectHints,
    SeriesSet,
    Storage,
)
from promlab.storage.memory import MemoryStorage

if TYPE_CHECKING:
    from promlab.storage.inspect import StoreInfo, describe_store
    from promlab.storage.store import ParquetAppender, ParquetStore, open_store

# Loaded on first use (module ``__getattr__``): name -> the submodule defining it.
_LAZY = {
    "ParquetAppender": "promlab.storage.store",
    "ParquetStore": "promlab.storage.store",
    "open_store": "promlab.storage.store",
    "StoreInfo": "promlab.storage.inspect",
    "describe_store": "promlab.storage.inspect",
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
    "AppendStats",
    "Appender",
    "MemoryStorage",
    "ParquetAppender",
    "ParquetStore",
    "Querier",
    "Queryable",
    "SelectHints",
    "SeriesSet",
    "Storage",
    "StoreInfo",
    "describe_store",
    "open_store",
]
