"""The write-ahead log: numbered segment files of CRC-checked records, plus checkpoints.

File layout (``<dir>/wal/``)::

    00000003            segment: MAGIC then records, appended by the writer
    checkpoint.00000003 the head's state when segment 3 was started (series + samples)

Records and their framing are in :mod:`promlab.storage.walrec`. Replay reads the newest
checkpoint, then every segment numbered at or after it, in order.

Damage costs only what it touches:

* A damaged record (flipped byte, bad length, bad CRC) is skipped: reading resynchronises at the
  next record that verifies. A damaged file header (magic) is skipped the same way.
* A damaged series record loses the samples of its series only; samples of other series stay.
* The writer keeps one checkpoint generation back: checkpoint ``N`` is written, and only files
  older than the previous checkpoint ``K`` are deleted. If checkpoint ``N`` is damaged, replay
  reads checkpoint ``K`` and segments ``K .. N-1`` (which hold all of ``N``'s contents) before it.
  Without a previous checkpoint, what the damaged one held beyond the blocks is lost.
* Every loss is logged as a warning and counted in :attr:`WalFollower.losses` (records,
  samples, series, bytes, damaged checkpoints), for the writer and read-only followers alike.
* The writer's replay (``repair=True``) truncates an unreadable tail (a record cut short by a
  crash is the common case: it was never acknowledged, and is counted apart as ``torn_bytes``);
  after any other damage the store writes a fresh checkpoint, so later opens no longer depend
  on the damaged files.

A read-only follower stops at a record cut short at the end of the newest segment (the writer may
be writing it) and retries at the next :meth:`WalFollower.poll`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from promlab.errors import StorageError
from promlab.model.arrays import unique
from promlab.storage.walrec import (
    MAGIC,
    MAGIC_V1,
    Damage,
    Record,
    SamplesRecord,
    Scan,
    SeriesRecord,
    decode,
    encode_checkpoint,
    encode_samples,
    encode_series,
    scan,
    scan_v1,
)

__all__ = ["MAGIC", "SamplesRecord", "SeriesRecord", "WalFollower", "WalLosses", "WalWriter",
           "decode", "encode_checkpoint", "encode_samples", "encode_series"]

log = logging.getLogger("promlab.storage")

_CKPT = "checkpoint."


@dataclass(slots=True)
class WalLosses:
    """What WAL damage cost, as counted by a :class:`WalFollower`.

    Attributes
    ----------
    records
        Records that could not be read (and were not recovered from an earlier checkpoint):
        an estimate, the sync markers found in each damaged stretch (at least 1 per stretch),
        so a wiped span of several records counts low and junk that imitates markers high.
    samples
        Samples known lost: those in unreadable records whose size the surviving header bytes
        tell, and those of series whose series record was lost. A lower bound when a record's
        header was damaged too.
    series
        Series definitions lost (from unreadable series records).
    bytes
        Bytes skipped as unreadable.
    checkpoints
        Damaged checkpoints (whether or not their contents were recovered).
    torn_bytes
        Bytes of a record cut short at the end of the newest segment by a crash: a commit that
        was never acknowledged, so not a loss of acknowledged data (counted apart).
    """

    records: int = 0
    samples: int = 0
    series: int = 0
    bytes: int = 0
    checkpoints: int = 0
    torn_bytes: int = 0

    def __bool__(self) -> bool:
        return bool(self.records or self.samples or self.series or self.bytes or self.checkpoints)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _listing(wal_dir: str) -> tuple[list[int], list[int]]:
    """Sorted segment numbers and checkpoint numbers present in ``wal_dir``."""
    segs, ckpts = [], []
    if not os.path.isdir(wal_dir):
        return [], []
    for name in os.listdir(wal_dir):
        if name.isdigit():
            segs.append(int(name))
        elif name.startswith(_CKPT) and name[len(_CKPT):].isdigit():
            ckpts.append(int(name[len(_CKPT):]))
    return sorted(segs), sorted(ckpts)


def _seg_path(wal_dir: str, n: int) -> str:
    return os.path.join(wal_dir, f"{n:08d}")


def _ckpt_path(wal_dir: str, n: int) -> str:
    return os.path.join(wal_dir, f"{_CKPT}{n:08d}")


def fsync_path(path: str) -> None:
    """fsync a file or directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _scan_file(data: bytes) -> tuple[int, Scan]:
    """The format and scan of a whole file's bytes (header included).

    A damaged header is a damaged stretch of no records; the file is then read as format 2,
    or as format 1 if only that finds records.
    """
    head = data[:len(MAGIC)]
    if head == MAGIC:
        return 2, scan(data, len(MAGIC))
    if head == MAGIC_V1:
        return 1, scan_v1(data, len(MAGIC))
    bad = Damage(0, min(len(data), len(MAGIC)), records=0)
    sc = scan(data, len(MAGIC))
    fmt = 2
    if not sc.records:
        old = scan_v1(data, len(MAGIC))
        if old.records:
            fmt, sc = 1, old
    sc.damage.insert(0, bad)
    return fmt, sc


