"""Value encoding for blocks: exact decimals as scaled integers, everything else as float64.

A series whose finite values in a block are all exact decimals with at most
:data:`MAX_SCALE` digits after the point (``v == round(v * 10**k) / 10**k`` bit for bit, and
``|v * 10**k| < 2**53``) stores them as ``value_int = round(v * 10**k)`` with ``scale = k``;
``value`` is null on those rows. Every other row — non-decimal series, NaN, the staleness
marker, ±Inf, -0.0 — stores the float64 bits in ``value`` and null in ``value_int``. So
``value = coalesce(value, value_int / 10**scale)``, and that division gives back the original
float exactly (both operands are exact, IEEE division rounds correctly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from promlab.storage.merge import gather_runs
from promlab.storage.pool import copy, empty, take

__all__ = ["MAX_SCALE", "POW10", "VALUE_COLUMNS", "decimal_scales", "decode_table",
           "decode_values", "encode_values", "flat", "flat_valid", "value_columns"]

MAX_SCALE = 6
#: The samples file's value columns, in the order :func:`decode_values` takes them.
VALUE_COLUMNS = ("value", "value_int", "scale")
_NOT_DECIMAL = -1
_EXACT_INT = float(1 << 53)
#: ``10.0 ** k`` for each scale k: a decimal row's value is ``value_int / POW10[scale]``.
POW10 = 10.0 ** np.arange(MAX_SCALE + 1)


def _exact_mask(values: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.bool_]:
    m = 10.0 ** k
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.round(values * m)
        back = x / m
    same: npt.NDArray[np.bool_] = back.view(np.int64) == values.view(np.int64)
    return same & (np.abs(x) < _EXACT_INT)


def _special(values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Rows kept as float64 whatever the series' scale: NaN (stale too), ±Inf and -0.0."""
    out: npt.NDArray[np.bool_] = ~np.isfinite(values) | ((values == 0) & np.signbit(values))
    return out


