"""Go's ``sort.Sort`` (Go 1.19, which built Prometheus 2.42) for the rare inputs where the
arrangement of equal values shows.

Prometheus sorts a ``quantile_over_time`` window (and a ``quantile`` group) with
``sort.Sort``, ordering NaN first and then by ``<``. Equal values are interchangeable except
for 0 and -0: an interpolated quantile that lands on a zero shows the sign of the one the sort
put there. ``sort``/``sort_desc`` order series the same way, and there ties and NaNs show as
the order of the result. Up to 12 values ``sort.Sort`` is an insertion sort (stable); above
that it is a pattern-defeating quicksort whose moves depend on every comparison. It is
deterministic (its pattern breaking draws from a xorshift generator seeded with the length),
so it is replayed here, comparison by comparison, in pure Python — only where the
arrangement shows, so the cost never reaches the common path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["ReplayBudget", "go_sort", "go_sort_by"]

_INSERTION_MAX = 12      # slices this short are insertion-sorted
_NINTHER_MIN = 50        # from this length the pivot is a median of three medians
_MAX_PIVOT_SWAPS = 12    # every comparison of the pivot choice swapped: a decreasing slice
_SHIFT_STEPS = 5         # out-of-order pairs the partial insertion sort may fix
_SHIFT_MIN_LENGTH = 50   # shorter slices are never fixed by shifting
_MASK64 = (1 << 64) - 1


@dataclass
class ReplayBudget:
    """How many more values one function or aggregation call may replay through
    :func:`go_sort` (about half a second of pure Python by default): past it, callers
    keep their stable order, so data made of mixed zeros cannot make a query crawl."""

    values: int = 100_000

    def take(self, n: int) -> bool:
        """Whether ``n`` more values may be replayed (and count them)."""
        if n > self.values:
            self.values = 0
            return False
        self.values -= n
        return True


def go_sort(values: list[float]) -> None:
    """Sort ``values`` in place exactly as Go 1.19's ``sort.Sort`` arranges them under
    Prometheus's order (NaN before everything, itself included; else ``<``)."""
    go_sort_by(values, _nan_first_less)


def go_sort_by(items: list[Any], less: Callable[[Any, Any], bool]) -> None:
    """Sort ``items`` in place as Go 1.19's ``sort.Sort`` does with ``Less(i, j)`` being
    ``less(items[i], items[j])``."""
    n = len(items)
    if n > 1:
        _Pdq(items, less).sort(0, n, n.bit_length())


def _nan_first_less(a: float, b: float) -> bool:
    return math.isnan(a) or a < b


