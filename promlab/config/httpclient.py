"""HTTP clients from an ``HTTPClientConfig``: auth (basic, authorization, secret files), TLS.

Prometheus's ``common/config`` builds every outgoing client the same way (scrapes, Alertmanager
notifications, remote write and read); so does this module, below every part that sends
requests.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Generator

import httpx

from promlab.config.model import HTTPClientConfig
from promlab.errors import ScrapeError

__all__ = ["USER_AGENT", "build_client", "ssl_context"]

USER_AGENT = "promlab/0.1 (Prometheus-compatible scraper)"


def _read_secret(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except OSError as exc:
        raise ScrapeError(f"unable to read secret file {path}: {exc.strerror}") from exc


class _HeaderAuth(httpx.Auth):
    """Sets ``Authorization`` per request, re-reading secret files each time as Prometheus does."""

    def __init__(self, cfg: HTTPClientConfig) -> None:
        self.cfg = cfg

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        b, a = self.cfg.basic_auth, self.cfg.authorization
        if b is not None:
            password = _read_secret(b.password_file) if b.password_file else b.password
            token = base64.b64encode(f"{b.username}:{password}".encode()).decode()
            request.headers["Authorization"] = f"Basic {token}"
        elif a is not None:
            cred = _read_secret(a.credentials_file) if a.credentials_file else a.credentials
            request.headers["Authorization"] = f"{a.type} {cred}"
        yield request


def ssl_context(cfg: HTTPClientConfig) -> ssl.SSLContext:
    """The TLS context of a job (build once, share between its targets' clients)."""
    t = cfg.tls_config
    ctx = ssl.create_default_context(cafile=t.ca_file or None)
    if t.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if t.cert_file:
        ctx.load_cert_chain(t.cert_file, t.key_file or None)
    return ctx


def build_client(cfg: HTTPClientConfig, *, timeout_s: float, max_connections: int | None = None,
                 verify: ssl.SSLContext | None = None, keepalive_s: float = 5.0) -> httpx.AsyncClient:
    """An ``AsyncClient`` with the auth and TLS settings of ``cfg``.

    The scraper makes one small client per target (httpcore scans its whole pool on every
    request, so one pool for a thousand targets would cost milliseconds per scrape) sharing the
    job's ``verify`` context. ``keepalive_s`` is how long an idle connection is kept: for a
    scrape target it must exceed the scrape interval, else every scrape pays a TCP connect and
    close (a quarter of the scrape loop's CPU at 1,000 targets). A connection the server closed
    meanwhile is noticed by httpcore and replaced.

    Raises
    ------
    ScrapeError
        When the TLS files cannot be loaded.
    """
    if verify is None:
        try:
            verify = ssl_context(cfg)
        except (OSError, ssl.SSLError) as exc:
            raise ScrapeError(f"unable to load TLS configuration: {exc}") from exc
    auth = _HeaderAuth(cfg) if cfg.basic_auth is not None or cfg.authorization is not None else None
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                          keepalive_expiry=keepalive_s)
    return httpx.AsyncClient(
        auth=auth, verify=verify, timeout=timeout_s, follow_redirects=cfg.follow_redirects, limits=limits,
        headers={"User-Agent": USER_AGENT}, trust_env=False,
    )
