"""The samples of a commit the head takes, and the refusals reported (for the store's commit).

Split out of :mod:`promlab.storage.store`: :func:`take` applies :mod:`promlab.storage.accept`'s
rules to one commit's samples — first per unit against the committed state (the remote-write
receiver's requests, refused whole when atomic, whether the refused sample is a float or a
native histogram), then in append order over the batch; :func:`take_histograms` does the same
for the commit's native histogram samples (:mod:`promlab.storage.histaccept`) once its floats
are in the head.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage.accept import (
    DUPLICATE,
    MESSAGES,
    NO_TS,
    OOO,
    OUT_OF_BOUNDS,
    OUT_OF_ORDER,
    TOO_OLD,
    message,
    unit_refusals,
)
from promlab.storage.head import Head
from promlab.storage.histaccept import HistogramCheck
from promlab.storage.histstore import HistogramBatch, HistogramHead
from promlab.storage.histstore import Item as HistItem
from promlab.storage.interface import AppendStats
from promlab.storage.seed import PersistedLatest

__all__ = ["Part", "Taken", "bounds", "histogram_check", "persisted_floor", "take",
           "take_histograms"]

AnyHist = Histogram | FloatHistogram
Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]

#: One batch with its head refs: (series, refs, index, ts, values, units or None, atomic).
Part = tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64],
             npt.NDArray[np.float64], npt.NDArray[np.int64] | None, bool]


class Taken(NamedTuple):
    """:func:`take`'s answer: the float samples to store, which histogram samples survive
    their atomic units (None: all) and the commit's ``(head_maxt, min_valid)``."""

    refs: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    vals: npt.NDArray[np.float64]
    hist_keep: npt.NDArray[np.bool_] | None
    head_maxt: int
    min_valid: int


def _float_latest(head: Head) -> Callable[[list[Labels]], npt.NDArray[np.int64]]:
    """Per series: the time of its latest float sample in ``head`` or, for a series the head
    does not have, in its seed of persisted samples (NO_TS: none)."""
    def get(series: list[Labels]) -> npt.NDArray[np.int64]:
        refs = np.array([-1 if (r := head.ref(ls.hash)) is None else r for ls in series],
                        np.int64)
        have = refs >= 0
        out = np.full(len(series), NO_TS, np.int64)
        out[have] = head.latest[refs[have]]
        if head.seed is not None:
            gone = ~have
            if gone.any():
                sids = np.array([ls.hash for ls in series], np.int64)
                out[gone] = head.seed.latest_of(sids[gone])[0]
        return out
    return get


def _histogram_latest(hhead: HistogramHead, seed: PersistedLatest | None
                      ) -> Callable[[Labels], tuple[int, AnyHist] | None]:
    """The series' latest histogram sample, from the histogram head or the persisted seed."""
    if seed is None:
        return hhead.latest

    def get(ls: Labels) -> tuple[int, AnyHist] | None:
        mine, persisted = hhead.latest(ls), seed.histogram_latest(ls)
        if mine is None or (persisted is not None and persisted[0] > mine[0]):
            return persisted
        return mine
    return get


def histogram_check(head: Head, hhead: HistogramHead, items: Sequence[HistItem]) -> HistogramCheck:
    """The acceptance check of ``items`` against both heads' current state (and the head's
    seed of persisted samples after a reopen)."""
    seed = head.seed
    holds = hhead.holds if seed is None else (
        lambda ls, t: hhead.holds(ls, t) or seed.holds_histogram(ls, t))
    return HistogramCheck(items, latest=_histogram_latest(hhead, seed),
                          float_latest=_float_latest(head), holds=holds)


def _foreign(head: Head, hhead: HistogramHead, refs: npt.NDArray[np.int64]
             ) -> npt.NDArray[np.int64] | None:
    """Per float sample: the time of its series' latest histogram sample (None while neither
    the histogram head nor the seed has one)."""
    if not refs.shape[0]:
        return None
    sids = head.sids[refs]
    mine = hhead.latest_times(sids) if hhead.maxt is not None else None
    persisted = None if head.seed is None else head.seed.histogram_latest_times(sids)
    if mine is None or persisted is None:
        return mine if persisted is None else persisted
    return np.maximum(mine, persisted)


