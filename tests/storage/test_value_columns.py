"""A read skips the value columns its row groups' statistics show null throughout, and the
scale column when they show one scale throughout (encoding.value_columns,
encoding.decode_table)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.storage.encoding import decode_table, encode_values, value_columns

ALL = ["value", "value_int", "scale"]


def _file(path: str, groups: list[tuple[list[float], int]], *, stats: bool = True) -> pq.ParquetFile:
    """A samples-like file, one row group per ``(values, scale)``."""
    tables = []
    for vals, scale in groups:
        v = np.array(vals, np.float64)
        value, value_int = encode_values(v, np.full(v.shape[0], scale, np.int8))
        tables.append(pa.table({"value": value, "value_int": value_int,
                                "scale": pa.array(np.full(v.shape[0], scale, np.int8))}))
    with pq.ParquetWriter(path, tables[0].schema, write_statistics=stats) as w:
        for t in tables:
            w.write_table(t)
    return pq.ParquetFile(path)


@pytest.mark.parametrize(("groups", "rgs", "stats", "want", "one"), [
    ([([1.5, 2.25], 2)], [0], True, ["value_int"], 2),
    ([([0.1 + 0.2, 1 / 3], -1)], [0], True, ["value"], None),
    ([([1.5, float("nan")], 2)], [0], True, ["value", "value_int"], 2),  # NaN kept as a float
    ([([1.5], 2), ([1 / 3], -1)], [0], True, ["value_int"], 2),
    ([([1.5], 2), ([1 / 3], -1)], [0, 1], True, ALL, None),
    ([([1.5], 2), ([2.5], 1)], [0, 1], True, ["value_int", "scale"], None),  # two scales
    ([([1.5], 2), ([2.25], 2)], [0, 1], True, ["value_int"], 2),
    ([([12.0, 7.0], 0)], [0], True, ["value_int"], 0),
    ([([1.5, 2.25], 2)], [0], False, ALL, None),                    # no statistics: all read
], ids=["decimal", "float", "decimal-with-nan", "first-group", "both-groups", "two-scales",
        "one-scale-two-groups", "integers", "no-stats"])
def test_value_columns(tmp_path: os.PathLike[str], groups: list[tuple[list[float], int]],
                       rgs: list[int], stats: bool, want: list[str], one: int | None) -> None:
    pf = _file(os.path.join(tmp_path, "s.parquet"), groups, stats=stats)
    cols, scale = value_columns(pf.metadata, rgs)
    assert (cols, scale) == (want, one)
    table = pf.read_row_groups(rgs, columns=cols)
    expect = np.concatenate([np.array(groups[i][0], np.float64) for i in rgs])
    got = decode_table(table, scale=scale)
    assert got.view(np.int64).tolist() == expect.view(np.int64).tolist()
