"""Block directories on the local filesystem: :class:`BlockFS`, the interface every remote
filesystem (:class:`~promlab.storage.objectfs.ObjectStoreFS`) overrides, and :data:`LOCAL`.

See :mod:`promlab.storage.objectstore` for where a store's blocks live.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from typing import Any

import pyarrow as pa

from promlab.storage.walwatch import WAL_RACY_NS

__all__ = ["LOCAL", "META_FILE", "BlockFS"]

#: The file that makes a block directory a block (written last, removed first).
META_FILE = "meta.json"


class BlockFS:
    """Block directories on the local filesystem (what every remote filesystem overrides)."""

    remote = False
    # Local listings by directory: ((inode, mtime_ns), names) (see listdir's ``cached``).
    _listed: dict[str, tuple[tuple[int, int], list[str]]]
    # Local file listings by directory: ((inode, mtime_ns), {name: size}) (list_files).
    _file_lists: dict[str, tuple[tuple[int, int], dict[str, int]]]

    def __init__(self) -> None:
        self._listed = {}
        self._file_lists = {}

    def staging_root(self, blocks_dir: str) -> str:
        """The local directory where blocks bound for ``blocks_dir`` are written first."""
        return blocks_dir

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    def read_bytes(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def size(self, path: str) -> int:
        return os.path.getsize(path)

    def open_input(self, path: str, size: int | None = None) -> Any:
        """An Arrow random-access file (``read_at``, ``read_buffer``) over ``path``."""
        return pa.OSFile(path, "rb")

    def prefetch(self, fh: Any, offset: int = 0, length: int = 0) -> None:
        """Ask the kernel to start reading ``length`` bytes (0: to the end) at ``offset`` of
        ``fh`` (of :meth:`open_input`) into the page cache in the background (best effort;
        remote filesystems do nothing)."""
        if self.remote or not hasattr(os, "posix_fadvise"):
            return
        with contextlib.suppress(OSError, AttributeError, ValueError, pa.ArrowException):
            os.posix_fadvise(fh.fileno(), offset, length, os.POSIX_FADV_WILLNEED)

    def listdir(self, path: str, *, cached: bool = False) -> list[str]:
        """Names in ``path`` (raises FileNotFoundError when there is no such directory).
        ``cached``: a listing a moment old will do (an object store's is reused for
        ``list_ttl_s``; a local directory's is reused while the directory's inode and
        modification time are those it was listed at, that time older than
        :data:`~promlab.storage.walwatch.WAL_RACY_NS`: file times are coarse)."""
        if not cached:
            return os.listdir(path)
        st = os.stat(path)  # before listing: a change made meanwhile shows the next time
        listed = self._listed.get(path)
        if listed is not None and listed[0] == (st.st_ino, st.st_mtime_ns):
            return list(listed[1])
        names = os.listdir(path)
        if st.st_mtime_ns < time.time_ns() - WAL_RACY_NS:
            if len(self._listed) >= 256:  # many stores in one process: start over
                self._listed.clear()
            self._listed[path] = ((st.st_ino, st.st_mtime_ns), list(names))
        return names

    def block_exists(self, path: str) -> bool:
        return os.path.isdir(path)

    def dir_size(self, path: str) -> int:
        return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))

    def remove_block(self, path: str) -> None:
        """Remove a block directory: out of sight first (rename), then deleted."""
        parent, name = os.path.split(path)
        trash = os.path.join(parent, f".deleted-{name}")
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def move(self, src: str, dst: str) -> None:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        os.rename(src, dst)

    def publish(self, local_dir: str, dest: str) -> None:
        """Make the finished block in ``local_dir`` the block ``dest``: here one rename (a
        remote filesystem uploads it and leaves ``local_dir`` for the caller to remove)."""
        os.rename(local_dir, dest)

    def write_text(self, path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)

    # --- single files (the native histogram files beside the blocks) --------------------------
    def list_files(self, path: str, *, cached: bool = False) -> dict[str, int]:
        """``{name: size}`` of the files directly in ``path`` (empty when there is none);
        ``cached`` as for :meth:`listdir` (files there are only created, replaced, renamed
        or removed, never written in place: each changes the directory's time)."""
        if cached and not os.access(path, os.F_OK):
            return {}  # (no exception raised and caught: a query checks on every call)
        try:
            st = os.stat(path) if cached else None
            if st is not None:
                listed = self._file_lists.get(path)
                if listed is not None and listed[0] == (st.st_ino, st.st_mtime_ns):
                    return dict(listed[1])
            with os.scandir(path) as it:
                files = {e.name: e.stat().st_size for e in it if e.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            return {}
        if st is not None and st.st_mtime_ns < time.time_ns() - WAL_RACY_NS:
            if len(self._file_lists) >= 256:  # many stores in one process: start over
                self._file_lists.clear()
            self._file_lists[path] = ((st.st_ino, st.st_mtime_ns), dict(files))
        return files

    def put(self, local_path: str, path: str) -> None:
        """Make the local file ``local_path`` the file ``path`` (here: a rename)."""
        if os.path.abspath(local_path) != os.path.abspath(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.replace(local_path, path)

    def remove(self, path: str) -> None:
        """Delete the file ``path`` (gone already is fine)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


#: The local filesystem.
LOCAL = BlockFS()
