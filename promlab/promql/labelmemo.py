"""Memoised label-set derivations: the same series give the same derived label sets every query.

Warm queries see the very same :class:`~promlab.model.Labels` objects again (the store keeps its
series' label sets), so what the engine derives from them per series (the set without its
metric name, a ``by``/``without`` grouping key) is remembered by the input object's identity:
a lookup is a C-level dict probe on ``id()``, not a Python-level hash of the label pairs. Each
entry keeps a reference to its input, so an ``id`` cannot be reused while its entry exists.
Derived sets are interned (equal sets are one object), so callers can compare them by
identity. The tables are bounded: a table that grows past :data:`MAX_ENTRIES` starts over
(a full table holds a few hundred bytes per entry; it keeps its inputs alive until then).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from operator import itemgetter

from promlab.model import METRIC_NAME, Labels

__all__ = [
    "MAX_ENTRIES",
    "LabelMemo",
    "distinct",
    "group_keys",
    "intern",
    "metric_names",
    "without_name_labels",
]

#: Entries a table holds before it is cleared.
MAX_ENTRIES = 1 << 17

# Dropping the name drops the metadata labels of the type-and-unit feature with it.
_NAME_LABELS = frozenset((METRIC_NAME, "__type__", "__unit__"))

_interned: dict[Labels, Labels] = {}
_second = itemgetter(1)
_lock = threading.Lock()


def intern(ls: Labels) -> Labels:
    """The one shared object equal to ``ls``."""
    got = _interned.get(ls)
    if got is not None:
        return got
    if len(_interned) >= MAX_ENTRIES:
        _interned.clear()
    return _interned.setdefault(ls, ls)


class LabelMemo:
    """``derive(ls)`` per label set, remembered by the identity of ``ls``, results interned.

    Parameters
    ----------
    derive
        The derivation (a pure function of the label pairs).
    """

    def __init__(self, derive: Callable[[Labels], Labels]) -> None:
        self._derive = derive
        self._table: dict[int, tuple[Labels, Labels]] = {}

    def map(self, labels: Sequence[Labels]) -> list[Labels]:
        """``derive`` of every label set of ``labels`` (interned objects)."""
        table = self._table
        # An entry holds its input, so no other live object can have its id: a hit is the
        # same object. ``None in hits`` compares tuples with None (C-level, no Labels.__eq__).
        hits = list(map(table.get, map(id, labels)))
        if None in hits:
            if len(table) + len(labels) > MAX_ENTRIES:
                table.clear()
            with _lock:
                for i, ls in enumerate(labels):
                    if hits[i] is None:
                        hits[i] = table[id(ls)] = (ls, intern(self._derive(ls)))
        return list(map(_second, hits))  # type: ignore[arg-type]


def _without_name(ls: Labels) -> Labels:
    return Labels.from_sorted_pairs(tuple(p for p in ls.pairs if p[0] not in _NAME_LABELS))


_WITHOUT_NAME = LabelMemo(_without_name)
_GROUPINGS: dict[tuple[bool, tuple[str, ...]], LabelMemo] = {}


_CANONICAL = LabelMemo(lambda ls: ls)


def distinct(labels: Sequence[Labels]) -> bool:
    """Whether no two of ``labels`` are equal (compared through their interned objects)."""
    canonical = _CANONICAL.map(labels)
    return len(set(map(id, canonical))) == len(canonical)


def without_name_labels(labels: Sequence[Labels]) -> list[Labels]:
    """Each label set without ``__name__`` (and ``__type__``/``__unit__``), interned."""
    return _WITHOUT_NAME.map(labels)


def group_keys(labels: Sequence[Labels], names: Sequence[str], *, without: bool) -> list[Labels]:
    """Each label set's grouping key, interned: only ``names`` (``by``/``on``), or all but
    ``names`` and ``__name__`` (``without``/``ignoring``)."""
    spec = (without, tuple(sorted(set(names))))
    memo = _GROUPINGS.get(spec)
    if memo is None:
        if len(_GROUPINGS) >= 1024:
            _GROUPINGS.clear()
        if without:
            drop = frozenset(spec[1]) | {METRIC_NAME}

            def derive(ls: Labels) -> Labels:
                return Labels.from_sorted_pairs(tuple(p for p in ls.pairs if p[0] not in drop))
        else:
            keep = frozenset(spec[1])

            def derive(ls: Labels) -> Labels:
                return Labels.from_sorted_pairs(tuple(p for p in ls.pairs if p[0] in keep))
        memo = _GROUPINGS.setdefault(spec, LabelMemo(derive))
    return memo.map(labels)


_NAMES: dict[int, tuple[Labels, str]] = {}


def metric_names(labels: Sequence[Labels]) -> list[str]:
    """Each label set's ``__name__`` (``""`` without one)."""
    table = _NAMES
    hits = list(map(table.get, map(id, labels)))
    if None in hits:
        if len(table) + len(labels) > MAX_ENTRIES:
            table.clear()
        for i, ls in enumerate(labels):
            if hits[i] is None:
                hits[i] = table[id(ls)] = (ls, ls.name)
    return list(map(_second, hits))  # type: ignore[arg-type]
