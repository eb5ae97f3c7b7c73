"""The histogram files' Parquet layout (promlab/storage/histfile.py): exact round trips through the
cross-sample bucket deltas, layout-1 files, the docs' DuckDB example, size."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import FloatHistogram, Histogram, from_bucket_map
from promlab.storage import histfile, histstore, open_store

from .conftest import T0

A = Labels({"__name__": "lat", "job": "a"})
B = Labels({"__name__": "lat", "job": "b"})
DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "storage.md")


def ih(pos: dict[int, int], neg: dict[int, int] | None = None, schema: int = 0,
       cv: tuple[float, ...] = ()) -> Histogram:
    n = sum(pos.values()) + sum((neg or {}).values()) + 1
    h = from_bucket_map(schema, {i: float(c) for i, c in pos.items()},
                        {i: float(c) for i, c in (neg or {}).items()}, count=float(n), sum=0.25 * n,
                        zero_count=1.0)
    if cv:
        h = FloatHistogram(schema=-53, count=h.count, sum=h.sum, positive_spans=h.positive_spans,
                           positive_buckets=h.positive_buckets, custom_values=cv)
    return h.to_int()


FH = FloatHistogram(schema=1, count=2.5, sum=1.0, zero_count=0.5, zero_threshold=1e-3,
                    positive_spans=((0, 2),), positive_buckets=(1.25, 0.75))
BIG = 1 << 62

CASES = {
    "growth-and-new-bucket": [ih({0: 1, 1: 2}), ih({0: 3, 1: 2}), ih({0: 4, 1: 5, 4: 1})],
    "reset": [ih({0: 7, 1: 9}), ih({0: 1}), ih({0: 2, 1: 1})],
    "bucket-vanishes-and-returns": [ih({0: 5, 3: 2}), ih({0: 6}), ih({0: 6, 3: 1}), ih({3: 4})],
    "float-rows-between": [ih({0: 1, 1: 1}), FH, ih({0: 2, 1: 3}), FH, ih({0: 9, 1: 3})],
    "negative-buckets": [ih({0: 1}, {-2: 3, 1: 1}), ih({0: 1}, {-2: 4, 1: 1}), ih({}, {0: 2})],
    "custom-buckets": [ih({0: 1, 2: 3}, cv=(0.1, 0.5, 1.0)), ih({0: 2, 2: 5}, cv=(0.1, 0.5, 1.0))],
    "empty": [ih({}), ih({}), ih({0: 1})],
    "beyond-int62": [ih({0: 1}), Histogram(count=BIG, sum=1.0, positive_spans=((0, 1),),
                                           positive_buckets=(BIG,)), ih({0: 2})],
}


def _items(hs: list[Histogram | FloatHistogram]) -> list[tuple[Labels, int, Histogram | FloatHistogram]]:
    out = [(A, T0 + k * 15_000, h) for k, h in enumerate(hs)]
    out += [(B, T0 + k * 15_000, h) for k, h in enumerate(reversed(hs))]  # a second chain
    return out


@pytest.mark.parametrize("hs", list(CASES.values()), ids=list(CASES))
def test_round_trip_exact(tmp_path: str, hs: list[Histogram | FloatHistogram]) -> None:
    items = _items(hs)
    path = histstore.write_file(str(tmp_path), items, 0)
    assert path is not None
    assert pq.read_schema(path).metadata[histfile.LAYOUT_KEY] == b"2"
    got = {(ls, t): h for ls, t, h in histfile.read_items(path, 0, 1 << 62, None)}
    assert len(got) == len(items)
    for ls, t, h in items:
        back = got[(ls, t)]
        assert type(back) is type(h), (ls, t)
        assert back.to_float() == h.to_float(), (ls, t)


@pytest.mark.parametrize(("mint_k", "maxt_k", "job"), [(2, 2, "a"), (1, 3, "b"), (3, 9, "a")],
                         ids=["one-late-sample", "middle-other-series", "tail"])
def test_time_and_series_filter_keep_absolute_counts(tmp_path: str, mint_k: int, maxt_k: int,
                                                     job: str) -> None:
    hs = CASES["bucket-vanishes-and-returns"]
    items = _items(hs)
    path = histstore.write_file(str(tmp_path), items, 0)
    assert path is not None
    m = [Matcher(MatchType.EQUAL, "job", job)]
    got = histfile.read_items(path, T0 + mint_k * 15_000, T0 + maxt_k * 15_000, m)
    want = [(ls, t, h) for ls, t, h in items if ls["job"] == job
            and T0 + mint_k * 15_000 <= t <= T0 + maxt_k * 15_000]
    assert sorted((t, h.to_float()) for _, t, h in got) == sorted((t, h.to_float()) for _, t, h in want)


def test_layout_1_files_still_read(tmp_path: str) -> None:
    """A file as the first layout wrote it: float64 absolute counts, no layout key."""
    rows = [(A, T0, ih({0: 2, 1: 3}, {-1: 1})), (A, T0 + 15_000, FH)]
    fl = [h.to_float() for _, _, h in rows]
    table = pa.table({
        "labels": pa.array([json.dumps(dict(ls), sort_keys=True) for ls, _, _ in rows]).dictionary_encode(),
        "metric": pa.array(["lat", "lat"]).dictionary_encode(),
        "timestamp_ms": pa.array([t for _, t, _ in rows], pa.int64()),
        "schema": pa.array([f.schema for f in fl], pa.int8()),
        "count": pa.array([f.count for f in fl], pa.float64()),
        "sum": pa.array([f.sum for f in fl], pa.float64()),
        "zero_threshold": pa.array([f.zero_threshold for f in fl], pa.float64()),
        "zero_count": pa.array([f.zero_count for f in fl], pa.float64()),
        "counter_reset_hint": pa.array([0, 0], pa.int8()),
        "is_float": pa.array([False, True]),
        "positive_index": pa.array([[0, 1], [0, 1]], pa.list_(pa.int32())),
        "positive_count": pa.array([list(f.positive_buckets) for f in fl], pa.list_(pa.float64())),
        "negative_index": pa.array([[-1], []], pa.list_(pa.int32())),
        "negative_count": pa.array([list(f.negative_buckets) for f in fl], pa.list_(pa.float64())),
        "custom_values": pa.array([[], []], pa.list_(pa.float64())),
    })
    os.makedirs(os.path.join(str(tmp_path), "histograms"))
    pq.write_table(table, os.path.join(str(tmp_path), "histograms", f"{T0}-{T0 + 15_000}-0.parquet"))
    got = histstore.read_files(os.path.join(str(tmp_path), "histograms"),
                               [Matcher(MatchType.EQUAL, "job", "a")], T0, T0 + 15_000)
    assert [h for h in got[A][1]] == fl
    # delete_series on such a file: the rest rewritten in today's layout, with a sidecar.
    hdir = os.path.join(str(tmp_path), "histograms")
    assert histstore.delete_samples(hdir, lambda ls: ls == A, T0, T0, 5) == (1, 6)
    ((fmin, fmax, seq, path),) = histstore.list_files(hdir)
    assert (fmin, fmax, seq) == (T0, T0 + 15_000, 5) and os.path.exists(path + ".crc.json")
    assert pq.read_schema(path).metadata[b"promlab.histogram_layout"] == b"2"
    got = histstore.read_files(hdir, [], T0, T0 + 15_000)
    assert got[A][0].tolist() == [T0 + 15_000] and list(got[A][1]) == fl[1:]


def _doc_sql() -> str:
    with open(DOCS) as f:
        section = f.read().split("## Native histograms", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.S)[0]


def test_docs_duckdb_example_gives_bucket_counts(tmp_path: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    data = os.path.join(str(tmp_path), "data")
    st = open_store(data, wal_fsync=False)
    seqs = [ih({0: 1, 1: k, 2: 1}) if k != 3 else ih({0: 1, 2: 2}) for k in range(6)]  # reset at 3
    app = st.appender()
    for k, h in enumerate(seqs):
        app.append_histogram(A, T0 + k * 15_000, h)
        app.append_histogram(B, T0 + k * 15_000, ih({1: 10 * k + 1}, schema=1))  # other schema
    app.commit()
    st.flush()
    app = st.appender()  # a second file: the running sums restart per file
    app.append_histogram(A, T0 + 6 * 15_000, ih({1: 40}))
    app.commit()
    st.close()
    prev = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        rows = duckdb.sql(_doc_sql()).fetchall()
    finally:
        os.chdir(prev)
    # k=0 does not list bucket 1 (count 0); the reset at k=3 drops it too
    want = [("a", T0 + k * 15_000, k) for k in range(1, 6) if k != 3] + [("a", T0 + 6 * 15_000, 40)]
    assert [(j, t, int(c)) for j, t, c in rows] == want


def test_benchmark_data_beats_prometheus_bytes_per_sample(tmp_path: str) -> None:
    """Prometheus 2.42 stores this benchmark's data in 35.73 B/sample (docs/storage.md)."""
    from benchmarks.histograms_storage import generate, labels

    lsets = labels(20)
    items = [(lsets[s], t, h) for t, hs in generate(20, 300, end_ms=T0) for s, h in enumerate(hs)]
    path = histstore.write_file(str(tmp_path), items, 0)
    assert path is not None
    per_sample = os.path.getsize(path) / len(items)
    assert per_sample < 30, per_sample
    back = histfile.read_items(path, 0, 1 << 62, None)
    assert np.mean([len(h.positive_buckets) for _, _, h in back]) > 40  # really ~tens of buckets
