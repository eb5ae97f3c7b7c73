"""A read-only store polls its WAL only when the WAL's files changed (store.ParquetStore)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store
from promlab.storage.walwatch import WAL_RACY_NS

ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]
T0 = 1_700_000_000_000


def _age(wal_dir: str, seconds: float) -> None:
    """Set the WAL directory's and files' times ``seconds`` into the past."""
    then = time.time() - seconds
    for name in os.listdir(wal_dir):
        os.utime(os.path.join(wal_dir, name), (then, then))
    os.utime(wal_dir, (then, then))


@pytest.mark.parametrize("age_after_write", [False, True], ids=["fresh-times", "old-times"])
def test_followed_writes_are_seen_whatever_the_file_times(tmp_path: os.PathLike[str],
                                                          age_after_write: bool) -> None:
    st = open_store(tmp_path)
    app = st.appender()
    app.append(Labels({"__name__": "up"}), T0, 1.0)
    app.commit()
    ro = open_store(tmp_path, readonly=True)
    wal_dir = os.path.join(os.fspath(tmp_path), "wal")
    _age(wal_dir, 2 * WAL_RACY_NS / 1e9)
    assert ro.querier(0, 2**62).select(ALL).values.tolist() == [1.0]
    assert ro.querier(0, 2**62).select(ALL).values.tolist() == [1.0]  # unchanged: no poll
    app.append(Labels({"__name__": "up"}), T0 + 1000, 2.0)
    app.commit()
    if age_after_write:  # the sizes still tell
        _age(wal_dir, 2 * WAL_RACY_NS / 1e9)
    assert ro.querier(0, 2**62).select(ALL).values.tolist() == [1.0, 2.0]
    ro.close()
    st.close()


def test_unchanged_old_wal_is_not_read_again(tmp_path: os.PathLike[str]) -> None:
    st = open_store(tmp_path)
    app = st.appender()
    app.append(Labels({"__name__": "up"}), T0, 1.0)
    app.commit()
    st.close()
    ro = open_store(tmp_path, readonly=True)
    wal_dir = os.path.join(os.fspath(tmp_path), "wal")
    _age(wal_dir, 2 * WAL_RACY_NS / 1e9)
    ro.querier(0, 2**62).close()
    seen = ro._wal_watch.seen
    assert seen is not None
    ro.querier(0, 2**62).close()
    assert ro._wal_watch.seen is seen  # the same state object: no poll happened
    ro.close()


def test_fingerprint_by_descriptor_equals_stat_by_path(tmp_path: os.PathLike[str]) -> None:
    # The watch checks the WAL's files through descriptors kept while the directory is
    # unchanged: its fingerprint is always what stat by path gives, through appends in place,
    # files replaced by rename, added and removed (each relists), and it closes them.
    from promlab.storage.walwatch import WalWatch

    wal_dir = os.path.join(os.fspath(tmp_path), "wal")
    os.mkdir(wal_dir)

    def write(name: str, data: bytes, mode: str = "wb") -> None:
        with open(os.path.join(wal_dir, name), mode) as f:
            f.write(data)

    write("a", b"x")
    write("b", b"x")

    def by_path() -> tuple[object, ...]:
        d = os.stat(wal_dir)
        files = [(n, (s := os.stat(os.path.join(wal_dir, n))).st_ino, s.st_size, s.st_mtime_ns)
                 for n in sorted(os.listdir(wal_dir))]
        return (d.st_ino, d.st_mtime_ns, *files)

    w = WalWatch(wal_dir)
    assert w.state() is None  # just written: too recent to trust
    def replace_b() -> None:
        write("new", b"yy")
        os.replace(os.path.join(wal_dir, "new"), os.path.join(wal_dir, "b"))

    changes: list[Callable[[], None]] = [
        lambda: None,
        lambda: write("a", b"more", "ab"),  # in place
        replace_b,
        lambda: write("c", b"zzz"),
        lambda: os.unlink(os.path.join(wal_dir, "a")),
    ]
    for change in changes:
        change()
        _age(wal_dir, 2 * WAL_RACY_NS / 1e9)
        assert w.state() == by_path()
        assert w.state() == by_path()  # again, through the same descriptors
    assert w._names is not None
    fds = [fd for fd in w._names[3] if fd >= 0]
    assert fds
    w.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
