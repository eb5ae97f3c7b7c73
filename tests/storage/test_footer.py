"""promlab.storage.footer: a Parquet footer cut down to some row groups reads exactly those row
groups of the same file, and a block of format 5 reads through such footers; from issue 14
on a block reads and checks only its read's row groups' pieces of the footer."""

from __future__ import annotations

import base64
import json
import os
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.errors import StorageError
from promlab.model import Matcher, MatchType
from promlab.storage import MemoryStorage, open_store
from promlab.storage import blocks as blocks_mod
from promlab.storage.checksum import file_record, json_checksum, read_runs
from promlab.storage.footer import (
    FooterPieces,
    file_spans,
    footer_ends,
    piece_crcs,
    row_group_spans,
    subset,
)
from promlab.storage.seriesindex import FOOTER_CRCS_KEY, FOOTER_ENDS_KEY
from promlab.storage.verify import verify_store

from .conftest import HOUR, T0, assert_same, four_hour_block, one_batch_metadata


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
    mem = four_hour_block(str(tmp_path))
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


@pytest.mark.parametrize(("n_groups", "first", "then"), [
    pytest.param(1, [0], [0], id="only-group"),
    pytest.param(20, [19], [19], id="last-again"),
    pytest.param(20, [3, 4, 5], [4, 5, 6, 7], id="run-then-overlapping-run"),
    pytest.param(20, [1, 7, 18], [0, 18], id="scattered"),
    pytest.param(40, list(range(0, 40, 2)), list(range(40)), id="15-or-more-then-all"),
])
def test_footer_pieces_read_the_same_rows(tmp_path: os.PathLike[str], n_groups: int,
                                          first: list[int], then: list[int]) -> None:
    """Pieces of the footer fetched (each checked, consecutive ones at once, none twice) build
    the metadata :func:`subset` builds from the whole footer."""
    f = _file(str(tmp_path), n_groups)
    footer = _footer(f)
    spans = row_group_spans(footer)
    pieces = FooterPieces(footer_ends(footer, spans), spans, piece_crcs(footer, spans),
                          os.path.getsize(f))
    reads: list[list[str]] = []
    with pa.OSFile(f) as fh:
        def read(offset: int, runs: list[tuple[int, int, str]]) -> list[memoryview]:
            reads.append([what for _, _, what in runs])
            return read_runs(fh, f, offset, runs)

        for rgs, before in ((first, set()), (then, set(first))):
            reads.clear()
            md = pieces.metadata(rgs, read)
            assert md.num_row_groups == len(rgs)
            got = pq.ParquetFile(fh, metadata=md).read_row_groups(list(range(len(rgs))))
            assert got.equals(pq.ParquetFile(f).read_row_groups(rgs))
            assert md.to_dict()["row_groups"] == subset(footer, spans, rgs).to_dict()["row_groups"]
            fetched = [int(w.rsplit(" ", 1)[1]) for run in reads for w in run]
            assert sorted(fetched) == sorted(set(rgs) - before)
            for run in reads:  # consecutive row groups in one read
                nums = [int(w.rsplit(" ", 1)[1]) for w in run]
                assert nums == list(range(nums[0], nums[0] + len(nums)))


def _block(path: str, monkeypatch: pytest.MonkeyPatch) -> tuple[MemoryStorage, str]:
    """A 4-h block of 30 series in 1 Ki-row groups, and its directory."""
    monkeypatch.setattr(blocks_mod, "ROW_GROUP_ROWS", 1024)
    mem = four_hour_block(path)
    (name,) = os.listdir(os.path.join(path, "blocks"))
    return mem, os.path.join(path, "blocks", name)


def _drop_piece_keys(block_dir: str) -> None:
    """Rewrite series.arrow without the footer pieces (as writers before issue 14 did)."""
    path = os.path.join(block_dir, blocks_mod.INDEX_FILE)
    table = pa.ipc.open_file(path).read_all()
    md = one_batch_metadata(block_dir, {k: v for k, v in table.schema.metadata.items()
                                        if k not in (FOOTER_CRCS_KEY, FOOTER_ENDS_KEY)})
    table = table.replace_schema_metadata(md)
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    meta_path = os.path.join(block_dir, blocks_mod.META_FILE)
    with open(meta_path) as f:
        meta = json.load(f)
    meta["files"][blocks_mod.INDEX_FILE] = file_record(path)
    meta["checksum"] = json_checksum(meta)
    with open(meta_path, "w") as f:
        json.dump(meta, f)


