"""The reopened head's seed of persisted samples (promlab.storage.seed): exact values read back
from blocks (a repeat is the same bitwise), and PersistedLatest's lookups, table-driven."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from promlab.model import Labels
from promlab.model.histogram import Histogram
from promlab.model.value import STALE_NAN
from promlab.storage import open_store
from promlab.storage.accept import NO_TS
from promlab.storage.seed import PersistedLatest

from .conftest import HOUR, T0

# Values the blocks store as scaled decimals, as raw doubles, and the special ones.
_RNG = np.random.default_rng(7)
VALUES = np.concatenate([np.round(_RNG.random(200) * 1000, k) for k in range(7)]
                        + [_RNG.random(20) * 1e300,
                           np.array([STALE_NAN, float("nan"), -0.0, 0.0, 0.1 + 0.2, 1e-310,
                                     float("inf"), -float("inf")])])

# Another value for each (Python arithmetic: numpy warns on the stale marker, a signalling NaN).
OTHER = np.array([-v - 1 if math.isfinite(v) and v != 0 else 1.0 for v in VALUES.tolist()])


def _append(st, ts: int, values: np.ndarray):  # type: ignore[no-untyped-def]
    series = [Labels({"__name__": "v", "i": str(i)}) for i in range(values.shape[0])]
    app = st.appender()
    app.append_batch(series, np.arange(len(series)), np.full(len(series), ts, np.int64), values)
    return app.commit()


@pytest.mark.parametrize(("again", "duplicates"), [
    pytest.param(VALUES, 0, id="exact-repeat-taken-once"),
    pytest.param(OTHER, VALUES.shape[0], id="other-values-duplicates"),
])
def test_repeat_after_reopen_compares_bitwise(tmp_path: os.PathLike[str], again: np.ndarray,
                                              duplicates: int) -> None:
    """The duplicate check after a reopen sees the persisted values bit for bit (decimal
    encoding, NaN, the stale marker and -0.0 included)."""
    with open_store(tmp_path, wal_fsync=False) as st:
        _append(st, T0 + HOUR, VALUES)
    with open_store(tmp_path, wal_fsync=False) as st:
        res = _append(st, T0 + HOUR, again)
        assert (res.appended, res.duplicates, res.out_of_order, res.out_of_bounds) == (
            0, duplicates, 0, 0)


def _seed() -> PersistedLatest:
    # Series 30 has samples at 100, 200, 300; series 10 at 150; series 20 none in the window.
    sids = np.array([30, 20, 10], np.int64)
    offsets = np.array([0, 3, 3, 4], np.int64)
    ts = np.array([100, 200, 300, 150], np.int64)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    h = Histogram(count=1, sum=1.0, positive_spans=((0, 1),), positive_buckets=(1,))
    hists = [(Labels({"__name__": "h"}), 250, h), (Labels({"__name__": "h"}), 120, h)]
    return PersistedLatest(sids, offsets, ts, values, hists, start=100, end=300)


@pytest.mark.parametrize(("sids", "ts", "latest", "value", "held"), [
    pytest.param([30], [300], [300], [3.0], [True], id="latest"),
    pytest.param([30], [200], [300], [3.0], [True], id="earlier-held"),
    pytest.param([30], [250], [300], [3.0], [False], id="between"),
    pytest.param([10, 30], [150, 150], [150, 300], [4.0, 3.0], [True, False], id="two-series"),
    pytest.param([20], [200], [NO_TS], [0.0], [False], id="no-sample-in-window"),
    pytest.param([99], [100], [NO_TS], [0.0], [False], id="unknown-series"),
    pytest.param([30], [99], [300], [3.0], [False], id="before-window"),
])
def test_persisted_latest_lookups(sids: list[int], ts: list[int], latest: list[int],
                                  value: list[float], held: list[bool]) -> None:
    seed = _seed()
    s = np.array(sids, np.int64)
    got_ts, got_val = seed.latest_of(s)
    assert got_ts.tolist() == latest and got_val.tolist() == value
    assert seed.holds(s, np.array(ts, np.int64)).tolist() == held


def test_persisted_latest_histograms() -> None:
    seed = _seed()
    ls = Labels({"__name__": "h"})
    top = seed.histogram_latest(ls)
    assert top is not None and top[0] == 250
    assert seed.holds_histogram(ls, 120) and not seed.holds_histogram(ls, 121)
    times = seed.histogram_latest_times(np.array([ls.hash, 5], np.int64))
    assert times is not None and times.tolist() == [250, NO_TS]
    assert len(seed) == 3  # two float series with samples, one histogram series
