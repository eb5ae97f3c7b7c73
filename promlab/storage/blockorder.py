"""The sample order rule of ``promtool tsdb create-blocks-from openmetrics`` (Prometheus 2.42).

promtool reads an import file once per aligned block range (2 h by default) and appends, in file
order, the samples of that range into a fresh head. So the order that matters is the order of a
series' samples *within one range*: a sample at or before an earlier sample of its series in the
same range is dropped (the first write wins),
while a series whose samples go back to an earlier range keeps them all (a file made of two
exports concatenated newest first imports whole).

:func:`block_order_filter` applies that rule to a buffer of samples in append order, without a
Python loop per series: one stable sort by (series, range), a running maximum per group.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from promlab.storage.accept import NO_TS, latest_before, running_max_by_series
from promlab.storage.merge import group_order, sort_order

__all__ = ["OrderResult", "block_order_filter"]


@dataclass(slots=True)
class OrderResult:
    """Which samples are kept (``keep``, in the input's order) and why the others were not."""

    keep: npt.NDArray[np.bool_]
    out_of_order: int = 0
    duplicates: int = 0
    #: With ``batch``: the first sample (input index) promtool's appender refuses, and why.
    refusal: tuple[int, str] | None = None


def block_order_filter(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], range_ms: int,
                       latest: npt.NDArray[np.int64], ooo_ms: int | None = 0, *,
                       values: npt.NDArray[np.float64] | None = None, batch: int = 0,
                       seen: dict[int, int] | None = None) -> OrderResult:
    """Keep each sample later than every earlier one of its series in its ``range_ms`` range.

    Parameters
    ----------
    refs, ts
        Samples in append (file) order; ``refs`` index ``latest``.
    range_ms
        The block range: ranges are ``[k * range_ms, (k + 1) * range_ms)``.
    latest
        Per series, the latest timestamp kept by an earlier call (``NO_TS``: none). It counts
        as an earlier sample of its own range only (earlier calls' older ranges are not
        remembered: a sample there is kept). Raised in place to include the kept samples.
    ooo_ms
        The store's out-of-order window: a sample refused by the range rule but not older than
        its series' latest so far minus ``ooo_ms`` is kept too (sorted in later); ``None``
        keeps every sample that does not repeat a timestamp. ``0``: promtool's rule alone.
    values, batch, seen
        With ``batch`` (promtool's 5000) and ``values``: find the first sample promtool's
        appender refuses, failing the whole import. promtool commits every ``batch`` samples
        of a range (in file order); a sample older than, or another value at the timestamp of,
        the latest of its series *committed* in its range is an error ("out of order sample",
        "duplicate sample for timestamp"), while one refused against samples of its own
        uncommitted batch is dropped without a word. ``seen``: per range, how many of its
        samples earlier calls had (updated in place).

    Returns
    -------
    OrderResult
        ``out_of_order``: refused as older than an earlier sample; ``duplicates``: refused as
        at an earlier sample's timestamp (an identical repeat too: a strict import refuses a
        file repeating a line, which promtool drops without a word).

    Examples
    --------
    >>> import numpy as np
    >>> H = 7_200_000
    >>> refs = np.array([0, 0, 0, 0, 0]); ts = np.array([3 * H, H, 3 * H, H - 5, H + 9])
    >>> latest = np.full(1, np.iinfo(np.int64).min)
    >>> r = block_order_filter(refs, ts, H, latest)
    >>> r.keep.tolist(), r.out_of_order, r.duplicates, int(latest[0]) == 3 * H
    ([True, True, False, True, True], 0, 1, True)
    """
    n = refs.shape[0]
    if n == 0:
        return OrderResult(np.zeros(0, bool))
    rng = ts // np.int64(range_ms)
    # Stable grouping by (series, range), keeping file order within each group: by series
    # (a linear radix sort for most imports), then by range only where a series goes back.
    order = group_order(refs)
    r, g = (refs, rng) if order is None else (refs[order], rng[order])
    t = ts if order is None else ts[order]
    new_ref = np.ones(n, bool)
    new_ref[1:] = r[1:] != r[:-1]
    if bool((new_ref[1:] | (t[1:] > t[:-1])).all()) and bool((t[new_ref] > latest[r[new_ref]]).all()):
        np.maximum.at(latest, r[new_ref], t[np.append(np.flatnonzero(new_ref)[1:] - 1, n - 1)])
        if batch > 0 and seen is not None:
            _add_seen(rng, seen)
        return OrderResult(np.ones(n, bool))  # every series in time order: the usual file
    if not bool(((r[1:] != r[:-1]) | (g[1:] >= g[:-1])).all()):
        order = sort_order(refs, rng)
        r, g = refs[order], rng[order]
    t = ts if order is None else ts[order]
    first = np.ones(n, bool)
    first[1:] = (r[1:] != r[:-1]) | (g[1:] != g[:-1])
    _, _, _, _, running = running_max_by_series(np.cumsum(first) - 1, t)
    before = np.empty(n, np.int64)
    before[0] = NO_TS
    before[1:] = running[:-1]
    before[first] = NO_TS
    seed = latest[r]
    seed = np.where((seed != NO_TS) & (seed // np.int64(range_ms) == g), seed, NO_TS)
    before = np.maximum(before, seed)
    ok = t > before
    keep_sorted = ok
    if ooo_ms is None or ooo_ms > 0:
        window = _within_window(refs, ts, latest, ooo_ms)
        keep_sorted = ok | ((t < before) & (window if order is None else window[order]))
    dup = ~keep_sorted & (t == before)
    if order is None:
        keep = keep_sorted.copy()
    else:
        keep = np.empty(n, bool)
        keep[order] = keep_sorted
    n_dup = int(dup.sum())
    n_ooo = int((~keep_sorted & (t < before)).sum())
    if (ooo_ms is None or ooo_ms > 0) and not bool(ok.all()):
        n_dup += _drop_repeats(refs, ts, keep)
    refusal = None
    if batch > 0 and values is not None and not bool(ok.all()):
        refusal = _appender_refusal(order, rng, g, t, values, first, running, ok, seed, batch,
                                    {} if seen is None else seen)
    elif batch > 0 and seen is not None:
        _add_seen(rng, seen)
    kept_refs, kept_ts = refs[keep], ts[keep]
    np.maximum.at(latest, kept_refs, kept_ts)
    return OrderResult(keep, n_ooo, n_dup, refusal)


def _add_seen(rng: npt.NDArray[np.int64], seen: dict[int, int]) -> None:
    lo = int(rng.min())
    if int(rng.max()) - lo < 1 << 20:  # ranges of a few years at most: one counting pass
        counts = np.bincount(rng - lo)
        keys = np.flatnonzero(counts)
        counts, keys = counts[keys], keys + lo
    else:
        keys, counts = np.unique(rng, return_counts=True)
    for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
        seen[k] = seen.get(k, 0) + c


def _count_seen(rng: npt.NDArray[np.int64], seen: dict[int, int]) -> npt.NDArray[np.int64]:
    """Each sample's rank among its range's samples (file order, after ``seen``'s); updates
    ``seen``."""
    n = rng.shape[0]
    o = np.argsort(rng, kind="stable")
    sr = rng[o]
    starts = np.flatnonzero(np.concatenate([[True], sr[1:] != sr[:-1]]))
    lens = np.diff(np.append(starts, n))
    base = np.array([seen.get(int(k), 0) for k in sr[starts].tolist()], np.int64)
    rank_sorted = np.arange(n) - np.repeat(starts, lens) + np.repeat(base, lens)
    for k, c in zip(sr[starts].tolist(), (base + lens).tolist(), strict=True):
        seen[int(k)] = c
    rank = np.empty(n, np.int64)
    rank[o] = rank_sorted
    return rank


def _appender_refusal(order: npt.NDArray[np.intp] | None, rng: npt.NDArray[np.int64],
                      g: npt.NDArray[np.int64], t: npt.NDArray[np.int64],
                      values: npt.NDArray[np.float64], first: npt.NDArray[np.bool_],
                      running: npt.NDArray[np.int64], ok: npt.NDArray[np.bool_],
                      seed: npt.NDArray[np.int64], batch: int, seen: dict[int, int]
                      ) -> tuple[int, str] | None:
    """The first sample (input index) refused against its series' committed latest (see
    :func:`block_order_filter`); arrays ``g``.. ``seed`` are in (series, range) order."""
    n = t.shape[0]
    b = _count_seen(rng, seen) // batch
    if order is not None:
        b = b[order]
    v = (values if order is None else values[order]).view(np.int64)
    pos = np.arange(n)
    seg_first = first.copy()
    seg_first[1:] |= b[1:] != b[:-1]
    seg = np.maximum.accumulate(np.where(seg_first, pos, 0))
    grp = np.maximum.accumulate(np.where(first, pos, 0))
    has_prev = seg > grp
    prev = np.maximum(seg - 1, 0)
    committed = np.where(has_prev, running[prev], NO_TS)
    committed = np.maximum(committed, seed)
    holder = np.maximum.accumulate(np.where(ok, pos, -1))[prev]
    # The committed latest's value is known when it is a sample of this call.
    known = has_prev & (holder >= grp) & (t[np.maximum(holder, 0)] == committed)
    bad_ooo = (committed != NO_TS) & (t < committed)
    bad_dup = known & (t == committed) & (v != v[np.maximum(holder, 0)])
    bad = bad_ooo | bad_dup
    if not bad.any():
        return None
    idx = np.flatnonzero(bad)
    inp = idx if order is None else order[idx]
    i = int(np.argmin(inp))
    why = "out of order sample" if bool(bad_ooo[idx[i]]) else "duplicate sample for timestamp"
    return int(inp[i]), why


def _within_window(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                   latest: npt.NDArray[np.int64], ooo_ms: int | None) -> npt.NDArray[np.bool_]:
    """Per sample (input order): not older than its series' latest so far minus ``ooo_ms``."""
    n = refs.shape[0]
    if ooo_ms is None:
        return np.ones(n, bool)
    order, _, t, _, _, before = latest_before(refs, ts, latest)
    ok_sorted: npt.NDArray[np.bool_] = (before == NO_TS) | (t >= before - np.int64(ooo_ms))
    if order is None:
        return ok_sorted
    ok = np.empty(n, bool)
    ok[order] = ok_sorted
    return ok


def _drop_repeats(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                  keep: npt.NDArray[np.bool_]) -> int:
    """Unkeep (in place) every kept sample repeating an earlier kept one's (series, timestamp);
    return how many."""
    idx = np.flatnonzero(keep)
    order = sort_order(refs[idx], ts[idx])  # stable: the first in file order leads its run
    r, t = refs[idx][order], ts[idx][order]
    rep = np.zeros(idx.shape[0], bool)
    rep[1:] = (r[1:] == r[:-1]) & (t[1:] == t[:-1])
    keep[idx[order][rep]] = False
    return int(rep.sum())
