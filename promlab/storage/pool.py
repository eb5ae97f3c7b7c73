"""Large numpy arrays of a read, allocated from Arrow's memory pool, and row gathers into them.

A first query on a freshly opened store decodes a few hundred thousand rows: the arrays it
builds (row indices, gathered timestamps, decoded values) are 2–3 MB each. glibc returns such
arrays to the kernel when they are freed (they are ``mmap``-ed, or trimmed from the heap), so
the next query's arrays fault in their pages again: about 1.4 µs per 4 KiB page on the
benchmark machine, 0.85 ms per 2.4 MB array — more than the arithmetic that fills it (issue 14).
Arrow's pool (mimalloc or jemalloc in the pyarrow wheels) keeps freed pages mapped and hands
them out again, so these arrays are allocated there: :func:`empty` is ``np.empty`` backed by an
Arrow buffer (an ordinary writable numpy array; the buffer is freed with it). Small arrays stay
with numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["POOL_MIN_BYTES", "copy", "empty", "run_index", "take"]

#: Arrays at least this large come from Arrow's pool (smaller ones from numpy's allocator,
#: which keeps them in the heap anyway).
POOL_MIN_BYTES = 256 * 1024


def empty(n: int, dtype: Any) -> npt.NDArray[Any]:
    """An uninitialised writable array of ``n`` items of ``dtype``."""
    dt = np.dtype(dtype)
    size = n * dt.itemsize
    if size < POOL_MIN_BYTES:
        return np.empty(n, dt)
    return np.frombuffer(pa.allocate_buffer(size), dt, n)


def copy(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A copy of the 1-d array ``a`` in an :func:`empty` array."""
    out = empty(a.shape[0], a.dtype)
    out[:] = a
    return out


def take(a: npt.NDArray[Any], idx: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """``a[idx]`` into an :func:`empty` array; ``idx`` must be in bounds (it is not checked:
    numpy's bounds-checking ``take`` would gather into a temporary array first)."""
    out = empty(idx.shape[0], a.dtype)
    np.take(a, idx, out=out, mode="clip")
    return out


def run_index(starts: npt.NDArray[np.int64], lens: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The rows ``starts[i]:starts[i]+lens[i]`` for each ``i`` in turn, as one index array.

    Built in place (a step of 1 everywhere, the jump to each run's start at its first
    position, one cumulative sum): no temporaries of the output's size.
    """
    keep = lens > 0
    if not keep.all():
        starts, lens = starts[keep], lens[keep]
    total = int(lens.sum())
    out = empty(total, np.int64)
    if not total:
        return out
    out.fill(1)
    first = np.zeros(lens.shape[0], np.int64)
    np.cumsum(lens[:-1], out=first[1:])
    jumps = np.empty(lens.shape[0], np.int64)
    jumps[0] = starts[0]
    # From the last row of run i-1 to the first of run i.
    jumps[1:] = starts[1:] - (starts[:-1] + lens[:-1] - 1)
    out[first] = jumps
    np.cumsum(out, out=out)
    return out
