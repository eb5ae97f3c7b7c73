"""Hostile queries: every limit is a typed error, the process survives, answers stay exact.

Memory cases run in a child process under RLIMIT_AS (a query that tried to allocate what it
asks for would die there with MemoryError); timeouts are checked with generous margins (the
precise "within 10% + 100 ms" is the benchmarks' job)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from promlab.errors import BadData, ParseError, QueryCanceled, QueryTimeout
from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.promql.eval import limits
from promlab.promql.parser import parse_expr, to_string
from promlab.promql.parser.parser import MAX_DEPTH
from promlab.storage import MemoryStorage

T0 = 1_672_531_200_000  # 2023-01-01
RESOLUTION = ("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
              "query resolution (?step=XX)")


def _store(series: int = 3, days: float = 1.0) -> MemoryStorage:
    st = MemoryStorage()
    ts = np.arange(T0, T0 + int(days * 86_400_000), 15_000, dtype=np.int64)
    for i in range(series):
        st.add_series(Labels({"__name__": "x", "i": str(i)}), ts, np.arange(ts.size, dtype=float) * (i + 1))
    return st


@pytest.mark.parametrize("step_ms", [pytest.param(10, id="10ms"), pytest.param(1, id="1ms"),
                                     pytest.param(2864, id="just-over")])
def test_eleven_thousand_points(step_ms: int) -> None:
    with pytest.raises(BadData) as info:
        Engine().range(_store(), "sum(x)", 1_672_531_200_000, 1_704_067_200_000
                       if step_ms < 100 else 1_672_531_200_000 + 11_001 * step_ms, step_ms)
    assert str(info.value) == RESOLUTION


def test_eleven_thousand_points_exactly_is_fine() -> None:
    res = Engine().range(_store(), "sum(x)", T0, T0 + 11_000 * 1000, 1000)
    assert res.value.values.shape == (1, 11_001)


MEMORY_CASES = [
    pytest.param("rng", "sum(x)", "BadData", id="range-10ms-a-year"),
    pytest.param("inst", "max_over_time(x[30d:1ms])", "TooManySamples", id="subquery-1ms"),
    pytest.param("inst", "max_over_time(max_over_time(x[1d:1ms])[1d:1ms])", "TooManySamples",
                 id="nested-subquery-1ms"),
    pytest.param("inst", "count(x[100y])", "", id="parses-not-allowed"),
]


@pytest.mark.parametrize(("kind", "expr", "want"), MEMORY_CASES)
def test_queries_cannot_blow_memory(kind: str, expr: str, want: str) -> None:
    code = textwrap.dedent(f"""
        import resource, numpy as np
        from promlab.errors import PromlabError
        from promlab.model import Labels
        from promlab.promql.engine import Engine
        from promlab.storage import MemoryStorage
        st = MemoryStorage()
        ts = np.arange({T0}, {T0} + 86_400_000, 15_000, dtype=np.int64)
        for i in range(3):
            st.add_series(Labels({{"__name__": "x", "i": str(i)}}), ts, np.ones(ts.size))
        cap = 1_500 << 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            if {kind!r} == "rng":
                Engine().range(st, {expr!r}, 1672531200000, 1704067200000, 10)
            else:
                Engine().instant(st, {expr!r}, {T0} + 86_400_000)
            print("RESULT ok")
        except PromlabError as e:
            print("RESULT", type(e).__name__, e)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    assert "MemoryError" not in proc.stdout + proc.stderr
    if want:
        assert line.split()[1] == want, line
    else:
        assert line.split()[1] in ("ok", "ParseError", "BadData"), line


def test_timeout_ends_a_nested_subquery() -> None:
    st = _store(series=20, days=7)
    eng = Engine(timeout="1s")
    t = time.monotonic()
    with pytest.raises(QueryTimeout):
        eng.instant(st, "max_over_time(max_over_time(rate(x[5m])[1d:1s])[6d:1m])", T0 + 7 * 86_400_000)
    spent = time.monotonic() - t
    # Within 10% + 100 ms of the limit on an idle machine; a wide margin for a shared CI box.
    assert spent < 3 * (1.1 * 1.0 + 0.1), spent


