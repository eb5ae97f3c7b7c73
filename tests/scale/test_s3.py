"""Stores at an S3 URL (issue 14 item 2), against moto's S3-compatible server on 127.0.0.1.

The writer path is the daemon's (appends committed to the local WAL, automatic flushes and
compaction uploading blocks); readers are other Sessions with their own (empty) local directory,
as on another machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from promlab.errors import StorageError
from promlab.model import Labels
from promlab.session import Session
from promlab.storage import describe_store, open_store
from promlab.storage.objectstore import ObjectStoreFS
from promlab.storage.verify import repair_store, verify_store

pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

HOUR = 3_600_000
STEP_MS = 15_000
HOURS = 12
METRICS = ("req_total", "bytes_total", "temp")
SERIES = 40
END_S = HOURS * 3600


@pytest.fixture(scope="module")
def s3(moto_s3: dict[str, Any]) -> dict[str, Any]:
    """The shared moto S3 server with bucket ``promlab``; the s3fs storage options."""
    s3fs.S3FileSystem(**moto_s3, skip_instance_cache=True).mkdir("promlab")
    return moto_s3


def _write(session: Session) -> None:
    """The same samples into any store: counters, a gauge with decimals, 40 series each."""
    rng = np.random.default_rng(7)
    ts = np.arange(0, HOURS * HOUR, STEP_MS, dtype=np.int64)
    app = session.store.appender()  # type: ignore[attr-defined]
    by_metric = {m: [Labels({"__name__": m, "instance": f"h{i:02d}",
                             "job": "node" if i % 2 else "api"}) for i in range(SERIES)]
                 for m in METRICS}
    # Two hours of every metric per commit, in time order like a scraper's stream (the head
    # refuses what is older than its newest sample minus an hour, as Prometheus's).
    for k in range(0, ts.shape[0], 480):
        for m, series in by_metric.items():
            t = ts[k:k + 480]
            idx = np.repeat(np.arange(SERIES), t.shape[0])
            tt = np.tile(t, SERIES)
            if m == "temp":
                vals = np.round(20 + rng.normal(0, 3, tt.shape[0]), 2)
            else:
                vals = (tt // STEP_MS) * (idx + 1) + rng.integers(0, 5, tt.shape[0])
            app.append_batch(series, idx, tt, vals.astype(np.float64))
        app.commit()


@pytest.fixture(scope="module")
def stores(s3: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One local store and one at s3://promlab/store with the same samples (writers closed)."""
    local = tmp_path_factory.mktemp("local") / "data"
    with Session(str(local)) as s:
        _write(s)
    url = "s3://promlab/store"
    with Session(url, storage_options=s3, local_dir=str(tmp_path_factory.mktemp("wal"))) as s:
        _write(s)
        fs = s.store.fs  # type: ignore[attr-defined]
        assert isinstance(fs, ObjectStoreFS)
        written = fs.bytes_written
    return {"local": str(local), "url": url, "opts": s3, "written": written}


