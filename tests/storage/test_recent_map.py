"""recent.arrow's buffer map (promlab.storage.recentmap): a metric's columns taken straight out
of a checked piece of the file, decoding exactly what Arrow's IPC reader decodes."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store, recent
from promlab.storage.blocks import META_FILE, RECENT_FILE, TAIL_FILE, Block
from promlab.storage.checksum import json_checksum
from promlab.storage.interface import SelectHints

from .conftest import T0, assert_same
from .test_recent import _random_store, write_block


def _block_dir(path: str) -> str:
    (name,) = os.listdir(os.path.join(path, "blocks"))
    return os.path.join(path, "blocks", name)


def _rec(path: str, fname: str = RECENT_FILE) -> dict[str, Any]:
    with open(os.path.join(_block_dir(path), META_FILE)) as f:
        return json.load(f)["files"][fname]  # type: ignore[no-any-return]


def _start(maxt: int, fname: str) -> int:
    """A selection's start that the recent-samples file ``fname`` answers: five minutes back
    (tail.arrow), or before tail.arrow's window (recent.arrow)."""
    return maxt - (300_000 if fname == TAIL_FILE else recent.TAIL_MS + 120_000)


def _rewrite_meta(path: str, change: Any, fname: str = RECENT_FILE) -> None:
    where = os.path.join(_block_dir(path), META_FILE)
    with open(where) as f:
        meta = json.load(f)
    change(meta["files"][fname])
    meta.pop("checksum")
    meta["checksum"] = json_checksum(meta)
    with open(where, "w") as f:
        json.dump(meta, f)


def _both(path: str) -> tuple[recent.MappedRecentFile, recent.RecentFile]:
    rec = _rec(path)
    where = os.path.join(_block_dir(path), RECENT_FILE)
    plain = {k: v for k, v in rec.items() if k != "buffers"}
    return (recent.MappedRecentFile(pa.memory_map(where), where, rec),
            recent.RecentFile(pa.memory_map(where), where, plain))


