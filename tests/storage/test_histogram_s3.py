"""Native histogram files of a store at an S3 URL (moto's S3 server on 127.0.0.1): uploaded beside
the blocks, read by readers on "another machine" (their own empty local directory) with the same
answers as a local store, checked and quarantined by ``tsdb verify``/``repair`` remotely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import from_bucket_map
from promlab.session import Session
from promlab.storage import open_store
from promlab.storage.verify import repair_store, verify_store

pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

HOUR = 3_600_000
STEP_MS = 15_000
HOURS = 6
END_S = HOURS * 3600


@pytest.fixture(scope="module")
def s3(moto_s3: dict[str, Any]) -> dict[str, Any]:
    """The shared moto S3 server with bucket ``promlab-hist``; the s3fs storage options."""
    s3fs.S3FileSystem(**moto_s3, skip_instance_cache=True).mkdir("promlab-hist")
    return moto_s3


def _write(store: Any) -> None:
    """Three native histogram series (growing counters, a reset in one) and a float series."""
    rng = np.random.default_rng(3)
    series = [Labels({"__name__": "lat", "job": j}) for j in ("a", "b", "c")]
    counts = np.zeros((3, 8))
    ts = np.arange(0, HOURS * HOUR, STEP_MS, dtype=np.int64)
    for k0 in range(0, ts.shape[0], 240):  # an hour per commit
        app = store.appender()
        for k in range(k0, min(k0 + 240, ts.shape[0])):
            counts += rng.poisson(2.0, counts.shape)
            if k == ts.shape[0] // 2:
                counts[1] = 0  # a counter reset in job b
            hs = [from_bucket_map(2, {i - 3: float(c) for i, c in enumerate(row)},
                                  sum=float(row.sum()) * 0.1).to_int() for row in counts]
            app.append_histogram_batch(series, np.arange(3), np.full(3, ts[k]), hs)
            app.append(Labels({"__name__": "up", "job": "a"}), int(ts[k]), 1.0)
        app.commit()


@pytest.fixture(scope="module")
def stores(s3: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    local = tmp_path_factory.mktemp("hlocal") / "data"
    with open_store(local, wal_fsync=False) as st:
        _write(st)
    wal = tmp_path_factory.mktemp("hwal")
    url = "s3://promlab-hist/hstore"
    with open_store(url, storage_options=s3, local_dir=wal, wal_fsync=False) as st:
        _write(st)
    return {"local": str(local), "url": url, "opts": s3, "wal": wal}


def test_histogram_files_are_uploaded_not_kept_local(stores: dict[str, Any]) -> None:
    fs = s3fs.S3FileSystem(**stores["opts"], skip_instance_cache=True)
    names = [k.rsplit("/", 1)[1] for k in fs.find("promlab-hist/hstore/histograms")]
    files = [n for n in names if n.endswith(".parquet")]
    assert files and sorted(n for n in names if n.endswith(".crc.json")) == \
        sorted(f + ".crc.json" for f in files)
    staging = Path(stores["wal"]) / "histograms"
    assert not staging.exists() or not [p for p in staging.iterdir() if p.suffix == ".parquet"]


QUERIES = [
    pytest.param("lat", id="selector"),
    pytest.param("histogram_quantile(0.9, sum(rate(lat[5m])))", id="quantile-of-sum-rate"),
    pytest.param("histogram_count(increase(lat[1h]))", id="count-increase"),
    pytest.param("up", id="float-beside"),
]


@pytest.mark.parametrize("expr", QUERIES)
def test_reader_elsewhere_answers_as_local_store(stores: dict[str, Any], expr: str,
                                                 tmp_path: Path) -> None:
    with Session(stores["local"], read_only=True) as loc, \
            Session(stores["url"], read_only=True, storage_options=stores["opts"],
                    local_dir=str(tmp_path / "reader")) as rem:
        for _ in range(2):  # the second round is served from the decoded cache
            a = loc.query_range(expr, END_S - 4 * 3600, END_S, "10m")
            b = rem.query_range(expr, END_S - 4 * 3600, END_S, "10m")
            assert len(a) > 0
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_damaged_remote_histogram_file_verified_and_quarantined(s3: dict[str, Any],
                                                                tmp_path: Path) -> None:
    url = "s3://promlab-hist/hdamaged"
    with open_store(url, storage_options=s3, local_dir=tmp_path / "w", wal_fsync=False) as st:
        _write(st)
    fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
    keys = sorted(k for k in fs.find("promlab-hist/hdamaged/histograms") if k.endswith(".parquet"))
    data = bytearray(fs.cat_file(keys[0]))
    data[len(data) // 2] ^= 0xFF  # same size: only the checksum can tell
    fs.pipe_file(keys[0], bytes(data))
    bad = [r for r in verify_store(url, storage_options=s3) if r.reason is not None]
    assert [r.path.rsplit("/", 1)[1] for r in bad] == [keys[0].rsplit("/", 1)[1]]
    assert "checksum mismatch" in (bad[0].reason or "")
    assert len(repair_store(url, storage_options=s3)) == 1
    assert [r for r in verify_store(url, storage_options=s3) if r.reason is not None] == []
    left = fs.find("promlab-hist/hdamaged/histograms")
    assert keys[0] not in left
    assert any("/.quarantine/" in k and k.endswith(keys[0].rsplit("/", 1)[1]) for k in left)


def test_delete_series_rewrites_remote_histogram_files(s3: dict[str, Any], tmp_path: Path) -> None:
    """``delete_series`` on a store at a URL deletes native histogram samples as on a local one:
    files rewritten in the bucket (sidecars beside them), a reader elsewhere answers alike."""
    url = "s3://promlab-hist/hdelete"
    local = tmp_path / "local"
    job_b = [[Matcher(MatchType.EQUAL, "job", "b")]]
    mint, maxt = 2 * HOUR, 3 * HOUR  # both ends included, as Prometheus
    remote: dict[str, Any] = {"storage_options": s3, "local_dir": tmp_path / "w"}
    for where, opts in ((str(local), {}), (url, remote)):
        with open_store(where, wal_fsync=False, **opts) as st:
            _write(st)
            assert st.delete_series(job_b, mint, maxt) >= 1
    fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
    names = [k.rsplit("/", 1)[1] for k in fs.find("promlab-hist/hdelete/histograms")]
    files = [n for n in names if n.endswith(".parquet")]
    assert files and sorted(n for n in names if n.endswith(".crc.json")) == \
        sorted(f + ".crc.json" for f in files)
    assert [r for r in verify_store(url, storage_options=s3) if r.reason is not None] == []
    with Session(str(local), read_only=True) as loc, \
            Session(url, read_only=True, storage_options=s3, local_dir=str(tmp_path / "reader")) as rem:
        for expr in ("count_over_time(lat[1h])", "histogram_count(lat)"):
            a = loc.query_range(expr, 0, END_S, "30m")
            b = rem.query_range(expr, 0, END_S, "30m")
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
        # Windows (1h, 2h], (2h, 3h], (3h, 4h]: job b loses the sample at 2h and all of the next.
        for hour, b in ((2, {"b": 239.0}), (3, {}), (4, {"b": 240.0})):
            got = rem.query_range("count_over_time(lat[1h])", hour * 3600, hour * 3600, "1m")
            assert dict(zip(got["job"], got["value"], strict=True)) == {"a": 240.0, "c": 240.0, **b}


def test_reopened_remote_writer_knows_each_series_latest(s3: dict[str, Any], tmp_path: Path) -> None:
    """A writer reopened on a URL reads each series' latest sample back from the bucket's blocks
    and histogram files: the last samples again are taken once, another histogram at the last
    time is a duplicate (Prometheus's head, replayed from its WAL, answers alike)."""
    url = "s3://promlab-hist/hreopen"
    opts: dict[str, Any] = {"storage_options": s3, "local_dir": tmp_path / "w", "wal_fsync": False}
    with open_store(url, **opts) as st:
        _write(st)
    last = HOURS * HOUR - STEP_MS
    with open_store(url, **opts) as st:
        ss = st.querier(last, last).select([Matcher(MatchType.EQUAL, "__name__", "lat")])
        assert ss.histograms is not None and len(ss) == 3
        app = st.appender()
        for i in range(len(ss)):
            app.append_histogram(ss.labels[i], last, ss.histograms[ss.offsets[i]].to_int())
        app.append(Labels({"__name__": "up", "job": "a"}), last, 1.0)
        res = app.commit()
        assert (res.appended, res.duplicates, res.out_of_order, res.out_of_bounds) == (0, 0, 0, 0)
        app = st.appender()
        app.append_histogram(ss.labels[0], last, from_bucket_map(2, {0: 1.0}, sum=0.5).to_int())
        assert app.commit().duplicates == 1
