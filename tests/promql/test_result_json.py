"""Results keep every label: API JSON from the engine's Result, lossless label columns."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promlab.model import Labels, parse_duration
from promlab.promql import Engine
from promlab.promql.results import Result, column_label, label_column, result_to_json
from promlab.storage import MemoryStorage

M = 60_000
EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prometheus-api-examples"


@pytest.fixture
def store() -> MemoryStorage:
    st = MemoryStorage()
    t = np.arange(0, 4) * M
    for job, v in [("a", 1.0), ("b", 1.0), ("c", 2.0)]:
        st.add_series(Labels({"__name__": "x", "job": job}), t, np.full(4, v))
    st.add_series(Labels({"__name__": "ev", "timestamp": "t1", "value": "v1"}), t, np.arange(4.0))
    st.add_series(Labels({"__name__": "ev", "timestamp": "t2", "value": "v1"}), t, np.ones(4))
    return st


@pytest.mark.parametrize(("name", "column"), [
    pytest.param("job", "job", id="plain"),
    pytest.param("__name__", "__name__", id="name"),
    pytest.param("value", "label:value", id="value"),
    pytest.param("timestamp", "label:timestamp", id="timestamp"),
    pytest.param("label:value", "label:label:value", id="already-prefixed"),
    pytest.param("labelx", "labelx", id="prefix-without-colon"),
])
def test_label_column_names_round_trip(name: str, column: str) -> None:
    assert label_column(name) == column
    assert column_label(column) == name


@pytest.mark.parametrize("run", [
    pytest.param(lambda e, st: e.instant(st, 'count_values("value", x)', 3 * M), id="instant"),
    pytest.param(lambda e, st: e.range(st, 'count_values("value", x)', 0, 3 * M, M), id="range"),
])
def test_count_values_keeps_its_value_label(store: MemoryStorage, run: Any) -> None:
    res: Result = run(Engine(), store)
    df = res.to_frame()
    assert list(df.columns) == ["label:value", "timestamp", "value"]
    assert sorted(set(df["label:value"])) == ["1", "2"]
    js = result_to_json(res)
    assert sorted(s["metric"]["value"] for s in js["result"]) == ["1", "2"]
    counts = {s["metric"]["value"]: (s.get("value") or s["values"][-1])[1] for s in js["result"]}
    assert counts == {"1": "2", "2": "1"}
    assert df.prom.to_prometheus_json() == js
    last = df.prom.wide().iloc[-1]
    assert last.to_dict() == {'{value="1"}': 2.0, '{value="2"}': 1.0}


def test_series_with_timestamp_and_value_labels(store: MemoryStorage) -> None:
    res = Engine().range(store, "ev", 0, 3 * M, M)
    df = res.to_frame()
    assert list(df.columns) == ["__name__", "label:timestamp", "label:value", "timestamp",
                                "value"]
    assert len(df) == 8 and str(df["timestamp"].dtype) == "datetime64[ms, UTC]"
    js = result_to_json(res)
    assert [s["metric"] for s in js["result"]] == [
        {"__name__": "ev", "timestamp": "t1", "value": "v1"},
        {"__name__": "ev", "timestamp": "t2", "value": "v1"},
    ]
    assert js["result"][0]["values"] == [[0, "0"], [60, "1"], [120, "2"], [180, "3"]]
    assert df.prom.to_prometheus_json() == js
    _, labels = df.prom.series()
    assert labels == [Labels({"__name__": "ev", "timestamp": "t1", "value": "v1"}),
                      Labels({"__name__": "ev", "timestamp": "t2", "value": "v1"})]
    assert df.prom.wide().shape == (4, 2)


def test_instant_range_vector_json(store: MemoryStorage) -> None:
    res = Engine().instant(store, 'x{job="a"}[2m]', 3 * M)
    assert result_to_json(res) == {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x", "job": "a"}, "values": [[120, "1"], [180, "1"]]}]}
    assert res.to_frame().prom.to_prometheus_json() == result_to_json(res)


# --- JSON as Prometheus 2.42 wrote it ----------------------------------------------------------

def _value(text: str) -> float:
    return {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}.get(text) or float(text)


def _ms(text: str) -> int:
    return round(float(text) * 1000)


def _step_ms(text: str) -> int:
    try:
        return round(float(text) * 1000)
    except ValueError:
        return parse_duration(text)


def _load(data: dict[str, Any]) -> MemoryStorage:
    """A store holding the example's own samples (its result series, point by point)."""
    st = MemoryStorage()
    if data["resultType"] in ("vector", "matrix"):
        for s in data["result"]:
            points = [s["value"]] if "value" in s else s["values"]
            st.add_series(Labels(s["metric"]), [round(p[0] * 1000) for p in points],
                          [_value(p[1]) for p in points])
    return st


@pytest.mark.parametrize("example", [
    pytest.param("query_vector.json", id="vector"),
    pytest.param("query_vector_with_time.json", id="vector-time"),
    pytest.param("query_vector_empty.json", id="vector-empty"),
    pytest.param("query_vector_special_floats.json", id="special-floats"),
    pytest.param("query_matrix_range_selector.json", id="range-selector"),
    pytest.param("query_scalar_literal.json", id="scalar"),
    pytest.param("query_string.json", id="string"),
    pytest.param("query_range_matrix.json", id="range"),
    pytest.param("query_range_float_step.json", id="range-float-step"),
    pytest.param("query_range_scalar_expr.json", id="range-scalar"),
    pytest.param("query_range_empty.json", id="range-empty"),
])
def test_json_equals_prometheus(example: str) -> None:
    path = EXAMPLES / example
    if not path.exists():
        pytest.skip(f"{path} not found")
    captured = json.loads(path.read_text())
    data, params = captured["body"]["data"], captured["request"]["params"]
    st = _load(data)
    if captured["request"]["url"].endswith("/query_range"):
        res = Engine().range(st, params["query"], _ms(params["start"]), _ms(params["end"]),
                             _step_ms(params["step"]))
    else:
        if "time" in params:
            t = _ms(params["time"])
        elif data["result"]:  # evaluated "now": the time its samples carry
            t = round(data["result"][0]["value"][0] * 1000)
        else:
            t = 0
        res = Engine().instant(st, params["query"], t)
    assert result_to_json(res) == data
    assert res.to_frame().prom.to_prometheus_json() == data
