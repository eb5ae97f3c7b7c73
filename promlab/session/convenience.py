"""``promlab.query(expr, data=...)``: one-line queries without holding a Session.

The only process-wide state promlab keeps: a few read-only Sessions, one per store directory
queried this way, kept open so that repeated queries reuse the decoded-data cache and see what
was written since (new blocks, new WAL records). A directory replaced by another one (new inode)
is reopened; at most :data:`MAX_OPEN_SESSIONS` stay open; all close at exit.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from promlab.session.core import Session
from promlab.storage.interface import Queryable

if TYPE_CHECKING:
    import pandas as pd

    from promlab.promql.engine import Engine
    from promlab.promql.parser.ast import Expr

__all__ = ["MAX_OPEN_SESSIONS", "close_sessions", "query", "query_range", "session_for"]

#: How many store directories stay open for ``data="path"`` queries (least recently used go).
MAX_OPEN_SESSIONS = 8


class _Sessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, tuple[tuple[int, int], Session]] = OrderedDict()

    def get(self, path: str | os.PathLike[str]) -> Session:
        key = os.path.realpath(os.fspath(path))
        try:
            st = os.stat(key)
            ident = (st.st_dev, st.st_ino)
        except OSError:
            ident = (-1, -1)
        with self._lock:
            found = self._open.get(key)
            if found is not None:
                if found[0] == ident and not found[1].closed:
                    self._open.move_to_end(key)
                    return found[1]
                del self._open[key]
                found[1].close()
            session = Session(key, read_only=True, progress=True)
            self._open[key] = (ident, session)
            while len(self._open) > MAX_OPEN_SESSIONS:
                _, (_, old) = self._open.popitem(last=False)
                old.close()
            return session

    def close_all(self) -> None:
        with self._lock:
            sessions = [s for _, s in self._open.values()]
            self._open.clear()
        for s in sessions:
            s.close()


_sessions = _Sessions()
atexit.register(_sessions.close_all)


def close_sessions() -> None:
    """Close the read-only sessions kept open by ``query(..., data="path")`` calls."""
    _sessions.close_all()


def session_for(data: Any, engine: Engine | None = None) -> Session:
    """The Session a convenience call runs on: ``data`` itself when it is a Session, the shared
    read-only Session of a directory, or a fresh Session over a store object."""
    if isinstance(data, Session):
        return data
    if isinstance(data, str | os.PathLike):
        session = _sessions.get(data)
        return session if engine is None else _with_engine(session, engine)
    if isinstance(data, Queryable):
        return Session(data, engine=engine)
    raise TypeError("data must be a Session, a store directory or a store (with .querier()), "
                    f"not {type(data).__name__}")


def _with_engine(session: Session, engine: Engine) -> Session:
    # A view on the same store with another engine (its limits); the store stays shared.
    view = Session(session.store, engine=engine)
    view.read_only = session.read_only
    return view


def query(expr: str | Expr, time: Any = None, *, data: Any, engine: Engine | None = None,
          ) -> pd.DataFrame:
    """Evaluate an instant query over ``data`` and return a DataFrame.

    Parameters
    ----------
    expr
        PromQL text (or a parsed expression).
    time
        Evaluation time: datetime, pd.Timestamp, unix seconds, RFC 3339 or ``"now-1h"``;
        default now.
    data
        A :class:`Session`, a store directory (opened read-only once and kept open, see
        :func:`close_sessions`) or any store object.
    engine
        Evaluate with this engine (its limits) instead of the session's.

    Examples
    --------
    >>> import promlab
    >>> store = promlab.MemoryStorage()
    >>> store.add_series(promlab.Labels({"__name__": "up"}), [0], [1.0])
    >>> promlab.query("up * 2", time=30, data=store)["value"].tolist()
    [2.0]
    """
    return session_for(data, engine).query(expr, time)


def query_range(expr: str | Expr, start: Any, end: Any, step: Any, *, data: Any,
                engine: Engine | None = None) -> pd.DataFrame:
    """Evaluate a range query (``start`` to ``end`` inclusive every ``step``) as a DataFrame.

    ``step`` is a duration (``"60s"``, ``"1m"``, seconds as a number, or a timedelta); ``data``
    and ``engine`` as for :func:`query`.
    """
    return session_for(data, engine).query_range(expr, start, end, step)
