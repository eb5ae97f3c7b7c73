"""Array helpers that stay safe in daemon threads while the interpreter exits.

``np.unique`` (numpy 2.3 on) finds the distinct values of a plain 1-D array with a hash table
in C++ that releases the GIL; a daemon thread still inside it when the interpreter starts
shutting down is ended as it takes the GIL back, and ending a thread through that C++ code
aborts the whole process (``terminate called without an active exception``). A query on a
daemon thread (the rule manager, the scraper's writer, a notebook's refresh thread, a user's
thread) can be there at exit. :func:`unique` gives the same result by sorting, which numpy does
in C code a thread can be ended from.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

__all__ = ["unique"]

T = TypeVar("T", bound=np.generic)


def unique(values: np.ndarray[Any, np.dtype[T]]) -> np.ndarray[tuple[int], np.dtype[T]]:
    """The sorted distinct values of ``values`` (flattened), NaNs counted as one value.

    What ``np.unique(values)`` returns, without its hash table (see the module's note).

    Examples
    --------
    >>> unique(np.array([3, 1, 3, 2])).tolist()
    [1, 2, 3]
    >>> unique(np.array([np.nan, 1.0, np.nan])).tolist()
    [1.0, nan]
    """
    arr: np.ndarray[tuple[int], np.dtype[T]] = np.sort(values.ravel())
    if arr.shape[0] < 2:
        return arr
    keep = np.empty(arr.shape[0], dtype=bool)
    keep[0] = True
    np.not_equal(arr[1:], arr[:-1], out=keep[1:])
    if arr.dtype.kind in "fc" and np.isnan(arr[-1]):
        # Sorting puts NaNs last, each unequal to the next: keep the first of them only.
        first_nan = int(np.argmax(np.isnan(arr)))
        keep[first_nan + 1:] = False
    return arr[keep]
