"""Pausing the cyclic garbage collector around a big page's processing or commit.

A big target's first scrape creates hundreds of thousands of long-lived objects (parsed series,
relabeled :class:`~promlab.model.Labels`, the store's series entries). With the collector on,
every few thousand of them trigger a collection that walks all of them: 0.1-0.4 s pauses, each
holding the GIL, which stall the scrape event loop (issue 15 item 7). With it paused, the
objects pile up in the youngest generation instead, and the first collection after the pause
would walk them all at once; so when the work made many objects (``freeze=True``) they are
moved to the permanent generation with :func:`gc.freeze` (constant time) before the collector
resumes. The scrape manager freezes the same caches periodically anyway (``gc.freeze`` only
exempts objects from cycle detection; reference counting still frees them).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FreezeFlag", "paused_gc"]


class FreezeFlag:
    """Set :attr:`freeze` inside :func:`paused_gc` to freeze the objects made meanwhile."""

    __slots__ = ("freeze",)

    def __init__(self) -> None:
        self.freeze = False


@contextmanager
def paused_gc() -> Iterator[FreezeFlag]:
    """Disable the collector for the block (restoring the state found, as the exposition
    parser does: threads pausing concurrently each restore what they saw)."""
    flag = FreezeFlag()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield flag
    finally:
        if flag.freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()
