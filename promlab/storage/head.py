"""The head: recent samples in memory, columnar.

Series get a dense ``ref`` (row number) in the head; samples arrive as chunks of numpy columns
``(ref, ts_ms, value)`` and are merged lazily — sorted by (ref, ts), last write wins — the first
time a reader needs them. The merged arrays are never modified in place, so a querier may keep
using them after the head has moved on. The store serialises every mutating call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.storage.merge import group_order, sort_dedup
from promlab.storage.postings import LabelIndex

__all__ = ["Head", "HeadSamples"]

log = logging.getLogger("promlab.storage")

NO_TS = np.iinfo(np.int64).min

HeadSamples = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


def _empty() -> HeadSamples:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)


def check_order(refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                latest: npt.NDArray[np.int64], ooo_ms: int | None, *, update: bool = False
                ) -> tuple[npt.NDArray[np.bool_], int, int]:
    """Which samples are within ``ooo_ms`` of their series' latest so far, and counts.

    "So far" is in append order: ``latest[ref]`` (the stored latest sample) and the batch's
    earlier samples of the same series. In-order samples are therefore always accepted;
    ``ooo_ms=None`` accepts everything.

    Returns ``(ok, out_of_order, duplicates)``: among the accepted samples, how many are older
    than their series' latest so far (merged on read) and how many have exactly its timestamp
    (they overwrite it: last write wins). With ``update``, ``latest`` is raised in place to
    include the accepted samples.
    """
    n = refs.shape[0]
    if n == 0:
        return np.zeros(0, bool), 0, 0
    order = group_order(refs)
    r, t = (refs, ts) if order is None else (refs[order], ts[order])
    first = np.ones(n, bool)
    first[1:] = r[1:] != r[:-1]
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
    # The latest before each sample: the stored one, and the batch's earlier ones.
    before = np.empty(n, np.int64)
    before[0] = NO_TS
    before[1:] = running[:-1]
    before[first] = NO_TS
    before = np.maximum(before, latest[r])
    ok_sorted = (np.ones(n, bool) if ooo_ms is None
                 else t >= np.maximum(before, t) - np.int64(ooo_ms))
    n_ooo = int((ok_sorted & (t < before)).sum())
    n_dup = int((ok_sorted & (t == before)).sum())
    if update:
        # A refused sample is never its group's maximum (it is older than an earlier one).
        last = np.flatnonzero(np.append(first[1:], True))
        latest[r[last]] = np.maximum(latest[r[last]], running[last])
    if order is None:
        return ok_sorted, n_ooo, n_dup
    ok = np.empty(n, bool)
    ok[order] = ok_sorted
    return ok, n_ooo, n_dup


class Head:
    """In-memory series and samples."""

    def __init__(self) -> None:
        self.labels: list[Labels] = []
        self._ref: dict[int, int] = {}
        self.sids = np.zeros(0, np.int64)
        self.latest = np.zeros(0, np.int64)
        self._base: HeadSamples = _empty()
        self._chunks: list[HeadSamples] = []
        self.mint: int | None = None
        self.maxt: int | None = None
        self._index: LabelIndex | None = None
        self._sid_sorted: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None = None

    # --- series ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def ref(self, sid: int) -> int | None:
        return self._ref.get(sid)

    def add_series(self, series: Sequence[tuple[int, Labels]]) -> None:
        """Register series (ids already present are ignored)."""
        added: list[int] = []
        for sid, ls in series:
            if sid in self._ref:
                continue
            self._ref[sid] = len(self.labels)
            self.labels.append(ls)
            added.append(sid)
        if not added:
            return
        n = len(self.labels)
        self.sids = np.concatenate([self.sids, np.array(added, np.int64)])
        self.latest = np.concatenate([self.latest, np.full(n - self.latest.shape[0], NO_TS)])
        self._index = None
        self._sid_sorted = None

    def refs_of(self, sids: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Refs of series ids, vectorised; ``-1`` for unknown ids."""
        if self._sid_sorted is None:
            order = np.argsort(self.sids, kind="stable")
            self._sid_sorted = (self.sids[order], order.astype(np.int64))
        keys, refs = self._sid_sorted
        if keys.shape[0] == 0:
            return np.full(sids.shape[0], -1, np.int64)
        pos = np.minimum(np.searchsorted(keys, sids), keys.shape[0] - 1)
        return np.where(keys[pos] == sids, refs[pos], -1)

    def index(self) -> LabelIndex:
        if self._index is None:
            self._index = LabelIndex.from_labels(self.labels)
        return self._index

    # --- samples -----------------------------------------------------------------------------
    def accept(self, refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
               ooo_ms: int | None) -> tuple[npt.NDArray[np.bool_], int, int]:
        """See :func:`check_order` (against this head's latest sample per series)."""
        return check_order(refs, ts, self.latest, ooo_ms)

    def append(self, refs: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
               values: npt.NDArray[np.float64]) -> None:
        if refs.shape[0] == 0:
            return
        self._chunks.append((refs, ts, values))
        np.maximum.at(self.latest, refs, ts)
        lo, hi = int(ts.min()), int(ts.max())
        self.mint = lo if self.mint is None else min(self.mint, lo)
        self.maxt = hi if self.maxt is None else max(self.maxt, hi)

    def apply_samples(self, sids: npt.NDArray[np.int64], ts: npt.NDArray[np.int64],
                      values: npt.NDArray[np.float64]) -> None:
        """Append by series id (WAL replay); samples of unknown series are dropped."""
        refs = self.refs_of(sids)
        ok = refs >= 0
        if not ok.all():
            log.warning("WAL: %d samples of unknown series dropped", int((~ok).sum()))
            refs, ts, values = refs[ok], ts[ok], values[ok]
        self.append(refs, ts, values)

    def samples(self) -> HeadSamples:
        """All head samples, sorted by (ref, ts), duplicates resolved (cached)."""
        if self._chunks:
            parts = [self._base, *self._chunks]
            refs = np.concatenate([p[0] for p in parts])
            ts = np.concatenate([p[1] for p in parts])
            vals = np.concatenate([p[2] for p in parts])
            self._base = sort_dedup(refs, ts, vals)
            self._chunks = []
        return self._base

    @property
    def num_samples(self) -> int:
        return int(self._base[0].shape[0]) + sum(int(c[0].shape[0]) for c in self._chunks)

    def series_time_range(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Per-ref min and max timestamp in the head (NO_TS / NO_TS when none)."""
        refs, ts, _ = self.samples()
        n = len(self.labels)
        lo = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(lo, refs, ts)
        hi = np.full(n, NO_TS)
        np.maximum.at(hi, refs, ts)
        return lo, hi

    def cut(self, cut_ms: int) -> tuple[list[Labels], npt.NDArray[np.int64], HeadSamples]:
        """Remove and return the samples older than ``cut_ms``.

        Returns the labels and series ids by old ref and the removed ``(ref, ts, value)``.
        Series whose latest sample is older than the cut are dropped from the head.
        """
        refs, ts, vals = self.samples()
        old = ts < cut_ms
        labels, sids = self.labels, self.sids
        out = (refs[old], ts[old], vals[old])
        alive = self.latest >= cut_ms
        remap = np.cumsum(alive) - 1
        keep_refs, keep_ts, keep_vals = refs[~old], ts[~old], vals[~old]
        self._base = (remap[keep_refs], keep_ts, keep_vals)
        self.labels = [ls for ls, a in zip(labels, alive.tolist(), strict=True) if a]
        self.sids = sids[alive]
        self.latest = self.latest[alive]
        self._ref = {int(s): i for i, s in enumerate(self.sids.tolist())}
        self._index = None
        self._sid_sorted = None
        if keep_ts.shape[0]:
            self.mint, self.maxt = int(keep_ts.min()), int(keep_ts.max())
        else:
            self.mint = self.maxt = None
        return labels, sids, out
