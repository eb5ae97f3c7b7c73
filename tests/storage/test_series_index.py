"""Block format 3's series index (series.parquet): readable without promlab, and older blocks
(format 2: no ``series_rank``, chunks in another order) still answer the same."""

from __future__ import annotations

import json
import os

import pyarrow.parquet as pq
import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage.blocks import FORMAT_VERSION, META_FILE, SERIES_FILE
from promlab.storage.checksum import file_record, json_checksum

from .conftest import HOUR, T0, assert_same, grid, make_series


def _store(path: str) -> MemoryStorage:
    series = make_series(30)
    idx, ts, vals = grid(series, T0, 4 * 240)  # 4 h at 15 s
    mem = MemoryStorage()
    with open_store(path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx, ts, vals)
            app.commit()
        st.flush()
    return mem


def _as_format_2(block_dir: str) -> None:
    """Rewrite a block as format 2 wrote it: no series_rank, version 2 in meta.json."""
    path = os.path.join(block_dir, SERIES_FILE)
    table = pq.read_table(path)
    table = table.drop_columns(["series_rank"]).replace_schema_metadata(table.schema.metadata)
    pq.write_table(table, path, compression="zstd", write_page_checksum=True)
    with open(os.path.join(block_dir, META_FILE)) as f:
        meta = json.load(f)
    meta.pop("checksum")
    meta["version"] = 2
    meta["files"][SERIES_FILE] = file_record(path)
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(block_dir, META_FILE), "w") as f:
        json.dump(meta, f)


def test_series_index_is_plain_parquet(tmp_path: os.PathLike[str]) -> None:
    _store(str(tmp_path))
    (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
    block_dir = os.path.join(tmp_path, "blocks", name)
    with open(os.path.join(block_dir, META_FILE)) as f:
        assert json.load(f)["version"] == FORMAT_VERSION == 3
    df = pq.read_table(os.path.join(block_dir, SERIES_FILE)).to_pandas()
    assert len(df) == 30 * 4  # one row per series and 1 h bucket
    # series_rank: the series' position in label order (one rank per series id)
    per = df.groupby("series_id")["series_rank"].nunique()
    assert (per == 1).all() and df["series_rank"].nunique() == 30
    order = df.drop_duplicates("series_id").sort_values("series_rank")
    keys = list(zip(order["__name__"], order["instance"], strict=True))
    assert keys == sorted(keys)
    # row_start/row_count address the samples file's rows of each chunk
    samples = pq.read_table(os.path.join(block_dir, "samples.parquet"),
                            columns=["series_id", "timestamp"]).to_pandas()
    row = df.iloc[7]
    chunk = samples.iloc[row["row_start"]:row["row_start"] + row["row_count"]]
    assert (chunk["series_id"] == row["series_id"]).all()
    assert chunk["timestamp"].min() == row["min_time"] and chunk["timestamp"].max() == row["max_time"]


@pytest.mark.parametrize("fmt", [3, 2], ids=["format-3", "format-2"])
@pytest.mark.parametrize("window", [
    pytest.param((T0, T0 + 4 * HOUR), id="all"),
    pytest.param((T0 + 2 * HOUR + 60_000, T0 + 2 * HOUR + 360_000), id="5m"),
    pytest.param((T0 + HOUR - 30_000, T0 + 3 * HOUR + 30_000), id="across-buckets"),
])
@pytest.mark.parametrize("matchers", [
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1")], id="metric"),
    pytest.param([Matcher(MatchType.REGEX, "__name__", "metric_.*"),
                  Matcher(MatchType.REGEX, "instance", "h[0-9]*[13579]")], id="some-series"),
])
def test_reads_agree_with_memory(tmp_path: os.PathLike[str], fmt: int,
                                 window: tuple[int, int], matchers: list[Matcher]) -> None:
    mem = _store(str(tmp_path))
    if fmt == 2:
        (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
        _as_format_2(os.path.join(tmp_path, "blocks", name))
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        assert blk.meta.version == fmt and (blk.index() is not None)
        assert (blk.rank is None) == (fmt == 2)
        for _ in range(2):  # decoded, then from the cache
            got = ro.querier(*window).select(matchers)
            want = mem.querier(*window).select(matchers)
            assert len(got) > 0
            assert_same(got, want)
