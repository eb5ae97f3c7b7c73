"""Differential fuzzing of the PromQL engine against a real Prometheus 2.42.

A seeded generator (:mod:`tests.promql.promql_gen`) composes expressions over a small,
deliberately awkward dataset (counters with resets, gauges with NaN/±Inf/negative values, a
staleness gap, many labels, classic histogram buckets, series that collide once their name is
dropped) and every expression runs as an instant and a range query in promlab and in a
Prometheus 2.42 loaded with the same OpenMetrics file (``promtool`` backfill there,
:func:`promlab.importer.import_file` here). Both must agree on error/no error, on the label
sets, on the values (1e-9 relative, NaN equal to NaN, -0 apart from 0) and, for a top-level
``sort``/``sort_desc``/``topk``/``bottomk`` instant query, on the order. Where 2.42 differs from
3.x by design, :data:`KNOWN_DIFFERENCES` skips the expression or accepts the value (each class
with its reason); :data:`REWRITES` spells 2.42's names the 3.x way (both in fuzz_known.py; the
pinned regressions in fuzz_regressions.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import realprom
from promlab.errors import PromlabError
from promlab.importer import import_file
from promlab.promql.engine import Engine
from promlab.storage import MemoryStorage
from tests.promql.fuzz_compare import (
    Answer,
    diff,
    input_order_defined,
    is_ordered,
    normalise,
    same_error,
    sort_input_ordered,
)
from tests.promql.fuzz_known import KNOWN_DIFFERENCES, REWRITES
from tests.promql.fuzz_regressions import RANGE_REGRESSIONS, REGRESSIONS
from tests.promql.promql_gen import INSTANT_S, RANGE, SEED, Gen, write_openmetrics
from tests.promql.promql_handwritten import HANDWRITTEN

# More expressions or another seed for a longer hunt: PROMLAB_FUZZ_N=5000 PROMLAB_FUZZ_SEED=7.
N_RANDOM = int(os.environ.get("PROMLAB_FUZZ_N", "2000"))
FUZZ_SEED = int(os.environ.get("PROMLAB_FUZZ_SEED", str(SEED)))

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("differential")
    write_openmetrics(root / "data.om")
    return root / "data.om"


@pytest.fixture(scope="module")
def store(data_file: Path) -> MemoryStorage:
    st = MemoryStorage()
    import_file(data_file, st, progress=False)
    return st


@pytest.fixture(scope="module")
def prometheus_2_42(data_file: Path) -> Any:
    realprom.require_binary("promtool")
    realprom.require_binary("prometheus")
    data = data_file.parent / "data"
    realprom.backfill(data_file, data, progress=False)
    with realprom.prometheus(data_dir=data) as prom:
        yield prom


# Eager name removal as in 2.42; subqueries without a step use Prometheus's evaluation interval
# (15 s in the harness's configuration).
ENGINE = Engine(features="-promql-delayed-name-removal", default_subquery_step="15s")
ENGINE_EXPERIMENTAL = Engine(features=["-promql-delayed-name-removal",
                                       "promql-experimental-functions"],
                             default_subquery_step="15s")


def promlab_answer(store: MemoryStorage, expr: str, *, range_query: bool) -> Answer:
    engine = ENGINE
    for pattern, repl in REWRITES:
        if re.search(pattern, expr):
            expr = re.sub(pattern, repl, expr)
            engine = ENGINE_EXPERIMENTAL
    try:
        if range_query:
            start, end, step = RANGE
            res = engine.range(store, expr, start * 1000, end * 1000, step * 1000)
        else:
            res = engine.instant(store, expr, INSTANT_S * 1000)
    except PromlabError as e:
        return "error", str(e)
    return normalise(res.to_json())


def prometheus_answer(prom: Any, expr: str, *, range_query: bool) -> Answer:
    try:
        if range_query:
            return normalise(prom.query_range(expr, *RANGE))
        return normalise(prom.query(expr, time=INSTANT_S))
    except realprom.PrometheusAPIError as e:
        return "error", e.error


def expressions(n: int = N_RANDOM, seed: int = FUZZ_SEED) -> list[str]:
    """The hand-written cases, then ``n`` generated ones, without repeats."""
    gen = Gen(seed)
    seen: set[str] = set()
    out: list[str] = []
    for e in HANDWRITTEN + [gen.expression() for _ in range(n)]:
        if e not in seen:
            seen.add(e)
            out.append(e)
    return out


def run_all(prom: Any, store: MemoryStorage, exprs: list[str],
            report: Callable[[str], None] | None = None) -> list[tuple[str, str]]:
    """(expression, difference) for every expression where the two disagree."""
    bad: list[tuple[str, str]] = []
    for expr in exprs:
        known = [k for k in KNOWN_DIFFERENCES if k.matches(expr)]
        if any(k.values is None and k.answers is None and not k.range_only for k in known):
            continue
        for rq in (False, True):
            if rq and any(k.range_only for k in known):
                continue
            checks = [k.values for k in known if k.values is not None
                      and (rq or not k.range_values or not input_order_defined(expr))]

            def allow(a: str, b: str, checks: list[Callable[[str, str], bool]] = checks) -> bool:
                return any(c(a, b) for c in checks)

            want = prometheus_answer(prom, expr, range_query=rq)
            got = promlab_answer(store, expr, range_query=rq)
            if any(k.answers is not None and k.answers(want, got) for k in known):
                continue
            d = diff(want, got, ordered=not rq and is_ordered(expr),
                     ties=re.search(r"topk|bottomk", expr) is not None,
                     ulp_labels="count_values" in expr, allow=allow,
                     ordered_labels=sort_input_ordered(expr))
            if d is None and want[0] == got[0] == "error":
                w_err, g_err = str(want[1]), str(got[1])
                if any(re.search(pattern, expr) for pattern, _ in REWRITES):
                    # the rewritten text is longer: positions after it move
                    w_err, g_err = (re.sub(r"\d+:\d+: ", "", x) for x in (w_err, g_err))
                # a subquery's inner range evaluation leaves series order undefined too
                d = same_error(w_err, g_err,
                               range_query=rq or re.search(r"\[\w+:\w*\]", expr) is not None)
            if d is not None:
                bad.append((expr, f"{'range' if rq else 'instant'}: {d}"))
                if report:
                    report(f"{expr}\n    {bad[-1][1]}")
                break
    return bad


# --- regressions: differences the fuzzer found, pinned without Prometheus ------------------------



def _instant_value(store: MemoryStorage, expr: str) -> str:
    rtype, res = promlab_answer(store, expr, range_query=False)
    if rtype == "error":
        return f"error: {res}"
    if rtype == "vector" and not res:
        return "empty"
    if rtype == "scalar":
        return str(res[0][1])
    assert rtype == "vector" and len(res) == 1, (rtype, res)
    return str(res[0][1][0][1])


@pytest.mark.parametrize(("expr", "want"), REGRESSIONS)
def test_regression(store: MemoryStorage, expr: str, want: str) -> None:
    assert _instant_value(store, expr) == want




@pytest.mark.parametrize(("expr", "want"), RANGE_REGRESSIONS)
def test_range_regression(store: MemoryStorage, expr: str, want: str) -> None:
    rtype, res = promlab_answer(store, expr, range_query=True)
    assert (f"error: {res}" if rtype == "error" else str(len(res))) == want


def test_regressions_are_differential_cases() -> None:
    """Every pinned regression also runs against Prometheus in the fuzz test."""
    exprs = set(expressions())
    for p in REGRESSIONS + RANGE_REGRESSIONS:
        assert p.values[0] in exprs, p.id


def test_diff_has_teeth() -> None:
    """The comparison catches a wrong value, a missing series, a sign of zero and an error."""
    a: Answer = ("vector", [((("job", "x"),), [(1.0, "1")])])
    assert diff(a, a) is None
    assert diff(a, ("vector", [((("job", "x"),), [(1.0, "1.0000001")])])) is not None
    assert diff(a, ("vector", [])) is not None
    assert diff(("scalar", [(1.0, "0")]), ("scalar", [(1.0, "-0")])) is not None
    assert diff(("scalar", [(1.0, "1e-07")]), ("scalar", [(1.0, "0.0000001")])) is not None
    assert diff(a, ("error", "boom")) is not None
    assert same_error('invalid parameter "query": 1:5: parse error: unclosed left parenthesis',
                      "1:5: parse error: unclosed left parenthesis") is None
    assert same_error("1:5: parse error: unclosed left parenthesis",
                      "1:6: parse error: unclosed left parenthesis") is not None
    assert same_error("vector cannot contain metrics with the same labelset",
                      "many-to-many matching not allowed") is not None
    assert diff(("vector", [((("a", "1"),), [(1.0, "2")]), ((("a", "2"),), [(1.0, "3")])]),
                ("vector", [((("a", "2"),), [(1.0, "3")]), ((("a", "1"),), [(1.0, "2")])]),
                ordered=True) is not None
    nans = [((("a", "1"),), [(1.0, "NaN")]), ((("a", "2"),), [(1.0, "NaN")])]
    assert diff(("vector", nans), ("vector", nans[::-1]), ordered=True) is None
    assert diff(("vector", nans), ("vector", nans[::-1]), ordered=True,
                ordered_labels=True) is not None


def test_generator_is_seeded_and_varied() -> None:
    first, again = expressions(800), expressions(800)
    assert first == again
    random_part = first[len(HANDWRITTEN):]
    for needle in ("offset", "@", "by (", "without (", "on(", "ignoring(", "group_left",
                   "label_replace", "label_join", "[", ":", "topk", "count_values", "bool",
                   "m30s:", "@ start() offset", 'sort_desc({__name__=~"g|m|h_bucket"}',
                   'a="1", a="1"', "ignoring(__name__)", "^(.*)$"):
        assert any(needle in e for e in random_part), needle


@pytest.mark.realprom
def test_promlab_agrees_with_prometheus_2_42(prometheus_2_42: Any, store: MemoryStorage) -> None:
    exprs = expressions()
    bad = run_all(prometheus_2_42, store, exprs)
    assert not bad, f"{len(bad)} of {len(exprs)} expressions differ:\n" + "\n".join(
        f"{e}\n    {d}" for e, d in bad[:20])


# A range long enough to be evaluated in step slices (every 30 s, at :20 and :50 past the
# minute: no window edge on a sample at :07 or on a grid of whole minutes).
LONG_RANGE = (INSTANT_S - 3600, INSTANT_S + 540, 30)
LONG_RANGE_EXPRS = [
    # a subquery is one range evaluation whichever slice asks: a moving @ in a parameter
    # starts at its first step (promlab restarted it in every slice)
    'count_over_time((quantile(scalar(m{a="1"} @ 1700001230), g) > 0)[20m:1m])',
    'count_over_time((topk(scalar(m{c!=""}) + 1, g{kind=~"temp|flat"} @ 1700000000))[20m:1m])',
    'quantile(scalar(max_over_time(m{a="1"}[3m] @ 1699997030)) / 4, g)',
    "last_over_time((timestamp(h_sum))[1w:])",
]


@pytest.mark.realprom
@pytest.mark.parametrize("expr", LONG_RANGE_EXPRS)
def test_long_range_agrees(prometheus_2_42: Any, store: MemoryStorage, expr: str) -> None:
    start, end, step = LONG_RANGE
    want = normalise(prometheus_2_42.query_range(expr, start, end, step))
    got = normalise(ENGINE.range(store, expr, start * 1000, end * 1000, step * 1000).to_json())
    assert want[1], "a case that shows nothing checks little"
    assert diff(want, got) is None, diff(want, got)
