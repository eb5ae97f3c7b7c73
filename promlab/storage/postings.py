"""A columnar label index: match series by evaluating each matcher once per distinct value.

Both the head and every block keep their series' labels as one dictionary-encoded column per
label name (``codes`` into ``uniques``; ``-1`` = the series lacks the label). A matcher is run
against the column's distinct values, and the resulting boolean table is gathered by the codes,
so the Python work is proportional to the number of distinct label values, not of series.

The head's index is a :class:`GrowingIndex`: new series are appended (Python work only for the
new series' label pairs) and readers take immutable :class:`LabelIndex` snapshots in O(label
names), so a query after a commit that adds series does not rebuild anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher, MatchType
from promlab.model.arrays import unique

__all__ = ["GrowingIndex", "LabelColumn", "LabelIndex"]


class LabelColumn:
    """One label name: ``uniques[codes[i]]`` is series ``i``'s value, ``codes[i] == -1`` if absent.

    With ``rows``, ``codes`` are per group (a block's series) and row ``i`` (a chunk) has
    ``codes[rows[i]]``: the per-row codes are gathered on first use, so a query gathers only
    the label columns its matchers name.
    """

    __slots__ = ("_codes", "_lookup", "_of", "_rows", "_spans", "uniques")

    def __init__(self, codes: npt.NDArray[np.int32], uniques: list[str],
                 lookup: dict[str, int] | None = None, *,
                 rows: npt.NDArray[np.int64] | None = None) -> None:
        self._of = codes
        self._rows = rows
        self._codes = codes if rows is None else None
        self.uniques = uniques
        self._lookup = {} if lookup is None else lookup
        self._spans: dict[int, tuple[int, int]] | None = None

    @property
    def codes(self) -> npt.NDArray[np.int32]:
        c = self._codes
        if c is None:
            assert self._rows is not None
            c = self._codes = self._of[self._rows]  # a race only computes it twice
        return c

    def take(self, rows: npt.NDArray[np.int64]) -> LabelColumn:
        """The column of rows ``rows`` only (without gathering every row's codes first)."""
        if self._codes is None:
            assert self._rows is not None
            return LabelColumn(self._of[self._rows[rows]], self.uniques, self._lookup)
        return LabelColumn(self._codes[rows], self.uniques, self._lookup)

    @property
    def rows(self) -> npt.NDArray[np.int64] | None:
        """Each row's group (ascending), when the codes are per group; else None."""
        return self._rows

    @property
    def num_groups(self) -> int:
        """How many codes are stored (groups, or rows when the codes are per row)."""
        return int(self._of.shape[0])

    def code_of(self, value: str) -> int | None:
        """The code of ``value`` (dictionary built on first use)."""
        if not self._lookup and self.uniques:
            self._lookup.update(zip(self.uniques, range(len(self.uniques)), strict=True))
        return self._lookup.get(value)

    def span(self, code: int) -> tuple[int, int] | None:
        """``(lo, hi)`` when the rows with ``code`` are exactly ``lo:hi`` (one run; a block's
        series index is sorted by metric name), else None. The runs are found once (per
        group when the codes are, then placed among the rows: a group's rows are a run)."""
        spans = self._spans
        if spans is None:
            grouped = self._codes is None and self._rows is not None
            c = self._of if grouped else self.codes
            starts = np.flatnonzero(c[1:] != c[:-1]) + 1
            run_codes = c[np.concatenate([[0], starts])].tolist() if c.shape[0] else []
            bounds = np.array([0, *starts.tolist(), c.shape[0]], np.int64)
            if grouped:  # group bounds -> row bounds (rows are ascending by group)
                assert self._rows is not None
                bounds = np.searchsorted(self._rows, bounds, "left")
            blist = bounds.tolist()
            spans = {}
            seen: set[int] = set()
            for k, rc in enumerate(run_codes):
                if blist[k] == blist[k + 1]:
                    continue  # a group without rows
                if rc in seen:
                    spans.pop(rc, None)  # in several runs: no span
                else:
                    seen.add(rc)
                    spans[rc] = (blist[k], blist[k + 1])
            self._spans = spans
        return spans.get(code)

    def match_groups(self, m: Matcher) -> npt.NDArray[np.bool_]:
        """:meth:`match` per group (the codes as stored: per series of a block's index)."""
        return self._match(self._of, m)

    def match(self, m: Matcher, within: slice | None = None) -> npt.NDArray[np.bool_]:
        """Per-series result of ``m`` on this column (absent counts as ``""``), of the rows
        ``within`` only when given. Per-group codes are matched per group, the answers then
        spread over the rows (the rows' codes are not gathered)."""
        if self._codes is None and self._rows is not None:
            rows = self._rows if within is None else self._rows[within]
            return self._match(self._of, m)[rows]
        return self._match(self.codes if within is None else self.codes[within], m)

    def _match(self, codes: npt.NDArray[np.int32], m: Matcher) -> npt.NDArray[np.bool_]:
        if m.type is MatchType.EQUAL and m.value:
            code = self.code_of(m.value)
            if code is None:
                return np.zeros(codes.shape[0], bool)
            hit: npt.NDArray[np.bool_] = codes == code
            return hit
        table = np.fromiter((m.matches(u) for u in self.uniques), bool, len(self.uniques))
        # Index -1 (absent) picks the appended last entry: the matcher's answer for "".
        table = np.append(table, m.matches(""))
        return table[codes]


class LabelIndex:
    """The label columns of ``n`` series, queried with :meth:`match`.

    Parameters
    ----------
    n
        Number of series (rows).
    columns
        Label name to :class:`LabelColumn`.
    """

    def __init__(self, n: int, columns: dict[str, LabelColumn]) -> None:
        self.n = n
        self.columns = columns
        # Per label name, code -> its (name, value) pair, made on first use by labels_of.
        self._pairs: dict[str, dict[int, tuple[str, str]]] = {}
        # Or, for a label with few values beside the rows asked for, all its pairs by code.
        self._pair_arrays: dict[str, npt.NDArray[np.object_]] = {}

    @classmethod
    def from_labels(cls, series: Sequence[Labels]) -> LabelIndex:
        """Build from label sets (one Python pass over the series' pairs)."""
        n = len(series)
        maps: dict[str, dict[str, int]] = {}
        codes: dict[str, npt.NDArray[np.int32]] = {}
        for i, ls in enumerate(series):
            for k, v in ls.pairs:
                col = codes.get(k)
                if col is None:
                    col = codes[k] = np.full(n, -1, np.int32)
                    maps[k] = {}
                vm = maps[k]
                c = vm.get(v)
                if c is None:
                    c = vm[v] = len(vm)
                col[i] = c
        return cls(n, {k: LabelColumn(codes[k], list(maps[k])) for k in codes})

    @classmethod
    def from_arrays(cls, n: int, columns: Iterable[tuple[str, npt.NDArray[np.int32], list[str]]]) -> LabelIndex:
        return cls(n, {name: LabelColumn(c, u) for name, c, u in columns})

    def match(self, matchers: Sequence[Matcher], within: slice | None = None
              ) -> npt.NDArray[np.bool_]:
        """Boolean mask of the series matching every matcher (of the rows ``within`` only,
        a slice with explicit bounds, when given)."""
        n = self.n if within is None else within.stop - within.start
        mask = np.ones(n, bool)
        for m in matchers:
            col = self.columns.get(m.name)
            if col is None:
                if not m.matches(""):
                    return np.zeros(n, bool)
                continue
            mask &= col.match(m, within)
            if not mask.any():
                break
        return mask

    def match_groups(self, matchers: Sequence[Matcher]
                     ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]] | None:
        """Per group (a block's series), whether it matches every matcher, and each row's group
        (ascending); None unless every column holds its codes per group (the same groups)."""
        cols = list(self.columns.values())
        rows = cols[0].rows if cols else None
        if rows is None or any(c.rows is not rows for c in cols):
            return None
        mask = np.ones(cols[0].num_groups, bool)
        for m in matchers:
            col = self.columns.get(m.name)
            if col is None:
                if not m.matches(""):
                    return np.zeros(mask.shape[0], bool), rows
                continue
            mask &= col.match_groups(m)
            if not mask.any():
                break
        return mask, rows

    def names(self, mask: npt.NDArray[np.bool_] | None = None) -> list[str]:
        """Sorted label names present in the series selected by ``mask`` (all if None)."""
        out = []
        for name, col in self.columns.items():
            present = col.codes >= 0
            if mask is not None:
                present &= mask
            if present.any():
                out.append(name)
        return sorted(out)

    def values(self, name: str, mask: npt.NDArray[np.bool_] | None = None) -> list[str]:
        """Sorted distinct values of ``name`` among the series selected by ``mask``."""
        col = self.columns.get(name)
        if col is None:
            return []
        codes = col.codes if mask is None else col.codes[mask]
        used = unique(codes[codes >= 0])
        return sorted(col.uniques[int(c)] for c in used)

    def labels_at(self, i: int) -> Labels:
        """Rebuild series ``i``'s label set from the columns (per series, not per sample)."""
        pairs = []
        for name, col in self.columns.items():
            c = int(col.codes[i])
            if c >= 0:
                pairs.append((name, col.uniques[c]))
        pairs.sort()
        return Labels.from_sorted_pairs(tuple(pairs))

    def subset(self, rows: npt.NDArray[np.int64]) -> LabelIndex:
        """The index of rows ``rows`` only (in that order), sharing this one's label pairs."""
        sub = LabelIndex(int(rows.shape[0]), {k: c.take(rows) for k, c in self.columns.items()})
        sub._pairs, sub._pair_arrays = self._pairs, self._pair_arrays  # (the same uniques)
        return sub

    def labels_of(self, rows: npt.NDArray[np.int64] | None) -> list[Labels]:
        """The label sets of rows ``rows`` (all rows when None), in that order, without a
        Python loop per label.

        Rows are grouped by which label names they have (usually one group per metric). Each
        ``(name, value)`` pair is made once per distinct value and shared by every set holding
        it, so a label set costs two objects (its tuple of pairs and its :class:`Labels`): few
        allocations, hence few garbage-collector passes, which dominated the cost before.
        """
        n = self.n if rows is None else int(rows.shape[0])
        if n == 0:
            return []
        names = sorted(self.columns)
        codes = [self.columns[name].codes if rows is None else self.columns[name].take(rows).codes
                 for name in names]
        present = np.zeros(n, object if len(names) > 62 else np.int64)
        for k, c in enumerate(codes):
            present += (c >= 0).astype(present.dtype) << k
        pats, inv = np.unique(present, return_inverse=True)
        out: list[Labels] = [Labels()] * n if pats.shape[0] > 1 else []
        make = Labels.from_sorted_pairs
        for p, pat in enumerate(pats.tolist()):
            at = None if pats.shape[0] == 1 else np.flatnonzero(inv.reshape(-1) == p)
            cols = [self._pair_column(names[k], codes[k] if at is None else codes[k][at])
                    for k in range(len(names)) if (pat >> k) & 1]
            sets = (list(map(make, zip(*cols, strict=True))) if cols
                    else [Labels()] * (n if at is None else at.shape[0]))
            if at is None:
                return sets
            for i, ls in zip(at.tolist(), sets, strict=True):
                out[i] = ls
        return out

    def _pair_column(self, name: str, codes: npt.NDArray[np.int32]) -> list[tuple[str, str]]:
        """``(name, value)`` of each code in ``codes`` (all >= 0), the same tuple per value.

        A label with few values beside the rows asked for gets all its pairs at once, gathered
        by code from an object array (a first query's 1,000 label sets: ~100 us less than a
        dict lookup per code); one with many (a file-wide dictionary of pod names, say) only
        those of the codes asked for."""
        uniques = self.columns[name].uniques
        arr = self._pair_arrays.get(name)
        if arr is None or arr.shape[0] < len(uniques):  # a growing index's values grow
            if len(uniques) > 2 * codes.shape[0] + 256:
                made = self._pairs.setdefault(name, {})
                clist = codes.tolist()
                if len(made) < len(uniques):
                    for c in unique(codes).tolist():
                        if c not in made:
                            made[c] = (name, uniques[c])
                return list(map(made.__getitem__, clist))
            arr = np.fromiter(((name, v) for v in uniques), object, len(uniques))
            self._pair_arrays[name] = arr
        out: list[tuple[str, str]] = arr[codes].tolist()
        return out


class _Growing:
    """One label name of a :class:`GrowingIndex`: a code buffer with spare capacity.

    Rows below the index's ``n`` are never written again and rows at or above it are ``-1``
    until written, so a snapshot may keep a ``[:n]`` view of the buffer while rows are added.
    ``uniques`` and ``lookup`` only grow (codes are stable), so snapshots share them.
    """

    __slots__ = ("buf", "lookup", "uniques")

    def __init__(self, buf: npt.NDArray[np.int32], uniques: list[str], lookup: dict[str, int]) -> None:
        self.buf, self.uniques, self.lookup = buf, uniques, lookup


class GrowingIndex:
    """A label index that series are appended to; :meth:`snapshot` gives a :class:`LabelIndex`.

    Not thread-safe for concurrent writers (the store serialises :meth:`extend`, :meth:`select`
    and :meth:`snapshot`); snapshots may be used by readers while rows are appended.
    Buffers grow geometrically, so appending ``k`` series costs amortised O(k) plus O(label names).
    """

    def __init__(self) -> None:
        self.n = 0
        self._cap = 0
        self._cols: dict[str, _Growing] = {}

    @classmethod
    def from_labels(cls, series: Sequence[Labels]) -> GrowingIndex:
        out = cls()
        out.extend(series)
        return out

    def _grow(self, n: int) -> None:
        if n <= self._cap:
            return
        cap = max(n, self._cap + self._cap // 2, 1024)
        for col in self._cols.values():
            buf = np.full(cap, -1, np.int32)
            buf[: self.n] = col.buf[: self.n]
            col.buf = buf
        self._cap = cap

    def extend(self, series: Sequence[Labels]) -> None:
        """Append rows ``n, n + 1, ...`` for ``series`` (one Python pass over their pairs)."""
        k = len(series)
        if k == 0:
            return
        start = self.n
        self._grow(start + k)
        cols = self._cols
        for i, ls in enumerate(series, start):
            for name, v in ls.pairs:
                col = cols.get(name)
                if col is None:
                    col = cols[name] = _Growing(np.full(self._cap, -1, np.int32), [], {})
                c = col.lookup.get(v)
                if c is None:
                    c = col.lookup[v] = len(col.uniques)
                    col.uniques.append(v)
                col.buf[i] = c
        self.n = start + k

    def select(self, keep: npt.NDArray[np.bool_]) -> GrowingIndex:
        """A new index of the rows where ``keep`` (renumbered densely); unused values dropped.

        Vectorised per label name (Python work per distinct value kept); ``self`` is unchanged,
        so existing snapshots stay valid.
        """
        out = GrowingIndex()
        n = int(keep.sum())
        out.n = n
        out._cap = max(n + n // 2, 1024)
        for name, col in self._cols.items():
            codes = col.buf[: self.n][keep]
            present = codes >= 0
            if not present.any():
                continue
            used = unique(codes[present])
            remap = np.full(len(col.uniques) + 1, -1, np.int32)  # [-1] (absent) stays -1
            remap[used] = np.arange(used.shape[0], dtype=np.int32)
            buf = np.full(out._cap, -1, np.int32)
            buf[:n] = remap[codes]
            uniques = [col.uniques[c] for c in used.tolist()]
            out._cols[name] = _Growing(buf, uniques, {u: j for j, u in enumerate(uniques)})
        return out

    def snapshot(self) -> LabelIndex:
        """The current rows as an immutable :class:`LabelIndex` (no copy of the codes)."""
        n = self.n
        cols = {}
        for name, col in self._cols.items():
            codes = col.buf[:n]
            codes.flags.writeable = False
            cols[name] = LabelColumn(codes, col.uniques, col.lookup)
        return LabelIndex(n, cols)
