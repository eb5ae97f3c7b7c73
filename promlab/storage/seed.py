"""What a reopened head knows of its series from the persisted data: each one's latest sample.

Prometheus's head survives a restart in its WAL: after the replay it still knows every series'
latest sample, so an exact repeat of it is taken silently, another value at its time is a
duplicate, and a sample newer than the series' own latest is in order even when other series
went further. Its minimum valid time is then the newest block's end, which lies at least half a
block range behind the head's max time (the head is compacted only once it spans 1.5 block
ranges). promlab's close flushes its whole head into blocks, so a reopened writer reads that
knowledge back from the newest persisted data instead: :func:`read_persisted` loads, once, the
samples of the last ``[start, end]`` of the blocks (through a
:class:`~promlab.storage.querier.ParquetQuerier` select) and of the native histogram files
(exact samples: an integer histogram stays integer, as :mod:`.histaccept`'s equality needs),
into a :class:`PersistedLatest` that the head (:meth:`promlab.storage.head.Head.set_seed`) and
the commit's histogram checks (:mod:`promlab.storage.commit`) consult beside their own state.

Everything is vectorised over the window's samples; Python loops run once per series (their
label hashes) and per native histogram sample only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage import histdir as _hd
from promlab.storage.accept import NO_TS
from promlab.storage.blocks import Block
from promlab.storage.cache import DecodedCache
from promlab.storage.objectstore import LOCAL, BlockFS
from promlab.storage.querier import ParquetQuerier

__all__ = ["PersistedLatest", "read_persisted"]

AnyHist = Histogram | FloatHistogram
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


class PersistedLatest:
    """Per series: the latest persisted sample in a window ``[start, end]``, and which
    ``(series, timestamp)`` pairs the window holds (for the out-of-order clash rule).

    Float series are keyed by series id (``Labels.hash``), native histogram series by labels.

    Parameters
    ----------
    sids, offsets, ts, values
        The window's float samples: series ids and CSR ``offsets`` into ``ts``/``values``
        (each series' samples sorted by time).
    hists
        The window's native histogram samples ``(labels, ts, histogram)``, any order (a later
        item wins at an equal ``(labels, ts)``).
    start, end
        The window.
    """

    def __init__(self, sids: I64, offsets: I64, ts: I64, values: F64,
                 hists: Sequence[tuple[Labels, int, AnyHist]] = (), *, start: int,
                 end: int) -> None:
        self.start, self.end = start, end
        lens = np.diff(offsets)
        has = lens > 0
        order = np.argsort(sids[has], kind="stable")
        self._sids = sids[has][order]
        last = (offsets[1:] - 1)[has][order]
        self._latest = ts[last].astype(np.int64)
        self._last_value = values[last].astype(np.float64)
        # The window's (series, ts) pairs as one sorted key: rank of the series in _sids times
        # the window's width, plus the offset in the window.
        self._span = np.int64(end - start + 1)
        rank = np.empty(int(has.sum()), np.int64)
        rank[order] = np.arange(rank.shape[0], dtype=np.int64)
        keys = np.repeat(rank, lens[has]) * self._span + (ts - np.int64(start))
        self._keys = np.sort(keys)
        top: dict[Labels, tuple[int, AnyHist]] = {}
        held: dict[tuple[Labels, int], AnyHist] = {}
        for ls, t, h in hists:
            held[(ls, t)] = h
        for (ls, t), h in held.items():
            cur = top.get(ls)
            if cur is None or t > cur[0]:
                top[ls] = (t, h)
        self._hist_latest = top
        self._hist_held = frozenset(held)
        keys_h = np.array([ls.hash for ls in top], np.int64)
        times_h = np.array([t for t, _ in top.values()], np.int64)
        o = np.argsort(keys_h, kind="stable")
        self._hist_by_sid = (keys_h[o], times_h[o])

    def __len__(self) -> int:
        """How many series (float or histogram) have a sample in the window."""
        return int(self._sids.shape[0]) + len(self._hist_latest)

    def _find(self, sids: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        keys = self._sids
        if keys.shape[0] == 0:
            return np.zeros(sids.shape[0], np.int64), np.zeros(sids.shape[0], bool)
        pos = np.minimum(np.searchsorted(keys, sids), keys.shape[0] - 1).astype(np.int64)
        return pos, keys[pos] == sids

    def latest_of(self, sids: I64) -> tuple[I64, F64]:
        """Per series id: the time of its latest persisted float sample in the window (NO_TS:
        none) and that sample's value (0.0 when none)."""
        pos, hit = self._find(sids)
        ts = np.where(hit, self._latest[pos] if self._latest.shape[0] else NO_TS, NO_TS)
        vals = np.where(hit, self._last_value[pos] if self._latest.shape[0] else 0.0, 0.0)
        return ts.astype(np.int64), vals.astype(np.float64)

    def holds(self, sids: I64, ts: I64) -> npt.NDArray[np.bool_]:
        """Which ``(series id, ts)`` pairs the window holds a float sample at."""
        pos, hit = self._find(sids)
        inside = hit & (ts >= self.start) & (ts <= self.end)
        if not inside.any() or self._keys.shape[0] == 0:
            return np.zeros(sids.shape[0], bool)
        want = pos * self._span + (ts - np.int64(self.start))
        at = np.minimum(np.searchsorted(self._keys, want), self._keys.shape[0] - 1)
        out: npt.NDArray[np.bool_] = inside & (self._keys[at] == want)
        return out

    def histogram_latest(self, ls: Labels) -> tuple[int, AnyHist] | None:
        """The series' latest persisted native histogram sample in the window, or None."""
        return self._hist_latest.get(ls)

    def holds_histogram(self, ls: Labels, ts: int) -> bool:
        return (ls, ts) in self._hist_held

    def histogram_latest_times(self, sids: I64) -> I64 | None:
        """Per series id: the time of its latest persisted histogram sample (NO_TS: none);
        None when the window has no histogram sample."""
        keys, times = self._hist_by_sid
        if keys.shape[0] == 0:
            return None
        pos = np.minimum(np.searchsorted(keys, sids), keys.shape[0] - 1)
        out: I64 = np.where(keys[pos] == sids, times[pos], NO_TS).astype(np.int64)
        return out


def read_persisted(blocks: Sequence[Block], hist_files: Sequence[_hd.FileInfo], *, start: int,
                   end: int, cache: DecodedCache | None = None, fs: BlockFS = LOCAL
                   ) -> PersistedLatest:
    """The persisted samples of ``[start, end]`` of every series, from ``blocks`` (a querier
    select with no matcher: every series) and the native histogram files ``hist_files``
    (``(mint, maxt, seq, path)``, oldest write first)."""
    ss = ParquetQuerier(start, end, None, blocks, cache).select([]).compact()
    sids = np.fromiter((ls.hash for ls in ss.labels), np.int64, len(ss.labels))
    hists: list[tuple[Labels, int, AnyHist]] = []
    for fmin, fmax, _, path in sorted(hist_files, key=lambda f: (f[2], f[0])):
        if fmax >= start and fmin <= end:
            hists.extend(_hd.read_items(path, start, end, None, fs))
    return PersistedLatest(sids, np.asarray(ss.offsets, np.int64), np.asarray(ss.ts_ms, np.int64),
                           np.asarray(ss.values, np.float64), hists, start=start, end=end)
