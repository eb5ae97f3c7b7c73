"""The selector kernels agree with the straightforward definitions on random data."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.model import Labels
from promlab.promql.eval.selectors import count_at_or_before, first_step_at_or_after
from promlab.promql.values import Matrix


def _random_csr(rng: np.random.Generator, n_series: int):
    lengths = rng.integers(0, 40, n_series)
    offsets = np.zeros(n_series + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ts = np.concatenate([np.sort(rng.choice(np.arange(-50, 1000), n, replace=False))
                         for n in lengths]).astype(np.int64)
    return offsets, ts


REFS = {
    "regular": np.arange(-100, 1100, 37, dtype=np.int64),
    "regular-on-samples": np.arange(0, 1000, 10, dtype=np.int64),
    "constant": np.full(20, 333, np.int64),
    "irregular": np.sort(np.random.default_rng(1).integers(-60, 1060, 50)).astype(np.int64),
    "single": np.array([500], np.int64),
}


@pytest.mark.parametrize("ref_name", list(REFS))
def test_first_step_matches_searchsorted(ref_name):
    ref = REFS[ref_name]
    ts = np.arange(-200, 1300, dtype=np.int64)
    assert np.array_equal(first_step_at_or_after(ref, ts), np.searchsorted(ref, ts, "left"))


@pytest.mark.parametrize("ref_name", list(REFS))
def test_count_at_or_before(ref_name):
    rng = np.random.default_rng(7)
    offsets, ts = _random_csr(rng, 12)
    ref = REFS[ref_name]
    got = count_at_or_before(ts, offsets, ref)
    want = np.array([[np.count_nonzero(ts[offsets[i]:offsets[i + 1]] <= r) for r in ref]
                     for i in range(12)])
    assert np.array_equal(got, want.reshape(12, ref.shape[0]))


@pytest.mark.parametrize("ref_name", list(REFS))
@pytest.mark.parametrize("range_ms", [1, 50, 400])
def test_window_bounds_match_contract(ref_name, range_ms):
    rng = np.random.default_rng(3)
    offsets, ts = _random_csr(rng, 9)
    ref = REFS[ref_name]
    args = ([Labels({"i": str(i)}) for i in range(9)], offsets, ts, np.ones(ts.shape[0]),
            ref - range_ms, ref, range_ms)
    lo, hi = Matrix(*args).window_bounds()
    # Brute force: window (ref - range, ref] of series i covers global indexes [lo, hi).
    for i in range(9):
        a, b = offsets[i], offsets[i + 1]
        want_lo = a + np.array([np.count_nonzero(ts[a:b] <= r - range_ms) for r in ref])
        want_hi = a + np.array([np.count_nonzero(ts[a:b] <= r) for r in ref])
        assert np.array_equal(lo[i], want_lo) and np.array_equal(hi[i], want_hi)
