"""CORS headers as Prometheus's API sets them (``--web.cors.origin``; promlab sets none unless
given one, Prometheus's default is ``.*``).

Prometheus's ``httputil.SetCORS`` runs in the wrapper of its API v1 handlers: every answer
gets ``Vary: Origin`` (3.x); one to a request with an ``Origin`` also gets
``Access-Control-Allow-Headers``, ``-Methods`` and ``-Expose-Headers`` whatever the origin, and
``Access-Control-Allow-Origin`` when the origin matches the (fully anchored) regex: ``*`` for
``.*``, else the origin itself. A preflight is the API's ``OPTIONS`` route (204), never checked
against the method or headers it asks for. Answers from outside those handlers get nothing: a
path no route serves (404), a method its route does not serve (405), remote read and write
and OTLP (the WAL replay status and the notifications set the headers themselves), and
everything outside ``/api/v1/`` (``/federate``, ``/-/...``, ``/metrics``) or not Prometheus's
(the Pushgateway's API).

Examples
--------
>>> Cors(app=None, origin=".*").headers_for("http://a")[-1]
(b'access-control-allow-origin', b'*')
>>> Cors(app=None, origin=r"https?://a\\.com").headers_for("http://b.com")[-1]
(b'vary', b'Origin')
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from promlab.api.methods import API_OPTIONS_ROUTE

__all__ = ["Cors"]

_HEADERS = [(b"access-control-allow-headers", b"Accept, Authorization, Content-Type, Origin"),
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-expose-headers", b"Date")]

#: API paths whose handlers never set CORS headers in Prometheus, and the Pushgateway's API
#: paths promlab serves beside Prometheus's.
_UNWRAPPED = frozenset({"/api/v1/read", "/api/v1/write", "/api/v1/otlp/v1/metrics",
                        "/api/v1/status", "/api/v1/metrics", "/api/v1/admin/wipe"})


class Cors:
    """ASGI middleware: Prometheus's CORS headers for ``origin`` (a regex, anchored at both
    ends as Prometheus compiles it) on the answers of the API v1 handlers."""

    def __init__(self, app: ASGIApp, *, origin: str) -> None:
        self.app = app
        self.any_origin = origin == ".*"
        self.origin = re.compile(f"^(?:{origin})$")

    def headers_for(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """The headers an API answer gets for a request with this ``Origin`` (None: absent)."""
        if origin is None:
            return [(b"vary", b"Origin")]
        out = [*_HEADERS, (b"vary", b"Origin")]
        if self.any_origin:
            out.append((b"access-control-allow-origin", b"*"))
        elif self.origin.match(origin):
            out.append((b"access-control-allow-origin", origin.encode("latin-1")))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/api/v1/") or path in _UNWRAPPED:
            await self.app(scope, receive, send)
            return
        origin = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                       if k == b"origin"), None)

        async def send_with_cors(msg: Message) -> None:
            if msg["type"] == "http.response.start" and _handled(scope, msg["status"]):
                kept = [(k, v) for k, v in msg.get("headers", []) if k.lower() != b"vary"]
                msg = {**msg, "headers": [*kept, *self.headers_for(origin)]}
            await send(msg)

        await self.app(scope, receive, send_with_cors)


def _handled(scope: Scope, status: int) -> bool:
    """Whether a route's handler answered: the router sets the endpoint on a match (a partial
    one too: a method the route does not serve, 405; any method but ``OPTIONS`` on the
    catch-all ``OPTIONS`` route, which promlab.api.methods turns into a 404)."""
    endpoint = scope.get("endpoint")
    if endpoint is None or status == 405:
        return False
    return endpoint is not API_OPTIONS_ROUTE.endpoint or scope.get("method") == "OPTIONS"
