"""A block's recent samples (``recent.arrow``, format 8, issue 14): a selection at the end of a
block's data is answered from them alone, bit for bit as from the samples file; plain Arrow
readers read them; damage is found and a missing file falls back to the samples file."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.promql.engine import Engine
from promlab.storage import open_store, recent, recentwrite
from promlab.storage.blocks import META_FILE, RECENT_FILE, TAIL_FILE, Block
from promlab.storage.interface import SelectHints
from promlab.storage.verify import verify_store

from .conftest import HOUR, T0, assert_same

STALE = np.frombuffer(np.array([0x7FF0000000000002], np.uint64).tobytes(), np.float64)[0]
END = T0 + 4 * HOUR  # the block's range ends here; its data a little earlier


def _series() -> tuple[list[Labels], list[np.ndarray], list[np.ndarray]]:
    """Series of every kind of value the samples file encodes differently."""
    rng = np.random.default_rng(7)
    n = 4 * 240
    ts = T0 + np.arange(n, dtype=np.int64) * 15_000
    kinds: dict[str, np.ndarray] = {
        "counter": np.cumsum(rng.integers(0, 9, n)).astype(np.float64),
        "decimal": np.round(rng.normal(size=n) * 100, 2),
        "mixed_scales": np.where(np.arange(n) % 3 == 0, 0.5, 0.125) * np.arange(n),
        "float": rng.normal(size=n),
        "huge": (2.0 ** 60) + np.arange(n) * 2.0 ** 10,  # past 2**53: floats
        "big_steps": np.cumsum(rng.integers(-(1 << 40), 1 << 40, n)).astype(np.float64),
        "nan_inf": np.where(np.arange(n) % 7 == 0, math.nan,
                            np.where(np.arange(n) % 11 == 0, math.inf, 3.0)),
        "neg_zero": np.where(np.arange(n) % 5 == 0, -0.0, 1.0),
    }
    kinds["stale_end"] = kinds["counter"].copy()
    kinds["stale_end"][-3] = STALE
    labels, times, values = [], [], []
    for m, name in enumerate(("a_metric", "b_metric", "label:x", "series_id")):
        for k, (kind, vals) in enumerate(kinds.items()):
            ls = {"__name__": name, "kind": kind, "inst": f"i{k % 3}"}
            if k % 2:
                ls["series_id"] = "reserved-name"  # a label named like a column
            labels.append(Labels(ls))
            times.append(ts)
            with np.errstate(invalid="ignore"):
                v = vals + m
            if kind == "stale_end":
                v[-3] = STALE  # (the sum made it a quiet NaN)
            values.append(v)
    # Series that end before the window, start inside it, or have one sample in it.
    labels += [Labels({"__name__": "a_metric", "kind": "gone"}),
               Labels({"__name__": "a_metric", "kind": "new"}),
               Labels({"__name__": "b_metric", "kind": "one"})]
    times += [ts[:400], ts[-20:], ts[-1:]]
    values += [np.arange(400.0), np.arange(20.0), np.array([42.0])]
    return labels, times, values


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("recent"))
    labels, times, values = _series()
    idx = np.concatenate([np.full(t.shape[0], i) for i, t in enumerate(times)])
    with open_store(path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        app = st.appender()
        app.append_batch(labels, idx, np.concatenate(times), np.concatenate(values))
        app.commit()
        st.flush()
    return path


def _block_dir(path: str) -> str:
    (name,) = os.listdir(os.path.join(path, "blocks"))
    return os.path.join(path, "blocks", name)


def _meta(path: str) -> dict:
    with open(os.path.join(_block_dir(path), META_FILE)) as f:
        return json.load(f)


@pytest.fixture
def uses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The metrics whose recent samples were read (a spy on ``Block.recent_metric``)."""
    seen: list[str] = []
    real = Block.recent_metric

    def spy(self: Block, name: str, fname: str = RECENT_FILE) -> object:
        seen.append(name)
        return real(self, name, fname)

    monkeypatch.setattr(Block, "recent_metric", spy)
    yield seen


