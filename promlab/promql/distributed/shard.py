"""Series shards: a :class:`~promlab.storage.interface.Queryable` that sees one shard of a store.

A series belongs to shard ``hash(labels without __name__) % count``. The metric name is left out
of the key so that series which collide once an operation drops their names (``rate(...)`` over
``{__name__=~"a|b"}``) always meet on the same worker, where the engine merges them or reports
the duplicate label set exactly as one process would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from promlab.model import Labels, Matcher
from promlab.storage.interface import Querier, Queryable, SelectHints, SeriesSet

__all__ = ["ShardQueryable", "shard_of", "take_series"]


def shard_of(labels: Labels, count: int) -> int:
    """The shard of a series among ``count`` (stable across processes)."""
    return labels.without_name().hash % count


def take_series(ss: SeriesSet, rows: Sequence[int]) -> SeriesSet:
    """The series ``rows`` (ascending) of ``ss`` as a new CSR set."""
    if len(rows) == len(ss.labels):
        return ss
    idx = np.asarray(rows, np.int64)
    lengths = np.diff(ss.offsets)[idx]
    offsets = np.zeros(idx.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    starts = ss.offsets[:-1][idx]
    take = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
    hist = getattr(ss, "histograms", None)
    extra = {} if hist is None else {"histograms": hist[take]}
    return SeriesSet([ss.labels[i] for i in idx.tolist()], offsets, ss.ts_ms[take],
                     ss.values[take], **extra)


class _ShardQuerier:
    def __init__(self, inner: Querier, shard: int, count: int) -> None:
        self._inner = inner
        self._shard = shard
        self._count = count

    def _mine(self, labels: Sequence[Labels]) -> list[int]:
        return [i for i, ls in enumerate(labels) if shard_of(ls, self._count) == self._shard]

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        ss = self._inner.select(matchers, hints)
        return take_series(ss, self._mine(ss.labels))

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        found = self._inner.series(matchers)
        return [found[i] for i in self._mine(found)]

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self._inner.label_names(matchers)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self._inner.label_values(name, matchers)

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True, slots=True)
class ShardQueryable:
    """Shard ``shard`` of ``count`` of ``inner``: selections keep only that shard's series.

    Label names and values are answered for the whole store (the engine does not use them).
    """

    inner: Queryable
    shard: int
    count: int

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        return _ShardQuerier(self.inner.querier(mint_ms, maxt_ms), self.shard, self.count)
