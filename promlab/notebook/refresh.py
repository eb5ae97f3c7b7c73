"""Background refresh for live widgets: one daemon thread per widget, all stoppable at once.

The extension stops every refresher on ``%unload_ext promlab`` and at interpreter exit
(kernel shutdown or restart), so no thread outlives the notebook that started it.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

__all__ = ["Refresher", "running", "stop_all"]

_LIVE: weakref.WeakSet[Refresher] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class Refresher:
    """Calls ``fn`` every ``interval_s`` seconds on a daemon thread until :meth:`stop`.

    An exception in ``fn`` goes to ``on_error`` (if given) and the refresher goes on.
    """

    def __init__(self, fn: Callable[[], None], interval_s: float, *, name: str = "promlab-refresh",
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        if interval_s <= 0:
            raise ValueError("the refresh interval must be positive")
        self.interval_s = interval_s
        self._fn = fn
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._fn()
            except Exception as e:  # a failed refresh shows on the widget, the loop goes on
                if self._on_error is not None:
                    self._on_error(e)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and wait for it (idempotent; not from inside ``fn``)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        with _LIVE_LOCK:
            _LIVE.discard(self)


def running() -> list[Refresher]:
    """The refreshers whose thread still runs."""
    with _LIVE_LOCK:
        return [r for r in _LIVE if r.alive]


def stop_all() -> None:
    """Stop every refresher."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for r in live:
        r.stop()