def _whole(d: Damage) -> Damage:
    """``d`` as damage of a file that was complete (so not a write cut short)."""
    return Damage(d.start, d.end, d.records, d.samples, d.series, d.series_records)


class _KnownSeries:
    """The series ids defined so far (since the last reset), to find samples left without one."""

    def __init__(self) -> None:
        self._parts: list[npt.NDArray[np.int64]] = []
        self._sorted = np.zeros(0, np.int64)

    def add(self, rec: SeriesRecord) -> None:
        self._parts.append(np.fromiter((sid for sid, _ in rec.series), np.int64, len(rec.series)))

    def contains(self, sids: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        if self._parts:
            self._sorted = unique(np.concatenate([self._sorted, *self._parts]))
            self._parts = []
        return np.isin(sids, self._sorted)


class WalFollower:
    """Reads the WAL from the newest checkpoint on, incrementally.

    Parameters
    ----------
    wal_dir
        The ``wal`` directory.
    repair
        True for the writer's replay: an unreadable tail is truncated away. False for a
        read-only follower: reading stops at a record cut short at the end of the newest
        segment and resumes there on the next :meth:`poll`.

    Attributes
    ----------
    losses
        What damage cost so far (:class:`WalLosses`); each damaged stretch is counted once.
    needs_checkpoint
        Set by a repairing replay that met damage other than a torn tail: the writer should
        checkpoint its head so that later opens no longer read the damaged files.
    """

    def __init__(self, wal_dir: str, *, repair: bool = False) -> None:
        self.wal_dir = wal_dir
        self.repair = repair
        self.losses = WalLosses()
        self.needs_checkpoint = False
        self._ckpt: int | None = None
        self._seg: int | None = None
        self._off = 0
        self._fmt = 2
        self._counted: set[tuple[str, int]] = set()
        self._known = _KnownSeries()
        self._check_unknown = False

    def poll(self, on_read: Callable[[int], object] | None = None) -> tuple[bool, list[Record]]:
        """New records since the last poll; ``reset`` True means: drop state, apply from scratch.

        ``on_read(nbytes)`` is called after each checkpoint or segment read (a progress bar's
        ``update``).
        """
        for _ in range(10):
            try:
                reset, out = self._poll(on_read)
            except FileNotFoundError:
                # The writer checkpointed and removed a file under us: start over.
                self._seg = None
                continue
            return reset, self._drop_orphans(out)
        raise StorageError(f"{self.wal_dir}: WAL keeps changing while being read")

    # --- counting ---------------------------------------------------------------------------
    def _count(self, path: str, base: int, damage: list[Damage], *, checkpoint: bool = False,
               covered: bool = False) -> None:
        """Count and log damaged stretches of ``path`` (offsets relative to ``base``), once each."""
        name = os.path.basename(path)
        new = [d for d in damage if (name, base + d.start) not in self._counted]
        if not new:
            return
        self._counted.update((name, base + d.start) for d in new)
        torn = [d for d in new if d.torn]
        bad = [d for d in new if not d.torn]
        lost = self.losses
        if torn:
            nbytes = sum(d.nbytes for d in torn)
            lost.torn_bytes += nbytes
            log.warning("WAL %s: a record cut short at byte %d (%d bytes; a commit interrupted by a "
                        "crash, never acknowledged)%s", path, base + torn[0].start, nbytes,
                        ": truncated" if self.repair else "")
        if not bad:
            return
        if checkpoint:
            lost.checkpoints += 1
        nbytes = sum(d.nbytes for d in bad)
        if covered:
            log.warning("WAL checkpoint %s is damaged (%d bytes unreadable at byte %d); its contents "
                        "were recovered from the previous checkpoint and segments, nothing lost",
                        path, nbytes, base + bad[0].start)
            return
        recs = sum(d.records for d in bad)
        samples = sum(d.samples for d in bad)
        series = sum(d.series for d in bad)
        lost.records += recs
        lost.samples += samples
        lost.series += series
        lost.bytes += nbytes
        self._check_unknown = True
        if self.repair:
            self.needs_checkpoint = True
        log.warning("WAL %s: %d damaged stretch(es) from byte %d skipped: %d record(s), %d bytes, "
                    "%s samples and %d series lost%s", path, len(bad), base + bad[0].start, recs,
                    nbytes, samples if samples else "an unknown number of", series,
                    " (no earlier checkpoint: only the blocks hold what it covered)"
                    if checkpoint else "")

    def _drop_orphans(self, out: list[Record]) -> list[Record]:
        """Count (and drop) samples of series whose series record was lost."""
        res: list[Record] = []
        orphans = 0
        for rec in out:
            if isinstance(rec, SeriesRecord):
                self._known.add(rec)
            elif self._check_unknown:
                ok = self._known.contains(rec.sids)
                if not ok.all():
                    orphans += int((~ok).sum())
                    rec = SamplesRecord(rec.sids[ok], rec.ts_ms[ok], rec.values[ok])
            res.append(rec)
        if orphans:
            self.losses.samples += orphans
            log.warning("WAL: %d samples of series whose series record was lost dropped", orphans)
        return res

    # --- reading ----------------------------------------------------------------------------
    def _read_whole(self, path: str, on_read: Callable[[int], object] | None, *,
                    checkpoint: bool = False) -> tuple[list[Record], list[Damage]]:
        with open(path, "rb") as f:
            data = f.read()
        if on_read is not None:
            on_read(len(data))
        if not data:  # a checkpoint is renamed into place whole: empty means damaged
            return [], [Damage(0, 0, records=0)] if checkpoint else []
        _, sc = _scan_file(data)
        return sc.records, sc.damage + ([sc.tail] if sc.tail is not None else [])

    def _read_checkpoints(self, segs: list[int], ckpts: list[int],
                          on_read: Callable[[int], object] | None) -> list[Record]:
        """The newest checkpoint's records; if it is damaged, the previous generation's first."""
        latest = ckpts[-1]
        path = _ckpt_path(self.wal_dir, latest)
        recs, damage = self._read_whole(path, on_read, checkpoint=True)
        damage = [_whole(d) for d in damage]  # written whole: nothing in it is "torn"
        if not damage:
            return recs
        if len(ckpts) < 2:
            self._count(path, 0, damage, checkpoint=True)
            return recs
        prev = ckpts[-2]
        older: list[Record] = []
        chain_ok = True
        for p in [_ckpt_path(self.wal_dir, prev),
                  *(_seg_path(self.wal_dir, s) for s in segs if prev <= s < latest)]:
            r, d = self._read_whole(p, on_read, checkpoint=p.endswith(f"{_CKPT}{prev:08d}"))
            older.extend(r)
            if d:
                chain_ok = False
                self._count(p, 0, [_whole(x) for x in d])
        self._count(path, 0, damage, checkpoint=True, covered=chain_ok)
        if self.repair:
            self.needs_checkpoint = True
        return older + recs

    def _poll(self, on_read: Callable[[int], object] | None) -> tuple[bool, list[Record]]:
        segs, ckpts = _listing(self.wal_dir)
        latest = ckpts[-1] if ckpts else None
        reset = self._seg is None or latest != self._ckpt
        out: list[Record] = []
        if reset:
            self._ckpt = latest
            self._known = _KnownSeries()
            self._check_unknown = False
            if latest is not None:
                out.extend(self._read_checkpoints(segs, ckpts, on_read))
            self._seg = latest if latest is not None else (segs[0] if segs else 0)
            self._off = 0
        assert self._seg is not None
        todo = [s for s in segs if s >= self._seg]
        for i, s in enumerate(todo):
            if s != self._seg:
                self._seg, self._off = s, 0
            is_last = i == len(todo) - 1
            path = _seg_path(self.wal_dir, s)
            with open(path, "rb") as f:
                f.seek(self._off)
                data = f.read()
            if on_read is not None:
                on_read(len(data))
            if self._off == 0:
                if len(data) < len(MAGIC) and (MAGIC.startswith(data) or MAGIC_V1.startswith(data)):
                    # Empty, or its header being written (or cut short by a crash): no records yet.
                    if is_last and not self.repair:
                        break
                    if data:
                        self._tail(path, Damage(0, len(data), records=0, torn=True), is_last)
                    continue
                self._fmt, sc = _scan_file(data)
            else:
                sc = scan(data) if self._fmt == 2 else scan_v1(data)
            out.extend(sc.records)
            self._count(path, self._off, sc.damage)
            if sc.tail is not None:
                if is_last and not self.repair and sc.tail.torn:
                    self._off += sc.end
                    break  # possibly a record still being written
                self._tail(path, sc.tail, is_last)
                self._off += len(data) if not self.repair else sc.tail.start
            else:
                self._off += sc.end
        return reset, out

    def _tail(self, path: str, tail: Damage, is_last: bool) -> None:
        """An unreadable end of segment ``path`` (``tail`` relative to the current offset)."""
        start = self._off + tail.start
        if not is_last:
            tail = _whole(tail)  # only the newest segment can end in a write cut short
        self._count(path, self._off, [tail])
        if self.repair:
            with open(path, "r+b") as f:
                f.truncate(start)
                os.fsync(f.fileno())


class WalWriter:
    """Appends records to numbered segments; :meth:`checkpoint` compacts the log.

    Parameters
    ----------
    wal_dir
        The ``wal`` directory (created if missing).
    start_segment
        Number of the first segment to write (one past any existing one).
    fsync
        Whether :meth:`log` fsyncs (durability per commit) — False trades safety for speed.
    segment_bytes
        Rotate to a new segment once the current one is this big.
    """

    def __init__(self, wal_dir: str, *, start_segment: int, fsync: bool = True,
                 segment_bytes: int = 64 << 20) -> None:
        self.wal_dir = wal_dir
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        os.makedirs(wal_dir, exist_ok=True)
        self._fd = -1
        self._size = 0
        self.segment = start_segment - 1
        self._open_next()

    @staticmethod
    def next_segment_number(wal_dir: str) -> int:
        if not os.path.isdir(wal_dir):
            return 0
        segs, ckpts = _listing(wal_dir)
        return max([-1, *segs, *ckpts]) + 1

    def _open_next(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self.segment += 1
        path = _seg_path(self.wal_dir, self.segment)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, MAGIC)
        self._size = len(MAGIC)
        if self.fsync:
            os.fsync(self._fd)
            fsync_path(self.wal_dir)

    def log(self, *records: bytes) -> None:
        """Write encoded records in one write call and (per policy) fsync."""
        if self._fd < 0:
            raise StorageError("WAL is closed")
        data = records[0] if len(records) == 1 else b"".join(records)
        if not data:
            return
        if self._size > len(MAGIC) and self._size + len(data) > self.segment_bytes:
            self._open_next()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)
        if self.fsync:
            os.fsync(self._fd)

    def checkpoint(self, *records: bytes) -> None:
        """Start a new segment ``N``, write the head's state as checkpoint ``N``, drop old files.

        ``records`` must describe everything the head still holds (its series and samples;
        :func:`~promlab.storage.walrec.encode_checkpoint` makes them). The previous checkpoint
        ``K`` and segments ``K .. N-1`` are kept (they rebuild ``N`` should it be damaged);
        older files are deleted.
        """
        self._open_next()
        n = self.segment
        final = _ckpt_path(self.wal_dir, n)
        tmp = final + ".tmp"
        with open(tmp, "wb") as f:
            f.write(MAGIC)
            for r in records:
                f.write(r)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_path(self.wal_dir)
        segs, ckpts = _listing(self.wal_dir)
        floor = max((c for c in ckpts if c < n), default=n)
        for s in segs:
            if s < floor:
                os.unlink(_seg_path(self.wal_dir, s))
        for c in ckpts:
            if c < floor:
                os.unlink(_ckpt_path(self.wal_dir, c))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
