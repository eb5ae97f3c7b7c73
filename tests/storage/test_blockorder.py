"""storage.blockorder: promtool's order rule on buffers (the import differential test checks it
against the real promtool; these pin the parts promtool has no say in: the store's out-of-order
window, earlier writes and the per-range sample counts across calls)."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.storage.accept import NO_TS
from promlab.storage.blockorder import block_order_filter

H = 7_200_000


@pytest.mark.parametrize(("ooo_ms", "keep", "ooo", "dup"), [
    pytest.param(0, [True, False, False, False, True], 2, 1, id="promtool"),
    pytest.param(60, [True, True, False, False, True], 0, 2, id="window-keeps-the-first-repeat"),
    pytest.param(None, [True, True, False, False, True], 0, 2, id="no-window-limit"),
])
def test_out_of_order_window(ooo_ms: int | None, keep: list[bool], ooo: int, dup: int) -> None:
    latest = np.full(1, NO_TS)
    ts = np.array([H + 100, H + 50, H + 100, H + 50, H - 10])
    r = block_order_filter(np.zeros(5, np.int64), ts, H, latest, ooo_ms)
    assert (r.keep.tolist(), r.out_of_order, r.duplicates) == (keep, ooo, dup)
    assert latest.tolist() == [H + 100]


def test_earlier_write_counts_in_its_range_only() -> None:
    latest = np.array([H + 100], np.int64)
    r = block_order_filter(np.zeros(3, np.int64), np.array([H + 100, H + 5, 50]), H, latest)
    assert r.keep.tolist() == [False, False, True] and (r.out_of_order, r.duplicates) == (1, 1)


@pytest.mark.parametrize(("batch", "refusal"), [
    pytest.param(4, (5, "out of order sample"), id="better-committed"),
    pytest.param(6, None, id="same-batch-dropped-only"),
])
def test_committed_batches(batch: int, refusal: tuple[int, str] | None) -> None:
    refs = np.array([0, 1, 1, 1, 1, 0])
    ts = np.array([H + 10, H + 1, H + 2, H + 3, H + 4, H + 9])
    r = block_order_filter(refs, ts, H, np.full(2, NO_TS), values=np.ones(6), batch=batch, seen={})
    assert r.refusal == refusal and r.keep.tolist() == [True] * 5 + [False]


def test_batches_count_on_across_calls() -> None:
    """promtool's batches run over the whole range: earlier calls' samples count (``seen``)."""
    seen: dict[int, int] = {}
    latest = np.full(2, NO_TS)
    first = block_order_filter(np.array([1, 1, 1]), np.array([H + 1, H + 2, H + 3]), H, latest,
                               values=np.ones(3), batch=4, seen=seen)
    assert first.refusal is None and seen == {1: 3}
    # Ranks 3 and 4 of the range: batches 0 and 1, so H + 10 was committed before H + 9.
    again = block_order_filter(np.array([0, 0]), np.array([H + 10, H + 9]), H, latest,
                               values=np.ones(2), batch=4, seen=seen)
    assert again.refusal == (1, "out of order sample") and seen == {1: 5}
    fresh = block_order_filter(np.array([0, 0]), np.array([H + 10, H + 9]), H, np.full(2, NO_TS),
                               values=np.ones(2), batch=4, seen={})
    assert fresh.refusal is None and fresh.keep.tolist() == [True, False]
