"""Block format 4's series index (series.parquet: one row per series, chunks as lists): readable
without promlab; format 5's Arrow copy of it (series.arrow) holds the same table; and older
blocks (format 4: no copy; format 3: one row per chunk with ``series_rank``; format 2: no
``series_rank``) still answer the same."""

from __future__ import annotations

import base64
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage.blocks import (
    CHUNK_COLUMNS,
    FOOTER_SPANS_KEY,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    ROW_GROUP_ROWS_KEY,
    SERIES_FILE,
)
from promlab.storage.checksum import file_record, json_checksum
from promlab.storage.footer import file_spans

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


def _rewrite(block_dir: str, version: int) -> None:
    """Rewrite a format 5 block as format ``version`` (4, 3 or 2) wrote it: no ``series.arrow``;
    (3, 2) the series index one row per chunk with its labels, (3) ``series_rank``; ``version``
    in meta.json."""
    path = os.path.join(block_dir, SERIES_FILE)
    os.remove(os.path.join(block_dir, INDEX_FILE))
    if version == 4:
        _set_meta(block_dir, version, path)
        return
    table = pq.read_table(path)
    lens = np.diff(table[CHUNK_COLUMNS[0]].combine_chunks().offsets.to_numpy())
    ser = pa.array(np.repeat(np.arange(table.num_rows), lens))
    data = {c: table[c].take(ser) for c in table.column_names if c not in CHUNK_COLUMNS}
    for c in CHUNK_COLUMNS:
        data[c.removeprefix("chunk_")] = table[c].combine_chunks().flatten()
    if version == 3:
        data["series_rank"] = ser.cast(pa.int64())
    old = pa.table(data).replace_schema_metadata(table.schema.metadata)
    pq.write_table(old, path, compression="zstd", write_page_checksum=True)
    _set_meta(block_dir, version, path)


def _set_meta(block_dir: str, version: int, path: str) -> None:
    with open(os.path.join(block_dir, META_FILE)) as f:
        meta = json.load(f)
    meta.pop("checksum")
    meta["version"] = version
    meta["files"].pop(INDEX_FILE)
    meta["files"][SERIES_FILE] = file_record(path)
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(block_dir, META_FILE), "w") as f:
        json.dump(meta, f)


def test_series_index_is_plain_parquet(tmp_path: os.PathLike[str]) -> None:
    _store(str(tmp_path))
    (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
    block_dir = os.path.join(tmp_path, "blocks", name)
    with open(os.path.join(block_dir, META_FILE)) as f:
        assert json.load(f)["version"] == FORMAT_VERSION == 5
    table = pq.read_table(os.path.join(block_dir, SERIES_FILE))
    # series.arrow: the same table (label columns dictionary-encoded, chunk lists int32 with
    # times as ms since the block's start)
    copy = pa.ipc.open_file(os.path.join(block_dir, INDEX_FILE)).read_all()
    assert copy.column_names == table.column_names
    md = dict(copy.schema.metadata)
    base = int(md.pop(b"promlab.time_base"))
    # ... and where the samples file's row groups lie in its footer, and their rows
    spans, rows = file_spans(os.path.join(block_dir, "samples.parquet"))
    for key, want in ((FOOTER_SPANS_KEY, spans), (ROW_GROUP_ROWS_KEY, rows)):
        assert np.array_equal(np.frombuffer(base64.b64decode(md.pop(key)), "<i8"), want)
    assert base == T0 - T0 % (4 * HOUR) and md == table.schema.metadata
    for c in table.column_names:
        want = table[c].combine_chunks()
        if c in CHUNK_COLUMNS:
            assert copy[c].type == pa.list_(pa.int32())
            want = pa.ListArray.from_arrays(want.offsets, pa.array(
                want.values.cast(pa.int64()).to_numpy() - (base if "time" in c else 0), pa.int32()))
        else:
            assert pa.types.is_dictionary(copy[c].type) == (c != "series_id")
        assert copy[c].to_pylist() == want.to_pylist(), c
    df = table.to_pandas()
    assert len(df) == 30 and df["series_id"].is_unique  # one row per series
    keys = list(zip(df["__name__"], df["instance"], strict=True))
    assert keys == sorted(keys)  # in label order: the row position is the series' rank
    assert (df["chunk_row_count"].map(len) == 4).all()  # one chunk per 1 h bucket
    # exploded: one row per chunk; row_start/row_count address the samples file's rows
    chunks = df.explode(list(CHUNK_COLUMNS))
    assert len(chunks) == 30 * 4
    samples = pq.read_table(os.path.join(block_dir, "samples.parquet"),
                            columns=["series_id", "timestamp"]).to_pandas()
    for k in (0, 7, 119):
        row = chunks.iloc[k]
        start, count = int(row["chunk_row_start"]), int(row["chunk_row_count"])
        chunk = samples.iloc[start:start + count]
        assert (chunk["series_id"] == row["series_id"]).all()
        # (list elements come back from pandas as naive UTC timestamps)
        assert chunk["timestamp"].min().tz_localize(None) == row["chunk_min_time"]
        assert chunk["timestamp"].max().tz_localize(None) == row["chunk_max_time"]


@pytest.mark.parametrize("fmt", [5, 4, 3, 2], ids=["format-5", "format-4", "format-3", "format-2"])
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
    if fmt < 5:
        (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
        _rewrite(os.path.join(tmp_path, "blocks", name), fmt)
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        assert blk.meta.version == fmt and (blk.index() is not None)
        assert (blk.rank is None) == (fmt == 2)
        for _ in range(2):  # decoded, then from the cache
            got = ro.querier(*window).select(matchers)
            want = mem.querier(*window).select(matchers)
            assert len(got) > 0
            assert_same(got, want)


@pytest.mark.parametrize("damage", [
    pytest.param("removed", id="arrow-removed"),
    pytest.param("truncated", id="arrow-truncated"),
])
def test_missing_arrow_index_falls_back_to_parquet(tmp_path: os.PathLike[str], damage: str,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A format-5 block copied without series.arrow reads its index from series.parquet (with a
    warning) and verifies intact; a series.arrow that is there but damaged is still damage."""
    from promlab.storage.verify import verify_store

    mem = _store(str(tmp_path))
    (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
    arrow = os.path.join(tmp_path, "blocks", name, INDEX_FILE)
    if damage == "removed":
        os.remove(arrow)
    else:
        with open(arrow, "r+b") as f:
            f.truncate(100)
    matchers = [Matcher(MatchType.REGEX, "__name__", "metric_.*")]
    window = (T0 + HOUR, T0 + 2 * HOUR)
    with caplog.at_level("WARNING", "promlab.storage"), open_store(tmp_path, readonly=True) as ro:
        blocks = ro.blocks()
        if damage == "removed":
            assert [b.index_missing for b in blocks] == [True]
            assert_same(ro.querier(*window).select(matchers), mem.querier(*window).select(matchers))
            assert any(INDEX_FILE in r.getMessage() and "missing" in r.getMessage()
                       for r in caplog.records)
        else:
            assert blocks == [] and ro.damaged_blocks()
    (report,) = verify_store(str(tmp_path))
    assert (report.reason is None) == (damage == "removed"), report.reason
