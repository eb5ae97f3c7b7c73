"""Native histogram samples under the head's acceptance rules (promlab.storage.histaccept), and
each series' latest sample and the minimum valid time after a reopen, table-driven."""

from __future__ import annotations

import math
import os

import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.model.value import STALE_NAN
from promlab.storage import open_store
from promlab.storage.histaccept import histogram_key

from .conftest import HOUR, T0

A = Labels({"__name__": "h"})
B = Labels({"__name__": "h", "i": "2"})
SEL = [Matcher(MatchType.EQUAL, "__name__", "h")]

H1 = Histogram(count=1, sum=1.0, positive_spans=((0, 1),), positive_buckets=(1,))
H2 = Histogram(count=2, sum=3.0, positive_spans=((0, 1),), positive_buckets=(2,))
# H1 with its bucket listed through a zero-length span first: the same layout (Prometheus's
# spansMatch), so the same histogram.
H1_SPLIT = Histogram(count=1, sum=1.0, positive_spans=((-2, 0), (2, 1)), positive_buckets=(1,))

Value = float | Histogram | FloatHistogram
Commit = list[tuple[Labels, int, Value]]


def _commit(st, samples: Commit):  # type: ignore[no-untyped-def]
    app = st.appender()
    for ls, t, v in samples:
        if isinstance(v, float):
            app.append(ls, T0 + t, v)
        else:
            app.append_histogram(ls, T0 + t, v)
    return app.commit()


def _read(st) -> list[tuple[str, int, object]]:  # type: ignore[no-untyped-def]
    """Every sample as (series, t, float value or the histogram's float form)."""
    ss = st.querier(0, 2**62).select(SEL)
    out: list[tuple[str, int, object]] = []
    for i in range(len(ss)):
        ls, t, v = ss.series(i)
        hs = ss.series_histograms(i)
        for k in range(t.shape[0]):
            h = None if hs is None else hs[k]
            out.append((str(ls), int(t[k]) - T0, float(v[k]) if h is None else h))
    return out


def _counts(stats) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return stats.out_of_order, stats.out_of_bounds, stats.duplicates, stats.too_old


@pytest.mark.parametrize(("a", "b", "equal"), [
    pytest.param(H1, H1, True, id="same"),
    pytest.param(H1, H1_SPLIT, True, id="zero-length-span-same-layout"),
    pytest.param(H1, H2, False, id="other-counts"),
    pytest.param(H1, H1.to_float(), False, id="integer-vs-float-kind"),
    pytest.param(Histogram(sum=math.nan), Histogram(sum=math.nan), True, id="nan-sum-same-bits"),
    pytest.param(Histogram(sum=STALE_NAN), Histogram(sum=math.nan), False, id="stale-sum-other-bits"),
    pytest.param(H1, Histogram(count=1, sum=1.0, positive_spans=((0, 2),), positive_buckets=(1, -1)),
                 False, id="extra-empty-bucket"),
])
def test_histogram_key_is_prometheus_equals(a: Histogram, b: Histogram, equal: bool) -> None:
    assert (histogram_key(a) == histogram_key(b)) is equal


# (commits, (out_of_order, out_of_bounds, duplicates, too_old) summed, what is stored)
CASES = [
    pytest.param([[(A, 0, H1)], [(A, 0, H2)]], (0, 0, 1, 0), [("h", 0, H1)], id="first-write-wins"),
    pytest.param([[(A, 0, H1)], [(A, 0, H1_SPLIT)]], (0, 0, 0, 0), [("h", 0, H1)],
                 id="equal-taken-once"),
    pytest.param([[(A, 0, H1)], [(A, 0, H1.to_float())]], (0, 0, 1, 0), [("h", 0, H1)],
                 id="float-histogram-is-another-value"),
    pytest.param([[(A, HOUR, H1)], [(A, HOUR - 1000, H2)]], (1, 0, 0, 0), [("h", HOUR, H1)],
                 id="out-of-order"),
    pytest.param([[(A, 2 * HOUR, H1)], [(B, 0, H1), (B, 2 * HOUR, H2)]], (0, 1, 0, 0),
                 [("h", 2 * HOUR, H1), ('h{i="2"}', 2 * HOUR, H2)], id="out-of-bounds-new-series"),
    pytest.param([[(A, 0, H1), (A, 0, H2), (A, -5, H1)]], (1, 0, 1, 0), [("h", 0, H1)],
                 id="within-one-commit"),
    # A series' floats and histograms share its latest timestamp (Prometheus's one head chunk).
    pytest.param([[(A, 0, H1)], [(A, 0, 1.0)]], (0, 0, 1, 0), [("h", 0, H1)],
                 id="float-at-histogram-time"),
    pytest.param([[(A, 0, 1.0)], [(A, 0, H1)]], (0, 0, 1, 0), [("h", 0, 1.0)],
                 id="histogram-at-float-time"),
    pytest.param([[(A, 1000, H1)], [(A, 0, 2.0)]], (1, 0, 0, 0), [("h", 1000, H1)],
                 id="float-older-than-histogram"),
    pytest.param([[(A, 1000, 1.0)], [(A, 0, H1)]], (1, 0, 0, 0), [("h", 1000, 1.0)],
                 id="histogram-older-than-float"),
    pytest.param([[(A, 0, H1)], [(A, 15_000, STALE_NAN)]], (0, 0, 0, 0),
                 [("h", 0, H1), ("h", 15_000, STALE_NAN)], id="stale-marker-after-histogram"),
    # One commit is checked floats first, then histograms (the appender keeps no order across
    # the two kinds; Prometheus 3.x checks in append order, so it agrees when the floats were
    # appended first).
    pytest.param([[(A, 0, 1.0), (A, 0, H1)]], (0, 0, 1, 0), [("h", 0, 1.0)],
                 id="one-commit-float-first-wins"),
]


