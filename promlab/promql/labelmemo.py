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

import bisect
import itertools
import threading
from collections.abc import Callable, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_, itemgetter
from typing import cast

import numpy as np

from promlab.model import METRIC_NAME, Labels
from promlab.promql.listmemo import ListMemo

__all__ = [
    "MAX_ENTRIES",
    "LabelMemo",
    "clear",
    "distinct",
    "dropped_pairs",
    "filtered",
    "group_keys",
    "intern",
    "intern_all",
    "metric_names",
    "size",
    "without_name_labels",
]

#: Entries all tables hold together before they are cleared.
MAX_ENTRIES = 1 << 18

# Dropping the name drops the metadata labels of the type-and-unit feature with it.
_NAME_LABELS = frozenset((METRIC_NAME, "__type__", "__unit__"))

_interned: dict[Labels, Labels] = {}
_lock = threading.RLock()
# Every LabelMemo's tables: derived set by input id, and the input itself by its id (which
# keeps the id from being reused while the entry exists). Two dicts, not one of pairs: no
# tuple per entry for the garbage collector to track.
# A third dict per memo maps an input's label pairs to its derived set: a new object equal to
# one seen before (a store opened again) is found by a C-level tuple lookup, not derived again.
# A fourth keeps whole answers per list of inputs (promlab.promql.listmemo; see LabelMemo.map).
_tables: list[tuple[dict[int, Labels], dict[int, Labels],
                    dict[tuple[tuple[str, str], ...], Labels], ListMemo[list[Labels]]]] = []

_pairs_of = attrgetter("pairs")

#: Lists this long or longer have their whole answer remembered (at most MAX_LISTS per memo).
MIN_LIST = 32
MAX_LISTS = 32


def size() -> int:
    """Entries held by all tables together (bounded by :data:`MAX_ENTRIES`)."""
    return len(_interned) + sum(len(out) + len(by_pairs) for out, _, by_pairs, _ in _tables)


def _reserve(n: int) -> None:
    """Make room for ``n`` new entries: past :data:`MAX_ENTRIES`, every table starts over.

    Called (under ``_lock``) before a lookup adds entries, so the interned objects one lookup
    returns are never split between a forgotten and a new generation.
    """
    if size() + n > MAX_ENTRIES:
        _interned.clear()
        for out, inputs, by_pairs, lists in _tables:
            lists.clear()
            out.clear()  # first: a derived set is never seen without its input held
            inputs.clear()
            by_pairs.clear()


def clear() -> None:
    """Forget every table (as a fresh process starts): the next lookups derive again."""
    with _lock:
        _reserve(MAX_ENTRIES + 1)
    _DISTINCT.clear()


def intern(ls: Labels) -> Labels:
    """The one shared object equal to ``ls``."""
    got = _interned.get(ls)
    if got is not None:
        return got
    with _lock:
        _reserve(1)
        return _interned.setdefault(ls, ls)


def intern_all(sets: Sequence[Labels]) -> list[Labels]:
    """:func:`intern` of each of ``sets`` (one room check for all of them)."""
    with _lock:
        _reserve(len(sets))
        return list(map(_interned.setdefault, sets, sets))


