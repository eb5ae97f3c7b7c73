"""Block format 4's series index (series.parquet: one row per series, chunks as lists): readable
without promlab; format 5's Arrow copy of it (series.arrow) holds the same table; format 6's
rows per time slice locate every chunk's pieces; and older blocks (format 5: unsliced rows;
format 4: no copy; format 3: one row per chunk with ``series_rank``; format 2: no
``series_rank``) still answer the same."""

from __future__ import annotations

import base64
import json
import os
import zlib
from itertools import pairwise

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.errors import StorageError
from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage.blocks import (
    CHUNK_COLUMNS,
    FOOTER_SPANS_KEY,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    RECENT_FILE,
    ROW_GROUP_ROWS_KEY,
    SERIES_FILE,
    TAIL_FILE,
)
from promlab.storage.checksum import file_record, json_checksum
from promlab.storage.footer import file_footer, file_spans
from promlab.storage.seriesindex import FOOTER_CRCS_KEY, FOOTER_ENDS_KEY, METRIC_BATCHES_KEY
from promlab.storage.slices import GROUPS_KEY, SLICE_COLUMN

from .conftest import (
    HOUR,
    T0,
    assert_same,
    four_hour_block,
    one_batch_metadata,
    write_one_batch_index,
)


def _store(path: str, *, slices: int = 4) -> MemoryStorage:
    """A 4-h block of 30 series at 15 s; ``slices=1`` writes rows unsliced (format 5's order)."""
    from promlab.storage import writer

    old, writer.SLICES = writer.SLICES, slices
    try:
        return four_hour_block(path)
    finally:
        writer.SLICES = old




def _rewrite(block_dir: str, version: int) -> None:
    """Rewrite a block as format ``version`` (8 .. 2) wrote it: (8) without ``tail.arrow``;
    (7) without ``recent.arrow`` either;
    (6) ``series.arrow`` one
    record batch with the slice groups in its schema metadata, no pieces in meta.json; (5) an
    unsliced block with only ``version`` in meta.json (the slice column is ignored); (4 on
    down) no ``series.arrow``; (3, 2) the series index one row per chunk with its labels, (3)
    ``series_rank``."""
    path = os.path.join(block_dir, SERIES_FILE)
    dropped = (TAIL_FILE,) if version == 8 else (TAIL_FILE, RECENT_FILE)
    for fname in dropped:
        os.remove(os.path.join(block_dir, fname))
    if version >= 7:
        with open(os.path.join(block_dir, META_FILE)) as f:
            meta = json.load(f)
        meta.pop("checksum")
        meta["version"] = version
        for fname in dropped:
            meta["files"].pop(fname)
        meta["checksum"] = json_checksum(meta)
        with open(os.path.join(block_dir, META_FILE), "w") as f:
            json.dump(meta, f)
        return
    if version == 6:
        index = os.path.join(block_dir, INDEX_FILE)
        table = pa.ipc.open_file(index).read_all().combine_chunks()
        md = one_batch_metadata(block_dir, table.schema.metadata)
        with pa.OSFile(index, "wb") as sink, pa.ipc.new_file(
                sink, table.schema.with_metadata(md),
                options=pa.ipc.IpcWriteOptions(compression="lz4")) as w:
            w.write_table(table.replace_schema_metadata(md))
        _set_meta(block_dir, version, path)
        return
    if version == 5:
        _set_meta(block_dir, version, path)
        return
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
    meta["files"].pop(RECENT_FILE)
    meta["files"].pop(TAIL_FILE)
    if version < 5:
        meta["files"].pop(INDEX_FILE)
    else:
        meta["files"][INDEX_FILE] = file_record(os.path.join(block_dir, INDEX_FILE))
    meta["files"][SERIES_FILE] = file_record(path)
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(block_dir, META_FILE), "w") as f:
        json.dump(meta, f)


