"""Access control: web config basic auth (bcrypt), TLS with a self-signed certificate, bearer
token, extra headers, body limit; checked with httpx and curl, with and without credentials."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
import pytest

from promlab import Session
from promlab.api import Server, load_web_config
from promlab.errors import ConfigError

PASSWORD = "s3cret"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a self-signed certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
                   check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


def _web_config(tmp_path: Path, tls: tuple[Path, Path] | None = None) -> Path:
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    lines = ["basic_auth_users:", f"  alice: '{hashed}'",
             "http_server_config:", "  headers:", "    X-Frame-Options: deny"]
    if tls is not None:
        lines += ["tls_server_config:", f"  cert_file: {tls[0]}", f"  key_file: {tls[1]}"]
    path = tmp_path / "web.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def auth_server(mem_session: Session, tmp_path: Path) -> Iterator[Server]:
    with Server(mem_session, listen="127.0.0.1:0", web_config=_web_config(tmp_path),
                max_body_bytes=1024) as srv:
        yield srv


@pytest.mark.parametrize(("auth", "status"), [
    pytest.param(None, 401, id="none"),
    pytest.param(("alice", "wrong"), 401, id="wrong-password"),
    pytest.param(("bob", PASSWORD), 401, id="unknown-user"),
    pytest.param(("alice", PASSWORD), 200, id="good"),
])
def test_basic_auth(auth_server: Server, auth: tuple[str, str] | None, status: int) -> None:
    r = httpx.get(auth_server.url + "/api/v1/query", params={"query": "up", "time": "600"},
                  auth=auth)
    assert r.status_code == status
    assert r.headers["x-frame-options"] == "deny"
    if status == 401:
        assert r.headers["www-authenticate"].startswith("Basic")
    else:
        assert len(r.json()["data"]["result"]) == 2


def test_curl_basic_auth(auth_server: Server) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is needed")
    url = auth_server.url + "/api/v1/labels"
    no = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                        capture_output=True, text=True, check=True)
    yes = subprocess.run([curl, "-s", "-u", f"alice:{PASSWORD}", url], capture_output=True,
                         text=True, check=True)
    assert no.stdout == "401"
    assert '"data":["__name__","code","instance","job"]' in yes.stdout


@pytest.mark.parametrize(("size", "status"), [
    pytest.param(100, 200, id="small"),
    pytest.param(5000, 413, id="oversized"),
])
def test_body_limit(auth_server: Server, size: int, status: int) -> None:
    body = "query=up&time=600&pad=" + "x" * size
    r = httpx.post(auth_server.url + "/api/v1/query", content=body, auth=("alice", PASSWORD),
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == status


def test_oversized_chunked_body(auth_server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    r = httpx.post(auth_server.url + "/api/v1/query", content=chunks(),
                   auth=("alice", PASSWORD),
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_malformed_form(served: Server) -> None:
    r = httpx.post(served.url + "/api/v1/query", content=b"query=\xff\xfe",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json()["errorType"] == "bad_data"


def test_bearer_token(mem_session: Session) -> None:
    with Server(mem_session, listen="127.0.0.1:0", bearer_token="tok") as srv:
        assert httpx.get(srv.url + "/-/healthy").status_code == 401
        bad = httpx.get(srv.url + "/-/healthy", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        ok = httpx.get(srv.url + "/-/healthy", headers={"Authorization": "Bearer tok"})
        assert ok.status_code == 200


def test_tls(mem_session: Session, tmp_path: Path, tls_files: tuple[Path, Path]) -> None:
    cfg = _web_config(tmp_path, tls_files)
    with Server(mem_session, listen="127.0.0.1:0", web_config=cfg) as srv:
        assert srv.url.startswith("https://")
        with pytest.raises(httpx.ConnectError):  # an unknown CA is refused by the client
            httpx.get(srv.url + "/-/healthy")
        with httpx.Client(verify=ssl.create_default_context(cafile=str(tls_files[0]))) as c:
            assert c.get(srv.url + "/-/healthy").status_code == 401
            r = c.get(srv.url + "/api/v1/query", params={"query": "up"},
                      auth=("alice", PASSWORD))
            assert r.status_code == 200
        curl = shutil.which("curl")
        if curl is None:
            pytest.fail("curl is needed")
        out = subprocess.run([curl, "-s", "--cacert", str(tls_files[0]), "-u",
                              f"alice:{PASSWORD}", srv.url + "/api/v1/status/buildinfo"],
                             capture_output=True, text=True, check=True)
        assert '"version":"2.42.0"' in out.stdout


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("nope: 1\n", "field nope not found", id="unknown-key"),
    pytest.param("tls_server_config:\n  cert_file: a.pem\n", "missing cert_file or key_file",
                 id="tls-without-key"),
    pytest.param("basic_auth_users:\n  alice: plain\n", "not a bcrypt hash", id="plain-password"),
    pytest.param("http_server_config:\n  headers:\n    Server: x\n", "can not be configured",
                 id="forbidden-header"),
])
def test_bad_web_config(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_web_config(path)
