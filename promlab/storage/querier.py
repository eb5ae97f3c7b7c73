"""Reading head ∪ blocks as one columnar :class:`SeriesSet`.

Each source (every block overlapping the range, then the head) answers the matchers through its
label index and returns ``(series row, ts, value)`` arrays. Series are identified across sources
by their id (``Labels.hash``), ranked by label order, and the samples are merged: when sources
do not overlap in time a stable sort by rank suffices; otherwise samples are sorted by (rank, ts)
with sources concatenated oldest write first, and the last write of equal keys wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher
from promlab.storage.blocks import Block
from promlab.storage.interface import SelectHints, SeriesSet
from promlab.storage.merge import merge_parts
from promlab.storage.postings import LabelIndex

__all__ = ["HeadView", "ParquetQuerier"]

log = logging.getLogger("promlab.storage")

Arrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]


@dataclass(frozen=True, slots=True)
class HeadView:
    """An immutable snapshot of the head taken when the querier was created."""

    labels: list[Labels]
    sids: npt.NDArray[np.int64]
    index: LabelIndex
    refs: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    def select(self, mask: npt.NDArray[np.bool_], mint: int, maxt: int) -> Arrays:
        keep = mask[self.refs] & (self.ts >= mint) & (self.ts <= maxt)
        return self.refs[keep], self.ts[keep], self.values[keep]

    def in_range(self, mint: int, maxt: int) -> npt.NDArray[np.bool_]:
        """Per-ref: has a sample in ``[mint, maxt]``."""
        out = np.zeros(self.index.n, bool)
        sel = (self.ts >= mint) & (self.ts <= maxt)
        out[self.refs[sel]] = True
        return out


@dataclass(slots=True)
class _Source:
    rows: npt.NDArray[np.int64]  # per sample, the series row inside the source
    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    label_of: Callable[[int], Labels]
    row_sids: npt.NDArray[np.int64]


class ParquetQuerier:
    """A :class:`~promlab.storage.interface.Querier` over blocks and a head snapshot."""

    def __init__(self, mint_ms: int, maxt_ms: int, head: HeadView | None,
                 blocks: Sequence[Block]) -> None:
        self.mint_ms = mint_ms
        self.maxt_ms = maxt_ms
        self._head = head
        # Blocks in write order (seq): later ones win where they overlap.
        self._blocks = sorted((b for b in blocks if b.meta.maxt >= mint_ms and b.meta.mint <= maxt_ms),
                              key=lambda b: (b.meta.seq, b.meta.ulid))

    def _range(self, hints: SelectHints | None) -> tuple[int, int]:
        mint, maxt = self.mint_ms, self.maxt_ms
        if hints is not None:
            if hints.start_ms is not None:
                mint = max(mint, hints.start_ms)
            if hints.end_ms is not None:
                maxt = min(maxt, hints.end_ms)
        return mint, maxt

    def _sources(self, matchers: Sequence[Matcher], mint: int, maxt: int) -> list[_Source]:
        out: list[_Source] = []
        for blk in self._blocks:
            if blk.meta.maxt < mint or blk.meta.mint > maxt:
                continue
            mask = blk.index().match(matchers)
            if not mask.any():
                continue
            rows, ts, vals = blk.select(mask, mint, maxt)
            if rows.shape[0]:
                out.append(_Source(rows, ts, vals, blk.labels_at, blk.sids))
        h = self._head
        if h is not None and h.index.n:
            mask = h.index.match(matchers)
            if mask.any():
                rows, ts, vals = h.select(mask, mint, maxt)
                if rows.shape[0]:
                    out.append(_Source(rows, ts, vals, _getter(h.labels), h.sids))
        return out

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        """Series matching every matcher, with samples in range, sorted by labels."""
        mint, maxt = self._range(hints)
        if mint > maxt:
            return SeriesSet.empty()
        sources = self._sources(matchers, mint, maxt)
        if not sources:
            return SeriesSet.empty()
        uniq, labels, used = _union_labels(sources)
        order = sorted(range(len(labels)), key=labels.__getitem__)
        rank_of = np.empty(len(labels), np.int64)
        rank_of[np.array(order, np.int64)] = np.arange(len(labels))
        parts = []
        for s, rows in zip(sources, used, strict=True):
            row_rank = np.full(s.row_sids.shape[0], -1, np.int64)
            row_rank[rows] = rank_of[np.searchsorted(uniq, s.row_sids[rows])]
            parts.append((row_rank[s.rows], s.ts, s.values))
        rank, ts, vals = merge_parts(parts)
        counts = np.bincount(rank, minlength=len(labels))
        offsets = np.zeros(len(labels) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        sorted_labels = [labels[i] for i in order]
        for a in (offsets, ts, vals):
            a.flags.writeable = False
        return SeriesSet(sorted_labels, offsets, ts, vals)

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


def _union_labels(sources: Sequence[_Source]
                  ) -> tuple[npt.NDArray[np.int64], list[Labels], list[npt.NDArray[np.int64]]]:
    """Sorted distinct series ids of all sources, their labels, and each source's used rows.

    Works per series (rows), never per sample.
    """
    used = []
    for s in sources:
        present = np.zeros(s.row_sids.shape[0], bool)
        present[s.rows] = True
        used.append(np.flatnonzero(present))
    uniq = np.unique(np.concatenate([s.row_sids[u] for s, u in zip(sources, used, strict=True)]))
    labels: list[Labels | None] = [None] * uniq.shape[0]
    missing = uniq.shape[0]
    for s, rows in zip(sources, used, strict=True):
        pos = np.searchsorted(uniq, s.row_sids[rows])
        for r, p in zip(rows.tolist(), pos.tolist(), strict=True):
            if labels[p] is None:
                labels[p] = s.label_of(r)
                missing -= 1
        if missing == 0:
            break
    return uniq, labels, used  # type: ignore[return-value]