def _reader(stores: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Session:
    return Session(stores["url"], read_only=True, storage_options=stores["opts"],
                   local_dir=str(tmp_path_factory.mktemp("reader")))


QUERIES = [
    pytest.param("req_total", id="selector"),
    pytest.param("rate(req_total[5m])", id="rate"),
    pytest.param("sum by (job) (rate(bytes_total[5m]))", id="sum-by-rate"),
    pytest.param("topk(3, temp)", id="topk"),
    pytest.param("max_over_time(temp[1h])", id="max-over-time"),
    pytest.param('req_total{instance="h03"} / on(instance) bytes_total', id="binop-on"),
    pytest.param("count by (job) (temp > 21)", id="count-by"),
]


@pytest.mark.parametrize("expr", QUERIES)
def test_answers_match_local_store(stores: dict[str, Any], tmp_path_factory: pytest.TempPathFactory,
                                   expr: str) -> None:
    with Session(stores["local"], read_only=True) as loc, _reader(stores, tmp_path_factory) as rem:
        for a, b in [(loc.query(expr, time=END_S - 100), rem.query(expr, time=END_S - 100)),
                     (loc.query_range(expr, END_S - 4 * 3600, END_S, "5m"),
                      rem.query_range(expr, END_S - 4 * 3600, END_S, "5m"))]:
            assert len(a) > 0
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_blocks_uploaded_compacted_and_checksummed(stores: dict[str, Any]) -> None:
    fs = s3fs.S3FileSystem(**stores["opts"], skip_instance_cache=True)
    keys = fs.find("promlab/store/blocks")
    metas = [k for k in keys if k.endswith("/meta.json")]
    # 12 h flushed in 2 h blocks, then compacted into the day's window: one published block.
    assert len(metas) == 1
    meta = json.loads(fs.cat_file(metas[0]))
    assert meta["level"] >= 2 and meta["files"]["samples.parquet"]["row_groups"]
    assert stores["written"] > 0
    assert not [k for k in keys if "/wal/" in k]  # the WAL stayed local


def test_describe_store_counts_remote_blocks(stores: dict[str, Any],
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """``tsdb info`` on an s3:// store: blocks counted remotely, local bytes never negative."""
    with _reader(stores, tmp_path_factory) as rem, Session(stores["local"], read_only=True) as loc:
        remote, local = describe_store(rem.store), describe_store(loc.store)
    assert remote.block_bytes > 0 and remote.blocks == local.blocks == 1
    assert remote.samples == local.samples
    assert 0 <= remote.other_bytes < remote.block_bytes


def test_selective_reads(stores: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    fs = s3fs.S3FileSystem(**stores["opts"], skip_instance_cache=True)
    total = sum(int(v["size"]) for v in fs.find("promlab/store/blocks", detail=True).values())
    with _reader(stores, tmp_path_factory) as rem:
        rfs = rem.store.fs  # type: ignore[attr-defined]
        c0 = rfs.counters()
        # Opening the block on first touch: its series index and Parquet footer, once.
        assert len(rem.query("bytes_total", time=END_S - 100)) == SERIES
        c1 = rfs.counters()
        df = rem.query_range('temp{instance="h05"}', END_S - 3 * 3600, END_S - 2 * 3600, "1m")
        c2 = rfs.counters()
        whole = rem.query_range("temp", 0, END_S, "10m")
        c3 = rfs.counters()
    opening = c1["bytes_read"] - c0["bytes_read"]
    one = c2["bytes_read"] - c1["bytes_read"]
    print(f"\nstore {total:,} B; first touch (open + one instant query) {opening:,} B in "
          f"{c1['requests'] - c0['requests']} requests; one series x one hour of another metric "
          f"{one:,} B in {c2['requests'] - c1['requests']} requests; that whole metric over 12 h "
          f"{c3['bytes_read'] - c2['bytes_read']:,} B")
    assert len(df) == 61 and len(whole) > 0
    assert one < total / 10, (one, total)
    assert opening < total / 4, (opening, total)


def test_atomic_publish(s3: dict[str, Any], tmp_path: Path) -> None:
    """A reader listing while a block uploads sees no part of it until meta.json is there."""
    url = "s3://promlab/atomic"
    uploaded, go = threading.Event(), threading.Event()
    seen: list[str] = []
    writer = open_store(url, storage_options=s3, local_dir=tmp_path / "w", auto_compact=False)
    assert isinstance(writer.fs, ObjectStoreFS)

    def pause(path: str) -> None:
        seen.append(path.rsplit("/", 1)[1])
        if len(seen) == 1:
            uploaded.set()
            assert go.wait(30)

    writer.fs.after_upload = pause
    app = writer.appender()
    for t in range(0, HOUR, STEP_MS):
        app.append(Labels({"__name__": "up", "job": "a"}), t, 1.0)
    app.commit()
    flusher = threading.Thread(target=writer.flush)
    flusher.start()
    try:
        assert uploaded.wait(30)
        reader = open_store(url, storage_options=s3, local_dir=tmp_path / "r", readonly=True)
        assert reader.blocks() == []  # one data file is up, meta.json is not
        assert reader.damaged_blocks() == {}
    finally:
        go.set()
        flusher.join(30)
    # recent.arrow, tail.arrow, samples, series.arrow, series.parquet, then meta.json
    assert seen[-1] == "meta.json" and len(seen) == 6
    blocks = reader.blocks()
    assert len(blocks) == 1 and blocks[0].meta.num_samples == HOUR // STEP_MS
    reader.close()
    writer.close()


def test_damaged_object_is_skipped_not_misread(s3: dict[str, Any], tmp_path: Path) -> None:
    url = "s3://promlab/damaged"
    with open_store(url, storage_options=s3, local_dir=tmp_path / "w") as st:
        app = st.appender()
        for t in range(0, HOUR, STEP_MS):
            app.append(Labels({"__name__": "up", "job": "a"}), t, float(t))
        app.commit()
    fs = s3fs.S3FileSystem(**s3, skip_instance_cache=True)
    key = next(k for k in fs.find("promlab/damaged/blocks") if k.endswith("samples.parquet"))
    data = bytearray(fs.cat_file(key))
    data[len(data) // 3] ^= 0xFF  # same size: only the checksums can tell
    fs.pipe_file(key, bytes(data))
    with Session(url, read_only=True, storage_options=s3, local_dir=str(tmp_path / "r")) as s:
        # As on local disk: the read that finds damage fails naming the block, later ones skip
        # it. (At 20 min: the samples file is read, not the block's last 15 min, recent.arrow.)
        with pytest.raises(StorageError, match="checksum mismatch"):
            s.query("up", time=1200)
        assert s.query("up", time=1200).empty
        reasons = list(s.store.damaged_blocks().values())  # type: ignore[attr-defined]
        assert len(reasons) == 1 and "s3://promlab/damaged/blocks/" in reasons[0]
    assert [r.reason is not None for r in verify_store(url, storage_options=s3)] == [True]
    assert len(repair_store(url, storage_options=s3)) == 1
    assert verify_store(url, storage_options=s3) == []
    assert [k.rsplit("/", 1)[1] for k in fs.find("promlab/damaged/blocks/.quarantine")
            if k.endswith(("REASON", "meta.json"))] == ["REASON", "meta.json"]


def _cli_env(opts: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AWS_ENDPOINT_URL=opts["endpoint_url"], AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               XDG_CACHE_HOME=env.get("TMPDIR", "/tmp") + "/promlab-s3-cli-cache")
    return env


@pytest.mark.parametrize("how", ["env", "storage-option"])
def test_cli_query(stores: dict[str, Any], how: str) -> None:
    opts = stores["opts"]
    args = [sys.executable, "-m", "promlab", "query", "--data", stores["url"], "-q",
            "--time", str(END_S - 100), "--format", "json", 'sum by (job) (temp{instance=~"h0[0-3]"})']
    env = _cli_env(opts)
    if how == "storage-option":
        args += ["--storage-option", f"endpoint_url={opts['endpoint_url']}",
                 "--storage-option", "key=testing", "--storage-option", "secret=testing"]
        env.pop("AWS_ENDPOINT_URL")
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    got = {r["metric"]["job"]: float(r["value"][1]) for r in json.loads(out.stdout)["result"]}
    with Session(stores["local"], read_only=True) as loc:
        want = loc.query('sum by (job) (temp{instance=~"h0[0-3]"})', time=END_S - 100)
    assert got == pytest.approx(dict(zip(want["job"], want["value"], strict=True)))


def test_dask_workers_read_s3(stores: dict[str, Any], tmp_path_factory: pytest.TempPathFactory,
                              dask_client: Any) -> None:
    expr = "sum by (job) (rate(req_total[5m]))"
    with Session(stores["local"], read_only=True) as loc, \
            Session(stores["url"], read_only=True, storage_options=stores["opts"],
                    local_dir=str(tmp_path_factory.mktemp("dask")), cluster=dask_client) as rem:
        a = loc.query_range(expr, END_S - 3600, END_S, "1m")
        b = rem.query_range(expr, END_S - 3600, END_S, "1m")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
