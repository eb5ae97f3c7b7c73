"""Fetching a target's page over HTTP (httpx), apart from parsing it.

Clients come from :func:`promlab.config.httpclient.build_client` (auth, TLS); :func:`fetch` does
one GET with the scrape headers, the
timeout and the body size limit, and raises :class:`~promlab.errors.ScrapeError` with a message
worded like Prometheus's ``lastError``.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import httpx

from promlab.errors import ScrapeError

__all__ = ["FetchResult", "fetch"]


@dataclass(slots=True)
class FetchResult:
    body: bytes
    content_type: str | None


def _describe(url: str, exc: BaseException) -> str:
    """Prometheus-like wording of a transport error."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f'Get "{url}": context deadline exceeded'
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            msg = cause.verify_message or str(cause)
            if cause.verify_code in (2, 18, 19, 20, 21):  # no trusted issuer (incl. self-signed)
                msg = f"certificate signed by unknown authority ({msg})"
            return f'Get "{url}": x509: {msg}'
        if isinstance(cause, ssl.SSLError):
            return f'Get "{url}": tls: {cause.reason or cause}'
        if isinstance(cause, ConnectionRefusedError):
            return f'Get "{url}": connect: connection refused'
        cause = cause.__cause__ or cause.__context__
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return f'Get "{url}": connect: connection refused'
    return f'Get "{url}": {text}'


async def fetch(client: httpx.AsyncClient, url: str, *, timeout_s: float, accept: str,
                body_size_limit: int = 0, sni_hostname: str = "") -> FetchResult:
    """GET ``url`` (gzip allowed, decoded) within ``timeout_s``; raise ScrapeError on any failure."""
    headers = {
        "Accept": accept,
        "Accept-Encoding": "gzip",
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout_s:g}",
    }
    ext = {"sni_hostname": sni_hostname} if sni_hostname else None
    try:
        async with asyncio.timeout(timeout_s):
            req = client.build_request("GET", url, headers=headers, extensions=ext)
            resp = await client.send(req, stream=True)
            try:
                if resp.status_code != 200:
                    raise ScrapeError(f"server returned HTTP status {resp.status_code} {resp.reason_phrase}")
                chunks = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if body_size_limit and size > body_size_limit:
                        raise ScrapeError("body size limit exceeded")
                    chunks.append(chunk)
            finally:
                await resp.aclose()
    except ScrapeError:
        raise
    except (TimeoutError, httpx.HTTPError, OSError, ssl.SSLError) as exc:
        raise ScrapeError(_describe(url, exc)) from exc
    return FetchResult(b"".join(chunks), resp.headers.get("content-type"))