def decimal_scales(values: npt.NDArray[np.float64], row_start: npt.NDArray[np.int64],
                   counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
    """Per series (rows ``row_start[i]:+counts[i]``): the smallest exact scale, or -1."""
    n = counts.shape[0]
    scales = np.full(n, _NOT_DECIMAL, np.int8)
    if n == 0 or values.shape[0] == 0:
        return scales
    pending = np.flatnonzero(counts > 0)
    vals = values
    starts = row_start[pending]
    for k in range(MAX_SCALE + 1):
        # Only the rows of series still without a scale are tested again.
        ok = _exact_mask(vals, k) | _special(vals)
        all_ok = np.logical_and.reduceat(ok, starts)
        scales[pending[all_ok]] = k
        if all_ok.all():
            break
        if all_ok.any():
            left = ~all_ok
            lens = counts[pending][left]
            take = gather_runs(starts[left], lens)
            pending = pending[left]
            vals = vals[take]
            starts = np.zeros(lens.shape[0], np.int64)
            np.cumsum(lens[:-1], out=starts[1:])
    return scales


def encode_values(values: npt.NDArray[np.float64], row_scale: npt.NDArray[np.int8]
                  ) -> tuple[pa.Array, pa.Array]:
    """The ``value`` (float64, nullable) and ``value_int`` (int64, nullable) columns."""
    as_int = (row_scale >= 0) & ~_special(values)
    mult = POW10[np.maximum(row_scale, 0)]
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.where(as_int, np.round(values * mult), 0.0).astype(np.int64)
    value_col = pa.array(np.where(as_int, 0.0, values), pa.float64(), mask=as_int)
    int_col = pa.array(scaled, pa.int64(), mask=~as_int)
    return value_col, int_col


def _chunks(arr: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    if isinstance(arr, pa.ChunkedArray):
        return [c for c in arr.chunks if len(c)]
    return [arr]


def _data(arr: pa.Array, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """The values buffer as numpy, nulls included (whatever bytes they hold), no copy."""
    buf = arr.buffers()[1]
    if buf is None:
        return np.zeros(len(arr), dtype)
    return np.frombuffer(buf, dtype, arr.offset + len(arr))[arr.offset:]


def _valid(arr: pa.Array) -> npt.NDArray[np.bool_]:
    if arr.null_count == 0:
        return np.ones(len(arr), bool)
    if arr.null_count == len(arr):
        return np.zeros(len(arr), bool)
    bits = np.frombuffer(arr.buffers()[0], np.uint8)
    return np.unpackbits(bits, bitorder="little", count=arr.offset + len(arr))[arr.offset:].astype(bool)


def flat(arr: pa.ChunkedArray | pa.Array, dtype: type[np.generic]) -> npt.NDArray[Any]:
    """A fixed-width column as one numpy array (no copy when it is one chunk)."""
    parts = [_data(c, dtype) for c in _chunks(arr)]
    if not parts:
        return np.zeros(0, dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def flat_valid(arr: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_] | bool:
    """Validity of a column: ``True``/``False`` when uniform, else a boolean array."""
    n, nulls = len(arr), arr.null_count
    if nulls == 0:
        return True
    if nulls == n:
        return False
    return np.concatenate([_valid(c) for c in _chunks(arr)])


def value_columns(md: Any, rgs: Sequence[int]) -> tuple[list[str], int | None]:
    """The value columns a read of row groups ``rgs`` of a samples file (``md`` its Parquet
    metadata) needs: ``value`` unless its statistics say it is null in all their rows (a
    decimal metric's), ``value_int`` and ``scale`` unless ``value_int`` is (a float one's).

    Also the one scale of all their rows when the statistics show one (the usual case): then
    ``scale`` is not read (a column chunk costs ~50 us to read, however small it is; issue 14)
    and :func:`decode_table` is given it. Rows without a scale are float rows, taken from
    ``value`` whatever the scale says.
    """
    nulls = dict.fromkeys(VALUE_COLUMNS, 0)
    scales: set[int] = set()
    rows = 0
    for i in rgs:
        rg = md.row_group(i)
        rows += rg.num_rows
        for j in range(rg.num_columns):
            col = rg.column(j)
            name = col.path_in_schema
            if name in nulls:
                st = col.statistics
                if st is None or not st.has_null_count:
                    return list(VALUE_COLUMNS), None
                nulls[name] += st.null_count
                if name == "scale":
                    if st.has_min_max and st.min == st.max:
                        scales.add(int(st.min))
                    elif st.null_count < rg.num_rows:
                        scales.update((-1, -2))  # several scales (or none recorded)
    one = next(iter(scales)) if len(scales) == 1 else None
    if rows and nulls["value"] == rows and nulls["value_int"] < rows:
        return (["value_int"], one) if one is not None else (["value_int", "scale"], None)
    if rows and nulls["value_int"] == rows and nulls["value"] < rows:
        return ["value"], None
    if one is not None:
        return ["value", "value_int"], one
    return list(VALUE_COLUMNS), None


def decode_table(table: pa.Table, idx: npt.NDArray[np.int64] | None = None, *,
                 scale: int | None = None) -> npt.NDArray[np.float64]:
    """:func:`decode_values` of the value columns ``table`` holds (:func:`value_columns`);
    ``scale``: the one scale of every row, when the table has no ``scale`` column for it."""
    value, value_int, scales = (table[c] if c in table.column_names else None
                                for c in VALUE_COLUMNS)
    return decode_values(value, value_int, scales if scale is None else scale, idx)


def decode_values(value: pa.ChunkedArray | None, value_int: pa.ChunkedArray | None,
                  scale: pa.ChunkedArray | int | None, idx: npt.NDArray[np.int64] | None = None
                  ) -> npt.NDArray[np.float64]:
    """Rebuild float64 values (optionally only rows ``idx``), bit-exact.

    Rows are gathered before decoding, so only the rows asked for are computed. A column
    given as None is null in every row (``value_int`` and ``scale`` together); ``scale`` as an
    integer is the scale of every row.
    """
    int_valid = False if value_int is None else flat_valid(value_int)
    if int_valid is False:
        if value is None:
            raise ValueError("no value column")
        raw = flat(value, np.float64)
        return take(raw, idx) if idx is not None else copy(raw)
    assert value_int is not None and scale is not None
    vi = flat(value_int, np.int64)
    if isinstance(scale, int):
        sc = np.zeros(0, np.int8)
        lo = hi = scale
    else:
        if pa.types.is_dictionary(scale.type):
            scale = scale.cast(scale.type.value_type)
        sc = flat(scale, np.int8)
        # One scale in all rows read (the usual case for a metric): no per-row lookup, and
        # the scales are not gathered.
        lo, hi = (int(sc.min()), int(sc.max())) if sc.shape[0] else (0, 0)
    if idx is not None:
        vi = take(vi, idx)  # arrays of the read's size from Arrow's pool (storage.pool)
        if lo != hi:
            sc = sc[idx]
    out: npt.NDArray[np.float64] = empty(vi.shape[0], np.float64)
    if lo == hi:
        np.divide(vi, POW10[min(max(lo, 0), MAX_SCALE)], out=out)
    else:
        np.divide(vi, np.take(POW10, np.clip(sc, 0, MAX_SCALE)), out=out)
    float_valid = False if value is None else flat_valid(value)
    if float_valid is not False:
        assert value is not None
        v = flat(value, np.float64)
        if float_valid is True:
            return take(v, idx) if idx is not None else copy(v)
        rows = np.flatnonzero(float_valid if idx is None else float_valid[idx])
        out[rows] = v[rows] if idx is None else v[idx[rows]]
    return out
