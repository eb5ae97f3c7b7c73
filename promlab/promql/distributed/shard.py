"""Series shards: which worker reads and evaluates which series of a selection.

A distributed query splits each remote node's series before any worker reads them: the client
resolves the selection's series from the label index (cheap: no samples) in the order storage
lays them out (``SeriesLayout``; label order for stores that do not say), groups the series
that share their labels once ``__name__`` is dropped (they must meet on one worker, where the
engine merges them or reports the duplicate label set exactly as one process would) and cuts
the groups, in that order, into contiguous runs of about equal series count
(:meth:`ShardMap.split`). A run of the storage's order is (nearly) a run of rows of the
samples file, so each worker reads and decodes about its share of the selection's row groups
(``SelectHints.shard``), not all of them.

A series the client did not see (written since) goes to the shard of its name-less label set
if the client saw that set, else to ``hash(labels without __name__) % count``
(:func:`shard_of`), the rule used when no map was made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from promlab.model import Labels, Matcher
from promlab.storage.interface import Querier, Queryable, SelectHints, SeriesSet, SeriesShard

__all__ = ["ShardMap", "ShardQueryable", "shard_of", "take_series"]


def shard_of(labels: Labels, count: int) -> int:
    """The shard of a series among ``count`` (stable across processes)."""
    return labels.without_name().hash % count


@dataclass(frozen=True, slots=True, eq=False)
class ShardMap:
    """The shard of every series of a selection, as the client resolved it.

    ``ids``/``owners``: series ids (``Labels.hash``) sorted ascending and the shard of each;
    ``keys``/``key_owners``: the same for the name-less label sets' hashes (for series the
    client did not see).
    """

    count: int
    ids: npt.NDArray[np.int64]
    owners: npt.NDArray[np.int32]
    keys: npt.NDArray[np.int64]
    key_owners: npt.NDArray[np.int32]

    @classmethod
    def split(cls, series: Sequence[Labels], count: int) -> ShardMap:
        """Cut ``series`` (in storage or label order) into ``count`` runs of about equal size.

        Series with equal labels once ``__name__`` is dropped share a shard: each name-less
        label set is placed at the middle of its series' run in order of first appearance.

        Examples
        --------
        >>> from promlab.model import Labels
        >>> ls = [Labels({"__name__": "a", "i": str(i)}) for i in range(4)]
        >>> m = ShardMap.split(ls, 2)
        >>> [m.shard_of(x) for x in ls]
        [0, 0, 1, 1]
        """
        key_of = [ls.without_name().hash for ls in series]
        sizes: dict[int, int] = {}
        for k in key_of:
            sizes[k] = sizes.get(k, 0) + 1
        keys = np.fromiter(sizes, np.int64, len(sizes))
        n = np.fromiter(sizes.values(), np.int64, len(sizes))
        total = max(int(n.sum()), 1)
        middle = np.cumsum(n) - n / 2.0
        key_owner = np.minimum((middle * count / total).astype(np.int32), count - 1)
        owner_of = dict(zip(keys.tolist(), key_owner.tolist(), strict=True))
        ids = np.fromiter((ls.hash for ls in series), np.int64, len(series))
        owners = np.fromiter((owner_of[k] for k in key_of), np.int32, len(series))
        o, ko = np.argsort(ids, kind="stable"), np.argsort(keys, kind="stable")
        return cls(count, ids[o], owners[o], keys[ko], key_owner[ko])

    def shard_of(self, labels: Labels) -> int:
        """The shard of a series (also of one the client did not see)."""
        owner = _lookup(self.ids, self.owners, labels.hash)
        if owner is not None:
            return owner
        key = labels.without_name().hash
        owner = _lookup(self.keys, self.key_owners, key)
        return owner if owner is not None else key % self.count

    def rows(self, labels: Sequence[Labels], shard: int) -> list[int]:
        """Positions of ``shard``'s series in ``labels``."""
        if not labels:
            return []
        ids = np.fromiter((ls.hash for ls in labels), np.int64, len(labels))
        pos = np.minimum(np.searchsorted(self.ids, ids), max(self.ids.shape[0] - 1, 0))
        known = (self.ids[pos] == ids) if self.ids.shape[0] else np.zeros(len(labels), bool)
        mine = known & (self.owners[pos] == shard) if self.ids.shape[0] else known
        out = np.flatnonzero(mine).tolist()
        unknown = np.flatnonzero(~known).tolist()
        if unknown:
            out = sorted(out + [i for i in unknown if self.shard_of(labels[i]) == shard])
        return out

    def hint(self, shard: int) -> SeriesShard:
        """What storage needs to read ``shard`` only (``SelectHints.shard``)."""
        return SeriesShard(self.ids, self.owners, shard)


def _lookup(sorted_ids: npt.NDArray[np.int64], values: npt.NDArray[np.int32], key: int
            ) -> int | None:
    i = int(np.searchsorted(sorted_ids, key))
    if i < sorted_ids.shape[0] and int(sorted_ids[i]) == key:
        return int(values[i])
    return None


def take_series(ss: SeriesSet, rows: Sequence[int]) -> SeriesSet:
    """The series ``rows`` (ascending) of ``ss`` as a new CSR set (a view set stays a view
    set: its runs are not copied)."""
    if len(rows) == len(ss.labels):
        return ss
    idx = np.asarray(rows, np.int64)
    if ss.starts is not None and ss.ends is not None:
        return dataclasses.replace(ss, labels=[ss.labels[i] for i in idx.tolist()],
                                   starts=ss.starts[idx], ends=ss.ends[idx])
    lengths = np.diff(ss.offsets)[idx]
    offsets = np.zeros(idx.shape[0] + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    starts = ss.offsets[:-1][idx]
    take = np.repeat(starts - offsets[:-1], lengths) + np.arange(int(offsets[-1]), dtype=np.int64)
    # Per-sample extras (native histograms, start timestamps) follow the samples.
    extra = {name: arr[take] for name in ("histograms", "start_ts_ms")
             if (arr := getattr(ss, name, None)) is not None}
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
