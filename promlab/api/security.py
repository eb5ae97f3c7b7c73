"""Access control of the server: Prometheus's web configuration file, a bearer token and a
request body limit.

The web configuration file (``--web.config.file``, the exporter-toolkit format)::

    tls_server_config:        # serve HTTPS
      cert_file: server.crt
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert   # optional, with client_ca_file
      client_ca_file: ca.crt
    http_server_config:
      headers:                # added to every response
        X-Frame-Options: deny
    basic_auth_users:         # user: bcrypt hash
      alice: $2y$10$...

Unknown keys are errors, as in Prometheus. :class:`Guard` is the ASGI middleware that enforces
it: a request without valid credentials gets ``401`` (with ``WWW-Authenticate``), a body over
the limit ``413``; neither reaches a handler, so neither changes anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promlab.errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Guard", "TLSConfig", "WebConfig", "load_web_config"]

#: Largest request body accepted by default (32 MiB: remote-write batches fit easily).
DEFAULT_MAX_BODY_BYTES = 32 << 20

_CLIENT_AUTH = {
    "": ssl.CERT_NONE,
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version",
             "max_version", "cipher_suites", "prefer_server_cipher_suites", "curve_preferences",
             "client_allowed_sans", "cert", "key"}
_ALLOWED_HEADERS = {"content-security-policy", "x-frame-options", "x-content-type-options",
                    "x-xss-protection", "strict-transport-security"}


@dataclass(frozen=True)
class TLSConfig:
    """``tls_server_config``: the certificate and key to serve with, and client checks."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_cert_reqs: int = ssl.CERT_NONE

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments for ``uvicorn.Config``."""
        opts: dict[str, Any] = {"ssl_certfile": self.cert_file, "ssl_keyfile": self.key_file,
                                "ssl_cert_reqs": self.client_cert_reqs}
        if self.client_ca_file:
            opts["ssl_ca_certs"] = self.client_ca_file
        return opts


@dataclass(frozen=True)
class WebConfig:
    """A parsed web configuration file (all parts optional)."""

    tls: TLSConfig | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    basic_auth_users: Mapping[str, str] = field(default_factory=dict)


def _mapping(value: Any, where: str, file: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping", file=file)
    return value


def load_web_config(path: str | os.PathLike[str]) -> WebConfig:
    """Read a web configuration file; relative certificate paths are relative to it.

    Raises
    ------
    ConfigError
        Unreadable, unknown keys, a TLS section without both files, a header Prometheus does
        not allow, a password that is not a bcrypt hash.
    """
    import yaml

    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read web config: {exc}", file=file) from None
    doc = _mapping(doc, "the web config", file)
    unknown = set(doc) - {"tls_server_config", "http_server_config", "basic_auth_users"}
    if unknown:
        raise ConfigError(f"field {sorted(unknown)[0]} not found in type web.Config", file=file)
    base = os.path.dirname(os.path.abspath(file))
    tls = None
    tls_doc = _mapping(doc.get("tls_server_config"), "tls_server_config", file)
    if tls_doc:
        bad = set(tls_doc) - _TLS_KEYS
        if bad:
            raise ConfigError(f"field {sorted(bad)[0]} not found in type web.TLSConfig",
                              file=file)
        cert, key = tls_doc.get("cert_file"), tls_doc.get("key_file")
        if not cert or not key:
            raise ConfigError("missing cert_file or key_file in tls_server_config", file=file)
        auth = str(tls_doc.get("client_auth_type") or "")
        if auth not in _CLIENT_AUTH:
            raise ConfigError(f"invalid ClientAuth: {auth}", file=file)
        ca = tls_doc.get("client_ca_file")
        if auth in ("RequireAndVerifyClientCert", "VerifyClientCertIfGiven") and not ca:
            raise ConfigError("client_ca_file is required for " + auth, file=file)
        tls = TLSConfig(cert_file=os.path.join(base, str(cert)),
                        key_file=os.path.join(base, str(key)),
                        client_ca_file=os.path.join(base, str(ca)) if ca else None,
                        client_cert_reqs=_CLIENT_AUTH[auth])
    http_doc = _mapping(doc.get("http_server_config"), "http_server_config", file)
    bad = set(http_doc) - {"http2", "headers"}
    if bad:
        raise ConfigError(f"field {sorted(bad)[0]} not found in type web.HTTPConfig", file=file)
    headers = {str(k): str(v) for k, v in _mapping(http_doc.get("headers"), "headers",
                                                    file).items()}
    for name in headers:
        if name.lower() not in _ALLOWED_HEADERS:
            raise ConfigError(f'HTTP header "{name}" can not be configured', file=file)
    users = {str(k): str(v) for k, v in _mapping(doc.get("basic_auth_users"),
                                                  "basic_auth_users", file).items()}
    for user, hashed in users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(f"basic_auth_users: the password of {user!r} is not a bcrypt "
                              "hash", file=file)
    return WebConfig(tls=tls, headers=headers, basic_auth_users=users)


class Guard:
    """ASGI middleware: credentials (basic auth and/or a bearer token), body limit, headers.

    With both basic-auth users and a bearer token configured, either credential is accepted.
    Checked bcrypt results are cached (as Prometheus does): bcrypt is slow by design.
    """

    def __init__(self, app: ASGIApp, *, web_config: WebConfig | None = None,
                 bearer_token: str | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        cfg = web_config or WebConfig()
        self.users = dict(cfg.basic_auth_users)
        self.token = bearer_token
        self.max_body = max_body_bytes
        self.headers = [(k.lower().encode(), v.encode()) for k, v in cfg.headers.items()]
        self._cache: dict[bytes, bool] = {}
        self._lock = threading.Lock()

    def _basic_ok(self, value: str) -> bool:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(f"{user}\x00{hashed}\x00{password}".encode()).digest()
        with self._lock:
            known = self._cache.get(key)
        if known is None:
            import bcrypt

            try:
                known = bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1)
                                       .encode())
            except ValueError:
                known = False
            with self._lock:
                if len(self._cache) > 1024:
                    self._cache.clear()
                self._cache[key] = known
        return known

    def authorized(self, authorization: str) -> bool:
        """Whether an ``Authorization`` header value passes."""
        if not self.users and self.token is None:
            return True
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        if scheme == "basic" and self.users:
            return self._basic_ok(value.strip())
        if scheme == "bearer" and self.token is not None:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        return False

    async def _plain(self, send: Send, status: int, text: str,
                     extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
        body = text.encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"),
                   (b"content-length", str(len(body)).encode()), *self.headers, *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        if not self.authorized(headers.get("authorization", "")):
            challenge = [(b"www-authenticate", b'Basic realm="promlab"')] if self.users else []
            await self._plain(send, 401, "Unauthorized\n", challenge)
            return
        length = headers.get("content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await self._plain(send, 400, "bad Content-Length\n")
                return
            if too_big:
                await self._plain(send, 413, "request body too large\n")
                return
        # Read the whole body here (at most the limit) so that an oversized chunked body is
        # refused before any handler sees a byte of it; whatever the method (a GET's
        # multipart form body counts in Prometheus, promlab.api.multipart).
        chunks: list[bytes] = []
        received = 0
        more = True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            received += len(chunk)
            if received > self.max_body:
                await self._plain(send, 413, "request body too large\n")
                return
            chunks.append(chunk)
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start" and self.headers:
                msg = {**msg, "headers": [*msg.get("headers", []), *self.headers]}
            await send(msg)

        await self.app(scope, replay, send_with_headers)
