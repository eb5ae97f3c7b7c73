"""Remote write receiver: negotiation, status codes, what is stored; a real Prometheus sending."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from benchmarks import realprom
from promlab import Session
from promlab.api import Server
from promlab.model import Labels, Matcher, MatchType
from promlab.remote.codec import compress
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.remote.proto import write_v2_pb2 as pb2

NOW_MS = int(time.time() * 1000) // 1000 * 1000
V1 = "application/x-protobuf"
V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"


@pytest.fixture
def rw(tmp_path: Path) -> Iterator[tuple[Session, httpx.Client]]:
    with Session(tmp_path / "data") as s, Server(s, listen="127.0.0.1:0") as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        yield s, c


def stored(s: Session, name: str) -> dict[Labels, list[tuple[int, float]]]:
    q = s.store.querier(0, NOW_MS + 3_600_000)
    ss = q.select([Matcher(MatchType.EQUAL, "__name__", name)])
    q.close()
    out = {}
    for i in range(len(ss)):
        ls, t, v = ss.series(i)
        out[ls] = list(zip(t.tolist(), v.tolist(), strict=True))
    return out


def v1_request(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    req = pb.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in sorted(labels.items()):
            ts.labels.add(name=k, value=v)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return req.SerializeToString()


def v2_request(series: list[tuple[dict[str, str], list[tuple[int, float, int]]]], *,
               help_text: str = "", bad_ref: bool = False) -> bytes:
    req = pb2.Request()
    sym: dict[str, int] = {"": 0}

    def ref(s: str) -> int:
        return sym.setdefault(s, len(sym))

    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in sorted(labels.items()):
            ts.labels_refs.extend([ref(k), ref(v)])
        if bad_ref:
            ts.labels_refs.extend([999, 1000])
        for t, v, st in samples:
            ts.samples.add(timestamp=t, value=v, start_timestamp=st)
        ts.metadata.type = pb2.Metadata.METRIC_TYPE_COUNTER
        ts.metadata.help_ref = ref(help_text)
    req.symbols.extend(sorted(sym, key=sym.__getitem__))
    return req.SerializeToString()


A = {"__name__": "rw_a", "job": "j"}
GOOD_V1 = v1_request([(A, [(NOW_MS - 2000, 1.0), (NOW_MS - 1000, 2.5)])])


@pytest.mark.parametrize(("body", "headers", "status", "stored_samples"), [
    pytest.param(compress(GOOD_V1), {"Content-Type": V1, "Content-Encoding": "snappy"}, 204, 2,
                 id="v1"),
    pytest.param(compress(GOOD_V1), {"Content-Type": V1 + ";proto=prometheus.WriteRequest",
                                     "Content-Encoding": "snappy"}, 204, 2, id="v1-named"),
    pytest.param(compress(GOOD_V1), {}, 204, 2, id="v1-no-headers"),
    pytest.param(b"\xff\xff\xff not snappy", {"Content-Type": V1, "Content-Encoding": "snappy"},
                 400, 0, id="bad-snappy"),
    pytest.param(compress(b"\x0a\xff\xff\xff\x0f garbage"), {"Content-Type": V1}, 400, 0,
                 id="bad-protobuf"),
    pytest.param(compress(GOOD_V1), {"Content-Type": "application/json"}, 415, 0, id="json"),
    pytest.param(compress(GOOD_V1), {"Content-Type": V1 + ";proto=foo.Bar"}, 415, 0,
                 id="unknown-proto"),
    pytest.param(compress(GOOD_V1), {"Content-Type": V1, "Content-Encoding": "gzip"}, 415, 0,
                 id="gzip"),
    pytest.param(compress(v1_request([({"job": "no-name"}, [(NOW_MS, 1.0)]),
                                      (A, [(NOW_MS, 3.0)])])),
                 {"Content-Type": V1}, 400, 1, id="invalid-labels-partial"),
    pytest.param(compress(v1_request([(A, [(NOW_MS + 3_600_000, 1.0)])])),
                 {"Content-Type": V1}, 400, 0, id="too-far-ahead"),
    pytest.param(compress(v1_request([(A, [(NOW_MS, 1.0), (NOW_MS + 3_600_000, 1.0)])])),
                 {"Content-Type": V1}, 400, 0, id="too-far-ahead-rolls-v1-back"),
    pytest.param(compress(v2_request([(A, [(NOW_MS, 1.0, 0), (NOW_MS + 3_600_000, 1.0, 0)])])),
                 {"Content-Type": V2, "Content-Encoding": "snappy"}, 400, 1,
                 id="too-far-ahead-v2-partial"),
    pytest.param(compress(v2_request([(A, [(NOW_MS, 1.0, 0)])], bad_ref=True)),
                 {"Content-Type": V2, "Content-Encoding": "snappy"}, 400, 0, id="v2-bad-ref"),
])
def test_write_status(rw: tuple[Session, httpx.Client], body: bytes, headers: dict[str, str],
                      status: int, stored_samples: int) -> None:
    s, c = rw
    r = c.post("/api/v1/write", content=body, headers=headers)
    assert r.status_code == status, r.text
    if status != 204:
        assert r.text.strip()
    got = stored(s, "rw_a")
    assert sum(len(v) for v in got.values()) == stored_samples


B = {"__name__": "rw_a", "job": "k"}
A_NAME = '{__name__="rw_a", job="j"}'
B_NAME = '{__name__="rw_a", job="k"}'
BASE = [(A, [(NOW_MS - 30_000, 1.0), (NOW_MS - 15_000, 2.0)]), (B, [(NOW_MS - 30_000, 1.0)])]


# (probe after BASE, 1.0: status and message, 2.0: status and message, what is stored after it)
@pytest.mark.parametrize(("probe", "v1_answer", "v2_answer", "after"), [
    pytest.param([(A, [(NOW_MS - 20_000, 9.0)]), (B, [(NOW_MS - 15_000, 2.0)])],
                 (400, "out of order sample"),
                 (400, f"out of order sample for series {A_NAME}"), 1, id="older-then-good"),
    pytest.param([(A, [(NOW_MS - 15_000, 4.0)])],
                 (400, f"duplicate sample for timestamp {NOW_MS - 15_000}; overrides not allowed: "
                       "existing 2, new value 4"),
                 (400, f"duplicate sample for timestamp {NOW_MS - 15_000}; overrides not allowed: "
                       f"existing 2, new value 4 for series {A_NAME}"), 0, id="duplicate-other-value"),
    pytest.param([(A, [(NOW_MS - 15_000, 2.0)])], (204, ""), (204, ""), 0,
                 id="duplicate-same-value"),
    pytest.param([(B, [(NOW_MS - 3 * 3_600_000, 1.0)]), (A, [(NOW_MS, 3.0)])],
                 (400, "out of bounds"), (400, f"out of bounds for series {B_NAME}"), 1,
                 id="out-of-bounds-then-good"),
    pytest.param([(B, [(NOW_MS, 1.0), (NOW_MS - 1000, 2.0), (NOW_MS, 3.0)])], (204, ""), (204, ""),
                 1, id="within-request-dropped-at-commit"),
])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_refused_samples(rw: tuple[Session, httpx.Client], probe: list[tuple[dict[str, str], list[tuple[int, float]]]],
                         v1_answer: tuple[int, str], v2_answer: tuple[int, str], after: int,
                         version: str) -> None:
    """1.0 refuses the whole request (Prometheus's rollback); 2.0 names each refused sample
    and commits the rest (Prometheus 3.x); a sample refused against an earlier one of the same
    request is dropped at commit without an error (both)."""
    s, c = rw
    headers = {"Content-Type": V1} if version == "1.0" else {"Content-Type": V2}

    def request(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
        if version == "1.0":
            return compress(v1_request(series))
        return compress(v2_request([(ls, [(t, v, 0) for t, v in pts]) for ls, pts in series]))

    assert c.post("/api/v1/write", content=request(BASE), headers=headers).status_code == 204
    before = sum(len(v) for v in stored(s, "rw_a").values())
    r = c.post("/api/v1/write", content=request(probe), headers=headers)
    want = v1_answer if version == "1.0" else v2_answer
    assert (r.status_code, r.text.strip()) == want
    assert sum(len(v) for v in stored(s, "rw_a").values()) - before == (
        0 if version == "1.0" and want[0] == 400 else after)


def test_write_v1_values(rw: tuple[Session, httpx.Client]) -> None:
    s, c = rw
    stale = float(np.frombuffer(np.uint64(0x7FF0000000000002).tobytes(), np.float64)[0])
    body = v1_request([(A, [(NOW_MS - 3000, 0.0), (NOW_MS - 2000, -1.5), (NOW_MS - 1000, stale)]),
                       ({**A, "job": "k"}, [(NOW_MS - 1000, math.inf)])])
    r = c.post("/api/v1/write", content=compress(body), headers={"Content-Type": V1})
    assert r.status_code == 204
    assert "X-Prometheus-Remote-Write-Samples-Written" not in r.headers
    got = stored(s, "rw_a")
    a = got[Labels(A)]
    assert [t for t, _ in a] == [NOW_MS - 3000, NOW_MS - 2000, NOW_MS - 1000]
    assert a[0][1] == 0.0 and a[1][1] == -1.5
    assert np.float64(a[2][1]).view(np.uint64) == 0x7FF0000000000002
    assert got[Labels({**A, "job": "k"})] == [(NOW_MS - 1000, math.inf)]


def test_write_v2_headers_metadata_start_timestamps(tmp_path: Path) -> None:
    with Session(tmp_path / "d") as s, \
            Server(s, listen="127.0.0.1:0", ingest_start_timestamps=True) as srv:
        body = v2_request([(A, [(NOW_MS - 1000, 5.0, NOW_MS - 5000), (NOW_MS, 7.0, NOW_MS - 5000)])],
                          help_text="A counter.")
        r = httpx.post(srv.url + "/api/v1/write", content=compress(body),
                       headers={"Content-Type": V2, "Content-Encoding": "snappy",
                                "X-Prometheus-Remote-Write-Version": "2.0.0"})
        assert r.status_code == 204, r.text
        assert r.headers["X-Prometheus-Remote-Write-Samples-Written"] == "2"
        assert r.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "0"
        assert r.headers["X-Prometheus-Remote-Write-Exemplars-Written"] == "0"
        # The start timestamp became a zero sample before the first one.
        assert stored(s, "rw_a")[Labels(A)] == [(NOW_MS - 5000, 0.0), (NOW_MS - 1000, 5.0),
                                                (NOW_MS, 7.0)]


def test_write_read_only_session(tmp_path: Path) -> None:
    with Session(tmp_path / "d") as s:
        s.storage  # noqa: B018  (creates the store)
    with Session(tmp_path / "d", read_only=True) as s, Server(s, listen="127.0.0.1:0") as srv:
        r = httpx.post(srv.url + "/api/v1/write", content=compress(GOOD_V1),
                       headers={"Content-Type": V1})
        assert r.status_code == 503


@pytest.mark.realprom
@pytest.mark.slow
def test_real_prometheus_remote_write(tmp_path: Path) -> None:
    """A real Prometheus scraping itself remote-writes to promlab: the same samples arrive."""
    realprom.require_binary("prometheus")
    with Session(tmp_path / "promlab") as s, Server(s, listen="127.0.0.1:0") as srv:
        port = realprom.free_port()
        cfg = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "prom",
                                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
            "remote_write": [{"url": srv.url + "/api/v1/write",
                              "queue_config": {"batch_send_deadline": "500ms"}}],
        }
        with realprom.prometheus(config=cfg, port=port, data_dir=tmp_path / "prom") as prom:
            deadline = time.time() + 60
            t_cmp = None
            while time.time() < deadline:
                time.sleep(1)
                got = stored(s, "prometheus_http_requests_total")
                if t_cmp is None and got:
                    t_cmp = time.time() + 4
                if t_cmp is not None and time.time() > t_cmp + 3:
                    break
            assert t_cmp is not None, prom.log()[-3000:]
            data = prom.query('{job="prom"}[10s]', time=t_cmp)["result"]
            assert len(data) > 50
            q = s.store.querier(0, int(t_cmp * 1000))
            try:
                for item in data:
                    ls = Labels(item["metric"])
                    ss = q.select([Matcher(MatchType.EQUAL, k, v) for k, v in ls.pairs])
                    mine = {(t, v) for i in range(len(ss)) if ss.labels[i] == ls
                            for t, v in zip(*[a.tolist() for a in ss.series(i)[1:]], strict=True)
                            if int(t_cmp * 1000) - 10_000 < t <= int(t_cmp * 1000)}
                    theirs = {(round(float(t) * 1000), float(v)) for t, v in item["values"]}
                    assert {x for x in theirs if not math.isnan(x[1])} == \
                        {x for x in mine if not math.isnan(x[1])}, ls
            finally:
                q.close()
