"""The one-group and one-bucket fast paths of :mod:`promlab.storage.slices` give what the
general computation gives (a first query's usual case: one metric's bucket)."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.storage import slices

_I64 = np.int64


def _general_starts(row_start: np.ndarray, rows: np.ndarray, group: int) -> np.ndarray:
    """Each chunk's first row per slice, written out: slices lie one after another, each
    holding the group's chunks in place order."""
    k, ns = rows.shape
    out = np.zeros((k, ns), _I64)
    pos = group
    for s in range(ns):
        for c in range(k):
            out[c, s] = pos
            pos += int(rows[c, s])
    return out


def _general_pieces(starts: np.ndarray, rows: np.ndarray, lo: np.ndarray, w: int, mint: int,
                    maxt: int) -> tuple[list[int], list[int], list[int]]:
    """The pieces overlapping ``[mint, maxt]``, chunk by chunk (the first slice open below,
    the last above), written out."""
    k, ns = rows.shape
    out: tuple[list[int], list[int], list[int]] = ([], [], [])
    for c in range(k):
        for s in range(ns):
            a, b = int(lo[c]) + s * w, int(lo[c]) + (s + 1) * w
            if rows[c, s] > 0 and (s == ns - 1 or b > mint) and (s == 0 or a <= maxt):
                out[0].append(int(starts[c, s]))
                out[1].append(int(rows[c, s]))
                out[2].append(c)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_one_group_and_one_bucket(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(300):
        k, ns = int(rng.integers(1, 20)), int(rng.integers(1, 6))
        rows = rng.integers(0, 4, (k, ns)).astype(_I64)
        rows[rows.sum(axis=1) == 0, 0] = 1  # a chunk has a sample
        group = int(rng.integers(0, 500))
        row_start = group + np.concatenate([[0], np.cumsum(rows.sum(axis=1))[:-1]]).astype(_I64)
        want = _general_starts(row_start, rows, group)
        # The chunks as a part lists them: in label order, not necessarily in place order.
        order = rng.permutation(k) if rng.random() < 0.5 else np.arange(k)
        got = slices.piece_starts(row_start[order], rows[order], np.full(k, group, _I64))
        assert got.tolist() == want[order].tolist()
        starts = want
        w, b = int(rng.integers(1, 50)), int(rng.integers(0, 1000))
        mint = b + int(rng.integers(-2 * w, (ns + 2) * w))
        maxt = mint + int(rng.integers(0, (ns + 1) * w))
        lo = np.full(k, b, _I64)
        got = slices.pieces(starts, rows, lo, w, mint, maxt)
        assert tuple(a.tolist() for a in got) == _general_pieces(starts, rows, lo, w, mint, maxt)


def test_damaged_rows_are_refused_on_the_fast_path() -> None:
    rows = np.array([[2, 1], [1, 1]], _I64)
    with pytest.raises(ValueError, match="slice rows"):
        slices.piece_starts(np.array([10, 12], _I64), rows, np.array([10, 10], _I64))


@pytest.mark.parametrize("ns,bucket_ms", [(1, 7), (4, 100), (7, 100), (16, 7_200_000)])
def test_bounds_are_the_same_throughout_their_box(ns: int, bucket_ms: int) -> None:
    rng = np.random.default_rng(ns)
    start = 1_000
    k = 2
    zeros = np.zeros(k, _I64)
    idx = slices.SliceIndex(np.ones(k * ns, _I64), np.arange(k, dtype=_I64), zeros, zeros,
                            np.full(k, ns, _I64), np.zeros(1, _I64), start=start,
                            bucket_ms=bucket_ms)
    span = 5 * bucket_ms
    for _ in range(300):
        mint = start - bucket_ms + int(rng.integers(0, span))
        maxt = mint + int(rng.integers(0, span))
        a, b, c, d = idx.bounds_box(mint, maxt)
        assert a <= mint <= b and c <= maxt <= d
        want = idx.bounds(mint, maxt)
        for m, x in [(a, c), (b, d), (a, d), (b, c)] + [
                (int(rng.integers(a, b + 1)), int(rng.integers(c, d + 1))) for _ in range(5)]:
            assert idx.bounds(m, x) == want
