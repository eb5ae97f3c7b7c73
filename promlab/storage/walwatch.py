"""When a read-only store needs to poll its WAL again: a cheap fingerprint of the WAL's files.

A notebook beside a daemon queries a store the daemon writes; before each query the read-only
store would read what the writer logged since. :class:`WalWatch` answers whether anything can
have been logged: the WAL directory's modification time and each file's (name, inode, size,
modification time). File times are coarse, so a file or directory changed less than
:data:`WAL_RACY_NS` ago is not trusted (the fingerprint is ``None``: poll).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

__all__ = ["MAX_OPEN", "WAL_RACY_NS", "WalWatch"]

#: A WAL file or directory changed less than this long ago (ns) is polled whatever its stat says:
#: file times are coarse (a change in the same tick as the last look keeps the same time).
WAL_RACY_NS = 3_000_000_000
#: Most WAL files kept open to be checked by descriptor (see :class:`WalWatch`).
MAX_OPEN = 32


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
        # The directory's (inode, mtime) when listed, its names and a descriptor of each file
        # (-1: none, stat by path). Names only change with the directory's time, and a name
        # only points to another file with it: while it stands, ``fstat`` of a descriptor is
        # the ``stat`` of its path, at half the cost (a follower checks on every query).
        self._names: tuple[tuple[int, int], list[str], list[str], list[int]] | None = None

    def state(self) -> tuple[Any, ...] | None:
        """The WAL's fingerprint now; None when something changed within :data:`WAL_RACY_NS`
        (or vanished meanwhile): then it cannot be trusted."""
        racy = time.time_ns() - WAL_RACY_NS
        try:
            d = os.stat(self.wal_dir)
            if d.st_mtime_ns >= racy:
                return None
            if self._names is None or self._names[0] != (d.st_ino, d.st_mtime_ns):
                self._list((d.st_ino, d.st_mtime_ns))
            assert self._names is not None
            files = []
            for name, path, fd in zip(*self._names[1:], strict=True):
                st = os.fstat(fd) if fd >= 0 else os.stat(path)
                if st.st_mtime_ns >= racy:
                    return None
                files.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            return None
        return (d.st_ino, d.st_mtime_ns, *files)

    def _list(self, listed_at: tuple[int, int]) -> None:
        """List the directory (last modified at ``listed_at``) and open its files (at most
        :data:`MAX_OPEN` descriptors; others are stat'ed by path)."""
        self.close()
        names = sorted(os.listdir(self.wal_dir))
        paths = [os.path.join(self.wal_dir, n) for n in names]
        fds = [-1] * len(names)
        self._names = (listed_at, names, paths, fds)  # closed by close() whatever happens next
        for i, path in enumerate(paths[:MAX_OPEN]):
            with contextlib.suppress(OSError):  # (gone meanwhile: the stat by path says so)
                fds[i] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """Close the descriptors of the WAL's files (the next :meth:`state` lists anew)."""
        if self._names is not None:
            for fd in self._names[3]:
                if fd >= 0:
                    os.close(fd)
            self._names = None

    def __del__(self) -> None:  # a store dropped without close(): its descriptors too
        with contextlib.suppress(Exception):
            self.close()

    def changed(self, state: tuple[Any, ...] | None) -> bool:
        """Whether a poll is needed for ``state`` (untrusted, or not the one last polled)."""
        return state is None or state != self.seen