def test_cancel_ends_a_long_range_query() -> None:
    st = _store(series=20, days=7)
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    t = time.monotonic()
    try:
        with pytest.raises(QueryCanceled):
            Engine(timeout=None).range(st, "max_over_time(rate(x[5m])[1d:1s])", T0 + 86_400_000,
                                       T0 + 7 * 86_400_000, 60_000, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - t < 3 * (0.5 + 0.1 + 0.5)


@pytest.mark.parametrize("expr", [
    "rate(x[5m])", "sum by (i) (x)", "max_over_time(rate(x[10m])[1h:1m])", "x * on(i) x",
    "timestamp(x)", "topk(1, x)", "absent(nope)", "x > 1000", "sum(x) / count(x)",
    "label_replace(rate(x[5m]), \"j\", \"$1\", \"i\", \"(.*)\")",
])
def test_step_slices_are_exact(expr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    st = _store(series=4, days=0.5)
    whole = Engine(timeout=None).range(st, expr, T0 + 3_600_000, T0 + 40_000_000, 30_000)
    monkeypatch.setattr(limits, "SLICE_MIN_STEPS", 4)
    monkeypatch.setattr(limits, "SLICE_FIRST_STEPS", 3)
    sliced = Engine(timeout="1h").range(st, expr, T0 + 3_600_000, T0 + 40_000_000, 30_000)
    assert [str(ls) for ls in whole.value.labels] == [str(ls) for ls in sliced.value.labels]
    np.testing.assert_array_equal(whole.value.present, sliced.value.present)
    np.testing.assert_array_equal(np.where(whole.value.present, whole.value.values, 0),
                                  np.where(sliced.value.present, sliced.value.values, 0))


@pytest.mark.parametrize(("op", "n"), [("or", 350), ("or", 999), ("or", 10_000), ("+", 999),
                                       ("+", 3_000), ("and", 2_000), ("*", 1_000)])
def test_long_chains(op: str, n: int) -> None:
    st = _store(series=2, days=0.1)
    text = f" {op} ".join(["x"] * n)
    res = Engine(timeout=None).instant(st, text, T0 + 3_600_000)
    base = Engine().instant(st, "x", T0 + 3_600_000).value.values[:, 0]
    got = res.value.values[:, 0]
    if op == "+":
        want = base * n
    elif op == "*":
        with np.errstate(over="ignore"):
            want = base ** n
    else:
        want = base
    np.testing.assert_allclose(got, want)
    assert to_string(parse_expr(text)) == text


@pytest.mark.parametrize(("make", "ok"), [
    pytest.param(lambda d: "(" * d + "x" + ")" * d, True, id="parens"),
    pytest.param(lambda d: "abs(" * d + "x" + ")" * d, True, id="calls"),
    pytest.param(lambda d: "sum(" * d + "x" + ")" * d, True, id="aggregations"),
    pytest.param(lambda d: "-" * d + "x", True, id="unary"),
    pytest.param(lambda d: " ^ ".join(["x"] * d), True, id="power-chain"),
])
def test_deep_nesting_stated_limit(make, ok: bool) -> None:  # type: ignore[no-untyped-def]
    st = _store(series=1, days=0.1)
    depth = MAX_DEPTH - 2
    Engine(timeout=None).instant(st, make(depth), T0 + 3_600_000)
    for d in (MAX_DEPTH + 1, 5_000, 100_000):
        with pytest.raises(ParseError, match=f"expression nests too deeply \\(more than {MAX_DEPTH} levels\\)"):
            parse_expr(make(d))


@pytest.mark.parametrize("expr", [
    pytest.param("h", id="selector"),
    pytest.param("rate(h[5m])", id="rate"),
    pytest.param("histogram_count(rate(h[5m]))", id="count-of-rate"),
    pytest.param("sum(h)", id="sum"),
])
def test_step_slices_keep_histograms(expr: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sliced evaluation (on whenever a query has a timeout) carries native histogram cells."""
    from promlab.model.histogram import from_bucket_map

    st = MemoryStorage()
    n = 400
    ts = T0 + np.arange(n, dtype=np.int64) * 60_000
    for j in range(2):
        hists = [from_bucket_map(0, {0: float(i + j), 1: float(2 * i)}, sum=float(3 * i))
                 for i in range(n)]
        st.add_histogram_series(Labels({"__name__": "h", "j": str(j)}), ts, hists)
    start, end = T0 + 600_000, T0 + (n - 1) * 60_000
    whole = Engine(timeout=None).range(st, expr, start, end, 60_000)
    monkeypatch.setattr(limits, "SLICE_MIN_STEPS", 4)
    monkeypatch.setattr(limits, "SLICE_FIRST_STEPS", 3)
    sliced = Engine(timeout="1h").range(st, expr, start, end, 60_000)
    assert [str(ls) for ls in whole.value.labels] == [str(ls) for ls in sliced.value.labels]
    np.testing.assert_array_equal(whole.value.present, sliced.value.present)
    if whole.value.histograms is None:
        assert sliced.value.histograms is None
        np.testing.assert_array_equal(np.where(whole.value.present, whole.value.values, 0),
                                      np.where(sliced.value.present, sliced.value.values, 0))
    else:
        assert sliced.value.histograms is not None
        for a, b in zip(whole.value.histograms.ravel(), sliced.value.histograms.ravel(),
                        strict=True):
            assert (a is None and b is None) or (a is not None and b is not None and a.equals(b))
