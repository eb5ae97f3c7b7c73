"""Listings on object storage (issue 14): a query reuses a listing younger than the store's
``list_ttl_s`` instead of making its own LIST round trips, what the process itself uploads or
deletes is seen at once, and a follower reading the writer's WAL lists again when the WAL moved
on. Against moto's S3-compatible server; counted by the store's own request counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.storage import ParquetStore, open_store
from promlab.storage.objectfs import ObjectStoreFS

from .conftest import HOUR, T0

pytest.importorskip("moto.server")
s3fs = pytest.importorskip("s3fs")

STEP = 60_000


def _append(st: ParquetStore, hour: int) -> None:
    """An hour of one series, from ``T0 + hour h``."""
    app = st.appender()
    ts = T0 + hour * HOUR + np.arange(0, HOUR, STEP, dtype=np.int64)
    app.append_batch([Labels({"__name__": "up", "job": "a"})], np.zeros(ts.shape[0], np.int64),
                     ts, np.ones(ts.shape[0]))
    app.commit()


def _count(st: ParquetStore, hours: int) -> float:
    res = Engine().instant(st, "count_over_time(up[1d])", T0 + hours * HOUR - 1)
    vals = np.asarray(res.value.values).ravel()  # type: ignore[union-attr]
    return float(vals[0]) if vals.shape[0] else 0.0


def _requests(st: ParquetStore) -> int:
    fs = st.fs
    assert isinstance(fs, ObjectStoreFS)
    return fs.counters()["requests"]


@pytest.fixture
def bucket(moto_s3: dict[str, Any], request: pytest.FixtureRequest) -> str:
    name = "listing-" + request.node.name.replace("_", "-").replace("[", "-").strip("]-")[:40]
    s3fs.S3FileSystem(**moto_s3, skip_instance_cache=True).mkdir(name)
    return f"s3://{name}/store"


@pytest.mark.parametrize(("ttl", "lists"), [(3600.0, False), (0.0, True)], ids=["fresh", "stale"])
def test_a_query_reuses_a_fresh_listing(moto_s3: dict[str, Any], bucket: str, tmp_path: Path,
                                        ttl: float, lists: bool) -> None:
    with open_store(bucket, storage_options=moto_s3, local_dir=str(tmp_path / "w"),
                    block_duration="1h") as w:
        _append(w, 0)
        w.flush()
    with open_store(bucket, readonly=True, storage_options=moto_s3,
                    local_dir=str(tmp_path / "r")) as ro:
        assert isinstance(ro.fs, ObjectStoreFS)
        ro.fs.list_ttl_s = ttl
        assert _count(ro, 1) == 60  # reads the block: GETs, and the listings
        before = _requests(ro)
        assert _count(ro, 1) == 60  # the decoded cache answers: only listings could cost
        assert (_requests(ro) > before) is lists


def test_own_uploads_are_seen_at_once(moto_s3: dict[str, Any], bucket: str,
                                      tmp_path: Path) -> None:
    """A writer's flushed blocks leave its head: a listing kept from before the upload would
    lose them. Every upload forgets the listings, however long they are otherwise kept."""
    with open_store(bucket, storage_options=moto_s3, local_dir=str(tmp_path / "w"),
                    block_duration="1h", auto_compact=False) as w:
        assert isinstance(w.fs, ObjectStoreFS)
        w.fs.list_ttl_s = 3600.0
        for hour in range(3):
            _append(w, hour)
            w.flush()
            assert len(w.blocks(cached=True)) == hour + 1
            assert _count(w, hour + 1) == 60 * (hour + 1)
        # Compaction (deletes and uploads) is seen too.
        w.compact()
        assert _count(w, 3) == 180
