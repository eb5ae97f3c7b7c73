"""The series index's arrays read from Arrow buffers in place (seriesindex.chunk_lists,
seriesindex.label_codes)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from promlab.storage.seriesindex import CHUNK_COLUMNS, chunk_lists, label_codes


@pytest.mark.parametrize(("values", "sl", "want"), [
    (["a", "b", None, "a"], None, [0, 1, -1, 0]),
    (["a", "b", None, "a"], (1, 4), [1, -1, 0]),
    ([None, None], None, [-1, -1]),
    ([], None, []),
], ids=["nulls", "sliced", "all-null", "empty"])
def test_label_codes(values: list[str | None], sl: tuple[int, int] | None, want: list[int]) -> None:
    arr = pa.array(values, pa.string()).dictionary_encode()
    if sl is not None:
        arr = arr.slice(sl[0], sl[1] - sl[0])
    got = label_codes(arr.indices)
    assert got.dtype == np.int32
    assert got.tolist() == want


def _table(lists: list[list[int]], typ: pa.DataType) -> pa.Table:
    return pa.table({c: pa.array(lists, pa.list_(typ)) for c in CHUNK_COLUMNS})


@pytest.mark.parametrize(("table", "base", "series", "times", "rows"), [
    (_table([[1, 2], [3], []], pa.int32()), 10, [0, 0, 1], [11, 12, 13], [1, 2, 3]),
    (_table([[1, 2], [3], [4, 5]], pa.int32()).slice(1, 2), 0, [0, 1, 1], [3, 4, 5], [3, 4, 5]),
    (_table([[1_705_000_000_000]], pa.int64()), 0, [0], [1_705_000_000_000], [1_705_000_000_000]),
    (_table([], pa.int32()), 5, [], [], []),
], ids=["int32-time-base", "sliced", "int64", "empty"])
def test_chunk_lists(table: pa.Table, base: int, series: list[int], times: list[int],
                     rows: list[int]) -> None:
    got_series, cols = chunk_lists(table, base)
    assert got_series.tolist() == series
    assert [c.dtype for c in cols] == [np.dtype(np.int64)] * 4
    assert cols[0].tolist() == times and cols[1].tolist() == times
    assert cols[2].tolist() == rows and cols[3].tolist() == rows


def test_chunk_lists_of_different_lengths_rejected() -> None:
    t = _table([[1, 2], [3]], pa.int32())
    t = t.set_column(3, CHUNK_COLUMNS[3], pa.array([[1], [3, 4]], pa.list_(pa.int32())))
    with pytest.raises(ValueError, match="different lengths"):
        chunk_lists(t)
