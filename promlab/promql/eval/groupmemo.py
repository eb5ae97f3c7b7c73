"""Grouping of a whole list of series, remembered by the identity of its label sets.

Warm queries hand the engine the very same :class:`~promlab.model.Labels` objects in the same
order again (the store keeps its series' label sets), and an aggregation or a vector matching
then groups them the same way every time. :func:`.values.group_labels` already finds each
set's key through :mod:`promlab.promql.labelmemo` (a dict probe per series), but still takes
several Python passes over the series; here the whole answer (group id per series and the
groups' label sets) is kept under the tuple of the inputs' ``id()`` s and the grouping, so a
repeat costs one pass to build that tuple and one dict probe.

Each entry keeps its input label sets alive, so no ``id`` of the key can be reused by another
object while the entry exists: a hit is the very same objects, in the same order. Entries are
evicted least recently used first, bounded by :data:`MAX_SERIES` series in all. The answers'
id arrays are read-only (they are shared by every caller that gets them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from promlab.model import Labels
from promlab.promql.labelmemo import intern
from promlab.promql.values import I64, group_labels

__all__ = ["MAX_SERIES", "MIN_SERIES", "clear", "grouped", "size"]

#: Series all entries hold together before the least recently used ones are dropped.
MAX_SERIES = 1 << 20
#: Shorter lists are grouped directly (remembering them would not pay).
MIN_SERIES = 32

_Key = tuple[bool, frozenset[str], tuple[int, ...]]
_entries: OrderedDict[_Key, tuple[Sequence[Labels], I64, list[Labels]]] = OrderedDict()
_held = 0
_lock = threading.Lock()


def size() -> int:
    """Series the remembered groupings hold together (bounded by :data:`MAX_SERIES`)."""
    return _held


def clear() -> None:
    """Forget every remembered grouping (as a fresh process starts)."""
    global _held
    with _lock:
        _entries.clear()
        _held = 0


def grouped(labels: Sequence[Labels], names: Sequence[str], *, without: bool,
            ) -> tuple[I64, list[Labels]]:
    """:func:`.values.group_labels` of ``labels`` (same answer), remembered per input list.

    The returned id array is read-only; the groups list is a fresh copy the caller may keep.
    """
    global _held
    n = len(labels)
    if not without and not names:  # ``by ()``: every series in the one empty group
        ids = np.zeros(n, np.int64)
        ids.flags.writeable = False
        return ids, [intern(Labels())] if n else []
    if n < MIN_SERIES or n > MAX_SERIES // 4:
        return group_labels(labels, names, without=without)
    key: _Key = (without, frozenset(names), tuple(map(id, labels)))
    with _lock:
        hit = _entries.get(key)
        if hit is not None:
            _entries.move_to_end(key)
            return hit[1], list(hit[2])
    ids, groups = group_labels(labels, names, without=without)
    ids.flags.writeable = False
    with _lock:
        if key not in _entries:
            _entries[key] = (list(labels), ids, groups)
            _held += n
            while _held > MAX_SERIES:
                _, (old, _ids, _groups) = _entries.popitem(last=False)
                _held -= len(old)
    return ids, list(groups)
