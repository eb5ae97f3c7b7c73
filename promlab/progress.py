"""Progress bars for slow user-facing actions (``tqdm.auto``: text in a terminal, a widget in Jupyter).

Every bar appears only after :data:`DELAY` seconds (quick actions print nothing), writes to
stderr (machine-readable stdout such as ``promlab query --format json`` stays clean) and is
removed when done (``leave=False``), so printed tables stay readable.

Library functions take ``progress: bool``; interactive entry points (the CLI, notebooks) pass
True. :data:`DEFAULT` is what a library call with ``progress=None`` uses: False, unless an entry
point that cannot reach the call directly (``promlab scrape``) switched it on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

__all__ = ["DEFAULT", "DELAY", "bar", "defaulting", "enabled", "iterate", "sleep", "write"]

T = TypeVar("T")

#: Seconds before a bar shows up (tests set 0 to force output).
DELAY = 1.0
#: The process-wide default for ``progress=None``.
DEFAULT = False


def enabled(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument (None: the process default :data:`DEFAULT`)."""
    return DEFAULT if progress is None else bool(progress)


def bar(progress: bool | None, *, total: float | None = None, desc: str = "", unit: str = "it",
        **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar on stderr, disabled unless ``progress`` resolves to True.

    Parameters
    ----------
    progress
        Show it (None: :data:`DEFAULT`).
    total, desc, unit
        As for ``tqdm``.
    kwargs
        Further ``tqdm`` options (``unit_scale``, ``leave``, ...).

    Examples
    --------
    >>> with bar(False, total=3, desc="demo") as b:
    ...     _ = b.update(3)
    """
    from tqdm.auto import tqdm

    opts: dict[str, Any] = {"delay": DELAY, "file": sys.stderr, "leave": False,
                            "dynamic_ncols": True}
    opts.update(kwargs)
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled(progress), **opts)


def iterate(progress: bool | None, items: Iterable[T], *, total: int | None = None, desc: str = "",
            unit: str = "it", **kwargs: Any) -> Iterator[T]:
    """Iterate ``items`` with a bar (see :func:`bar`); a plain iterator when disabled.

    Examples
    --------
    >>> list(iterate(False, [1, 2], desc="demo"))
    [1, 2]
    """
    if not enabled(progress):
        yield from items
        return
    if total is None and isinstance(items, Sized):
        total = len(items)
    with bar(True, total=total, desc=desc, unit=unit, **kwargs) as b:
        for item in items:
            yield item
            b.update(1)


@contextlib.contextmanager
def defaulting(value: bool) -> Iterator[None]:
    """Set :data:`DEFAULT` for the duration of a ``with`` block (an entry point's whole run)."""
    global DEFAULT
    old, DEFAULT = DEFAULT, bool(value)
    try:
        yield
    finally:
        DEFAULT = old


def sleep(progress: bool | None, seconds: float, *, desc: str = "waiting") -> None:
    """``time.sleep(seconds)`` with a bar of the elapsed seconds (a measurement window).

    Examples
    --------
    >>> sleep(False, 0.01)
    """
    if not enabled(progress):
        time.sleep(seconds)
        return
    end = time.monotonic() + seconds
    with bar(True, total=round(seconds, 1), desc=desc, unit="s",
             bar_format="{desc}: {bar} {n:.0f}/{total:.0f} s") as b:
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(1.0, left))
            b.update(round(min(seconds, seconds - max(0.0, end - time.monotonic())), 1) - b.n)


def write(message: str) -> None:
    """Print ``message`` to stdout without garbling a bar shown on stderr."""
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()
