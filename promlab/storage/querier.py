"""Reading head ∪ blocks as one columnar :class:`SeriesSet`.

Each source (every block overlapping the range, then the head) answers the matchers through its
label index and returns ``(series row, ts, value)`` arrays. Series are identified across sources
by their id (``Labels.hash``), ranked by label order, and the samples are merged: when sources
do not overlap in time a stable sort by rank suffices; otherwise samples are sorted by (rank, ts)
with sources concatenated oldest write first, and the last write of equal keys wins.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher, MatchType
from promlab.model.arrays import unique
from promlab.storage.blocks import Block
from promlab.storage.cache import DecodedCache, MetricColumns, window
from promlab.storage.interface import SelectHints, SeriesSet, SeriesShard, clamp_range
from promlab.storage.layout import storage_order
from promlab.storage.merge import gather_runs, merge_parts, sort_dedup
from promlab.storage.postings import LabelIndex
from promlab.storage.recent import recent_columns
from promlab.storage.selectmemo import (
    KEYED_SAMPLES,
    Picked,
    RunKeys,
    boxed_get,
    boxed_put,
    chunk_box,
    keyed_bounds,
    matched_series,
    matching_chunks,
    run_keys,
)

__all__ = ["HeadView", "ParquetQuerier"]

log = logging.getLogger("promlab.storage")

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _equal_name(matchers: Sequence[Matcher]) -> str | None:
    """The metric name an equality matcher pins, or None."""
    for m in matchers:
        if m.name == "__name__" and m.type is MatchType.EQUAL and m.value:
            return m.value
    return None


def _empty() -> Arrays:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)


@dataclass(frozen=True, slots=True)
class HeadView:
    """An immutable snapshot of the head taken when the querier was created.

    ``labels`` may be the head's own list, which only grows: entries below ``index.n`` are the
    snapshot's. Samples are a base sorted by (ref, ts) with CSR ``offsets`` by ref (refs at or
    beyond ``offsets.shape[0] - 1`` have none there) plus a small ``delta`` sorted the same way
    holding newer writes (they win over the base on equal timestamps).
    """

    labels: list[Labels]
    sids: npt.NDArray[np.int64]
    index: LabelIndex
    refs: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64] | None = None
    delta: Arrays = field(default_factory=_empty)

    def select(self, mask: npt.NDArray[np.bool_], mint: int, maxt: int) -> Arrays:
        """Samples in ``[mint, maxt]`` of the refs in ``mask``, sorted by (ref, ts)."""
        off = self.offsets
        if off is None:
            keep = mask[self.refs] & (self.ts >= mint) & (self.ts <= maxt)
            r, t, v = self.refs[keep], self.ts[keep], self.values[keep]
        else:
            # Only the selected series' runs are touched, not every head sample.
            nb = off.shape[0] - 1
            sel = np.flatnonzero(mask[:nb])
            lo, hi = off[sel], off[sel + 1]
            lens = hi - lo
            some = lens > 0
            take = gather_runs(lo[some], lens[some])
            r, t, v = self.refs[take], self.ts[take], self.values[take]
            if t.shape[0] and (int(t.min()) < mint or int(t.max()) > maxt):
                keep = (t >= mint) & (t <= maxt)
                r, t, v = r[keep], t[keep], v[keep]
        dr, dt, dv = self.delta
        if dr.shape[0]:
            keep = mask[dr] & (dt >= mint) & (dt <= maxt)
            if keep.any():
                return sort_dedup(np.concatenate([r, dr[keep]]), np.concatenate([t, dt[keep]]),
                                  np.concatenate([v, dv[keep]]))
        return r, t, v

    def in_range(self, mint: int, maxt: int) -> npt.NDArray[np.bool_]:
        """Per-ref: has a sample in ``[mint, maxt]``."""
        out = np.zeros(self.index.n, bool)
        for refs, ts in ((self.refs, self.ts), (self.delta[0], self.delta[1])):
            sel = (ts >= mint) & (ts <= maxt)
            out[refs[sel]] = True
        return out


@dataclass(slots=True)
class _Source:
    """One source's selection: series ``sids``/``labels`` with ``counts`` samples each, in order."""

    sids: npt.NDArray[np.int64]
    labels: list[Labels]
    counts: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64] | None = None  # set when series are label-sorted (CSR)


#: What a block part decodes for a range: its chunks (None: nothing), the slice window (None:
#: whole chunks) and the cache key of their entry.
_Plan = tuple[npt.NDArray[np.int64] | None, tuple[int, int] | None, tuple[str, ...]]


