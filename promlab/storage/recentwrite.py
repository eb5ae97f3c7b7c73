"""Writing a block's ``recent.arrow`` (format 8): its last minutes of samples, gathered from
what the block writer is handed (:class:`RecentCollector`), in record batches of whole metrics.
The layout is :mod:`promlab.storage.recent`'s, which reads it; see ``docs/storage.md``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.model import Labels
from promlab.storage.encoding import POW10, decimal_scales
from promlab.storage.indexwrite import write_batches
from promlab.storage.recent import (
    FIRST_INT_COLUMN,
    FIRST_TS_COLUMN,
    INT_COLUMN,
    RECENT_MINT_KEY,
    RECENT_MS,
    SCALE_COLUMN,
    TS_COLUMN,
    VALUE_COLUMN,
)
from promlab.storage.recentmap import buffer_map
from promlab.storage.seriesindex import METRIC_BATCHES_KEY, label_columns, metric_runs

__all__ = ["MIN_BATCH_SERIES", "RecentCollector", "recent_batches", "write_recent"]

#: A metric with this many series or more has a record batch of its own; smaller ones share
#: one (:func:`recent_batches`).
MIN_BATCH_SERIES = 256
#: Column names a label cannot have as they are (stored as ``label:<name>``).
_OWN = frozenset({"series_id", TS_COLUMN, VALUE_COLUMN, INT_COLUMN, SCALE_COLUMN,
                  FIRST_TS_COLUMN, FIRST_INT_COLUMN})

_I64 = npt.NDArray[np.int64]
_F64 = npt.NDArray[np.float64]


class RecentCollector:
    """Gathers the recent samples of what a block writer is handed, whole metrics at a time,
    series in label order: each hand-over's last :data:`RECENT_MS` is kept (the block's newest
    sample is known at the end only) and :meth:`table` cuts them at the block's."""

    def __init__(self) -> None:
        self._parts: list[tuple[list[Labels], _I64, _I64, _I64, _F64]] = []

    def add(self, labels: list[Labels], sids: _I64, rank_of: _I64, group: _I64, ts: _I64,
            values: _F64) -> None:
        """Samples ``ts``/``values`` of series ``rank_of[group]`` (positions in
        ``labels``/``sids``, which are in label order), sorted by (group, ts)."""
        if not ts.shape[0]:
            return
        keep = np.flatnonzero(ts >= int(ts.max()) - RECENT_MS)
        s, t, v = rank_of[group[keep]], ts[keep], values[keep]
        order = np.argsort(s, kind="stable")  # a series' samples stay in time order
        self._parts.append((labels, sids, s[order], t[order], v[order]))

    def table(self, maxt: int, window_ms: int = RECENT_MS) -> pa.Table:
        """The ``recent.arrow`` table of a block whose newest sample is at ``maxt`` (of
        ``tail.arrow`` with its ``window_ms``, at most :data:`RECENT_MS`)."""
        if window_ms > RECENT_MS:
            raise ValueError(f"a recent-samples window of {window_ms} ms: kept are {RECENT_MS}")
        mint = maxt - window_ms
        labels: list[Labels] = []
        sids, counts, ts, values = [], [], [], []
        for lab, sid, s, t, v in self._parts:
            m = t >= mint
            s, t, v = s[m], t[m], v[m]
            if not s.shape[0]:
                continue
            used, n = np.unique(s, return_counts=True)
            labels.extend(lab[i] for i in used.tolist())
            sids.append(sid[used])
            counts.append(n)
            ts.append(t)
            values.append(v)
        nser = len(labels)
        cols, colmap = label_columns(labels, _OWN)
        data: dict[str, Any] = {c: pa.array(v, pa.string()).dictionary_encode()
                                for c, v in cols.items()}
        data["series_id"] = pa.array(_cat(sids, np.int64), pa.int64())
        lens = _cat(counts, np.int64)
        offsets = np.zeros(nser + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        vals = _cat(values, np.float64)
        times = _cat(ts, np.int64) - mint
        starts = offsets[:-1]
        # Times as each series' first (ms since mint) and the steps after it, which fit 16 bits
        # for scrape intervals up to a minute. Values as the samples file keeps them
        # (storage.encoding): a series whose values here are all exact decimals (no NaN, stale
        # marker, infinity or -0) as scaled integers, its first one and the steps after it
        # (a few bytes where a float takes eight); every other series' as float64. Each
        # series' values are in one of the two lists, the other's is empty. The buffers are
        # not compressed: a query reads them as they lie in the file.
        scales = decimal_scales(vals, starts, lens)
        special = ~np.isfinite(vals) | ((vals == 0) & np.signbit(vals))
        if special.any():
            scales[np.repeat(np.arange(nser), lens)[special]] = -1
        dec = scales >= 0
        row_dec = np.repeat(dec, lens)
        ints = np.round(vals[row_dec] * np.repeat(POW10[scales[dec]], lens[dec])).astype(np.int64)
        first_int = np.zeros(nser, np.int64)
        int_steps, int_firsts = _steps(ints, lens[dec])
        first_int[dec] = int_firsts
        ts_steps, first_ts = _steps(times, lens)
        data[SCALE_COLUMN] = pa.array(scales, pa.int8())
        data[FIRST_TS_COLUMN] = pa.array(first_ts.astype(np.int32), pa.int32())
        data[FIRST_INT_COLUMN] = pa.array(first_int, pa.int64())
        data[TS_COLUMN] = pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)), _narrow(ts_steps, (pa.uint16(), pa.int32())))
        data[VALUE_COLUMN] = pa.ListArray.from_arrays(
            pa.array(_list_offsets(np.where(dec, 0, lens))), pa.array(vals[~row_dec], pa.float64()))
        data[INT_COLUMN] = pa.ListArray.from_arrays(
            pa.array(_list_offsets(np.where(dec, lens, 0))),
            _narrow(int_steps, (pa.int8(), pa.int16(), pa.int32(), pa.int64())))
        table = pa.table(data)
        return table.replace_schema_metadata({"promlab.label_columns": json.dumps(colmap),
                                              RECENT_MINT_KEY: str(mint)})