def _assert_same_metric(a: recent.RecentMetric | None, b: recent.RecentMetric | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    for field in ("sids", "offsets", "ts", "first_ts", "scales", "ioff", "ints", "first_int",
                  "foff", "floats"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype, field
        assert x.tobytes() == y.tobytes(), field  # (bit for bit: NaN payloads, -0)
    assert (a.ioff is a.offsets) == (b.ioff is b.offsets)
    assert sorted(a.index.columns) == sorted(b.index.columns)
    assert a.index.labels_of(None) == b.index.labels_of(None)
    for lname, col in a.index.columns.items():
        other = b.index.columns[lname]
        assert col.codes.tolist() == other.codes.tolist()
        assert col.uniques == other.uniques


@pytest.mark.parametrize("seed", range(8))
def test_map_decodes_as_the_ipc_reader(tmp_path: os.PathLike[str], seed: int) -> None:
    path = str(tmp_path)
    _random_store(path, seed)
    mapped, plain = _both(path)
    try:
        # Every metric (alone in its batch or sharing one), and names that are not there:
        # before the first, between two, after the last.
        for name in [*(f"m{i}" for i in range(6)), "a", "m0a", "m3_", "zzz"]:
            _assert_same_metric(mapped.metric(name), plain.metric(name))
    finally:
        mapped.close()
        plain.close()


def _labelled_store(path: str) -> int:
    """Metrics alone in a batch and sharing one, with labels only some series have and
    values that are not ASCII."""
    labels, times, values = [], [], []
    ts = T0 + np.arange(480, dtype=np.int64) * 15_000
    for i in range(300):  # alone in its batch (256 series or more)
        ls = {"__name__": "big", "i": str(i)}
        if i % 3 == 0:
            ls["zone"] = "zürich" if i % 2 else "東京"
        labels.append(Labels(ls))
    for i in range(5):
        labels.append(Labels({"__name__": "small_a", "x": f"ä{i}"}))
        labels.append(Labels({"__name__": "small_b", "y": "v" * (i + 1)}))
    for k in range(len(labels)):
        times.append(ts)
        values.append(np.arange(480.0) * (k + 1) / 4)
    return write_block(path, labels, times, values)


def test_labels_not_every_series_has_and_utf8_values(tmp_path: os.PathLike[str]) -> None:
    path = str(tmp_path)
    _labelled_store(path)
    rec = _rec(path)
    assert len(rec["buffers"]["batches"]) == 2  # big alone, the small ones together
    mapped, plain = _both(path)
    try:
        for name in ("big", "small_a", "small_b", "small", "small_c"):
            _assert_same_metric(mapped.metric(name), plain.metric(name))
        big = mapped.metric("big")
        assert big is not None
        zones = big.index.columns["zone"]
        assert set(zones.uniques) >= {"zürich", "東京"}
        assert int((zones.codes < 0).sum()) == 200
        small = mapped.metric("small_a")
        assert small is not None and sorted(small.index.columns) == ["__name__", "x"]
    finally:
        mapped.close()
        plain.close()


@pytest.mark.parametrize("fname", [TAIL_FILE, RECENT_FILE])
def test_queries_take_the_map(tmp_path: os.PathLike[str], fname: str) -> None:
    path = str(tmp_path)
    maxt = _labelled_store(path)
    hints = SelectHints(start_ms=_start(maxt, fname), end_ms=maxt)
    m = [Matcher(MatchType.EQUAL, "__name__", "big"), Matcher(MatchType.EQUAL, "zone", "東京")]
    with open_store(path, readonly=True) as st:
        got = st.querier(hints.start_ms, maxt).select(m, hints)
        (blk,) = st.blocks()
        assert list(blk._recent) == [fname]  # the narrowest window that reaches back enough
        assert isinstance(blk._recent[fname], recent.MappedRecentFile)
    with open_store(path, readonly=True) as st:
        for blk in st.blocks():
            blk.recent_missing = True
        want = st.querier(hints.start_ms, maxt).select(m, hints)
    assert len(want) == 50
    assert_same(got, want)


@pytest.mark.parametrize("fname", [TAIL_FILE, RECENT_FILE])
def test_blocks_without_a_map_are_read_by_arrow(tmp_path: os.PathLike[str], fname: str) -> None:
    """A format-8 block written before the map (no ``buffers`` in meta.json)."""
    path = str(tmp_path)
    maxt = _labelled_store(path)
    hints = SelectHints(start_ms=_start(maxt, fname), end_ms=maxt)
    m = [Matcher(MatchType.EQUAL, "__name__", "small_b")]
    with open_store(path, readonly=True) as st:
        want = st.querier(hints.start_ms, maxt).select(m, hints)
    _rewrite_meta(path, lambda rec: rec.pop("buffers"), fname)
    with open_store(path, readonly=True) as st:
        got = st.querier(hints.start_ms, maxt).select(m, hints)
        (blk,) = st.blocks()
        assert type(blk._recent[fname]) is recent.RecentFile
    assert len(got) == 5
    assert_same(got, want)


@pytest.mark.parametrize("fname", [TAIL_FILE, RECENT_FILE])
@pytest.mark.parametrize(("damage", "says"), [
    ("outside", "outside its piece"), ("negative", "outside its piece"),
    ("past_dictionary", "past its dictionary"), ("shape", "bad buffer map")])
def test_a_bad_map_is_damage(tmp_path: os.PathLike[str], damage: str, says: str,
                             fname: str) -> None:
    path = str(tmp_path)
    maxt = _labelled_store(path)

    def change(rec: dict[str, Any]) -> None:
        bmap = rec["buffers"]
        if damage == "outside":  # the ts values of the big batch moved past its piece
            bmap["batches"][0][-5] = rec["pieces"][2][0]
        elif damage == "negative":
            bmap["batches"][0][3] = -8
        elif damage == "past_dictionary":  # the "i" codes read from the series ids
            at = {lname: k for k, (_, lname) in enumerate(bmap["labels"])}["i"]
            bmap["batches"][0][3 + 2 * at] = bmap["batches"][0][2 + 2 * len(bmap["labels"])]
        else:
            bmap["batches"][0].pop()

    _rewrite_meta(path, change, fname)
    hints = SelectHints(start_ms=_start(maxt, fname), end_ms=maxt)
    m = [Matcher(MatchType.EQUAL, "__name__", "big")]
    with open_store(path, readonly=True) as st, pytest.raises(StorageError, match=says):
        st.querier(hints.start_ms, maxt).select(m, hints)


def test_map_records_offsets_inside_their_pieces(tmp_path: os.PathLike[str]) -> None:
    path = str(tmp_path)
    _random_store(path, 3)
    rec = _rec(path)
    bmap = rec["buffers"]
    pieces = rec["pieces"]
    for k, row in enumerate(bmap["batches"], 1):
        lo, hi = pieces[k][0], pieces[k][0] + pieces[k][1]
        assert all(x == -1 or lo <= x < hi or x == lo for x in row[2:])
    for _count, off_at, data_at in bmap["dicts"]:
        assert 0 <= off_at < pieces[0][1] and 0 <= data_at <= pieces[0][1]
    assert Block(_block_dir(path)).recent_covers(rec["mint"])


def test_one_sample_block(tmp_path: os.PathLike[str]) -> None:
    path = str(tmp_path)
    with open_store(path, block_duration="2h", wal_fsync=False) as st:
        app = st.appender()
        app.append(Labels({"__name__": "m"}), T0, 1.0)
        app.commit()
        st.flush()
    rec = _rec(path)
    assert rec["buffers"]["batches"] and rec["buffers"]["labels"]
    mapped, plain = _both(path)
    try:
        _assert_same_metric(mapped.metric("m"), plain.metric("m"))
        assert mapped.metric("n") is None
    finally:
        mapped.close()
        plain.close()
