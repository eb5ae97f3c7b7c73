"""CORS headers (``--web.cors.origin``) as a real Prometheus 2.42 sets them: on its API
handlers' answers only, whatever the preflight asks for, ``*`` for ``.*`` and the origin itself
for another regex that matches it (promlab.api.cors; was Starlette's CORS middleware: on every
path, preflights checked and answered 200 or 400, the origin echoed for ``.*``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from benchmarks import realprom
from promlab import MemoryStorage, Session
from promlab.api import Server

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

ORIGINS = [".*", r"https?://a\.com"]


@pytest.fixture(scope="module", params=ORIGINS, ids=["any", "one"])
def servers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    realprom.require_binary("prometheus")
    origin = request.param
    with Session(MemoryStorage()) as session, \
            Server(session, listen="127.0.0.1:0", cors_origin=origin) as ours, \
            realprom.prometheus(extra_args=[f"--web.cors.origin={origin}",
                                            "--web.enable-remote-write-receiver"]) as theirs:
        yield ours.url, theirs.url


def _cors(r: httpx.Response) -> tuple[int, list[tuple[str, str]]]:
    return r.status_code, sorted((k, v) for k, v in r.headers.items()
                                 if k.startswith("access-control-") or k == "vary")


@pytest.mark.parametrize(("method", "path", "origin"), [
    pytest.param("GET", "/api/v1/query?query=1", "http://a.com", id="answer"),
    pytest.param("GET", "/api/v1/query?query=1", "https://b.com", id="other-origin"),
    pytest.param("POST", "/api/v1/query?query=sum(", "http://a.com", id="error-answer"),
    pytest.param("OPTIONS", "/api/v1/labels", "http://a.com", id="preflight"),
    pytest.param("OPTIONS", "/api/v1/nope", "https://b.com", id="preflight-any-path"),
    pytest.param("GET", "/api/v1/nope", "http://a.com", id="not-found"),
    pytest.param("PUT", "/api/v1/query", "http://a.com", id="method-not-allowed"),
    pytest.param("GET", "/api/v1/status/walreplay", "http://a.com", id="walreplay"),
    pytest.param("POST", "/api/v1/write", "http://a.com", id="remote-write"),
    pytest.param("GET", "/federate?match[]=up", "http://a.com", id="federate"),
    pytest.param("GET", "/-/ready", "http://a.com", id="ready"),
])
def test_cors_headers(servers: tuple[str, str], method: str, path: str, origin: str) -> None:
    headers = {"Origin": origin, "Accept-Encoding": "identity",
               "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-A"}
    ours, theirs = (httpx.request(method, base + path, headers=headers, timeout=30)
                    for base in servers)
    assert _cors(ours) == _cors(theirs)


def test_no_origin_no_cors(servers: tuple[str, str]) -> None:
    """Without ``Origin``: no CORS headers (3.x's ``Vary: Origin`` aside)."""
    ours, theirs = (httpx.get(base + "/api/v1/query?query=1", timeout=30) for base in servers)
    assert [h for h in _cors(ours)[1] if h[0] != "vary"] == _cors(theirs)[1] == []


def test_no_server_header(servers: tuple[str, str]) -> None:
    """Prometheus names no server (was: ``server: uvicorn``)."""
    ours, theirs = (httpx.get(base + "/-/ready", timeout=30) for base in servers)
    assert "server" not in ours.headers and "server" not in theirs.headers
