"""A real IPython shell for tests, closed as IPython closes it at exit.

``InteractiveShell.clear_instance()`` alone leaves the shell's history thread running and its
SQLite history open: a long test run would gather one idle thread per shell.
"""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from contextlib import contextmanager

from IPython.core.interactiveshell import InteractiveShell

__all__ = ["close_shell", "ipython_shell"]


def close_shell(sh: InteractiveShell) -> None:
    """What IPython does for ``sh`` at exit (history session ended, its thread stopped), now;
    then the singleton is dropped so the next test gets a fresh shell."""
    sh.atexit_operations()
    atexit.unregister(sh.atexit_operations)
    InteractiveShell.clear_instance()


@contextmanager
def ipython_shell() -> Iterator[InteractiveShell]:
    """``InteractiveShell.instance()``, closed by :func:`close_shell` on leaving."""
    sh = InteractiveShell.instance()
    try:
        yield sh
    finally:
        close_shell(sh)
