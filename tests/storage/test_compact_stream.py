"""Streaming compaction: same blocks as the old whole-window merge, with bounded memory."""

from __future__ import annotations

import os
import shutil
import tracemalloc
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.model import STALE_NAN, Labels, Matcher, MatchType
from promlab.storage import blocks as blocks_mod
from promlab.storage import open_store
from promlab.storage.blocks import Block
from promlab.storage.compact import delete_block
from promlab.storage.merge import merge_parts
from promlab.storage.writer import BlockWriter, write_block

from .conftest import HOUR, T0, assert_same

WINDOW = "24h"


def _old_merge(blocks_dir: str, group: Sequence[Block], *, start: int, end: int,
               bucket_ms: int) -> str:
    """The previous compaction: the whole window decoded, merged and written at once."""
    group = sorted(group, key=lambda b: (b.meta.seq, b.meta.ulid))
    parts, labels_by_sid = [], {}
    for blk in group:
        rows, ts, vals = blk.read_all()
        parts.append((blk.sids[rows], ts, vals))
        for i, sid in enumerate(blk.sids.tolist()):
            labels_by_sid.setdefault(sid, blk.labels_at(i))
    uniq = np.unique(np.concatenate([b.sids for b in group]))
    g, t, v = merge_parts([(np.searchsorted(uniq, s), t, v) for s, t, v in parts])
    meta = write_block(blocks_dir, [labels_by_sid[int(s)] for s in uniq.tolist()], uniq, g, t, v,
                       start=start, end=end, seq=max(b.meta.seq for b in group),
                       level=max(b.meta.level for b in group) + 1,
                       sources=[b.meta.ulid for b in group], bucket_ms=bucket_ms)
    for blk in group:
        delete_block(blk)
    return os.path.join(blocks_dir, meta.dirname)


def _random_blocks(blocks_dir: str, seed: int, nblocks: int, overlap: bool) -> None:
    """2 h blocks over one day; with ``overlap``, late blocks rewrite parts of earlier ones."""
    rng = np.random.default_rng(seed)
    series = [Labels({"__name__": f"m{i % 7}", "i": str(i), "job": "j"}) for i in range(40)]
    series += [Labels({"i": "noname", "job": "j"})]
    sids = np.array([ls.hash for ls in series], np.int64)
    seq = 1
    spans = [(k * 2 * HOUR, (k + 1) * 2 * HOUR) for k in range(nblocks)]
    if overlap:
        spans += [(2 * HOUR, 4 * HOUR), (0, 2 * HOUR), (10 * HOUR, 12 * HOUR)]
    for lo, hi in spans:
        steps = np.sort(rng.choice(np.arange(lo, hi, 15_000), size=200, replace=False))
        idx = np.repeat(np.arange(len(series)), steps.shape[0])
        ts = T0 + np.tile(steps, len(series))
        keep = rng.random(idx.shape[0]) < 0.7  # series start and stop
        idx, ts = idx[keep], ts[keep]
        vals = np.round(rng.normal(size=idx.shape[0]) * 50, int(rng.integers(0, 4)))
        kinds = rng.random(idx.shape[0])
        vals[kinds < 0.02] = STALE_NAN
        vals[(kinds >= 0.02) & (kinds < 0.03)] = np.inf
        vals[(kinds >= 0.03) & (kinds < 0.04)] = -0.0
        vals[(kinds >= 0.04) & (kinds < 0.06)] = rng.normal(size=int(((kinds >= 0.04) & (kinds < 0.06)).sum()))
        vals[idx % 5 == 0] = np.cumsum(rng.integers(0, 5, int((idx % 5 == 0).sum())))
        write_block(blocks_dir, series, sids, idx, ts, vals, start=T0 + lo, end=T0 + hi,
                    seq=seq, bucket_ms=6 * HOUR)
        seq += 1


def _bits(col: pa.ChunkedArray) -> list[object]:
    """Column values, floats as their bit patterns (NaN, stale markers compare equal)."""
    arr = col.combine_chunks()
    if pa.types.is_floating(arr.type):
        nulls = arr.is_null().to_numpy(zero_copy_only=False)
        bits = arr.fill_null(0.0).to_numpy().view(np.int64)
        return [None if n else int(b) for n, b in zip(nulls.tolist(), bits.tolist(), strict=True)]
    return list(arr.to_pylist())


