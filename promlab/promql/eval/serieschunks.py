"""Range-vector functions evaluated over blocks of series, to bound their temporaries.

A range-vector function over ``S`` series and ``T`` steps builds many ``(S, T)`` temporaries
(window bounds, first and last samples, extrapolation terms), and some build per-sample ones
(reset flags, padded copies for ``reduceat``). Every such function except
``absent_over_time`` is series-local: series ``i`` of its result depends on series ``i`` of its
argument only. So the argument is cut into blocks of consecutive series (views of the CSR
arrays, no copies), the function runs per block, and each block's rows are written into one
preallocated result: the temporaries are those of one block, a few MB, whatever ``S``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from promlab.model import Labels
from promlab.promql.values import Matrix, Value, Vector

__all__ = [
    "BLOCK_CELLS",
    "BLOCK_SAMPLES",
    "NOT_SERIES_LOCAL",
    "blockable",
    "by_series_blocks",
    "series_blocks",
]

#: Most (series x steps) cells per block.
BLOCK_CELLS = 1 << 16
#: Most samples per block (a block has at least one series).
BLOCK_SAMPLES = 1 << 19
#: Functions of a range vector whose result rows are not one per argument series.
NOT_SERIES_LOCAL = frozenset({"absent_over_time"})


def series_blocks(m: Matrix) -> Iterator[Matrix]:
    """``m`` as consecutive blocks of series sharing its arrays (views), each within
    :data:`BLOCK_CELLS` cells and :data:`BLOCK_SAMPLES` samples (or one series)."""
    n_series = len(m.labels)
    n_steps = max(int(m.window_end_ms.shape[0]), 1)
    rows = max(BLOCK_CELLS // n_steps, 1)
    offs = m.offsets
    lo = 0
    while lo < n_series:
        hi = int(np.searchsorted(offs, offs[lo] + BLOCK_SAMPLES, side="right")) - 1
        hi = min(max(hi, lo + 1), lo + rows, n_series)
        a, b = int(offs[lo]), int(offs[hi])
        yield Matrix(m.labels[lo:hi], offs[lo:hi + 1] - a, m.ts_ms[a:b], m.values[a:b],
                     m.window_start_ms, m.window_end_ms, m.range_ms,
                     None if m.drop_name is None else m.drop_name[lo:hi], m.extension,
                     m.lookback_ms, None if m.histograms is None else m.histograms[a:b],
                     None if m.start_ts_ms is None else m.start_ts_ms[a:b],
                     None if m.bounds is None else (m.bounds[0][lo:hi] - a,
                                                    m.bounds[1][lo:hi] - a))
        lo = hi


def blockable(m: Matrix) -> bool:
    """Whether cutting ``m`` into blocks pays (more than one block) and keeps results exact
    (float samples only: histogram paths reorder their rows)."""
    if m.histograms is not None or m.extension is not None or m.start_ts_ms is not None:
        return False
    n_steps = int(m.window_end_ms.shape[0])
    return len(m.labels) * n_steps > BLOCK_CELLS or int(m.ts_ms.shape[0]) > BLOCK_SAMPLES


def by_series_blocks(m: Matrix, run: Callable[[Matrix], Value],
                     check: Callable[[], None]) -> Value:
    """``run(m)``, computed block by block (see the module docstring); ``check`` runs
    between blocks. Falls back to ``run(m)`` when a block's result is not a plain Vector."""
    n_series, n_steps = len(m.labels), int(m.window_end_ms.shape[0])
    values = np.empty((n_series, n_steps))
    present = np.empty((n_series, n_steps), bool)
    drop = np.empty(n_series, bool)
    labels: list[Labels] = []
    any_drop = False
    at = 0
    for k, block in enumerate(series_blocks(m)):
        if k:
            check()
        part = run(block)
        if not isinstance(part, Vector) or part.histograms is not None \
                or part.timestamps_ms is not None or part.start_ts_ms is not None \
                or part.values.shape[1:] != (n_steps,):
            return run(m)
        n = len(part.labels)
        values[at:at + n] = part.values
        present[at:at + n] = part.present
        if part.drop_name is not None:
            drop[at:at + n] = part.drop_name
            any_drop = True
        else:
            drop[at:at + n] = False
        labels.extend(part.labels)
        at += n
    # Rows past ``at`` (series a block dropped) are cut by views, not copies.
    return Vector(labels, values[:at], present[:at], drop[:at] if any_drop else None)
