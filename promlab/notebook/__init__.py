"""The notebook front end: ``%load_ext promlab``, the magics, and the widgets.

Thin adapters over a :class:`~promlab.Session`; the logic they show lives in library functions
that Python code can call too (:mod:`promlab.plotting`, :mod:`promlab.notebook.explain`,
:mod:`promlab.notebook.panels`).
"""

from __future__ import annotations

from promlab.notebook.extension import (
    NotebookState,
    current_state,
    load_ipython_extension,
    resolve_session,
    unload_ipython_extension,
    use_session,
)

__all__ = [
    "NotebookState",
    "current_state",
    "load_ipython_extension",
    "resolve_session",
    "unload_ipython_extension",
    "use_session",
]

