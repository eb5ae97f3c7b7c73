"""A read-only store's exemplars: what the writer's exemplar WAL holds, re-read when it changed.

A notebook :class:`~promlab.session.Session` opens its store read-only beside a daemon
(``promlab scrape``, ``promlab serve --config``) writing the same directory. The writer keeps
its exemplars in memory and logs them in ``<store>/wal/exemplars.log``
(:mod:`promlab.storage.exwal`); the read-only store binds an :class:`ExemplarFollower` as its
exemplar storage (:func:`~promlab.storage.exemplars.exemplars_of`, what ``query_exemplars``
reads), which mirrors that log:

* on opening, it loads the log (its newest ``max_exemplars``, as a writer's replay does);
* before each :meth:`ExemplarFollower.select` it takes the log's fingerprint (inode, size and
  modification time: one ``stat``, as :class:`~promlab.storage.walwatch.WalWatch` does for the
  sample WAL; a file changed less than :data:`~promlab.storage.walwatch.WAL_RACY_NS` ago is not
  trusted) and reads the log again only when it changed;
* the writer only appends to the log or replaces it (a rewrite: temp file + rename, a new
  inode), and truncates at most a torn tail on opening. So while the inode is the same and the
  file no shorter, only the bytes after the last whole record read are new: they are read and
  appended (the same result as a replay of the whole log). Otherwise the log is read whole and
  replaces the contents.

The follower never writes the log. A record cut short at the end is one the writer has not
finished writing (or a crash's, which the writer truncates when it opens again): it is not read
yet, silently. Damaged bytes and undecodable records are skipped and logged as one warning per
change of the log (not per query). After :meth:`ExemplarFollower.close` the contents stay as last
read.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from promlab.model import Matcher
from promlab.storage.exemplars import ExemplarItem, ExemplarResult, ExemplarStore, bind_exemplars
from promlab.storage.exwal import FILE_NAME, decode
from promlab.storage.histwal import record_header, scan_records
from promlab.storage.walwatch import WAL_RACY_NS

__all__ = ["ExemplarFollower", "follow_exemplars"]

log = logging.getLogger("promlab.storage")

#: The fingerprint of a log that does not exist.
_ABSENT = (-1, -1, -1)


def _fingerprint(path: str) -> tuple[int, int, int] | None:
    """``(inode, size, mtime_ns)`` of the log; None when changed too recently to be trusted."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return _ABSENT
    except OSError:
        return None
    if st.st_mtime_ns >= time.time_ns() - WAL_RACY_NS:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class ExemplarFollower(ExemplarStore):
    """The exemplar storage of a read-only store: mirrors the exemplar log at ``path``.

    Parameters
    ----------
    path
        The writer's ``wal/exemplars.log``.
    max_exemplars
        Size of the buffer: the newest ``max_exemplars`` of the log are kept (0: none is read).

    Attributes
    ----------
    reads, full_reads
        How many times the log was read (from the last whole record on, or whole).

    Examples
    --------
    >>> import tempfile
    >>> from promlab.model import Labels
    >>> from promlab.storage import open_store
    >>> from promlab.storage.exemplars import exemplars_of
    >>> d = tempfile.mkdtemp()
    >>> writer, ro = open_store(d), open_store(d, readonly=True)
    >>> exemplars_of(writer).append(Labels({"__name__": "a_total"}), Labels({"trace_id": "x"}),
    ...                             1.0, 1000)
    'added'
    >>> [e.labels["trace_id"] for r in exemplars_of(ro).select(0, 2000, [[]]) for e in r.exemplars]
    ['x']
    >>> ro.close(); writer.close()
    """

    def __init__(self, path: str, max_exemplars: int) -> None:
        super().__init__(max_exemplars)
        self.path = path
        self.reads = 0
        self.full_reads = 0
        self._poll_lock = threading.Lock()
        self._seen: tuple[int, int, int] | None = None  # the fingerprint when last read
        self._inode = -1  # of the file last read
        self._end = 0  # offset after its last whole record
        #: that record's size and header (length, crc32): an inode reused by a rewrite is seen
        self._last: tuple[int, bytes] | None = None
        self._warned: tuple[int, int] | None = None  # (inode, end) of the last warning
        self._closed = False

    def poll(self) -> None:
        """Read what the log gained since the last read, if its fingerprint changed."""
        with self._poll_lock:
            if self._closed or not self.max_exemplars:
                return
            state = _fingerprint(self.path)  # before reading: a later change differs
            if state is not None and state == self._seen:
                return
            self._read()
            self._seen = state

    def _read(self) -> None:
        try:
            f = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            if self._inode != -1 or len(self):
                self.replace([])
            self._inode, self._end, self._last = -1, 0, None
            return
        with f:
            st = os.fstat(f.fileno())  # of the file read, not of an earlier stat
            last = self._last
            whole = last is None or st.st_ino != self._inode or st.st_size < self._end
            if last is not None and not whole:  # the last record read must still be there:
                f.seek(self._end - last[0])     # a rewrite may reuse a freed inode
                whole = f.read(len(last[1])) != last[1]
            base = 0 if whole else self._end
            f.seek(base)
            data = f.read()
        payloads, end, _, losses = scan_records(data, self.path, quiet=True)
        if payloads:
            head = record_header(payloads[-1])
            self._last = (len(head) + len(payloads[-1]), head)
        elif whole:
            self._last = None
        items: list[ExemplarItem] = []
        bad: list[str] = []
        for payload in payloads:
            try:
                items.extend(decode(payload))
            except ValueError as exc:
                bad.append(str(exc))
        if whole:
            self.replace(items)
            self.full_reads += 1
        else:
            self.append_many(items)
        self.reads += 1
        self._inode, self._end = st.st_ino, base + end
        if (losses.records or bad) and (st.st_ino, self._end) != self._warned:
            # once: damage before the last whole record is not read again; damage after it (a
            # damaged tail) is, from the same offset, at every change of the fingerprint
            self._warned = (st.st_ino, self._end)
            log.warning("%s (read-only): %d damaged stretch(es), %d bytes, and %d undecodable "
                        "record(s) skipped%s", self.path, losses.records, losses.bytes, len(bad),
                        f": {bad[0]}" if bad else "")

    def select(self, start_ms: int, end_ms: int, matcher_sets: Sequence[Sequence[Matcher]]
               ) -> list[ExemplarResult]:
        """:meth:`ExemplarStore.select` after :meth:`poll` (the log's news first)."""
        self.poll()
        return super().select(start_ms, end_ms, matcher_sets)

    def close(self) -> None:
        """Stop following the log (the contents stay as last read)."""
        with self._poll_lock:
            self._closed = True


def follow_exemplars(storage: object, wal_dir: str, *, max_exemplars: int) -> ExemplarFollower:
    """Bind an :class:`ExemplarFollower` of ``wal_dir``'s exemplar log as the exemplar storage
    of ``storage`` (a read-only store) and load the log."""
    follower = ExemplarFollower(os.path.join(wal_dir, FILE_NAME), max_exemplars)
    follower.poll()
    bind_exemplars(storage, follower)
    return follower
