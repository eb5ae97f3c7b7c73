"""The vectorised native-histogram paths agree exactly with the general ones: ``sum`` over
histograms of one layout (histaggs' dense Neumaier sums vs ``histops.KahanSum``), ``rate`` windows
without a counter reset (``histops.sub_compacted`` vs ``hist_rate``)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from promlab.model import Labels
from promlab.model.histogram import CounterResetHint, FloatHistogram, from_bucket_map
from promlab.promql.engine import Engine
from promlab.promql.eval import histaggs, histops
from promlab.promql.values import Vector
from promlab.storage import MemoryStorage

T = 3_600_000
R, N, U, G = (CounterResetHint.COUNTER_RESET, CounterResetHint.NOT_COUNTER_RESET,
              CounterResetHint.UNKNOWN, CounterResetHint.GAUGE)


def fh(pos: dict[int, float], neg: dict[int, float] | None = None, *, zc: float = 1.0,
       hint: CounterResetHint = U, total: float | None = None) -> FloatHistogram:
    return from_bucket_map(3, pos, neg or {}, zero_count=zc, zero_threshold=1e-3, sum=2.5,
                           count=total, counter_reset_hint=hint, keep_empty=True)


SUB_CASES = {
    "same-spans": (fh({0: 5.0, 1: 7.0}), fh({0: 2.0, 1: 3.0})),
    "same-spans-a-zero-difference": (fh({0: 5.0, 1: 7.0}), fh({0: 5.0, 1: 3.0})),
    "new-buckets-in-later": (fh({-4: 1.0, 0: 5.0, 1: 7.0, 9: 2.0}), fh({0: 2.0, 1: 3.0})),
    "bucket-only-in-earlier": (fh({0: 5.0}), fh({0: 2.0, 3: 1.0})),
    "negative-side": (fh({0: 1.0}, {-2: 4.0, 5: 1.0}), fh({0: 1.0}, {-2: 1.0})),
    "nan-and-inf": (fh({0: math.nan, 1: math.inf}), fh({0: 1.0, 1: 2.0})),
    "empty-bucket-listed": (fh({0: 0.0, 2: 3.0}), fh({0: 0.0, 2: 1.0})),
}


@pytest.mark.parametrize(("a", "b"), list(SUB_CASES.values()), ids=list(SUB_CASES))
def test_sub_compacted_equals_sub_then_compact(a: FloatHistogram, b: FloatHistogram) -> None:
    want = histops.sub(a, b).compact()
    got = histops.sub_compacted(a, b)
    assert str(got) == str(want)  # NaN-safe comparison of every bucket, count and sum
    assert (got.positive_spans, got.negative_spans) == (want.positive_spans, want.negative_spans)
    assert got.counter_reset_hint == want.counter_reset_hint == G
    assert str((got.count, got.zero_count)) == str((want.count, want.zero_count))


def _random_hists(rng: np.random.Generator, n: int, hints: list[CounterResetHint],
                  scale: float) -> list[FloatHistogram]:
    out = []
    for k in range(n):
        idx = rng.choice(np.arange(-6, 12), size=int(rng.integers(0, 7)), replace=False)
        pos = {int(i): float(rng.choice([scale, 1.0, 1e-9, 3.25])) * float(rng.integers(0, 5))
               for i in idx}
        neg = {int(i): 1.0 + k for i in idx[:2] - 3}
        out.append(fh(pos, neg, zc=float(rng.integers(0, 3)) * scale, hint=hints[k % len(hints)]))
    return out


SUM_CASES = {
    "one-hint": ([U], 1.0),
    "gauges-mixed-in": ([U, G, U], 1.0),
    "conflicting-resets": ([R, N], 1.0),
    "resets-and-unknown": ([R, R, U], 1.0),
    "compensation-matters": ([N], 1e17),
    "overflow-to-inf": ([U], 1.7e308),
}


@pytest.mark.parametrize("limit", [histaggs.DENSE_LIMIT, 1], ids=["one-matrix", "chunked"])
@pytest.mark.parametrize(("hints", "scale"), list(SUM_CASES.values()), ids=list(SUM_CASES))
def test_dense_sum_equals_kahan_fold(hints: list[CounterResetHint], scale: float, limit: int,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(histaggs, "DENSE_LIMIT", limit)
    rng = np.random.default_rng(len(hints) + int(math.log10(scale)))
    store = MemoryStorage()
    groups: dict[str, list[FloatHistogram]] = {}
    for i in range(12):
        ls = Labels({"__name__": "x", "grp": "ab"[i % 2], "i": f"{i:02d}"})
        r = (i // 2) % len(hints)  # members of a group differ in their hints
        hs = _random_hists(rng, 3, hints[r:] + hints[:r], scale)
        store.add_histogram_series(ls, [T, T + 60_000, T + 120_000], hs)
        groups.setdefault(ls["grp"], []).append(hs[1])  # the sample at T + 60 s
    res = Engine().instant(store, "sum by (grp) (x)", T + 60_000)
    assert isinstance(res.value, Vector) and res.value.histograms is not None
    conflict = False
    for row, ls in enumerate(res.value.labels):
        members = groups[ls["grp"]]  # label order, as the aggregation takes them
        want = histops.KahanSum(members[0])
        for h in members[1:]:
            want.add(h)
        conflict |= want.hint_conflict
        got = res.value.histograms[row, 0]
        assert str(got) == str(want.result())
        assert got.counter_reset_hint == want.hint
        assert dataclasses.astuple(got) == dataclasses.astuple(want.result()) or \
            any(math.isnan(v) for v in (*got.positive_buckets, got.count, got.sum))
    conflicts = [w for w in res.annotations.warnings if "conflicting counter resets" in str(w)]
    assert bool(conflicts) == conflict == (R in hints and N in hints)


def test_dense_sum_keeps_the_compensation() -> None:
    """1e17 + 1 + 1 + 1 + 1 - 1e17 is 4 only with the compensation (plainly summed: 0)."""
    store = MemoryStorage()
    vals = [1e17, 1.0, 1.0, 1.0, 1.0, -1e17]
    members = [fh({0: v, 2: 1.0}, zc=v) for v in vals]
    for i, h in enumerate(members):
        store.add_histogram_series(Labels({"__name__": "x", "i": str(i)}), [T], [h])
    res = Engine().instant(store, "sum(x)", T)
    assert isinstance(res.value, Vector) and res.value.histograms is not None
    got = res.value.histograms[0, 0]
    assert dict(got.buckets(True)) == {0: 4.0, 2: 6.0} and got.zero_count == 4.0
    want = histops.KahanSum(members[0])
    for h in members[1:]:
        want.add(h)
    assert got == want.result()


def test_rate_windows_without_resets_equal_general_path() -> None:
    """Series a and b hold the same histogram samples; b also has one float sample in the middle,
    which sends all of b's windows through the general path (those holding the float give
    nothing). Every other window must agree exactly."""
    rng = np.random.default_rng(5)
    counts = np.zeros(10)
    hs = []
    for k in range(240):
        counts += rng.poisson(1.5, 10)
        if k == 130:
            counts[:] = 0  # a counter reset: its windows take the general path in both series
        hs.append(fh({i - 4: float(c) for i, c in enumerate(counts)}, zc=float(k)))
    ts = [2 * T + k * 15_000 for k in range(240)]
    store = MemoryStorage()
    store.add_histogram_series(Labels({"__name__": "x", "s": "a"}), ts, hs)
    mid = ts[60] + 7_500
    store.add_histogram_series(Labels({"__name__": "x", "s": "b"}), [*ts[:61], mid, *ts[61:]],
                               [*hs[:61], 5.0, *hs[61:]])
    res = Engine().range(store, "rate(x[5m])", 2 * T + 600_000, 3 * T - 1, 60_000)
    assert isinstance(res.value, Vector) and res.value.histograms is not None
    a, b = res.value.histograms
    assert len(a) == 50 and all(x is not None for x in a)
    compared = [(x, y) for x, y in zip(a, b, strict=True) if y is not None]
    assert 40 <= len(compared) < 50
    assert [str(x) for x, _ in compared] == [str(y) for _, y in compared]
    assert [x.positive_spans for x, _ in compared] == [y.positive_spans for _, y in compared]
