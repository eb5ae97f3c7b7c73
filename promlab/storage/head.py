"""The head: recent samples in memory, columnar.

Series get a dense ``ref`` (row number) in the head; samples arrive as chunks of numpy columns
``(ref, ts_ms, value)`` and are merged lazily — sorted by (ref, ts); the store's acceptance
rules (:mod:`promlab.storage.accept`) let no timestamp of a series in twice, and a WAL of an
older version that did is read with the last write winning — the first
time a reader needs them: into a small *delta* of recent samples, which is folded into the sorted
*base* (indexed by ref, CSR) only once it outgrows an eighth of it. The label index grows with
the series (:class:`~promlab.storage.postings.GrowingIndex`). So a query right after a commit
costs O(new series + delta), not O(head). Arrays are never modified in place, so a querier's
:meth:`Head.view` stays valid while the head moves on. The store serialises every mutating call.

:class:`RefCache` maps the writers' series lists to head refs so that a steady-state commit is
vectorised (see its docstring).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.storage.accept import NO_TS, classify
from promlab.storage.merge import sort_dedup
from promlab.storage.postings import GrowingIndex, LabelIndex
from promlab.storage.querier import HeadView
from promlab.storage.seed import PersistedLatest

__all__ = ["NO_TS", "UNRESOLVED", "Head", "HeadSamples", "RefCache"]

log = logging.getLogger("promlab.storage")

#: The delta of recent samples is folded into the sorted base once it holds more than
#: ``max(FOLD_MIN, base / 8)`` samples (see :meth:`Head.view`).
FOLD_MIN = 65536

HeadSamples = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _empty() -> HeadSamples:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)


class Head:
    """In-memory series and samples.

    Series are registered with dense refs in arrival order. The per-ref arrays (``sids``,
    ``latest``) live in buffers grown geometrically, so registering series costs amortised
    O(new series). The id → ref lookup for writes is a dict; the sorted id index used by the
    vectorised :meth:`refs_of` (WAL replay) is built lazily and then kept up to date
    incrementally: a sorted base plus a small sorted tail that new ids are merged into and that
    is folded into the base once it outgrows an eighth of it.

    ``generation`` counts :meth:`cut` calls (the only operation that renumbers refs);
    ``last_remap`` maps the refs before the latest cut to the refs after it (``-1``: dropped).
    """

    def __init__(self) -> None:
        self.labels: list[Labels] = []
        self._ref: dict[int, int] = {}
        self._sids_buf = np.zeros(0, np.int64)
        self._latest_buf = np.zeros(0, np.int64)
        self._lastval_buf = np.zeros(0, np.float64)
        self._base: HeadSamples = _empty()
        self._base_off = np.zeros(1, np.int64)
        self._delta: HeadSamples = _empty()
        self._chunks: list[HeadSamples] = []
        self.mint: int | None = None
        self.maxt: int | None = None
        #: The newest sample time ever taken (kept by :meth:`cut`, as Prometheus's head max time).
        self.max_time: int | None = None
        self.generation = 0
        self.last_remap = np.zeros(0, np.int64)
        self._index: GrowingIndex | None = None
        #: The latest persisted samples of a reopened writer (see :meth:`set_seed`).
        self.seed: PersistedLatest | None = None
        # The last view and what it was made of (see :meth:`view`).
        self._view: tuple[tuple[int, int], tuple[object, ...], HeadView] | None = None
        self._reset_sorted()

    def _reset_sorted(self) -> None:
        # Sorted id index: base covers refs [0, _sorted_n), tail covers [_sorted_n, _tail_n).
        self._sorted: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None
        self._sorted_n = 0
        self._tail: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] = (
            np.zeros(0, np.int64), np.zeros(0, np.int64))
        self._tail_n = 0

    # --- series ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sids(self) -> npt.NDArray[np.int64]:
        """Series id by ref (a view; entries of existing refs never change until :meth:`cut`)."""
        return self._sids_buf[: len(self.labels)]

    @property
    def latest(self) -> npt.NDArray[np.int64]:
        """Latest accepted timestamp by ref (a view, updated in place)."""
        return self._latest_buf[: len(self.labels)]

    @property
    def last_value(self) -> npt.NDArray[np.float64]:
        """The value at :attr:`latest` by ref (a view, updated in place)."""
        return self._lastval_buf[: len(self.labels)]

    def ref(self, sid: int) -> int | None:
        return self._ref.get(sid)

    def _set_arrays(self, sids: npt.NDArray[np.int64], latest: npt.NDArray[np.int64],
                    last_value: npt.NDArray[np.float64]) -> None:
        self._sids_buf = np.ascontiguousarray(sids, np.int64)
        self._latest_buf = np.ascontiguousarray(latest, np.int64)
        self._lastval_buf = np.ascontiguousarray(last_value, np.float64)

    def _reserve(self, old: int, n: int) -> None:
        """Room for ``n`` refs, keeping the first ``old``."""
        cap = self._sids_buf.shape[0]
        if n <= cap:
            return
        cap = max(n, cap + cap // 2, 1024)
        sids = np.zeros(cap, np.int64)
        sids[:old] = self._sids_buf[:old]
        latest = np.full(cap, NO_TS)
        latest[:old] = self._latest_buf[:old]
        last_value = np.zeros(cap, np.float64)
        last_value[:old] = self._lastval_buf[:old]
        self._sids_buf, self._latest_buf, self._lastval_buf = sids, latest, last_value

    def add_series(self, series: Sequence[tuple[int, Labels]]) -> int:
        """Register series (ids already present are ignored); returns how many were new.

        New series get the refs ``len(self)``, ``len(self) + 1``, ... in the order given.
        """
        start = len(self.labels)
        added: list[int] = []
        for sid, ls in series:
            if sid in self._ref:
                continue
            self._ref[sid] = start + len(added)
            self.labels.append(ls)
            added.append(sid)
        if not added:
            return 0
        n = start + len(added)
        self._reserve(start, n)
        self._sids_buf[start:n] = added
        if self.seed is None:
            self._latest_buf[start:n] = NO_TS
            self._lastval_buf[start:n] = 0.0
        else:
            self._latest_buf[start:n], self._lastval_buf[start:n] = self.seed.latest_of(
                self._sids_buf[start:n])
        return len(added)

    def set_seed(self, seed: PersistedLatest | None) -> None:
        """Take each series' latest persisted sample (``seed``) as its latest where newer than
        the head's own, for the series registered now and later; the seed's samples also count
        for :meth:`contains` (the out-of-order clash rule). Queries never see the seed."""
        self.seed = seed
        if seed is None or not len(self.labels):
            return
        ts, vals = seed.latest_of(self.sids)
        newer = ts > self.latest
        self.latest[newer] = ts[newer]
        self.last_value[newer] = vals[newer]

    def _sorted_index(self) -> tuple[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
                                     tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
        n = len(self.labels)
        if self._sorted is None or n - self._sorted_n > max(4096, self._sorted_n // 8):
            sids = self.sids
            order = np.argsort(sids, kind="stable").astype(np.int64)
            self._sorted, self._sorted_n = (sids[order], order), n
            self._tail, self._tail_n = (np.zeros(0, np.int64), np.zeros(0, np.int64)), n
        elif self._tail_n < n:
            new_refs = np.arange(self._tail_n, n, dtype=np.int64)
            new_keys = self._sids_buf[self._tail_n:n]
            order = np.argsort(new_keys, kind="stable")
            new_keys, new_refs = new_keys[order], new_refs[order]
            keys, refs = self._tail
            pos = np.searchsorted(keys, new_keys)
            self._tail = (np.insert(keys, pos, new_keys), np.insert(refs, pos, new_refs))
            self._tail_n = n
        return self._sorted, self._tail

    def refs_of(self, sids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Refs of series ids, vectorised; ``-1`` for unknown ids."""
        out = np.full(sids.shape[0], -1, np.int64)
        for keys, refs in self._sorted_index():
            if keys.shape[0] == 0:
                continue
            pos = np.minimum(np.searchsorted(keys, sids), keys.shape[0] - 1)
            hit = keys[pos] == sids
            out[hit] = refs[pos[hit]]
        return out

    def index(self) -> LabelIndex:
        """A snapshot of the label index of the current series.

        The index is built on first use, then kept: series registered since the last call are
        appended (Python work only for them), and :meth:`cut` renumbers it vectorised. The
        snapshot stays valid while series are added (see :class:`GrowingIndex`).
        """
        idx = self._index
        n = len(self.labels)
        if idx is None:
            idx = self._index = GrowingIndex.from_labels(self.labels)
        elif idx.n < n:
            idx.extend(self.labels[idx.n:n])
        return idx.snapshot()

    # --- samples -----------------------------------------------------------------------------
    def accept(self, refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
               vals: npt.NDArray[np.float64], *, min_valid: int, head_maxt: int,
               ooo_ms: int | None, batch: bool = True,
               foreign_latest: npt.NDArray[np.int64] | None = None) -> npt.NDArray[np.int8]:
        """The verdict of each sample against this head (see :func:`.accept.classify`;
        ``foreign_latest``: per sample, its series' latest native histogram's time)."""
        return classify(refs, ts, vals, self.latest, self.last_value, head_maxt=head_maxt,
                        min_valid=min_valid, ooo_ms=ooo_ms, batch=batch,
                        exists=self.contains if batch else None, foreign_latest=foreign_latest)

    def contains(self, refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which ``(ref, ts)`` pairs the head holds a sample at (a vectorised bisection)."""
        self._merge_chunks(full=False)
        found = np.zeros(refs.shape[0], bool)
        off = self._base_off
        in_base = refs < off.shape[0] - 1
        r = np.where(in_base, refs, 0)
        delta_r = self._delta[0]
        parts = [(self._base[1], np.where(in_base, off[r], 0), np.where(in_base, off[np.minimum(r + 1, off.shape[0] - 1)], 0)),
                 (self._delta[1], np.searchsorted(delta_r, refs, "left"),
                  np.searchsorted(delta_r, refs, "right"))]
        for col, lo0, hi0 in parts:
            lo, hi = lo0.astype(np.int64), hi0.astype(np.int64)
            end = hi.copy()
            while True:  # the first position in col[lo:hi] at or after ts, for all pairs at once
                open_ = lo < hi
                if not open_.any():
                    break
                mid = (lo + hi) // 2
                go = open_ & (col[np.where(open_, mid, 0)] < ts)
                lo = np.where(go, mid + 1, lo)
                hi = np.where(open_ & ~go, mid, hi)
            hit = lo < end
            found[hit] |= col[lo[hit]] == ts[hit]
        if self.seed is not None:
            found |= self.seed.holds(self.sids[refs], ts)
        return found

    def append(self, refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
               values: npt.NDArray[np.float64]) -> None:
        if refs.shape[0] == 0:
            return
        self._chunks.append((refs, ts, values))
        latest = self.latest
        np.maximum.at(latest, refs, ts)
        # The value at each series' latest time: the sample that set it (the last such one in a
        # replayed WAL of an older version, where a later write at the same time won).
        top = ts == latest[refs]
        self.last_value[refs[top]] = values[top]
        lo, hi = int(ts.min()), int(ts.max())
        self.mint = lo if self.mint is None else min(self.mint, lo)
        self.maxt = hi if self.maxt is None else max(self.maxt, hi)
        self.max_time = hi if self.max_time is None else max(self.max_time, hi)

    def apply_samples(self, sids: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                      values: npt.NDArray[np.float64]) -> None:
        """Append by series id (WAL replay); samples of unknown series are dropped."""
        refs = self.refs_of(sids)
        ok = refs >= 0
        if not ok.all():
            log.warning("WAL: %d samples of unknown series dropped", int((~ok).sum()))
            refs, ts, values = refs[ok], ts[ok], values[ok]
        self.append(refs, ts, values)

    def _set_base(self, base: HeadSamples) -> None:
        self._base = base
        # CSR by ref: the samples of ref r are base[off[r]:off[r + 1]] (refs beyond: none).
        off = np.zeros(len(self.labels) + 1, np.int64)
        np.cumsum(np.bincount(base[0], minlength=len(self.labels)), out=off[1:])
        self._base_off = off
        self._delta = _empty()

    def _merge_chunks(self, *, full: bool) -> None:
        """Sort the chunks into the delta; fold the delta into the base when ``full`` or big.

        The delta holds the samples since the last fold, sorted and de-duplicated; folding it
        costs O(head samples), so it is done only when the delta outgrows an eighth of the
        base (amortised O(1) per sample) or when everything is wanted as one part.
        """
        if self._chunks:
            parts = [self._delta, *self._chunks]
            self._delta = sort_dedup(np.concatenate([p[0] for p in parts]),
                                     np.concatenate([p[1] for p in parts]),
                                     np.concatenate([p[2] for p in parts]))
            self._chunks = []
        nd = int(self._delta[0].shape[0])
        if nd and (full or nd > max(FOLD_MIN, int(self._base[0].shape[0]) // 8)):
            parts = [self._base, self._delta]  # oldest write first: the delta wins
            self._set_base(sort_dedup(np.concatenate([p[0] for p in parts]),
                                      np.concatenate([p[1] for p in parts]),
                                      np.concatenate([p[2] for p in parts])))

    def samples(self) -> HeadSamples:
        """All head samples, sorted by (ref, ts), duplicates resolved (cached)."""
        self._merge_chunks(full=True)
        return self._base

    def view(self) -> HeadView:
        """An immutable snapshot for a querier: O(label names + samples since the last fold).

        The snapshot shares the (append-only) labels list, the sids and index buffers (rows
        below its length are never written again) and the sample arrays (never modified in
        place), so it stays consistent while the head takes more series and samples.
        """
        self._merge_chunks(full=False)
        # Kept while nothing it holds was replaced or grew (a follower's queries between WAL
        # polls, issue 14): these objects change identity on every change a view could see.
        held = (self.labels, self._sids_buf, self._base, self._base_off, self._delta,
                self._index)
        last = self._view
        if last is not None and last[0] == (self.generation, len(self.labels)) and all(
                a is b for a, b in zip(last[1], held, strict=True)):
            return last[2]
        view = HeadView(self.labels, self.sids, self.index(), *self._base, self._base_off,
                        self._delta)
        self._view = ((self.generation, len(self.labels)), (*held[:5], self._index), view)
        return view

    @property
    def num_samples(self) -> int:
        return (int(self._base[0].shape[0]) + int(self._delta[0].shape[0])
                + sum(int(c[0].shape[0]) for c in self._chunks))

    def cut(self, cut_ms: int) -> tuple[list[Labels], npt.NDArray[np.int64], HeadSamples]:
        """Remove and return the samples older than ``cut_ms``.

        Returns the labels and series ids by old ref and the removed ``(ref, ts, value)``.
        Series whose latest sample is older than the cut are dropped from the head.
        """
        refs, ts, vals = self.samples()
        old = ts < cut_ms
        labels, sids, latest, last_value = self.labels, self.sids.copy(), self.latest, self.last_value
        out = (refs[old], ts[old], vals[old])
        alive = latest >= cut_ms
        remap = np.cumsum(alive) - 1
        keep_refs, keep_ts, keep_vals = refs[~old], ts[~old], vals[~old]
        self.labels = [ls for ls, a in zip(labels, alive.tolist(), strict=True) if a]
        self._set_base((remap[keep_refs], keep_ts, keep_vals))
        self._set_arrays(sids[alive], latest[alive], last_value[alive])
        self._ref = {int(s): i for i, s in enumerate(self._sids_buf.tolist())}
        self.last_remap = np.where(alive, remap, -1).astype(np.int64)
        self.generation += 1
        if self._index is not None:
            if self._index.n < len(labels):
                self._index.extend(labels[self._index.n:])
            self._index = self._index.select(alive)
        self._reset_sorted()
        if keep_ts.shape[0]:
            self.mint, self.maxt = int(keep_ts.min()), int(keep_ts.max())
        else:
            self.mint = self.maxt = None
        return labels, sids, out


UNRESOLVED = -2


class _Entry:
    __slots__ = ("generation", "prefix", "refs")

    def __init__(self, prefix: list[Labels], refs: npt.NDArray[np.int64], generation: int) -> None:
        self.prefix, self.refs, self.generation = prefix, refs, generation


class RefCache:
    """Head refs of the series lists that writers pass to ``append_batch``, for vectorised commits.

    A scrape loop passes the same list object at every commit (its parser's ``series``, which
    only grows), so the refs of its first ``k`` entries are remembered, keyed by ``id(list)``;
    a commit maps its sample index through them with numpy and runs the Python loop (label
    hash, dict lookup) only over entries it has not seen before.

    An entry is trusted only if the list handed over starts with the remembered entries:
    ``list[:k] == prefix`` — a C-level comparison that short-cuts on identity, so it costs a
    few nanoseconds per entry and also holds for a different list object (a reused id) with
    equal labels. A list mutated in place, or a new list reusing the id, fails the check and
    is resolved from scratch. Lists with entries that are not :class:`Labels` are not cached.
    Refs only change at :meth:`Head.cut`: entries one generation old are remapped through
    :attr:`Head.last_remap` (series dropped by the cut resolved again when used); older ones
    are discarded. At most ``max_lists`` lists are remembered (least recently used first out).
    """

    def __init__(self, max_lists: int = 65536) -> None:
        self.max_lists = max_lists
        self._entries: dict[int, _Entry] = {}

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, head: Head, key: int | None, series: list[Labels]) -> npt.NDArray[np.int64]:
        """The remembered refs of a prefix of ``series`` (possibly empty)."""
        e = None if key is None else self._entries.pop(key, None)
        if e is None:
            return np.zeros(0, np.int64)
        k = len(e.prefix)
        if k > len(series) or (series != e.prefix if k == len(series) else series[:k] != e.prefix):
            return np.zeros(0, np.int64)
        if e.generation == head.generation:
            return e.refs
        if e.generation != head.generation - 1:
            return np.zeros(0, np.int64)
        refs = e.refs.copy()
        known = refs >= 0
        mapped = head.last_remap[refs[known]]
        mapped[mapped < 0] = UNRESOLVED
        refs[known] = mapped
        return refs

    def resolve(self, head: Head, key: int | None, series: list[Labels], index: npt.NDArray[np.int64]
                ) -> tuple[npt.NDArray[np.int64], list[tuple[int, Labels]]]:
        """Refs of the samples' series (``series[index]``), registering new series in ``head``.

        Returns the refs (``-1`` for a series with no labels) and the new ``(id, labels)``.
        ``key`` identifies the caller's list (``id()`` of the object given to append_batch);
        None for a one-off list, which is not remembered.
        """
        n = len(series)
        cached = self._lookup(head, key, series)
        k = cached.shape[0]
        if k == n:
            refs = cached
        else:
            refs = np.full(n, UNRESOLVED, np.int64)
            refs[:k] = cached
        r = refs[index]
        todo = r < -1
        added: list[tuple[int, Labels]] = []
        cacheable = True
        if k < n or todo.any():
            if k < n:
                positions = np.arange(k, n, dtype=np.int64)
                if todo.any():
                    positions = np.union1d(positions, index[todo])
            else:
                positions = unique(index[todo])
            pos_list = positions.tolist()
            found: list[int] = []
            new: dict[int, Labels] = {}
            new_ref: dict[int, int] = {}
            known = head.ref
            start = len(head)
            for i in pos_list:
                ls = series[i]
                if not isinstance(ls, Labels):
                    ls = Labels(ls)
                    cacheable = False
                if len(ls) == 0:
                    found.append(-1)
                    continue
                sid = ls.hash
                ref = known(sid)
                if ref is None:
                    # add_series gives the new ids the next refs, in this order.
                    ref = new_ref.get(sid)
                    if ref is None:
                        ref = new_ref[sid] = start + len(new)
                        new[sid] = ls
                found.append(ref)
            if new:
                added = list(new.items())
                registered = head.add_series(added)
                assert registered == len(added)  # all unknown to the head: refs as computed
            if refs is cached:
                refs = refs.copy()
            refs[positions] = found
            r = refs[index]
        if cacheable and n and key is not None:
            if len(self._entries) >= self.max_lists:
                del self._entries[next(iter(self._entries))]
            self._entries[key] = _Entry(series, refs, head.generation)
        return r, added