def _everything(path: str) -> object:
    with open_store(path, readonly=True) as st:
        return st.querier(T0 - HOUR, T0 + 25 * HOUR).select([Matcher(MatchType.EQUAL, "job", "j")])


@pytest.mark.parametrize(("seed", "nblocks", "overlap", "rg_rows", "bucket"), [
    pytest.param(1, 12, False, 1000, "6h", id="12-blocks-small-row-groups"),
    pytest.param(2, 12, True, 1000, "6h", id="overlaps-duplicates-stale"),
    pytest.param(3, 4, True, 128 * 1024, "6h", id="one-row-group"),
    pytest.param(4, 2, False, 777, "6h", id="first-bucket-only"),
    pytest.param(5, 6, True, 500, "24h", id="no-buckets"),
])
def test_stream_matches_old_merge(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch,
                                  seed: int, nblocks: int, overlap: bool, rg_rows: int,
                                  bucket: str) -> None:
    monkeypatch.setattr(blocks_mod, "ROW_GROUP_ROWS", rg_rows)
    new, old = os.path.join(tmp_path, "new"), os.path.join(tmp_path, "old")
    open_store(new, max_block_duration=WINDOW, bucket_duration=bucket, auto_compact=False).close()
    _random_blocks(os.path.join(new, "blocks"), seed, nblocks, overlap)
    shutil.copytree(new, old)
    before = _everything(new)
    with open_store(new, max_block_duration=WINDOW, bucket_duration=bucket,
                    auto_compact=False) as st:
        (made,) = st.compact()
    with open_store(old, max_block_duration=WINDOW, bucket_duration=bucket,
                    auto_compact=False) as st:
        ref = _old_merge(st.blocks_dir, st.blocks(), start=T0, end=T0 + 24 * HOUR,
                         bucket_ms=st.bucket_duration_ms)
    assert_same(_everything(new), before)  # type: ignore[arg-type]
    assert_same(_everything(new), _everything(old))  # type: ignore[arg-type]
    for name in ("samples.parquet", "series.parquet"):
        a, b = pq.read_table(os.path.join(made, name)), pq.read_table(os.path.join(ref, name))
        assert a.schema.equals(b.schema) and a.num_rows == b.num_rows, name
        for c in a.column_names:
            assert _bits(a[c]) == _bits(b[c]), (name, c)  # same rows, order, columns and encodings' inputs
        ma = pq.ParquetFile(os.path.join(made, name)).metadata
        mb = pq.ParquetFile(os.path.join(ref, name)).metadata
        assert [ma.row_group(i).num_rows for i in range(ma.num_row_groups)] == \
               [mb.row_group(i).num_rows for i in range(mb.num_row_groups)]
        size_a, size_b = os.path.getsize(os.path.join(made, name)), os.path.getsize(os.path.join(ref, name))
        assert abs(size_a - size_b) <= 0.02 * size_b + 512, (name, size_a, size_b)
    col = pq.ParquetFile(os.path.join(made, "samples.parquet")).metadata.row_group(0).column(2)
    assert "DELTA_BINARY_PACKED" in col.encodings  # timestamps keep their encoding
    mnew = Block(made).meta
    mold = Block(ref).meta
    assert (mnew.mint, mnew.maxt, mnew.num_series, mnew.num_samples, mnew.seq, mnew.level) == \
           (mold.mint, mold.maxt, mold.num_series, mold.num_samples, mold.seq, mold.level)
    assert not [n for n in os.listdir(os.path.dirname(made)) if n.startswith(".")]


