"""Helpers for the storage tests: random data, a differential check against MemoryStorage."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pytest

from promlab.model import Labels
from promlab.storage import MemoryStorage, SeriesSet, open_store

T0 = 1_700_000_000_000 // 86_400_000 * 86_400_000  # a day boundary
HOUR = 3_600_000


def make_series(n: int, metrics: int = 3) -> list[Labels]:
    return [Labels({"__name__": f"metric_{i % metrics}", "instance": f"h{i}", "job": "j"})
            for i in range(n)]


def grid(series: Sequence[Labels], start_ms: int, steps: int, step_ms: int = 15_000,
         seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """index, ts, values for every series at every step (values: counters and 2-dec gauges)."""
    rng = np.random.default_rng(seed)
    s = len(series)
    idx = np.repeat(np.arange(s), steps)
    ts = np.tile(start_ms + np.arange(steps, dtype=np.int64) * step_ms, s)
    vals = np.round(rng.normal(size=s * steps) * 100, 2)
    vals[: s * steps // 2] = np.cumsum(rng.integers(0, 9, s * steps // 2))
    return idx, ts, vals


def four_hour_block(path: str) -> MemoryStorage:
    """A store at ``path`` holding one 4-h block (1-h buckets) of 30 series at 15 s, and the
    same samples in memory (returned)."""
    series = make_series(30)
    idx, ts, vals = grid(series, T0, 4 * 240)
    mem = MemoryStorage()
    with open_store(path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        for s in (st, mem):
            app = s.appender()
            app.append_batch(series, idx, ts, vals)
            app.commit()
        st.flush()
    return mem


def assert_same(a: SeriesSet, b: SeriesSet) -> None:
    assert a.labels == b.labels
    assert a.offsets.tolist() == b.offsets.tolist()
    assert np.array_equal(a.ts_ms, b.ts_ms)
    assert np.array_equal(a.values.view(np.int64), b.values.view(np.int64))


@pytest.fixture
def mem() -> MemoryStorage:
    return MemoryStorage()


def one_batch_metadata(block_dir: str, md: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """``series.arrow`` schema metadata ``md`` as a one-batch index (format 6) has it: the
    slice groups (``md``'s, else ``series.parquet``'s) in the schema, no metric batches."""
    import pyarrow.parquet as pq

    from promlab.storage.blocks import SERIES_FILE
    from promlab.storage.seriesindex import METRIC_BATCHES_KEY
    from promlab.storage.slices import GROUPS_KEY

    out = {k: v for k, v in md.items() if k != METRIC_BATCHES_KEY}
    if GROUPS_KEY not in out:  # (a test's own groups stay)
        out[GROUPS_KEY] = pq.read_schema(os.path.join(block_dir, SERIES_FILE)).metadata[GROUPS_KEY]
    return out


def write_one_batch_index(block_dir: str, table: pa.Table, compression: str | None = None
                          ) -> None:
    """Replace the block's series.arrow by ``table`` written as one batch (uncompressed unless
    ``compression``; :func:`one_batch_metadata`), its record in meta.json updated (no pieces)."""
    import json

    from promlab.storage.blocks import INDEX_FILE, META_FILE
    from promlab.storage.checksum import file_record, json_checksum

    path = os.path.join(block_dir, INDEX_FILE)
    opts = pa.ipc.IpcWriteOptions(compression=compression)
    table = table.replace_schema_metadata(one_batch_metadata(block_dir, table.schema.metadata))
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema, options=opts) as w:
        w.write_table(table)
    with open(os.path.join(block_dir, META_FILE)) as f:
        meta = json.load(f)
    meta.pop("checksum")
    meta["files"][INDEX_FILE] = file_record(path)
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(block_dir, META_FILE), "w") as f:
        json.dump(meta, f)
