"""Distributed evaluation on a two-worker Dask cluster gives the single-process answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promlab import Session
from promlab.model import Labels, Matcher, MatchType
from promlab.promql.distributed import DistributedEngine, plan_query
from promlab.promql.engine import Engine
from promlab.promql.parser import parse_expr
from promlab.promql.values import Matrix, Scalar, Vector
from promlab.storage import MemoryStorage

STEP = 15_000
END = 3_600_000
CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "conformance" / "promql"
FULL = os.environ.get("PROMLAB_SCALE_FULL") == "1"


def _store() -> MemoryStorage:
    st = MemoryStorage()
    rng = np.random.default_rng(7)
    ts = np.arange(0, END, STEP)
    for i in range(30):
        base = {"instance": f"i{i}", "status": str(200 + i % 3), "job": "api" if i % 2 else "web"}
        counter = np.cumsum(rng.integers(0, 10, ts.size)).astype(float)
        if i == 5:
            counter[100:] -= counter[100]  # a counter reset
        st.add_series(Labels({"__name__": "req_total", **base}), ts.tolist(), counter.tolist())
        gauge = rng.normal(size=ts.size) * 10.0 ** rng.integers(-3, 4)
        if i == 3:
            gauge[50] = np.nan
        st.add_series(Labels({"__name__": "temp", **base}), ts.tolist(), gauge.tolist())
    return st


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    return _store()


@pytest.mark.parametrize(("query", "kinds"), [
    pytest.param("rate(x[5m])", ["gather"], id="per-series-function"),
    pytest.param("sum by (job) (rate(x[5m]))", ["partial"], id="sum-of-rate"),
    pytest.param("topk(3, x) / on() group(y)", ["partial", "partial"], id="binop-of-partials"),
    pytest.param("quantile(0.9, x)", ["gather"], id="quantile-gathers-input"),
    pytest.param("topk(scalar(y), x)", ["gather", "gather"], id="vector-param-not-split"),
    pytest.param("x / on(a) y", ["gather", "gather"], id="binop-gathers-both-sides"),
    pytest.param("2 * abs(x) > 1", ["gather"], id="scalar-arithmetic-is-local"),
    pytest.param("label_replace(x, 'a', '$1', 'b', '(.*)')", ["gather"], id="label-replace-on-client"),
    pytest.param("histogram_quantile(0.9, rate(x[5m]))", ["gather"], id="buckets-across-series"),
    pytest.param("max_over_time(sum(x)[10m:1m])", [], id="subquery-over-aggregation-local"),
    pytest.param("max_over_time(rate(x[5m])[10m:1m])", ["gather"], id="subquery-of-local"),
    pytest.param("time() + 1", [], id="no-selector"),
])
def test_plan(query: str, kinds: list[str]) -> None:
    assert plan_query(parse_expr(query)).kinds() == kinds


QUERIES = [
    "req_total", "rate(req_total[5m])", "sum(rate(req_total[5m]))",
    "sum by (status) (rate(req_total[5m]))", "sum without (instance) (temp)",
    "avg by (job) (temp)", "count by (status) (temp)", "min by (job) (temp)", "max(temp)",
    "group by (status) (temp)", "topk(3, temp)", "bottomk by (job) (2, temp)",
    'count_values("v", round(temp))', "stddev by (job) (temp)", "stdvar(temp)",
    "quantile by (job) (0.9, temp)", "rate(req_total[5m]) / on(instance) group_left temp",
    "sum(rate({__name__=~'req_total|temp'}[5m]))", "max_over_time(rate(req_total[5m])[20m:1m])",
    "sum by (job) (temp) / on(job) group_left count by (job) (temp)", "-temp > 1",
    "topk(2, sum by (instance) (rate(req_total[5m])))", "absent(nope)",
]
# Ulps apart: stddev/stdvar by Chan's parallel combine vs Welford in one pass; avg as
# Prometheus divides it, sum/n + c/n, where the shards' Kahan sums split the same total
# between sum and compensation otherwise than one pass over the rows does.
INEXACT = {"stddev", "stdvar", "avg"}


def _assert_same(a: Any, b: Any, query: str) -> None:
    assert type(a) is type(b)
    if isinstance(a, Scalar):
        np.testing.assert_array_equal(a.values, b.values)
        return
    assert isinstance(a, Vector | Matrix)
    assert a.labels == b.labels
    if isinstance(a, Vector):
        np.testing.assert_array_equal(a.present, b.present)
    if any(op in query for op in INEXACT):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-12)
    else:
        np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("mode", ["instant", "range"])
def test_same_answers_as_one_process(dask_client: Any, store: MemoryStorage, query: str,
                                     mode: str) -> None:
    one, dist = Engine(), DistributedEngine(dask_client)
    if mode == "instant":
        a, b = one.instant(store, query, 1_800_000), dist.instant(store, query, 1_800_000)
    else:
        a = one.range(store, query, 600_000, END, 60_000)
        b = dist.range(store, query, 600_000, END, 60_000)
    _assert_same(a.value, b.value, query)
    assert set(a.annotations.warnings) == set(b.annotations.warnings)
    assert set(a.annotations.infos) == set(b.annotations.infos)
    remote = dist.last_stats
    if plan_query(parse_expr(query)).remote:
        assert remote.shards == 2 and remote.tasks >= 2


@pytest.mark.parametrize("query", [
    pytest.param("req_total[5m]", id="range-vector"),
    pytest.param("absent_over_time(req_total[5m])", id="absent-over-time"),
    pytest.param("temp[10m:1m]", id="subquery-range-vector"),
])
def test_range_vectors_merge_across_shards(dask_client: Any, store: MemoryStorage,
                                           query: str) -> None:
    """Range-vector frames from both shards merge (their scalar fields are shared)."""
    a = Engine().instant(store, query, 1_800_000)
    dist = DistributedEngine(dask_client)
    b = dist.instant(store, query, 1_800_000)
    _assert_same(a.value, b.value, query)
    assert dist.last_stats.shards == 2


def test_errors_travel_back(dask_client: Any) -> None:
    st = MemoryStorage()
    for name in ("a", "b"):  # same labels once rate() drops the names, both present
        st.add_series(Labels({"__name__": name, "x": "1"}), [0, 60_000], [1.0, 2.0])
    dist = DistributedEngine(dask_client)
    with pytest.raises(Exception, match="same labelset"):
        dist.instant(st, "rate({__name__=~'a|b'}[5m])", 60_000)
    a = Engine().instant(st, "sum(rate({__name__=~'a|b'}[5m]))", 60_000).value
    b = dist.instant(st, "sum(rate({__name__=~'a|b'}[5m]))", 60_000).value
    _assert_same(a, b, "sum")


def test_session_with_cluster_on_a_directory(dask_client: Any, tmp_path: Path) -> None:
    src = _store()
    with Session(str(tmp_path / "data")) as s:
        app = s.storage.appender()
        q = src.querier(0, END)
        try:
            ss = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
        finally:
            q.close()
        for i in range(len(ss)):
            ls, t, v = ss.series(i)
            for tt, vv in zip(t.tolist(), v.tolist(), strict=True):
                app.append(ls, tt, vv)
        app.commit()
        s.flush()
    with Session(str(tmp_path / "data"), read_only=True) as one, \
            Session(str(tmp_path / "data"), read_only=True, cluster=dask_client) as dist:
        assert "Dask" in repr(dist) and "Dask dashboard" in dist._repr_html_()
        for q in ("sum by (status) (rate(req_total[5m]))", "topk(3, temp)"):
            a = one.evaluate(q, start=600, end=3600, step=60)
            b = dist.evaluate(q, start=600, end=3600, step=60)
            _assert_same(a.value, b.value, q)
        assert dist.engine.last_stats.samples > 0  # type: ignore[attr-defined]


CONFORMANCE = ["aggregators.test", "collision.test", "name_label_dropping.test",
               "operators.test"]


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.test")) if FULL
                         else CONFORMANCE)
def test_conformance_through_dask(dask_client: Any, name: str) -> None:
    """The conformance scripts give the same passes and failures through the cluster
    (the instant evals only, without the hidden reruns, unless PROMLAB_SCALE_FULL=1)."""
    from promlab.promql.promqltest import Runner

    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    opts: dict[str, Any] = dict(lookback_delta="5m", max_samples=10000,
                                default_subquery_step="1m", features="all")
    runs = dict(at_reruns=FULL, range_mode=FULL)
    one = Runner(Engine(**opts), **runs).run_path(path)
    dist = Runner(DistributedEngine(dask_client, **opts), **runs).run_path(path)
    assert one.passed > 0
    assert (dist.passed, dist.failed) == (one.passed, one.failed), dist.failures[:3]
    assert {(f.line, f.phase) for f in dist.failures} == {(f.line, f.phase) for f in one.failures}
