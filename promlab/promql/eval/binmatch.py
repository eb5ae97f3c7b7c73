"""Vector matching of binary operators: join signatures, the (many, one) pairs sharing one,
and the result label set of each pair.

Everything per series is memoised through :mod:`promlab.promql.labelmemo` (interned keys, compared
by identity); only ``group_x`` labels and ``fill`` modifiers take one Python step per pair.
"""

from __future__ import annotations

import numpy as np

from promlab.model import METRIC_NAME, Labels
from promlab.promql.eval.groupmemo import grouped
from promlab.promql.labelmemo import filtered
from promlab.promql.parser.ast import VectorMatching
from promlab.promql.values import I64, Vector

__all__ = ["ARITHMETIC", "SCHEMA_LABELS", "match_labels", "match_pairs", "pair_rows", "result_bases", "result_labels",
           "rows_without_schema",
           "signature_ids", "with_include"]

ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
# Labels Prometheus removes from the result of an arithmetic operation between vectors.
SCHEMA_LABELS = (METRIC_NAME, "__type__", "__unit__")


def signature_ids(labels_l: list[Labels], labels_r: list[Labels], matching: VectorMatching,
                  ) -> tuple[I64, I64, int]:
    """Join-signature ids for both sides (shared numbering, in order of first appearance on
    the left, then the right) and how many signatures there are."""
    n_left = len(labels_l)
    # One grouping of both sides: keys numbered in order of first appearance.
    ids, keys = grouped([*labels_l, *labels_r], list(matching.matching_labels),
                        without=not matching.on)
    return ids[:n_left], ids[n_left:], len(keys)


def match_pairs(s_many: I64, s_one: I64, n_groups: int) -> tuple[I64, I64]:
    """Every (many row, one row) pair sharing a signature: many rows ascending and, for each,
    its group's one rows ascending."""
    order = np.argsort(s_one, kind="stable")
    count = np.bincount(s_one, minlength=n_groups)
    first = np.zeros(n_groups, np.int64)
    np.cumsum(count[:-1], out=first[1:])
    per = count[s_many]
    total = int(per.sum())
    pair_many = np.repeat(np.arange(s_many.shape[0], dtype=np.int64), per)
    before = np.cumsum(per) - per
    within = np.arange(total, dtype=np.int64) - np.repeat(before, per)
    pair_one = order[np.repeat(first[s_many], per) + within]
    return pair_many, pair_one.astype(np.int64)


def result_bases(labels: list[Labels], op: str, matching: VectorMatching) -> list[Labels]:
    """Each many-side label set as a result keeps it before ``group_x`` labels are added:
    without the schema labels (arithmetic), only the ``on`` labels or without the
    ``ignoring`` ones (one-to-one); interned."""
    drop = frozenset(SCHEMA_LABELS) if op in ARITHMETIC else frozenset()
    names = frozenset(matching.matching_labels)
    if matching.card == "one-to-one" and matching.on:
        return filtered(labels, names - drop, keep=True)
    if matching.card == "one-to-one":
        return filtered(labels, names | drop, keep=False)
    return filtered(labels, drop, keep=False)


def _included(d: dict[str, str], one: Labels, include: tuple[str, ...]) -> Labels:
    """The label set ``d`` with the ``group_x`` labels of ``one`` (a label ``one`` lacks is
    removed); ``d`` is changed."""
    for n in include:
        v = one.get(n)
        if v:
            d[n] = v
        else:
            d.pop(n, None)
    return Labels.from_sorted_pairs(tuple(sorted(d.items())))


def with_include(base: Labels, one: Labels, include: tuple[str, ...]) -> Labels:
    """``base`` with the ``group_x`` labels of ``one`` (a label ``one`` lacks is removed)."""
    return _included(dict(base.pairs), one, include)


def match_labels(ls: Labels, matching: VectorMatching) -> Labels:
    names = set(matching.matching_labels)
    if matching.on:
        return Labels.from_sorted_pairs(tuple(p for p in ls.pairs if p[0] in names))
    return Labels.from_sorted_pairs(
        tuple(p for p in ls.pairs if p[0] not in names and p[0] != METRIC_NAME))


def result_labels(many: Labels, one: Labels, op: str, matching: VectorMatching) -> Labels:
    d = dict(many.pairs)
    if op in ARITHMETIC:
        for n in SCHEMA_LABELS:
            d.pop(n, None)
    if matching.card == "one-to-one":
        names = set(matching.matching_labels)
        if matching.on:
            d = {k: v for k, v in d.items() if k in names}
        else:
            d = {k: v for k, v in d.items() if k not in names}
    return _included(d, one, matching.include)


def pair_rows(pair_many: I64, pair_one: I64, bases: list[Labels], many: Vector, one: Vector,
               op: str, matching: VectorMatching) -> tuple[I64, list[Labels]]:
    """Each pair's output row and the rows' label sets when ``group_x`` labels or ``fill``
    modifiers make a result depend on both sides (one Python step per pair)."""
    n_many, n_one = len(many), len(one)
    cache: dict[tuple[int, int], Labels] = {}
    row_of: dict[Labels, int] = {}
    out_labels: list[Labels] = []
    pair_row = np.empty(pair_many.shape[0], np.int64)
    for k, (i, j) in enumerate(zip(pair_many.tolist(), pair_one.tolist(), strict=True)):
        key = (i, j if matching.include or i == n_many else 0)
        ls = cache.get(key)
        if ls is None:
            if i == n_many:   # a filled many side: the match group's labels
                match = match_labels(one.labels[j], matching)
                ls = result_labels(match, one.labels[j], op, matching)
            elif matching.include:
                ls = with_include(bases[i], one.labels[j] if j < n_one else Labels(),
                                   matching.include)
            else:
                ls = bases[i]
            cache[key] = ls
        r = row_of.get(ls)
        if r is None:
            r = row_of[ls] = len(out_labels)
            out_labels.append(ls)
        pair_row[k] = r
    return pair_row, out_labels


def rows_without_schema(labels: list[Labels]) -> tuple[I64, int]:
    """Each label set's row once the schema labels (``__name__``, ...) are gone, and the row
    count: the identity Prometheus checks a ``bool`` comparison's results by when it drops
    names at once (``resultMetric`` with ``dropMetricName``)."""
    stripped = filtered(labels, frozenset(SCHEMA_LABELS), keep=False)
    ids: dict[Labels, int] = {}
    rows = np.fromiter((ids.setdefault(ls, len(ids)) for ls in stripped), np.int64, len(labels))
    return rows, len(ids)
