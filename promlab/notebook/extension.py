"""``%load_ext promlab``: the notebook's Session and the magics over it.

The extension keeps one :class:`NotebookState` per IPython shell (on its magics object): the data
directory (``%promlab data DIR``, else ``$PROMLAB_DATA``, else ``./data``) and the Session over
it, opened on first use. ``%unload_ext promlab``, interpreter exit (kernel shutdown and restart)
and ``%promlab data`` close it, which stops its scraper; the widgets' refresh threads stop too.
"""

from __future__ import annotations

import atexit
from typing import Any

from promlab.notebook.state import NotebookState
from promlab.session import Session

__all__ = [
    "NotebookState",
    "current_state",
    "load_ipython_extension",
    "resolve_session",
    "unload_ipython_extension",
    "use_session",
]

MAGICS_NAME = "PromlabMagics"


def current_state(shell: Any = None) -> NotebookState | None:
    """The state of the loaded extension in ``shell`` (default: the running IPython), or None."""
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:  # pragma: no cover - IPython is a dependency
            return None
        shell = get_ipython()
    if shell is None:
        return None
    magics = shell.magics_manager.registry.get(MAGICS_NAME)
    return getattr(magics, "state", None)


def use_session(session: Any, shell: Any = None) -> None:
    """Make ``session`` (a Session, store or directory) the one ``%promql`` and the widgets use.

    Raises
    ------
    RuntimeError
        When the extension is not loaded.
    """
    state = current_state(shell)
    if state is None:
        raise RuntimeError("the promlab extension is not loaded: run %load_ext promlab")
    state.use(session)


def load_ipython_extension(shell: Any) -> None:
    """Register ``%promql``, ``%%promql`` and ``%promlab`` and PromQL completion in ``shell``."""
    from promlab.notebook.completion import promql_matcher
    from promlab.notebook.magics import PromlabMagics

    if current_state(shell) is not None:
        return
    state = NotebookState()
    magics = PromlabMagics(shell, state)
    shell.register_magics(magics)
    matcher = promql_matcher(lambda: state.session)
    magics.matcher = matcher
    completer = getattr(shell, "Completer", None)
    if completer is not None:
        completer.custom_matchers.append(matcher)
    atexit.register(state.close)
    magics.atexit = state.close


def unload_ipython_extension(shell: Any) -> None:
    """Stop everything the extension started and remove its magics and completer."""
    magics = shell.magics_manager.registry.get(MAGICS_NAME)
    if magics is None:
        return
    magics.state.close()
    atexit.unregister(magics.atexit)
    completer = getattr(shell, "Completer", None)
    if completer is not None and magics.matcher in completer.custom_matchers:
        completer.custom_matchers.remove(magics.matcher)
    for kind in ("line", "cell"):
        for name in ("promql", "promlab"):
            shell.magics_manager.magics[kind].pop(name, None)
    del shell.magics_manager.registry[MAGICS_NAME]


def resolve_session(session: Any = None) -> Session:
    """``session`` itself, a Session over it (a store or directory), or the extension's one.

    Raises
    ------
    RuntimeError
        When no session is given and the extension is not loaded.
    """
    if isinstance(session, Session):
        return session
    if session is not None:
        return Session(session)
    state = current_state()
    if state is None:
        raise RuntimeError("no session: pass one, or run %load_ext promlab first")
    return state.session