def _unit_refusals(head: Head, parts: Sequence[Part], samples: Arrays,
                   foreign: npt.NDArray[np.int64] | None, hists: HistogramBatch | None,
                   hcheck: HistogramCheck | None, stats: AppendStats, *, head_maxt: int,
                   min_valid: int, ooo_ms: int | None) -> set[int]:
    """Report the refusals (against the committed state) of the samples with units; returns
    the atomic units refused (every sample of them is dropped)."""
    refs = samples[0]
    refused: set[int] = set()
    pre = np.zeros(0, np.int8)
    if refs.shape[0]:
        pre = head.accept(refs, samples[1], samples[2], batch=False, head_maxt=head_maxt,
                          min_valid=min_valid, ooo_ms=ooo_ms, foreign_latest=foreign)
    start = 0
    for series, r, index, t, v, units, atomic in parts:
        end = start + int(r.shape[0])
        if units is not None:
            code = pre[start:end]
            fl = None if foreign is None else foreign[start:end]

            def describe(k: int, series: list[Labels] = series, r: npt.NDArray[np.int64] = r,
                         index: npt.NDArray[np.int64] = index, t: npt.NDArray[np.int64] = t,
                         v: npt.NDArray[np.float64] = v, code: npt.NDArray[np.int8] = code,
                         fl: npt.NDArray[np.int64] | None = fl) -> tuple[str, Labels]:
                ref = int(r[k])
                hist = fl is not None and int(fl[k]) > int(head.latest[ref])
                return (message(int(code[k]), int(t[k]), float(v[k]), float(head.last_value[ref]),
                                existing_is_histogram=hist), series[int(index[k])])

            got, gone = unit_refusals(code, units, atomic=atomic, describe=describe)
            stats.refusals.extend((u, text, ls) for u, (text, ls) in got)
            if gone is not None:
                refused.update(u for u, _ in got)
        start = end
    if hists is not None and hcheck is not None and hists.has_units:
        units = np.array(hists.units, np.int64)
        code = hcheck.classify(head_maxt=head_maxt, min_valid=min_valid, ooo_ms=ooo_ms, batch=False)
        for atomic in (False, True):
            mine = np.array(hists.atomic, bool) == atomic
            if not mine.any():
                continue
            got, gone = unit_refusals(code, np.where(mine, units, -1), atomic=atomic,
                                      describe=lambda k: (MESSAGES[int(code[k])], hists.items[k][0]))
            stats.histogram_refusals.extend((u, text, ls) for u, (text, ls) in got)
            if gone is not None:
                refused.update(u for u, _ in got)
    return refused


def bounds(head: Head, hist_maxt: int | None, first_ts: int, *, block_ms: int,
           floor: int | None, persisted_maxt: int | None = None) -> tuple[int, int]:
    """``(head max time, minimum valid time)`` for a commit (Prometheus's head appender's).

    The max time is over the float and histogram heads and the persisted data
    (``persisted_maxt``: what promlab flushed on close Prometheus would still hold in its head,
    so the out-of-order window counts back from it after a reopen too); an empty head takes
    the batch's first sample (Prometheus's init appender). The minimum valid time is half a
    block range before it, and not before ``floor`` (Prometheus's head minimum valid time: see
    :func:`persisted_floor`; raised by every automatic flush, as by a head truncation).
    """
    known = [t for t in (head.max_time, hist_maxt, persisted_maxt) if t is not None]
    maxt = max(known, default=first_ts)
    return maxt, maxt - block_ms // 2 if floor is None else max(maxt - block_ms // 2, floor)


def persisted_floor(persisted_maxt: int | None, block_ms: int) -> int | None:
    """The head's minimum valid time on opening, from the newest persisted sample time
    (blocks and histogram files; None when none): half a block range before it.

    Prometheus starts its head's minimum valid time at the newest block's end (``db.go``,
    ``head.Init``), which lies at least half a block range behind its head's max time (the
    head is compacted once it spans 1.5 ranges), and its head, replayed from the WAL, still
    knows each series' latest sample. promlab's close flushes the whole head into blocks, so a
    reopened writer takes the floor Prometheus's appender would have (its max time minus half
    a range) and reads each series' latest sample of that last half range back from the
    blocks (:mod:`promlab.storage.seed`): at or before it a sample is a duplicate (the same
    value: taken once) or out of order, after it in order, even when older than other series'.
    """
    return None if persisted_maxt is None else persisted_maxt - block_ms // 2


