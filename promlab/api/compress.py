"""Response compression: gzip for the JSON API, ``/federate`` and ``/metrics``, as Prometheus.

Prometheus gzips (or deflates) every API v1 JSON answer, ``/federate`` and its own ``/metrics``
when the client's ``Accept-Encoding`` asks, and leaves remote write/read (snappy already), the
management endpoints and everything else alone. A 1,440-step range answer over a hundred series
is ~5 MB of JSON; compressed it is a fraction of that, which is what a Grafana on another
machine wants. On the loopback interface the trade is the other way round: the bytes cost
nothing to move and compressing them costs more than evaluating the query. So the default
policy, ``"auto"``, compresses for peers that are not on a loopback address (a notebook or a
Grafana on the same host gets plain JSON, faster), ``"always"`` does what Prometheus does for
every peer, and ``"never"`` turns it off (``promlab serve --web.compression``).

The compression itself is Starlette's :class:`~starlette.middleware.gzip.GZipMiddleware` (it
reads ``Accept-Encoding``, streams, sets ``Vary`` and compresses large bodies in a worker
thread); this module only decides which requests go through it. Level 1: on JSON of numbers it
keeps most of the size reduction of zlib's default level 6 at a fraction of the time (measured
on two range answers of the benchmark dataset, 4 MB and 48 MB of JSON: 3x and 6x smaller at
level 1, 3.3x and 8x at level 6, level 1 4-5x faster: 21 against 101 ms, 136 against 580 ms).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from promlab.api.params import route_path
from promlab.errors import ConfigError

__all__ = ["COMPRESSION_POLICIES", "GZIP_LEVEL", "Compression", "check_policy", "compressible_path",
           "is_loopback"]

Policy = Literal["auto", "always", "never"]
#: ``auto``: non-loopback peers only (the default); ``always``: as Prometheus; ``never``: off.
COMPRESSION_POLICIES: tuple[Policy, ...] = ("auto", "always", "never")
GZIP_LEVEL = 1
#: Prometheus compresses every answer, errors included; only an empty body (a 204) is sent as
#: it is, since it must stay empty.
MINIMUM_SIZE = 1

#: API v1 paths that are not JSON answers: protobuf bodies with their own (snappy) encoding,
#: and the live notifications' event stream (a gzip stream would hold its events back).
_NOT_JSON = frozenset({"/api/v1/write", "/api/v1/read", "/api/v1/otlp/v1/metrics",
                       "/api/v1/notifications/live"})


def check_policy(policy: str) -> str:
    """``policy`` itself when it is one of :data:`COMPRESSION_POLICIES`.

    Raises
    ------
    ConfigError
        Any other value.
    """
    if policy not in COMPRESSION_POLICIES:
        raise ConfigError(f"invalid compression policy {policy!r}: want one of "
                          f"{', '.join(COMPRESSION_POLICIES)}")
    return policy


def compressible_path(path: str) -> bool:
    """Whether Prometheus compresses the answer at ``path``.

    Examples
    --------
    >>> [compressible_path(p) for p in ("/api/v1/query", "/federate", "/metrics")]
    [True, True, True]
    >>> [compressible_path(p) for p in ("/api/v1/read", "/metrics/job/x", "/-/healthy")]
    [False, False, False]
    """
    if path in ("/metrics", "/federate"):
        return True
    return path.startswith("/api/v1/") and path not in _NOT_JSON


def is_loopback(scope: Scope) -> bool:
    """Whether the peer of ``scope`` is on a loopback address (or unknown: a Unix socket).

    Examples
    --------
    >>> [is_loopback({"client": (h, 1)}) for h in ("127.0.0.1", "::1", "::ffff:127.0.0.2", "10.0.0.1")]
    [True, True, True, False]
    """
    client = scope.get("client")
    if not client:
        return True
    try:
        ip = ipaddress.ip_address(client[0])
    except ValueError:
        return False  # a host name (a proxy header rewrite): not known to be local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class Compression:
    """ASGI middleware: the answers of :func:`compressible_path` gzipped under ``policy``.

    Parameters
    ----------
    app
        The application to wrap.
    policy
        ``"auto"`` (non-loopback peers), ``"always"`` or ``"never"``.

    Raises
    ------
    ConfigError
        An unknown policy.
    """

    def __init__(self, app: ASGIApp, *, policy: str = "auto") -> None:
        self.app = app
        self.policy = check_policy(policy)
        self._gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=GZIP_LEVEL)

    def wants(self, scope: Scope) -> bool:
        """Whether the answer to ``scope`` may be compressed (the client must still ask)."""
        if self.policy == "never" or scope["type"] != "http":
            return False
        if not compressible_path(route_path(scope)):  # below a route prefix, if any
            return False
        return self.policy == "always" or not is_loopback(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.wants(scope):
            await self._gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