class _Pdq:
    """One sort: the slice and Go's ``Less``/``Swap`` over it."""

    def __init__(self, data: list[Any], less: Callable[[Any, Any], bool]) -> None:
        self.d = data
        self.lt = less

    def less(self, i: int, j: int) -> bool:
        return self.lt(self.d[i], self.d[j])

    def swap(self, i: int, j: int) -> None:
        d = self.d
        d[i], d[j] = d[j], d[i]

    # --- the main loop ---------------------------------------------------------------------

    def sort(self, a: int, b: int, limit: int) -> None:
        balanced = partitioned = True
        while True:
            length = b - a
            if length <= _INSERTION_MAX:
                self.insertion(a, b)
                return
            if limit == 0:  # too many bad pivots: heapsort the rest
                self.heap(a, b)
                return
            if not balanced:
                self.break_patterns(a, b)
                limit -= 1
            pivot, hint = self.choose_pivot(a, b)
            if hint < 0:  # looks decreasing: reverse, and the pivot moves with it
                i, j = a, b - 1
                while i < j:
                    self.swap(i, j)
                    i += 1
                    j -= 1
                pivot = (b - 1) - (pivot - a)
                hint = 1
            if balanced and partitioned and hint > 0 and self.partial_insertion(a, b):
                return
            if a > 0 and not self.less(a - 1, pivot):
                # everything here is >= the element before: split off the ones equal to it
                a = self.partition_equal(a, b, pivot)
                continue
            mid, partitioned = self.partition(a, b, pivot)
            left, right = mid - a, b - mid
            if left < right:
                balanced = left >= length // 8
                self.sort(a, mid, limit)
                a = mid + 1
            else:
                balanced = right >= length // 8
                self.sort(mid + 1, b, limit)
                b = mid

    # --- the pieces --------------------------------------------------------------------------

    def insertion(self, a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and self.less(j, j - 1):
                self.swap(j, j - 1)
                j -= 1

    def sift_down(self, root: int, hi: int, first: int) -> None:
        while True:
            child = 2 * root + 1
            if child >= hi:
                return
            if child + 1 < hi and self.less(first + child, first + child + 1):
                child += 1
            if not self.less(first + root, first + child):
                return
            self.swap(first + root, first + child)
            root = child

    def heap(self, a: int, b: int) -> None:
        n = b - a
        for i in range((n - 1) // 2, -1, -1):
            self.sift_down(i, n, a)
        for i in range(n - 1, -1, -1):
            self.swap(a, a + i)
            self.sift_down(0, i, a)

    def partition(self, a: int, b: int, pivot: int) -> tuple[int, bool]:
        """Elements below the pivot to its left, the others to its right; the pivot's new
        place, and whether nothing had to move."""
        self.swap(a, pivot)
        i, j = a + 1, b - 1
        first_round = True
        while True:
            while i <= j and self.less(i, a):
                i += 1
            while i <= j and not self.less(j, a):
                j -= 1
            if i > j:
                self.swap(j, a)
                return j, first_round
            first_round = False
            self.swap(i, j)
            i += 1
            j -= 1

    def partition_equal(self, a: int, b: int, pivot: int) -> int:
        """Elements equal to the pivot first, then the greater ones (none is smaller)."""
        self.swap(a, pivot)
        i, j = a + 1, b - 1
        while True:
            while i <= j and not self.less(a, i):
                i += 1
            while i <= j and self.less(a, j):
                j -= 1
            if i > j:
                return i
            self.swap(i, j)
            i += 1
            j -= 1

    def partial_insertion(self, a: int, b: int) -> bool:
        """Fix a few out-of-order neighbours of a nearly sorted slice; whether it is sorted."""
        i = a + 1
        for _ in range(_SHIFT_STEPS):
            while i < b and not self.less(i, i - 1):
                i += 1
            if i == b:
                return True
            if b - a < _SHIFT_MIN_LENGTH:
                return False
            self.swap(i, i - 1)
            if i - a >= 2:  # the smaller one further left (Go walks down to index 1, not a)
                j = i - 1
                while j >= 1 and self.less(j, j - 1):
                    self.swap(j, j - 1)
                    j -= 1
            if b - i >= 2:  # the greater one further right
                j = i + 1
                while j < b and self.less(j, j - 1):
                    self.swap(j, j - 1)
                    j += 1
        return False

    def break_patterns(self, a: int, b: int) -> None:
        """Swap three middle elements with pseudo-random others (seeded by the length)."""
        length = b - a
        if length < 8:
            return
        state = length
        modulus = 1 << length.bit_length()
        middle = a + (length // 4) * 2
        for idx in range(middle - 1, middle + 2):
            state ^= (state << 13) & _MASK64
            state ^= state >> 17
            state ^= (state << 5) & _MASK64
            other = state & (modulus - 1)
            if other >= length:
                other -= length
            self.swap(idx, a + other)

    def choose_pivot(self, a: int, b: int) -> tuple[int, int]:
        """The pivot's index and a hint: 1 (the samples were in order), -1 (all reversed),
        0 (neither)."""
        length = b - a
        q = length // 4
        i, j, k = a + q, a + 2 * q, a + 3 * q
        swaps = [0]
        if length >= 8:
            if length >= _NINTHER_MIN:
                i = self.median(i - 1, i, i + 1, swaps)
                j = self.median(j - 1, j, j + 1, swaps)
                k = self.median(k - 1, k, k + 1, swaps)
            j = self.median(i, j, k, swaps)
        if swaps[0] == 0:
            return j, 1
        if swaps[0] == _MAX_PIVOT_SWAPS:
            return j, -1
        return j, 0

    def median(self, x: int, y: int, z: int, swaps: list[int]) -> int:
        """Which of three indexes holds their median (no element moves; the count of
        out-of-order pairs met goes to ``swaps``)."""
        x, y = self.ordered(x, y, swaps)
        y, z = self.ordered(y, z, swaps)
        x, y = self.ordered(x, y, swaps)
        return y

    def ordered(self, x: int, y: int, swaps: list[int]) -> tuple[int, int]:
        if self.less(y, x):
            swaps[0] += 1
            return y, x
        return x, y
