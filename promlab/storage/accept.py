"""Which float samples the head takes: Prometheus 3.x's rules, vectorised.

A sample of a series is checked against the series' latest *in-order* sample (its timestamp
``latest`` and value ``last_value``) and the head's bounds, as Prometheus's head appender does
(``tsdb/head_append.go``: ``appendable``):

* at or after the head's minimum valid time (``min_valid``: the head's max time minus half a
  block range, and not before the last flushed block's end):
  newer than the series' latest → stored (in order); at its timestamp with the bitwise same
  value → :data:`SAME` (taken, nothing stored twice); at its timestamp with another value →
  :data:`DUPLICATE` ("duplicate sample for timestamp": the first write wins);
* otherwise, with an out-of-order window ``ooo_ms > 0``: at or after ``head_maxt - ooo_ms``
  → stored out of order (:data:`OOO`), unless the series already has a sample at that
  timestamp (:data:`OOO_SAME`: dropped silently, as Prometheus's out-of-order head chunk
  drops an insert at a timestamp it holds, whatever the value); older → :data:`TOO_OLD`;
* with no window (``ooo_ms == 0``, Prometheus's default): before ``min_valid`` →
  :data:`OUT_OF_BOUNDS` (also for a new series), else :data:`OUT_OF_ORDER`.

A series' float and native histogram samples share its latest timestamp, as in Prometheus
(one head chunk series): ``foreign_latest`` gives the latest sample of the *other* kind; at
that timestamp any sample is :data:`DUPLICATE` (a float is never the same as a histogram).
Native histogram samples go through :func:`classify` too (:mod:`.histaccept`), with each
distinct histogram stood for by an id in the value column.

``ooo_ms=None`` is promlab's unlimited window: every older sample is taken out of order and
``min_valid`` is not applied (backfilling history into a live store); an older sample at a
timestamp already held replaces it (a correction of history: the last write wins).

Two views of one batch: :func:`classify` with ``batch=False`` checks every sample against the
committed state only — what Prometheus's ``Append`` answers, on which remote write 1.0 refuses
a whole request; with ``batch=True`` the batch's earlier samples of a series count too — what
Prometheus's commit does, where a later sample out of order or duplicate against an earlier
one of the same batch is dropped (the first of two samples at one timestamp wins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from promlab.model.arrays import unique
from promlab.model.value import format_go_float
from promlab.storage.merge import group_order

__all__ = ["DUPLICATE", "MESSAGES", "NO_TS", "OOO", "OOO_SAME", "OUT_OF_BOUNDS", "OUT_OF_ORDER",
           "SAME", "STORED", "TOO_OLD", "classify", "latest_before", "message",
           "running_max_by_series",
           "unit_refusals"]

NO_TS = np.iinfo(np.int64).min

#: Verdicts (int8 codes). Below :data:`SAME`: stored; :data:`SAME` and :data:`OOO_SAME`: taken
#: without storing anything; from :data:`OUT_OF_ORDER` on: refused (an error in Prometheus).
STORED, OOO, SAME, OOO_SAME, OUT_OF_ORDER, OUT_OF_BOUNDS, TOO_OLD, DUPLICATE = range(8)

#: Prometheus's error text of each refusal (``storage/interface.go``).
MESSAGES = {OUT_OF_ORDER: "out of order sample", OUT_OF_BOUNDS: "out of bounds",
            TOO_OLD: "too old sample", DUPLICATE: "duplicate sample for timestamp"}

R = TypeVar("R")

Exists = Callable[[npt.NDArray[np.int64], npt.NDArray[np.int64]], npt.NDArray[np.bool_]]


def _bits(v: npt.NDArray[np.float64]) -> npt.NDArray[np.uint64]:
    return np.ascontiguousarray(v, np.float64).view(np.uint64)


def _judge(ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64], before: npt.NDArray[np.int64],
           before_val: npt.NDArray[np.float64], head_maxt: int, min_valid: int,
           ooo_ms: int | None, foreign: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.int8]:
    """The verdict of each sample against the latest in-order sample before it (``foreign``:
    that sample is of the other value kind, so never the same)."""
    fresh = before == NO_TS
    recent = ts >= np.int64(min_valid) if ooo_ms is not None else np.ones(ts.shape[0], bool)
    at = recent & ~fresh & (ts == before)
    same = at & (_bits(vals) == _bits(before_val))
    if foreign is not None:
        same &= ~foreign
    code = np.full(ts.shape[0], OUT_OF_ORDER, np.int8)
    if ooo_ms is None:
        code[:] = OOO
    elif ooo_ms > 0:
        code[:] = np.where(ts >= np.int64(head_maxt - ooo_ms), OOO, TOO_OLD)
    else:
        code[ts < np.int64(min_valid)] = OUT_OF_BOUNDS
    code[recent & (fresh | (ts > before))] = STORED
    code[at] = DUPLICATE
    code[same] = SAME
    return code


def running_max_by_series(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]
                          ) -> tuple[npt.NDArray[np.intp] | None, npt.NDArray[np.int64],
                                     npt.NDArray[np.int64], npt.NDArray[np.bool_],
                                     npt.NDArray[np.int64]]:
    """Samples grouped by series (stably, so append order within a series) and each one's
    running maximum timestamp within its series, without a Python loop per series.

    Returns ``(order, refs, ts, first, running)``: the grouping permutation (None when
    ``refs`` is already grouped), the grouped refs and timestamps, where each series starts,
    and the running maximum. Shared by the head's acceptance (:func:`classify`) and the
    backfill's order check (:func:`promlab.storage.backfill.check_order`).
    """
    n = refs.shape[0]
    order = group_order(refs)
    r, t = (refs, ts) if order is None else (refs[order], ts[order])
    first = np.ones(n, bool)
    first[1:] = r[1:] != r[:-1]
    if first.all():  # one sample per series (a scrape's batch): nothing to accumulate
        return order, r, t, first, t
    g = np.cumsum(first) - 1
    tmin = int(t.min())
    span = int(t.max()) - tmin + 1
    if span * (int(g[-1]) + 1) < (1 << 62):
        # Running max per series in one pass: shift each series above the previous one.
        shift = g * np.int64(span)
        running = np.maximum.accumulate((t - np.int64(tmin)) + shift) - shift + np.int64(tmin)
    else:
        running = np.empty(n, np.int64)
        starts = np.flatnonzero(first)
        for a, b in zip(starts.tolist(), [*starts[1:].tolist(), n], strict=True):
            running[a:b] = np.maximum.accumulate(t[a:b])
    return order, r, t, first, running


def latest_before(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                  latest: npt.NDArray[np.int64]
                  ) -> tuple[npt.NDArray[np.intp] | None, npt.NDArray[np.int64],
                             npt.NDArray[np.int64], npt.NDArray[np.bool_],
                             npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """:func:`running_max_by_series` (``refs`` non-empty) and, per grouped sample, the latest
    timestamp of its series before it: the stored ``latest[ref]`` and the batch's earlier
    samples (``NO_TS``: none). Returns ``(order, refs, ts, first, running, before)``; shared by
    the backfill's order check and promtool's block order (:mod:`promlab.storage.blockorder`)."""
    order, r, t, first, running = running_max_by_series(refs, ts)
    before = np.empty(refs.shape[0], np.int64)
    before[0] = NO_TS
    before[1:] = running[:-1]
    before[first] = NO_TS
    return order, r, t, first, running, np.maximum(before, latest[r])


def _batch_latest(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                  vals: npt.NDArray[np.float64]
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """Per sample, the newest earlier sample of its series in the batch (first of equal ones):
    its timestamp (NO_TS: none) and value; None when no series has two samples."""
    n = refs.shape[0]
    if n < 2:
        return None
    order, _, t, first, running = running_max_by_series(refs, ts)
    if first.all():
        return None
    before = np.empty(n, np.int64)
    before[1:] = running[:-1]
    before[first] = NO_TS
    # Where the running max was first reached: the sample whose value counts at that time.
    src = np.maximum.accumulate(np.where(first | (t > before), np.arange(n), -1))
    src_before = np.empty(n, np.int64)
    src_before[1:] = src[:-1]
    src_before[first] = 0
    v = vals if order is None else vals[order]
    before_val = v[src_before]
    if order is None:
        return before, before_val
    out_t = np.empty(n, np.int64)
    out_v = np.empty(n, np.float64)
    out_t[order] = before
    out_v[order] = before_val
    return out_t, out_v


def classify(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], vals: npt.NDArray[np.float64],
             latest: npt.NDArray[np.int64], last_value: npt.NDArray[np.float64], *,
             head_maxt: int, min_valid: int, ooo_ms: int | None, batch: bool = True,
             exists: Exists | None = None,
             foreign_latest: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.int8]:
    """The verdict (see the module docstring) of each sample, in append order.

    Parameters
    ----------
    refs, ts, vals
        The samples: series ref (an index into ``latest``/``last_value``), time, value.
    latest, last_value
        Per ref: the timestamp of the latest in-order sample (NO_TS: none) and its value.
    head_maxt, min_valid
        The head's max time and minimum valid time before the batch.
    ooo_ms
        The out-of-order window (0: none; None: unlimited).
    batch
        Count the batch's earlier samples of a series (a commit); False: the committed state only.
    exists
        ``exists(refs, ts)``: which (ref, ts) the store already holds, to drop out-of-order
        samples at a timestamp already stored (:data:`OOO_SAME`); None skips that check.
    foreign_latest
        Per sample: the timestamp of its series' latest sample of the other value kind
        (NO_TS: none), which counts as the series' latest when newer (see the module).
    """
    if refs.shape[0] == 0:
        return np.zeros(0, np.int8)
    before = latest[refs]
    before_val = last_value[refs]
    foreign = None
    if foreign_latest is not None:
        foreign = foreign_latest > before
        before = np.where(foreign, foreign_latest, before)
    if batch:
        earlier = _batch_latest(refs, ts, vals)
        if earlier is not None:
            newer = earlier[0] > before
            before = np.where(newer, earlier[0], before)
            before_val = np.where(newer, earlier[1], before_val)
            if foreign is not None:
                foreign &= ~newer
    code = _judge(ts, vals, before, before_val, head_maxt, min_valid, ooo_ms, foreign)
    ooo = code == OOO
    if batch and ooo_ms is not None and ooo.any():
        _drop_ooo_clashes(refs, ts, code, ooo, exists)
    return code


def _drop_ooo_clashes(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                      code: npt.NDArray[np.int8], ooo: npt.NDArray[np.bool_],
                      exists: Exists | None) -> None:
    """Mark out-of-order samples at a timestamp already held as :data:`OOO_SAME` (in place)."""
    pos = np.flatnonzero(ooo)
    if exists is not None:
        held = exists(refs[pos], ts[pos])
        code[pos[held]] = OOO_SAME
    # Against the batch's earlier stored samples of the same series: the first one wins. Only
    # out-of-order ones can repeat a timestamp (in-order ones are strictly increasing).
    cand = np.isin(refs, unique(refs[pos])) & (code <= OOO)
    idx = np.flatnonzero(cand)
    o = np.lexsort((idx, ts[idx], refs[idx]))
    i = idx[o]
    rep = np.zeros(i.shape[0], bool)
    rep[1:] = (refs[i[1:]] == refs[i[:-1]]) & (ts[i[1:]] == ts[i[:-1]])
    code[i[rep]] = OOO_SAME


def message(code: int, ts: int, value: float, existing: float, *,
            existing_is_histogram: bool = False) -> str:
    """Prometheus's error text for a refused float sample (``existing_is_histogram``: the
    series' latest sample is a native histogram)."""
    if code == DUPLICATE and existing_is_histogram:
        return (f"duplicate sample for timestamp {ts}; overrides not allowed: existing is a "
                f"histogram, new value {format_go_float(value)}")
    if code == DUPLICATE:
        return (f"duplicate sample for timestamp {ts}; overrides not allowed: existing "
                f"{format_go_float(existing)}, new value {format_go_float(value)}")
    return MESSAGES[code]


def unit_refusals(code: npt.NDArray[np.int8], units: npt.NDArray[np.int64], *, atomic: bool,
                  describe: Callable[[int], R]) -> tuple[list[tuple[int, R]], npt.NDArray[np.bool_] | None]:
    """The refusals of a batch with units (``code`` from ``classify(batch=False)``).

    Returns ``(unit, describe(position))`` of each refused sample (atomic: of the first per
    unit) and, when atomic and something was refused, the mask of the samples to drop (every
    sample of a unit with a refusal). Samples of a negative unit are in no unit: their
    refusals are not reported (and they are checked at commit only).
    """
    bad = np.flatnonzero((code >= OUT_OF_ORDER) & (units >= 0))
    if bad.shape[0] == 0:
        return [], None
    if not atomic:
        return [(int(units[p]), describe(int(p))) for p in bad.tolist()], None
    refused, first = np.unique(units[bad], return_index=True)
    out = [(int(u), describe(int(bad[f]))) for u, f in zip(refused.tolist(), first.tolist(), strict=True)]
    return out, np.isin(units, refused)