def _count(stats: AppendStats, code: npt.NDArray[np.int8]) -> None:
    counts = np.bincount(code, minlength=DUPLICATE + 1).tolist()
    stats.out_of_order += counts[OUT_OF_ORDER]
    stats.out_of_bounds += counts[OUT_OF_BOUNDS]
    stats.too_old += counts[TOO_OLD]
    stats.duplicates += counts[DUPLICATE]


def take(head: Head, hhead: HistogramHead, parts: Sequence[Part], hists: HistogramBatch | None,
         stats: AppendStats, *, block_ms: int, floor: int | None, ooo_ms: int | None,
         persisted_maxt: int | None = None) -> Taken:
    """The float samples of ``parts`` (concatenated) to store, what of ``hists`` survives the
    atomic units' refusals, and the commit's bounds; refusals counted in ``stats``.

    The histograms' own commit check comes after the floats are in the head
    (:func:`take_histograms`): a histogram at the time of a float of the same commit is then a
    duplicate.
    """
    if parts:
        refs, ts, vals = (np.concatenate([p[k] for p in parts]) for k in (1, 3, 4))
    else:
        refs, ts, vals = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    items = hists.items if hists is not None else []
    first = int(ts[0]) if ts.shape[0] else items[0][1]
    head_maxt, min_valid = bounds(head, hhead.maxt, first, block_ms=block_ms, floor=floor,
                                  persisted_maxt=persisted_maxt)
    # Floats of series whose latest sample is a histogram (none while no histogram is known).
    foreign = _foreign(head, hhead, refs)
    hist_keep = None
    has_units = any(p[5] is not None for p in parts) or (hists is not None and hists.has_units)
    if has_units:
        hcheck = histogram_check(head, hhead, items) if items else None
        refused = _unit_refusals(head, parts, (refs, ts, vals), foreign, hists, hcheck, stats,
                                 head_maxt=head_maxt, min_valid=min_valid, ooo_ms=ooo_ms)
        if refused:
            gone = np.array(sorted(refused), np.int64)
            units = np.concatenate([p[5] if p[5] is not None and p[6] else np.full(p[1].shape[0], -1)
                                    for p in parts]) if parts else np.zeros(0, np.int64)
            keep = ~np.isin(units, gone)
            refs, ts, vals = refs[keep], ts[keep], vals[keep]
            foreign = None if foreign is None else foreign[keep]
            if hists is not None:
                hu = np.where(np.array(hists.atomic, bool), np.array(hists.units, np.int64), -1)
                hist_keep = ~np.isin(hu, gone)
    code = head.accept(refs, ts, vals, head_maxt=head_maxt, min_valid=min_valid, ooo_ms=ooo_ms,
                       foreign_latest=foreign)
    _count(stats, code)
    if int(np.count_nonzero(code <= OOO)) < code.shape[0]:
        keep = code <= OOO
        refs, ts, vals = refs[keep], ts[keep], vals[keep]
    return Taken(refs, ts, vals, hist_keep, head_maxt, min_valid)


def take_histograms(head: Head, hhead: HistogramHead, items: Sequence[HistItem],
                    keep: npt.NDArray[np.bool_] | None, stats: AppendStats, *, head_maxt: int,
                    min_valid: int, ooo_ms: int | None) -> list[HistItem]:
    """The histogram samples of a commit to store (``keep``: those not refused with their
    atomic unit), checked after the commit's floats; refusals counted in ``stats``."""
    if keep is not None:
        items = [it for it, k in zip(items, keep.tolist(), strict=True) if k]
    if not items:
        return []
    code = histogram_check(head, hhead, items).classify(head_maxt=head_maxt, min_valid=min_valid,
                                                        ooo_ms=ooo_ms)
    _count(stats, code)
    return [it for it, c in zip(items, code.tolist(), strict=True) if c <= OOO]
