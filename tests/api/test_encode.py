"""The fast query encoder writes exactly the JSON of the engine's own encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promlab import Labels, MemoryStorage
from promlab.api.encode import query_data, query_response, sample_texts, success
from promlab.model import STALE_NAN
from promlab.promql import Engine
from promlab.promql.results import format_sample_value

EDGE = [0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 1e-7, 1e-5, 123456789.0, 1e15, 1e16, 1e21, 1e22,
        2.5e-300, 1.7976931348623157e308, 5e-324, float("inf"), float("-inf"), float("nan"),
        STALE_NAN, 9007199254740993.0, 0.30000000000000004, 100.0, 1234.5]


@pytest.mark.parametrize("values", [
    pytest.param(np.array(EDGE), id="edge"),
    pytest.param(np.random.default_rng(1).standard_normal(2000) * 1e6, id="normal"),
    pytest.param(np.random.default_rng(2).integers(-10**12, 10**12, 2000) / 100.0, id="cents"),
    pytest.param(np.exp(np.random.default_rng(3).uniform(-700, 700, 2000)), id="magnitudes"),
])
def test_sample_texts(values: np.ndarray) -> None:
    assert sample_texts(values) == [format_sample_value(v) for v in values.tolist()]


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    st = MemoryStorage()
    rng = np.random.default_rng(0)
    ts = list(range(0, 600_001, 15_000))
    for i in range(20):
        vals = rng.standard_normal(len(ts)).cumsum()
        vals[5] = np.nan
        st.add_series(Labels({"__name__": "m", "i": str(i), "q": 'a"b\\c'}), ts, vals.tolist())
    st.add_series(Labels({"__name__": "gone", "x": "é"}), ts[:3], [1.0, 2.0, 3.0])
    st.add_series(Labels({"__name__": "huge"}), ts[:4], [1e300, -2.5e200, 7.0, 1e-300])
    return st


@pytest.mark.parametrize(("query", "ranged", "limit"), [
    pytest.param("m", False, 0, id="instant"),
    pytest.param("m", True, 0, id="range"),
    pytest.param("rate(m[1m]) * 1.5", True, 0, id="rate"),
    pytest.param("m", True, 7, id="limit"),
    pytest.param("gone", True, 0, id="gaps"),
    pytest.param("huge", True, 0, id="huge-values"),
    pytest.param("m * 1e-5 + 0 * m", True, 0, id="tiny-values"),
    pytest.param("m * 100 + 1e17 * (m > 1)", True, 0, id="exponent-values"),
    pytest.param("m[1m]", False, 0, id="matrix"),
    pytest.param("sum(m)", False, 0, id="sum"),
    pytest.param("nothing", True, 0, id="empty"),
    pytest.param("vector(time())", True, 0, id="no-labels"),
    pytest.param("1", False, 0, id="scalar"),
])
def test_query_response(store: MemoryStorage, query: str, ranged: bool, limit: int) -> None:
    engine = Engine()
    result = engine.range(store, query, 1_500, 600_000, 14_000) if ranged else \
        engine.instant(store, query, 300_000)
    fast = query_response(result, limit=limit, stats={"x": 1}).body
    data, warnings = query_data(result, limit=limit, stats={"x": 1})
    slow = success(data, warnings=warnings, infos=result.annotations.infos).body
    assert json.loads(fast) == json.loads(slow)
    assert fast == slow
