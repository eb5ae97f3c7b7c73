"""Storage: the head + WAL + Parquet block store, and the in-memory store."""

from promlab.storage.inspect import StoreInfo, describe_store
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
from promlab.storage.store import ParquetAppender, ParquetStore, open_store

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
