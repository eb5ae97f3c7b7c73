"""The Parquet layout of the native histogram files (``<store>/histograms/*.parquet``).

One row per histogram sample, rows sorted by series then time. Layout 2 (the file's key-value
metadata ``promlab.histogram_layout = "2"``; documented in ``docs/storage.md``) stores integer
histograms as integers and each bucket as a *delta across samples*:

* ``labels`` (JSON object), ``metric``: dictionary-encoded strings.
* ``timestamp_ms``, ``count``, ``zero_count`` (int64, DELTA_BINARY_PACKED; ``count`` and
  ``zero_count`` null on float histogram rows); ``sum`` (float64, BYTE_STREAM_SPLIT);
  ``schema``, ``counter_reset_hint`` (int8), ``is_float``, ``zero_threshold`` (dictionary).
* ``positive_index``/``negative_index``: list of the bucket indexes the sample lists.
* ``positive_delta``/``negative_delta`` (integer rows; null on float rows): parallel to the index
  lists, each bucket's count minus that bucket's count at the *previous integer row of the same
  series in this file that listed the same index* (0 if none). A running sum per ``(file, labels,
  index)`` in time order gives the absolute count; consecutive scrapes of a counter histogram
  make these small numbers that dictionary/RLE encoding and zstd shrink to about a bit each.
* ``float_count``, ``float_zero_count``, ``positive_float_count``/``negative_float_count`` (float
  histogram rows only; null on integer rows): absolute float counts.
* ``custom_values``: list of float64 (schema -53's bounds).

Layout 1 (files without the metadata key) is still read: float64 ``count``/``zero_count`` and
``positive_count``/``negative_count`` lists of absolute counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from promlab.model import Labels, Matcher
from promlab.model.histogram import CounterResetHint, FloatHistogram, Histogram, spans_to_indexes

__all__ = ["LAYOUT", "LAYOUT_KEY", "HistogramColumns", "columns_from_items", "metric_names",
           "read_columns", "read_items", "series_times", "write_table"]

LAYOUT = 2
LAYOUT_KEY = b"promlab.histogram_layout"
_INT_LIMIT = 1 << 62  # larger integer counts are stored as a float histogram row

AnyHist = Histogram | FloatHistogram
Item = tuple[Labels, int, AnyHist]


def _spans_from_index(idx: Sequence[int]) -> tuple[tuple[int, int], ...]:
    spans: list[list[int]] = []
    prev = 0
    for i in idx:
        if spans and i == prev + 1:
            spans[-1][1] += 1
        else:
            spans.append([i if not spans else i - prev - 1, 1])
        prev = i
    return tuple((o, n) for o, n in spans)


def _as_int(h: AnyHist) -> tuple[int, int, tuple[int, ...], tuple[int, ...]] | None:
    """``(count, zero_count, positive, negative)`` absolute integer counts, or None when ``h`` is
    stored as a float row."""
    if not isinstance(h, Histogram):
        return None
    pos, neg = h.absolute_buckets(True), h.absolute_buckets(False)
    if max(abs(h.count), abs(h.zero_count), max(map(abs, pos), default=0),
           max(map(abs, neg), default=0)) >= _INT_LIMIT:
        return None
    return int(h.count), int(h.zero_count), pos, neg


def _group_order(series: npt.NDArray[np.int64], index: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """The elements ordered by ``(series, index)``, stable (so in row order within a group)."""
    lo = int(index.min())
    key = series * (int(index.max()) - lo + 1) + (index - lo)
    return np.argsort(key, kind="stable")


def _cross_sample_deltas(series: npt.NDArray[np.int64], index: npt.NDArray[np.int64],
                         values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each element minus the previous element of its ``(series, index)`` group (elements are in
    row order; the first of a group keeps its value)."""
    if values.size == 0:
        return values
    order = _group_order(series, index)
    s, i, v = series[order], index[order], values[order]
    d = v.copy()
    same = (s[1:] == s[:-1]) & (i[1:] == i[:-1])
    d[1:][same] = v[1:][same] - v[:-1][same]
    out = np.empty_like(d)
    out[order] = d
    return out