def _steps(x: _I64, lens: _I64) -> tuple[_I64, _I64]:
    """Per run of ``x`` (``lens`` long, none empty): its first value, and each value's step
    from the one before it (0 at the run's start)."""
    steps = np.zeros(x.shape[0], np.int64)
    steps[1:] = x[1:] - x[:-1]
    starts = np.zeros(lens.shape[0], np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    steps[starts] = 0
    return steps, x[starts] if x.shape[0] else np.zeros(0, np.int64)


def _narrow(x: _I64, types: tuple[pa.DataType, ...]) -> pa.Array:
    """``x`` as the first of ``types`` that holds all its values."""
    lo, hi = (int(x.min()), int(x.max())) if x.shape[0] else (0, 0)
    for typ in types:
        info = np.iinfo(typ.to_pandas_dtype())
        if info.min <= lo and hi <= info.max:
            return pa.array(x.astype(info.dtype), typ)
    raise ValueError(f"steps of {lo}..{hi} fit none of {types}")


def _cat(parts: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def write_recent(table: pa.Table, path: str) -> tuple[list[int], list[str], dict[str, Any]]:
    """Write :meth:`RecentCollector.table`'s ``table`` to ``path`` in record batches of whole
    metrics (:func:`recent_batches`); returns the piece offsets, each batch's first metric
    name and the file's buffer map (:func:`~promlab.storage.recentmap.buffer_map`), for
    ``meta.json`` (a reader finds a metric's batch from the names, in order, and its columns
    from the map, without reading the file's metadata: :func:`batch_of`)."""
    batches = recent_batches(*metric_runs(table)) if table.num_rows else []
    md = dict(table.schema.metadata or {})
    md[METRIC_BATCHES_KEY] = json.dumps([names for _, _, names in batches]).encode()
    ends = write_batches(table.replace_schema_metadata(md).combine_chunks(), path, batches,
                         compression=None)
    colmap = json.loads(md.get(b"promlab.label_columns", b"{}"))
    return ends, [names[0] for _, _, names in batches], buffer_map(path, ends, colmap)


def recent_batches(bounds: list[int], names: list[str], min_series: int = MIN_BATCH_SERIES
                   ) -> list[tuple[int, int, list[str]]]:
    """Record batches of ``recent.arrow``: a metric of ``min_series`` series or more alone (a
    query reads one metric's batch, so it should not decode a large neighbour's samples), the
    smaller ones put together until a batch holds ``min_series`` (``(first row, end row,
    names)`` each; ``bounds``/``names`` as :func:`~promlab.storage.seriesindex.metric_runs`
    gives them)."""
    out: list[tuple[int, int, list[str]]] = []
    lo = 0
    group: list[str] = []
    for name, start, end in zip(names, bounds[:-1], bounds[1:], strict=True):
        if end - start >= min_series:
            if group:
                out.append((lo, start, group))
                group = []
            out.append((start, end, [name]))
            continue
        if not group:
            lo = start
        group.append(name)
        if end - lo >= min_series:
            out.append((lo, end, group))
            group = []
    if group:
        out.append((lo, bounds[-1], group))
    return out


def _list_offsets(lens: _I64) -> npt.NDArray[np.int32]:
    out = np.zeros(lens.shape[0] + 1, np.int32)
    np.cumsum(lens, out=out[1:])
    return out
