"""A block's recent samples: ``recent.arrow`` (format 8, issue 14).

A person exploring a store asks first about *now*: an instant query at the end of the data,
with five minutes of lookback or a ``rate(...[5m])``. Prometheus answers those from its
in-memory head. A freshly opened promlab store had to load the metric's part of the series
index (chunk lists, slice pieces), plan the samples file's row groups, read and decode them
and assemble the series: about 4 ms of fixed work before the first answer, whatever its size.

So each block also keeps its last :data:`RECENT_MS` as a small Arrow IPC file: one row per
series with samples in ``[mint, maxt]`` of that window (``mint`` = the block's newest sample
minus :data:`RECENT_MS`, recorded in ``meta.json`` and in the file's schema metadata
``promlab.recent_mint``), in label order, in record batches of whole metrics after an empty
first batch with the schema and the dictionaries (the layout of ``series.arrow``, format 7,
each piece's CRC in ``meta.json``): the label columns dictionary-encoded (a reserved name
stored as ``label:<name>``, mapped by ``promlab.label_columns``), ``series_id``, and two list
columns, ``recent_ts`` (int32, ms since ``mint``) and ``recent_value`` (float64, bit for bit
what ``samples.parquet`` decodes to, stale markers included). Every sample of the block at or
after ``mint`` is in it, so a selection whose range starts at or after ``mint`` is answered
from it alone, exactly as from the samples file. Any Arrow reader reads the table; ``explode``
(pandas) or ``UNNEST`` (DuckDB) make one row per sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.model import Labels
from promlab.storage.blockmeta import RECENT_FILE
from promlab.storage.cache import MetricColumns
from promlab.storage.encoding import MAX_SCALE, POW10, decimal_scales, flat
from promlab.storage.indexfile import read_index_file
from promlab.storage.indexwrite import write_batches
from promlab.storage.merge import gather_runs
from promlab.storage.postings import LabelColumn, LabelIndex
from promlab.storage.seriesindex import (
    METRIC_BATCHES_KEY,
    SeriesIndexFile,
    label_codes,
    metric_batches,
    metric_runs,
)

__all__ = ["RECENT_FILE", "RECENT_MINT_KEY", "RECENT_MS", "RecentCollector", "RecentFile",
           "RecentMetric", "recent_columns", "write_recent"]

#: How far back from a block's newest sample ``recent.arrow`` reaches: five minutes of lookback
#: or a ``[10m]`` range at the end of the data, with room to spare.
RECENT_MS = 15 * 60_000
RECENT_MINT_KEY = b"promlab.recent_mint"
TS_COLUMN = "recent_ts"
VALUE_COLUMN = "recent_value"
INT_COLUMN = "recent_int"
SCALE_COLUMN = "recent_scale"
#: Column names a label cannot have as they are (stored as ``label:<name>``).
_OWN = frozenset({"series_id", TS_COLUMN, VALUE_COLUMN, INT_COLUMN, SCALE_COLUMN})

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

    def table(self, maxt: int) -> pa.Table:
        """The ``recent.arrow`` table of a block whose newest sample is at ``maxt``."""
        mint = maxt - RECENT_MS
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
        cols: dict[str, list[str | None]] = {}
        for i, ls in enumerate(labels):
            for k, val in ls.pairs:
                col = cols.get(k)
                if col is None:
                    col = cols[k] = [None] * nser
                col[i] = val
        data: dict[str, Any] = {}
        colmap = {}
        for k in sorted(cols):
            cname = f"label:{k}" if k in _OWN or k.startswith("label:") else k
            colmap[cname] = k
            data[cname] = pa.array(cols[k], pa.string()).dictionary_encode()
        data["series_id"] = pa.array(_cat(sids, np.int64), pa.int64())
        lens = _cat(counts, np.int64)
        offsets = np.zeros(nser + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        vals = _cat(values, np.float64)
        # Values as the samples file keeps them (storage.encoding): a series whose values here
        # are all exact decimals (no NaN, stale marker, infinity or -0) as scaled integers,
        # written as differences (its first one whole), which take a few bytes where a float
        # takes eight; every other series' as float64. Each series' values are in one of the
        # two lists, the other's is empty.
        scales = decimal_scales(vals, offsets[:-1], lens)
        special = ~np.isfinite(vals) | ((vals == 0) & np.signbit(vals))
        if special.any():
            scales[np.unique(np.repeat(np.arange(nser), lens)[special])] = -1
        dec = scales >= 0
        row_dec = np.repeat(dec, lens)
        ints = np.round(vals[row_dec] * np.repeat(POW10[scales[dec]], lens[dec])).astype(np.int64)
        diffs = ints.copy()
        diffs[1:] -= ints[:-1]
        dlens = lens[dec]
        firsts = np.zeros(dlens.shape[0], np.int64)
        np.cumsum(dlens[:-1], out=firsts[1:])
        firsts = firsts[dlens > 0]
        diffs[firsts] = ints[firsts]
        narrow = not diffs.shape[0] or (int(diffs.min()) >= -(1 << 31)
                                        and int(diffs.max()) < 1 << 31)
        data[SCALE_COLUMN] = pa.array(scales, pa.int8())
        data[TS_COLUMN] = pa.ListArray.from_arrays(
            pa.array(offsets.astype(np.int32)), pa.array((_cat(ts, np.int64) - mint).astype(np.int32)))
        data[VALUE_COLUMN] = pa.ListArray.from_arrays(
            pa.array(_list_offsets(np.where(dec, 0, lens))), pa.array(vals[~row_dec], pa.float64()))
        data[INT_COLUMN] = pa.ListArray.from_arrays(
            pa.array(_list_offsets(np.where(dec, lens, 0))),
            pa.array(diffs, pa.int32() if narrow else pa.int64()))
        table = pa.table(data)
        return table.replace_schema_metadata({"promlab.label_columns": json.dumps(colmap),
                                              RECENT_MINT_KEY: str(mint)})


def _cat(parts: list[npt.NDArray[Any]], dtype: type) -> npt.NDArray[Any]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def write_recent(table: pa.Table, path: str) -> list[int]:
    """Write :meth:`RecentCollector.table`'s ``table`` to ``path`` in record batches of whole
    metrics; returns the piece offsets for ``meta.json``."""
    batches = metric_batches(*metric_runs(table)) if table.num_rows else []
    md = dict(table.schema.metadata or {})
    md[METRIC_BATCHES_KEY] = json.dumps([names for _, _, names in batches]).encode()
    return write_batches(table.replace_schema_metadata(md).combine_chunks(), path, batches)


@dataclass(frozen=True, slots=True)
class RecentMetric:
    """One metric's recent samples as stored, series in label order (matched by ``index``):
    series ``i`` (id ``sids[i]``) has times ``mint + ts[offsets[i]:offsets[i+1]]`` and, when
    ``scales[i] >= 0``, the values ``cumsum(ints[ioff[i]:ioff[i+1]]) / 10**scales[i]``, else
    ``floats[foff[i]:foff[i+1]]``. Decoded per selection (:func:`recent_columns`): a query
    of a few series of a large metric decodes theirs only."""

    sids: _I64
    index: LabelIndex
    mint: int
    offsets: _I64
    ts: npt.NDArray[np.int32]
    scales: npt.NDArray[np.int8]
    ioff: _I64
    ints: npt.NDArray[np.int32] | _I64
    foff: _I64
    floats: _F64


class RecentFile:
    """A block's ``recent.arrow`` opened from ``fh`` (``rec``: its ``meta.json`` record, with
    its pieces): the first piece (schema, dictionaries) and the footer are read and checked
    now, a metric's batch when :meth:`metric` first asks for it. Raises ValueError,
    ``pyarrow.ArrowException`` or :class:`~promlab.errors.StorageError` on damage."""

    def __init__(self, fh: Any, path: str, rec: dict[str, Any]) -> None:
        self._fh = fh  # (closed by the read when the file is read whole)
        try:
            # A piece at a time however small: a query reads its metric's batch, not the
            # others' samples (the first piece and the footer were asked for at the block's
            # opening, :func:`prefetch`).
            buf, fill = read_index_file(fh, path, rec, pieces=True, whole_read=0)
            self._sf = SeriesIndexFile(buf, arrow=True, fill=fill, grouped=False)
            kv = self._sf.kv
            self.mint = int(kv[RECENT_MINT_KEY])
            if self.mint != rec.get("mint"):
                raise ValueError(f"recent mint {self.mint} is not meta.json's {rec.get('mint')}")
            if fill is not None and len(rec["pieces"]) != self._sf.num_batches + 1:
                raise ValueError("recent samples pieces do not match the record batches")
        except BaseException:
            self.close()
            raise
        self._empty = json.loads(kv.get(METRIC_BATCHES_KEY, b"null")) == []
        self._metrics: dict[str, RecentMetric | None] = {}
        # A label column's dictionary is the file's (shared by every batch): its values and
        # their codes are made once.
        self._uniques: dict[str, tuple[list[str], dict[str, int]]] = {}

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def metric(self, name: str) -> RecentMetric | None:
        """Metric ``name``'s recent samples (read and decoded once), None when it has none."""
        if name in self._metrics:
            return self._metrics[name]
        got = None
        if not self._empty:
            if self._sf.metric_batch is None:
                raise ValueError("recent samples not in batches of whole metrics")
            rows = self._sf.metric_rows(name)
            if rows is not None:
                got = self._decode(rows[0])
        self._metrics[name] = got
        return got

    def _decode(self, table: pa.Table) -> RecentMetric:
        n = table.num_rows
        cols = {}
        for cname, lname in self._sf.colmap.items():
            enc = table[cname].combine_chunks()
            known = self._uniques.get(cname)
            if known is None:
                known = self._uniques[cname] = (enc.dictionary.to_pylist(), {})
            cols[lname] = LabelColumn(label_codes(enc.indices), known[0], known[1])
        offsets, ts = _list_values(table[TS_COLUMN].combine_chunks(), pa.int32())
        foff, floats = _list_values(table[VALUE_COLUMN].combine_chunks(), pa.float64())
        ioff, ints = _list_values(table[INT_COLUMN].combine_chunks(), None)
        scales = flat(table[SCALE_COLUMN], np.int8)
        dec = scales >= 0
        lens = np.diff(offsets)
        if (offsets.shape[0] != n + 1 or foff.shape[0] != n + 1 or ioff.shape[0] != n + 1
                or not np.array_equal(np.where(dec, np.diff(ioff), np.diff(foff)), lens)
                or bool((np.where(dec, np.diff(foff), np.diff(ioff)) != 0).any())
                or (n and int(scales.max()) > MAX_SCALE)):
            raise ValueError("recent samples: value lists do not match the time lists")
        sids = flat(table["series_id"], np.int64)
        return RecentMetric(sids, LabelIndex(n, cols), self.mint, offsets, ts, scales,
                            ioff, ints, foff, floats)


