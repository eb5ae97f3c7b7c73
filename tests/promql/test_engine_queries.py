"""End-to-end engine tests from PromQL text (parser + engine + function registry)."""

from __future__ import annotations

import numpy as np
import pytest

import promlab as pq
from promlab.errors import QueryError
from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.storage import MemoryStorage

M = 60_000


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    st = MemoryStorage()
    t = np.arange(0, 31) * M  # 0..30m every minute
    st.add_series(Labels({"__name__": "req_total", "job": "a"}), t, np.arange(31.0) * 60)
    st.add_series(Labels({"__name__": "req_total", "job": "b"}), t, np.arange(31.0) * 120)
    st.add_series(Labels({"__name__": "other_total", "job": "a"}), t, np.arange(31.0) * 60)
    st.add_series(Labels({"__name__": "limit", "job": "a"}), t, np.full(31, 1000.0))
    return st


def run(store, q: str, t_ms: int) -> dict[str, float]:
    res = Engine().instant(store, q, t_ms)
    v = res.value
    return {str(ls): float(v.values[i, 0]) for i, ls in enumerate(v.labels) if v.present[i, 0]}


@pytest.mark.parametrize(("q", "t", "want"), [
    pytest.param('req_total{job="a"}', 10 * M, {'req_total{job="a"}': 600.0}, id="selector"),
    pytest.param('req_total{job="a"} offset 5m', 10 * M, {'req_total{job="a"}': 300.0},
                 id="offset"),
    pytest.param('req_total{job="a"} @ 120', 10 * M, {'req_total{job="a"}': 120.0}, id="at"),
    pytest.param('rate(req_total[5m])', 10 * M, {'{job="a"}': 1.0, '{job="b"}': 2.0},
                 id="rate-drops-name"),
    pytest.param('sum by (__name__) (rate(req_total{job="a"}[5m]))', 10 * M, {"{}": 1.0},
                 id="delayed-name-removal"),
    pytest.param('last_over_time(req_total{job="a"}[5m])', 10 * M,
                 {'req_total{job="a"}': 600.0}, id="last-over-time-keeps-name"),
    pytest.param('max_over_time(rate(req_total{job="b"}[2m])[10m:1m])', 10 * M,
                 {'{job="b"}': 2.0}, id="subquery"),
    pytest.param('req_total / on(job) group_left limit', 10 * M, {'{job="a"}': 0.6},
                 id="group-left"),
    pytest.param('req_total > bool 700', 10 * M, {'{job="a"}': 0.0, '{job="b"}': 1.0},
                 id="bool"),
    pytest.param('-req_total{job="a"} or -other_total', 10 * M, {'{job="a"}': -600.0},
                 id="or-after-name-drop"),
    pytest.param('timestamp(req_total{job="a"})', 10 * M + 30_000, {'{job="a"}': 600.0},
                 id="timestamp-of-selector"),
    pytest.param('timestamp(req_total{job="a"} @ 120)', 10 * M, {'{job="a"}': 120.0},
                 id="timestamp-of-pinned-selector"),
    pytest.param('timestamp(req_total{job="a"} and limit)', 10 * M + 30_000,
                 {'{job="a"}': 630.0}, id="timestamp-of-operator-is-step"),
])
def test_queries(store, q, t, want):
    assert run(store, q, t) == want


def test_duplicate_labelset_after_name_drop(store):
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        run(store, 'rate({job="a", __name__=~".+_total"}[5m])', 10 * M)


def test_instant_keeps_sort_order(store):
    res = Engine().instant(store, "sort_desc(req_total)", 10 * M)
    assert [ls["job"] for ls in res.value.labels] == ["b", "a"]


def test_range_sorted_by_labels(store):
    res = Engine().range(store, "sort_desc(req_total)", 0, 10 * M, M)
    assert [ls["job"] for ls in res.value.labels] == ["a", "b"]


def test_public_query_range(store):
    df = pq.query_range("rate(req_total[5m])", "1970-01-01T00:05:00Z", 600, "1m", data=store)
    assert df.attrs["result_type"] == "matrix"
    assert list(df.columns) == ["job", "timestamp", "value"]
    assert len(df) == 12
    assert df.prom.wide().shape == (6, 2)


def test_public_query_bad_data():
    with pytest.raises(TypeError):
        pq.query("1", 0, data=42)


def test_public_query_on_store_directory(tmp_path):
    from promlab.storage import open_store

    with open_store(tmp_path / "data", ooo_window=None) as st:
        app = st.appender()
        for i in range(10):
            app.append(Labels({"__name__": "up", "job": "a"}), i * M, float(i))
        app.commit()
        st.flush()
    df = pq.query("up", 5 * 60, data=tmp_path / "data")
    assert df["value"].tolist() == [5.0]
    df = pq.query_range("up * 2", 0, 540, "3m", data=str(tmp_path / "data"))
    assert df["value"].tolist() == [0.0, 6.0, 12.0, 18.0]


def test_negative_zero_literal_is_its_own_tree(store) -> None:
    """-0 and 0 are different literals: a cache keyed by trees (an aggregation's parameter
    here) must not hand the 0 of an earlier query to one that wrote -0."""
    with pytest.raises(QueryError, match=r"^Scalar value \+Inf overflows int64$"):
        Engine().instant(store, "topk(1 / 0, req_total)", 10 * M)
    # k = -Inf: below 1 at every step, so nothing (not the first query's error)
    assert run(store, "topk(1 / -0, req_total)", 10 * M) == {}
