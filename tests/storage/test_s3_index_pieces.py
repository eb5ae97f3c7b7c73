"""The series index read in pieces on object storage (format 7, issue 14), against moto's
S3-compatible server: a first query on one metric fetches ``series.arrow``'s first piece, its
footer and that metric's batch only (every read a ranged GET, counted by the store's own
:meth:`~promlab.storage.objectfs.ObjectStoreFS.object_counters`); a query over every metric
fetches the rest once; answers equal a local copy's; a damaged batch is damage only for the
reads that touch it.

The store holds 400 metrics x 20 series over one day, so its ``series.arrow`` is larger than
:data:`~promlab.storage.indexfile.WHOLE_INDEX_READ` with the default batch size: nothing here
is monkeypatched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.promql.engine import Engine, Result
from promlab.promql.results import result_to_json
from promlab.storage import ParquetStore, indexfile, open_store
from promlab.storage.blocks import INDEX_FILE, RECENT_FILE, SAMPLES_FILE, TAIL_FILE, Block
from promlab.storage.objectfs import TAIL_BYTES, ObjectStoreFS

from .conftest import HOUR, T0

pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

BUCKET = "promlab-index-pieces"
URL = f"s3://{BUCKET}/store"
METRICS, SERIES = 400, 20
STEP_MS = 300_000  # 5 min over a day: 24 one-hour chunks per series, as at 15 s
AT = T0 + 12 * HOUR - 1  # (not at the end: answered from recent.arrow, see the last test)
QUERIED = "m_0200"  # a batch in the middle of the file (not inside its last TAIL_BYTES)
OTHER = "m_0020"  # in another batch


def _labels() -> list[Labels]:
    return [Labels({"__name__": f"m_{m:04d}", "instance": f"h{i:02d}",
                    "job": "node" if i % 2 else "api"})
            for m in range(METRICS) for i in range(SERIES)]


def _write(path: str, **opts: Any) -> None:
    """The same day of samples (one 24-h block, 1-h buckets) into the store at ``path``."""
    labels = _labels()
    steps = 24 * HOUR // STEP_MS
    rng = np.random.default_rng(3)
    idx = np.repeat(np.arange(len(labels)), steps)
    ts = np.tile(T0 + np.arange(steps, dtype=np.int64) * STEP_MS, len(labels))
    vals = np.round(rng.random(idx.shape[0]) * 100, 1)
    with open_store(path, block_duration="24h", bucket_duration="1h", wal_fsync=False,
                    ooo_window=None, **opts) as st:
        app = st.appender()
        app.append_batch(labels, idx, ts, vals)
        app.commit()
        st.flush()


@pytest.fixture(scope="module")
def stores(moto_s3: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
           ) -> dict[str, Any]:
    """The store at ``URL`` and a local copy of the same samples (writers closed)."""
    s3fs.S3FileSystem(**moto_s3, skip_instance_cache=True).mkdir(BUCKET)
    local = str(tmp_path_factory.mktemp("local") / "data")
    _write(local)
    _write(URL, storage_options=moto_s3, local_dir=str(tmp_path_factory.mktemp("wal")))
    return {"local": local, "s3": moto_s3}


@pytest.fixture
def reader(stores: dict[str, Any], tmp_path: Path) -> Iterator[ParquetStore]:
    """The S3 store opened read-only, as on another machine (its own empty local directory)."""
    with open_store(URL, readonly=True, storage_options=stores["s3"],
                    local_dir=str(tmp_path / "ro")) as st:
        yield st


def _answers(res: Result) -> list[str]:
    """The result as the API writes it, series in a fixed order."""
    return sorted(json.dumps(r, sort_keys=True) for r in result_to_json(res)["result"])


def _local(stores: dict[str, Any], expr: str) -> list[str]:
    with open_store(stores["local"], readonly=True) as st:
        return _answers(Engine().instant(st, expr, AT))


def _index(st: ParquetStore) -> tuple[Block, ObjectStoreFS, str, dict[str, Any]]:
    """The store's one block, its filesystem, its series.arrow's path and meta.json record."""
    (blk,) = st.blocks()
    fs = st.fs
    assert isinstance(fs, ObjectStoreFS)
    return blk, fs, fs.join(blk.path, INDEX_FILE), blk.meta.files[INDEX_FILE]


def _union(ranges: list[tuple[int, int]]) -> int:
    """Bytes covered by the ``[lo, hi)`` ranges."""
    total, end = 0, 0
    for lo, hi in sorted(ranges):
        lo = max(lo, end)
        if hi > lo:
            total += hi - lo
            end = hi
    return total


def test_the_premise(reader: ParquetStore) -> None:
    """series.arrow is above the whole-read size and in many pieces, ``QUERIED``'s batch
    outside the tail fetched with the footer."""
    blk, _, _, rec = _index(reader)
    assert rec["size"] > indexfile.WHOLE_INDEX_READ
    batch = blk.indexed_metrics()
    assert batch is not None and len(rec["pieces"]) == max(batch.values()) + 2 >= 6
    off, _, _ = rec["pieces"][batch[QUERIED]]
    assert off + rec["pieces"][batch[QUERIED]][1] < rec["size"] - TAIL_BYTES
    assert batch[QUERIED] != batch[OTHER]


@pytest.mark.parametrize("expr", [
    pytest.param(QUERIED, id="raw"),
    pytest.param(f'{QUERIED}{{instance=~"h1."}}', id="label-regex"),
    pytest.param(f"rate({QUERIED}[15m])", id="rate"),
    pytest.param(f"sum by (job) ({QUERIED})", id="sum-by"),
])
def test_one_metric_fetches_first_piece_footer_and_its_batch(
        reader: ParquetStore, stores: dict[str, Any], expr: str) -> None:
    blk, fs, path, rec = _index(reader)
    assert fs.object_counters(path) == {"bytes_read": 0, "requests": 0}  # opening reads none
    got = Engine().instant(reader, expr, AT)
    assert not blk.index_loaded
    counted = fs.object_counters(path)
    pieces, size = rec["pieces"], int(rec["size"])
    batch = blk.indexed_metrics()
    assert batch is not None
    off, ln, _ = pieces[batch[QUERIED]]
    # The first piece, the footer (the piece meta.json records, not the file's last
    # TAIL_BYTES) and the metric's batch, each fetched once.
    want = _union([(0, int(pieces[0][1])), (int(pieces[-1][0]), size), (off, off + ln)])
    assert counted == {"bytes_read": want, "requests": 3}
    assert counted["bytes_read"] < size // 3
    assert _answers(got) == _local(stores, expr) and got.value is not None


def _rounds(log: list[tuple[str, int, int]]) -> list[list[tuple[int, int]]]:
    """The ranges of an object's reads grouped by round trip: the GETs started before the
    reader first needed one of them (prefetches) form one round; a plain GET is one."""
    rounds: list[list[tuple[int, int]]] = []
    batch: list[tuple[int, int]] = []
    for kind, lo, hi in log:
        if kind == "prefetch":
            batch.append((lo, hi))
        elif kind == "get":
            rounds.append([(lo, hi)])
        elif batch:  # the first wait on (or take of) a prefetch ends its round
            rounds.append(batch)
            batch = []
    return rounds + ([batch] if batch else [])


def test_first_touch_round_trips(reader: ParquetStore) -> None:
    """What a first query on one metric waits for on S3, in order: the index's first piece and
    footer together, the metric's batch, then the samples' row groups and their footer
    pieces together (no read of a file's last TAIL_BYTES); opening made no request."""
    blk, fs, path, rec = _index(reader)
    samples = fs.join(blk.path, "samples.parquet")
    assert fs.object_log(path) == [] and fs.object_log(samples) == []
    Engine().instant(reader, QUERIED, AT)
    pieces = rec["pieces"]
    batch = blk.indexed_metrics()
    assert batch is not None
    off, ln, _ = pieces[batch[QUERIED]]
    assert _rounds(fs.object_log(path)) == [
        [(0, int(pieces[0][1])), (int(pieces[-1][0]), int(rec["size"]))],
        [(off, off + ln)]]
    (rnd,) = _rounds(fs.object_log(samples))
    srec = blk.meta.files["samples.parquet"]
    rg_spans = {(int(o), int(o) + int(n)) for o, n, _ in srec["row_groups"]}
    assert len(rnd) >= 2 and rnd[0] in rg_spans  # the row group(s), then footer pieces
    assert all(hi <= int(srec["size"]) - 8 for _, hi in rnd)  # not the length and magic
    assert all(hi - lo < TAIL_BYTES for lo, hi in rnd if (lo, hi) not in rg_spans)


@pytest.mark.parametrize("first", [None, QUERIED], ids=["cold", "after-one-metric"])
def test_every_metric_reads_the_whole_file_once(reader: ParquetStore, stores: dict[str, Any],
                                                first: str | None) -> None:
    blk, fs, path, rec = _index(reader)
    if first is not None:
        Engine().instant(reader, first, AT)
        assert fs.object_counters(path)["bytes_read"] < int(rec["size"]) // 3
    expr = 'count by (job) ({__name__=~"m_.+"})'
    got = Engine().instant(reader, expr, AT)
    assert blk.index_loaded
    # The pieces read before are not fetched again: the whole file, no byte twice.
    assert fs.object_counters(path)["bytes_read"] == int(rec["size"])
    want = _local(stores, expr)
    assert _answers(got) == want and len(want) == 2
    raw = '{__name__=~"m_01.."}'
    assert _answers(Engine().instant(reader, raw, AT)) == _local(stores, raw)


def test_damaged_batch_is_damage_only_when_read(stores: dict[str, Any], tmp_path: Path) -> None:
    """A flipped byte in ``OTHER``'s batch on S3: a query on ``QUERIED`` answers as the local
    copy and marks nothing; a read of ``OTHER`` reports the batch's checksum mismatch and the
    block damaged (skipped, with a warning, from then on); so does a read of every metric."""
    s3 = s3fs.S3FileSystem(**stores["s3"], skip_instance_cache=True)
    with open_store(URL, readonly=True, storage_options=stores["s3"],
                    local_dir=str(tmp_path / "a")) as st:
        blk, _, path, rec = _index(st)
        batch = blk.indexed_metrics()
        assert batch is not None
        k = batch[OTHER]
    key = path  # s3fs takes the URL as the store writes it
    good = s3.cat_file(key)
    off, ln, _ = rec["pieces"][k]
    bad = bytearray(good)
    bad[off + ln // 2] ^= 0xFF
    s3.pipe_file(key, bytes(bad))
    try:
        with open_store(URL, readonly=True, storage_options=stores["s3"],
                        local_dir=str(tmp_path / "b")) as st:
            (blk,) = st.blocks()
            got = Engine().instant(st, QUERIED, AT)
            assert _answers(got) == _local(stores, QUERIED) and blk.damaged is None
            with pytest.raises(StorageError, match=f"checksum mismatch in record batch {k}"):
                st.querier(T0, AT).select([Matcher(MatchType.EQUAL, "__name__", OTHER)])
            assert blk.damaged is not None and f"record batch {k}" in blk.damaged
            q = st.querier(T0, AT)
            assert any("damaged block skipped" in w and f"record batch {k}" in w
                       for w in q.warnings)
        with open_store(URL, readonly=True, storage_options=stores["s3"],
                        local_dir=str(tmp_path / "c")) as st, \
                pytest.raises(StorageError, match="checksum mismatch"):
            st.querier(T0, AT).select([Matcher(MatchType.REGEX, "__name__", "m_.+")])
    finally:
        s3.pipe_file(key, good)


@pytest.mark.parametrize(("window", "fname"), [("10m", TAIL_FILE), ("14m", RECENT_FILE)])
def test_query_at_the_end_fetches_the_recent_samples_only(reader: ParquetStore,
                                                          stores: dict[str, Any], window: str,
                                                          fname: str) -> None:
    """A first query at the end of the data (format 8, 9): the first piece of the narrowest
    recent-samples file that reaches back far enough and its metric's batch (found from
    meta.json) in one round trip of two GETs, not its footer; nothing of the series index,
    the samples or the other file."""
    blk, fs, index, _ = _index(reader)
    at = T0 + 24 * HOUR - 1
    rec = blk.meta.files[fname]
    path = fs.join(blk.path, fname)
    expr = f"rate({QUERIED}[{window}])"
    got = Engine().instant(reader, expr, at)
    with open_store(stores["local"], readonly=True) as st:
        want = _answers(Engine().instant(st, expr, at))
    other = TAIL_FILE if fname == RECENT_FILE else RECENT_FILE
    assert fs.object_log(fs.join(blk.path, other)) == []
    assert _answers(got) == want and got.value is not None and len(want) == SERIES
    assert fs.object_log(index) == [] and fs.object_log(fs.join(blk.path, SAMPLES_FILE)) == []
    pieces = rec["pieces"]
    (both,) = _rounds(fs.object_log(path))
    assert both[0] == (0, int(pieces[0][1])) and len(both) == 2
    assert any(both[1] == (o, o + n) for o, n, _ in pieces[1:-1])
    assert fs.object_counters(path)["requests"] == 2
