"""Where each column's bytes lie in a block's ``recent.arrow``: its buffer map (issue 14).

``recent.arrow`` is an Arrow IPC file, and Arrow's IPC format keeps a column's buffers as they
are in memory (validity bitmap, values, list offsets; uncompressed here, each 8-byte aligned).
Parsing the file's schema and a record batch's message costs a first query more than using
them: every Arrow object made on the way (reader, schema, fields, arrays, buffers) is a cache
miss in a process that has just opened the store. So the writer also records, in ``meta.json``,
the file offset of every buffer a query reads (:func:`buffer_map`, found by Arrow itself
reading the written file back, zero-copy: nothing here parses Arrow's metadata), and a reader
takes the columns straight out of a checked piece of the file as numpy arrays
(:func:`batch_arrays`, :func:`dictionary_values`). Any Arrow reader still reads the file as it
is. A block without the map (written before it) is read through Arrow's IPC reader.

The map (``files["recent.arrow"]["buffers"]``)::

    {"labels": [[column, label name], ...],          # the label columns, in schema order
     "types": [time step type, integer step type],   # numpy names: uint16|int32, int8..int64
     "dicts": [[count, offsets at, data at], ...],   # each label column's dictionary
     "batches": [[rows, metrics, (validity at, codes at) per label column,
                  series_id at, scale at, first_ts at, first_int at,
                  (offsets at, values at) of recent_ts, recent_value, recent_int], ...]}

"at" is a file offset (``-1``: no validity bitmap, the column has no nulls). Every offset is
checked to lie inside the CRC-checked piece it is read from.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["BatchArrays", "batch_arrays", "buffer_map", "check_map", "dictionary_values"]

_FIXED = ("series_id", "recent_scale", "recent_first_ts", "recent_first_int")
_FIXED_TYPES = (np.int64, np.int8, np.int32, np.int64)
_LISTS = ("recent_ts", "recent_value", "recent_int")
_TS_TYPES = ("uint16", "int32")
_INT_TYPES = ("int8", "int16", "int32", "int64")

_I64 = npt.NDArray[np.int64]
#: One batch's columns, as numpy arrays over the piece's bytes: label codes (``-1`` where the
#: series lacks the label; a label no row has is left out) by label name, then series_id,
#: scale, first_ts, first_int, and the offsets and values of the three list columns.
BatchArrays = tuple[dict[str, npt.NDArray[np.int32]], tuple[npt.NDArray[Any], ...]]


def buffer_map(path: str, bounds: list[int], colmap: dict[str, str]) -> dict[str, Any]:
    """The buffer map of the ``recent.arrow`` at ``path`` (piece ``k`` is its bytes
    ``bounds[k]:bounds[k + 1]``; label columns ``colmap``, column -> label name), read back
    zero-copy by Arrow. Raises ValueError if a buffer does not lie in the piece the map needs
    it in, or a column is not of the type the map reads it as."""
    with pa.memory_map(path) as src:
        whole = src.read_buffer()
        base, size = whole.address, whole.size
        reader = pa.ipc.open_file(whole)

        def at(buf: pa.Buffer | None, piece: int) -> int:
            lo, hi = bounds[piece], bounds[piece + 1]
            if buf is None:
                return -1  # (a validity bitmap: no nulls)
            if not buf.size:
                return lo  # (an empty buffer is not in the file: Arrow gives it any address)
            off: int = buf.address - base
            if not (lo <= off and off + buf.size <= hi <= size) or off % 8:
                raise ValueError(f"{path}: a buffer at {off} is not inside piece {piece}")
            return off

        schema = reader.schema
        labels = [c for c in schema.names if c in colmap]
        want = {"series_id": pa.int64(), "recent_scale": pa.int8(), "recent_first_ts": pa.int32(),
                "recent_first_int": pa.int64(), "recent_value": pa.list_(pa.float64()),
                **{c: pa.dictionary(pa.int32(), pa.string()) for c in labels}}
        for c, t in want.items():
            if schema.field(c).type != t:
                raise ValueError(f"{path}: column {c!r} is {schema.field(c).type}, not {t}")
        ts_type = schema.field("recent_ts").type.value_type.to_pandas_dtype().__name__
        int_type = schema.field("recent_int").type.value_type.to_pandas_dtype().__name__
        first = reader.get_batch(0)
        dicts = []
        for c in labels:
            d = first.column(c).dictionary
            if not pa.types.is_string(d.type) or d.offset or d.null_count:
                raise ValueError(f"{path}: dictionary of {c!r} is {d.type}")
            b = d.buffers()
            dicts.append([len(d), at(b[1], 0), at(b[2], 0) if len(d) else 0])
        batches = []
        for k in range(1, reader.num_record_batches):
            bt = reader.get_batch(k)
            names = bt.column(next(c for c in labels if colmap[c] == "__name__")).indices
            row = [bt.num_rows, len(set(names.to_pylist()))]
            for c in labels:
                ib = bt.column(c).indices.buffers()
                row += [at(ib[0], k), at(ib[1], k)]
            row += [at(bt.column(c).buffers()[1], k) for c in _FIXED]
            for c in _LISTS:
                lb = bt.column(c).buffers()
                row += [at(lb[1], k), at(lb[3], k)]
            batches.append(row)
    return {"labels": [[c, colmap[c]] for c in labels], "types": [ts_type, int_type],
            "dicts": dicts, "batches": batches}


def check_map(m: Any, batches: int) -> dict[str, Any]:
    """``m`` if it is a well-formed map of a file of ``batches`` record batches, else raise
    ValueError (its offsets are checked against each piece when it is read)."""
    try:
        labels, (ts_type, int_type), dicts, rows = m["labels"], m["types"], m["dicts"], m["batches"]
        ok = (ts_type in _TS_TYPES and int_type in _INT_TYPES and len(rows) == batches
              and len(dicts) == len(labels)
              and all(isinstance(c, str) and isinstance(lname, str) for c, lname in labels)
              and all(len(d) == 3 and all(isinstance(x, int) for x in d) for d in dicts)
              and all(len(r) == 2 + 2 * len(labels) + 4 + 6 and all(isinstance(x, int) for x in r)
                      for r in rows))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("recent samples: a bad buffer map in meta.json") from exc
    if not ok:
        raise ValueError("recent samples: a bad buffer map in meta.json")
    return m  # type: ignore[no-any-return]


class _Piece:
    """Arrays out of one CRC-checked piece (file bytes ``lo`` ..), each inside it."""

    __slots__ = ("_buf", "_hi", "_lo")

    def __init__(self, buf: pa.Buffer, lo: int) -> None:
        self._buf, self._lo, self._hi = buf, lo, lo + buf.size

    def array(self, at: int, dtype: Any, count: int) -> npt.NDArray[Any]:
        dt = np.dtype(dtype)
        if at < self._lo or count < 0 or at + count * dt.itemsize > self._hi:
            raise ValueError(f"recent samples: buffer at {at} (+{count}) outside its piece")
        return np.frombuffer(self._buf, dt, count, at - self._lo)


def dictionary_values(buf: pa.Buffer, lo: int, entry: list[int]) -> list[str]:
    """A label column's dictionary values (map entry ``entry``) from the first piece ``buf``
    (its file offset ``lo``)."""
    count, off_at, data_at = entry
    if not count:
        return []
    piece = _Piece(buf, lo)
    offs = piece.array(off_at, np.int32, count + 1)
    a, b = int(offs[0]), int(offs[-1])
    if a < 0 or bool((offs[1:] < offs[:-1]).any()):
        raise ValueError("recent samples: bad dictionary offsets")
    raw = piece.array(data_at, np.uint8, b).tobytes()
    bounds = offs.tolist()
    if raw.isascii():  # (characters are bytes: slice one string)
        text = raw.decode("ascii")
        return [text[i:j] for i, j in itertools.pairwise(bounds)]
    try:
        return [raw[i:j].decode() for i, j in itertools.pairwise(bounds)]
    except UnicodeDecodeError as exc:
        raise ValueError("recent samples: a dictionary value is not UTF-8") from exc


def batch_arrays(buf: pa.Buffer, lo: int, row: list[int], m: dict[str, Any]) -> BatchArrays:
    """The columns of the record batch of map row ``row`` from its piece ``buf`` (file offset
    ``lo``), in place (the time and integer step values with their offsets from 0 not yet
    applied: ``offsets[0]`` may be non-zero)."""
    piece = _Piece(buf, lo)
    n = row[0]
    codes: dict[str, npt.NDArray[np.int32]] = {}
    k = 2
    for _, lname in m["labels"]:
        valid_at, data_at = row[k], row[k + 1]
        k += 2
        c = piece.array(data_at, np.int32, n)
        if valid_at >= 0:
            bits = piece.array(valid_at, np.uint8, (n + 7) // 8)
            valid = np.unpackbits(bits, bitorder="little", count=n).view(bool)
            if not valid.any():
                continue  # another metric's label: no row has it
            c = np.where(valid, c, np.int32(-1))
        codes[lname] = c
    fixed = tuple(piece.array(row[k + i], t, n) for i, t in enumerate(_FIXED_TYPES))
    k += 4
    ts_type, int_type = m["types"]
    lists = []
    for i, t in enumerate((ts_type, np.float64, int_type)):
        off = piece.array(row[k + 2 * i], np.int32, n + 1)
        a, b = (int(off[0]), int(off[-1])) if n else (0, 0)
        lists.append(off)
        lists.append(piece.array(row[k + 2 * i + 1] + a * np.dtype(t).itemsize, t, b - a))
    return codes, (*fixed, *lists)