class LabelMemo:
    """``derive(ls)`` per label set, remembered by the identity of ``ls``, results interned.

    Parameters
    ----------
    derive
        The derivation (a pure function of the label pairs).
    drops
        When ``derive`` removes exactly these label names (and does nothing else): a batch of
        misses is derived by :func:`dropped_pairs` (C-level passes per run of equal-length
        sets), not set by set.
    """

    def __init__(self, derive: Callable[[Labels], Labels], *,
                 drops: frozenset[str] | None = None) -> None:
        self._derive = derive
        self._drops = sorted(drops) if drops is not None else None
        self._out: dict[int, Labels] = {}
        self._inputs: dict[int, Labels] = {}
        self._by_pairs: dict[tuple[tuple[str, str], ...], Labels] = {}
        self._lists: ListMemo[list[Labels]] = ListMemo(max_lists=MAX_LISTS)
        with _lock:
            _tables.append((self._out, self._inputs, self._by_pairs, self._lists))

    def map(self, labels: Sequence[Labels]) -> list[Labels]:
        """``derive`` of every label set of ``labels`` (interned objects), a fresh list."""
        n = len(labels)
        if n < MIN_LIST:
            return self._map(labels)
        # A whole list seen before: found by its ends, confirmed by comparing it with the
        # kept copy (C-level; an identity check per element for the same objects; an equal
        # list of other objects has the same answer, derivations depend on the pairs only).
        hit = self._lists.get(labels)
        if hit is not None:
            return list(hit)
        with _lock:  # derived and kept in one generation of the tables
            result = self._map(labels)
            self._lists.put(labels, list(result))
        return result

    def _map(self, labels: Sequence[Labels]) -> list[Labels]:
        ids = list(map(id, labels))
        # An entry holds its input, so no other live object can have its id: a hit is the
        # same object. All hits: one C-level pass (a miss raises, the slow path fills in).
        try:
            return list(map(self._out.__getitem__, ids))
        except KeyError:
            pass
        with _lock:
            out, inputs = self._out, self._inputs
            by_pairs = self._by_pairs
            missing = len(ids) - sum(map(out.__contains__, ids))
            if size() + 3 * missing > MAX_ENTRIES:
                _reserve(3 * missing)  # the tables start over: derive them all
            interned = _interned
            if self._drops is not None and missing >= MIN_BATCH:
                self._fill(ids, labels, self._drops)
                return list(map(out.__getitem__, ids))
            result: list[Labels] = []
            for key, ls in zip(ids, labels, strict=True):
                d = out.get(key)
                if d is None:
                    pairs = ls.pairs
                    d = by_pairs.get(pairs)
                    if d is None:
                        d = self._derive(ls)
                        d = by_pairs[pairs] = interned.setdefault(d, d)
                    inputs[key] = ls
                    out[key] = d
                result.append(d)
            return result


    def _fill(self, ids: list[int], labels: Sequence[Labels], drops: list[str]) -> None:
        """Enter every input of ``labels`` not in the tables yet (under ``_lock``, room made):
        what the per-set loop of :meth:`_map` enters, derived for the whole batch at once."""
        out, inputs, by_pairs = self._out, self._inputs, self._by_pairs
        miss = list(map(is_, map(out.get, ids), repeat(None)))
        miss_ids = list(compress(ids, miss))
        miss_ls = list(compress(labels, miss))
        pairs = list(map(_pairs_of, miss_ls))
        got: list[Labels | None] = list(map(by_pairs.get, pairs)) if by_pairs \
            else [None] * len(pairs)
        new = list(map(is_, got, repeat(None)))
        if any(new):
            new_pairs = list(compress(pairs, new)) if not all(new) else pairs
            made = list(map(Labels.from_sorted_pairs, dropped_pairs(new_pairs, drops)))
            made = list(map(_interned.setdefault, made, made))
            # Equal inputs derive equal sets, interned: one object, as the loop enters.
            by_pairs.update(zip(new_pairs, made, strict=True))
            if new_pairs is pairs:
                got = list(made)
            else:
                fresh = iter(made)
                got = [next(fresh) if d is None else d for d in got]
        inputs.update(zip(miss_ids, miss_ls, strict=True))
        out.update(zip(miss_ids, cast(list[Labels], got), strict=True))


#: Fewest misses :meth:`LabelMemo.map` derives as one batch (fewer: set by set).
MIN_BATCH = 16
#: Shortest run of equal-length sets :func:`dropped_pairs` derives by columns.
MIN_RUN = 8


def dropped_pairs(pairs: list[tuple[tuple[str, str], ...]], drops: list[str],
                  ) -> list[tuple[tuple[str, str], ...]]:
    """Each of ``pairs`` (sorted by name) without the labels named in ``drops`` (sorted).

    Per run of equal-length sets, the positions to drop are the first set's; the run is
    checked (C-level) to hold each dropped name at that position in every set, and to hold a
    name absent from the first set in none (each set is sorted: its neighbours' names bound it
    in every set). Then every set keeps the same positions (one ``itemgetter`` per set); runs
    that fail a check, and short ones, are filtered set by set.
    """
    n = len(pairs)
    lengths = np.fromiter(map(len, pairs), np.int64, n)
    cuts = [0, *(np.flatnonzero(lengths[1:] != lengths[:-1]) + 1).tolist(), n]
    result: list[tuple[tuple[str, str], ...]] = []
    dropset = frozenset(drops)
    for a, b in itertools.pairwise(cuts):
        run = pairs[a:b]
        keep = _kept_positions(run, drops) if b - a >= MIN_RUN else None
        if keep is None:
            result.extend([tuple([p for p in ps if p[0] not in dropset]) for ps in run])
        elif len(keep) == len(run[0]):
            result.extend(run)
        elif keep and keep[-1] - keep[0] == len(keep) - 1:  # one stretch: a slice of each set
            result.extend(map(itemgetter(slice(keep[0], keep[-1] + 1)), run))
        elif len(keep) >= 2:
            result.extend(map(itemgetter(*keep), run))
        elif keep:
            result.extend(zip(map(itemgetter(keep[0]), run)))
        else:
            result.extend(repeat((), len(run)))
    return result