def _same(got: list[tuple[str, int, object]], want: list[tuple[str, int, Value]]) -> bool:
    if len(got) != len(want):
        return False
    for (gs, gt, gv), (ws, wt, wv) in zip(got, want, strict=True):
        if (gs, gt) != (ws, wt):
            return False
        if isinstance(wv, float):
            if not isinstance(gv, float) or math.isnan(wv) != math.isnan(gv):
                return False
            if not math.isnan(wv) and gv != wv:
                return False
        elif gv != wv.to_float():
            return False
    return True


@pytest.mark.parametrize(("commits", "counts", "want"), CASES)
def test_store_takes_histograms_as_prometheus_and_replays(
        tmp_path: os.PathLike[str], commits: list[Commit], counts: tuple[int, int, int, int],
        want: list[tuple[str, int, Value]]) -> None:
    """Refused histogram samples are counted, never stored nor logged: a replay of the WALs
    (a read-only store) rebuilds exactly what was taken."""
    with open_store(tmp_path, wal_fsync=False) as st:
        got = (0, 0, 0, 0)
        for c in commits:
            got = tuple(a + b for a, b in zip(got, _counts(_commit(st, c)), strict=True))  # type: ignore[assignment]
        assert got == counts
        assert _same(_read(st), want), _read(st)
        with open_store(tmp_path, readonly=True) as ro:  # replays the writer's WALs
            assert _same(_read(ro), want), _read(ro)


def test_histogram_out_of_order_window(tmp_path: os.PathLike[str]) -> None:
    m = 60_000
    with open_store(tmp_path, ooo_window="30m", wal_fsync=False) as st:
        _commit(st, [(A, HOUR, H1)])
        res = _commit(st, [(A, HOUR - 20 * m, H2), (A, HOUR - 40 * m, H2)])
        assert (res.appended, res.too_old) == (1, 1)
        res = _commit(st, [(A, HOUR - 20 * m, H1)])  # an out-of-order time already held: dropped
        assert (res.appended, res.duplicates, res.too_old) == (0, 0, 0)
        assert _same(_read(st), [("h", HOUR - 20 * m, H2), ("h", HOUR, H1)])


C = Labels({"__name__": "h", "i": "3"})


