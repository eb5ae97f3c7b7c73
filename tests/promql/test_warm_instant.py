"""The warm instant query's fixed costs (issue 14): what a repeated or one-step query skips.

The answers are compared with paths that do the full work (a two-step range query's last
step, storage that ignores the range hints); the skipped work is pinned by counting calls,
never by timing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from promlab.errors import BadData
from promlab.model import STALE_NAN, Labels, Matcher
from promlab.model.histogram import FloatHistogram
from promlab.promql import labelmemo
from promlab.promql.engine import Engine, Result
from promlab.promql.eval import selectors
from promlab.promql.values import Vector
from promlab.storage import MemoryStorage
from promlab.storage.interface import SelectHints, SeriesSet

T = 3_600_000
STEP = 15_000


def _hist(count: float) -> FloatHistogram:
    return FloatHistogram(schema=0, count=count, sum=2 * count, positive_spans=((0, 1),),
                          positive_buckets=(count,))


def _storage() -> MemoryStorage:
    st = MemoryStorage()
    ts = np.arange(0, T + 1, STEP, dtype=np.int64)
    for i in range(6):
        st.add_series(Labels({"__name__": "m", "i": str(i)}), ts + i * 1000, (ts * 0.5 + i).astype(np.float64))
    # ends in a stale marker; stopped long before T (older than the lookback); one sample
    st.add_series(Labels({"__name__": "m", "i": "stale"}), [T - 30_000, T - 15_000],
                  [1.0, STALE_NAN])
    st.add_series(Labels({"__name__": "m", "i": "old"}), [T - 900_000], [4.0])
    st.add_series(Labels({"__name__": "m", "i": "one"}), [T - 1], [7.0])
    st.add_series(Labels({"__name__": "m", "i": "nan"}), [T - 2_000], [float("nan")])
    st.add_histogram_series(Labels({"__name__": "h", "i": "0"}), [T - 20_000, T - 5_000],
                            [_hist(1.0), _hist(3.0)])
    st.add_histogram_series(Labels({"__name__": "h", "i": "1"}), [T - 20_000, T - 5_000],
                            [_hist(2.0), 5.0])
    return st


class _IgnoresHints:
    """A queryable that ignores the time range it is asked for (as storage may: the range and
    the select hints only narrow what must be read): every selection holds all samples, later
    ones than the selector's time included."""

    def __init__(self, inner: MemoryStorage) -> None:
        self.inner = inner

    def querier(self, mint_ms: int, maxt_ms: int) -> _IgnoringQuerier:
        return _IgnoringQuerier(self.inner, 0, 1 << 62)


class _IgnoringQuerier:
    def __init__(self, inner: MemoryStorage, mint_ms: int, maxt_ms: int) -> None:
        self.q = inner.querier(mint_ms, maxt_ms)

    def select(self, matchers: Sequence[Matcher], hints: SelectHints | None = None) -> SeriesSet:
        return self.q.select(matchers)

    def label_names(self, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self.q.label_names(matchers)

    def label_values(self, name: str, matchers: Sequence[Matcher] = ()) -> list[str]:
        return self.q.label_values(name, matchers)

    def series(self, matchers: Sequence[Matcher]) -> list[Labels]:
        return self.q.series(matchers)

    def close(self) -> None:
        self.q.close()


def _last_step(res: Result) -> tuple[list[Labels], list[float], list[int]]:
    """Series present at a range result's last step: labels, values, sample timestamps."""
    v = res.value
    assert isinstance(v, Vector)
    rows = np.flatnonzero(v.present[:, -1]).tolist()
    ts = [] if v.timestamps_ms is None else [int(v.timestamps_ms[r, -1]) for r in rows]
    return [v.labels[r] for r in rows], [float(v.values[r, -1]) for r in rows], ts


def _same(a: tuple[list[Labels], list[float], list[int]],
          b: tuple[list[Labels], list[float], list[int]]) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1], equal_nan=True) and a[2] == b[2]


def _instant(res: Result) -> tuple[list[Labels], list[float], list[int]]:
    v = res.value
    assert isinstance(v, Vector) and v.present.all()
    ts = [] if v.timestamps_ms is None else v.timestamps_ms[:, 0].tolist()
    return list(v.labels), v.values[:, 0].tolist(), ts


INSTANT_CASES = [
    ("all-series", "m", T),
    ("between-scrapes", "m", T - 7_000),
    ("one-series", 'm{i="3"}', T),
    ("stale-and-old-absent", 'm{i=~"stale|old|one"}', T),
    ("nan-value-kept", 'm{i="nan"}', T),
    ("offset", "m offset 2m", T),
    ("at", "m @ 1800", T),
    ("nothing-in-range", 'm{i="old"}', T),
    ("histograms", "h", T),
    ("timestamp-function", "timestamp(m)", T),
]


