"""When a read-only store needs to poll its WAL again: a cheap fingerprint of the WAL's files.

A notebook beside a daemon queries a store the daemon writes; before each query the read-only
store would read what the writer logged since. :class:`WalWatch` answers whether anything can
have been logged: the WAL directory's modification time and each file's (name, inode, size,
modification time). File times are coarse, so a file or directory changed less than
:data:`WAL_RACY_NS` ago is not trusted (the fingerprint is ``None``: poll).
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["WAL_RACY_NS", "WalWatch"]

#: A WAL file or directory changed less than this long ago (ns) is polled whatever its stat says:
#: file times are coarse (a change in the same tick as the last look keeps the same time).
WAL_RACY_NS = 3_000_000_000


class WalWatch:
    """The fingerprint of the WAL directory ``wal_dir`` (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> w = WalWatch(tempfile.mkdtemp())
    >>> w.state() is None  # just created: too recent to trust
    True
    """

    def __init__(self, wal_dir: str) -> None:
        self.wal_dir = wal_dir
        #: The fingerprint when the WAL was last polled (set by the store), or None.
        self.seen: tuple[Any, ...] | None = None
        self._names: tuple[int, list[str], list[str]] | None = None  # mtime, names, paths

    def state(self) -> tuple[Any, ...] | None:
        """The WAL's fingerprint now; None when something changed within :data:`WAL_RACY_NS`
        (or vanished meanwhile): then it cannot be trusted."""
        racy = time.time_ns() - WAL_RACY_NS
        try:
            d = os.stat(self.wal_dir)
            if d.st_mtime_ns >= racy:
                return None
            if self._names is None or self._names[0] != d.st_mtime_ns:
                # names only change with the directory's time
                names = sorted(os.listdir(self.wal_dir))
                self._names = (d.st_mtime_ns, names,
                               [os.path.join(self.wal_dir, n) for n in names])
            files = []
            for name, path in zip(self._names[1], self._names[2], strict=True):
                st = os.stat(path)
                if st.st_mtime_ns >= racy:
                    return None
                files.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            return None
        return (d.st_ino, d.st_mtime_ns, *files)

    def changed(self, state: tuple[Any, ...] | None) -> bool:
        """Whether a poll is needed for ``state`` (untrusted, or not the one last polled)."""
        return state is None or state != self.seen
