"""Feature flags: experimental PromQL is refused unless enabled, with Prometheus's flag names."""

from __future__ import annotations

import pytest

from promlab.errors import BadData, QueryError
from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.promql.features import (
    DEFAULT_FEATURES,
    DELAYED_NAME_REMOVAL,
    DURATION_EXPR,
    EXPERIMENTAL_FUNCTIONS,
    EXTENDED_RANGE_SELECTORS,
    FILL_MODIFIERS,
    resolve_features,
)
from promlab.storage import MemoryStorage

M = 60_000


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    st = MemoryStorage()
    for name, job in (("a_total", "x"), ("a_total", "y"), ("b_total", "x")):
        st.add_series(Labels({"__name__": name, "job": job}), [i * M for i in range(11)],
                      [float(i) for i in range(11)])
    return st


@pytest.mark.parametrize(("query", "flag"), [
    pytest.param('sort_by_label(a_total, "job")', EXPERIMENTAL_FUNCTIONS, id="sort_by_label"),
    pytest.param("mad_over_time(a_total[5m])", EXPERIMENTAL_FUNCTIONS, id="mad_over_time"),
    pytest.param("ts_of_max_over_time(a_total[5m])", EXPERIMENTAL_FUNCTIONS, id="ts_of_max"),
    pytest.param("double_exponential_smoothing(a_total[5m], 0.5, 0.5)", EXPERIMENTAL_FUNCTIONS, id="des"),
    pytest.param("limitk(1, a_total)", EXPERIMENTAL_FUNCTIONS, id="limitk"),
    pytest.param("limit_ratio(0.5, a_total)", EXPERIMENTAL_FUNCTIONS, id="limit_ratio"),
    pytest.param("a_total offset step()", DURATION_EXPR, id="offset-step"),
    pytest.param("a_total offset min_of(range(), 1m)", DURATION_EXPR, id="offset-expr"),
    pytest.param("a_total + fill(0) b_total", FILL_MODIFIERS, id="fill"),
    pytest.param("increase(a_total[5m] anchored)", EXTENDED_RANGE_SELECTORS, id="anchored"),
    pytest.param("rate(a_total[5m] smoothed)", EXTENDED_RANGE_SELECTORS, id="smoothed"),
])
def test_experimental_needs_its_flag(store: MemoryStorage, query: str, flag: str) -> None:
    with pytest.raises(BadData, match=flag):
        Engine().instant(store, query, 10 * M)
    res = Engine(features=[flag]).instant(store, query, 10 * M)
    assert res.result_type == "vector"
    # another flag does not unlock it
    other = EXPERIMENTAL_FUNCTIONS if flag != EXPERIMENTAL_FUNCTIONS else FILL_MODIFIERS
    with pytest.raises(BadData):
        Engine(features=[other]).instant(store, query, 10 * M)


@pytest.mark.parametrize("query", [
    pytest.param("rate(a_total[4m+1m])", id="constant-duration-arith"),
    pytest.param("a_total @ 1m40s", id="at-duration"),
    pytest.param("a_total offset 1m30s", id="offset-duration"),
    pytest.param("rate(a_total[300])", id="numeric-range"),
])
def test_prometheus_3_syntax_needs_no_flag(store: MemoryStorage, query: str) -> None:
    assert Engine().instant(store, query, 10 * M).result_type == "vector"


def test_at_duration_literal_is_seconds(store: MemoryStorage) -> None:
    res = Engine().instant(store, 'a_total{job="x"} @ 1m40s', 10 * M)
    assert res.value.values.tolist() == [[1.0]]   # the sample at 60s, looked up at 100s


@pytest.mark.parametrize(("given", "expected"), [
    pytest.param(None, DEFAULT_FEATURES, id="default"),
    pytest.param("promql-duration-expr,promql-binop-fill-modifiers",
                 DEFAULT_FEATURES | {DURATION_EXPR, FILL_MODIFIERS}, id="comma-string"),
    pytest.param(["-promql-delayed-name-removal"], DEFAULT_FEATURES - {DELAYED_NAME_REMOVAL}, id="turn-off"),
])
def test_resolve_features(given: object, expected: frozenset[str]) -> None:
    assert resolve_features(given) == expected  # type: ignore[arg-type]


def test_all_and_unknown() -> None:
    assert EXTENDED_RANGE_SELECTORS in resolve_features("all")
    with pytest.raises(BadData, match="unknown feature flag"):
        resolve_features(["promql-nonsense"])


def test_eager_name_removal_is_prometheus_3_default_behaviour(store: MemoryStorage) -> None:
    q = 'label_replace(rate({__name__=~"a_total|b_total", job="x"}[5m]), "n", "$1", "__name__", "(.*)")'
    delayed = Engine().instant(store, q, 10 * M)
    assert sorted(ls.get("n") for ls in delayed.value.labels) == ["a_total", "b_total"]
    with pytest.raises(QueryError, match="same labelset"):
        Engine(features="-promql-delayed-name-removal").instant(store, q, 10 * M)


def test_session_features(store: MemoryStorage) -> None:
    from promlab.session import Session

    with Session(store, features=[EXPERIMENTAL_FUNCTIONS]) as s:
        df = s.query('sort_by_label(a_total, "job")', time=600)
        assert df["job"].tolist() == ["x", "y"]
    with Session(store) as s, pytest.raises(BadData):
        s.query('sort_by_label(a_total, "job")', time=600)
    with pytest.raises(BadData):
        Session(store, engine=Engine(), features="all")
