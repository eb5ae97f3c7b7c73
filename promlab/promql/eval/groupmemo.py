"""Grouping of a whole list of series, remembered per list of label sets.

Warm queries hand the engine the very same :class:`~promlab.model.Labels` objects in the same
order again (the store keeps its series' label sets), and an aggregation or a vector matching
then groups them the same way every time. The whole answer (group id per series and the
groups' label sets) is kept per input list and grouping
(:class:`~promlab.promql.listmemo.ListMemo`), so a repeat costs no Python step per series.
Entries are evicted least recently used first, bounded by :data:`MAX_SERIES` series in all.
The answers' id arrays are read-only (they are shared by every caller that gets them).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np

from promlab.model import Labels
from promlab.promql.labelmemo import intern, intern_all
from promlab.promql.listmemo import ListMemo
from promlab.promql.values import I64, group_labels

__all__ = ["MAX_RUNS", "MAX_SERIES", "MIN_SERIES", "clear", "group_by", "grouped", "size"]

#: Series all entries hold together before the least recently used ones are dropped.
MAX_SERIES = 1 << 20
#: Shorter lists are grouped directly (remembering them would not pay).
MIN_SERIES = 32

_memo: ListMemo[tuple[I64, list[Labels]]] = ListMemo(max_series=MAX_SERIES)


def size() -> int:
    """Series the remembered groupings hold together (bounded by :data:`MAX_SERIES`)."""
    return _memo.held


def clear() -> None:
    """Forget every remembered grouping (as a fresh process starts)."""
    _memo.clear()


def grouped(labels: Sequence[Labels], names: Sequence[str], *, without: bool,
            ) -> tuple[I64, list[Labels]]:
    """:func:`.values.group_labels` of ``labels`` (same answer), remembered per input list.

    The returned id array is read-only; the groups list is a fresh copy the caller may keep.
    """
    n = len(labels)
    if not without and not names:  # ``by ()``: every series in the one empty group
        ids = np.zeros(n, np.int64)
        ids.flags.writeable = False
        return ids, [intern(Labels())] if n else []
    if n < MIN_SERIES or n > MAX_SERIES // 4:
        return group_labels(labels, names, without=without) if without else group_by(labels, names)
    extra = (without, frozenset(names))
    hit = _memo.get(labels, extra)
    if hit is not None:
        return hit[0], list(hit[1])
    ids, groups = group_labels(labels, names, without=without) if without \
        else group_by(labels, names)
    ids.flags.writeable = False
    _memo.put(labels, (ids, groups), extra)
    return ids, list(groups)


_pairs_of = attrgetter("pairs")


def group_by(labels: Sequence[Labels], names: Sequence[str]) -> tuple[I64, list[Labels]]:
    """``by``/``on`` grouping: :func:`.values.group_labels` with ``without=False`` (the same
    ids and interned groups), built without a Python step per series.

    A series' key is its tuple of the wanted labels (C-level ``map`` passes over the series'
    pairs); a :class:`~promlab.model.Labels` is made per group only. The groups are numbered
    in order of first appearance.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, np.int64), []
    wanted = sorted(set(names))
    pairs = list(map(_pairs_of, labels))
    cols = _pair_columns(pairs, wanted)
    keys: list[Any]
    if cols is not None:  # a key is the wanted (name, value) pairs themselves
        keys = cols[0] if len(cols) == 1 else list(zip(*cols, strict=True))
        first = dict.fromkeys(keys)
        made = [(k,) for k in first] if len(cols) == 1 else list(first)
    else:  # some series lack a wanted label or hold it elsewhere: key by values (or None)
        dicts = list(map(dict, pairs))
        vals = [list(map(dict.get, dicts, repeat(name))) for name in wanted]
        keys = vals[0] if len(vals) == 1 else list(zip(*vals, strict=True))
        first = dict.fromkeys(keys)
        rows = [(k,) for k in first] if len(vals) == 1 else list(first)
        made = [tuple([(name, v) for name, v in zip(wanted, row, strict=True) if v is not None])
                for row in rows]
    pos = {k: i for i, k in enumerate(first)}
    ids = np.fromiter(map(pos.__getitem__, keys), np.int64, n)
    return ids, intern_all(list(map(Labels.from_sorted_pairs, made)))


#: Most runs of equal-length label sets :func:`_pair_columns` takes one by one.
MAX_RUNS = 8


def _pair_columns(pairs: list[tuple[tuple[str, str], ...]], wanted: list[str],
                  ) -> list[list[tuple[str, str]]] | None:
    """Per wanted name, every series' ``(name, value)`` pair, when in each run of series with
    as many labels each series holds it where the run's first one does (the usual case:
    series of one metric, or the two sides of a vector matching); else None."""
    n = len(pairs)
    lengths = np.fromiter(map(len, pairs), np.int64, n)
    cuts = [0, *(np.flatnonzero(lengths[1:] != lengths[:-1]) + 1).tolist(), n]
    if len(cuts) - 1 > MAX_RUNS:
        return None
    cols: list[list[tuple[str, str]]] = [[] for _ in wanted]
    for a, b in itertools.pairwise(cuts):
        run = pairs[a:b]
        for name, col in zip(wanted, cols, strict=True):
            at = next((i for i, p in enumerate(run[0]) if p[0] == name), None)
            if at is None:
                return None
            part = list(map(itemgetter(at), run))  # the run's sets have as many pairs
            if set(map(itemgetter(0), part)) != {name}:
                return None
            col.extend(part)
    return cols
