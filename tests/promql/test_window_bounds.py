"""Matrix.window_bounds: the guessed-and-checked edge positions against a plain search."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.model import Labels
from promlab.promql.values import Matrix


def _regular(rng: np.random.Generator, n: int) -> np.ndarray:
    return int(rng.integers(0, 15_000)) + 15_000 * np.arange(n, dtype=np.int64)


def _jittered(rng: np.random.Generator, n: int) -> np.ndarray:
    return _regular(rng, n) + rng.integers(-40, 40, n)


def _irregular(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.cumsum(rng.integers(1, 60_000, n)).astype(np.int64)


def _gappy(rng: np.random.Generator, n: int) -> np.ndarray:
    ts = _regular(rng, n)
    ts[n // 2:] += 3_600_000  # an hour without samples mid-series
    return ts


def _on_edges(rng: np.random.Generator, n: int) -> np.ndarray:
    return 60_000 * np.arange(n, dtype=np.int64)  # every sample on a window edge


def _staggered(rng: np.random.Generator, n: int) -> np.ndarray:
    return int(rng.integers(0, 3 * 3_600_000)) + _jittered(rng, n)  # starts late, ends anywhere


SHAPES = {"regular": _regular, "jittered": _jittered, "irregular": _irregular,
          "gappy": _gappy, "on-edges": _on_edges, "staggered": _staggered}


def _matrix(rng: np.random.Generator, shape: str, lengths: list[int], steps: np.ndarray,
            range_ms: int) -> Matrix:
    runs = [SHAPES[shape](rng, n) for n in lengths]
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ts = np.concatenate(runs).astype(np.int64) if runs else np.zeros(0, np.int64)
    labels = [Labels({"i": str(i)}) for i in range(len(lengths))]
    return Matrix(labels, offsets, ts, np.ones(ts.shape[0]), steps - range_ms, steps, range_ms)


def _want(m: Matrix) -> tuple[np.ndarray, np.ndarray]:
    lo = np.empty((len(m.labels), m.window_end_ms.shape[0]), np.int64)
    hi = np.empty_like(lo)
    for i in range(len(m.labels)):
        a, b = int(m.offsets[i]), int(m.offsets[i + 1])
        lo[i] = a + np.searchsorted(m.ts_ms[a:b], m.window_start_ms, side="right")
        hi[i] = a + np.searchsorted(m.ts_ms[a:b], m.window_end_ms, side="right")
    return lo, hi


GRID = np.arange(0, 6 * 3_600_000, 60_000, dtype=np.int64)

CASES = [
    # (shape, series lengths, steps, range)
    ("regular", [1440] * 30, GRID, 300_000),
    ("regular", [1440] * 30, GRID, 330_000),   # range not a multiple of the step
    ("jittered", [1440] * 30, GRID, 300_000),
    ("irregular", [200] * 30, GRID, 600_000),
    ("gappy", [1200] * 20, GRID, 300_000),
    ("on-edges", [360] * 10, GRID, 120_000),
    ("staggered", [100, 1440, 700, 1000, 30, 900] * 5, GRID, 300_000),
    ("regular", [0, 1, 2, 0, 5, 1, 0], GRID, 300_000),     # empty and tiny series
    ("jittered", [3] * 2000, GRID[:50], 300_000),          # many short series, many blocks
    ("regular", [1440] * 5, GRID[::-1].copy(), 300_000),   # descending steps
    ("irregular", [300] * 8, np.full(20, 3_000_000, np.int64), 900_000),  # one repeated time
    ("jittered", [1440] * 3, np.array([5_000_000]), 7_200_000),           # a single step
    ("regular", [1440, 0], np.array([-10**12, 10**12]), 10**12),          # far edges
]


@pytest.mark.parametrize(("shape", "lengths", "steps", "range_ms"), CASES,
                         ids=[f"{c[0]}-{len(c[1])}x{c[2].shape[0]}-{c[3]}-{k}"
                              for k, c in enumerate(CASES)])
def test_window_bounds_match_search(shape: str, lengths: list[int], steps: np.ndarray,
                                    range_ms: int) -> None:
    m = _matrix(np.random.default_rng(len(lengths)), shape, lengths, steps, range_ms)
    lo, hi = m.window_bounds()
    want_lo, want_hi = _want(m)
    np.testing.assert_array_equal(lo, want_lo)
    np.testing.assert_array_equal(hi, want_hi)
    lo2, hi2, first, last = m.window_bounds_times()
    np.testing.assert_array_equal(lo2, want_lo)
    np.testing.assert_array_equal(hi2, want_hi)
    some = want_hi > want_lo  # the times of a window's first and last sample, where it has one
    np.testing.assert_array_equal(first[some], m.ts_ms[want_lo[some]])
    np.testing.assert_array_equal(last[some], m.ts_ms[want_hi[some] - 1])


def test_window_bounds_of_no_samples() -> None:
    m = Matrix([Labels({"i": "0"})], np.zeros(2, np.int64), np.zeros(0, np.int64),
               np.zeros(0), GRID[:3] - 1, GRID[:3], 1)
    lo, hi = m.window_bounds()
    assert lo.tolist() == hi.tolist() == [[0, 0, 0]]


def test_window_bounds_times_with_known_bounds() -> None:
    m = _matrix(np.random.default_rng(9), "irregular", [50, 70], GRID[:40], 600_000)
    lo, hi = _want(m)
    m.bounds = (lo, hi)
    lo2, hi2, first, last = m.window_bounds_times()
    assert lo2 is lo and hi2 is hi
    some = hi > lo
    assert some.any()
    np.testing.assert_array_equal(first[some], m.ts_ms[lo[some]])
    np.testing.assert_array_equal(last[some], m.ts_ms[hi[some] - 1])
