"""The Session every front end wraps, and the one-line ``query`` functions on top of it.

>>> from promlab import MemoryStorage, Labels, Session
>>> s = Session(MemoryStorage())
>>> s.store.add_series(Labels({"__name__": "up", "job": "a"}), [0, 15_000], [1.0, 0.0])
>>> s.query("up", time=20)["value"].tolist()
[0.0]
>>> s.close()
"""

from promlab.session.convenience import close_sessions, query, query_range, session_for
from promlab.session.core import Session
from promlab.session.rules import RuleControl
from promlab.session.scraping import ScrapeControl

__all__ = ["RuleControl", "ScrapeControl", "Session", "close_sessions", "query", "query_range", "session_for"]