# (the reopened store's window, a commit after reopening, its counts, what is stored). Base: A
# floats at 10 s, HOUR - 1 min and HOUR; B a histogram at HOUR; C floats at 0 only (so its own
# latest is far older than the newest persisted sample).
REOPEN = [
    pytest.param(0, [(A, HOUR, 2.0)], (0, 0, 1, 0), [], id="float-duplicate"),
    pytest.param(0, [(A, HOUR, 1.0)], (0, 0, 0, 0), [], id="float-repeat-taken-once"),
    pytest.param(0, [(A, HOUR - 1000, 2.0)], (1, 0, 0, 0), [], id="float-older"),
    pytest.param(0, [(B, HOUR, H2)], (0, 0, 1, 0), [], id="histogram-duplicate"),
    pytest.param(0, [(B, HOUR, H1_SPLIT)], (0, 0, 0, 0), [], id="histogram-repeat-taken-once"),
    pytest.param(0, [(B, HOUR, 1.0)], (0, 0, 1, 0), [], id="float-at-histogram-time"),
    pytest.param(0, [(A, HOUR, H1)], (0, 0, 1, 0), [], id="histogram-at-float-time"),
    pytest.param(0, [(B, HOUR - 1000, H2)], (1, 0, 0, 0), [], id="histogram-older"),
    pytest.param(0, [(C, HOUR - 1000, 2.0)], (0, 0, 0, 0), [('h{i="3"}', HOUR - 1000, 2.0)],
                 id="in-order-for-its-series-older-than-newest"),
    pytest.param(0, [(Labels({"__name__": "n"}), 1000, 2.0)], (0, 0, 0, 0), [],
                 id="new-series-within-half-a-block"),
    pytest.param(0, [(C, -1, 5.0), (Labels({"__name__": "n"}), -1, 5.0)], (0, 2, 0, 0), [],
                 id="older-than-half-a-block-out-of-bounds"),
    pytest.param(0, [(A, HOUR + 1, 2.0), (B, HOUR + 1, H2)], (0, 0, 0, 0),
                 [("h", HOUR + 1, 2.0), ('h{i="2"}', HOUR + 1, H2)], id="newer"),
    pytest.param("30m", [(A, HOUR - 1000, 2.0), (B, HOUR - 1000, H2)], (0, 0, 0, 0),
                 [("h", HOUR - 1000, 2.0), ('h{i="2"}', HOUR - 1000, H2)], id="window-takes-older"),
    pytest.param("30m", [(A, HOUR - 60_000, 9.0)], (0, 0, 0, 0), [],
                 id="window-drops-a-persisted-time"),
    pytest.param("30m", [(A, HOUR - 40 * 60_000, 2.0)], (0, 0, 0, 1), [],
                 id="window-counts-from-persisted-end"),
    pytest.param(None, [(A, 0, 5.0), (B, HOUR - 1000, H2)], (0, 0, 0, 0),
                 [("h", 0, 5.0), ('h{i="2"}', HOUR - 1000, H2)], id="backfill-takes-anything"),
]


@pytest.mark.parametrize(("window", "commit", "counts", "added"), REOPEN)
def test_reopened_store_knows_each_series_latest_sample(
        tmp_path: os.PathLike[str], window: str | int | None, commit: Commit,
        counts: tuple[int, int, int, int], added: list[tuple[str, int, Value]]) -> None:
    """A close flushes the head into blocks; on reopening, each series' latest persisted sample
    is read back (what Prometheus's head replays from its WAL) and the minimum valid time is
    half a block range before the newest persisted sample (Prometheus's appender's, its newest
    block ending at least that far back)."""
    base: Commit = [(C, 0, 0.25), (A, 10_000, 0.5), (A, HOUR - 60_000, 0.75), (A, HOUR, 1.0),
                    (B, HOUR, H1)]
    with open_store(tmp_path, wal_fsync=False) as st:
        _commit(st, base)
    before = [("h", 10_000, 0.5), ("h", HOUR - 60_000, 0.75), ("h", HOUR, 1.0),
              ('h{i="2"}', HOUR, H1), ('h{i="3"}', 0, 0.25)]
    with open_store(tmp_path, wal_fsync=False, ooo_window=window) as st:
        assert st.head_samples == 0  # everything is in blocks and histogram files
        assert _counts(_commit(st, commit)) == counts
        want = sorted(before + added, key=lambda s: (s[0], s[1]))
        assert _same(_read(st), want), _read(st)


def test_explicit_flush_and_reopen_keep_each_series_latest(tmp_path: os.PathLike[str]) -> None:
    """An explicit flush empties the head (the floor stays: Prometheus never persists its
    newest samples while running) and a reopen starts from blocks only: both read each series'
    latest sample back, so a sample in order for its own series is taken and a repeat at its
    latest time is a duplicate, as Prometheus, whose head survives both, answers."""
    with open_store(tmp_path, wal_fsync=False) as st:
        _commit(st, [(A, HOUR, 1.0)])
        st.flush()
        assert _counts(_commit(st, [(A, HOUR, 2.0)])) == (0, 0, 1, 0)
        assert _commit(st, [(B, HOUR - 1000, 2.0)]).appended == 1  # in order for B
    with open_store(tmp_path, wal_fsync=False) as st:
        assert _commit(st, [(B, HOUR - 500, 3.0)]).appended == 1
        assert _counts(_commit(st, [(B, HOUR - 500, 4.0), (A, HOUR - 1, 4.0)])) == (1, 0, 1, 0)
        assert _same(_read(st), [("h", HOUR, 1.0), ('h{i="2"}', HOUR - 1000, 2.0),
                                 ('h{i="2"}', HOUR - 500, 3.0)]), _read(st)