def _list_offsets(lens: _I64) -> npt.NDArray[np.int32]:
    out = np.zeros(lens.shape[0] + 1, np.int32)
    np.cumsum(lens, out=out[1:])
    return out


def _list_values(arr: pa.Array, typ: pa.DataType | None) -> tuple[_I64, npt.NDArray[Any]]:
    """A list array's offsets (from 0, int64) and its values (in place) of type ``typ`` (of
    either integer width when None)."""
    if arr.null_count or not pa.types.is_list(arr.type) or arr.values.null_count or (
            typ is not None and arr.type.value_type != typ) or (
            typ is None and arr.type.value_type not in (pa.int32(), pa.int64())):
        raise ValueError(f"recent samples: a list column of {arr.type}")
    raw = flat(arr.offsets, np.int32).astype(np.int64)
    vt = arr.type.value_type
    vals = flat(arr.values, vt.to_pandas_dtype())[int(raw[0]):int(raw[-1])]
    return raw - raw[0], vals


def _runs(off: _I64, sel: npt.NDArray[np.intp]) -> tuple[_I64, _I64]:
    """The rows of runs ``sel`` of the list offsets ``off`` and their lengths."""
    lo = off[sel]
    lens = off[sel + 1] - lo
    return gather_runs(lo, lens), lens


