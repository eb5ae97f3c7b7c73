"""The exemplar write-ahead log: ``<store>/wal/exemplars.log``.

Prometheus logs exemplars in its WAL and replays them at startup; a writable
:class:`~promlab.storage.store.ParquetStore` does the same with this log, the journal
(:class:`~promlab.storage.exemplars.ExemplarJournal`) of its exemplar storage
(:func:`~promlab.storage.exemplars.exemplars_of`). It is a file of its own beside the float
segments and the histogram log, with the histogram log's framing
(:mod:`promlab.storage.histwal`: ``<u32 length><u32 crc32><payload>``, one record per append
call, written and fsynced under the sample WAL's policy before the exemplars become visible).

A record's payload is JSON::

    {"s": [[name, value, ...], ...],                      # the series, flattened label pairs
     "e": [[series index, [name, value, ...], value, timestamp_ms, has_timestamp], ...]}

(values are JSON numbers, ``NaN`` and ``Infinity`` included, as Python's ``json`` writes them).

Replay (on opening) appends the records in order to the exemplar storage under its usual rules,
so it keeps the newest ``max_exemplars`` (its size). Damage is handled as in the histogram log:
a damaged record is skipped by resynchronising on the next good one and the log is rewritten
with what survived; a record cut short at the end (a crash in a write, never acknowledged) is
truncated; both are logged as warnings and counted in :attr:`ExemplarWal.losses`. Nothing here
touches the sample WALs, so exemplar damage never costs samples.

Truncation rule: Prometheus's checkpoint keeps an exemplar only while the head still covers its
time. promlab flushes its whole head when a store is closed, so the rule is stated against the
newest sample instead: at every head flush (automatic, explicit or at close) the log is
rewritten with the exemplars the exemplar storage holds whose timestamp is no older than the
head's newest sample time minus 1.5 × ``block_duration`` (the span a head reaches before an
automatic flush). Older exemplars stay in memory until the process ends but are not replayed.
Between flushes, once the log holds more than twice as many exemplars as the buffer (and over
:data:`MIN_REWRITE` in all), it is rewritten with the buffer's exemplars above the same floor,
so its size (and the replay's time) stays in proportion to ``max_exemplars``.

Readers: a read-only store never opens this log for writing (no repair, no truncation); its
exemplar storage (:class:`~promlab.storage.exfollow.ExemplarFollower`) mirrors it, read on
opening and again when its fingerprint changed, relying on the rules above: records are only
appended or the file replaced (rewrites go through a temp file and a rename), and only a torn
tail is ever cut (by the writer's open).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Sequence
from typing import Any

from promlab.model import Labels
from promlab.storage.exemplars import ExemplarItem, ExemplarStore, exemplars_of
from promlab.storage.histwal import HistogramWal, read_records
from promlab.storage.wal import WalLosses

__all__ = ["FILE_NAME", "MIN_REWRITE", "ExemplarWal", "decode", "encode", "open_exemplar_wal", "replay"]

log = logging.getLogger("promlab.storage")

FILE_NAME = "exemplars.log"
#: The log is never rewritten for its size below this many exemplars.
MIN_REWRITE = 10_000


def encode(items: Sequence[ExemplarItem]) -> bytes:
    """One record's payload for ``items`` (each series' labels written once)."""
    index: dict[Labels, int] = {}
    flat = itertools.chain.from_iterable
    rows = []
    for series, labels, value, ts_ms, has_ts in items:
        si = index.setdefault(series, len(index))
        rows.append([si, list(flat(labels.pairs)), float(value), int(ts_ms), bool(has_ts)])
    body = {"s": [list(flat(s.pairs)) for s in index], "e": rows}
    return json.dumps(body, separators=(",", ":")).encode()


def _labels(flat: list[Any]) -> Labels:
    if len(flat) % 2 or not all(isinstance(x, str) for x in flat):
        raise ValueError("bad label list")
    return Labels(list(zip(flat[0::2], flat[1::2], strict=True)))


def decode(payload: bytes) -> list[ExemplarItem]:
    """The items of one record; :class:`ValueError` if it is not one :func:`encode` wrote."""
    try:
        body = json.loads(payload)
        series = [_labels(s) for s in body["s"]]
        out: list[ExemplarItem] = []
        for si, flat, value, ts_ms, has_ts in body["e"]:
            out.append((series[si], _labels(flat), float(value), int(ts_ms), bool(has_ts)))
    except (KeyError, TypeError, IndexError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"bad exemplar WAL record: {exc}") from exc
    return out


class ExemplarWal:
    """The exemplar log of one store: an :class:`~promlab.storage.exemplars.ExemplarJournal`.

    Parameters
    ----------
    wal_dir
        The store's ``wal`` directory.
    fsync
        fsync every record (the store's ``wal_fsync``).

    Attributes
    ----------
    losses
        What damage cost when the log was opened (:class:`~promlab.storage.wal.WalLosses`).
    """

    def __init__(self, wal_dir: str, *, fsync: bool = True) -> None:
        self._log = HistogramWal(wal_dir, fsync=fsync, file_name=FILE_NAME)  # repairs on open
        self.path = self._log.path
        self.losses: WalLosses = self._log.losses
        self._attached: ExemplarStore | None = None
        #: exemplars in the log (as written; replay sets it to what the file held)
        self.logged = 0
        self.rewrites = 0

    def log(self, items: Sequence[ExemplarItem]) -> None:
        self._log.log(encode(items))
        self.logged += len(items)

    def rewrite(self, items: Sequence[ExemplarItem]) -> None:
        self._log.checkpoint(encode(items) if items else None)
        self.logged = len(items)
        self.rewrites += 1

    def oversized(self, buffered: int) -> bool:
        return self.logged > max(2 * buffered, MIN_REWRITE)

    def attach(self, store: ExemplarStore) -> None:
        """Become ``store``'s journal (detached again by :meth:`close`)."""
        store.attach_journal(self)
        self._attached = store

    def checkpoint(self, min_ts_ms: int) -> int:
        """Rewrite the log with the attached store's exemplars at or after ``min_ts_ms``;
        returns how many it kept."""
        return self._attached.compact_journal(min_ts_ms) if self._attached is not None else 0

    def close(self) -> None:
        if self._attached is not None:
            self._attached.attach_journal(None)  # later exemplars stay in memory only
            self._attached = None
        self._log.close()


def replay(path: str, store: ExemplarStore) -> tuple[int, int]:
    """Append the records of the log at ``path`` to ``store`` in order; returns how many
    exemplars the log held and how many were added. Undecodable records are skipped with a
    warning."""
    payloads, _, _, _ = read_records(path)
    held = added = 0
    for i, payload in enumerate(payloads):
        try:
            items = decode(payload)
        except ValueError as exc:
            log.warning("%s: record %d skipped: %s", path, i, exc)
            continue
        held += len(items)
        added += store.append_many(items)
    return held, added


def open_exemplar_wal(storage: object, wal_dir: str, *, fsync: bool,
                      max_exemplars: int) -> ExemplarWal | None:
    """Open (repairing) the exemplar log of ``storage`` in ``wal_dir``, replay it into the
    exemplar storage of ``storage`` (sized ``max_exemplars`` first) and attach it as its journal.

    None when ``storage`` can have no exemplar storage.
    """
    store = exemplars_of(storage)
    if store is None:
        return None
    store.resize(max_exemplars)
    wal = ExemplarWal(wal_dir, fsync=fsync)
    wal.logged, n = replay(wal.path, store)
    if n:
        log.info("%s: %d exemplars replayed", wal.path, n)
    wal.attach(store)
    return wal
