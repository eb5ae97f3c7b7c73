"""The TSDB admin API against a real Prometheus 2.42 (``--web.enable-admin-api``): status codes
and bodies, snapshots that open as stores, deleted samples gone and the rest intact."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import Session, datasets
from promlab.api import Server
from promlab.datasets import DatasetInfo, DatasetSpec
from promlab.promql import Engine
from promlab.storage import open_store

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

ADMIN = "/api/v1/admin/tsdb/"


@dataclass
class AdminPair:
    info: DatasetInfo
    data_dir: Path
    promlab: Server
    prometheus: realprom.Prometheus


@pytest.fixture(scope="module")
def admin_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminPair]:
    realprom.require_binary("promtool")
    realprom.require_binary("prometheus")
    root = tmp_path_factory.mktemp("admin-pair")
    info = datasets.generate(root / "tiny.om", DatasetSpec(hours=1, scale=0.02), progress=False)
    realprom.backfill(info.path, root / "prom-data")
    data = root / "promlab-data"
    with Session(str(data), progress=False) as session:
        session.import_file(Path(info.path), progress=False)
        # realprom.prometheus passes --web.enable-admin-api.
        with realprom.prometheus(data_dir=root / "prom-data") as prom, \
                Server(session, listen="127.0.0.1:0", enable_admin_api=True) as server:
            yield AdminPair(info=info, data_dir=data, promlab=server, prometheus=prom)


def _both(pair: AdminPair, method: str, path: str, params: Any = None,
          ) -> tuple[httpx.Response, httpx.Response]:
    return tuple(httpx.request(method, url + path, params=params, timeout=60)  # type: ignore[return-value]
                 for url in (pair.promlab.url, pair.prometheus.url))


def _shape(r: httpx.Response) -> Any:
    if not r.headers.get("content-type", "").startswith("application/json"):
        return None
    body = r.json()
    return {k: (type(v).__name__ if k != "errorType" else v) for k, v in body.items()}


@pytest.mark.parametrize(("method", "path", "params"), [
    pytest.param("POST", "snapshot", None, id="snapshot"),
    pytest.param("PUT", "snapshot", {"skip_head": "true"}, id="snapshot-skip-head"),
    pytest.param("POST", "snapshot", {"skip_head": "maybe"}, id="snapshot-bad-bool"),
    pytest.param("GET", "snapshot", None, id="snapshot-get"),
    pytest.param("POST", "delete_series", None, id="delete-no-match"),
    pytest.param("POST", "delete_series", {"match[]": "{x=~'.*',y='z'}"}, id="delete-unmatched"),
    pytest.param("POST", "delete_series", {"match[]": "up{"}, id="delete-bad-selector"),
    pytest.param("POST", "delete_series", {"match[]": "nothing_here", "start": "x"},
                 id="delete-bad-start"),
    pytest.param("PUT", "delete_series", {"match[]": "nothing_here"}, id="delete-nothing"),
    pytest.param("POST", "clean_tombstones", None, id="clean-tombstones"),
])
def test_same_status_and_shape(admin_pair: AdminPair, method: str, path: str,
                               params: dict[str, str] | None) -> None:
    ours, theirs = _both(admin_pair, method, ADMIN + path, params)
    assert ours.status_code == theirs.status_code, ours.text
    assert _shape(ours) == _shape(theirs), (ours.text, theirs.text)
    if path == "snapshot" and ours.status_code == 200:
        name = ours.json()["data"]["name"]
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{16}", name)
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{16}", theirs.json()["data"]["name"])


def test_snapshot_opens_as_the_same_store(admin_pair: AdminPair) -> None:
    r = httpx.post(admin_pair.promlab.url + ADMIN + "snapshot", timeout=60)
    assert r.status_code == 200, r.text
    snap = admin_pair.data_dir / "snapshots" / r.json()["data"]["name"]
    assert (snap / "blocks").is_dir()
    spec = admin_pair.info.spec
    query = "{__name__=~'.+'}"
    engine = Engine()
    with open_store(snap, readonly=True) as copy:
        got = engine.range(copy, query, spec.start_ms, spec.end_ms, 60_000).to_frame()
    live = admin_pair.promlab.session.engine.range(
        admin_pair.promlab.session.store, query, spec.start_ms, spec.end_ms, 60_000).to_frame()
    assert len(got) > 0
    assert got.equals(live)
    # Hard links: the snapshot shares the blocks' files (no copy).
    a_file = next(p for p in snap.rglob("*") if p.is_file())
    assert os.stat(a_file).st_nlink >= 2


def _series(url: str, query: str, start: float, end: float) -> dict[str, list[Any]]:
    r = httpx.get(url + "/api/v1/query_range", params={"query": query, "start": start,
                                                         "end": end, "step": 30}, timeout=60)
    r.raise_for_status()
    return {str(sorted(s["metric"].items())): s["values"] for s in r.json()["data"]["result"]}


def test_delete_series_as_prometheus(admin_pair: AdminPair) -> None:
    spec = admin_pair.info.spec
    start, end = spec.start_ms / 1000, spec.end_ms / 1000
    metric = "node_memory_usage_bytes"
    listed = httpx.get(admin_pair.promlab.url + "/api/v1/series",
                       params={"match[]": metric}).json()["data"]
    assert len(listed) >= 2
    victim = listed[0]
    selector = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(victim.items())) + "}"
    cut_from, cut_to = start + (end - start) / 3, start + 2 * (end - start) / 3
    before = _series(admin_pair.promlab.url, metric, start, end)
    # One second more than the span: no sample on the window's edge, where Prometheus 2.42
    # (left-closed windows) and promlab (3.x, left-open) differ.
    raw = f"count_over_time({selector}[{int(end - start) + 1}s])"
    for url in (admin_pair.promlab.url, admin_pair.prometheus.url):
        r = httpx.post(url + ADMIN + "delete_series",
                       params={"match[]": selector, "start": cut_from, "end": cut_to}, timeout=60)
        assert r.status_code == 204, r.text
        assert r.content == b""
    ours = _series(admin_pair.promlab.url, metric, start, end)
    theirs = _series(admin_pair.prometheus.url, metric, start, end)
    assert ours == theirs
    key = str(sorted(victim.items()))
    assert len(ours[key]) < len(before[key])
    assert {k: v for k, v in ours.items() if k != key} == \
        {k: v for k, v in before.items() if k != key}
    # No sample of the victim is left inside the range, in either server.
    counts = [httpx.get(url + "/api/v1/query", params={"query": raw, "time": end}).json()
              for url in (admin_pair.promlab.url, admin_pair.prometheus.url)]
    assert counts[0]["data"]["result"][0]["value"][1] == counts[1]["data"]["result"][0]["value"][1]
    inside = httpx.get(admin_pair.promlab.url + "/api/v1/query", params={
        "query": f"count_over_time({selector}[{int(cut_to - cut_from) - 1}s])",
        "time": cut_to}).json()["data"]["result"]
    assert inside == []


@pytest.mark.parametrize(("method", "path"), [
    # the times are read before any selector; the form's errors first of all
    pytest.param("POST", "delete_series?match[]=sum(&start=x", id="delete-start-first"),
    pytest.param("POST", "delete_series?match[]=sum(&end=x", id="delete-end-first"),
    pytest.param("POST", "delete_series?match[]=x&time=%zz", id="delete-form-escape"),
    pytest.param("PUT", "delete_series?match[]=x&a;b", id="delete-form-semicolon"),
    pytest.param("POST", "snapshot?skip_head=yes", id="snapshot-bad-bool-message"),
])
def test_same_error(admin_pair: AdminPair, method: str, path: str) -> None:
    """The whole error body as Prometheus's (was: the selector's error first, form errors
    ignored, an older wording of the boolean error)."""
    ours, theirs = (httpx.request(method, url + ADMIN + path, timeout=60)
                    for url in (admin_pair.promlab.url, admin_pair.prometheus.url))
    assert ours.status_code == theirs.status_code == 400, ours.text
    assert ours.json() == theirs.json()


def test_delete_before_a_bad_selector(admin_pair: AdminPair) -> None:
    """Prometheus deletes selector by selector: those before a bad one are gone, then the
    error is answered."""
    metric = "http_request_duration_seconds_count"
    for url in (admin_pair.promlab.url, admin_pair.prometheus.url):
        assert httpx.get(url + "/api/v1/series", params={"match[]": metric}).json()["data"]
        r = httpx.post(url + ADMIN + "delete_series",
                       params={"match[]": [metric, "sum("]}, timeout=60)
        assert r.status_code == 400, r.text
        assert httpx.get(url + "/api/v1/series", params={"match[]": metric}).json()["data"] == []
