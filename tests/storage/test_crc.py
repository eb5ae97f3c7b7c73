"""promlab.storage.crc: zlib's CRC-32 values, computed by ISA-L (issue 14)."""

from __future__ import annotations

import mmap
import random
import zlib

import numpy as np
import pyarrow as pa
import pytest

from promlab.storage import crc


def test_hardware_implementation_in_use() -> None:
    # isal is a dependency: without it every read's checksum costs 13x the time.
    assert crc.crc32.__module__.startswith("isal"), crc.crc32.__module__


@pytest.mark.parametrize("n", [0, 1, 3, 15, 16, 63, 64, 65, 255, 4096, 100_003, 1 << 20])
def test_values_are_zlibs(n: int) -> None:
    rng = random.Random(n)
    data = rng.randbytes(n)
    assert crc.crc32(data) == zlib.crc32(data)
    for start in (0, 1, 0xFFFFFFFF, rng.getrandbits(32)):
        assert crc.crc32(data, start) == zlib.crc32(data, start)
    # Continued over two parts as over the whole.
    cut = n // 3
    assert crc.crc32(data[cut:], crc.crc32(data[:cut])) == zlib.crc32(data)


def test_buffers_of_every_kind() -> None:
    data = random.Random(7).randbytes(70_001)
    want = zlib.crc32(data)
    mv = memoryview(data)
    assert crc.crc32(mv) == want
    assert crc.crc32(mv[5:6_000]) == zlib.crc32(data[5:6_000])
    assert crc.crc32(bytearray(data)) == want
    assert crc.crc32(pa.py_buffer(data)) == want
    assert crc.crc32(memoryview(pa.py_buffer(data))) == want
    arr = np.frombuffer(data[:70_000], np.uint8).view(np.int64)
    assert crc.crc32(arr) == zlib.crc32(arr)
    with mmap.mmap(-1, len(data)) as mm:
        mm[:] = data
        assert crc.crc32(memoryview(mm)[100:]) == zlib.crc32(data[100:])


def test_unsigned_results() -> None:
    # Written to meta.json as unsigned 32-bit integers, as zlib returns them.
    vals = [crc.crc32(random.Random(i).randbytes(32)) for i in range(200)]
    assert all(0 <= v < 1 << 32 for v in vals)
    assert max(vals) >= 1 << 31
