"""PromQL: parser, evaluator, and the public ``query`` / ``query_range`` functions.

Both functions return tidy DataFrames (see :mod:`promlab.promql.results`) with the ``df.prom``
accessor registered.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from promlab.model import parse_duration, parse_time
from promlab.promql.engine import Engine, Result
from promlab.promql.results import PromAccessor

if TYPE_CHECKING:
    import pandas as pd

    from promlab.promql.parser.ast import Expr
    from promlab.storage.interface import Queryable

__all__ = ["Engine", "PromAccessor", "Result", "query", "query_range"]

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


def _open(data: Any) -> tuple[Queryable, Any]:
    """A Queryable for ``data`` and what to close afterwards (None when the caller owns it)."""
    if isinstance(data, str | os.PathLike):
        from promlab.storage import open_store

        store = open_store(os.fspath(data), readonly=True)
        return store, store
    if data is None or not hasattr(data, "querier"):
        raise TypeError("data must be a store directory or a Queryable (with .querier())")
    return data, None


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
        A store directory (opened read-only) or any Queryable.
    """
    queryable, owned = _open(data)
    try:
        res = _engine(engine).instant(queryable, expr, parse_time(time))
        return res.to_frame()
    finally:
        if owned is not None:
            owned.close()


def query_range(expr: str | Expr, start: Any, end: Any, step: Any, *, data: Any,
                engine: Engine | None = None) -> pd.DataFrame:
    """Evaluate a range query (``start`` to ``end`` inclusive every ``step``) as a DataFrame.

    ``step`` is a duration (``"60s"``, ``"1m"``, seconds as a number, or a timedelta).
    """
    queryable, owned = _open(data)
    try:
        res = _engine(engine).range(queryable, expr, parse_time(start), parse_time(end),
                                    parse_duration(step))
        return res.to_frame()
    finally:
        if owned is not None:
            owned.close()