def test_series_index_is_plain_parquet(tmp_path: os.PathLike[str]) -> None:
    _store(str(tmp_path))
    (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
    block_dir = os.path.join(tmp_path, "blocks", name)
    with open(os.path.join(block_dir, META_FILE)) as f:
        assert json.load(f)["version"] == FORMAT_VERSION == 9
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
    # ... and the footer's row groups' pieces' CRCs and the rest of it (issue 14)
    footer = file_footer(os.path.join(block_dir, "samples.parquet"))
    crcs = np.frombuffer(base64.b64decode(md.pop(FOOTER_CRCS_KEY)), "<i8")
    assert crcs.tolist() == [zlib.crc32(footer[a:b]) for a, b in pairwise(spans[1:].tolist())]
    ends = base64.b64decode(md.pop(FOOTER_ENDS_KEY))
    assert ends == footer[:spans[1]] + footer[spans[-1]:] and len(crcs) == len(rows)
    # ... and record batches of whole metrics (30 series: one), their names in order
    groups = json.loads(md.pop(METRIC_BATCHES_KEY))
    reader = pa.ipc.open_file(os.path.join(block_dir, INDEX_FILE))
    assert groups == [sorted(set(table["__name__"].to_pylist()))]
    # (batch 0 empty: the schema and dictionaries), meta.json checking each piece
    assert reader.num_record_batches == len(groups) + 1 == 2
    assert reader.get_batch(0).num_rows == 0
    for i, names in enumerate(groups):
        assert sorted(set(reader.get_batch(i + 1)["__name__"].to_pylist())) == names
    with open(os.path.join(block_dir, META_FILE)) as f:
        pieces = json.load(f)["files"][INDEX_FILE]["pieces"]
    with open(os.path.join(block_dir, INDEX_FILE), "rb") as f:
        raw = f.read()
    assert len(pieces) == len(groups) + 2 and pieces[0][0] == 0
    assert sum(ln for _, ln, _ in pieces) == len(raw)
    assert [zlib.crc32(raw[o:o + ln]) for o, ln, _ in pieces] == [c for _, _, c in pieces]
    # ... and (format 7) no slice groups: each batch carries its metrics'
    want_md = dict(table.schema.metadata)
    groups = np.frombuffer(base64.b64decode(want_md.pop(GROUPS_KEY)), "<i8")
    assert base == T0 - T0 % (4 * HOUR) and md == want_md
    carried = reader.get_batch_with_custom_metadata(1).custom_metadata[GROUPS_KEY]
    assert np.frombuffer(base64.b64decode(carried), "<i8").tolist() == groups.tolist()
    assert len(groups) == 3 * 4
    assert md[b"promlab.bucket_ms"] == str(HOUR).encode()
    for c in table.column_names:
        want = table[c].combine_chunks()
        if c == SLICE_COLUMN:
            assert copy[c].type == pa.list_(pa.uint16())
            want = want.cast(pa.list_(pa.uint16()))
        elif c in CHUNK_COLUMNS:
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
    # four slices' rows per chunk, adding up to its rows (15 s samples: 60 per 15 min)
    assert (df[SLICE_COLUMN].map(len) == 4 * 4).all()
    slice_rows = np.stack(df[SLICE_COLUMN].map(lambda x: np.reshape(x, (-1, 4))).tolist())
    assert (slice_rows == 60).all()
    assert (slice_rows.sum(axis=2) == np.stack(df["chunk_row_count"].tolist())).all()
    # exploded: one row per chunk; a chunk's samples are its series' rows in its time range,
    # in (15-min slice, series, time) order inside each (metric, 1 h bucket): not contiguous
    chunks = df.explode(list(CHUNK_COLUMNS))
    assert len(chunks) == 30 * 4
    samples = pq.read_table(os.path.join(block_dir, "samples.parquet"),
                            columns=["series_id", "timestamp"]).to_pandas()
    for k in (0, 7, 119):
        row = chunks.iloc[k]
        count = int(row["chunk_row_count"])
        # (list elements come back from pandas as naive UTC timestamps)
        ts = samples["timestamp"].dt.tz_localize(None)
        mine = samples[(samples["series_id"] == row["series_id"])
                       & (ts >= row["chunk_min_time"]) & (ts <= row["chunk_max_time"])]
        assert len(mine) == count
        # four runs of 60 rows, a slice of the metric's 10 series apart (one per slice)
        pos = mine.index.to_numpy()
        assert np.array_equal(np.diff(pos[::60]), [60 * 10] * 3)
        assert (np.diff(pos.reshape(4, 60), axis=1) == 1).all()


@pytest.mark.parametrize("fmt", [9, 8, 7, 6, 5, 4, 3, 2],
                         ids=["format-9", "format-8", "format-7", "format-6", "format-5",
                              "format-4", "format-3", "format-2"])
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
    mem = _store(str(tmp_path), slices=4 if fmt >= 6 else 1)
    if fmt < 9:
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


_SLICE = 15 * 60_000


@pytest.mark.parametrize(("window", "chunks", "pieces", "rows"), [
    pytest.param((2 * HOUR + 60_000, 2 * HOUR + 360_000), 10, 1, 60, id="5m-in-one-slice"),
    pytest.param((2 * HOUR + 14 * 60_000, 2 * HOUR + 16 * 60_000), 10, 2, 120,
                 id="across-slices"),
    pytest.param((HOUR + 50 * 60_000, 2 * HOUR + 5 * 60_000), 20, 1, 60, id="across-buckets"),
    pytest.param((0, 4 * HOUR), 40, 4, 240, id="all"),
])
def test_short_reads_take_their_slices(tmp_path: os.PathLike[str], window: tuple[int, int],
                                       chunks: int, pieces: int, rows: int) -> None:
    """A format-6 chunk is read as the pieces of the 15-min slices the range overlaps only."""
    _store(str(tmp_path))
    mint, maxt = T0 + window[0], T0 + window[1]
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        sel = blk.metric_chunks("metric_1", (), mint, maxt)
        assert sel.shape[0] == chunks
        starts, counts, chunk = blk.pieces(sel, mint, maxt)
        assert chunk is not None
        assert (np.bincount(chunk, minlength=chunks) == pieces).all()
        assert set(counts.tolist()) == {60} and int(counts.sum()) == rows * chunks
        # the pieces' rows are exactly the chunks' samples in those slices
        ts = pq.read_table(os.path.join(blk.path, "samples.parquet"),
                           columns=["series_id", "timestamp"])
        sid = ts["series_id"].to_numpy()
        for i in range(starts.shape[0]):
            assert (sid[starts[i]:starts[i] + counts[i]] == blk.sids[sel[chunk[i]]]).all()
        kept, got_ts, _ = blk.read_chunks(sel, mint, maxt)
        assert bool((got_ts >= mint).all() and (got_ts <= maxt).all())
        assert int(kept.sum()) == got_ts.shape[0] > 0
        win = blk.slice_window(sel, mint, maxt)
        if window == (0, 4 * HOUR):
            assert win is None  # whole chunks
        else:
            assert win is not None and (win[0] - T0) % _SLICE == 0 and (win[1] + 1 - T0) % _SLICE == 0
            assert win[0] <= mint and win[1] >= maxt and win[1] - win[0] < HOUR


def test_windows_share_the_cache_correctly(tmp_path: os.PathLike[str]) -> None:
    """Reads of different slices of the same chunks through one store (its decoded cache keyed
    by slice window) each answer as the memory storage does."""
    mem = _store(str(tmp_path))
    matchers = [Matcher(MatchType.REGEX, "__name__", "metric_.*")]
    windows = [(2 * HOUR + 60_000, 2 * HOUR + 360_000), (2 * HOUR + 10 * 60_000, 2 * HOUR + 20 * 60_000),
               (2 * HOUR + 60_000, 2 * HOUR + 120_000), (HOUR, 3 * HOUR), (0, 4 * HOUR),
               (2 * HOUR + 50 * 60_000, 2 * HOUR + 55 * 60_000)]
    with open_store(tmp_path, readonly=True) as ro:
        for lo, hi in windows * 2:
            want = mem.querier(T0 + lo, T0 + hi).select(matchers)
            assert_same(ro.querier(T0 + lo, T0 + hi).select(matchers), want)


@pytest.mark.parametrize("damage", [
    pytest.param("sum", id="rows-not-adding-up"),
    pytest.param("sum-elsewhere", id="rows-not-adding-up-outside-the-read"),
    pytest.param("groups", id="recorded-groups-bad"),
])
def test_damaged_slice_rows_are_damage(tmp_path: os.PathLike[str], damage: str) -> None:
    """series.arrow rewritten (checksums updated) with slice rows that do not match the
    chunks: the block is reported damaged, never read wrong."""
    _store(str(tmp_path))
    (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
    block_dir = os.path.join(tmp_path, "blocks", name)
    path = os.path.join(block_dir, INDEX_FILE)
    table = pa.ipc.open_file(path).read_all()
    md = dict(table.schema.metadata)
    if damage.startswith("sum"):
        col = table[SLICE_COLUMN].combine_chunks()
        vals = col.values.to_numpy().copy()
        # series 0 (metric_0): its third hour's second slice (read below), or its first's
        vals[4 * (0 if damage == "sum-elsewhere" else 2) + 1] += 1
        i = table.column_names.index(SLICE_COLUMN)
        table = table.set_column(i, SLICE_COLUMN, pa.ListArray.from_arrays(
            col.offsets, pa.array(vals, col.type.value_type)))
    else:  # format 6's recorded groups, the first starting after the first chunk
        md[GROUPS_KEY] = base64.b64encode(np.array([5, 9], "<i8").tobytes())
    write_one_batch_index(block_dir, table.replace_schema_metadata(md))
    from promlab.storage.verify import verify_store

    mint, maxt = T0 + 2 * HOUR, T0 + 2 * HOUR + 300_000
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        if damage == "sum-elsewhere":  # checked per (metric, hour) when first read: not yet
            sel = blk.metric_chunks("metric_0", (), mint, maxt)
            assert int(blk.read_chunks(sel, mint, maxt)[0].sum()) == 10 * 21
        else:
            with pytest.raises(StorageError, match="slice"):
                sel = blk.metric_chunks("metric_0", (), mint, maxt)
                blk.read_chunks(sel, mint, maxt)
    (report,) = verify_store(str(tmp_path))
    assert report.reason is not None and "slice" in report.reason


@pytest.mark.parametrize("compression", [
    pytest.param(None, id="uncompressed-as-written-before"),
    pytest.param("zstd", id="zstd"),
])
def test_series_arrow_is_lz4_and_other_encodings_read(tmp_path: os.PathLike[str],
                                                      compression: str | None) -> None:
    """series.arrow is written LZ4-compressed (smaller than the same table uncompressed); the
    same table written uncompressed (format-6 blocks of earlier writers) or otherwise
    compressed answers the same."""
    mem = _store(str(tmp_path))
    (name,) = os.listdir(os.path.join(tmp_path, "blocks"))
    block_dir = os.path.join(tmp_path, "blocks", name)
    path = os.path.join(block_dir, INDEX_FILE)
    table = pa.ipc.open_file(path).read_all()
    table = table.replace_schema_metadata(one_batch_metadata(block_dir, table.schema.metadata))
    plain = pa.BufferOutputStream()
    with pa.ipc.new_file(plain, table.schema) as w:
        w.write_table(table)
    assert os.path.getsize(path) < plain.getvalue().size
    write_one_batch_index(block_dir, table, compression)
    assert (os.path.getsize(path) == plain.getvalue().size) == (compression is None)
    matchers = [Matcher(MatchType.REGEX, "__name__", "metric_.*")]
    with open_store(tmp_path, readonly=True) as ro:
        for lo, hi in ((T0, T0 + 4 * HOUR), (T0 + 2 * HOUR, T0 + 2 * HOUR + 300_000)):
            got = ro.querier(lo, hi).select(matchers)
            assert len(got) == 30
            assert_same(got, mem.querier(lo, hi).select(matchers))


@pytest.mark.parametrize("max_runs", [1, 1000], ids=["groups-searched", "groups-scanned"])
def test_slice_groups_resolved_either_way(tmp_path: os.PathLike[str],
                                          monkeypatch: pytest.MonkeyPatch, max_runs: int) -> None:
    """A read's (metric, bucket) groups are found by one comparison of every chunk per run of
    groups, or (past ``MAX_SCANNED_RUNS`` runs) by each chunk's group searched once: the
    pieces are the same as worked out for all chunks at once, and so are the answers."""
    from promlab.storage import slices as slices_mod

    monkeypatch.setattr(slices_mod, "MAX_SCANNED_RUNS", max_runs)
    mem = _store(str(tmp_path))
    reads = [(["metric_1"], T0 + 2 * HOUR, T0 + 2 * HOUR + 300_000),  # one group
             (["metric_0", "metric_2"], T0, T0 + 4 * HOUR),  # two runs of four
             (["metric_1"], T0, T0 + 4 * HOUR)]  # one done, three not
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        for names, lo, hi in reads:
            m = [Matcher(MatchType.REGEX, "__name__", "|".join(names))]
            assert_same(ro.querier(lo, hi).select(m), mem.querier(lo, hi).select(m))
        si = blk.slices
        assert si is not None
        everything = np.arange(blk.min_time.shape[0], dtype=np.int64)
        got = blk.pieces(everything, T0, T0 + 4 * HOUR)
    group = si.groups[np.searchsorted(si.groups, si.row_start, "right") - 1]
    starts = slices_mod.piece_starts(si.row_start, si.rows.astype(np.int64), group)
    assert np.array_equal(got[0], starts.ravel()[si.rows.ravel() > 0])
    assert int(got[1].sum()) == int(si.row_count.sum()) == 30 * 4 * 240
