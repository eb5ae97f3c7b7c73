"""cache.window: per sorted run, the bounds of its samples in [mint, maxt], against a
searchsorted per run (empty runs, bounds before, inside and past the runs)."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.storage.cache import window


@pytest.mark.parametrize("seed", range(3))
def test_window_matches_searchsorted(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        lens = rng.integers(0 if rng.random() < 0.3 else 1, 12, int(rng.integers(1, 9)))
        runs = [np.sort(rng.integers(0, 100, n)) for n in lens.tolist()]
        ts = np.concatenate(runs).astype(np.int64) if runs else np.zeros(0, np.int64)
        ends = np.cumsum(lens).astype(np.int64)
        starts = ends - lens
        mint = int(rng.integers(-10, 110))
        maxt = mint + int(rng.integers(0, 120))
        lo, hi = window(ts, starts, ends, mint, maxt)
        for i, run in enumerate(runs):
            a = int(starts[i])
            assert lo[i] == a + np.searchsorted(run, mint, "left")
            assert hi[i] == a + np.searchsorted(run, maxt, "right")


@pytest.mark.parametrize("jitter", [0, 3, 40], ids=["steady", "jittered", "irregular"])
def test_window_on_scraped_runs(jitter: int) -> None:
    """Runs of samples at a steady interval (the first probe's case), jittered, irregular;
    bounds on samples, between them, before and after."""
    rng = np.random.default_rng(jitter)
    for _ in range(200):
        k = int(rng.integers(1, 30))
        runs = []
        for _ in range(k):
            n = int(rng.integers(1, 80))
            t = int(rng.integers(0, 5_000)) + 15_000 * np.arange(n, dtype=np.int64)
            t += rng.integers(0, jitter + 1, n) * 250
            runs.append(np.sort(t))
        ts = np.concatenate(runs)
        lens = np.array([r.shape[0] for r in runs], np.int64)
        ends = np.cumsum(lens)
        starts = ends - lens
        pick = ts[int(rng.integers(0, ts.shape[0]))]
        mint = int(pick + rng.choice([-1, 0, 1, -7_000]))
        maxt = int(mint + rng.choice([0, 1, 15_000, 300_000, 10**7]))
        lo, hi = window(ts, starts, ends, mint, maxt)
        for i, run in enumerate(runs):
            a = int(starts[i])
            assert lo[i] == a + np.searchsorted(run, mint, "left")
            assert hi[i] == a + np.searchsorted(run, maxt, "right")