@pytest.mark.parametrize(("where", "pieces", "fails"), [
    pytest.param(None, True, False, id="intact"),
    pytest.param(None, False, False, id="intact-old-writer"),
    pytest.param("read", True, True, id="piece-read"),
    pytest.param("elsewhere", True, False, id="piece-not-read"),
    pytest.param("elsewhere", False, True, id="old-writer-whole-footer-checked"),
])
def test_footer_pieces_are_checked_when_read(tmp_path: os.PathLike[str],
                                             monkeypatch: pytest.MonkeyPatch, where: str | None,
                                             pieces: bool, fails: bool) -> None:
    """A byte flipped in the footer piece of a row group a read needs is damage; one in
    another row group's piece is not read (``tsdb verify`` still finds it); a block without
    the pieces (older writers) checks its whole footer first."""
    mem, block_dir = _block(str(tmp_path), monkeypatch)
    if not pieces:
        _drop_piece_keys(block_dir)
    m = [Matcher(MatchType.EQUAL, "__name__", "metric_1")]
    mint, maxt = T0 + 2 * HOUR, T0 + 2 * HOUR + 300_000
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        sel = blk.metric_chunks("metric_1", (), mint, maxt)
        starts = blk.pieces(sel, mint, maxt)[0]
        bounds = np.cumsum(blk.row_group_rows())
        need = sorted(set(np.searchsorted(bounds, starts, "right").tolist()))
        spans = base64.b64decode(pa.ipc.open_file(os.path.join(
            block_dir, blocks_mod.INDEX_FILE)).schema.metadata[b"promlab.samples_footer_spans"])
    spans_a = np.frombuffer(spans, "<i8")
    rg = need[0] if where == "read" else len(bounds) - 1
    assert where != "elsewhere" or rg not in need
    samples = os.path.join(block_dir, "samples.parquet")
    if where is not None:
        size = os.path.getsize(samples)
        with open(samples, "r+b") as f:
            f.seek(-8, 2)
            (n,) = struct.unpack("<I", f.read(4))
            pos = size - 8 - n + int(spans_a[rg + 1]) + 3  # inside row group rg's piece
            f.seek(pos)
            b = f.read(1)
            f.seek(pos)
            f.write(bytes([b[0] ^ 0x40]))
    with open_store(tmp_path, readonly=True) as ro:
        if fails:
            with pytest.raises(StorageError, match="checksum mismatch"):
                ro.querier(mint, maxt).select(m)
        else:
            assert_same(ro.querier(mint, maxt).select(m), mem.querier(mint, maxt).select(m))
    assert all(r.reason is None for r in verify_store(str(tmp_path))) == (where is None)


@pytest.mark.parametrize("n_groups", [1, 7], ids=["one-group", "seven-groups"])
def test_footer_pieces_span_is_where_pieces_are_read(tmp_path: os.PathLike[str],
                                                     n_groups: int) -> None:
    """:meth:`FooterPieces.span` (what a block prefetches) covers exactly the pieces' bytes."""
    f = _file(str(tmp_path), n_groups)
    footer = _footer(f)
    spans = row_group_spans(footer)
    pieces = FooterPieces(footer_ends(footer, spans), spans, piece_crcs(footer, spans),
                          os.path.getsize(f))
    ranges: list[tuple[int, int]] = []
    with pa.OSFile(f) as fh:
        def read(offset: int, runs: list[tuple[int, int, str]]) -> list[memoryview]:
            ranges.append((offset, sum(n for n, _, _ in runs)))
            return read_runs(fh, f, offset, runs)

        pieces.metadata(list(range(n_groups)), read)
    assert len(ranges) == 1  # all pieces back to back: one read
    assert pieces.span() == ranges[0]
