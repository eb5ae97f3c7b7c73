"""Storage: the head + WAL + Parquet block store, and the in-memory store."""

from promlab.storage.interface import (
    AppendStats,
    Appender,
    Querier,
    Queryable,
    SelectHints,
    SeriesSet,
    Storage,
)
from promlab.storage.memory import MemoryStorage

__all__ = [
    "AppendStats",
    "Appender",
    "MemoryStorage",
    "Querier",
    "Queryable",
    "SelectHints",
    "SeriesSet",
    "Storage",
]
