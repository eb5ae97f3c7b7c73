"""The samples of a commit the head takes, and the refusals reported (for the store's commit).

Split out of :mod:`promlab.storage.store`: :func:`take` applies :mod:`promlab.storage.accept`'s
rules to one commit's samples — first per unit against the committed state (the remote-write
receiver's requests, refused whole when atomic), then in append order over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.storage.accept import (
    DUPLICATE,
    OOO,
    OUT_OF_BOUNDS,
    OUT_OF_ORDER,
    STORED,
    TOO_OLD,
    message,
    unit_refusals,
)
from promlab.storage.head import Head
from promlab.storage.interface import AppendStats

__all__ = ["Part", "bounds", "take"]

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]

#: One batch with its head refs: (series, refs, index, ts, values, units or None, atomic).
Part = tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64],
             npt.NDArray[np.float64], npt.NDArray[np.int64] | None, bool]


def _unit_drops(head: Head, parts: Sequence[Part], samples: Arrays, stats: AppendStats, *,
                head_maxt: int, min_valid: int, ooo_ms: int | None) -> npt.NDArray[np.bool_] | None:
    """Report the refusals of the batches with units; the samples of atomic units refused whole."""
    refs, ts, vals = samples
    pre = head.accept(refs, ts, vals, batch=False, head_maxt=head_maxt, min_valid=min_valid,
                      ooo_ms=ooo_ms)
    drop = None
    start = 0
    for series, r, index, t, v, units, atomic in parts:
        end = start + int(r.shape[0])
        if units is not None:
            code = pre[start:end]

            def describe(k: int, series: list[Labels] = series, r: npt.NDArray[np.int64] = r,
                         index: npt.NDArray[np.int64] = index, t: npt.NDArray[np.int64] = t,
                         v: npt.NDArray[np.float64] = v, code: npt.NDArray[np.int8] = code
                         ) -> tuple[str, Labels]:
                return (message(int(code[k]), int(t[k]), float(v[k]), float(head.last_value[int(r[k])])),
                        series[int(index[k])])

            got, gone = unit_refusals(code, units, atomic=atomic, describe=describe)
            stats.refusals.extend((u, text, ls) for u, (text, ls) in got)
            if gone is not None:
                if drop is None:
                    drop = np.zeros(refs.shape[0], bool)
                drop[start:end] = gone
        start = end
    return drop


def bounds(head: Head, hist_maxt: int | None, first_ts: int, *, block_ms: int, floor: int
           ) -> tuple[int, int]:
    """``(head max time, minimum valid time)`` for a commit (Prometheus's head appender's).

    The max time is over the float and histogram heads; an empty head takes the batch's first
    sample (Prometheus's init appender). The minimum valid time is half a block range before
    it, and not before ``floor`` (the last automatic flush's cut).
    """
    maxt = max((t for t in (head.max_time, hist_maxt) if t is not None), default=first_ts)
    return maxt, max(maxt - block_ms // 2, floor)


def take(head: Head, parts: Sequence[Part], stats: AppendStats, *, hist_maxt: int | None,
         block_ms: int, floor: int, ooo_ms: int | None) -> Arrays:
    """The samples of ``parts`` (concatenated) to store; refusals counted in ``stats``."""
    refs, ts, vals = (np.concatenate([p[k] for p in parts]) for k in (1, 3, 4))
    samples = (refs, ts, vals)
    head_maxt, min_valid = bounds(head, hist_maxt, int(ts[0]), block_ms=block_ms, floor=floor)
    if any(p[5] is not None for p in parts):
        drop = _unit_drops(head, parts, samples, stats, head_maxt=head_maxt, min_valid=min_valid,
                           ooo_ms=ooo_ms)
        if drop is not None:
            keep = ~drop
            refs, ts, vals = refs[keep], ts[keep], vals[keep]
    code = head.accept(refs, ts, vals, head_maxt=head_maxt, min_valid=min_valid, ooo_ms=ooo_ms)
    counts = np.bincount(code, minlength=DUPLICATE + 1).tolist()
    stats.out_of_order, stats.out_of_bounds = counts[OUT_OF_ORDER], counts[OUT_OF_BOUNDS]
    stats.too_old, stats.duplicates = counts[TOO_OLD], counts[DUPLICATE]
    if counts[STORED] + counts[OOO] < code.shape[0]:
        keep = code <= OOO
        refs, ts, vals = refs[keep], ts[keep], vals[keep]
    return refs, ts, vals
