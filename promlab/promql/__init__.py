"""PromQL: parser, evaluator, and the public ``query`` / ``query_range`` functions.

Both functions return tidy DataFrames (see :mod:`promlab.promql.results`) with the ``df.prom``
accessor registered.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from promlab.model import parse_duration, parse_time
from promlab.promql.engine import Engine, Result
from promlab.promql.results import PromAccessor
from promlab.storage.interface import Queryable

if TYPE_CHECKING:
    import pandas as pd

    from promlab.promql.parser.ast import Expr
    from promlab.storage.store import ParquetStore

__all__ = ["Engine", "PromAccessor", "Result", "close_stores", "query", "query_range"]

#: How many store directories stay open for ``data="path"`` queries (least recently used go).
MAX_OPEN_STORES = 8

_default_engine: Engine | None = None
_engine_lock = threading.Lock()


def _engine(engine: Engine | None) -> Engine:
    global _default_engine
    if engine is not None:
        return engine
    with _engine_lock:
        if _default_engine is None:
            _default_engine = Engine()
        return _default_engine


class _StoreRegistry:
    """One read-only store per directory, kept open between ``data="path"`` queries.

    A read-only store refreshes itself (new blocks, new WAL records) at every querier, and its
    decoded-block cache makes repeated queries warm. A directory replaced by another one (new
    inode) is reopened; at most ``MAX_OPEN_STORES`` stay open; all are closed at exit.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stores: OrderedDict[str, tuple[tuple[int, int], ParquetStore]] = OrderedDict()

    def get(self, path: str | os.PathLike[str]) -> ParquetStore:
        from promlab.storage import open_store

        key = os.path.realpath(os.fspath(path))
        try:
            st = os.stat(key)
            ident = (st.st_dev, st.st_ino)
        except OSError:
            ident = (-1, -1)
        with self._lock:
            found = self._stores.get(key)
            if found is not None:
                if found[0] == ident and not found[1].closed:
                    self._stores.move_to_end(key)
                    return found[1]
                del self._stores[key]
                found[1].close()
            store = open_store(key, readonly=True, progress=True)
            self._stores[key] = (ident, store)
            while len(self._stores) > MAX_OPEN_STORES:
                _, (_, old) = self._stores.popitem(last=False)
                old.close()
            return store

    def close_all(self) -> None:
        with self._lock:
            stores = [s for _, s in self._stores.values()]
            self._stores.clear()
        for s in stores:
            s.close()


_registry = _StoreRegistry()
atexit.register(_registry.close_all)


def close_stores() -> None:
    """Close the store directories kept open by ``query(..., data="path")`` calls."""
    _registry.close_all()


def _open(data: Any) -> Queryable:
    """A Queryable for ``data``: a directory's shared read-only store, or ``data`` itself."""
    if isinstance(data, str | os.PathLike):
        return _registry.get(data)
    if not isinstance(data, Queryable):
        raise TypeError("data must be a store directory or a Queryable (with .querier())")
    return data


def query(expr: str | Expr, time: Any = None, *, data: Any, engine: Engine | None = None,
          ) -> pd.DataFrame:
    """Evaluate an instant query and return its result as a DataFrame.

    Parameters
    ----------
    expr
        PromQL text (or a parsed expression).
    time
        Evaluation time: datetime, pd.Timestamp, unix seconds, RFC 3339 or ``"now-1h"``;
        default now.
    data
        A store directory or any Queryable. A directory is opened read-only once and kept
        open (see :func:`close_stores`): later queries reuse its decoded-data cache and see
        data written since (new blocks and WAL records).
    """
    res = _engine(engine).instant(_open(data), expr, parse_time(time))
    return res.to_frame()


def query_range(expr: str | Expr, start: Any, end: Any, step: Any, *, data: Any,
                engine: Engine | None = None) -> pd.DataFrame:
    """Evaluate a range query (``start`` to ``end`` inclusive every ``step``) as a DataFrame.

    ``step`` is a duration (``"60s"``, ``"1m"``, seconds as a number, or a timedelta).
    """
    res = _engine(engine).range(_open(data), expr, parse_time(start), parse_time(end),
                                parse_duration(step))
    return res.to_frame()