def _kept_positions(run: list[tuple[tuple[str, str], ...]], drops: list[str],
                    ) -> list[int] | None:
    """Positions every set of ``run`` (sets of one length) keeps, or None if they differ."""
    first = run[0]
    names = [p[0] for p in first]
    width = len(names)
    cols: dict[int, tuple[str, str]] = {}  # position -> (least, greatest) name there

    def bounds(at: int) -> tuple[str, str]:
        got = cols.get(at)
        if got is None:
            col = list(map(itemgetter(0), map(itemgetter(at), run)))
            got = cols[at] = (min(col), max(col))
        return got

    dropped: set[int] = set()
    for name in drops:
        at = bisect.bisect_left(names, name)
        if at < width and names[at] == name:
            if bounds(at) != (name, name):
                return None
            dropped.add(at)
            continue
        # Absent from the first set: every set must have a smaller name before ``at`` and a
        # larger one at ``at`` (then, being sorted, none holds ``name``).
        if at > 0 and bounds(at - 1)[1] >= name:
            return None
        if at < width and bounds(at)[0] <= name:
            return None
    return [i for i in range(width) if i not in dropped]


# Derivations build their pairs with a list comprehension: faster than a generator into
# tuple(), and they run once per series the process first sees.
def _without_name(ls: Labels) -> Labels:
    return Labels.from_sorted_pairs(tuple([p for p in ls.pairs if p[0] not in _NAME_LABELS]))


_WITHOUT_NAME = LabelMemo(_without_name, drops=_NAME_LABELS)


# Whole lists' answers of distinct (equality of the sets only: no interning generation).
_DISTINCT: ListMemo[bool] = ListMemo(max_lists=MAX_LISTS)


def distinct(labels: Sequence[Labels]) -> bool:
    """Whether no two of ``labels`` are equal (a long list seen before answers from its
    remembered answer)."""
    long = len(labels) >= MIN_LIST
    if long and (hit := _DISTINCT.get(labels)) is not None:
        return hit
    # By their pairs' hashes (a first query's new label sets: interning them all first cost
    # five times more); a long list seen again answers from the memo above.
    out = len(set(labels)) == len(labels)
    if long:
        _DISTINCT.put(labels, out)
    return out


def without_name_labels(labels: Sequence[Labels]) -> list[Labels]:
    """Each label set without ``__name__`` (and ``__type__``/``__unit__``), interned."""
    return _WITHOUT_NAME.map(labels)


def group_keys(labels: Sequence[Labels], names: Sequence[str], *, without: bool) -> list[Labels]:
    """Each label set's grouping key, interned: only ``names`` (``by``/``on``), or all but
    ``names`` and ``__name__`` (``without``/``ignoring``)."""
    if without:
        return filtered(labels, frozenset(names) | {METRIC_NAME}, keep=False)
    return filtered(labels, frozenset(names), keep=True)


_FILTERS: dict[tuple[bool, frozenset[str]], LabelMemo] = {}


def filtered(labels: Sequence[Labels], names: frozenset[str], *, keep: bool) -> list[Labels]:
    """Each label set with only the labels ``names`` (``keep``) or without them, interned
    (``keep=False`` with no names: each set's own interned object)."""
    spec = (keep, names)
    memo = _FILTERS.get(spec)
    if memo is None:
        if len(_FILTERS) >= 1024:
            with _lock:
                dropped = {id(m._out) for m in _FILTERS.values()}
                _tables[:] = [t for t in _tables if id(t[0]) not in dropped]
                _FILTERS.clear()
        if keep:
            def derive(ls: Labels) -> Labels:
                return Labels.from_sorted_pairs(tuple([p for p in ls.pairs if p[0] in names]))
        elif names:
            def derive(ls: Labels) -> Labels:
                return Labels.from_sorted_pairs(tuple([p for p in ls.pairs if p[0] not in names]))
        else:
            def derive(ls: Labels) -> Labels:
                return ls
        drops = names if names and not keep else None
        memo = _FILTERS.setdefault(spec, LabelMemo(derive, drops=drops))
    return memo.map(labels)


_NAMES: dict[int, str] = {}
_NAME_INPUTS: dict[int, Labels] = {}  # keeps each entry's input (and so its id) alive


def metric_names(labels: Sequence[Labels]) -> list[str]:
    """Each label set's ``__name__`` (``""`` without one)."""
    ids = list(map(id, labels))
    try:
        return list(map(_NAMES.__getitem__, ids))
    except KeyError:
        pass
    with _lock:
        if len(_NAMES) + len(labels) > MAX_ENTRIES:
            _NAMES.clear()
            _NAME_INPUTS.clear()
        result: list[str] = []
        for key, ls in zip(ids, labels, strict=True):
            name = _NAMES.get(key)
            if name is None:
                name = ls.name
                _NAME_INPUTS[key] = ls
                _NAMES[key] = name
            result.append(name)
        return result