def _running_sums(series: npt.NDArray[np.int64], index: npt.NDArray[np.int64],
                  deltas: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Inverse of :func:`_cross_sample_deltas`."""
    if deltas.size == 0:
        return deltas
    order = _group_order(series, index)
    s, i, d = series[order], index[order], deltas[order]
    start = np.ones(d.size, bool)
    start[1:] = (s[1:] != s[:-1]) | (i[1:] != i[:-1])
    cs = np.cumsum(d)
    base = np.maximum.accumulate(np.where(start, np.arange(d.size), 0))
    before = np.where(base > 0, cs[base - 1], 0)
    out = np.empty_like(d)
    out[order] = cs - before
    return out


def _side(rows: Sequence[Item], ints: list[tuple[int, int, tuple[int, ...], tuple[int, ...]] | None],
          codes: list[int], positive: bool) -> tuple[pa.Array, pa.Array, pa.Array]:
    """``(index lists, delta lists, float count lists)`` of one bucket side."""
    idx_lists: list[list[int]] = []
    el_series: list[int] = []
    el_index: list[int] = []
    el_value: list[int] = []
    floats: list[list[float] | None] = []
    int_rows: list[int] = []
    for r, ((_, _, h), iv, code) in enumerate(zip(rows, ints, codes, strict=True)):
        idx = list(spans_to_indexes(h.positive_spans if positive else h.negative_spans))
        idx_lists.append(idx)
        if iv is None:
            f = h.to_float()
            floats.append(list(f.positive_buckets if positive else f.negative_buckets))
            continue
        floats.append(None)
        int_rows.append(r)
        el_series.extend([code] * len(idx))
        el_index.extend(idx)
        el_value.extend(iv[2] if positive else iv[3])
    deltas = _cross_sample_deltas(np.array(el_series, np.int64), np.array(el_index, np.int64),
                                  np.array(el_value, np.int64))
    lengths = np.zeros(len(rows) + 1, np.int64)
    valid = np.zeros(len(rows), bool)
    valid[int_rows] = True
    for r in int_rows:
        lengths[r + 1] = len(idx_lists[r])
    offsets = pa.array(np.cumsum(lengths), pa.int32())
    delta_arr = pa.ListArray.from_arrays(offsets, pa.array(deltas, pa.int64()),
                                         mask=pa.array(~valid))
    return (pa.array(idx_lists, pa.list_(pa.int32())), delta_arr,
            pa.array(floats, pa.list_(pa.float64())))


def write_table(path: str, items: Sequence[Item]) -> None:
    """Write ``items`` to ``path`` in layout 2 (rows sorted by series then time)."""
    rows = sorted(items, key=lambda it: (it[0], it[1]))
    ints = [_as_int(h) for _, _, h in rows]
    code_of: dict[Labels, int] = {}
    codes = [code_of.setdefault(ls, len(code_of)) for ls, _, _ in rows]
    text = {ls: json.dumps(dict(ls), sort_keys=True) for ls in code_of}
    pi, pd_, pf = _side(rows, ints, codes, True)
    ni, nd, nf = _side(rows, ints, codes, False)
    table = pa.table({
        "labels": pa.array([text[ls] for ls, _, _ in rows]).dictionary_encode(),
        "metric": pa.array([ls.get("__name__", "") for ls, _, _ in rows]).dictionary_encode(),
        "timestamp_ms": pa.array([t for _, t, _ in rows], pa.int64()),
        "schema": pa.array([h.schema for _, _, h in rows], pa.int8()),
        "counter_reset_hint": pa.array([int(h.counter_reset_hint) for _, _, h in rows], pa.int8()),
        "is_float": pa.array([isinstance(h, FloatHistogram) for _, _, h in rows], pa.bool_()),
        "zero_threshold": pa.array([h.zero_threshold for _, _, h in rows], pa.float64()),
        "sum": pa.array([h.sum for _, _, h in rows], pa.float64()),
        "count": pa.array([None if iv is None else iv[0] for iv in ints], pa.int64()),
        "zero_count": pa.array([None if iv is None else iv[1] for iv in ints], pa.int64()),
        "positive_index": pi, "positive_delta": pd_,
        "negative_index": ni, "negative_delta": nd,
        "float_count": pa.array([float(h.count) if iv is None else None
                                 for (_, _, h), iv in zip(rows, ints, strict=True)], pa.float64()),
        "float_zero_count": pa.array([float(h.zero_count) if iv is None else None
                                      for (_, _, h), iv in zip(rows, ints, strict=True)], pa.float64()),
        "positive_float_count": pf, "negative_float_count": nf,
        "custom_values": pa.array([list(h.custom_values) for _, _, h in rows], pa.list_(pa.float64())),
    }).replace_schema_metadata({LAYOUT_KEY: str(LAYOUT).encode()})
    delta = "DELTA_BINARY_PACKED"
    pq.write_table(
        table, path, compression="zstd", write_page_checksum=True,
        use_dictionary=["labels", "metric", "schema", "counter_reset_hint", "zero_threshold",
                        "positive_delta.list.element", "negative_delta.list.element",
                        "custom_values.list.element"],
        column_encoding={"timestamp_ms": delta, "count": delta, "zero_count": delta,
                         "sum": "BYTE_STREAM_SPLIT"},
        write_statistics=["timestamp_ms"])


def _absolute_side(t: pa.Table, side: str, codes: npt.NDArray[np.int64],
                   chain: npt.NDArray[np.bool_], rows: list[int]) -> list[list[int] | None]:
    """The absolute integer counts of ``side`` at ``rows`` (None on float rows); the running sums
    are taken over the rows in ``chain`` (every row of the selected series up to the last of
    ``rows``)."""
    col = t.column(f"{side}_delta").combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
    has = np.asarray(col.is_valid())
    idx_col = t.column(f"{side}_index").combine_chunks()
    idx_len = pc.list_value_length(idx_col).to_numpy(zero_copy_only=False)
    index = pc.list_flatten(idx_col).to_numpy(zero_copy_only=False).astype(np.int64)
    index = index[np.repeat(has, idx_len)]  # index elements of integer rows
    sel = np.repeat(chain & has, lengths)
    deltas = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.int64)[sel]
    absolute = _running_sums(np.repeat(codes, lengths)[sel], index[sel], deltas)
    starts = np.zeros(lengths.size + 1, np.int64)
    np.cumsum(np.where(chain & has, lengths, 0), out=starts[1:])
    return [absolute[starts[r]:starts[r + 1]].tolist() if has[r] else None for r in rows]


def _label_codes(t: pa.Table) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Each row's code into the distinct label-set texts of the ``labels`` column, and the texts."""
    labels_col = t.column("labels").combine_chunks()
    if isinstance(labels_col, pa.DictionaryArray):
        return (labels_col.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                labels_col.dictionary.to_pylist())
    uniq = pc.unique(labels_col)
    return pc.index_in(labels_col, uniq).to_numpy(zero_copy_only=False).astype(np.int64), uniq.to_pylist()


def _read_v2(t: pa.Table, mint: int, maxt: int, matchers: Sequence[Matcher] | None) -> list[Item]:
    codes, texts = _label_codes(t)
    lsets: list[Labels | None] = []
    for text in texts:
        cand = Labels(json.loads(text))
        ok = matchers is None or all(m.matches(cand.get(m.name, "")) for m in matchers)
        lsets.append(cand if ok else None)
    ts = t.column("timestamp_ms").to_numpy()
    ok_series = np.array([ls is not None for ls in lsets], bool)
    chain = ok_series[codes] & (ts <= maxt)
    rows = np.flatnonzero(chain & (ts >= mint)).tolist()
    if not rows:
        return []
    pos_abs = _absolute_side(t, "positive", codes, chain, rows)
    neg_abs = _absolute_side(t, "negative", codes, chain, rows)
    sub = t.take(pa.array(rows, pa.int64()))
    cols = {name: sub.column(name).to_pylist() for name in (
        "schema", "counter_reset_hint", "is_float", "zero_threshold", "sum", "count", "zero_count",
        "positive_index", "negative_index", "float_count", "float_zero_count",
        "positive_float_count", "negative_float_count", "custom_values")}
    out: list[Item] = []
    for j, k in enumerate(rows):
        ls = lsets[codes[k]]
        if ls is None:  # not reached: rows hold matching series only
            continue
        pk, nk = pos_abs[j], neg_abs[j]
        integer = pk is not None and nk is not None
        pb: Sequence[float] = pk if pk is not None else cols["positive_float_count"][j]
        nb: Sequence[float] = nk if nk is not None else cols["negative_float_count"][j]
        f = FloatHistogram(
            schema=int(cols["schema"][j]), zero_threshold=cols["zero_threshold"][j],
            zero_count=float(cols["zero_count"][j] if integer else cols["float_zero_count"][j]),
            count=float(cols["count"][j] if integer else cols["float_count"][j]), sum=cols["sum"][j],
            positive_spans=_spans_from_index(cols["positive_index"][j]),
            positive_buckets=tuple(float(c) for c in pb),
            negative_spans=_spans_from_index(cols["negative_index"][j]),
            negative_buckets=tuple(float(c) for c in nb),
            custom_values=tuple(cols["custom_values"][j]),
            counter_reset_hint=CounterResetHint(cols["counter_reset_hint"][j]))
        h: AnyHist = f if cols["is_float"][j] or not f.is_integer() else f.to_int()
        out.append((ls, int(ts[k]), h))
    return out


def _read_v1(t: pa.Table, matchers: Sequence[Matcher] | None) -> list[Item]:
    cols = t.to_pydict()
    label_cache: dict[str, Labels | None] = {}
    out: list[Item] = []
    for k, text in enumerate(cols["labels"]):
        if text not in label_cache:
            cand = Labels(json.loads(text))
            ok = matchers is None or all(m.matches(cand.get(m.name, "")) for m in matchers)
            label_cache[text] = cand if ok else None
        ls = label_cache[text]
        if ls is None:
            continue
        f = FloatHistogram(
            schema=int(cols["schema"][k]), zero_threshold=cols["zero_threshold"][k],
            zero_count=cols["zero_count"][k], count=cols["count"][k], sum=cols["sum"][k],
            positive_spans=_spans_from_index(cols["positive_index"][k]),
            positive_buckets=tuple(cols["positive_count"][k]),
            negative_spans=_spans_from_index(cols["negative_index"][k]),
            negative_buckets=tuple(cols["negative_count"][k]),
            custom_values=tuple(cols["custom_values"][k]),
            counter_reset_hint=CounterResetHint(cols["counter_reset_hint"][k]))
        h: AnyHist = f if cols["is_float"][k] or not f.is_integer() else f.to_int()
        out.append((ls, int(cols["timestamp_ms"][k]), h))
    return out


def _input(source: Any) -> Any:
    """A path, or an Arrow input over an in-memory file (``pa.Buffer``), for ``pyarrow.parquet``."""
    return pa.BufferReader(source) if isinstance(source, pa.Buffer) else source


def read_items(source: Any, mint: int, maxt: int, matchers: Sequence[Matcher] | None) -> list[Item]:
    """The samples of ``source`` (a path or the file's bytes as a ``pa.Buffer``) in ``[mint, maxt]``
    of series matching ``matchers`` (all if None), from a file of either layout."""
    meta = pq.read_schema(_input(source)).metadata or {}
    if meta.get(LAYOUT_KEY) is None:  # layout 1: rows are independent, so filter while reading
        t = pq.read_table(_input(source), filters=[("timestamp_ms", ">=", mint),
                                                   ("timestamp_ms", "<=", maxt)],
                          page_checksum_verification=True)
        return _read_v1(t, matchers)
    if int(meta[LAYOUT_KEY]) != LAYOUT:
        raise ValueError(f"unknown histogram layout {meta[LAYOUT_KEY].decode(errors='replace')}")
    # Layout 2: bucket deltas chain across the rows of a series, so the whole file is read.
    return _read_v2(pq.read_table(_input(source), page_checksum_verification=True), mint, maxt,
                    matchers)


# --- decoded columns (what queries read, cached) -----------------------------------------------
@dataclass(frozen=True, slots=True)
class HistogramColumns:
    """A file's samples of one metric (or all) in float form, series sorted by labels (CSR).

    Series ``i`` (``labels[i]``) has the samples ``ts[offsets[i]:offsets[i+1]]`` (increasing)
    with histograms ``hists[...]`` (:class:`FloatHistogram`, absolute counts). Immutable: the
    store's decoded cache keeps it between queries.
    """

    labels: list[Labels]
    offsets: npt.NDArray[np.int64]
    ts: npt.NDArray[np.int64]
    hists: npt.NDArray[np.object_]
    buckets: int  # bucket counts held (for nbytes)

    @property
    def nbytes(self) -> int:
        # A FloatHistogram is ~170 bytes of slots, its tuples ~60 + 8/bucket and a float object
        # 24 per bucket (spans and empty tuples are shared between samples).
        return int(self.ts.nbytes + self.offsets.nbytes + 260 * self.ts.shape[0]
                   + 32 * self.buckets + 200 * len(self.labels))


def _empty_columns() -> HistogramColumns:
    return HistogramColumns([], np.zeros(1, np.int64), np.zeros(0, np.int64),
                            np.empty(0, np.object_), 0)


def columns_from_items(items: Sequence[Item]) -> HistogramColumns:
    """:class:`HistogramColumns` of ``items`` (last one wins at equal series and time)."""
    acc: dict[Labels, dict[int, FloatHistogram]] = {}
    for ls, t, h in items:
        acc.setdefault(ls, {})[t] = h.to_float()
    labels = sorted(acc)
    lengths = [len(acc[ls]) for ls in labels]
    offsets = np.zeros(len(labels) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ts: list[int] = []
    hs: list[FloatHistogram] = []
    for ls in labels:
        keys = sorted(acc[ls])
        ts.extend(keys)
        hs.extend(acc[ls][k] for k in keys)
    objs: npt.NDArray[np.object_] = np.empty(len(hs), np.object_)
    objs[:] = hs
    n = sum(len(h.positive_buckets) + len(h.negative_buckets) for h in hs)
    return HistogramColumns(labels, offsets, np.array(ts, np.int64), objs, n)


def _ints(t: pa.Table, name: str) -> npt.NDArray[np.int64]:
    return pc.fill_null(t.column(name), 0).to_numpy().astype(np.int64)  # type: ignore[no-any-return]


def _floats(t: pa.Table, name: str) -> npt.NDArray[np.float64]:
    return pc.fill_null(t.column(name), 0.0).to_numpy().astype(np.float64)  # type: ignore[no-any-return]


def _flat(col: Any) -> tuple[npt.NDArray[np.int64], Any]:
    """``(length per row, flattened values)`` of a list column (null rows: length 0)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False)
    return lengths.astype(np.int64), pc.list_flatten(arr)


def _row_tuples(values: list[Any], lengths: npt.NDArray[np.int64],
                intern: dict[tuple[Any, ...], tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``values`` cut into one tuple per row (equal tuples shared through ``intern``)."""
    ends = np.cumsum(lengths).tolist()
    out: list[tuple[Any, ...]] = []
    a = 0
    for b in ends:
        tup = tuple(values[a:b])
        out.append(intern.setdefault(tup, tup))
        a = b
    return out


def _spans_per_row(index: npt.NDArray[np.int64], lengths: npt.NDArray[np.int64],
                   intern: dict[tuple[Any, ...], tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The spans of each row's bucket index list, found for all rows at once."""
    n = index.shape[0]
    row_of = np.repeat(np.arange(lengths.shape[0]), lengths)
    first = np.ones(n, bool)
    first[1:] = row_of[1:] != row_of[:-1]
    starts = first.copy()
    starts[1:] |= index[1:] != index[:-1] + 1
    pos = np.flatnonzero(starts)
    span_len = np.diff(np.append(pos, n))
    # A row's first span starts at its index; later ones after the gap from the previous span.
    gap_from = np.where(first[pos], 0, index[np.maximum(pos - 1, 0)] + 1)
    pairs = list(zip((index[pos] - gap_from).tolist(), span_len.tolist(), strict=True))
    return _row_tuples(pairs, np.bincount(row_of[pos], minlength=lengths.shape[0]), intern)


def _decode_v2(t: pa.Table) -> HistogramColumns:
    """Every row of a layout-2 table as float histograms (integer rows through the running sums
    of their bucket deltas; nothing converted to the integer form and back)."""
    codes, texts = _label_codes(t)
    if codes.shape[0] == 0:
        return _empty_columns()
    lsets = [Labels(json.loads(text)) for text in texts]
    ts = t.column("timestamp_ms").to_numpy().astype(np.int64)
    intern: dict[tuple[Any, ...], tuple[Any, ...]] = {(): ()}
    sides = []
    n_buckets = 0
    for side in ("positive", "negative"):
        idx_len, idx_flat = _flat(t.column(f"{side}_index"))
        index = idx_flat.to_numpy(zero_copy_only=False).astype(np.int64)
        d_col = t.column(f"{side}_delta").combine_chunks()
        has = np.asarray(d_col.is_valid())
        d_len, d_flat = _flat(d_col)
        el_int = np.repeat(has, idx_len)
        values = np.empty(index.shape[0], np.float64)
        values[el_int] = _running_sums(np.repeat(codes, d_len), index[el_int],
                                       d_flat.to_numpy(zero_copy_only=False).astype(np.int64))
        _, f_flat = _flat(t.column(f"{side}_float_count"))
        values[~el_int] = f_flat.to_numpy(zero_copy_only=False).astype(np.float64)
        n_buckets += index.shape[0]
        sides.append((_spans_per_row(index, idx_len, intern),
                      _row_tuples(values.tolist(), idx_len, intern)))
    int_row = np.asarray(t.column("count").combine_chunks().is_valid())
    count = np.where(int_row, _ints(t, "count"), _floats(t, "float_count")).tolist()
    zero = np.where(int_row, _ints(t, "zero_count"), _floats(t, "float_zero_count")).tolist()
    cv_len, cv_flat = _flat(t.column("custom_values"))
    cvs = _row_tuples(cv_flat.to_pylist(), cv_len, intern)
    hints = {int(m): m for m in CounterResetHint}
    hint = [hints[h] for h in t.column("counter_reset_hint").to_numpy().tolist()]
    schema = t.column("schema").to_numpy().tolist()
    zt = t.column("zero_threshold").to_numpy().tolist()
    sums = t.column("sum").to_numpy().tolist()
    (pspans, pbs), (nspans, nbs) = sides
    hs = [FloatHistogram(schema=schema[r], zero_threshold=zt[r], zero_count=zero[r],
                         count=count[r], sum=sums[r], positive_spans=pspans[r],
                         positive_buckets=pbs[r], negative_spans=nspans[r],
                         negative_buckets=nbs[r], custom_values=cvs[r],
                         counter_reset_hint=hint[r])
          for r in range(codes.shape[0])]
    # Rows are sorted by series then time within a file; series are ordered by labels here.
    used = sorted(set(codes.tolist()), key=lambda c: lsets[c])
    rank_of = np.full(len(lsets), -1, np.int64)
    rank_of[used] = np.arange(len(used))
    row_rank = rank_of[codes]
    order = np.lexsort((ts, row_rank))
    objs: npt.NDArray[np.object_] = np.empty(len(hs), np.object_)
    objs[:] = hs
    offsets = np.zeros(len(used) + 1, np.int64)
    np.cumsum(np.bincount(row_rank, minlength=len(used)), out=offsets[1:])
    labels = [lsets[c] for c in used]
    return HistogramColumns(labels, offsets, ts[order], objs[order], n_buckets)


def metric_names(source: Any) -> frozenset[str]:
    """The metric names in a histogram file (its ``metric`` column; a path or a ``pa.Buffer``)."""
    col = pq.read_table(_input(source), columns=["metric"]).column("metric")
    return frozenset(str(v) for v in pc.unique(col).to_pylist())


def series_times(source: Any) -> tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct series of a histogram file (a path or a ``pa.Buffer``, either layout) and,
    per row, its series' position in that list and its timestamp: what a delete needs to know
    whether a file holds samples to drop, without decoding any histogram."""
    t = pq.read_table(_input(source), columns=["labels", "timestamp_ms"])
    codes, texts = _label_codes(t)
    return ([Labels(json.loads(text)) for text in texts], codes,
            t.column("timestamp_ms").to_numpy().astype(np.int64))


def read_columns(source: Any, metric: str | None) -> HistogramColumns:
    """The samples of metric ``metric`` (every metric if None) in a histogram file (a path or the
    file's bytes as a ``pa.Buffer``) of either layout, as :class:`HistogramColumns`."""
    meta = pq.read_schema(_input(source)).metadata or {}
    if meta.get(LAYOUT_KEY) is None:
        items = _read_v1(pq.read_table(_input(source), page_checksum_verification=True), None)
        if metric is not None:
            items = [it for it in items if it[0].get("__name__", "") == metric]
        return columns_from_items(items)
    if int(meta[LAYOUT_KEY]) != LAYOUT:
        raise ValueError(f"unknown histogram layout {meta[LAYOUT_KEY].decode(errors='replace')}")
    # Layout 2: a series' bucket deltas chain over its rows only, so filtering whole metrics
    # (a series belongs to one) keeps every chain intact.
    filters = None if metric is None else [("metric", "=", metric)]
    return _decode_v2(pq.read_table(_input(source), filters=filters,
                                    page_checksum_verification=True))
