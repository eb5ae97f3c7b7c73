"""Reading histogram files through the store's decoded cache (promlab/storage/histdir.py): the
float-form decode equals the exact one, a second query does not read the file, a float query
does not decode it, compaction evicts what it deletes."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import FloatHistogram, Histogram, from_bucket_map
from promlab.storage import histdir, histfile, histstore, open_store
from promlab.storage.store import ParquetStore

from .conftest import HOUR, T0

A = Labels({"__name__": "lat", "job": "a"})
B = Labels({"__name__": "lat", "job": "b"})
OTHER = Labels({"__name__": "size", "job": "a"})
LAT = [Matcher(MatchType.EQUAL, "__name__", "lat")]


def ih(pos: dict[int, int], neg: dict[int, int] | None = None, schema: int = 0) -> Histogram:
    n = sum(pos.values()) + sum((neg or {}).values()) + 2
    return from_bucket_map(schema, {i: float(c) for i, c in pos.items()},
                           {i: float(c) for i, c in (neg or {}).items()}, count=float(n),
                           sum=0.5 * n, zero_count=2.0).to_int()


FH = FloatHistogram(schema=1, count=2.5, sum=1.0, zero_count=0.5, zero_threshold=1e-3,
                    positive_spans=((0, 2),), positive_buckets=(1.25, 0.75))
CASES = {
    "growth-and-new-bucket": [ih({0: 1, 1: 2}), ih({0: 3, 1: 2}), ih({0: 4, 1: 5, 4: 1})],
    "reset-and-gap": [ih({0: 7, 3: 9}), ih({0: 1}), ih({0: 2, 3: 1, 4: 1})],
    "float-rows-between": [ih({0: 1, 1: 1}), FH, ih({0: 2, 1: 3}), FH],
    "negative-buckets": [ih({0: 1}, {-2: 3, 1: 1}), ih({0: 1}, {-2: 4, 1: 1}), ih({}, {0: 2})],
    "empty": [ih({}), ih({}), ih({0: 1})],
    "beyond-int62": [ih({0: 1}), Histogram(count=1 << 62, sum=1.0, positive_spans=((0, 1),),
                                           positive_buckets=(1 << 62,)), ih({0: 2})],
}


def items_of(hs: list[Histogram | FloatHistogram]) -> list[tuple[Labels, int, Histogram | FloatHistogram]]:
    out = [(A, T0 + k * 15_000, h) for k, h in enumerate(hs)]
    out += [(B, T0 + k * 15_000, h) for k, h in enumerate(reversed(hs))]
    out += [(OTHER, T0 + k * 15_000, h) for k, h in enumerate(hs[:1])]  # another metric
    return out


@pytest.mark.parametrize("hs", list(CASES.values()), ids=list(CASES))
def test_float_decode_equals_exact_read(tmp_path: str, hs: list[Histogram | FloatHistogram]) -> None:
    path = histstore.write_file(str(tmp_path), items_of(hs), 0)
    assert path is not None
    want = histfile.columns_from_items([it for it in histfile.read_items(path, 0, 1 << 62, None)
                                        if it[0]["__name__"] == "lat"])
    got = histfile.read_columns(path, "lat")
    assert got.labels == [A, B] == want.labels
    assert got.offsets.tolist() == want.offsets.tolist() and got.ts.tolist() == want.ts.tolist()
    assert list(got.hists) == list(want.hists)  # spans, counts, hints: field by field
    assert all(type(h) is FloatHistogram for h in got.hists)
    assert histfile.metric_names(path) == {"lat", "size"}


def _store(tmp_path: str) -> ParquetStore:
    st = open_store(tmp_path, wal_fsync=False, auto_compact=False)
    app = st.appender()
    for k in range(240):
        app.append_histogram(A, T0 + k * 15_000, ih({0: k, 1: 2 * k}))
        app.append(OTHER, T0 + k * 15_000, float(k))
    app.commit()
    st.flush()
    return st


def _hists(st: ParquetStore, matchers: list[Matcher], hours: int = 1) -> list[FloatHistogram]:
    hs = st.querier(T0, T0 + hours * HOUR).select(matchers).series_histograms(0)
    assert hs is not None
    return list(hs)


def test_second_query_is_served_from_the_cache(tmp_path: str) -> None:
    st = _store(str(tmp_path))
    first = _hists(st, LAT)
    assert len(first) == 240 and first[-1] == ih({0: 239, 1: 478}).to_float()
    (path,) = [f[3] for f in histdir.list_files(st.hist_dir)]
    with open(path, "r+b") as f:  # damage the file under the cache: only a fresh read notices
        f.seek(os.path.getsize(path) // 2)
        f.write(b"\xff\xff\xff\xff")
    assert _hists(st, LAT) == first
    st.close()
    with open_store(str(tmp_path), readonly=True) as fresh:
        ss = fresh.querier(T0, T0 + HOUR).select(LAT)
        assert ss.labels == []  # the damaged file is skipped on a real read


def test_float_query_does_not_decode_histogram_files(tmp_path: str) -> None:
    st = _store(str(tmp_path))
    (path,) = [f[3] for f in histdir.list_files(st.hist_dir)]
    size = [Matcher(MatchType.EQUAL, "__name__", "size")]
    for _ in range(2):
        ss = st.querier(T0, T0 + HOUR).select(size)
        assert ss.labels == [OTHER] and not ss.histogram_mask().any()
    key = histdir.CACHE_PREFIX + path
    assert st.cache.get_entry((key, "=size")) is not None  # decoded once: empty
    assert len(st.cache.get_entry((key, "=size")).labels) == 0  # type: ignore[union-attr]
    hits = st.cache.hits
    st.querier(T0, T0 + HOUR).select([Matcher(MatchType.EQUAL, "__name__", "nope")])
    # The file's metric names are cached: a metric it lacks is answered without reading it.
    assert st.cache.get_entry((key, "=nope")) is None and st.cache.hits > hits
    st.close()


def test_compaction_and_retention_evict_deleted_files(tmp_path: str) -> None:
    st = open_store(str(tmp_path), wal_fsync=False, auto_compact=False)
    for h in range(3):  # three flushes: three files of one day
        app = st.appender()
        for k in range(240):
            t = T0 + h * HOUR + k * 15_000
            app.append_histogram(A, t, ih({0: h * 240 + k}))
        app.commit()
        st.flush()
    files = [f[3] for f in histdir.list_files(st.hist_dir)]
    assert len(files) >= 2
    before = _hists(st, LAT, 3)
    assert len(before) == 720
    assert all(st.cache.get_entry((histdir.CACHE_PREFIX + p, "=lat")) is not None for p in files)
    n = histdir.compact_files(st.hist_dir, 86_400_000, None, 100, cache=st.cache)
    assert n == len(files)
    assert all(st.cache.get_entry((histdir.CACHE_PREFIX + p, "=lat")) is None for p in files)
    assert _hists(st, LAT, 3) == before  # the merged file, decoded afresh
    (merged,) = [f[3] for f in histdir.list_files(st.hist_dir)]
    histdir.drop_before(st.hist_dir, T0 + 10 * HOUR, cache=st.cache)
    assert st.cache.get_entry((histdir.CACHE_PREFIX + merged, "=lat")) is None
    assert st.querier(T0, T0 + 10 * HOUR).select(LAT).labels == []
    st.close()


def test_decode_from_bytes_equals_decode_from_path(tmp_path: str) -> None:
    """What a store at a URL decodes: the fetched bytes, not a path."""
    path = histstore.write_file(str(tmp_path), items_of(CASES["reset-and-gap"]), 0)
    assert path is not None
    with open(path, "rb") as f:
        buf = pa.py_buffer(f.read())
    a, b = histfile.read_columns(buf, None), histfile.read_columns(path, None)
    assert a.labels == b.labels == [A, B, OTHER] and np.array_equal(a.ts, b.ts)
    assert list(a.hists) == list(b.hists)


def test_head_converts_once_and_follows_overwrites(tmp_path: str) -> None:
    # Unlimited out-of-order window: an older sample replaces the one at its time (at the
    # latest time another histogram is a duplicate, refused; the equal one is taken once).
    with open_store(str(tmp_path), wal_fsync=False, ooo_window=None) as st:
        for value in (1, 5):
            app = st.appender()
            app.append_histogram(A, T0, ih({0: value}))
            app.append_histogram(A, T0 + 15_000, ih({0: 9}))
            app.commit()
            got = _hists(st, LAT)
            assert got == [ih({0: value}).to_float(), ih({0: 9}).to_float()]
            again = _hists(st, LAT)
            assert all(x is y for x, y in zip(got, again, strict=True))  # remembered float forms


def test_querier_listed_before_a_compaction_reads_the_merged_file(tmp_path: str) -> None:
    st = open_store(str(tmp_path), wal_fsync=False, auto_compact=False)
    for h in range(3):
        app = st.appender()
        for k in range(240):
            app.append_histogram(A, T0 + h * HOUR + k * 15_000, ih({0: h * 240 + k}))
        app.commit()
        st.flush()
    q = st.querier(T0, T0 + 3 * HOUR)  # lists the directory: three files
    assert len(histdir.list_files(st.hist_dir)) == 3
    st.compact()
    assert len(histdir.list_files(st.hist_dir)) == 1
    hs = q.select(LAT).series_histograms(0)
    assert hs is not None and len(hs) == 720 and hs[-1] == ih({0: 719}).to_float()
    st.close()
