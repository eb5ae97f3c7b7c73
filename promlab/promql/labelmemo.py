"""Memoised label-set derivations: the same series give the same derived label sets every query.

Warm queries see the very same :class:`~promlab.model.Labels` objects again (the store keeps its
series' label sets), so what the engine derives from them per series (the set without its
metric name, a ``by``/``without`` grouping key) is remembered by the input object's identity:
a lookup is a C-level dict probe on ``id()``, not a Python-level hash of the label pairs. Each
entry keeps a reference to its input, so an ``id`` cannot be reused while its entry exists.
Derived sets are interned (equal sets are one object), so callers can compare them by
identity. The tables are bounded together: when the memo tables and the intern table would
hold more than :data:`MAX_ENTRIES` entries, all of them start over at once (before a lookup,
never inside one), so no table keeps an interned object the intern table has forgotten (two
equal derived sets are always one object). A full set of tables holds a few hundred bytes per
entry and keeps its inputs alive until then.
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
    "size",
    "without_name_labels",
]

#: Entries all tables hold together before they are cleared.
MAX_ENTRIES = 1 << 18

# Dropping the name drops the metadata labels of the type-and-unit feature with it.
_NAME_LABELS = frozenset((METRIC_NAME, "__type__", "__unit__"))

_interned: dict[Labels, Labels] = {}
_second = itemgetter(1)
_lock = threading.RLock()
_tables: list[dict[int, tuple[Labels, Labels]]] = []  # every LabelMemo's table


def size() -> int:
    """Entries held by all tables together (bounded by :data:`MAX_ENTRIES`)."""
    return len(_interned) + sum(map(len, _tables))


def _reserve(n: int) -> None:
    """Make room for ``n`` new entries: past :data:`MAX_ENTRIES`, every table starts over.

    Called (under ``_lock``) before a lookup adds entries, so the interned objects one lookup
    returns are never split between a forgotten and a new generation.
    """
    if size() + n > MAX_ENTRIES:
        _interned.clear()
        for t in _tables:
            t.clear()


def intern(ls: Labels) -> Labels:
    """The one shared object equal to ``ls``."""
    got = _interned.get(ls)
    if got is not None:
        return got
    with _lock:
        _reserve(1)
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
        with _lock:
            _tables.append(self._table)

    def map(self, labels: Sequence[Labels]) -> list[Labels]:
        """``derive`` of every label set of ``labels`` (interned objects)."""
        table = self._table
        # An entry holds its input, so no other live object can have its id: a hit is the
        # same object. ``None in hits`` compares tuples with None (C-level, no Labels.__eq__).
        hits = list(map(table.get, map(id, labels)))
        if None in hits:
            with _lock:
                missing = hits.count(None)
                if size() + 2 * missing > MAX_ENTRIES:
                    _reserve(2 * missing)
                    hits = [None] * len(labels)  # the tables started over: derive them all
                interned = _interned
                for i, ls in enumerate(labels):
                    if hits[i] is None:
                        d = self._derive(ls)
                        hits[i] = table[id(ls)] = (ls, interned.setdefault(d, d))
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
            with _lock:
                dropped = {id(m._table) for m in _GROUPINGS.values()}
                _tables[:] = [t for t in _tables if id(t) not in dropped]
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
