"""Remote-written exemplars: decoded from 1.0 and 2.0 requests, stored in the store's exemplar
storage (the scraped exemplars' one) and answered by ``/api/v1/query_exemplars``; a real
Prometheus 2.42 (``exemplar-storage``, ``send_exemplars``) remote-writes the exemplars it scraped."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from benchmarks import realprom
from promlab import Session
from promlab.api import Server
from promlab.model import Labels
from promlab.remote.codec import SeriesTable, compress, parse_write_v1, parse_write_v2
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.remote.proto import write_v2_pb2 as pb2
from promlab.storage.exemplars import exemplars_of
from tests.scrape.omtarget import serve_openmetrics

T = int(time.time() * 1000) // 1000 * 1000
A = {"__name__": "rx_total", "job": "j"}
V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

# (series labels, samples [(t, v)], exemplars [(labels, value, t)])
Series = tuple[dict[str, str], list[tuple[int, float]], list[tuple[dict[str, str], float, int]]]


def v1(series: list[Series]) -> bytes:
    req = pb.WriteRequest()
    for labels, samples, exemplars in series:
        ts = req.timeseries.add()
        for k, lv in sorted(labels.items()):
            ts.labels.add(name=k, value=lv)
        for t, x in samples:
            ts.samples.add(timestamp=t, value=x)
        for el, x, t in exemplars:
            ex = ts.exemplars.add(value=x, timestamp=t)
            for k, lv in el.items():
                ex.labels.add(name=k, value=lv)
    return bytes(req.SerializeToString())


def v2(series: list[Series], *, bad_exemplar_ref: bool = False) -> bytes:
    req = pb2.Request()
    sym: dict[str, int] = {"": 0}

    def ref(s: str) -> int:
        return sym.setdefault(s, len(sym))

    for labels, samples, exemplars in series:
        ts = req.timeseries.add()
        for k, lv in sorted(labels.items()):
            ts.labels_refs.extend([ref(k), ref(lv)])
        for t, x in samples:
            ts.samples.add(timestamp=t, value=x)
        for el, x, t in exemplars:
            ex = ts.exemplars.add(value=x, timestamp=t)
            for k, lv in el.items():
                ex.labels_refs.extend([ref(k), ref(lv)])
        if bad_exemplar_ref:
            ts.exemplars.add(value=1.0, timestamp=T, labels_refs=[1, 9999])
    req.symbols.extend(sorted(sym, key=sym.__getitem__))
    return bytes(req.SerializeToString())


def items(batch: Any) -> list[tuple[dict[str, str], dict[str, str], float, int, bool]]:
    return [(s.to_dict(), e.to_dict(), v, t, h) for s, e, v, t, h in batch.exemplar_items]


TWO: list[Series] = [
    (A, [(T, 1.0)], [({"trace_id": "a1"}, 0.5, T - 10), ({"trace_id": "a2", "span": "s"}, 2.0, T)]),
    ({"__name__": "other", "x": "y"}, [(T, 3.0)], [({}, -1.5, T - 5)]),
]
WANT_TWO = [(A, {"trace_id": "a1"}, 0.5, T - 10, True),
            (A, {"span": "s", "trace_id": "a2"}, 2.0, T, True),
            ({"__name__": "other", "x": "y"}, {}, -1.5, T - 5, True)]


@pytest.mark.parametrize(("parse", "raw", "want", "invalid"), [
    pytest.param(parse_write_v1, v1(TWO), WANT_TWO, 0, id="v1"),
    pytest.param(parse_write_v2, v2(TWO), WANT_TWO, 0, id="v2"),
    pytest.param(parse_write_v2, v2(TWO, bad_exemplar_ref=True), WANT_TWO, 2, id="v2-bad-ref"),
    pytest.param(parse_write_v1, v1([({"job": "no-name"}, [(T, 1.0)], [({"t": "x"}, 1.0, T)]),
                                     *TWO]), WANT_TWO, 0, id="v1-invalid-series"),
    pytest.param(parse_write_v2, v2([(A, [(T, 1.0)], [({"": "empty-name"}, 1.0, T)])]), [], 1,
                 id="v2-invalid-exemplar-label"),
])
def test_decode_exemplars(parse: Any, raw: bytes, want: list[Any], invalid: int) -> None:
    table = SeriesTable()
    for _ in range(2):  # the second time with the label sets known (1.0's scanner would use them)
        b = parse(raw, table)
        assert items(b) == want
        assert b.invalid_exemplars == invalid


@pytest.fixture
def rw(tmp_path: Path) -> Iterator[tuple[Session, httpx.Client]]:
    with Session(tmp_path / "data") as s, Server(s, listen="127.0.0.1:0") as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        yield s, c


def query_exemplars(c: httpx.Client, query: str, start: float = 0,
                    end: float | None = None) -> list[tuple[Any, ...]]:
    r = c.get("/api/v1/query_exemplars",
              params={"query": query, "start": start, "end": end or time.time() + 3600})
    r.raise_for_status()
    return sorted((tuple(sorted(s["seriesLabels"].items())), tuple(sorted(e["labels"].items())),
                   float(e["value"]), round(float(e["timestamp"]) * 1000))
                  for s in r.json()["data"] for e in s["exemplars"])


@pytest.mark.parametrize(("content_type", "encode", "written_header"), [
    pytest.param("application/x-protobuf", v1, None, id="v1"),
    pytest.param(V2, v2, "2", id="v2"),
])
def test_write_then_query_exemplars(rw: tuple[Session, httpx.Client], content_type: str,
                                    encode: Any, written_header: str | None) -> None:
    _, c = rw
    first: list[Series] = [(A, [(T - 1000, 1.0)], [({"trace_id": "a1"}, 0.5, T - 1000)]),
                           (A, [(T, 2.0)], [({"trace_id": "a2"}, 1.5, T)])]
    r = c.post("/api/v1/write", content=compress(encode(first)),
               headers={"Content-Type": content_type, "Content-Encoding": "snappy"})
    assert r.status_code == 204, r.text
    assert r.headers.get("X-Prometheus-Remote-Write-Exemplars-Written") == written_header
    # A duplicate of the newest and an out-of-order one: refused by the exemplar storage's
    # rules, and the request still succeeds (as in Prometheus).
    again: list[Series] = [(A, [(T + 1000, 3.0)], [({"trace_id": "a2"}, 1.5, T),
                                                   ({"trace_id": "old"}, 9.0, T - 5000),
                                                   ({"trace_id": "a3"}, 2.5, T + 1000)])]
    r = c.post("/api/v1/write", content=compress(encode(again)),
               headers={"Content-Type": content_type, "Content-Encoding": "snappy"})
    assert r.status_code == 204, r.text
    if written_header is not None:
        assert r.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "1"
    series = tuple(sorted(A.items()))
    assert query_exemplars(c, "rx_total") == [
        (series, (("trace_id", "a1"),), 0.5, T - 1000),
        (series, (("trace_id", "a2"),), 1.5, T),
        (series, (("trace_id", "a3"),), 2.5, T + 1000),
    ]


def prom_exemplars(prom: Any, query: str, start: float, end: float) -> list[tuple[Any, ...]]:
    r = prom.client.get("/api/v1/query_exemplars",
                        params={"query": query, "start": start, "end": end})
    r.raise_for_status()
    return sorted((tuple(sorted(s["seriesLabels"].items())), tuple(sorted(e["labels"].items())),
                   float(e["value"]), round(float(e["timestamp"]) * 1000))
                  for s in r.json()["data"] for e in s["exemplars"])


@pytest.mark.realprom
@pytest.mark.slow
def test_real_prometheus_sends_exemplars(tmp_path: Path) -> None:
    """Prometheus scrapes an OpenMetrics target with exemplars and remote-writes them (with
    ``send_exemplars``) to promlab; promlab answers ``query_exemplars`` as Prometheus does, and
    still does after a restart (the exemplar WAL)."""
    realprom.require_binary("prometheus")
    registry = CollectorRegistry()
    jobs = Counter("jobs", "Jobs done.", ["kind"], registry=registry)
    with serve_openmetrics(registry) as addr:
        with Session(tmp_path / "promlab") as s, Server(s, listen="127.0.0.1:0") as srv, \
                httpx.Client(base_url=srv.url, timeout=30) as ours:
            cfg = {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [{"job_name": "om", "static_configs": [{"targets": [addr]}]}],
                "remote_write": [{"url": srv.url + "/api/v1/write", "send_exemplars": True,
                                  "queue_config": {"batch_send_deadline": "500ms"}}],
            }
            with realprom.prometheus(config=cfg, data_dir=tmp_path / "prom",
                                     extra_args=["--enable-feature=exemplar-storage"]) as prom:
                deadline = time.time() + 60
                while time.time() < deadline and not prom.query("up", time=time.time())["result"]:
                    time.sleep(0.5)  # Prometheus applies new targets after up to 5 s
                start = time.time() - 5
                for trace in ("abc", "def", "ghi"):
                    jobs.labels("a").inc(exemplar={"trace_id": trace})
                    jobs.labels("b").inc(2, exemplar={"trace_id": trace + "-b", "span": "1"})
                    time.sleep(2.5)  # at least one scrape of each
                deadline = time.time() + 60
                mine: list[tuple[Any, ...]] = []
                theirs: list[tuple[Any, ...]] = []
                while time.time() < deadline:
                    end = time.time() + 60
                    theirs = prom_exemplars(prom, "jobs_total", start, end)
                    mine = query_exemplars(ours, "jobs_total", start, end)
                    if len(theirs) == 6 and mine == theirs:
                        break
                    time.sleep(1)
                assert len(theirs) == 6, prom.log()[-3000:]
                assert mine == theirs
                assert {dict(e[1])["trace_id"] for e in mine} == \
                    {"abc", "def", "ghi", "abc-b", "def-b", "ghi-b"}
        # A restart of promlab: the exemplars come back from its exemplar WAL.
        with Session(tmp_path / "promlab") as s:
            store = exemplars_of(s.store)
            assert store is not None
            back = sorted((tuple(sorted(r.series.pairs)), tuple(sorted(e.labels.pairs)), e.value,
                           e.timestamp_ms)
                          for r in store.select(0, 1 << 62, [[]]) for e in r.exemplars)
            assert back == mine


def test_exemplar_values_keep_nan(rw: tuple[Session, httpx.Client]) -> None:
    """A NaN exemplar value arrives as NaN (the JSON answer says "NaN")."""
    s, c = rw
    raw = v1([(A, [(T, 1.0)], [({"trace_id": "n"}, math.nan, T)])])
    r = c.post("/api/v1/write", content=compress(raw), headers={"Content-Type": "application/x-protobuf"})
    assert r.status_code == 204, r.text
    store = exemplars_of(s.store)
    assert store is not None
    got = [e for res in store.select(0, T + 1, [[]]) for e in res.exemplars]
    assert len(got) == 1 and math.isnan(got[0].value) and got[0].labels == Labels({"trace_id": "n"})
