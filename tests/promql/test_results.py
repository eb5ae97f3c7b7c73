"""Result DataFrames and the ``df.prom`` accessor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import promlab as pq
from promlab.model import Labels, Matcher, MatchType
from promlab.promql.parser.ast import MatrixSelector, NumberLiteral, StringLiteral, VectorSelector
from promlab.storage import MemoryStorage

M = 60_000
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prometheus-api-examples"


def sel(name: str) -> VectorSelector:
    return VectorSelector(name=name, matchers=(Matcher(MatchType.EQUAL, "__name__", name),))


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    st = MemoryStorage()
    t = np.arange(0, 6) * M
    st.add_series(Labels({"__name__": "up", "job": "a", "instance": "1"}), t, np.ones(6))
    st.add_series(Labels({"__name__": "up", "job": "b"}), t, np.arange(6.0) + 0.5)
    st.add_series(Labels({"__name__": "odd", "x": "y"}), [0, M], [float("nan"), float("inf")])
    return st


def test_vector_frame_columns_and_dtypes(store):
    df = pq.query(sel("up"), 2 * 60, data=store)
    assert list(df.columns) == ["__name__", "instance", "job", "timestamp", "value"]
    assert str(df["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert df["value"].dtype == np.float64
    assert df["job"].tolist() == ["a", "b"]
    assert df["instance"].isna().tolist() == [False, True]
    assert df.attrs["result_type"] == "vector"
    assert df.attrs["start"] == pd.Timestamp(120_000, unit="ms", tz="UTC")


def test_range_frame_long_form(store):
    df = pq.query_range(sel("up"), 0, 300, "60s", data=store)
    assert len(df) == 12
    assert df.attrs["result_type"] == "matrix"
    assert df.attrs["step"] == pd.Timedelta(60, unit="s")


@pytest.mark.parametrize(("expr", "rtype", "value"), [
    pytest.param(NumberLiteral(value=2.5), "scalar", 2.5, id="scalar"),
    pytest.param(StringLiteral(value="hi"), "string", "hi", id="string"),
])
def test_scalar_and_string_frames(store, expr, rtype, value):
    df = pq.query(expr, 10, data=store)
    assert list(df.columns) == ["timestamp", "value"]
    assert len(df) == 1 and df["value"].iloc[0] == value
    assert df.attrs["result_type"] == rtype


def test_empty_frame(store):
    df = pq.query(sel("nothing"), 10, data=store)
    assert df.empty and list(df.columns) == ["timestamp", "value"]
    assert str(df["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert df.prom.to_prometheus_json() == {"resultType": "vector", "result": []}
    assert df.prom.wide().empty


def test_wide(store):
    df = pq.query_range(sel("up"), 0, 300, "60s", data=store)
    w = df.prom.wide()
    assert isinstance(w.index, pd.DatetimeIndex) and len(w) == 6
    assert list(w.columns) == ['up{instance="1", job="a"}', 'up{job="b"}']
    assert w['up{job="b"}'].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]


def test_prometheus_json_formats(store):
    df = pq.query(sel("odd"), 61.5, data=store)
    data = df.prom.to_prometheus_json()
    assert data == {"resultType": "vector",
                    "result": [{"metric": {"__name__": "odd", "x": "y"}, "value": [61.5, "+Inf"]}]}
    df = pq.query(NumberLiteral(value=float("nan")), 1, data=store)
    assert df.prom.to_prometheus_json() == {"resultType": "scalar", "result": [1, "NaN"]}
    df = pq.query(NumberLiteral(value=1e-7), 1, data=store)
    assert df.prom.to_prometheus_json()["result"][1] == "0.0000001"


def test_instant_range_vector_frame(store):
    expr = MatrixSelector(vector_selector=sel("up"), range_ms=2 * M)
    df = pq.query(expr, 300, data=store)
    assert df.attrs["result_type"] == "matrix"
    assert len(df) == 4
    js = df.prom.to_prometheus_json()
    assert [len(r["values"]) for r in js["result"]] == [2, 2]


def _example(name: str) -> dict:
    path = EXAMPLES / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    return json.loads(path.read_text())["body"]["data"]


def _shape(obj):
    if isinstance(obj, dict):
        return {k: _shape(v) for k, v in obj.items() if k != "metric"} | (
            {"metric": "dict"} if "metric" in obj else {})
    if isinstance(obj, list):
        return [_shape(obj[0])] if obj and not isinstance(obj[0], str | int | float) else \
            [type(x).__name__ if not isinstance(x, int | float) else "number" for x in obj]
    return type(obj).__name__


@pytest.mark.parametrize(("example", "make"), [
    pytest.param("query_vector.json", lambda st: pq.query(sel("up"), 120, data=st), id="vector"),
    pytest.param("query_range_matrix.json",
                 lambda st: pq.query_range(sel("up"), 0, 120, 60, data=st), id="matrix"),
    pytest.param("query_scalar.json",
                 lambda st: pq.query(NumberLiteral(value=3), 120, data=st), id="scalar"),
    pytest.param("query_string.json",
                 lambda st: pq.query(StringLiteral(value="x"), 120, data=st), id="string"),
    pytest.param("query_matrix_range_selector.json",
                 lambda st: pq.query(MatrixSelector(vector_selector=sel("up"), range_ms=M), 120,
                                     data=st), id="range-vector"),
])
def test_json_shape_matches_prometheus(store, example, make):
    ours = make(store).prom.to_prometheus_json()
    theirs = _example(example)
    assert ours["resultType"] == theirs["resultType"]
    assert _shape(ours["result"][:1]) == _shape(theirs["result"][:1])


def test_plot_returns_axes(store):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    df = pq.query_range(sel("up"), 0, 300, "60s", data=store)
    ax = df.prom.plot(title="up")
    try:
        assert ax.get_title(loc="left") == "up"
        assert len(ax.get_lines()) == 2
    finally:
        plt.close("all")


@pytest.mark.parametrize(("v", "text"), [
    pytest.param(1.5, "1.5", id="plain"),
    pytest.param(2.0, "2", id="integral"),
    pytest.param(-0.0, "-0", id="neg-zero"),
    # Prometheus's jsonutil.MarshalFloat: 'e' format below 1e-6 and from 1e21 on.
    pytest.param(1e21, "1e+21", id="big-exponent"),
    pytest.param(1e20, "100000000000000000000", id="below-1e21-no-exponent"),
    pytest.param(1e-7, "1e-07", id="small-exponent"),
    pytest.param(1e-6, "0.000001", id="1e-6-no-exponent"),
    pytest.param(-2.5e-7, "-2.5e-07", id="small-negative-exponent"),
    pytest.param(float("nan"), "NaN", id="nan"),
    pytest.param(float("inf"), "+Inf", id="inf"),
    pytest.param(float("-inf"), "-Inf", id="neg-inf"),
    pytest.param(0.1 + 0.2, "0.30000000000000004", id="shortest-repr"),
])
def test_format_sample_value(v, text):
    from promlab.promql.results import format_sample_value

    assert format_sample_value(v) == text
