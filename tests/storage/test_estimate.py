"""ParquetQuerier.estimate_samples (interface.SampleEstimator): an upper bound of what a select
loads, from chunk row counts without decoding; the engine reads a long range with one select
when a querier offers it (no density probe read)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pytest

from promlab.model import Matcher, MatchType
from promlab.promql.engine import Engine
from promlab.storage import open_store
from promlab.storage.interface import Querier, SampleEstimator, SelectHints, SeriesSet

from .conftest import HOUR, T0, grid, make_series

STEPS = 6 * 240  # 6 h at 15 s
BUCKET_SAMPLES = 240  # samples per series per 1-h bucket


def _fill(path: str) -> None:
    series = make_series(30)
    idx, ts, vals = grid(series, T0, STEPS)
    with open_store(path, block_duration="4h", bucket_duration="1h", wal_fsync=False) as st:
        app = st.appender()
        app.append_batch(series[:20], idx[idx < 20], ts[idx < 20], vals[idx < 20])
        app.commit()
        st.flush()  # the first 4 h in a block, the rest in the head
        app = st.appender()
        app.append_batch(series[20:], idx[idx >= 20] - 20, ts[idx >= 20], vals[idx >= 20])
        app.commit()


@pytest.mark.parametrize("window", [
    pytest.param((T0, T0 + 6 * HOUR), id="all"),
    pytest.param((T0 + HOUR + 60_000, T0 + HOUR + 360_000), id="5m-in-a-bucket"),
    pytest.param((T0 + 3 * HOUR, T0 + 5 * HOUR), id="block-and-head"),
    pytest.param((T0 + 7 * HOUR, T0 + 8 * HOUR), id="after-the-data"),
])
@pytest.mark.parametrize("matchers", [
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "metric_1")], id="metric"),
    pytest.param([Matcher(MatchType.REGEX, "instance", "h[0-9]*[13579]")], id="some-series"),
    pytest.param([Matcher(MatchType.EQUAL, "__name__", "nope")], id="no-series"),
])
def test_estimate_bounds_select(tmp_path: os.PathLike[str], window: tuple[int, int],
                                matchers: list[Matcher]) -> None:
    _fill(str(tmp_path))
    with open_store(tmp_path, readonly=True) as ro:
        q = ro.querier(T0 - HOUR, T0 + 9 * HOUR)
        assert isinstance(q, SampleEstimator)
        est = q.estimate_samples(matchers, *window)
        ss = q.select(matchers, SelectHints(start_ms=window[0], end_ms=window[1]))
        # An upper bound, loose by at most the whole chunks (one bucket each end) a range cuts.
        assert ss.num_samples <= est <= ss.num_samples + 2 * BUCKET_SAMPLES * max(len(ss), 1)
        if ss.num_samples == 0:
            assert est == 0 or window[0] > T0 + 6 * HOUR


class _Counting:
    """A Queryable over a store whose queriers count selects; ``estimator`` says whether they
    offer estimate_samples."""

    def __init__(self, store: object, estimator: bool) -> None:
        self.store, self.estimator, self.selects = store, estimator, 0

    def querier(self, mint_ms: int, maxt_ms: int) -> Querier:
        inner = self.store.querier(mint_ms, maxt_ms)  # type: ignore[attr-defined]
        outer = self

        class Q:
            def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None
                       ) -> SeriesSet:
                outer.selects += 1
                return inner.select(matchers, hints)  # type: ignore[no-any-return]

            def __getattr__(self, name: str) -> object:
                if name == "estimate_samples" and not outer.estimator:
                    raise AttributeError(name)
                return getattr(inner, name)

        return Q()  # type: ignore[return-value]


def test_engine_skips_the_probe_read(tmp_path: os.PathLike[str]) -> None:
    _fill(str(tmp_path))
    results, selects = [], []
    with open_store(tmp_path, readonly=True) as ro:
        for estimator in (True, False):
            qa = _Counting(ro, estimator)
            v = Engine().instant(qa, "count_over_time(metric_1[4h])", T0 + 5 * HOUR)
            results.append(v)
            selects.append(qa.selects)
    assert selects == [1, 2]
    a, b = (np.sort(np.asarray(r.value.values)) for r in results)
    assert a.tolist() == b.tolist() and a.shape[0] == 10