def _decimals(rm: RecentMetric, sel: npt.NDArray[np.intp]) -> _F64:
    """The values of decimal series ``sel`` of ``rm``, in order: each series' running sum of
    its differences over ``10**scale``, which is what the samples file decodes to, bit for
    bit."""
    take, lens = _runs(rm.ioff, sel)
    # The running sum of all of them wraps around in int64 (numpy's integer arithmetic is
    # modular); a series' own, the difference of two, is exact.
    run = np.cumsum(rm.ints[take], dtype=np.int64)
    base = np.zeros(run.shape[0] + 1, np.int64)
    base[1:] = run
    starts = np.zeros(lens.shape[0], np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    run -= np.repeat(base[starts], lens)
    scales = rm.scales[sel]
    lo, hi = (int(scales.min()), int(scales.max())) if scales.shape[0] else (0, 0)
    if lo == hi:  # one scale: no divisor per row
        out: _F64 = run.astype(np.float64) if hi == 0 else np.divide(run, POW10[hi])
        return out
    per_row: _F64 = np.divide(run, POW10[np.repeat(scales, lens)])
    return per_row


def recent_columns(rm: RecentMetric, sel: npt.NDArray[np.intp]) -> MetricColumns:
    """Series ``sel`` (increasing positions, some) of ``rm`` and their samples, decoded."""
    take, lens = _runs(rm.offsets, sel)
    ts = rm.ts[take].astype(np.int64)
    ts += rm.mint
    offsets = np.zeros(sel.shape[0] + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    dec = rm.scales[sel] >= 0
    ndec = int(np.count_nonzero(dec))
    if ndec == sel.shape[0]:
        values = _decimals(rm, sel)
    elif ndec == 0:
        values = rm.floats[_runs(rm.foff, sel)[0]]
    else:  # some of each: placed by their series
        values = np.empty(ts.shape[0], np.float64)
        row_dec = np.repeat(dec, lens)
        values[row_dec] = _decimals(rm, sel[dec])
        values[~row_dec] = rm.floats[_runs(rm.foff, sel[~dec])[0]]
    index = rm.index if sel.shape[0] == rm.sids.shape[0] else LabelIndex(
        int(sel.shape[0]), {k: c.take(sel) for k, c in rm.index.columns.items()})
    labels = rm.index.labels_of(sel)
    for a in (offsets, ts, values):
        a.flags.writeable = False
    return MetricColumns(rm.sids[sel], labels, index, offsets, ts, values,
                         int(ts.min()) if ts.shape[0] else 0,
                         int(ts.max()) if ts.shape[0] else -1)
