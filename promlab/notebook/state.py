"""The notebook's Session: opened lazily on a data directory, closed with the extension."""

from __future__ import annotations

import os
import threading
from typing import Any

from promlab.notebook.refresh import stop_all
from promlab.session import Session

__all__ = ["NotebookState"]


class NotebookState:
    """The notebook's Session, opened lazily on :attr:`data`.

    Parameters
    ----------
    data
        Store directory or store object; default ``$PROMLAB_DATA`` or ``"data"``.
    """

    def __init__(self, data: Any = None) -> None:
        self._lock = threading.RLock()
        self.data: Any = data if data is not None else os.environ.get("PROMLAB_DATA") or "data"
        self._session: Session | None = None
        self._owned = True

    @property
    def session(self) -> Session:
        """The Session (opened on first use; a closed one is reopened)."""
        with self._lock:
            if self._session is None or self._session.closed:
                self._session = Session(self.data)
                self._owned = True
            return self._session

    @property
    def opened(self) -> bool:
        return self._session is not None and not self._session.closed

    def use(self, data: Any) -> None:
        """Switch to ``data``: a directory (opened on next use), a store or a Session (used as
        it is, and not closed by this state)."""
        with self._lock:
            self.close_session()
            if isinstance(data, Session):
                self._session, self._owned, self.data = data, False, data.path or data.store
            else:
                self.data = os.fspath(data) if isinstance(data, str | os.PathLike) else data

    def close_session(self) -> None:
        with self._lock:
            s, self._session = self._session, None
            if s is not None and self._owned:
                s.close()
            elif s is not None:
                s.scrape.stop()  # a borrowed session keeps its store, but not our threads

    def close(self) -> None:
        """Stop widget refreshers, the scraper and close the session (idempotent)."""
        stop_all()
        self.close_session()
