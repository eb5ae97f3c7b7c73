"""Arrays of a read from Arrow's pool, and the run gathers into them (storage.pool)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from promlab.storage import pool
from promlab.storage.encoding import decode_values, encode_values


@pytest.mark.parametrize(("starts", "lens"), [
    ([], []),
    ([5], [0]),
    ([0], [4]),
    ([10, 0, 3], [2, 3, 1]),
    ([7, 7, 2], [0, 3, 0]),          # empty runs anywhere
    ([0, 100_000], [100_000, 50_000]),  # large enough for the pool
], ids=["none", "one-empty", "one", "backwards", "empty-runs", "large"])
def test_run_index_is_the_runs_in_turn(starts: list[int], lens: list[int]) -> None:
    want = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lens, strict=True)]
                          + [np.zeros(0, np.int64)]).astype(np.int64)
    got = pool.run_index(np.array(starts, np.int64), np.array(lens, np.int64))
    assert got.dtype == np.int64
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("n", [0, 10, pool.POOL_MIN_BYTES // 8 + 1], ids=["empty", "small", "pooled"])
def test_empty_and_take(n: int) -> None:
    a = pool.empty(n, np.float64)
    assert a.shape == (n,) and a.dtype == np.float64 and a.flags.writeable
    a[:] = np.arange(n)
    idx = np.arange(n, dtype=np.int64)[::-1].copy()
    assert pool.take(a, idx).tolist() == a[::-1].tolist()


@pytest.mark.parametrize("gather", [False, True], ids=["all-rows", "gathered"])
def test_decode_values_bit_exact_with_mixed_scales(gather: bool) -> None:
    rng = np.random.default_rng(1)
    n = 70_000  # past the pool's threshold
    vals = np.round(rng.normal(0, 1e4, n), 2)
    vals[::97] = np.nan
    vals[5::101] = 1.0 / 3.0
    scale = np.where(np.arange(n) % 1000 < 500, 2, 3).astype(np.int8)
    scale[::97] = 2  # NaN rows: stored as floats whatever the scale
    scale[5::101] = -1
    value, value_int = encode_values(vals, scale)
    idx = np.arange(n, dtype=np.int64)[::-3].copy() if gather else None
    got = decode_values(pa.chunked_array([value]), pa.chunked_array([value_int]),
                        pa.chunked_array([pa.array(scale)]), idx)
    want = vals if idx is None else vals[idx]
    assert got.view(np.int64).tolist() == want.view(np.int64).tolist()
