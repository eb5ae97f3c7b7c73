"""A columnar label index: match series by evaluating each matcher once per distinct value.

Both the head and every block keep their series' labels as one dictionary-encoded column per
label name (``codes`` into ``uniques``; ``-1`` = the series lacks the label). A matcher is run
against the column's distinct values, and the resulting boolean table is gathered by the codes,
so the Python work is proportional to the number of distinct label values, not of series.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher, MatchType

__all__ = ["LabelColumn", "LabelIndex"]


@dataclass(frozen=True, slots=True)
class LabelColumn:
    """One label name: ``uniques[codes[i]]`` is series ``i``'s value, ``codes[i] == -1`` if absent."""

    codes: npt.NDArray[np.int32]
    uniques: list[str]
    _lookup: dict[str, int] = field(default_factory=dict, compare=False)

    def code_of(self, value: str) -> int | None:
        """The code of ``value`` (dictionary built on first use)."""
        if not self._lookup and self.uniques:
            self._lookup.update((u, i) for i, u in enumerate(self.uniques))
        return self._lookup.get(value)

    def match(self, m: Matcher) -> npt.NDArray[np.bool_]:
        """Per-series result of ``m`` on this column (absent counts as ``""``)."""
        if m.type is MatchType.EQUAL and m.value:
            code = self.code_of(m.value)
            if code is None:
                return np.zeros(self.codes.shape[0], bool)
            hit: npt.NDArray[np.bool_] = self.codes == code
            return hit
        table = np.fromiter((m.matches(u) for u in self.uniques), bool, len(self.uniques))
        # Index -1 (absent) picks the appended last entry: the matcher's answer for "".
        table = np.append(table, m.matches(""))
        return table[self.codes]


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

    def match(self, matchers: Sequence[Matcher]) -> npt.NDArray[np.bool_]:
        """Boolean mask of the series matching every matcher."""
        mask = np.ones(self.n, bool)
        for m in matchers:
            col = self.columns.get(m.name)
            if col is None:
                if not m.matches(""):
                    return np.zeros(self.n, bool)
                continue
            mask &= col.match(m)
            if not mask.any():
                break
        return mask

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
        used = np.unique(codes[codes >= 0])
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
