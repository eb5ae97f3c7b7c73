"""Sample acceptance (promlab.storage.accept): Prometheus 3.x's head rules, table-driven."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.value import STALE_NAN
from promlab.storage import MemoryStorage, open_store
from promlab.storage.accept import (
    DUPLICATE,
    NO_TS,
    OOO,
    OOO_SAME,
    OUT_OF_BOUNDS,
    OUT_OF_ORDER,
    SAME,
    STORED,
    TOO_OLD,
    classify,
)

from .conftest import HOUR, T0

# Series 0: latest sample (100, 1.0); series 1: none yet; series 2: latest (100, NaN).
LATEST = np.array([100, NO_TS, 100], np.int64)
LAST = np.array([1.0, 0.0, math.nan])
HEAD_MAXT, MIN_VALID = 100, 50


def _exists_at_80(refs: np.ndarray, ts: np.ndarray) -> np.ndarray:
    return (refs == 0) & (ts == 80)


@pytest.mark.parametrize(("refs", "ts", "vals", "ooo_ms", "batch", "want"), [
    pytest.param([0], [110], [5.0], 0, True, [STORED], id="newer"),
    pytest.param([0], [100], [1.0], 0, True, [SAME], id="same-value-again"),
    pytest.param([2], [100], [math.nan], 0, True, [SAME], id="same-nan-again"),
    pytest.param([2], [100], [STALE_NAN], 0, True, [DUPLICATE], id="stale-marker-is-another-value"),
    pytest.param([0], [100], [2.0], 0, True, [DUPLICATE], id="other-value-first-wins"),
    pytest.param([0], [100], [-1.0], None, True, [DUPLICATE], id="other-value-unlimited-window"),
    pytest.param([0], [90], [1.0], 0, True, [OUT_OF_ORDER], id="older"),
    pytest.param([0], [40], [1.0], 0, True, [OUT_OF_BOUNDS], id="before-min-valid"),
    pytest.param([1], [40], [1.0], 0, True, [OUT_OF_BOUNDS], id="new-series-before-min-valid"),
    pytest.param([1], [60], [1.0], 0, True, [STORED], id="new-series-older-than-head-max"),
    pytest.param([0], [90], [1.0], 20, True, [OOO], id="in-window"),
    pytest.param([0], [70], [1.0], 20, True, [TOO_OLD], id="before-window"),
    pytest.param([1], [40], [1.0], 100, True, [OOO], id="new-series-below-min-valid-in-window"),
    pytest.param([0], [40], [1.0], None, True, [OOO], id="unlimited-window"),
    pytest.param([0], [80], [1.0], 30, True, [OOO_SAME], id="in-window-at-held-time"),
    pytest.param([0, 0], [90, 90], [1.0, 2.0], 20, True, [OOO, OOO_SAME], id="in-window-twice"),
    pytest.param([1, 1], [60, 55], [1.0, 2.0], 0, True, [STORED, OUT_OF_ORDER],
                 id="older-than-earlier-in-batch"),
    pytest.param([1, 1], [60, 55], [1.0, 2.0], 0, False, [STORED, STORED],
                 id="older-than-earlier-in-batch-append-time"),
    pytest.param([1, 1], [60, 60], [1.0, 2.0], 0, True, [STORED, DUPLICATE],
                 id="duplicate-in-batch-first-wins"),
    pytest.param([1, 1], [60, 60], [1.0, 1.0], 0, True, [STORED, SAME], id="repeat-in-batch"),
    pytest.param([1, 0, 1, 0], [60, 110, 70, 110], [1.0, 2.0, 3.0, 9.0], 0, True,
                 [STORED, STORED, STORED, DUPLICATE], id="interleaved-series"),
    pytest.param([0, 0, 0], [120, 110, 120], [1.0, 2.0, 1.0], 0, True,
                 [STORED, OUT_OF_ORDER, SAME], id="repeat-of-batch-max"),
])
def test_classify(refs: list[int], ts: list[int], vals: list[float], ooo_ms: int | None,
                  batch: bool, want: list[int]) -> None:
    code = classify(np.array(refs, np.int64), np.array(ts, np.int64), np.array(vals),
                    LATEST.copy(), LAST.copy(), head_maxt=HEAD_MAXT, min_valid=MIN_VALID,
                    ooo_ms=ooo_ms, batch=batch, exists=_exists_at_80)
    assert code.tolist() == want


UP = Labels({"__name__": "up"})
OTHER = Labels({"__name__": "up", "i": "2"})
SEL = [Matcher(MatchType.EQUAL, "__name__", "up")]


def _commit(st, samples: list[tuple[Labels, int, float]]):  # type: ignore[no-untyped-def]
    app = st.appender()
    for ls, t, v in samples:
        app.append(ls, T0 + t, v)
    return app.commit()


def _read(st) -> list[tuple[str, int, float]]:  # type: ignore[no-untyped-def]
    ss = st.querier(0, 2**62).select(SEL)
    out = []
    for i in range(len(ss)):
        ls, t, v = ss.series(i)
        out.extend((str(ls), int(a) - T0, float(b)) for a, b in zip(t, v, strict=True))
    return out


# (commits, the counts (out_of_order, out_of_bounds, duplicates, too_old) summed, what is stored)
STORE_CASES = [
    pytest.param([[(UP, 0, 1.0), (UP, 1000, 2.0)], [(UP, 1000, 3.0)]], (0, 0, 1, 0),
                 [("up", 0, 1.0), ("up", 1000, 2.0)], id="first-write-wins"),
    pytest.param([[(UP, 0, 1.0)], [(UP, 0, 1.0)]], (0, 0, 0, 0), [("up", 0, 1.0)],
                 id="repeat-stored-once"),
    pytest.param([[(UP, HOUR, 1.0)], [(UP, HOUR - 1000, 2.0)]], (1, 0, 0, 0),
                 [("up", HOUR, 1.0)], id="out-of-order"),
    pytest.param([[(UP, 2 * HOUR, 1.0)], [(OTHER, 0, 2.0), (OTHER, 2 * HOUR, 3.0)]], (0, 1, 0, 0),
                 [("up", 2 * HOUR, 1.0), ('up{i="2"}', 2 * HOUR, 3.0)], id="out-of-bounds-new-series"),
    pytest.param([[(UP, 0, 1.0), (UP, 0, 2.0), (UP, -5, 3.0)]], (1, 0, 1, 0), [("up", 0, 1.0)],
                 id="within-one-commit"),
]


@pytest.mark.parametrize(("commits", "counts", "want"), STORE_CASES)
def test_store_takes_and_replays_what_prometheus_takes(
        tmp_path: os.PathLike[str], commits: list[list[tuple[Labels, int, float]]],
        counts: tuple[int, int, int, int], want: list[tuple[str, int, float]]) -> None:
    """The store's default (no window) and MemoryStorage(ooo_window_ms=0) agree; a WAL replay
    rebuilds exactly what was taken (refused samples are never logged)."""
    mem = MemoryStorage(ooo_window_ms=0)
    with open_store(tmp_path, wal_fsync=False) as st:
        got = [0, 0, 0, 0]
        for c in commits:
            res = _commit(st, c)
            _commit(mem, c)
            got = [a + b for a, b in zip(got, (res.out_of_order, res.out_of_bounds, res.duplicates,
                                               res.too_old), strict=True)]
        assert tuple(got) == counts
        assert _read(st) == want
        with open_store(tmp_path, readonly=True) as ro:  # replays the writer's WAL
            assert _read(ro) == want
    if counts[1] == 0:  # MemoryStorage has no head, so no minimum valid time
        assert _read(mem) == want


def test_window_from_head_max(tmp_path: os.PathLike[str]) -> None:
    """The out-of-order window counts back from the head's newest sample (of any series), not
    from the series' own latest; in-order samples need no window."""
    m = 60_000
    with open_store(tmp_path, ooo_window="30m", wal_fsync=False) as st:
        _commit(st, [(UP, 0, 1.0), (OTHER, HOUR, 1.0)])
        res = _commit(st, [(UP, HOUR - 40 * m, 2.0)])  # in order for UP, 40 min before the head's max
        assert (res.appended, res.too_old) == (1, 0)
        res = _commit(st, [(UP, HOUR - 35 * m, 3.0)])
        assert (res.appended, res.too_old) == (1, 0)
        res = _commit(st, [(UP, HOUR - 38 * m, 4.0), (UP, HOUR - 25 * m, 5.0), (UP, HOUR - 28 * m, 6.0)])
        # older than UP's latest: 38 min back is beyond the window, 28 min back within it
        assert (res.appended, res.too_old, res.out_of_order) == (2, 1, 0)
        assert [t for _, t, _ in _read(st) if t < HOUR] == [0, HOUR - 40 * m, HOUR - 35 * m,
                                                             HOUR - 28 * m, HOUR - 25 * m]


@pytest.mark.parametrize(("tsdb", "options", "want"), [
    pytest.param(None, {}, 0, id="prometheus-default"),
    pytest.param({"out_of_order_time_window": "30m"}, {}, 1_800_000, id="from-config"),
    pytest.param({"out_of_order_time_window": "30m"}, {"ooo_window": "5m"}, 300_000,
                 id="explicit-option-wins"),
])
def test_session_takes_window_from_config(tmp_path: os.PathLike[str], tsdb: dict[str, str] | None,
                                          options: dict[str, str], want: int) -> None:
    from promlab import Session

    cfg = {"storage": {"tsdb": tsdb}} if tsdb is not None else {}
    with Session(str(tmp_path), config=cfg, progress=False, **options) as s:
        assert s.store.ooo_window_ms == want  # type: ignore[attr-defined]
        s.set_config({"storage": {"tsdb": {"out_of_order_time_window": "1h"}}})  # a reload
        assert s.store.ooo_window_ms == (3_600_000 if not options else want)  # type: ignore[attr-defined]
