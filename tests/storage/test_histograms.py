"""Native histograms as a second value kind: MemoryStorage and the Parquet store
(appender, histogram WAL, head, files, compaction, querier merge), files readable by DuckDB."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pytest

from promlab.model import STALE_NAN, Labels, Matcher, MatchType, is_stale
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage import MemoryStorage
from promlab.storage.interface import Appender, SeriesSet, Storage
from promlab.storage.store import ParquetStore, open_store

from .conftest import HOUR, T0

H = Labels({"__name__": "lat", "job": "a"})
F = Labels({"__name__": "lat", "job": "b"})
SEL = [Matcher(MatchType.EQUAL, "__name__", "lat")]


def hist(k: int) -> Histogram:
    """An integer histogram whose counts grow with ``k`` (spans change at k=3)."""
    extra = ((3, 1),) if k >= 3 else ()
    return Histogram(schema=1, count=3 * k + 2 + (1 if k >= 3 else 0), sum=1.5 * k, zero_count=1,
                     zero_threshold=1e-3, positive_spans=((0, 2), *extra),
                     positive_buckets=(k, k, *((1 - 2 * k,) if extra else ())),
                     negative_spans=((-1, 1),), negative_buckets=(k + 1,))


def fill(app: Appender, steps: int, start: int = T0) -> None:
    for k in range(steps):
        app.append_histogram(H, start + k * 15_000, hist(k))
        app.append(F, start + k * 15_000, float(k))


def check(ss: SeriesSet, steps: int, start: int = T0) -> None:
    assert ss.labels == [H, F]
    assert ss.histograms is not None
    mask = ss.histogram_mask()
    _, ts, vals = ss.series(0)
    hs = ss.series_histograms(0)
    assert hs is not None and ts.tolist() == [start + k * 15_000 for k in range(steps)]
    assert [h == hist(k).to_float() for k, h in enumerate(hs)] == [True] * steps
    assert np.isnan(vals).all() and mask[: steps].all() and not mask[steps:].any()
    _, _, fv = ss.series(1)
    assert fv.tolist() == [float(k) for k in range(steps)]


def make_memory(_: str) -> MemoryStorage:
    return MemoryStorage()


def make_parquet(path: str) -> ParquetStore:
    return open_store(path, wal_fsync=False)


STORES: list[tuple[str, Callable[[str], Storage]]] = [("memory", make_memory), ("parquet", make_parquet)]


@pytest.mark.parametrize("make", [m for _, m in STORES], ids=[n for n, _ in STORES])
def test_append_and_select(tmp_path: str, make: Callable[[str], Storage]) -> None:
    st = make(str(tmp_path))
    app = st.appender()
    fill(app, 6)
    stats = app.commit()
    assert stats.appended == 12
    q = st.querier(T0, T0 + HOUR)
    check(q.select(SEL), 6)
    assert q.series(SEL) == [H, F]
    assert q.label_values("job") == ["a", "b"]
    st.close()


def test_float_only_set_has_no_histogram_column() -> None:
    st = MemoryStorage()
    app = st.appender()
    app.append(F, T0, 1.0)
    app.commit()
    ss = st.querier(T0, T0).select(SEL)
    assert ss.histograms is None and not ss.histogram_mask().any()


def test_stale_marker_and_overwrite_in_histogram_series() -> None:
    st = MemoryStorage()
    app = st.appender()
    app.append_histogram(H, T0, hist(1))
    app.append_histogram(H, T0 + 1000, hist(2))
    app.append(H, T0 + 2000, STALE_NAN)
    app.commit()
    app.append(H, T0, 5.0)  # a later float write at the same timestamp wins
    app.commit()
    ss = st.querier(T0, T0 + 5000).select(SEL)
    hs = ss.series_histograms(0)
    assert hs is not None and [h is None for h in hs] == [True, False, True]
    assert ss.values[0] == 5.0 and is_stale(float(ss.values[2]))


def test_parquet_wal_replay_flush_and_compaction(tmp_path: str) -> None:
    path = str(tmp_path)
    st = open_store(path, wal_fsync=False)
    app = st.appender()
    fill(app, 4)
    app.commit()
    st._wal.close()
    st._hwal.close()
    st._release_lock()
    st2 = open_store(path, wal_fsync=False)
    check(st2.querier(T0, T0 + HOUR).select(SEL), 4)
    # A second batch, flushed twice into files of one window, then compacted into one file.
    st2.flush()
    app = st2.appender()
    for k in range(4, 8):
        app.append_histogram(H, T0 + k * 15_000, hist(k))
        app.append(F, T0 + k * 15_000, float(k))
    app.commit()
    st2.close()
    files = [f for f in os.listdir(os.path.join(path, "histograms")) if f.endswith(".parquet")]
    assert len(files) == 1
    st3 = open_store(path, wal_fsync=False)
    check(st3.querier(T0, T0 + HOUR).select(SEL), 8)
    # Time range is honoured on files.
    ss = st3.querier(T0 + 30_000, T0 + 45_000).select(SEL)
    assert ss.series(0)[1].tolist() == [T0 + 30_000, T0 + 45_000]
    st3.close()


def test_file_readable_with_duckdb(tmp_path: str) -> None:
    duckdb = pytest.importorskip("duckdb")
    st = open_store(str(tmp_path), wal_fsync=False)
    app = st.appender()
    fill(app, 5)
    app.commit()
    st.close()
    glob = os.path.join(str(tmp_path), "histograms", "*.parquet")
    # The count of bucket (1, 1.414...] (schema 1, index 1) at the last sample, as in docs/storage.md.
    row = duckdb.sql(f"""
        SELECT b.cnt FROM (
          SELECT timestamp_ms, idx, json_extract_string(labels, '$.job') AS job,
                 sum(delta) OVER (PARTITION BY filename, labels, idx ORDER BY timestamp_ms) AS cnt
          FROM (SELECT filename, labels, timestamp_ms, unnest(positive_index) AS idx,
                       unnest(positive_delta) AS delta
                FROM read_parquet('{glob}', filename = true))) b
        WHERE job = 'a' AND idx = 1 ORDER BY timestamp_ms DESC LIMIT 1""").fetchall()
    assert row == [(8.0,)]  # hist(4): buckets (4, 4+4)
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(5,)]


def test_float_histogram_round_trips_as_float(tmp_path: str) -> None:
    st = open_store(str(tmp_path), wal_fsync=False)
    fh = FloatHistogram(schema=-53, count=2.5, sum=3.0, custom_values=(1.0, 2.0),
                        positive_spans=((0, 3),), positive_buckets=(0.5, 1.0, 1.0))
    app = st.appender()
    app.append_histogram_batch([H], np.array([0]), np.array([T0]), [fh])
    app.commit()
    st.flush()
    hs = st.querier(T0, T0).select(SEL).series_histograms(0)
    assert hs is not None and hs[0] == fh
    st.close()
