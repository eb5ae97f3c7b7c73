"""A first query on one metric reads that metric's batch of the series index only
(``Block.metric_part``, issue 14): same answers as with the whole index, damage found through
a part marks its block, and blocks written with one batch still read whole."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest

from promlab.errors import StorageError
from promlab.model import Matcher, MatchType
from promlab.promql.engine import Engine, Result
from promlab.promql.results import result_to_json
from promlab.storage import MemoryStorage, indexfile, open_store, seriesindex
from promlab.storage.blocks import INDEX_FILE, META_FILE, SAMPLES_FILE
from promlab.storage.checksum import json_checksum
from promlab.storage.seriesindex import METRIC_BATCHES_KEY

from .conftest import HOUR, T0, assert_same, four_hour_block, write_one_batch_index

QUERIES = [
    "metric_0",
    'metric_1{instance=~"h1.*"}',
    "rate(metric_0[5m])",
    "sum by (job) (metric_2)",
    'max_over_time(metric_1{instance!="h4"}[1h])',
    "count(metric_0 > 0)",
    "metric_0 / on (job) group_left sum by (job) (metric_1)",
    "absent(metric_9)",
]
TIMES = [T0 + 30 * 60_000, T0 + 2 * HOUR + 7_000, T0 + 4 * HOUR - 1]


def _block_dir(path: str) -> str:
    (name,) = os.listdir(os.path.join(path, "blocks"))
    return os.path.join(path, "blocks", name)


def _written(path: str, min_series: int, monkeypatch: pytest.MonkeyPatch) -> MemoryStorage:
    """The 4-h block of 30 series (3 metrics) at ``path``, its series index in batches of at
    least ``min_series`` series."""
    monkeypatch.setattr(seriesindex, "MIN_BATCH_SERIES", min_series)
    mem = four_hour_block(path)
    with open(os.path.join(_block_dir(path), META_FILE)) as f:
        pieces = json.load(f)["files"][INDEX_FILE]["pieces"]
    assert len(pieces) == (5 if min_series == 1 else 3)  # first, batches, footer
    return mem


@pytest.fixture(params=[1, seriesindex.MIN_BATCH_SERIES],
                ids=["batch-per-metric", "metrics-share-a-batch"])
def store_dir(request: pytest.FixtureRequest, tmp_path: os.PathLike[str],
              monkeypatch: pytest.MonkeyPatch) -> tuple[str, MemoryStorage]:
    """The block with one batch per metric, or all three metrics in one batch."""
    return str(tmp_path), _written(str(tmp_path), request.param, monkeypatch)


@pytest.fixture
def per_metric(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
               ) -> tuple[str, MemoryStorage]:
    """The block with one batch per metric."""
    return str(tmp_path), _written(str(tmp_path), 1, monkeypatch)


def _answers(res: Result) -> list[str]:
    """The result as the API writes it, series in a fixed order."""
    data = result_to_json(res)
    return sorted(json.dumps(r, sort_keys=True) for r in data["result"])


@pytest.mark.parametrize("expr", QUERIES)
@pytest.mark.parametrize("at", TIMES, ids=["first-bucket", "mid", "last-ms"])
def test_first_query_reads_its_metric_part_and_agrees(store_dir: tuple[str, MemoryStorage],
                                                      expr: str, at: int) -> None:
    path, mem = store_dir
    engine = Engine()
    with open_store(path, readonly=True) as st:
        got = engine.instant(st, expr, at)
        (blk,) = st.blocks()
        assert not blk.index_loaded  # the metrics' batches only
    want = engine.instant(mem, expr, at)
    assert _answers(got) == _answers(want)


def test_range_query_over_parts_agrees(store_dir: tuple[str, MemoryStorage]) -> None:
    path, mem = store_dir
    expr = "rate(metric_1[10m]) + on (job) group_left sum by (job) (metric_0)"
    with open_store(path, readonly=True) as st:
        got = Engine().range(st, expr, T0 + 600_000, T0 + 4 * HOUR, 60_000)
        assert not st.blocks()[0].index_loaded
    want = Engine().range(mem, expr, T0 + 600_000, T0 + 4 * HOUR, 60_000)
    assert _answers(got) == _answers(want) and len(_answers(got)) == 10


def test_parts_then_whole_index(store_dir: tuple[str, MemoryStorage]) -> None:
    path, mem = store_dir
    every = [Matcher(MatchType.REGEX, "__name__", "metric_.*")]
    with open_store(path, readonly=True) as st:
        (blk,) = st.blocks()
        part = blk.metric_part("metric_0")
        assert part is not None and part is not blk and part.index().n == 10 * 4
        assert blk.metric_part("metric_0") is part  # made once
        assert blk.metric_part("nope") is None
        assert blk.metric_names([Matcher(MatchType.EQUAL, "__name__", "nope")], 0, 1 << 62) == []
        assert not blk.index_loaded
        part.close()  # a part never closes its block's files
        q = st.querier(T0, T0 + 4 * HOUR)
        assert_same(q.select([Matcher(MatchType.EQUAL, "__name__", "metric_0")]),
                    mem.querier(T0, T0 + 4 * HOUR).select(
                        [Matcher(MatchType.EQUAL, "__name__", "metric_0")]))
        # A regex on the name needs every metric: the whole index is loaded ...
        assert_same(q.select(every), mem.querier(T0, T0 + 4 * HOUR).select(every))
        assert blk.index_loaded
        # ... and answers from then on.
        assert blk.metric_part("metric_1") is blk


def test_damage_found_through_a_part_marks_the_block(store_dir: tuple[str, MemoryStorage]
                                                     ) -> None:
    path, _ = store_dir
    samples = os.path.join(_block_dir(path), SAMPLES_FILE)
    size = os.path.getsize(samples)
    with open(samples, "r+b") as f:  # a byte in the first row groups (the first metric's)
        f.seek(size // 10)
        b = f.read(1)
        f.seek(size // 10)
        f.write(bytes([b[0] ^ 0xFF]))
    with open_store(path, readonly=True) as st:
        (blk,) = st.blocks()
        with pytest.raises(StorageError, match=r"(?i)checksum"):
            st.querier(T0, T0 + 4 * HOUR).select([Matcher(MatchType.EQUAL, "__name__", "metric_0")])
        assert blk.damaged is not None and "checksum" in blk.damaged.lower()


def test_single_batch_index_reads_whole(store_dir: tuple[str, MemoryStorage]) -> None:
    """A series.arrow from before per-metric batches (one batch, no batch names) is read whole."""
    path, mem = store_dir
    block = _block_dir(path)
    index = os.path.join(block, INDEX_FILE)
    table = pa.ipc.open_file(index).read_all().combine_chunks()
    md = dict(table.schema.metadata)
    assert [n for g in json.loads(md[METRIC_BATCHES_KEY]) for n in g] == [
        "metric_0", "metric_1", "metric_2"]
    write_one_batch_index(block, table, "lz4")
    with open_store(path, readonly=True) as st:
        (blk,) = st.blocks()
        assert blk.indexed_metrics() is None
        got = Engine().instant(st, "metric_1", TIMES[1])
        assert blk.index_loaded
    assert _answers(got) == _answers(Engine().instant(mem, "metric_1", TIMES[1]))


def _flip(path: str, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


@pytest.mark.parametrize("whole_read", [0, 1 << 20], ids=["pieces-read", "small-file-read-whole"])
def test_a_part_reads_and_checks_its_own_batch_only(per_metric: tuple[str, MemoryStorage],
                                                    whole_read: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """meta.json records each record batch's CRC: a query on metric_0 reads (and checks) its
    batch, the first piece and the footer; damage in metric_2's batch is found by a read of
    metric_2, or of the whole index, not by metric_0's. A file up to ``WHOLE_INDEX_READ``
    bytes is read whole in one read, its pieces checked as they are used: the same."""
    monkeypatch.setattr(indexfile, "WHOLE_INDEX_READ", whole_read)
    path, mem = per_metric
    block = _block_dir(path)
    with open(os.path.join(block, META_FILE)) as f:
        pieces = json.load(f)["files"][INDEX_FILE]["pieces"]
    assert len(pieces) == 5  # first piece, three metrics' batches, footer
    off, ln, _ = pieces[3]  # metric_2's batch
    _flip(os.path.join(block, INDEX_FILE), off + ln // 2)
    at = TIMES[1]
    with open_store(path, readonly=True) as st:
        got = Engine().instant(st, "metric_0", at)
        assert _answers(got) == _answers(Engine().instant(mem, "metric_0", at))
        (blk,) = st.blocks()
        assert blk.damaged is None
        with pytest.raises(StorageError, match="checksum mismatch in record batch 3"):
            st.querier(T0, at).select([Matcher(MatchType.EQUAL, "__name__", "metric_2")])
        assert blk.damaged is not None
    with open_store(path, readonly=True) as st, pytest.raises(StorageError, match="checksum"):
        st.querier(T0, at).select([Matcher(MatchType.REGEX, "__name__", "metric_.*")])


@pytest.mark.parametrize("pieces", [
    None,  # not recorded: the whole file is read and checked
    [[0, 10, 0]],  # one piece only
    "gap",  # pieces that do not tile the file
], ids=["absent", "one-piece", "gap"])
def test_unusable_piece_records_read_the_whole_file(store_dir: tuple[str, MemoryStorage],
                                                    pieces: object) -> None:
    path, mem = store_dir
    block = _block_dir(path)
    with open(os.path.join(block, META_FILE)) as f:
        meta = json.load(f)
    rec = meta["files"][INDEX_FILE]
    if pieces is None:
        rec.pop("pieces")
    elif pieces == "gap":
        rec["pieces"][1][1] -= 1
    else:
        rec["pieces"] = pieces
    meta.pop("checksum")
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(block, META_FILE), "w") as f:
        json.dump(meta, f)
    with open_store(path, readonly=True) as st:
        got = Engine().instant(st, "metric_1", TIMES[2])
    assert _answers(got) == _answers(Engine().instant(mem, "metric_1", TIMES[2]))