def test_compaction_memory_is_bounded_by_the_largest_metric(
        tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # The bound is the largest metric plus a few row groups: shrink the row groups so the
    # window (12 × 2 h blocks, 30 s steps: 1.15 M samples, 80 metrics) dwarfs them.
    monkeypatch.setattr(blocks_mod, "ROW_GROUP_ROWS", 16 * 1024)
    metrics, per_metric, steps = 80, 5, 240
    series = [Labels({"__name__": f"metric_{i % metrics:02d}", "instance": f"h{i}"})
              for i in range(metrics * per_metric)]
    sids = np.array([ls.hash for ls in series], np.int64)
    rng = np.random.default_rng(0)
    path = str(tmp_path)
    open_store(path, max_block_duration=WINDOW, auto_compact=False).close()
    for k in range(12):
        lo = T0 + k * 2 * HOUR
        idx = np.repeat(np.arange(len(series)), steps)
        ts = np.tile(lo + np.arange(steps, dtype=np.int64) * 30_000, len(series))
        vals = np.round(rng.normal(size=idx.shape[0]) * 100, 2)
        write_block(os.path.join(path, "blocks"), series, sids, idx, ts, vals,
                    start=lo, end=lo + 2 * HOUR, seq=k + 1, bucket_ms=6 * HOUR)
    total = len(series) * steps * 12 * 24  # decoded (sid, ts, value) bytes of the window
    with open_store(path, max_block_duration=WINDOW, auto_compact=False) as st:
        tracemalloc.start()
        try:
            (made,) = st.compact()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert Block(made).meta.num_samples == len(series) * steps * 12
    # The old merge peaked at ~4x the decoded window; streaming holds one metric (1/80) at a time.
    assert peak < total / 4, (peak, total)


def test_recompacting_a_window_with_late_blocks(tmp_path: os.PathLike[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A compacted (bucketed) day plus late overlapping blocks: merged like the old path."""
    monkeypatch.setattr(blocks_mod, "ROW_GROUP_ROWS", 900)
    new, old = os.path.join(tmp_path, "new"), os.path.join(tmp_path, "old")
    open_store(new, max_block_duration=WINDOW, auto_compact=False).close()
    _random_blocks(os.path.join(new, "blocks"), 7, 12, False)
    with open_store(new, max_block_duration=WINDOW, auto_compact=False) as st:
        assert len(st.compact()) == 1
        seq = max(b.meta.seq for b in st.blocks()) + 1
    late = os.path.join(tmp_path, "late")
    os.makedirs(late)
    _random_blocks(late, 8, 3, True)  # 6 blocks over the first 12 h, rewriting some samples
    for i, name in enumerate(sorted(os.listdir(late), key=lambda n: Block(os.path.join(late, n)).meta.seq)):
        blk = Block(os.path.join(late, name))
        rows, ts, vals = blk.read_all()
        write_block(os.path.join(new, "blocks"), [blk.labels_at(j) for j in range(blk.sids.shape[0])],
                    blk.sids, rows, ts, vals, start=blk.meta.start, end=blk.meta.end,
                    seq=seq + i, bucket_ms=6 * HOUR)
    shutil.copytree(new, old)
    before = _everything(new)
    with open_store(new, max_block_duration=WINDOW, auto_compact=False) as st:
        (made,) = st.compact()
    with open_store(old, max_block_duration=WINDOW, auto_compact=False) as st:
        ref = _old_merge(st.blocks_dir, st.blocks(), start=T0, end=T0 + 24 * HOUR,
                         bucket_ms=st.bucket_duration_ms)
    assert_same(_everything(new), before)  # type: ignore[arg-type]
    for name in ("samples.parquet", "series.parquet"):
        a, b = pq.read_table(os.path.join(made, name)), pq.read_table(os.path.join(ref, name))
        assert a.schema.equals(b.schema) and [_bits(a[c]) for c in a.column_names] == \
               [_bits(b[c]) for c in b.column_names], name


def test_failed_compaction_leaves_sources_and_no_tmp(tmp_path: os.PathLike[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path)
    open_store(path, max_block_duration=WINDOW, auto_compact=False).close()
    _random_blocks(os.path.join(path, "blocks"), 9, 4, False)
    before = _everything(path)
    real = BlockWriter.add_owned
    calls = []

    def failing(self: BlockWriter, *a: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        real(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(BlockWriter, "add_owned", failing)
    with open_store(path, max_block_duration=WINDOW, auto_compact=False) as st, \
            pytest.raises(OSError, match="disk full"):
        st.compact()
    assert sorted(os.listdir(os.path.join(path, "blocks"))) == sorted(
        n for n in os.listdir(os.path.join(path, "blocks")) if not n.startswith("."))
    assert len(os.listdir(os.path.join(path, "blocks"))) == 4
    assert_same(_everything(path), before)  # type: ignore[arg-type]
