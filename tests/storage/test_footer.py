"""promlab.storage.footer: a Parquet footer cut down to some row groups reads exactly those row
groups of the same file, and a block of format 5 reads through such footers."""

from __future__ import annotations

import os
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage import blocks as blocks_mod
from promlab.storage.footer import file_spans, row_group_spans, subset

from .conftest import HOUR, T0, assert_same, grid, make_series


def _file(path: str, n_groups: int) -> str:
    """A Parquet file with ``n_groups`` row groups of 100 rows, statistics and a dictionary
    column (so the footer has structs, lists, binaries and bools to walk)."""
    n = 100 * n_groups
    table = pa.table({"name": pa.array([f"m{i // 250}" for i in range(n)]),
                      "ts": pa.array(np.arange(n, dtype=np.int64)),
                      "v": pa.array(np.linspace(0, 1, n)),
                      "flag": pa.array(np.arange(n) % 3 == 0)})
    f = os.path.join(path, "f.parquet")
    pq.write_table(table, f, row_group_size=100, compression="zstd", write_page_checksum=True,
                   use_dictionary=["name"], column_encoding={"ts": "DELTA_BINARY_PACKED"})
    return f


def _footer(f: str) -> bytes:
    with open(f, "rb") as fh:
        data = fh.read()
    (n,) = struct.unpack("<I", data[-8:-4])
    return data[-8 - n:-8]


@pytest.mark.parametrize(("n_groups", "rgs"), [
    pytest.param(1, [0], id="only-group"),
    pytest.param(20, [0], id="first"),
    pytest.param(20, [19], id="last"),
    pytest.param(20, [3, 4, 5], id="run"),
    pytest.param(20, [1, 7, 18], id="scattered"),
    pytest.param(40, list(range(0, 40, 2)), id="15-or-more"),  # the list header's long form
    pytest.param(20, list(range(20)), id="all"),
])
def test_subset_reads_the_same_rows(tmp_path: os.PathLike[str], n_groups: int,
                                    rgs: list[int]) -> None:
    f = _file(str(tmp_path), n_groups)
    footer = _footer(f)
    spans = row_group_spans(footer)
    assert spans.shape[0] == n_groups + 2 and bool((np.diff(spans) > 0).all())
    md = subset(footer, spans, rgs)
    assert md.num_row_groups == len(rgs)
    with pa.OSFile(f) as fh:
        got = pq.ParquetFile(fh, metadata=md).read_row_groups(list(range(len(rgs))))
    assert got.equals(pq.ParquetFile(f).read_row_groups(rgs))
    # file_spans (what the block writer records) finds the same places
    spans2, rows = file_spans(f)
    assert np.array_equal(spans2, spans) and rows.tolist() == [100] * n_groups


@pytest.mark.parametrize("damage", ["past-end", "header-after-groups"],
                         ids=["past-end", "header-after-groups"])
def test_subset_refuses_spans_that_do_not_fit(tmp_path: os.PathLike[str], damage: str) -> None:
    f = _file(str(tmp_path), 5)
    footer = _footer(f)
    spans = row_group_spans(footer).copy()
    if damage == "past-end":
        spans[-1] = len(footer) + 10
    else:
        spans[0] = spans[1] + 1
    with pytest.raises(ValueError):
        subset(footer, spans, [0])


def test_block_reads_through_cut_footers(tmp_path: os.PathLike[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A short query on a block of many row groups reads with a footer of its few groups;
    the answers are those of the full footer (and of memory)."""
    monkeypatch.setattr(blocks_mod, "ROW_GROUP_ROWS", 1024)
    series = make_series(30)
    idx, ts, vals = grid(series, T0, 4 * 240)
    mem = MemoryStorage()
    with open_store(tmp_path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx, ts, vals)
            app.commit()
        st.flush()
    groups: list[int] = []
    real = pq.ParquetFile.read_row_groups

    def spy(self, row_groups, *a, **kw):  # type: ignore[no-untyped-def]
        groups.append(self.metadata.num_row_groups)
        return real(self, row_groups, *a, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", spy)
    m = [Matcher(MatchType.EQUAL, "__name__", "metric_1")]
    for window in ((T0 + 2 * HOUR, T0 + 2 * HOUR + 300_000), (T0, T0 + 4 * HOUR)):
        with open_store(tmp_path, readonly=True) as ro:
            (blk,) = ro.blocks()
            total = len(blk.row_group_rows())
            assert total >= 20
            assert_same(ro.querier(*window).select(m), mem.querier(*window).select(m))
    # the 5-minute read parsed a footer of a few row groups, the whole-span one the full footer
    assert groups[0] * 4 <= total and groups[-1] == total
