"""XOR chunks: round trips through the encoder and the vectorised decoder; wire codecs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promlab.errors import BadData, StorageError
from promlab.remote.chunks import decode_xor_chunks, encode_xor_chunk, encode_xor_series
from promlab.remote.codec import SeriesTable, frame, parse_write_v1, read_frames
from promlab.remote.proto import prometheus_remote_pb2 as pb

STALE = float(np.uint64(0x7FF0000000000002).view(np.float64))


@pytest.mark.parametrize(("ts", "vals"), [
    pytest.param([], [], id="empty"),
    pytest.param([5], [1.5], id="one"),
    pytest.param([-1000, 0], [0.0, -0.0], id="negative-time-signed-zero"),
    pytest.param([0, 15_000, 30_000, 45_000], [1.0, 1.0, 1.0, 1.0], id="regular-constant"),
    pytest.param([0, 10, 20, 10**7 + 20, 10**7 + 15], [1, 2, 3, 4, 5], id="dod-64-bit"),
    pytest.param([0, 1, 8200, 16400, 100_000, 700_000], [1, 2, 3, 4, 5, 6], id="dod-14-17-20"),
    pytest.param([0, 1, 2, 3], [math.inf, -math.inf, math.nan, STALE], id="specials"),
    pytest.param(list(range(0, 120 * 15, 15)), [float(i) ** 1.5 for i in range(120)], id="120"),
])
def test_round_trip(ts: list[int], vals: list[float]) -> None:
    t, v, counts = decode_xor_chunks([encode_xor_chunk(ts, vals)])
    assert counts.tolist() == [len(ts)]
    assert t.tolist() == ts
    assert v.view(np.uint64).tolist() == np.array(vals, np.float64).view(np.uint64).tolist()


def test_many_chunks_in_one_pass() -> None:
    rng = np.random.default_rng(7)
    chunks, want_t, want_v = [], [], []
    for n in rng.integers(0, 121, 300):
        t = np.cumsum(rng.integers(1, 40_000, n)).astype(np.int64)
        v = np.round(rng.normal(size=n), int(rng.integers(0, 4)))
        chunks += [c for *_, c in encode_xor_series(t, v)]
        want_t.append(t)
        want_v.append(v)
    t, v, _ = decode_xor_chunks(chunks)
    assert np.array_equal(t, np.concatenate(want_t))
    assert np.array_equal(v, np.concatenate(want_v))


def test_truncated_chunk() -> None:
    data = encode_xor_chunk([0, 15, 31, 50], [1.0, 2.0, 3.5, 9.25])
    with pytest.raises(StorageError):
        decode_xor_chunks([data[:-3]])


def test_frames_and_checksum() -> None:
    stream = frame(b"hello") + frame(b"") + frame(b"x" * 300)
    assert list(read_frames(stream)) == [b"hello", b"", b"x" * 300]
    bad = bytearray(stream)
    bad[6] ^= 1
    with pytest.raises(BadData):
        list(read_frames(bytes(bad)))
    with pytest.raises(BadData):
        list(read_frames(stream[:-1]))


def test_fast_and_full_v1_decoders_agree() -> None:
    req = pb.WriteRequest()
    for i in range(50):
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value=f"m{i % 3}")
        ts.labels.add(name="long", value="v" * (i * 5))  # label messages past 127 bytes
        for k in range(i % 4):
            ts.samples.add(timestamp=-5 + k * (i - 20), value=0.0 if k == 1 else i / 7)
    raw = req.SerializeToString()
    fast = parse_write_v1(raw, t1 := SeriesTable())
    req.metadata.add(metric_family_name="m0", help="h", type=1)  # forces the full decoder
    full = parse_write_v1(req.SerializeToString(), t2 := SeriesTable())
    assert [t1.series[i] for i in fast.index] == [t2.series[i] for i in full.index]
    assert fast.ts_ms.tolist() == full.ts_ms.tolist()
    assert fast.values.tolist() == full.values.tolist()
    assert full.metadata == {"m0": ("counter", "h", "")}
