"""Answers about methods and paths as Prometheus's Go router gives them.

- ``OPTIONS`` on any path under ``/api/v1/``: ``204 No Content`` (Prometheus's API registers an
  ``OPTIONS /*path`` handler, for CORS preflights); on another route: ``200`` with ``Allow``.
- A method a route does not serve: ``405`` with ``Allow`` listing its methods and ``OPTIONS``,
  body ``Method Not Allowed\\n``.
- No route: ``404`` with ``404 page not found\\n``.
- The API v1 routes, ``/federate`` and ``/metrics`` are registered for their methods only: no implicit
  ``HEAD`` (Starlette adds one to every ``GET`` route).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["API_OPTIONS_ROUTE", "EXCEPTION_HANDLERS", "drop_implicit_head"]

_NOSNIFF = {"X-Content-Type-Options": "nosniff"}

#: Paths whose routes answer only the methods they name (no implicit ``HEAD``; Prometheus
#: registers ``HEAD`` for ``/-/healthy`` and ``/-/ready`` only).
EXACT_METHOD_PREFIXES = ("/api/v1/", "/federate", "/metrics")


async def _api_options(request: Request) -> Response:
    return Response(status_code=204)


#: Prometheus's ``OPTIONS /api/v1/*path``; mount it after every API route (a route of the
#: same path with other methods only partly matches, so this one answers ``OPTIONS``).
API_OPTIONS_ROUTE = Route("/api/v1/{path:path}", _api_options, methods=["OPTIONS"])


def _allow(exc: HTTPException) -> str:
    methods = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
    return ", ".join(sorted(methods | {"OPTIONS"}))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if (exc.headers or {}).get("Allow") == "OPTIONS":  # only the catch-all OPTIONS route
        return await _not_found(request, exc)
    allow = _allow(exc)
    if request.method == "OPTIONS":  # Go's router answers OPTIONS itself on a known path
        return Response(status_code=200, headers={"Allow": allow})
    return PlainTextResponse("Method Not Allowed\n", status_code=405,
                             headers={"Allow": allow, **_NOSNIFF})


async def _not_found(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("404 page not found\n", status_code=404, headers=_NOSNIFF)


#: Starlette ``exception_handlers`` for the 404 and 405 answers above.
EXCEPTION_HANDLERS: dict[int, Callable[[Request, Exception], Awaitable[Response]]] = {
    404: _not_found, 405: _method_not_allowed}


def drop_implicit_head(routes: Iterable[BaseRoute]) -> None:
    """Take the implicit ``HEAD`` off the routes under :data:`EXACT_METHOD_PREFIXES`, in place
    (none of them serves ``HEAD`` in Prometheus)."""
    for route in routes:
        if isinstance(route, Route) and route.methods and \
                route.path.startswith(EXACT_METHOD_PREFIXES):
            route.methods.discard("HEAD")
