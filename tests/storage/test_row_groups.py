"""Row groups of a block's samples file end at time slice ends where they can (issue 14): a
read of a slice decodes its own rows, not those of the neighbouring slices."""

from __future__ import annotations

import os

import numpy as np
import pytest

from promlab.model import Matcher, MatchType
from promlab.storage import blocks as blocks_mod
from promlab.storage import open_store
from promlab.storage.slices import row_group_cuts

from .conftest import HOUR, T0, assert_same, four_hour_block


@pytest.mark.parametrize(("ends", "start", "stop", "rows", "final", "want"), [
    pytest.param([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0, 100, 25, True,
                 [20, 40, 60, 80, 100], id="small-slices-packed"),
    pytest.param([100], 0, 100, 32, True, [25, 50, 75, 100], id="long-slice-in-equal-parts"),
    pytest.param([2, 100], 0, 100, 32, True, [25, 50, 75, 100], id="no-tiny-group"),
    pytest.param([10, 20, 30, 40], 0, 40, 25, False, [20], id="tail-left-for-later"),
    pytest.param([130, 140], 100, 140, 25, False, [115], id="split-from-an-offset"),
    pytest.param([30, 40], 0, 40, 100, True, [40], id="all-in-one"),
    pytest.param([], 0, 0, 25, True, [], id="empty"),
])
def test_row_group_cuts(ends: list[int], start: int, stop: int, rows: int, final: bool,
                        want: list[int]) -> None:
    assert row_group_cuts(np.array(ends, np.int64), start, stop, rows, final=final) == want


@pytest.mark.parametrize(("rg_rows", "read_rows"), [
    pytest.param(1024, 600, id="a-slice-per-group"),  # 10 series x 60 rows per slice
    pytest.param(256, 600, id="slices-cut-in-three"),
    pytest.param(32 * 1024, 28_800, id="whole-block-in-one-group"),
])
def test_a_slice_read_decodes_its_rows(tmp_path: os.PathLike[str],
                                       monkeypatch: pytest.MonkeyPatch, rg_rows: int,
                                       read_rows: int) -> None:
    """A 5-minute read of one metric decodes the row groups of its slice, which hold that
    slice's rows only (unless the whole block is one group); answers as memory's."""
    monkeypatch.setattr(blocks_mod, "ROW_GROUP_ROWS", rg_rows)
    mem = four_hour_block(str(tmp_path))
    mint, maxt = T0 + 2 * HOUR + 60_000, T0 + 2 * HOUR + 360_000
    m = [Matcher(MatchType.EQUAL, "__name__", "metric_1")]
    with open_store(tmp_path, readonly=True) as ro:
        (blk,) = ro.blocks()
        sizes = blk.row_group_rows()
        assert max(sizes) <= rg_rows and sum(sizes) == 30 * 4 * 240
        starts, counts, _ = blk.pieces(blk.metric_chunks("metric_1", (), mint, maxt), mint, maxt)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        first = int(np.searchsorted(bounds, starts.min(), "right")) - 1
        last = int(np.searchsorted(bounds, (starts + counts).max() - 1, "right")) - 1
        assert int(counts.sum()) == 600
        assert int(bounds[last + 1] - bounds[first]) == read_rows
        assert_same(ro.querier(mint, maxt).select(m), mem.querier(mint, maxt).select(m))