@pytest.fixture
def files_used(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The recent-samples files read, in order, each once (a spy on ``Block.recent_metric``)."""
    seen: list[str] = []
    real = Block.recent_metric

    def spy(self: Block, name: str, fname: str = RECENT_FILE) -> object:
        if fname not in seen:
            seen.append(fname)
        return real(self, name, fname)

    monkeypatch.setattr(Block, "recent_metric", spy)
    yield seen


def test_block_records_its_window(store_dir: str) -> None:
    meta = _meta(store_dir)
    rec = meta["files"][RECENT_FILE]
    assert meta["version"] == 9
    assert rec["mint"] == meta["maxt"] - recent.RECENT_MS
    assert meta["files"][TAIL_FILE]["mint"] == meta["maxt"] - recent.TAIL_MS
    assert len(rec["pieces"]) >= 3  # first piece, a batch, the footer
    # each batch's first metric: a reader finds a metric's batch before reading the file
    table = pa.ipc.open_file(os.path.join(_block_dir(store_dir), RECENT_FILE))
    groups = json.loads(table.schema.metadata[b"promlab.metric_batches"])
    assert rec["first_metrics"] == [g[0] for g in groups]
    for k, g in enumerate(groups, 1):
        assert all(recent.batch_of(rec["first_metrics"], name) == k for name in g)


SELECTIONS = [
    [Matcher(MatchType.EQUAL, "__name__", "a_metric")],
    [Matcher(MatchType.EQUAL, "__name__", "b_metric"), Matcher(MatchType.REGEX, "kind", "n.*|one")],
    [Matcher(MatchType.EQUAL, "__name__", "label:x"), Matcher(MatchType.NOT_EQUAL, "inst", "i1")],
    [Matcher(MatchType.EQUAL, "__name__", "series_id"),
     Matcher(MatchType.EQUAL, "series_id", "reserved-name")],
    [Matcher(MatchType.EQUAL, "__name__", "a_metric"), Matcher(MatchType.EQUAL, "kind", "gone")],
    [Matcher(MatchType.EQUAL, "__name__", "no_such_metric")],
]


@pytest.mark.parametrize("sel", range(len(SELECTIONS)))
@pytest.mark.parametrize("back_ms", [1, 60_000, 5 * 60_000, recent.TAIL_MS, recent.TAIL_MS + 1,
                                     recent.RECENT_MS])
def test_recent_answers_as_the_samples_file(store_dir: str, uses: list[str], sel: int,
                                            back_ms: int) -> None:
    matchers = SELECTIONS[sel]
    maxt = _meta(store_dir)["maxt"]
    for end in (maxt, maxt - 7_000, maxt + 60_000):
        hints = SelectHints(start_ms=end - back_ms, end_ms=end)
        if hints.start_ms < maxt - recent.RECENT_MS:
            continue
        with open_store(store_dir, readonly=True) as st:
            got = st.querier(hints.start_ms, end).select(matchers, hints)
        with open_store(store_dir, readonly=True) as st:
            for blk in st.blocks():
                blk.recent_missing = True  # as if the file were not there: the samples file
            want = st.querier(hints.start_ms, end).select(matchers, hints)
        assert_same(got, want)
    assert uses and set(uses) == {matchers[0].value}


def test_selection_reaching_before_the_window_reads_the_samples_file(
        store_dir: str, uses: list[str]) -> None:
    maxt = _meta(store_dir)["maxt"]
    with open_store(store_dir, readonly=True) as st:
        ss = st.querier(0, maxt).select([Matcher(MatchType.EQUAL, "__name__", "a_metric")],
                                        SelectHints(start_ms=maxt - recent.RECENT_MS - 1,
                                                    end_ms=maxt))
    assert not uses and ss.num_samples > 0


@pytest.mark.parametrize("expr", [
    "a_metric", 'rate(b_metric{kind=~"counter|decimal"}[5m])', "count by (kind) (a_metric)",
    "sum(series_id) / on () group_left count(a_metric)", 'avg_over_time({__name__="label:x"}[10m])',
    "timestamp(b_metric)"])
def test_queries_at_the_end_agree(store_dir: str, uses: list[str], expr: str) -> None:
    engine = Engine()
    maxt = _meta(store_dir)["maxt"]
    for at in (maxt, maxt - 30_000, maxt + 4 * 60_000):
        with open_store(store_dir, readonly=True) as st:
            got = engine.instant(st, expr, at).to_frame()
        with open_store(store_dir, readonly=True) as st:
            for blk in st.blocks():
                blk.recent_missing = True
            want = engine.instant(st, expr, at).to_frame()
        assert got.equals(want), (expr, at)
    assert uses


@pytest.mark.parametrize("back_ms", [1, recent.TAIL_MS, recent.TAIL_MS + 1, recent.RECENT_MS,
                                     recent.RECENT_MS + 1])
def test_the_narrowest_window_answers(store_dir: str, files_used: list[str],
                                      back_ms: int) -> None:
    maxt = _meta(store_dir)["maxt"]
    hints = SelectHints(start_ms=maxt - back_ms, end_ms=maxt)
    with open_store(store_dir, readonly=True) as st:
        st.querier(hints.start_ms, maxt).select(
            [Matcher(MatchType.EQUAL, "__name__", "b_metric")], hints)
    want = ([TAIL_FILE] if back_ms <= recent.TAIL_MS else
            [RECENT_FILE] if back_ms <= recent.RECENT_MS else [])
    assert files_used == want


@pytest.mark.parametrize("fname", [TAIL_FILE, RECENT_FILE])
def test_plain_arrow_readers_read_it(store_dir: str, fname: str) -> None:
    """The file as any Arrow reader sees it: one row per series with samples in the window,
    its times from ``mint``, its values as documented."""
    meta = _meta(store_dir)
    mint = meta["files"][fname]["mint"]
    table = pa.ipc.open_file(os.path.join(_block_dir(store_dir), fname)).read_all()
    colmap = json.loads(table.schema.metadata[b"promlab.label_columns"])
    assert colmap["label:series_id"] == "series_id"  # a label named like a column
    rows = table.to_pylist()
    labels, times, values = _series()
    want = {}
    for ls, t, v in zip(labels, times, values, strict=True):
        keep = t >= mint
        if keep.any():
            want[ls] = (t[keep], v[keep])
    assert len(rows) == len(want)
    for row in rows:
        ls = Labels({colmap[c]: row[c] for c in colmap if row[c] is not None})
        t, v = want[ls]
        assert (mint + row["recent_first_ts"] + np.cumsum(row["recent_ts"])).tolist() == t.tolist()
        if row["recent_scale"] >= 0:
            assert not row["recent_value"]
            vals = ((row["recent_first_int"] + np.cumsum(row["recent_int"]))
                    / 10.0 ** row["recent_scale"])
        else:
            assert not row["recent_int"]
            vals = np.array(row["recent_value"])
        assert np.array_equal(vals.view(np.int64), v.view(np.int64)), ls


def test_empty_block_writes_a_readable_file(tmp_path: os.PathLike[str]) -> None:
    from promlab.storage.writer import write_block

    os.makedirs(os.path.join(tmp_path, "blocks"))
    e = np.zeros(0, np.int64)
    meta = write_block(os.path.join(tmp_path, "blocks"), [], e, e, e, np.zeros(0),
                       start=T0, end=T0 + HOUR, seq=1)
    blk = Block(os.path.join(tmp_path, "blocks", meta.dirname))
    try:
        assert blk.recent_covers(T0) and blk.recent_metric("x") is None
    finally:
        blk.close()


def _copy(src: str, dst: str) -> str:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _back(fname: str) -> int:
    """How far back a selection reaches that the recent-samples file ``fname`` answers: a
    minute (tail.arrow), or past tail.arrow's window (recent.arrow)."""
    return 60_000 if fname == TAIL_FILE else recent.TAIL_MS + 60_000


@pytest.mark.parametrize("fname", [TAIL_FILE, RECENT_FILE])
def test_damaged_file_is_found(store_dir: str, tmp_path: os.PathLike[str], fname: str) -> None:
    path = _copy(store_dir, os.path.join(tmp_path, "s"))
    rec = _meta(path)["files"][fname]
    off, ln, _ = rec["pieces"][1]  # a metric batch
    with open(os.path.join(_block_dir(path), fname), "r+b") as f:
        f.seek(off + ln // 2)
        b = f.read(1)
        f.seek(off + ln // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    maxt = _meta(path)["maxt"]
    name = "a_metric"
    start = maxt - _back(fname)
    with open_store(path, readonly=True) as st, pytest.raises(StorageError, match="checksum"):
        st.querier(start, maxt).select([Matcher(MatchType.EQUAL, "__name__", name)],
                                       SelectHints(start_ms=start, end_ms=maxt))
    (report,) = verify_store(path)
    assert report.reason is not None and fname in report.reason


@pytest.mark.parametrize("gone", [(TAIL_FILE,), (RECENT_FILE,), (TAIL_FILE, RECENT_FILE)])
@pytest.mark.parametrize("back_ms", [60_000, recent.TAIL_MS + 60_000])
def test_missing_file_falls_back(store_dir: str, tmp_path: os.PathLike[str],
                                 files_used: list[str], gone: tuple[str, ...],
                                 back_ms: int) -> None:
    """Without a recent-samples file (a tool copied only some files), a selection is answered
    by a wider window still there, else by the samples file; the block is not damaged."""
    path = _copy(store_dir, os.path.join(tmp_path, "s"))
    for fname in gone:
        os.remove(os.path.join(_block_dir(path), fname))
    maxt = _meta(path)["maxt"]
    hints = SelectHints(start_ms=maxt - back_ms, end_ms=maxt)
    m = [Matcher(MatchType.EQUAL, "__name__", "a_metric")]
    with open_store(path, readonly=True) as st:
        got = st.querier(hints.start_ms, maxt).select(m, hints)
    reaches = [TAIL_FILE] if back_ms <= recent.TAIL_MS else []
    left = [f for f in (*reaches, RECENT_FILE) if f not in gone]
    assert files_used == left[:1]
    with open_store(store_dir, readonly=True) as st:
        want = st.querier(hints.start_ms, maxt).select(m, hints)
    assert_same(got, want)
    (report,) = verify_store(path)
    assert report.reason is None


def test_meta_without_the_window_start_is_refused(store_dir: str,
                                                  tmp_path: os.PathLike[str]) -> None:
    from promlab.storage.checksum import json_checksum

    path = _copy(store_dir, os.path.join(tmp_path, "s"))
    meta = _meta(path)
    del meta["files"][RECENT_FILE]["mint"]
    meta.pop("checksum")
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(_block_dir(path), META_FILE), "w") as f:
        json.dump(meta, f)
    with pytest.raises(StorageError, match="window start"):
        Block(_block_dir(path))


def test_compaction_keeps_the_newest_window(tmp_path: os.PathLike[str]) -> None:
    """Two 2-h blocks compacted into one: its recent samples are the newer block's end."""
    path = str(tmp_path)
    labels = [Labels({"__name__": "m", "i": str(i)}) for i in range(5)]
    ts = T0 + np.arange(960, dtype=np.int64) * 15_000
    with open_store(path, block_duration="2h", max_block_duration="24h", wal_fsync=False) as st:
        for part in (slice(0, 480), slice(480, 960)):
            app = st.appender()
            n = ts[part].shape[0]
            app.append_batch(labels, np.repeat(np.arange(5), n), np.tile(ts[part], 5),
                             np.tile(np.arange(float(n)), 5))
            app.commit()
            st.flush()
        st.compact()
        (blk,) = st.blocks()
        rec = blk.meta.files[RECENT_FILE]
        assert rec["mint"] == int(ts[-1]) - recent.RECENT_MS
        rm = blk.recent_metric("m")
        assert rm is not None and rm.ts.shape[0] == 5 * 61


def test_large_metrics_get_batches_of_their_own() -> None:
    names = ["a", "b", "c", "d", "e", "f"]
    sizes = [1000, 100, 100, 1000, 30, 10]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    got = recentwrite.recent_batches(bounds, names, min_series=256)
    assert [g for _, _, g in got] == [["a"], ["b", "c"], ["d"], ["e", "f"]]
    assert [(lo, hi) for lo, hi, _ in got] == [(0, 1000), (1000, 1200), (1200, 2200),
                                               (2200, 2240)]
    assert [g for _, _, g in recentwrite.recent_batches(bounds, names, min_series=150)] == [
        ["a"], ["b", "c"], ["d"], ["e", "f"]]
    assert [g for _, _, g in recentwrite.recent_batches(bounds, names, min_series=2000)] == [
        ["a", "b", "c", "d"], ["e", "f"]]
    firsts = [g[0] for _, _, g in got]  # meta.json's first_metrics
    assert [recent.batch_of(firsts, n) for n in ["", "a", "b", "bb", "c", "d", "e", "f", "z"]] == [
        None, 1, 2, 2, 2, 3, 4, 4, 4]


@pytest.mark.parametrize("fname", [TAIL_FILE, RECENT_FILE])
def test_pieces_that_do_not_tile_the_file_are_damage(store_dir: str, tmp_path: os.PathLike[str],
                                                     fname: str) -> None:
    from promlab.storage.checksum import json_checksum

    path = _copy(store_dir, os.path.join(tmp_path, "s"))
    meta = _meta(path)
    meta["files"][fname]["pieces"][1][1] -= 8  # a batch 8 bytes short
    meta.pop("checksum")
    meta["checksum"] = json_checksum(meta)
    with open(os.path.join(_block_dir(path), META_FILE), "w") as f:
        json.dump(meta, f)
    maxt = meta["maxt"]
    start = maxt - _back(fname)
    with open_store(path, readonly=True) as st, pytest.raises(StorageError, match="tile"):
        st.querier(start, maxt).select([Matcher(MatchType.EQUAL, "__name__", "a_metric")],
                                       SelectHints(start_ms=start, end_ms=maxt))


def _random_store(path: str, seed: int) -> int:
    """A block of random series (jittered times and gaps, every kind of value), its maxt."""
    rng = np.random.default_rng(seed)
    labels, times, values = [], [], []
    t0 = T0 + int(rng.integers(0, 3_600_000))
    for m in range(int(rng.integers(1, 6))):
        for i in range(int(rng.integers(1, 400))):
            n = int(rng.integers(1, 300))
            step = int(rng.choice([1_000, 15_000, 30_000, 60_000, 70_000]))
            gaps = np.cumsum(rng.integers(step - 50, step + 50, n))
            gaps[rng.random(n) < 0.02] += 600_000  # a pause
            t = t0 + gaps
            t = t[t < T0 + 4 * HOUR - 1]
            if not t.shape[0]:
                continue
            kind = int(rng.integers(0, 6))
            k = t.shape[0]
            if kind == 0:
                v = np.cumsum(rng.integers(0, 1 << int(rng.integers(1, 40)), k)).astype(float)
            elif kind == 1:
                v = np.round(rng.normal(size=k) * 10.0 ** int(rng.integers(0, 8)),
                             int(rng.integers(0, 7)))
            elif kind == 2:
                v = rng.normal(size=k)
            elif kind == 3:
                v = (2.0 ** 53) - rng.integers(0, 4, k).astype(float) * (1 + int(rng.integers(0, 2)))
            elif kind == 4:
                v = rng.choice([0.0, -0.0, 1.5, math.nan, math.inf, -math.inf], k)
            else:
                v = np.cumsum(rng.integers(-(1 << 31), 1 << 31, k)).astype(float) / 1000
            if rng.random() < 0.2:
                v[-1] = STALE
            labels.append(Labels({"__name__": f"m{m}", "i": str(i), "p": str(i % 7)}))
            times.append(t)
            values.append(v)
    return write_block(path, labels, times, values)


def write_block(path: str, labels: list[Labels], times: list[np.ndarray],
                values: list[np.ndarray]) -> int:
    """One 4-h block of series ``labels`` with samples ``times``/``values``; its maxt."""
    idx = np.concatenate([np.full(t.shape[0], i) for i, t in enumerate(times)])
    with open_store(path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        app = st.appender()
        app.append_batch(labels, idx, np.concatenate(times), np.concatenate(values))
        app.commit()
        st.flush()
        (blk,) = st.blocks()
        return blk.meta.maxt


@pytest.mark.parametrize("seed", range(6))
def test_random_blocks_answer_as_the_samples_file(tmp_path: os.PathLike[str], seed: int,
                                                  uses: list[str]) -> None:
    path = str(tmp_path)
    maxt = _random_store(path, seed)
    rng = np.random.default_rng(100 + seed)
    checks = 0
    for _ in range(12):
        name = f"m{int(rng.integers(0, 6))}"
        matchers = [Matcher(MatchType.EQUAL, "__name__", name)]
        if rng.random() < 0.5:
            matchers.append(Matcher(MatchType.REGEX, "p", f"[{int(rng.integers(0, 7))}-6]"))
        end = maxt - int(rng.integers(-120_000, recent.RECENT_MS))
        start = max(end - int(rng.integers(0, recent.RECENT_MS)), maxt - recent.RECENT_MS)
        hints = SelectHints(start_ms=start, end_ms=end)
        with open_store(path, readonly=True) as st:
            got = st.querier(start, end).select(matchers, hints)
        with open_store(path, readonly=True) as st:
            for blk in st.blocks():
                blk.recent_missing = True
            want = st.querier(start, end).select(matchers, hints)
        assert_same(got, want)
        checks += len(want)
    assert uses and checks
