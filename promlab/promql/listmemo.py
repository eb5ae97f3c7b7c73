"""Answers remembered per whole list of label sets.

Warm queries hand the engine the very same :class:`~promlab.model.Labels` objects in the same
order again (the store keeps its series' label sets), so an answer that depends on a list's
label sets only (a grouping, derived label sets, a histogram layout) can be kept under the
list. An entry is found by the caller's extra key, the list's length and the ``id()`` s of its
first and last sets, and confirmed by comparing the list with a kept copy (``list ==``: C-level,
an identity check per element when the objects are the same). An equal list of other objects
has the same answer, so a candidate under a reused ``id`` is a hit only when its list equals the
input. Entries are evicted least recently used first, bounded by lists and by series held.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Generic, TypeVar

from promlab.model import Labels

__all__ = ["ListMemo"]

V = TypeVar("V")


class ListMemo(Generic[V]):
    """Values remembered per list of label sets (see the module docstring).

    Examples
    --------
    >>> memo: ListMemo[int] = ListMemo(max_lists=2)
    >>> sets = [Labels({"a": "1"}), Labels({"a": "2"})]
    >>> memo.get(sets) is None
    True
    >>> memo.put(sets, 7)
    >>> memo.get(list(sets)), memo.get(sets, extra="other key")
    (7, None)
    """

    def __init__(self, *, max_lists: int | None = None, max_series: int | None = None) -> None:
        self.max_lists = max_lists
        self.max_series = max_series
        self._entries: OrderedDict[tuple[Hashable, int, int, int], tuple[list[Labels], V]] = \
            OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(seq: list[Labels], extra: Hashable) -> tuple[Hashable, int, int, int]:
        return (extra, len(seq), id(seq[0]), id(seq[-1]))

    def get(self, labels: Sequence[Labels], extra: Hashable = None) -> V | None:
        """The value kept for a list equal to ``labels`` (and ``extra``), or None."""
        if not labels:
            return None
        seq = labels if isinstance(labels, list) else list(labels)
        key = self._key(seq, extra)
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] != seq:
                return None
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, labels: Sequence[Labels], value: V, extra: Hashable = None) -> None:
        """Keep ``value`` for ``labels`` (a copy of the list is kept with it)."""
        if not labels:
            return
        seq = list(labels)
        key = self._key(seq, extra)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:  # another list under the same key: the new one replaces it
                self._held -= len(old[0])
            self._entries[key] = (seq, value)
            self._held += len(seq)
            while self._entries and (
                    (self.max_lists is not None and len(self._entries) > self.max_lists)
                    or (self.max_series is not None and self._held > self.max_series)):
                _, (gone, _) = self._entries.popitem(last=False)
                self._held -= len(gone)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._held = 0

    @property
    def held(self) -> int:
        """Series the kept lists hold together."""
        return self._held

    def __len__(self) -> int:
        return len(self._entries)