def _part_plan(memo: DecodedCache | None, blk: Block, src: Block, name: str,
               matchers: Sequence[Matcher], which: frozenset[Matcher], mint: int, maxt: int,
               shard: SeriesShard | None) -> _Plan:
    """Decode only the chunks (series x time buckets) the query selects, whole, so the entry
    also answers later queries over the same series and buckets; the whole metric is decoded
    (and kept under its own key) only when selected."""
    whole_key = (blk.meta.ulid, name)
    chunks = matching_chunks(memo, blk, src, name, matchers, which, mint, maxt)
    if shard is not None:
        chunks = chunks[shard.keep(src.sids[chunks])]
    if chunks.shape[0] == 0:
        return None, None, whole_key
    # Format 6: only the time slices the range touches (storage.slices).
    win = src.slice_window(chunks, mint, maxt)
    if win is None and chunks.shape[0] == src.metric_chunks(name).shape[0]:
        return chunks, None, whole_key
    # A part numbers its chunks among the metric's own: keyed apart.
    key = (*whole_key, "part" if src is not blk else "",
           hashlib.blake2b(chunks.tobytes(), digest_size=16).hexdigest(),
           *([] if win is None else [f"{win[0]}:{win[1]}"]))
    return chunks, win, key


class ParquetQuerier:
    """A :class:`~promlab.storage.interface.Querier` over blocks and a head snapshot."""

    def __init__(self, mint_ms: int, maxt_ms: int, head: HeadView | None,
                 blocks: Sequence[Block], cache: DecodedCache | None = None, *,
                 warnings: Sequence[str] = ()) -> None:
        self._cache = cache
        #: Problems the answers are subject to (damaged blocks skipped), for result annotations.
        self.warnings = list(warnings)
        self.mint_ms = mint_ms
        self.maxt_ms = maxt_ms
        self._head = head
        # Blocks in write order (seq): later ones win where they overlap.
        self._blocks = [b for b in blocks if b.meta.maxt >= mint_ms and b.meta.mint <= maxt_ms]
        if len(self._blocks) > 1:
            self._blocks.sort(key=lambda b: (b.meta.seq, b.meta.ulid))

    def _block_parts(self, blk: Block, matchers: Sequence[Matcher], mint: int, maxt: int,
                     shard: SeriesShard | None = None) -> list[MetricColumns | _Cut]:
        """The block's matching series in range, one label-sorted part per metric name
        (of ``shard`` only, when given: other shards' chunks are not decoded); a part cut out
        of a cached entry is not copied yet (see :func:`_materialise`)."""
        out = []
        cache = self._cache
        use_cache = cache is not None and cache.max_bytes > 0
        memo = cache if use_cache else None
        which = frozenset(matchers)  # the memos' key: the same matchers in any order
        pinned = _equal_name(matchers) if shard is None else None
        # A selection at the end of the block's data, of one metric not decoded whole yet, is
        # answered from the block's recent samples (format 8, 9: the narrowest file that
        # reaches back far enough, storage.recent): its index batch and samples file are not
        # read.
        window = None if pinned is None else blk.recent_window(mint)
        recent = pinned is not None and window is not None and (
            not use_cache or cache.get((blk.meta.ulid, pinned)) is None)  # type: ignore[union-attr]
        names = [pinned] if recent else blk.metric_names(matchers, mint, maxt)
        for name in names:
            assert name is not None
            whole_key = (blk.meta.ulid, name)
            key: tuple[str, ...] = whole_key
            entry = None if recent or not use_cache else cache.get(whole_key)  # type: ignore[union-attr]
            if recent:
                assert window is not None
                got = self._recent_entry(blk, window, name, matchers, which,
                                         cache if use_cache else None)
                if got is None:
                    continue
                key, entry = got
            elif entry is None:
                # The metric's own part of the block when its whole series index is not
                # loaded yet (a first query reads its metric's index batch only).
                src = blk.metric_part(name)
                if src is None:
                    continue
                # A warm query within the box of the last one decodes the same chunks.
                pkey = (blk.meta.ulid, "part", name, src is not blk, which)
                plan: _Plan | None = None
                if memo is not None and shard is None:
                    plan = boxed_get(memo, pkey, mint, maxt)  # type: ignore[assignment]
                if plan is None:
                    plan = _part_plan(memo, blk, src, name, matchers, which, mint, maxt, shard)
                    if memo is not None and shard is None and (box := chunk_box(
                            memo, blk, src, name, which, mint, maxt)) is not None:
                        boxed_put(memo, pkey, box, plan,
                                  0 if plan[0] is None else plan[0].nbytes)
                chunks, win, key = plan
                if chunks is None:
                    continue
                whole = key == whole_key
                entry = cache.get(key) if use_cache and not whole else None  # type: ignore[union-attr]
                if entry is None:
                    entry = src.metric_columns(name, *(win or (None, None)), chunks=chunks)
                    if use_cache:
                        cache.put(key, entry)  # type: ignore[union-attr]
            picked = None if memo is None or shard is not None else matched_series(
                memo, (blk.meta.ulid, "series", key, which), entry, matchers)
            keyed = None
            if memo is not None and entry.ts.shape[0] <= KEYED_SAMPLES and not (
                    entry.mint >= mint and entry.maxt <= maxt):
                keyed = run_keys(memo, (blk.meta.ulid, "runkeys", key), entry)
            part = _cut(entry, matchers, mint, maxt, shard, picked, keyed)
            if part is not None:
                out.append(part)
        return out

    @staticmethod
    def _recent_entry(blk: Block, fname: str, name: str, matchers: Sequence[Matcher],
                      which: frozenset[Matcher], cache: DecodedCache | None
                      ) -> tuple[tuple[str, ...], MetricColumns] | None:
        """Metric ``name``'s series matching ``matchers`` (``which``: the same as a memo key)
        in ``blk``'s recent-samples file ``fname``, and their cache key; None when it has none
        there. A warm query finds the key it had without matching again (the memo's key)."""
        mkey = (blk.meta.ulid, "recent", fname, name, which)
        if cache is not None:
            known = cache.memo_get(mkey)
            if known is not None:
                entry = cache.get(known)  # type: ignore[arg-type]
                if entry is not None:
                    return known, entry  # type: ignore[return-value]
        rm = blk.recent_metric(name, fname)
        if rm is None:
            return None
        sel = np.flatnonzero(rm.index.match(matchers))
        if not sel.shape[0]:
            return None
        key = (blk.meta.ulid, name, fname,
               hashlib.blake2b(sel.tobytes(), digest_size=16).hexdigest())
        entry = None if cache is None else cache.get(key)
        if entry is None:
            entry = recent_columns(rm, sel)
            if cache is not None:
                cache.put(key, entry)
        if cache is not None:
            cache.memo_put(mkey, key, 200)
        return key, entry

    def _sources(self, matchers: Sequence[Matcher], mint: int, maxt: int,
                 shard: SeriesShard | None = None, *, views: bool = False
                 ) -> list[_Source] | _Cut:
        """Each source's selection; with ``views``, the one block part cut out of a cache
        entry itself when it is the only source (nothing copied)."""
        out: list[_Source] = []
        cuts = [(blk, self._block_parts(blk, matchers, mint, maxt, shard))
                for blk in self._blocks if not (blk.meta.maxt < mint or blk.meta.mint > maxt)]
        head = self._head_source(matchers, mint, maxt, shard)
        if views and head is None and len(cuts) == 1 and len(cuts[0][1]) == 1:
            only = cuts[0][1][0]
            if isinstance(only, _Cut):
                return only
        for _, block_parts in cuts:
            parts = [_materialise(p) for p in block_parts]
            if len(parts) == 1:
                p = parts[0]
                out.append(_Source(p.sids, p.labels, np.diff(p.offsets), p.ts, p.values,
                                   p.offsets))
            elif parts:
                out.append(_Source(np.concatenate([p.sids for p in parts]),
                                   [ls for p in parts for ls in p.labels],
                                   np.concatenate([np.diff(p.offsets) for p in parts]),
                                   np.concatenate([p.ts for p in parts]),
                                   np.concatenate([p.values for p in parts])))
        if head is not None:
            out.append(head)
        return out

    def _head_source(self, matchers: Sequence[Matcher], mint: int, maxt: int,
                     shard: SeriesShard | None) -> _Source | None:
        h = self._head
        if h is not None and h.index.n:
            mask = h.index.match(matchers)
            if shard is not None:
                mask &= shard.keep(h.sids[:mask.shape[0]])
            if mask.any():
                refs, ts, vals = h.select(mask, mint, maxt)
                if refs.shape[0]:
                    used, counts = np.unique(refs, return_counts=True)
                    return _Source(h.sids[used], [h.labels[i] for i in used.tolist()],
                                   counts.astype(np.int64), ts, vals)
        return None

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        """Series matching every matcher, with samples in range, sorted by labels."""
        mint, maxt = clamp_range(self.mint_ms, self.maxt_ms, hints)
        if mint > maxt:
            return SeriesSet.empty()
        sources = self._sources(matchers, mint, maxt, None if hints is None else hints.shard,
                                views=hints is not None and hints.views)
        if isinstance(sources, _Cut):
            c = sources  # view form: runs inside the cached arrays (no copy)
            labels = _pick(c.entry.labels, c.sel) if c.labels is None else list(c.labels)
            return SeriesSet.view(labels, c.lo, c.hi, c.entry.ts, c.entry.values)
        if not sources:
            return SeriesSet.empty()
        if len(sources) == 1 and sources[0].offsets is not None:
            s = sources[0]  # one label-sorted part: already the answer (no copy)
            assert s.offsets is not None
            return SeriesSet(s.labels, s.offsets, s.ts, s.values)
        _, labels, ranks = _rank_series(sources)
        parts = [(np.repeat(r, s.counts), s.ts, s.values)
                 for s, r in zip(sources, ranks, strict=True)]
        rank, ts, vals = merge_parts(parts)
        counts = np.bincount(rank, minlength=len(labels))
        offsets = np.zeros(len(labels) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        for a in (offsets, ts, vals):
            a.flags.writeable = False
        return SeriesSet(labels, offsets, ts, vals)

    def estimate_samples(self, matchers: Sequence[Matcher], mint_ms: int, maxt_ms: int) -> int:
        """Samples a :meth:`select` of ``[mint_ms, maxt_ms]`` would load, at most (no decoding).

        ``interface.SampleEstimator``: the row counts of the blocks' matching chunks overlapping
        the range (whole chunks) plus the head's samples of the matching series.
        """
        mint, maxt = max(mint_ms, self.mint_ms), min(maxt_ms, self.maxt_ms)
        if mint > maxt:
            return 0
        total = 0
        name = _equal_name(matchers)
        for blk in self._blocks:
            if blk.meta.maxt < mint or blk.meta.mint > maxt:
                continue
            # One metric: its part of the block (without loading the whole series index).
            src = blk if name is None else blk.metric_part(name)
            if src is None:
                continue
            idx = src.index()
            mask = idx.match(matchers) if matchers else np.ones(idx.n, bool)
            mask &= (src.min_time <= maxt) & (src.max_time >= mint)
            total += int(src.row_count[mask].sum())
        h = self._head
        if h is not None and h.index.n:
            mask = h.index.match(matchers) if matchers else np.ones(h.index.n, bool)
            total += int(mask[h.refs].sum()) if h.offsets is None else int(
                np.diff(h.offsets)[mask[:h.offsets.shape[0] - 1]].sum())
            if h.delta[0].shape[0]:
                total += int(mask[h.delta[0]].sum())
        return total

    def _matched(self, matchers: Sequence[Matcher]
                 ) -> list[tuple[LabelIndex, npt.NDArray[np.bool_], Callable[[int], Labels],
                                 npt.NDArray[np.int64]]]:
        """Per source: its index, the mask of matching series with data in range, labels, ids."""
        mint, maxt = self.mint_ms, self.maxt_ms
        out: list[tuple[LabelIndex, npt.NDArray[np.bool_], Callable[[int], Labels],
                        npt.NDArray[np.int64]]] = []
        for blk in self._blocks:
            idx = blk.index()
            mask = idx.match(matchers) if matchers else np.ones(idx.n, bool)
            mask &= (blk.min_time <= maxt) & (blk.max_time >= mint)
            out.append((idx, mask, blk.labels_at, blk.sids))
        h = self._head
        if h is not None and h.index.n:
            mask = h.index.match(matchers) if matchers else np.ones(h.index.n, bool)
            mask &= h.in_range(mint, maxt)
            out.append((h.index, mask, _getter(h.labels), h.sids))
        return out

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        """Label sets of the matching series with samples in range, sorted."""
        found: dict[int, Labels] = {}
        for _, mask, label_of, sids in self._matched(matchers):
            for i in np.flatnonzero(mask).tolist():
                sid = int(sids[i])
                if sid not in found:
                    found[sid] = label_of(i)
        return sorted(found.values())

    def series_layout(self, matchers: Sequence[Matcher]) -> list[Labels]:
        """:meth:`series` in storage order (``interface.SeriesLayout``, ``storage.layout``)."""
        return storage_order(self._blocks, self.series(matchers), self.mint_ms, self.maxt_ms)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        names: set[str] = set()
        for idx, mask, _, _ in self._matched(matchers):
            names.update(idx.names(mask))
        return sorted(names)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        vals: set[str] = set()
        for idx, mask, _, _ in self._matched(matchers):
            vals.update(idx.values(name, mask))
        return sorted(vals)

    def close(self) -> None:
        self._blocks = []
        self._head = None


def _getter(labels: list[Labels]) -> Callable[[int], Labels]:
    return lambda i: labels[i]


@dataclass(frozen=True, slots=True)
class _Cut:
    """Series ``sel`` of a cached ``entry``, their samples in range at ``entry.ts[lo:hi]``."""

    entry: MetricColumns
    sel: npt.NDArray[np.intp]
    lo: npt.NDArray[np.int64]
    hi: npt.NDArray[np.int64]
    labels: list[Labels] | None = None  # their labels when known (shared: copy to hand out)


def _cut(entry: MetricColumns, matchers: Sequence[Matcher], mint: int, maxt: int,
         shard: SeriesShard | None = None, picked: Picked | None = None,
         keyed: RunKeys | None = None) -> MetricColumns | _Cut | None:
    """The series of ``entry`` matching ``matchers`` (and in ``shard``), in ``[mint, maxt]``:
    ``entry`` itself when that is all of it, else where their runs are (nothing copied).
    ``picked``: the positions and labels of the series the matchers select when known (no
    shard); ``keyed``: the entry's :func:`~promlab.storage.selectmemo.run_keys` when known."""
    n = len(entry.labels)
    sel, labels = (None, None) if picked is None else picked
    if sel is None:
        mask = entry.index.match(matchers)
        if shard is not None:
            mask &= shard.keep(entry.sids)
        sel = np.flatnonzero(mask)
    if sel.shape[0] == 0:
        return None
    within = entry.mint >= mint and entry.maxt <= maxt
    if keyed is not None and not within:  # (no run bounds needed: the keys hold them)
        lo, hi = keyed_bounds(keyed, sel, mint, maxt)
    else:
        starts, ends = entry.offsets[sel], entry.offsets[sel + 1]
        lo, hi = (starts, ends) if within else _window(entry, starts, ends, mint, maxt)
        if sel.shape[0] == n and within and bool((ends > starts).all()):
            return entry  # everything: the cached arrays themselves
    nonempty = hi > lo
    if np.count_nonzero(nonempty) < nonempty.shape[0]:  # (not .all(): its wrapper costs more)
        sel, lo, hi, labels = sel[nonempty], lo[nonempty], hi[nonempty], None
        if sel.shape[0] == 0:
            return None
    return _Cut(entry, sel, lo, hi, labels)


def _window(entry: MetricColumns, starts: npt.NDArray[np.int64], ends: npt.NDArray[np.int64],
            mint: int, maxt: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """:func:`~promlab.storage.cache.window` of the runs ``starts:ends`` of ``entry``, a side
    the entry lies within taken whole; the other searched by :func:`_bound`."""
    ts = entry.ts
    if entry.mint < mint and entry.maxt > maxt:
        # Both sides: one search for both (timestamps are integers: ``>= mint`` is ``> mint - 1``).
        both = _bound(ts, starts, ends, np.array([[mint - 1], [maxt]], np.int64), strict=True)
        return both[0], both[1]
    lo = starts if entry.mint >= mint else _bound(ts, starts, ends, mint, strict=False)
    hi = ends if entry.maxt <= maxt else _bound(ts, lo, ends, maxt, strict=True)
    return lo, hi


def _bound(ts: npt.NDArray[np.int64], starts: npt.NDArray[np.int64],
           ends: npt.NDArray[np.int64], x: int | npt.NDArray[np.int64], *,
           strict: bool) -> npt.NDArray[np.int64]:
    """First position in each run ``ts[starts[i]:ends[i]]`` with ``ts >= x`` (``> x`` when
    ``strict``); with ``x`` a column of ``k`` values, ``(k, runs)`` positions (one row per
    value, searched at once).

    Scrapes are nearly evenly spaced, so each run's position is first guessed by linear
    interpolation between its first and last timestamp and moved a step or two; runs whose
    guess is still not the answer are binary-searched (:func:`~promlab.storage.cache.window`).
    """
    n = ends - starts
    if ts.shape[0] == 0 or starts.shape[0] == 0:
        return np.broadcast_to(starts, np.broadcast_shapes(starts.shape, np.shape(x))).copy()
    # ufuncs and array methods, not np.clip/np.take/np.where: their Python wrappers cost more
    # than the work on a thousand runs.
    t0 = ts.take(starts, mode="clip")
    span = ts.take(ends - 1, mode="clip") - t0
    np.maximum(span, 1, out=span)  # 1 also for empty and one-sample runs (n - 1 <= 0 there)
    # (x - t0) * (n - 1) / span rounded up (in floats: only a guess), kept inside [starts, ends]
    frac = np.minimum(np.maximum(x - t0, 0), span) * np.maximum(n - 1, 0).astype(np.float64)
    frac /= span
    np.ceil(frac, out=frac)
    guess: npt.NDArray[np.int64] = np.minimum(
        np.maximum(starts + frac.astype(np.int64), starts), ends)
    bad = np.zeros(guess.shape, bool)
    for _ in range(3):
        before = ts.take(guess - 1, mode="clip")
        at = ts.take(guess, mode="clip")
        # too far right: the sample before is already past x; too far left: this one is not
        left = (guess > starts) & ((before > x) if strict else (before >= x))
        right = (guess < ends) & ((at <= x) if strict else (at < x))
        bad = left | right
        if not bad.any():
            return guess
        guess = guess - left + right
    ok = ~bad
    rows, oks = guess.reshape(-1, starts.shape[0]), ok.reshape(-1, starts.shape[0])
    for row, xv in enumerate(np.ravel(x).tolist()):
        miss = np.flatnonzero(~oks[row])
        first_at, first_past = window(ts, starts[miss], ends[miss], xv, xv)
        rows[row, miss] = first_past if strict else first_at
    out: npt.NDArray[np.int64] = guess
    return out


def _materialise(part: MetricColumns | _Cut) -> MetricColumns:
    """A cut's runs copied into contiguous (CSR) arrays (an entry is returned as it is)."""
    if isinstance(part, MetricColumns):
        return part
    entry, sel, lo, hi = part.entry, part.sel, part.lo, part.hi
    ss = SeriesSet.view(_pick(entry.labels, sel), lo, hi, entry.ts, entry.values).compact()
    ts = ss.ts_ms
    return MetricColumns(entry.sids[sel], ss.labels, entry.index, ss.offsets, ts, ss.values,
                         int(ts[0]) if ts.shape[0] else 0, -1)


def _pick(labels: Sequence[Labels], sel: npt.NDArray[np.intp]) -> list[Labels]:
    """``labels`` at the (increasing, distinct) positions ``sel``: a copy when that is all."""
    if sel.shape[0] == len(labels):
        return list(labels)
    return list(map(labels.__getitem__, sel.tolist()))


def _subset(entry: MetricColumns, matchers: Sequence[Matcher], mint: int, maxt: int,
            shard: SeriesShard | None = None) -> MetricColumns | None:
    """The series of ``entry`` matching ``matchers`` (and in ``shard``), in ``[mint, maxt]``."""
    part = _cut(entry, matchers, mint, maxt, shard)
    return None if part is None else _materialise(part)


def _rank_series(sources: Sequence[_Source]
                 ) -> tuple[npt.NDArray[np.int64], list[Labels], list[npt.NDArray[np.int64]]]:
    """Distinct series of all sources in label order, and each source's series ranks.

    Works per series, never per sample; when every source holds the same label-sorted series
    (the usual case: the same series in consecutive blocks) no sorting is needed.
    """
    first = sources[0]
    if first.offsets is not None and all(
            s.offsets is not None and np.array_equal(s.sids, first.sids) for s in sources[1:]):
        r = np.arange(first.sids.shape[0], dtype=np.int64)
        return first.sids, first.labels, [r] * len(sources)
    uniq = unique(np.concatenate([s.sids for s in sources]))
    found: dict[int, Labels] = {}
    for s in sources:
        for sid, ls in zip(s.sids.tolist(), s.labels, strict=True):
            found.setdefault(sid, ls)
    labels = [found[sid] for sid in uniq.tolist()]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    rank_of = np.empty(len(labels), np.int64)
    rank_of[np.array(order, np.int64)] = np.arange(len(labels))
    ranks = [rank_of[np.searchsorted(uniq, s.sids)] for s in sources]
    return uniq[np.array(order, np.int64)], [labels[i] for i in order], ranks
