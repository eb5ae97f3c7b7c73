"""Response compression: gzip where a real Prometheus compresses, under promlab's peer policy.

A Prometheus 2.42 and a promlab server (policy ``always``) get the same requests with
``Accept-Encoding: gzip``; each endpoint must be compressed by both or by neither, and the
decompressed answer must equal the plain one. The default policy (``auto``) leaves loopback
peers uncompressed and compresses for a peer on another address.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import MemoryStorage, Session
from promlab.api import Server
from promlab.api.app import create_app
from promlab.errors import ConfigError
from promlab.model import Labels

pytestmark = [pytest.mark.realprom]

T0 = 1_700_000_000_000

# (id, method, path with query)
REQUESTS = [
    ("query", "GET", "/api/v1/query?query=up_many&time=1700000100"),
    ("query-range", "GET", "/api/v1/query_range?query=up_many&start=1700000000&end=1700000300&step=10"),
    ("query-post", "POST", "/api/v1/query?query=up_many&time=1700000100"),
    ("query-error", "GET", "/api/v1/query?query=" + "sum(" * 40),
    ("series", "GET", "/api/v1/series?match[]=up_many&start=1700000000&end=1700000300"),
    ("label-values", "GET", "/api/v1/label/instance/values?start=1700000000&end=1700000300"),
    ("buildinfo", "GET", "/api/v1/status/buildinfo"),
    ("federate", "GET", "/federate?match[]=up_many"),  # promlab's has "now" samples (fixture)
    ("metrics", "GET", "/metrics"),
    ("healthy", "GET", "/-/healthy"),
    ("ready", "GET", "/-/ready"),
    ("remote-read-bad", "POST", "/api/v1/read"),
]


def _samples() -> list[tuple[Labels, list[tuple[int, float]]]]:
    return [(Labels({"__name__": "up_many", "job": "j", "instance": f"host-{i:03d}:9100"}),
             [(T0 + k * 10_000, float(i * k)) for k in range(31)]) for i in range(40)]


def _openmetrics() -> str:
    lines = ["# TYPE up_many gauge"]
    for ls, pts in _samples():
        lab = ",".join(f'{k}="{v}"' for k, v in ls.items() if k != "__name__")
        lines += [f"up_many{{{lab}}} {v} {t / 1000:.3f}" for t, v in pts]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    realprom.require_binary("prometheus")
    realprom.require_binary("promtool")
    om = tmp_path_factory.mktemp("om") / "data.om"
    om.write_text(_openmetrics())
    prom_data = tmp_path_factory.mktemp("prom")
    realprom.backfill(om, prom_data)
    store = MemoryStorage()
    app = store.appender()
    now = int(time.time() * 1000)
    for ls, pts in _samples():
        for t, v in pts:
            app.append(ls, t, v)
        app.append(ls, now, 1.0)  # for /federate (Prometheus's answers empty, gzipped all the same)
    app.commit()
    with Session(store, progress=False) as s, \
            Server(s, listen="127.0.0.1:0", compression="always") as srv, \
            realprom.prometheus(prom_data) as prom:
        yield srv.url, prom.url


def _send(client: httpx.Client, method: str, url: str, **headers: str) -> httpx.Response:
    if method == "POST" and "?" in url:
        base, _, query = url.partition("?")
        return client.post(base, content=query, headers={
            "Content-Type": "application/x-www-form-urlencoded", **headers})
    return client.request(method, url, headers=headers)


def _decoded(resp: httpx.Response) -> Any:
    ctype = resp.headers.get("content-type", "")
    return resp.json() if ctype.startswith("application/json") else resp.text


@pytest.mark.parametrize(("method", "path"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS])
def test_compressed_where_prometheus_compresses(servers: tuple[str, str], method: str, path: str
                                                ) -> None:
    ours, theirs = servers
    with httpx.Client(timeout=30) as c:
        want = _send(c, method, theirs + path, **{"Accept-Encoding": "gzip"})
        got = _send(c, method, ours + path, **{"Accept-Encoding": "gzip"})
        plain = _send(c, method, ours + path, **{"Accept-Encoding": "identity"})
    assert got.status_code == want.status_code
    assert got.headers.get("content-encoding") == want.headers.get("content-encoding")
    assert "content-encoding" not in plain.headers
    assert _decoded(got) == _decoded(plain)  # httpx decompressed it: the same answer


@pytest.mark.parametrize("path", [
    "/api/v1/query_range?query=up_many&start=1700000000&end=1700000300&step=10",
    "/federate?match[]=up_many",
], ids=["query-range", "federate"])
def test_gzip_body_is_real_gzip(servers: tuple[str, str], path: str) -> None:
    ours, _ = servers
    with httpx.Client(timeout=30) as c:
        with c.stream("GET", ours + path, headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == "gzip"
            assert "accept-encoding" in r.headers.get("vary", "").lower()
        plain = c.get(ours + path, headers={"Accept-Encoding": "identity"}).content
    assert gzip.decompress(raw) == plain
    assert len(raw) * 3 < len(plain)
    assert plain.count(b"up_many{") == 40 if "federate" in path else \
        len(json.loads(plain)["data"]["result"]) == 40


def _non_loopback_ip() -> str | None:
    """An address of this machine that is not loopback (the source of a non-local peer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: picks the outgoing interface
            ip = str(s.getsockname()[0])
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


@pytest.mark.parametrize(("policy", "local", "remote"), [
    ("auto", None, "gzip"),
    ("always", "gzip", "gzip"),
    ("never", None, None),
], ids=["auto", "always", "never"])
def test_policy_by_peer(policy: str, local: str | None, remote: str | None) -> None:
    ip = _non_loopback_ip()
    store = MemoryStorage()
    app = store.appender()
    for ls, pts in _samples():
        app.append(ls, pts[0][0], pts[0][1])
    app.commit()
    path = f"/api/v1/query?query=up_many&time={T0 // 1000}"
    hdr = {"Accept-Encoding": "gzip"}
    with Session(store, progress=False) as s, \
            Server(s, listen="0.0.0.0:0", compression=policy) as srv, httpx.Client(timeout=30) as c:
        assert c.get(f"http://127.0.0.1:{srv.port}{path}", headers=hdr) \
            .headers.get("content-encoding") == local
        if ip is None:
            pytest.skip("no non-loopback IPv4 address on this machine to connect from")
        r = c.get(f"http://{ip}:{srv.port}{path}", headers=hdr)
        assert r.headers.get("content-encoding") == remote
        assert len(r.json()["data"]["result"]) == 40


def test_unknown_policy_is_refused() -> None:
    with Session(MemoryStorage(), progress=False) as s, \
            pytest.raises(ConfigError, match="invalid compression policy 'fast'"):
        create_app(s, compression="fast")


def test_under_a_route_prefix() -> None:
    store = MemoryStorage()
    app = store.appender()
    for ls, pts in _samples():
        app.append(ls, pts[0][0], pts[0][1])
    app.commit()
    with Session(store, progress=False) as s, httpx.Client(timeout=30) as c, \
            Server(s, listen="127.0.0.1:0", compression="always", route_prefix="/p/") as srv:
        assert srv.url.endswith("/p")
        r = c.get(srv.url + f"/api/v1/query?query=up_many&time={T0 // 1000}",
                  headers={"Accept-Encoding": "gzip"})
        assert r.headers.get("content-encoding") == "gzip"
        assert len(r.json()["data"]["result"]) == 40
        assert c.get(srv.url + "/-/healthy").headers.get("content-encoding") is None
