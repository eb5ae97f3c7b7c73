"""The fast query encoder writes exactly the JSON of the engine's own encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promlab import Labels, MemoryStorage
from promlab.api.encode import query_data, query_response, sample_texts, success
from promlab.model import STALE_NAN
from promlab.promql import Engine
from promlab.promql.results import format_sample_value, format_timestamp

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
    assert json.loads(bytes(fast)) == json.loads(bytes(slow))
    assert fast == slow


#: Values the fast encoder must write exactly as format_sample_value does.
SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, 2.2250738585072014e-308 / 3,
                    1e21, -1e21, 1e-7, 1e-4, 9.999999999999999e-5, 1e16, 9999999999999998.0,
                    1e300, 1.5, 100.0, -7.0, 123.456, STALE_NAN])


def _random_matrix(seed: int, *, series: int, steps: int, density: float,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Values mixing special values, integers, decimals and magnitudes; a presence mask."""
    rng = np.random.default_rng(seed)
    kinds = rng.integers(0, 4, (series, steps))
    values = np.where(kinds == 0, rng.choice(SPECIAL, (series, steps)),
                      np.where(kinds == 1, rng.integers(-10**6, 10**6, (series, steps)) * 1.0,
                               np.where(kinds == 2, np.round(rng.normal(0, 1e3, (series, steps)),
                                                             2),
                                        np.exp(rng.uniform(-60, 60, (series, steps))))))
    present = rng.random((series, steps)) < density
    return values, present


@pytest.mark.parametrize(("seed", "series", "steps", "density", "start", "step_ms"), [
    pytest.param(1, 30, 97, 1.0, 1_700_000_000_000, 15_000, id="full-whole-seconds"),
    pytest.param(2, 30, 97, 0.7, 1_700_000_000_000, 15_000, id="gaps"),
    pytest.param(3, 11, 200, 1.0, 1_699_999_999_001, 1_250, id="full-fractional-steps"),
    pytest.param(4, 11, 200, 0.3, 1_699_999_999_001, 1_250, id="sparse-fractional-steps"),
    pytest.param(5, 1, 1, 1.0, 1_000, 1_000, id="one-point"),
    pytest.param(6, 40, 50, 0.02, 0, 60_000, id="mostly-empty"),
    pytest.param(7, 5, 300, 1.0, -150_007, 1_001, id="around-zero"),
    pytest.param(8, 5, 30, 1.0, 9_999_999_999_000, 999_999_999, id="widths-change"),
    pytest.param(9, 3, 4, 1.0, 2**53 - 2_000, 1_001, id="beyond-float-seconds"),
])
def test_random_matrix_as_format_sample_value(seed: int, series: int, steps: int,
                                              density: float, start: int, step_ms: int) -> None:
    from promlab.promql.results import Result
    from promlab.promql.values import Vector

    values, present = _random_matrix(seed, series=series, steps=steps, density=density)
    labels = [Labels({"__name__": "m", "i": str(i), "é": "x\u2028\"y"}) for i in range(series)]
    result = Result(query="m", expr=None, value=Vector(labels=labels, values=values,  # type: ignore[arg-type]
                                                       present=present),
                    steps_ms=start + np.arange(steps, dtype=np.int64) * step_ms,
                    result_type="matrix")
    fast = query_response(result).body
    data, warnings = query_data(result)
    assert fast == success(data, warnings=warnings).body
    got = json.loads(bytes(fast))["data"]["result"]
    want = []
    for i in range(series):
        points = [[format_timestamp(start + j * step_ms), format_sample_value(values[i, j])]
                  for j in range(steps) if present[i, j]]
        if points:
            want.append(points)
    assert [s["values"] for s in got] == want


@pytest.mark.parametrize("row", [
    pytest.param([1.0, 2.0, 1e16], id="long-go-text-last"),
    pytest.param([1e16, 1e-5, 2.5e17], id="all-long-go-texts"),
    pytest.param([float("nan")] * 5, id="all-nan"),
    pytest.param([0.5, STALE_NAN, float("inf"), 7.0, float("-inf")], id="specials-between"),
    pytest.param([1.0] * 7, id="one-width"),
    pytest.param([1.0, 22.0, 333.0, 4444.0, 0.1, 1e15, 123456789.123], id="every-width"),
    pytest.param([9.999999999999999e-5, 1e-4, 1e21], id="exponent-edges"),
    pytest.param([0.30000000000000004, 1.0, 0.1234567890123456, 7.0, 2.0, 5.0],
                 id="short-after-long"),
    pytest.param([0.30000000000000004, float("nan"), -1.2345678901234567e-7, 3.0, 1.0],
                 id="odd-after-long"),
])
@pytest.mark.parametrize("steps", [
    pytest.param((1_700_000_000_000, 15_000), id="whole-seconds"),
    pytest.param((9_999_999_998_000, 1_500), id="prefix-widths-change"),
])
def test_point_widths(row: list[float], steps: tuple[int, int]) -> None:
    """Values grouped by text width, values written unlike orjson (also last in the text,
    where a longer Go text must not be read past orjson's end), prefixes of several widths."""
    from promlab.promql.results import Result
    from promlab.promql.values import Vector

    values = np.array([row, row[::-1]])
    present = np.ones(values.shape, bool)
    present[1, 0] = False  # one gap: the indexed path as well as the dense one
    start, step = steps
    for mask in (np.ones(values.shape, bool), present):
        result = Result(query="m", expr=None,  # type: ignore[arg-type]
                        value=Vector(labels=[Labels({"i": "0"}), Labels({"i": "1"})],
                                     values=values, present=mask),
                        steps_ms=start + np.arange(len(row), dtype=np.int64) * step,
                        result_type="matrix")
        data, warnings = query_data(result)
        assert query_response(result).body == success(data, warnings=warnings).body