@pytest.mark.parametrize(("name", "query", "t"), INSTANT_CASES, ids=[c[0] for c in INSTANT_CASES])
def test_instant_selector_equals_the_range_queries_last_step(name: str, query: str, t: int,
                                                             ) -> None:
    st = _storage()
    eng = Engine()
    got = eng.instant(st, query, t)
    want = eng.range(st, query, t - STEP, t, STEP)
    assert _same(_instant(got), _last_step(want))
    if query == "h":
        v = got.value
        assert isinstance(v, Vector) and v.histograms is not None
        assert [h.count if h is not None else None for h in v.histograms[:, 0]] == [3.0, None]


@pytest.mark.parametrize(("name", "query", "t"), INSTANT_CASES, ids=[c[0] for c in INSTANT_CASES])
def test_instant_selector_same_when_storage_ignores_the_range(name: str, query: str, t: int,
                                                               ) -> None:
    st = _storage()
    eng = Engine()
    want = eng.instant(st, query, t)
    got = eng.instant(_IgnoresHints(st), query, t)
    assert _same(_instant(got), _instant(want))


def test_instant_selector_does_no_per_sample_counting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = selectors.run_counts

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(selectors, "run_counts", counting)
    st = _storage()
    eng = Engine()
    eng.instant(st, "m", T)
    assert calls == []
    eng.range(st, "m", T - STEP, T, STEP)  # the counting path, for contrast
    assert calls


LONG = [Labels({"__name__": "m", "i": str(i)}) for i in range(40)]
DISTINCT_LONG = [
    ("distinct", LONG, True),
    ("last-repeats-first", [*LONG[:-1], Labels({"__name__": "m", "i": "0"})], False),
    ("equal-objects-elsewhere", [Labels(dict(ls)) for ls in LONG], True),
    ("one-swapped-in", [*LONG[:20], LONG[3], *LONG[21:]], False),
]


@pytest.mark.parametrize(("name", "sets", "want"), DISTINCT_LONG, ids=[c[0] for c in DISTINCT_LONG])
def test_distinct_of_long_lists_remembered_and_exact(name: str, sets: list[Labels],
                                                     want: bool) -> None:
    labelmemo.distinct(LONG)  # a remembered list with the same ends as some cases
    for _ in range(2):
        assert labelmemo.distinct(list(sets)) is want
    labelmemo.clear()
    assert labelmemo.distinct(list(sets)) is want


def test_plain_trees_remembered_flagged_ones_still_checked_and_resolved() -> None:
    st = _storage()
    plain, flagged = Engine(), Engine(features="all")
    for _ in range(2):  # the second time from the remembered plain tree
        assert len(_instant(plain.instant(st, "m", T))[0]) == 8
        with pytest.raises(BadData, match="duration expression"):
            plain.instant(st, "m offset step()", T)
    # offset step() at a range query of step 15s: each step reads 15s earlier
    got = flagged.range(st, 'm{i="0"} offset step()', T - STEP, T, STEP)
    want = flagged.range(st, 'm{i="0"} offset 15s', T - STEP, T, STEP)
    assert isinstance(got.value, Vector) and isinstance(want.value, Vector)
    assert got.value.values.tolist() == want.value.values.tolist()
    assert len(_instant(flagged.instant(st, "m", T))[0]) == 8


ROOT_QUERIES = [
    "m", "(m)", "timestamp(m)", "sum by (i) (rate(m[5m] offset 1m))", "m / on(i) m",
    "max_over_time(m[10m:1m] offset 2m)", "m @ 1000", "rate(m[5m] @ end())",
    "max_over_time((m @ start())[10m:1m])", "topk(scalar(m @ 100), m)", "1 + 2", "vector(1)",
    "histogram_count(rate(h[5m]))", "histogram_quantile(0.9, h) + histogram_count(h)",
]


@pytest.mark.parametrize("query", ROOT_QUERIES)
def test_tree_facts_remembered_equal_worked_out(query: str) -> None:
    # What a query needs from its tree is remembered per tree: the same as worked out anew,
    # and the data range moves with the query's times unless some @ pins it.
    from promlab.promql import engine as engine_mod
    from promlab.promql.eval import histstats, rootfacts
    from promlab.promql.parser import parse_expr

    tree = parse_expr(query)
    for _ in range(2):
        facts = rootfacts.root_facts(tree)
        assert facts.stats_nodes == histstats.stats_selectors(tree)
        assert facts.top is rootfacts.root_facts(tree).top
        for start, end in ((0, 0), (T, T), (T - 3 * STEP, T + 7), (-5, 10**12)):
            for lookback in (300_000, 1_000):
                want = engine_mod.data_time_range(tree, start, end, lookback_ms=lookback)
                got = engine_mod._data_bounds(tree, start, end, lookback)
                assert got == (want or (0, 0))
    other = parse_expr(query)  # an equal tree is a tree of its own
    assert rootfacts.root_facts(other).tree is other
