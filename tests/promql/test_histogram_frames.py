"""Native histograms in result frames, the API JSON and plots (issue 10 item 3, frame part).

The JSON shape is the one of Prometheus's HTTP API documentation ("Native histograms" in
``querying/api.md``): ``{"count", "sum", "buckets": [[rule, lower, upper, count], ...]}`` with
only non-empty buckets, negative (open right, 1) before the zero bucket (closed, 3) before the
positive buckets (open left, 0); ``"histogram"`` in instant vectors, ``"histograms"`` beside
``"values"`` in matrices.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from promlab.api.encode import query_data, query_response, success
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, from_bucket_map
from promlab.plotting import native_bucket_matrix, new_figure
from promlab.promql import Engine
from promlab.promql.histresults import BOUNDARY_RULES, histogram_json
from promlab.promql.results import Result
from promlab.storage import MemoryStorage

M = 60_000
EXPO = from_bucket_map(0, {1: 2.0, 2: 0.0, 3: 1.0}, {1: 1.0}, count=5.0, sum=7.5,
                       zero_count=1.0, zero_threshold=0.001)
NHCB = FloatHistogram(schema=-53, count=6.0, sum=10.0, positive_spans=((0, 3),),
                      positive_buckets=(1.0, 2.0, 3.0), custom_values=(1.0, 5.0))
EMPTY = FloatHistogram(schema=3, count=0.0, sum=0.0)


def _scaled(h: FloatHistogram, k: float) -> FloatHistogram:
    return FloatHistogram(
        schema=h.schema, zero_threshold=h.zero_threshold, zero_count=h.zero_count * k,
        count=h.count * k, sum=h.sum * k, positive_spans=h.positive_spans,
        positive_buckets=tuple(c * k for c in h.positive_buckets),
        negative_spans=h.negative_spans,
        negative_buckets=tuple(c * k for c in h.negative_buckets),
        custom_values=h.custom_values)


@pytest.fixture
def store() -> MemoryStorage:
    st = MemoryStorage()
    t = np.arange(4) * M
    st.add_histogram_series(Labels({"__name__": "h", "job": "expo"}), t,
                            [_scaled(EXPO, k) for k in (1, 2, 3, 4)])
    st.add_histogram_series(Labels({"__name__": "h", "job": "nhcb"}), t,
                            [_scaled(NHCB, k) for k in (1, 2, 3, 4)])
    # A series that switches from floats to histograms.
    st.add_histogram_series(Labels({"__name__": "h", "job": "mixed"}), t,
                            [1.0, 2.0, EXPO, EXPO])
    st.add_series(Labels({"__name__": "f", "histogram": "yes"}), t, np.arange(4.0))
    return st


@pytest.mark.parametrize(("h", "expected"), [
    pytest.param(EXPO, {"count": "5", "sum": "7.5", "buckets": [
        [1, "-2", "-1", "1"], [3, "-0.001", "0.001", "1"], [0, "1", "2", "2"],
        [0, "4", "8", "1"]]}, id="exponential-negative-zero-positive"),
    pytest.param(NHCB, {"count": "6", "sum": "10", "buckets": [
        [0, "-Inf", "1", "1"], [0, "1", "5", "2"], [0, "5", "+Inf", "3"]]}, id="custom-buckets"),
    pytest.param(EMPTY, {"count": "0", "sum": "0"}, id="no-buckets-key-when-empty"),
    pytest.param(from_bucket_map(1, {0: 1.0, 1: 0.5}, count=1.5, sum=math.nan),
                 {"count": "1.5", "sum": "NaN", "buckets": [
                     [0, "0.7071067811865475", "1", "1"], [0, "1", "1.414213562373095", "0.5"]]},
                 id="schema-1-nan-sum"),
])
def test_histogram_json(h: FloatHistogram, expected: dict[str, Any]) -> None:
    assert histogram_json(h) == expected
    assert list(histogram_json(h)) == list(expected)  # key order: count, sum, buckets
    for rule, *_ in expected.get("buckets", []):
        assert rule in BOUNDARY_RULES


def test_frame_columns(store: MemoryStorage) -> None:
    df = Engine().range(store, "h", 0, 3 * M, M).to_frame()
    assert list(df.columns) == ["__name__", "job", "timestamp", "value", "histogram"]
    hist_rows = df["histogram"].notna()
    assert int(hist_rows.sum()) == 10  # 4 expo + 4 nhcb + 2 mixed
    assert df.loc[hist_rows, "value"].isna().all()
    assert df.loc[~hist_rows, "value"].tolist() == [1.0, 2.0]
    first = df[(df["job"] == "expo")]["histogram"].iloc[0]
    assert isinstance(first, FloatHistogram) and first.equals(EXPO)


@pytest.mark.parametrize(("query", "columns"), [
    pytest.param("f", ["__name__", "label:histogram", "timestamp", "value"],
                 id="floats-no-histogram-column"),
    pytest.param("histogram_count(h)", ["job", "timestamp", "value"], id="scalar-fields"),
    pytest.param("sum(h{job='expo'})", ["timestamp", "value", "histogram"], id="aggregated"),
])
def test_frame_columns_by_query(store: MemoryStorage, query: str, columns: list[str]) -> None:
    df = Engine().range(store, query, 0, 3 * M, M).to_frame()
    assert list(df.columns) == columns


def test_buckets_tidy_frame(store: MemoryStorage) -> None:
    df = Engine().instant(store, "h", 2 * M).to_frame()
    b = df.prom.buckets()
    assert list(b.columns) == ["__name__", "job", "timestamp", "boundary", "lower", "upper",
                               "count"]
    expo = b[b["job"] == "expo"]
    assert expo[["boundary", "lower", "upper", "count"]].to_numpy().tolist() == [
        [1, -2.0, -1.0, 3.0], [3, -0.001, 0.001, 3.0], [0, 1.0, 2.0, 6.0], [0, 4.0, 8.0, 3.0]]
    nhcb = b[b["job"] == "nhcb"]
    assert nhcb["upper"].tolist() == [1.0, 5.0, math.inf]
    assert nhcb["count"].tolist() == [3.0, 6.0, 9.0]
    assert (b["timestamp"] == pd.Timestamp(2 * M, unit="ms", tz="UTC")).all()
    # The bucket counts add up to each histogram's count (no NaN observations here).
    for h, part in zip(df["histogram"], (b[b["job"] == j] for j in df["job"]), strict=True):
        assert part["count"].sum() == pytest.approx(h.count)


def test_buckets_without_histograms(store: MemoryStorage) -> None:
    b = Engine().instant(store, "f", 0).to_frame().prom.buckets()
    assert b.empty and list(b.columns)[-5:] == ["timestamp", "boundary", "lower", "upper",
                                                 "count"]


def test_wide(store: MemoryStorage) -> None:
    df = Engine().range(store, "h{job='expo'}", 0, 3 * M, M).to_frame()
    with pytest.raises(ValueError, match="histogram='count'"):
        df.prom.wide()
    assert df.prom.wide(histogram="count").iloc[:, 0].tolist() == [5.0, 10.0, 15.0, 20.0]
    assert df.prom.wide(histogram="sum").iloc[:, 0].tolist() == [7.5, 15.0, 22.5, 30.0]


def _range_expected() -> list[dict[str, Any]]:
    def pts(h: FloatHistogram, ks: list[int], t0: int = 0) -> list[Any]:
        return [[(t0 + i) * 60, histogram_json(_scaled(h, k))] for i, k in enumerate(ks)]

    return [
        {"metric": {"__name__": "h", "job": "expo"}, "histograms": pts(EXPO, [1, 2, 3, 4])},
        {"metric": {"__name__": "h", "job": "mixed"}, "values": [[0, "1"], [60, "2"]],
         "histograms": pts(EXPO, [1, 1], 2)},
        {"metric": {"__name__": "h", "job": "nhcb"}, "histograms": pts(NHCB, [1, 2, 3, 4])},
    ]


@pytest.mark.parametrize(("ranged", "at", "expected"), [
    pytest.param(True, 0, _range_expected(), id="matrix-values-and-histograms"),
    pytest.param(False, M, [
        {"metric": {"__name__": "h", "job": "expo"}, "histogram": [60, histogram_json(
            _scaled(EXPO, 2))]},
        {"metric": {"__name__": "h", "job": "mixed"}, "value": [60, "2"]},
        {"metric": {"__name__": "h", "job": "nhcb"}, "histogram": [60, histogram_json(
            _scaled(NHCB, 2))]},
    ], id="vector-value-or-histogram"),
])
def test_result_json(store: MemoryStorage, ranged: bool, at: int,
                     expected: list[dict[str, Any]]) -> None:
    engine = Engine()
    result = engine.range(store, "h", 0, 3 * M, M) if ranged else engine.instant(store, "h", at)
    data = result.to_json()
    got = sorted(data["result"], key=lambda s: s["metric"]["job"])
    assert got == expected
    for series in got:  # key order as Prometheus writes it
        assert list(series) == [k for k in ("metric", "value", "histogram", "values",
                                            "histograms") if k in series]
    # The frame's JSON is the engine's, and the HTTP API's fast path writes the same bytes.
    assert result.to_frame().prom.to_prometheus_json() == data
    _same_bytes(result)


def _same_bytes(result: Result) -> None:
    fast = query_response(result).body
    data, warnings = query_data(result)
    slow = success(data, warnings=warnings, infos=result.annotations.infos).body
    assert fast == slow
    assert json.loads(fast)["data"] == result.to_json()


def test_matrix_selector_json(store: MemoryStorage) -> None:
    data = Engine().instant(store, "h{job='mixed'}[3m]", 3 * M).to_json()
    assert data["resultType"] == "matrix"
    assert data["result"] == [{"metric": {"__name__": "h", "job": "mixed"},
                               "values": [[60, "2"]],
                               "histograms": [[120, histogram_json(EXPO)],
                                              [180, histogram_json(EXPO)]]}]


def test_heatmap_axes(store: MemoryStorage) -> None:
    df = Engine().range(store, "h{job=~'expo|mixed'}", 0, 3 * M, M).to_frame()
    bm = native_bucket_matrix(df)
    # expo (x1..x4) and mixed (EXPO at the last two steps) summed per bucket.
    assert bm.upper.tolist() == [-1.0, 0.001, 2.0, 8.0]
    assert bm.counts[:, 2].tolist() == [2.0, 4.0, 8.0, 10.0]
    ax = new_figure().add_subplot()
    assert df.prom.plot(ax=ax) is ax
    (mesh,) = ax.collections
    assert np.asarray(mesh.get_array()).reshape(len(bm.upper), -1).tolist() == \
        bm.counts.T.tolist()
    assert ax.get_ylabel() == "bucket (upper bound)"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["-1", "0.001", "2", "8"]
    with pytest.raises(ValueError, match="heatmap"):
        df.prom.plot(ax=new_figure().add_subplot(), kind="stacked")


def test_heatmap_needs_histograms(store: MemoryStorage) -> None:
    df = Engine().range(store, "f", 0, 3 * M, M).to_frame()
    with pytest.raises(ValueError, match="no native histogram"):
        native_bucket_matrix(df)
