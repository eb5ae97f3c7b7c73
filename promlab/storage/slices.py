"""Format 6's time slices: a bucket's rows ordered by (slice, chunk, time).

A block's samples file groups rows by (metric, time bucket); from format 6 on, inside each
group the rows are ordered by the slice of the bucket they fall in (:data:`SLICES` equal parts),
then by chunk (the order format 5 gives the chunks), then time. A chunk (one series in one
bucket) is therefore up to :data:`SLICES` pieces, one per slice, and a read of a short range
reads only the pieces of the slices it overlaps (about a quarter of an hour's rows for an
instant query), not the whole bucket.

The series index keeps each chunk's ``chunk_row_start`` as its place in the bucket as if it
were not sliced (the rows of the group before it plus the rows of its group's chunks before
it: what orders the chunks) and adds :data:`SLICE_COLUMN`, each chunk's rows per slice. The
pieces' rows follow from one cumulative sum per group (:func:`piece_starts`). The effective
bucket width is recorded in the series table's schema metadata (:data:`BUCKET_MS_KEY`).
See ``docs/storage.md``, format 6.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.model.arrays import unique
from promlab.storage import pool

__all__ = ["BUCKET_MS_KEY", "GROUPS_KEY", "SLICES", "SLICE_COLUMN", "SliceIndex", "chunk_buckets",
           "piece_starts", "pieces", "row_group_cuts", "slice_ends", "slice_index", "slice_order"]

#: Slices per bucket (written; a reader takes the count from the column's length).
SLICES = 4
SLICE_COLUMN = "chunk_slice_rows"
BUCKET_MS_KEY = b"promlab.bucket_ms"
#: The first row of each (metric, bucket) group, base64 little-endian int64s.
GROUPS_KEY = b"promlab.slice_groups"

_I64 = npt.NDArray[np.int64]
#: Runs of groups a read resolves by comparing every chunk's place once per run; past this
#: many, each chunk's group is searched for once and kept.
MAX_SCANNED_RUNS = 4


def slice_width(bucket_ms: int, nslices: int) -> int:
    """Width of a slice: the bucket cut in ``nslices`` (rounded up)."""
    return max(1, -(-bucket_ms // nslices))


def chunk_buckets(first_ts: _I64, start: int, bucket_ms: int) -> _I64:
    """Bucket number of chunks starting at ``first_ts`` in a block starting at ``start``."""
    return np.maximum((first_ts - start) // bucket_ms, 0)


def slice_order(ts: _I64, row_start: _I64, counts: _I64, chunk_name: _I64, *, start: int,
                bucket_ms: int, nslices: int) -> tuple[_I64, _I64 | None, _I64]:
    """Rows per slice of each chunk and the permutation that slices the rows.

    ``ts`` holds the chunks' rows contiguously (chunk ``i`` at ``row_start[i]:+counts[i]``, in
    file order, grouped by (``chunk_name``, bucket)). Returns ``(rows, perm)``: ``rows`` of shape
    ``(chunks, nslices)``, ``perm`` such that ``ts[perm]`` is the sliced order (None when it
    is the identity) and the first row of each (metric, bucket) group.
    """
    k = int(counts.shape[0])
    if k == 0:
        return np.zeros((0, nslices), np.int64), None, np.zeros(0, np.int64)
    width = slice_width(bucket_ms, nslices)
    bucket = chunk_buckets(ts[row_start], start, bucket_ms)
    chunk_of = np.repeat(np.arange(k, dtype=np.int64), counts)
    sl = (ts - start - np.repeat(bucket * bucket_ms, counts)) // width
    np.clip(sl, 0, nslices - 1, out=sl)
    rows = np.bincount(chunk_of * nslices + sl, minlength=k * nslices).reshape(k, nslices)
    rows = rows.astype(np.int64)
    new = np.ones(k, bool)
    new[1:] = (chunk_name[1:] != chunk_name[:-1]) | (bucket[1:] != bucket[:-1])
    firsts = row_start[new]
    if nslices == 1:
        return rows, None, firsts
    key = np.repeat((np.cumsum(new) - 1) * nslices, counts) + sl
    if bool((key[1:] >= key[:-1]).all()):
        return rows, None, firsts
    return rows, np.argsort(key, kind="stable"), firsts


def slice_ends(slice_rows: _I64, row_start: _I64, firsts: _I64) -> _I64:
    """Where the slices of each (metric, bucket) group end, ascending and unique: chunks at
    ``row_start`` (ascending) with ``slice_rows`` (chunks x slices) in groups starting at
    ``firsts`` (those of :func:`slice_order`)."""
    if not row_start.shape[0]:
        return np.zeros(0, np.int64)
    totals = np.add.reduceat(slice_rows, np.searchsorted(row_start, firsts), axis=0)
    return unique(firsts[:, None] + np.cumsum(totals, axis=1))


def row_group_cuts(ends: _I64, start: int, stop: int, rows: int, *, final: bool) -> list[int]:
    """Where to end the row groups of rows ``[start, stop)``, about ``rows`` rows each, at
    slice ends (``ends``, ascending) where one lies in reach: a read of a slice then decodes
    its own rows, not those of the neighbouring slices sharing its row groups. A slice longer
    than ``rows`` is cut in equal parts; no group is smaller than ``rows // 8`` unless the
    rows end there. Without ``final``, the last rows (less than ``rows``) are left for later.
    """
    cuts: list[int] = []
    p = start
    while stop - p > rows or (final and p < stop):
        hi = p + rows
        if stop <= hi:
            cuts.append(p := stop)
            continue
        i = int(np.searchsorted(ends, hi, "right"))
        if i and int(ends[i - 1]) - p >= max(1, rows // 8):
            cuts.append(p := int(ends[i - 1]))
            continue
        nxt = int(ends[i]) if i < ends.shape[0] else stop
        if nxt > stop:
            break
        k = -(-(nxt - p) // rows)
        cuts.append(p := p + -(-(nxt - p) // k))
    return cuts


def piece_starts(row_start: _I64, rows: _I64, group: _I64) -> _I64:
    """Each chunk's first row in each slice, shape ``rows.shape``.

    ``row_start`` is the chunks' unsliced place, ``group`` their (metric, bucket) group's first
    row (whole groups only). Raises ValueError when the chunks do not tile their groups.
    """
    k = int(row_start.shape[0])
    if k == 0:
        return np.zeros(rows.shape, np.int64)
    g0 = int(group[0])
    if bool((group == g0).all()):
        return _one_group_starts(row_start, rows, g0)
    o = np.argsort(row_start, kind="stable")
    rs, gr, r = row_start[o], group[o], rows[o]
    new = np.ones(k, bool)
    new[1:] = gr[1:] != gr[:-1]
    first = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    before = np.cumsum(r, axis=0) - r  # rows of earlier chunks, per slice
    within = before - before[first][gid]
    total = np.add.reduceat(r, first, axis=0)  # per group and slice
    soff = np.cumsum(total, axis=1) - total
    # Each group's chunks lie back to back from the group's first row (unsliced places).
    if not np.array_equal(rs - gr, within.sum(axis=1)):
        raise ValueError("slice rows do not match the chunks' rows")
    out = np.empty(rows.shape, np.int64)
    out[o] = gr[:, None] + soff[gid] + within
    return out


def _one_group_starts(row_start: _I64, rows: _I64, group: int) -> _I64:
    """:func:`piece_starts` of the chunks of one group (a first query's case: one metric's
    bucket), without the per-group bookkeeping; sorted by place unless already in order."""
    o: _I64 | None = None
    if not bool((row_start[1:] > row_start[:-1]).all()):
        o = np.argsort(row_start, kind="stable")
        row_start, rows = row_start[o], rows[o]
    within = np.cumsum(rows, axis=0)
    within -= rows  # rows of earlier chunks, per slice
    total = within[-1] + rows[-1]
    soff = np.cumsum(total) - total
    if not np.array_equal(row_start - group, within.sum(axis=1)):
        raise ValueError("slice rows do not match the chunks' rows")
    within += soff
    within += group
    if o is None:
        return within
    out = np.empty(rows.shape, np.int64)
    out[o] = within
    return out


def pieces(starts: _I64, rows: _I64, bucket_lo: _I64, slice_ms: int, mint: int, maxt: int
           ) -> tuple[_I64, _I64, _I64]:
    """The pieces of chunks (``starts``/``rows`` of :func:`piece_starts`, theirs only; the
    chunks' buckets starting at ``bucket_lo``) whose slices overlap ``[mint, maxt]``.

    Returns the pieces' first rows, row counts and chunk (position in the given chunks), by
    chunk then slice: each chunk's pieces in time order. The first slice is open below and the
    last above (samples before or after the bucket's range are kept in them).
    """
    k, ns = rows.shape
    if k and int(bucket_lo.min()) == int(bucket_lo.max()):
        # One bucket (a first query's usual case): the same slices of every chunk.
        b = int(bucket_lo[0])
        a, z = ((min(max((t - b) // slice_ms, 0), ns - 1)) for t in (mint, maxt))
        if a <= z:
            sub = rows[:, a:z + 1]
            if bool((sub > 0).all()):
                w = z + 1 - a
                return (starts[:, a:z + 1].ravel(), sub.ravel(),
                        np.repeat(np.arange(k, dtype=np.int64), w) if w > 1
                        else np.arange(k, dtype=np.int64))
    s = np.arange(ns, dtype=np.int64)
    lo = bucket_lo[:, None] + s * slice_ms
    want = rows > 0
    if ns > 1:
        want[:, :-1] &= lo[:, :-1] + slice_ms > mint
        want[:, 1:] &= lo[:, 1:] <= maxt
    flat = want.ravel()
    chunk = np.repeat(np.arange(k, dtype=np.int64), ns)[flat]
    return starts.ravel()[flat], rows.ravel()[flat], chunk


class SliceIndex:
    """A format-6 block's pieces: each chunk's rows per slice and its pieces' first rows,
    worked out per (metric, bucket) group when a read first needs one of its chunks.

    Parameters
    ----------
    rows
        The series table's :data:`SLICE_COLUMN` values (chunks x slices, flattened).
    row_start, min_time, max_time, row_count
        Per chunk: unsliced place, first and last timestamps, rows.
    groups
        The first row of each (metric, bucket) group, ascending (:data:`GROUPS_KEY`).
    start, bucket_ms
        The block's start and the bucket width the rows were sliced in.
    """

    def __init__(self, rows: npt.NDArray[np.integer[Any]], row_start: _I64, min_time: _I64,
                 max_time: _I64, row_count: _I64, groups: _I64, *, start: int,
                 bucket_ms: int) -> None:
        k = int(row_start.shape[0])
        if bucket_ms <= 0 or (k and rows.shape[0] % k) or (not k and rows.shape[0]):
            raise ValueError("bad slice rows")
        # Every chunk lies in a group: the first group starts at or before the first chunk.
        if k and (not groups.shape[0] or int(groups[0]) > int(row_start.min())
                  or not bool((groups[1:] > groups[:-1]).all())):
            raise ValueError("bad slice groups")
        ns = rows.shape[0] // k if k else SLICES
        self.rows = rows.reshape(k, ns)
        self.row_start, self.row_count = row_start, row_count
        self.min_time, self.max_time = min_time, max_time
        self.groups = groups
        self.start, self.bucket_ms = start, bucket_ms
        self.slice_ms = slice_width(bucket_ms, ns)
        # Rows of resolved groups only; from Arrow's pool (its pages stay mapped between
        # reads: a first query touches a few of them, not all, issue 14).
        self.starts = pool.empty(k * ns, np.int64).reshape(k, ns)
        # Each chunk's group, found for all chunks only when a read needs many scattered groups
        # (a first query's few groups cost a comparison per chunk, not a search: issue 14).
        self._group_of: _I64 | None = None
        self._done = np.zeros(groups.shape[0], bool)  # groups whose starts are worked out

    def _groups_of(self, rows: _I64) -> _I64:
        """The group of each chunk in ``rows``."""
        if self._group_of is not None:
            return self._group_of[rows]
        return np.searchsorted(self.groups, self.row_start[rows], "right") - 1

    def _resolve(self, sel: _I64) -> None:
        """Work out the piece starts of the groups of chunks ``sel`` not done yet."""
        touched = unique(self._groups_of(sel))
        todo = touched[~self._done[touched]]
        if not todo.shape[0]:
            return
        # Runs of consecutive groups (a metric's buckets) are ranges of unsliced places.
        brk = np.flatnonzero(np.diff(todo) != 1) + 1
        if self._group_of is None and brk.shape[0] >= MAX_SCANNED_RUNS:
            self._group_of = np.searchsorted(self.groups, self.row_start, "right") - 1
        if self._group_of is not None:
            wanted = np.zeros(self.groups.shape[0], bool)
            wanted[todo] = True
            m = np.flatnonzero(wanted[self._group_of])
        else:
            ends = np.append(self.groups[1:], np.iinfo(np.int64).max)
            rs = self.row_start
            mask = np.zeros(rs.shape[0], bool)
            for a, b in zip(todo[np.r_[0, brk]].tolist(), todo[np.r_[brk - 1, -1]].tolist(),
                            strict=True):
                mask |= (rs >= self.groups[a]) & (rs < ends[b])
            m = np.flatnonzero(mask)
        rows = self.rows[m].astype(np.int64)
        if not np.array_equal(rows.sum(axis=1), self.row_count[m]):
            raise ValueError("slice rows do not add up to the chunks' rows")
        self.starts[m] = piece_starts(self.row_start[m], rows, self.groups[self._groups_of(m)])
        self._done[todo] = True

    def bounds(self, mint: int, maxt: int) -> tuple[int, int]:
        """``[mint, maxt]`` widened to the bounds of the slices it touches (the same for every
        range in those slices, so a decode of them can key a cache)."""
        # Python integers: :func:`chunk_buckets` and the slice of each end, two values only.
        ns, start, bms, sms = self.rows.shape[1], self.start, self.bucket_ms, self.slice_ms
        b_lo, b_hi = (start + max((t - start) // bms, 0) * bms for t in (mint, maxt))
        s_lo, s_hi = (min(max((t - b) // sms, 0), ns - 1) for t, b in ((mint, b_lo), (maxt, b_hi)))
        lo = b_lo + s_lo * sms
        hi = b_hi + bms - 1 if s_hi == ns - 1 else b_hi + (s_hi + 1) * sms - 1
        return min(lo, mint), max(hi, maxt)

    def bounds_box(self, mint: int, maxt: int) -> tuple[int, int, int, int]:
        """``(mint_lo, mint_hi, maxt_lo, maxt_hi)``: :meth:`bounds` answers for every
        ``mint_lo <= m <= mint_hi`` and ``maxt_lo <= x <= maxt_hi`` what it answers for
        ``(mint, maxt)``: each end's slice within its bucket (the last slice runs to the
        bucket's end); an end before the block's start is a box of its own."""
        ns, start, bms, sms = self.rows.shape[1], self.start, self.bucket_ms, self.slice_ms
        box: list[int] = []
        for t in (mint, maxt):
            if t < start:
                box += (t, t)
                continue
            b = start + (t - start) // bms * bms
            s = min((t - b) // sms, ns - 1)
            last = b + bms - 1 if s == ns - 1 else min(b + (s + 1) * sms, b + bms) - 1
            box += (b + s * sms, last)
        return box[0], box[1], box[2], box[3]

    def window(self, sel: _I64, mint: int, maxt: int) -> tuple[int, int] | None:
        """The range a decode of chunks ``sel`` for ``[mint, maxt]`` needs: :meth:`bounds`, or
        None when that holds all of their samples."""
        if not sel.shape[0]:
            return None
        lo, hi = self.bounds(mint, maxt)
        if lo <= int(self.min_time[sel].min()) and hi >= int(self.max_time[sel].max()):
            return None
        return lo, hi

    def pieces(self, sel: _I64, mint: int, maxt: int) -> tuple[_I64, _I64, _I64]:
        """:func:`pieces` of chunks ``sel``."""
        self._resolve(sel)
        lo = self.start + chunk_buckets(self.min_time[sel], self.start,
                                        self.bucket_ms) * self.bucket_ms
        return pieces(self.starts[sel], self.rows[sel].astype(np.int64), lo, self.slice_ms,
                      mint, maxt)


def slice_index(table: pa.Table, chunk_cols: list[_I64], start: int, version: int,
                groups: _I64 | None = None) -> SliceIndex | None:
    """The :class:`SliceIndex` of a format-6 series table (one row per series; ``chunk_cols``
    the chunks' min/max time, row start/count of :func:`~promlab.storage.seriesindex.chunk_lists`;
    ``start`` the block's), None before format 6. Its (metric, bucket) groups are ``groups``
    (format 7: carried by the record batches read), else the schema's. Raises
    KeyError/ValueError when damaged."""
    if version < 6:
        return None
    arr = table[SLICE_COLUMN].combine_chunks()
    flat = arr.flatten()  # the values of these rows (a table slice's too)
    if arr.null_count or flat.null_count:
        raise ValueError(f"null in {SLICE_COLUMN}")
    rows = flat.to_numpy()  # as stored (uint16): widened per group when first read
    if rows.dtype.kind not in "iu":
        raise ValueError(f"{SLICE_COLUMN}: not integers")
    kv = table.schema.metadata or {}
    mins, maxs, row_start, row_count = chunk_cols
    bucket_ms = int(kv[BUCKET_MS_KEY])
    if groups is None:
        groups = np.frombuffer(base64.b64decode(kv[GROUPS_KEY], validate=True),
                               "<i8").astype(np.int64)
    return SliceIndex(rows, row_start, mins, maxs, row_count, groups,
                      start=start, bucket_ms=bucket_ms)
