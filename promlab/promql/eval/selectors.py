"""Vector and matrix selectors: storage reads turned into whole-query value frames.

Both selectors work on all series and all steps at once. For a vector selector, the index of
the last sample at or before each step's reference time comes from one ``searchsorted`` of the
samples against the step times plus a per-series cumulative count (``O(N log T + S*T)``), never a
loop over series or steps. Large frames are built in chunks of series so that a query can be
interrupted between chunks and is refused (:class:`~promlab.errors.TooManySamples`) before the
whole frame exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.errors import TooManySamples
from promlab.model import STALE_NAN_BITS, stale_mask
from promlab.model.histogram import CounterResetHint
from promlab.promql.eval import histops, histstats
from promlab.promql.eval.functions._common import warn
from promlab.promql.eval.matrixspan import spanned_arrays
from promlab.promql.eval.state import EvalState
from promlab.promql.parser.ast import MatrixSelector, VectorSelector
from promlab.promql.values import F64, I64, B, EvalContext, Matrix, Vector
from promlab.storage.interface import SeriesSet

__all__ = [
    "concat_time_slices",
    "count_at_or_before",
    "eval_matrix_selector",
    "eval_vector_selector",
    "first_step_at_or_after",
    "param_drift",
    "read_limit",
    "reference_times",
    "run_counts",
]

# Dense (series x steps) cells built at once by a vector selector; larger frames are built in
# row chunks with cancellation, timeout and sample-count checks between them.
DENSE_CHUNK_CELLS = 1_000_000
# Samples per chunk of series (bounds the per-sample temporaries of count_at_or_before).
CHUNK_SAMPLES = 1 << 17


def reference_times(ctx: EvalContext, at_ms: int | None, at_modifier: str | None,
                    offset_ms: int) -> I64:
    """The time each step looks at: the step (or the pinned ``@`` time) minus the offset."""
    at = resolve_at(ctx, at_ms, at_modifier)
    if at is None:
        return ctx.steps_ms - offset_ms
    # int64 arithmetic as Go's: an @ time near the ends of int64 wraps around with its offset
    # (nothing is there either way), rather than overflowing numpy.
    return np.full(ctx.num_steps, (at - offset_ms + 2**63) % 2**64 - 2**63, np.int64)


def param_drift(ctx: EvalContext, at_ms: int | None,
                at_modifier: str | None = None) -> I64 | None:
    """How far a node pinned with ``@ <time>`` has moved at each step (None: it stays put).

    Prometheus applies ``@`` as an offset from the first step of the range being evaluated
    (the query's start or a subquery's first step) and relies on its preprocessing to
    evaluate pinned subtrees at that step only. The preprocessing never looks into an
    aggregation's parameter (``ctx.at_moves``), so there a pinned selector is read at every
    step, its reference time moving along with the steps, over only the data loaded around
    its ``@`` time: ``topk(scalar(x @ t), g)`` over a range reads x at ``t`` at the first
    step, then later and later until the lookback from there has passed ``t`` (k is NaN).
    Below subqueries it may also stand moved by a constant (``ctx.at_shift_ms``, see
    :func:`.subquery.at_shift`), over the same data.
    """
    if ctx.num_steps == 0:
        return None
    if not (ctx.at_moves and at_ms is not None):
        if ctx.at_shift_ms and (at_ms is not None or at_modifier is not None):
            return np.full(ctx.num_steps, ctx.at_shift_ms, np.int64)
        return None
    first = ctx.range_start_ms if ctx.range_start_ms is not None else int(ctx.steps_ms[0])
    return ctx.steps_ms - first + ctx.at_shift_ms


def read_limit(ctx: EvalContext, at_ms: int | None, offset_ms: int) -> int | None:
    """The latest sample time an unpinned selector below a moving pinned subquery reads
    (Prometheus loads its data only up to the subquery's ``@`` time), else None."""
    if at_ms is not None or ctx.read_until_ms is None:
        return None
    return ctx.read_until_ms - offset_ms


def resolve_at(ctx: EvalContext, at_ms: int | None, at_modifier: str | None) -> int | None:
    """The ``@`` time in ms: an explicit timestamp, the query's start or end, or None."""
    if at_ms is not None:
        return int(at_ms)
    if at_modifier == "start":
        return int(ctx.start_ms)
    if at_modifier == "end":
        return int(ctx.end_ms)
    return None


def first_step_at_or_after(ref_ms: I64, ts_ms: I64) -> I64:
    """For each timestamp, the first step ``j`` with ``ref_ms[j] >= ts`` (``T`` if none).

    Evenly spaced steps (every range query) need only arithmetic; a constant reference time
    (``@``) a comparison; anything else one ``searchsorted``. ``ref_ms`` must be ascending.
    """
    n_steps = ref_ms.shape[0]
    if n_steps == 0:
        return np.zeros(ts_ms.shape[0], np.int64)
    r0 = int(ref_ms[0])
    if n_steps == 1:
        return (ts_ms > r0).astype(np.int64)
    d = np.diff(ref_ms)
    step = int(d[0])
    if (d == step).all():
        if step == 0:
            return np.where(ts_ms > r0, n_steps, 0).astype(np.int64)
        pos = -((r0 - ts_ms) // step)  # ceil((ts - r0) / step)
        np.clip(pos, 0, n_steps, out=pos)
        return pos
    return np.searchsorted(ref_ms, ts_ms, side="left").astype(np.int64)


def _series_of(offsets: I64) -> I64:
    n_series = offsets.shape[0] - 1
    return np.repeat(np.arange(n_series, dtype=np.int64), np.diff(offsets))


def count_at_or_before(ts_ms: I64, offsets: I64, ref_ms: I64,
                       series_of: I64 | None = None) -> I64:
    """``(S, T)``: how many samples of series ``i`` have a timestamp ``<= ref_ms[j]``.

    ``ref_ms`` must be ascending. Sample ``k`` counts for step ``j`` iff its first step with
    ``ref >= ts`` is at most ``j``; a bincount of (series, first step) and a cumulative sum
    give all counts at once.
    """
    n_series = offsets.shape[0] - 1
    n_steps = ref_ms.shape[0]
    if n_series == 0:
        return np.zeros((0, n_steps), np.int64)
    if series_of is None:
        series_of = _series_of(offsets)
    keys = series_of * (n_steps + 1)
    keys += first_step_at_or_after(ref_ms, ts_ms)
    counts = np.bincount(keys, minlength=n_series * (n_steps + 1)).reshape(n_series, n_steps + 1)
    return np.cumsum(counts[:, :n_steps], axis=1)


def run_counts(ts_ms: I64, starts: I64, ends: I64, ref_ms: I64) -> I64:
    """``(S, T)``: :func:`count_at_or_before` for runs ``ts_ms[starts[i]:ends[i]]`` that need
    not be adjacent (a :class:`SeriesSet` in view form); ``ref_ms`` ascending.

    When the runs are in order and their gaps small the span holding them is read in place
    (gap samples counted in a dropped extra row); otherwise only the runs' timestamps are
    gathered.
    """
    n_series, n_steps = starts.shape[0], ref_ms.shape[0]
    if n_series == 0:
        return np.zeros((0, n_steps), np.int64)
    lens = ends - starts
    total = int(lens.sum())
    a, b = int(starts[0]), int(ends[-1])
    ordered = n_series == 1 or bool((starts[1:] >= ends[:-1]).all())
    if ordered and b - a <= 2 * total:
        gaps = starts[1:] - ends[:-1]
        if n_series > 1 and bool(gaps.any()):
            segs = np.empty(2 * n_series - 1, np.int64)
            segs[0::2], segs[1::2] = lens, gaps
            ids = np.full(2 * n_series - 1, n_series, np.int64)
            ids[0::2] = np.arange(n_series)
            series_of = np.repeat(ids, segs)
        else:
            series_of = np.repeat(np.arange(n_series, dtype=np.int64), lens)
        ts = ts_ms[a:b]
    else:
        before = np.zeros(n_series, np.int64)
        np.cumsum(lens[:-1], out=before[1:])
        ts = ts_ms[np.repeat(starts - before, lens) + np.arange(total, dtype=np.int64)]
        series_of = np.repeat(np.arange(n_series, dtype=np.int64), lens)
    keys = series_of * (n_steps + 1)
    keys += first_step_at_or_after(ref_ms, ts)
    counts = np.bincount(keys, minlength=(n_series + 1) * (n_steps + 1))
    counts = counts[:n_series * (n_steps + 1)].reshape(n_series, n_steps + 1)
    out: I64 = np.cumsum(counts[:, :n_steps], axis=1)
    return out


def eval_vector_selector(node: VectorSelector, ev: EvalState, ctx: EvalContext) -> Vector:
    """``name{matchers} offset o @ t``: the latest sample in ``(ref - lookback, ref]`` per step.

    A stale marker as the latest sample makes the series absent at that step.
    """
    ref = reference_times(ctx, node.at_ms, node.at_modifier, node.offset_ms)
    n_steps = ref.shape[0]
    lookback = ctx.lookback_ms
    if n_steps == 0:
        return Vector.empty(0)
    if node.smoothed:
        return _smoothed_vector(node, ev, ctx, ref)
    ref_lo, ref_hi = (int(ref[0]),) * 2 if n_steps == 1 else (int(ref.min()), int(ref.max()))
    lo_ms = ref_lo - lookback + 1
    drift = param_drift(ctx, node.at_ms, node.at_modifier)
    if drift is not None:  # read around the @ time, at moving reference times
        ref = ref + drift
    limit = read_limit(ctx, node.at_ms, node.offset_ms)
    if limit is not None:
        ref_hi = min(ref_hi, limit)
        if ref_hi < lo_ms:
            return Vector.empty(n_steps)
    if id(node) in ev.stats_nodes:
        ss = histstats.reread(ev.select(node.matchers, lo_ms - 1, ref_hi),
                              histstats.vector_seeks(ref, lookback), lo_ms, vector=True)
    else:
        # Runs read in place (view form): no copy of what the range cuts out of cached blocks.
        ss = ev.select(node.matchers, lo_ms, ref_hi, views=True)
    n_series = len(ss.labels)
    if n_series == 0:
        return Vector.empty(n_steps)
    ev.check_dense(n_series * n_steps)
    out = _latest_frame(ss, ref, lookback, ev)
    if ctx.use_start_timestamps and ss.start_ts_ms is not None:
        out.start_ts_ms = _selected_start_ts(ss, out, ref)
    return out


def _latest_frame(ss: SeriesSet, ref: I64, lookback: int, ev: EvalState) -> Vector:
    """The vector selector's frame over all series of ``ss``, built into preallocated arrays
    in chunks of series (bounded in cells and in samples, so the per-sample temporaries stay
    small), checking the limits between chunks; series without points are dropped."""
    n_series, n_steps = len(ss.labels), ref.shape[0]
    if n_steps == 1:
        one = _latest_one_step(ss, int(ref[0]), lookback, ev)
        if one is not None:
            return one
    values = np.empty((n_series, n_steps))
    present = np.empty((n_series, n_steps), bool)
    keep_ts = ev.keep_timestamps
    timestamps = np.empty((n_series, n_steps), np.int64) if keep_ts else None
    hists: npt.NDArray[np.object_] | None = None
    rows_per_chunk = max(DENSE_CHUNK_CELLS // n_steps, 1)
    offs = np.zeros(n_series + 1, np.int64)  # samples before each series
    np.cumsum(ss.lengths(), out=offs[1:])
    held = 0
    lo = 0
    while lo < n_series:
        hi = int(np.searchsorted(offs, offs[lo] + CHUNK_SAMPLES, side="right")) - 1
        hi = min(max(hi, lo + 1), lo + rows_per_chunk, n_series)
        if lo:
            ev.check()
        h = _latest_samples(ss, lo, hi, ref, lookback, values[lo:hi], present[lo:hi],
                            None if timestamps is None else timestamps[lo:hi])
        if h is not None:
            if hists is None:
                hists = np.full((n_series, n_steps), None, object)
            hists[lo:hi] = h
        held += int(np.count_nonzero(present[lo:hi]))
        if held > ev.max_samples:
            raise TooManySamples()
        lo = hi
    if n_series > rows_per_chunk:
        ev.check()
    keep = present.any(axis=1)
    labels = list(ss.labels)
    if not keep.all():
        rows = np.flatnonzero(keep)
        labels = [labels[i] for i in rows.tolist()]
        values, present = values[rows], present[rows]
        timestamps = None if timestamps is None else timestamps[rows]
        hists = None if hists is None else hists[rows]
    if hists is not None and not any(x is not None for x in hists.flat):
        hists = None
    return Vector(labels, values, present, None, timestamps, hists)


def _latest_one_step(ss: SeriesSet, ref: int, lookback: int, ev: EvalState) -> Vector | None:
    """:func:`_latest_frame` for one step (an instant query): a run's latest sample is its last
    one when no run holds a sample past ``ref`` (a selection over ``(ref - lookback, ref]``
    holds none), so no per-sample work is done; None when some run does (then the general
    path answers)."""
    starts, ends = ss.bounds()
    ts = ss.ts_ms
    if ts.shape[0] == 0:
        return None
    # (count_nonzero rather than .any()/.all(): their Python wrappers cost more than the work
    # on a few hundred series, and this runs on every warm instant query)
    last = ends - 1  # an empty run's -1 is clipped to 0 (and is absent below)
    last_ts = ts.take(last, mode="clip")
    has = ends > starts
    late = last_ts > ref
    if np.count_nonzero(late) and np.count_nonzero(late & has):
        return None
    values = ss.values.take(last, mode="clip")
    present = has
    present &= last_ts > ref - lookback
    present &= values.view(np.int64) != STALE_NAN_BITS
    hists: npt.NDArray[np.object_] | None = None
    if ss.histograms is not None:
        last_h = ss.histograms.take(last, mode="clip")
        if any(x is not None for x in last_h[present]):
            hists = np.full((present.shape[0], 1), None, object)
            hists[present, 0] = last_h[present]
    labels = list(ss.labels)
    held = int(np.count_nonzero(present))
    if held > ev.max_samples:
        raise TooManySamples()
    if held == present.shape[0]:  # the usual case: nothing to blank or drop
        timestamps = last_ts if ev.keep_timestamps else None
    else:
        rows = np.flatnonzero(present)
        labels = [labels[i] for i in rows.tolist()]
        values = values[rows]
        timestamps = last_ts[rows] if ev.keep_timestamps else None
        hists = None if hists is None else hists[rows]
        present = present[rows]
    return Vector(labels, values[:, None], present[:, None], None,
                  None if timestamps is None else timestamps[:, None], hists)


def _smoothed_vector(node: VectorSelector, ev: EvalState, ctx: EvalContext, ref: I64) -> Vector:
    """``name smoothed``: the value at each reference time itself, linearly interpolated
    between the samples around it (each within the lookback delta), else the last sample
    before it (stale markers ignored)."""
    lb = ctx.lookback_ms
    n_steps = ref.shape[0]
    ss = strip_stale(ev.select(node.matchers, int(ref.min()) - lb + 1, int(ref.max()) + lb))
    n_series = len(ss.labels)
    if n_series == 0:
        return Vector.empty(n_steps)
    ev.check_dense(n_series * n_steps)
    ts, vals = ss.ts_ms, ss.values
    s0, s1 = ss.offsets[:-1, None], ss.offsets[1:, None]
    cnt = count_at_or_before(ts, ss.offsets, ref)
    prev = s0 + cnt - 1
    has_prev = cnt > 0
    prev_c = np.where(has_prev, prev, 0)
    nxt = prev + 1
    nxt_c = np.minimum(nxt, max(ts.shape[0] - 1, 0))
    r = ref[None, :]
    has_prev &= ts[prev_c] > r - lb
    exact = has_prev & (ts[prev_c] == r)
    has_next = (nxt < s1) & (ts[nxt_c] <= r + lb)
    interp = has_prev & ~exact & has_next
    with np.errstate(all="ignore"):
        t0, t1 = ts[prev_c], ts[nxt_c]
        v0, v1 = vals[prev_c], vals[nxt_c]
        inter = v0 + (v1 - v0) * ((r - t0) / (t1 - t0))
    values = np.where(interp, inter, v0)
    present = has_prev
    hist = None
    if ss.histograms is not None:
        hist = smoothed_histograms(ss, prev_c, nxt_c, exact, interp, present, ref, ctx, node)
    keep = present.any(axis=1)
    rows = np.flatnonzero(keep)
    labels = [ss.labels[i] for i in rows.tolist()]
    values = np.where(present, values, 0.0)[rows]
    out = Vector(labels, values, present[rows], None, None)
    if hist is not None:
        out.histograms = hist[rows]
    return out


def smoothed_histograms(ss: SeriesSet, prev: I64, nxt: I64, exact: B, interp: B, present: B,
                        ref: I64, ctx: EvalContext, node: VectorSelector,
                        ) -> npt.NDArray[np.object_]:
    """The histogram cells of a smoothed vector selector (``present`` is cleared where a
    histogram and a float would be interpolated)."""
    hs = ss.histograms
    assert hs is not None
    out = np.full(present.shape, None, object)
    mixed = _mixed_kinds(ss, ref, ctx.lookback_ms)
    for r in np.flatnonzero(mixed.any(axis=1)).tolist():
        warn(ctx, "encountered a mix of histograms and floats for metric name "
             f'"{ss.labels[r].name}"', node)
    present &= ~mixed
    rows, cols = np.nonzero(present)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        a = hs[prev[r, c]]
        if not interp[r, c]:
            if a is not None:
                out[r, c] = a if exact[r, c] else a.with_hint(CounterResetHint.UNKNOWN)
            continue
        b = hs[nxt[r, c]]
        if a is None and b is None:
            continue
        if a is None or b is None or a.is_custom != b.is_custom:
            present[r, c] = False
            if a is not None and b is not None:
                warn(ctx, "vector contains a mix of histograms with exponential and custom "
                     f'buckets schemas for metric name "{ss.labels[r].name}"', node)
            continue
        t0, t1 = int(ss.ts_ms[prev[r, c]]), int(ss.ts_ms[nxt[r, c]])
        frac = (int(ref[c]) - t0) / (t1 - t0)
        gauge = a.counter_reset_hint == b.counter_reset_hint == CounterResetHint.GAUGE
        if not gauge and histops.detect_reset(b, a):
            out[r, c] = histops.mul(b, frac).with_hint(b.counter_reset_hint)
        else:
            out[r, c] = histops.add(a, histops.mul(histops.sub(b, a), frac)).with_hint(
                b.counter_reset_hint).compact()
    return out


def _mixed_kinds(ss: SeriesSet, ref: I64, lookback: int) -> B:
    """Per (series, step): whether the samples within the lookback delta on either side of
    the reference time hold both floats and histograms."""
    assert ss.histograms is not None
    is_h = ss.histogram_mask()
    cum = np.zeros(is_h.size + 1, np.int64)
    np.cumsum(is_h, out=cum[1:])
    s0 = ss.offsets[:-1, None]
    lo = s0 + count_at_or_before(ss.ts_ms, ss.offsets, ref - lookback)
    hi = s0 + count_at_or_before(ss.ts_ms, ss.offsets, ref + lookback)
    nh = cum[hi] - cum[lo]
    out: B = (nh > 0) & (nh < hi - lo)
    return out


def _selected_start_ts(ss: SeriesSet, v: Vector, ref: I64) -> I64:
    """``(S, T)``: the start timestamp of the sample ``v`` (from ``ss``) holds per cell."""
    assert ss.start_ts_ms is not None
    row = {ls: i for i, ls in enumerate(ss.labels)}
    idx = np.fromiter((row[ls] for ls in v.labels), np.int64, len(v.labels))
    starts, ends = ss.bounds()
    cnt = run_counts(ss.ts_ms, starts, ends, ref)[idx]
    at = np.maximum(starts[idx][:, None] + cnt - 1, 0)
    out: I64 = np.where(v.present, ss.start_ts_ms[at], 0)
    return out


def _latest_samples(ss: SeriesSet, lo: int, hi: int, ref: I64, lookback: int, values: F64,
                    present: B, timestamps: I64 | None) -> npt.NDArray[np.object_] | None:
    """Fill ``values``, ``present`` (and ``timestamps``) for series ``lo:hi`` of ``ss``;
    the histogram cells when any sample of them is one (else None)."""
    starts, ends = ss.bounds()
    idx = run_counts(ss.ts_ms, starts[lo:hi], ends[lo:hi], ref)
    np.greater(idx, 0, out=present)
    idx += starts[lo:hi, None] - 1
    np.maximum(idx, 0, out=idx)
    last_ts = np.take(ss.ts_ms, idx, mode="clip")
    np.take(ss.values, idx, out=values, mode="clip")
    last_h = None if ss.histograms is None else ss.histograms[idx]
    del idx
    present &= last_ts > (ref - lookback)[None, :]
    present &= ~stale_mask(values)
    np.copyto(values, 0.0, where=~present)
    if timestamps is not None:
        np.multiply(last_ts, present, out=timestamps)
    if last_h is None:
        return None
    hists = np.full(present.shape, None, object)
    hists[present] = last_h[present]
    return hists


def concat_time_slices(parts: Sequence[SeriesSet]) -> SeriesSet:
    """Join selections of consecutive, disjoint time slices (in time order) into one CSR set."""
    parts = [p for p in parts if p.num_samples]
    if not parts:
        return SeriesSet.empty()
    if len(parts) == 1:
        return parts[0]
    labels = sorted({ls for p in parts for ls in p.labels})
    pos = {ls: i for i, ls in enumerate(labels)}
    n_series, n_parts = len(labels), len(parts)
    counts = np.zeros((n_series, n_parts), np.int64)
    rows: list[I64] = []
    for k, p in enumerate(parts):
        r = np.fromiter((pos[ls] for ls in p.labels), np.int64, len(p.labels))
        counts[r, k] = np.diff(p.offsets)
        rows.append(r)
    flat_starts = np.zeros(n_series * n_parts, np.int64)
    np.cumsum(counts.ravel()[:-1], out=flat_starts[1:])
    starts = flat_starts.reshape(n_series, n_parts)
    offsets = np.zeros(n_series + 1, np.int64)
    np.cumsum(counts.sum(axis=1), out=offsets[1:])
    total = int(offsets[-1])
    ts = np.empty(total, np.int64)
    vs = np.empty(total, np.float64)
    hs = np.full(total, None, object) if any(p.histograms is not None for p in parts) else None
    st = np.zeros(total, np.int64) if any(p.start_ts_ms is not None for p in parts) else None
    for k, p in enumerate(parts):
        shift = starts[rows[k], k] - p.offsets[:-1]
        dest = np.repeat(shift, np.diff(p.offsets))
        dest += np.arange(p.num_samples, dtype=np.int64)
        ts[dest] = p.ts_ms
        vs[dest] = p.values
        if hs is not None and p.histograms is not None:
            hs[dest] = p.histograms
        if st is not None and p.start_ts_ms is not None:
            st[dest] = p.start_ts_ms
    return SeriesSet(labels, offsets, ts, vs, hs, st)


def strip_stale(ss: SeriesSet) -> SeriesSet:
    """Remove stale markers and then series left without samples."""
    stale = stale_mask(ss.values)
    n_series = len(ss.labels)
    if not stale.any():
        lengths = np.diff(ss.offsets)
        if (lengths > 0).all():
            return ss
        keep_sample = np.ones(ss.ts_ms.shape[0], bool)
    else:
        keep_sample = ~stale
    series_of = np.repeat(np.arange(n_series, dtype=np.int64), np.diff(ss.offsets))
    counts = np.bincount(series_of[keep_sample], minlength=n_series)
    keep_series = counts > 0
    ts = ss.ts_ms[keep_sample]
    vs = ss.values[keep_sample]
    hs = None if ss.histograms is None else ss.histograms[keep_sample]
    st = None if ss.start_ts_ms is None else ss.start_ts_ms[keep_sample]
    counts = counts[keep_series]
    offsets = np.zeros(counts.shape[0] + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    labels = [ss.labels[i] for i in np.flatnonzero(keep_series).tolist()]
    return SeriesSet(labels, offsets, ts, vs, hs, st)


def eval_matrix_selector(node: MatrixSelector, ev: EvalState, ctx: EvalContext) -> Matrix:
    """``selector[range]``: every step's window ``(ref - range, ref]`` over the CSR samples."""
    vs = node.vector_selector
    ref = reference_times(ctx, vs.at_ms, vs.at_modifier, vs.offset_ms)
    extension = "anchored" if vs.anchored else "smoothed" if vs.smoothed else None
    # anchored/smoothed also read a lookback before the windows (and after them, smoothed).
    before = ctx.lookback_ms if extension else 0
    after = ctx.lookback_ms if extension == "smoothed" else 0
    read_lo = int(ref.min()) - node.range_ms - before + 1 if ref.shape[0] else 0
    read_hi = int(ref.max()) + after if ref.shape[0] else 0
    drift = param_drift(ctx, vs.at_ms, vs.at_modifier)
    if drift is not None:  # read around the @ time, windows at moving reference times
        ref = ref + drift
    limit = read_limit(ctx, vs.at_ms, vs.offset_ms)
    if limit is not None:
        read_hi = min(read_hi, limit)
    start = ref - node.range_ms
    if ref.shape[0] == 0 or read_hi < read_lo:
        ss = SeriesSet.empty()
    else:
        lo_ms = read_lo
        if id(vs) in ev.stats_nodes:
            seeks = histstats.matrix_seeks(ref, int(node.range_ms), extension=extension,
                                           lookback_ms=ctx.lookback_ms, step_ms=ctx.step_ms)
            ss = histstats.reread(ev.select(vs.matchers, lo_ms - 1, read_hi),
                                  seeks, lo_ms, vector=False)
        else:
            # A view-form selection is kept in place when its runs' span can be the CSR
            # arrays (matrixspan); else its runs are copied.
            ss = ev.select(vs.matchers, lo_ms, read_hi, views=extension is None)
            span = spanned_arrays(ss, lo_ms, read_hi)
            if span is not None:
                held = ss.num_samples  # the runs' samples, not the gaps the span keeps
                ev.add_samples(held)
                return Matrix(list(ss.labels), *span, start.astype(np.int64),
                              ref.astype(np.int64), int(node.range_ms), held_samples=held)
            ss = ss.compact()
        ss = strip_stale(ss)
    ev.add_samples(int(ss.ts_ms.shape[0]))
    offsets = np.asarray(ss.offsets, np.int64)
    ts = np.asarray(ss.ts_ms, np.int64)
    return Matrix(list(ss.labels), offsets, ts, np.asarray(ss.values, np.float64),
                  start.astype(np.int64), ref.astype(np.int64), int(node.range_ms),
                  extension=extension, lookback_ms=before, histograms=ss.histograms,
                  start_ts_ms=ss.start_ts_ms if ctx.use_start_timestamps else None,
                  bounds=_one_window_bounds(offsets, ts, start, ref, extension))


def _one_window_bounds(offsets: I64, ts: I64, start: I64, ref: I64, extension: str | None,
                       ) -> tuple[I64, I64] | None:
    """The window bounds of a one-step selection that holds nothing but its window (an
    instant query's usual case): each series' whole run, no search needed; else None."""
    if ref.shape[0] != 1 or extension is not None or ts.shape[0] == 0:
        return None
    if int(ts.min()) <= int(start[0]) or int(ts.max()) > int(ref[0]):
        return None
    return offsets[:-1, None], offsets[1:, None]
