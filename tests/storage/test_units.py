"""Unit tests of the storage building blocks: encoding, postings, merging, WAL records."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from promlab.model import STALE_NAN, Labels, Matcher
from promlab.storage.encoding import decimal_scales, decode_values, encode_values
from promlab.storage.merge import merge_parts, runs_order, sort_dedup
from promlab.storage.postings import LabelIndex
from promlab.storage.wal import (
    MAGIC,
    SamplesRecord,
    SeriesRecord,
    WalFollower,
    WalWriter,
    decode,
    encode_samples,
    encode_series,
)


def _bits(a: np.ndarray) -> list[int]:
    return np.asarray(a, np.float64).view(np.int64).tolist()


@pytest.mark.parametrize(("values", "scale"), [
    pytest.param([1.0, 2.0, 3.0], 0, id="integers"),
    pytest.param([0.5, 1.25, -3.0], 2, id="two-decimals"),
    pytest.param([0.1, 0.2, 0.3], 1, id="tenths"),
    pytest.param([1e-7], -1, id="too-many-decimals"),
    pytest.param([1e300], -1, id="too-big"),
    pytest.param([1.0, np.nan, STALE_NAN, np.inf, -0.0], 0, id="specials-dont-disqualify"),
    pytest.param([np.nan], 0, id="all-special"),
    pytest.param([0.1 + 0.2], -1, id="not-a-short-decimal"),
])
def test_decimal_scale(values: list[float], scale: int) -> None:
    v = np.array(values)
    got = decimal_scales(v, np.array([0]), np.array([len(v)]))
    assert got.tolist() == [scale]
    col, icol = encode_values(v, np.repeat(got, len(v)))
    back = decode_values(pa.chunked_array([col]), pa.chunked_array([icol]),
                         pa.chunked_array([pa.array(np.repeat(got, len(v)))]))
    assert _bits(back) == _bits(v)


def test_decimal_scales_per_series_and_random_roundtrip() -> None:
    rng = np.random.default_rng(0)
    a = np.round(rng.normal(size=1000) * 100, 2)
    b = rng.normal(size=1000)
    c = np.cumsum(rng.integers(0, 50, 1000)).astype(float)
    v = np.concatenate([a, b, c])
    scales = decimal_scales(v, np.array([0, 1000, 2000]), np.array([1000, 1000, 1000]))
    assert scales.tolist()[0] <= 2 and scales.tolist()[1:] == [-1, 0]
    rs = np.repeat(scales, 1000)
    col, icol = encode_values(v, rs)
    back = decode_values(pa.chunked_array([col]), pa.chunked_array([icol]),
                         pa.chunked_array([pa.array(rs)]))
    assert _bits(back) == _bits(v)


SERIES = [Labels({"__name__": "a", "job": "x"}), Labels({"__name__": "a", "job": "y", "le": "1"}),
          Labels({"__name__": "b"})]


@pytest.mark.parametrize(("matchers", "want"), [
    pytest.param([("=", "__name__", "a")], [0, 1], id="eq"),
    pytest.param([("!=", "job", "x")], [1, 2], id="neq-includes-absent"),
    pytest.param([("=~", "job", "x|y")], [0, 1], id="regex"),
    pytest.param([("!~", "job", "x")], [1, 2], id="nregex"),
    pytest.param([("=", "le", "")], [0, 2], id="empty-means-absent"),
    pytest.param([("=", "missing", "")], [0, 1, 2], id="unknown-name-empty"),
    pytest.param([("=", "missing", "v")], [], id="unknown-name-value"),
    pytest.param([("=", "__name__", "a"), ("=~", "job", "y")], [1], id="and"),
])
def test_label_index(matchers: list[tuple[str, str, str]], want: list[int]) -> None:
    idx = LabelIndex.from_labels(SERIES)
    ms = [Matcher.parse_op(*m) for m in matchers]
    assert np.flatnonzero(idx.match(ms)).tolist() == want
    assert [i for i, ls in enumerate(SERIES) if all(m.matches_labels(ls) for m in ms)] == want
    assert [idx.labels_at(i) for i in range(3)] == SERIES
    assert idx.values("job") == ["x", "y"] and idx.names() == ["__name__", "job", "le"]


def test_sort_dedup_last_write_wins() -> None:
    g = np.array([1, 0, 1, 0, 1], np.int64)
    t = np.array([5, 3, 5, 1, 2], np.int64)
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    gg, tt, vv = sort_dedup(g, t, v)
    assert gg.tolist() == [0, 0, 1, 1] and tt.tolist() == [1, 3, 2, 5]
    assert vv.tolist() == [4.0, 2.0, 5.0, 3.0]


def test_runs_order_and_merge_parts() -> None:
    keys = np.array([2, 2, 0, 1, 1, 1], np.int64)
    perm = runs_order(keys)
    assert perm is not None and keys[perm].tolist() == [0, 1, 1, 1, 2, 2]
    assert perm.tolist() == [2, 3, 4, 5, 0, 1]
    assert runs_order(np.array([0, 0, 1], np.int64)) is None
    p1 = (np.array([1, 0]), np.array([10, 10]), np.array([1.0, 2.0]))
    p2 = (np.array([0, 1]), np.array([20, 20]), np.array([3.0, 4.0]))
    k, t, v = merge_parts([p2, p1])  # disjoint: time order, whatever the write order
    assert k.tolist() == [0, 0, 1, 1] and t.tolist() == [10, 20, 10, 20]
    p3 = (np.array([0]), np.array([10]), np.array([9.0]))
    k, t, v = merge_parts([p1, p2, p3])  # overlapping: later part wins
    assert v.tolist() == [9.0, 3.0, 1.0, 4.0]


def test_wal_records_roundtrip_and_torn_tail() -> None:
    ls = Labels({"__name__": "x", "a": "ü\n\""})
    rec1 = encode_series([(ls.hash, ls)])
    vals = np.array([1.5, STALE_NAN, np.nan])
    rec2 = encode_samples(np.array([ls.hash] * 3), np.array([1, 2, 3]), vals)
    recs, used, torn = decode(rec1 + rec2)
    assert not torn and used == len(rec1) + len(rec2)
    assert isinstance(recs[0], SeriesRecord) and recs[0].series == [(ls.hash, ls)]
    assert isinstance(recs[1], SamplesRecord) and _bits(recs[1].values) == _bits(vals)
    for cut in range(1, len(rec2)):
        recs, used, torn = decode(rec1 + rec2[:cut])
        assert torn and used == len(rec1) and len(recs) == 1
    flipped = bytearray(rec1 + rec2)
    flipped[-1] ^= 0xFF
    recs, used, torn = decode(bytes(flipped))
    assert torn and len(recs) == 1


def test_wal_follower_repairs_and_tails(tmp_path: os.PathLike[str]) -> None:
    wal_dir = os.path.join(tmp_path, "wal")
    w = WalWriter(wal_dir, start_segment=0, fsync=False, segment_bytes=200)
    ls = Labels({"__name__": "x"})
    w.log(encode_series([(ls.hash, ls)]))
    follower = WalFollower(wal_dir)
    reset, recs = follower.poll()
    assert reset and len(recs) == 1
    for i in range(5):  # small segments: rotates
        w.log(encode_samples(np.array([ls.hash]), np.array([i]), np.array([float(i)])))
    reset, recs = follower.poll()
    assert not reset and [int(r.ts_ms[0]) for r in recs if isinstance(r, SamplesRecord)] == list(range(5))
    assert len([n for n in os.listdir(wal_dir) if n.isdigit()]) > 1
    # A half-written record at the tail: the follower waits, the writer's replay truncates.
    seg = os.path.join(wal_dir, f"{w.segment:08d}")
    w.close()
    with open(seg, "ab") as f:
        f.write(encode_samples(np.array([ls.hash]), np.array([9]), np.array([9.0]))[:-3])
    assert follower.poll() == (False, [])
    size = os.path.getsize(seg)
    reset, recs = WalFollower(wal_dir, repair=True).poll()
    assert reset and len(recs) == 6 and os.path.getsize(seg) < size
    with open(seg, "rb") as f:
        assert f.read(len(MAGIC)) == MAGIC
    # Checkpoint: older segments go, a follower starts over from the checkpoint.
    w2 = WalWriter(wal_dir, start_segment=WalWriter.next_segment_number(wal_dir), fsync=False)
    w2.checkpoint(encode_series([(ls.hash, ls)]))
    reset, recs = follower.poll()
    assert reset and len(recs) == 1
    assert sorted(n for n in os.listdir(wal_dir) if n.isdigit()) == [f"{w2.segment:08d}"]
    w2.close()
