"""The ASGI application: every route of promlab's Prometheus-compatible server.

:func:`create_app` mounts the API v1 query and status handlers, ``/federate``, ``/metrics``,
the management endpoints (``/-/healthy``, ``/-/ready``, ``/-/reload``, ``/-/quit``), the admin
API switch, and the routes of the modules listed in :data:`ROUTE_MODULES` (remote write/read,
push), then wraps it all in :class:`~promlab.api.security.Guard` (credentials, body limit,
headers), :class:`~promlab.api.gopaths.GoPaths` (Go's path-cleaning and trailing-slash
redirects), :class:`~promlab.api.compress.Compression` (gzip where Prometheus compresses) and,
only when asked, CORS.
"""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from promlab.api.admin import routes as admin_routes
from promlab.api.compress import Compression, check_policy
from promlab.api.cors import Cors
from promlab.api.federate import routes as federate_routes
from promlab.api.gopaths import GoPaths
from promlab.api.methods import API_OPTIONS_ROUTE, EXCEPTION_HANDLERS, drop_implicit_head
from promlab.api.metrics import ApiMetrics, api_metrics
from promlab.api.notifications import CONFIG_RELOAD_FAILED, Notifications
from promlab.api.notifications import routes as notification_routes
from promlab.api.security import DEFAULT_MAX_BODY_BYTES, Guard, WebConfig
from promlab.api.service import Service
from promlab.api.status import StatusAPI
from promlab.api.v1 import QueryAPI
from promlab.errors import PromlabError
from promlab.model import format_duration

__all__ = ["ROUTE_MODULES", "create_app"]

#: Modules with a ``routes(session, **options) -> list[BaseRoute]`` function, mounted by
#: :func:`create_app` when importable. Remote write/read and the push endpoint add themselves
#: here. A module that is missing from the build is skipped; one that fails to import is an
#: error.
ROUTE_MODULES: list[str] = [
    # -- hook list: route modules of other parts (append yours) --
    "promlab.api.remote",
    "promlab.api.push",
    "promlab.api.targets_api",
    "promlab.api.tsdb_status",
]


def _extra_routes(service: Service, options: Mapping[str, Any]) -> list[BaseRoute]:
    out: list[BaseRoute] = []
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        fn = getattr(module, "routes", None)
        if fn is None:
            continue
        accepted = inspect.signature(fn).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        kwargs = {k: v for k, v in options.items() if takes_any or k in accepted}
        out.extend(fn(service, **kwargs))
    return out


def _default_reload(service: Service) -> None:
    if service.scrape.running:
        service.scrape.reload()
    if service.rules.running:
        service.rules.reload()


def create_app(session: Service, *, web_config: WebConfig | None = None,
               enable_admin_api: bool = False, enable_lifecycle: bool = False,
               bearer_token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               cors_origin: str | None = None, flags: Mapping[str, str] | None = None,
               reload: Callable[[], None] | None = None, quit: Callable[[], None] | None = None,
               compression: str = "auto", **route_options: Any) -> Starlette:
    """The Starlette application serving ``session``.

    Parameters
    ----------
    session
        The :class:`~promlab.session.Session` to serve (anything with the attributes of
        :class:`~promlab.api.service.Service`).
    web_config
        Basic-auth users and extra headers (TLS is the server's: see :mod:`promlab.api.server`).
    enable_admin_api, enable_lifecycle
        Prometheus's ``--web.enable-admin-api`` and ``--web.enable-lifecycle`` (``/-/reload``,
        ``/-/quit``): off by default.
    bearer_token
        Require ``Authorization: Bearer <token>`` (besides, or instead of, basic auth).
    max_body_bytes
        Largest request body; a bigger one gets 413.
    cors_origin
        A regex of allowed CORS origins (``--web.cors.origin``); no CORS headers when None.
    flags
        Extra entries for ``/api/v1/status/flags``.
    reload, quit
        What ``/-/reload`` and ``/-/quit`` do (default reload: re-read the config and rule
        files of what runs; default quit: none, so ``/-/quit`` answers 503).
    compression
        When JSON answers, ``/federate`` and ``/metrics`` are gzipped for clients that ask:
        ``"auto"`` (peers not on loopback), ``"always"`` (as Prometheus) or ``"never"``
        (:mod:`promlab.api.compress`).
    route_options
        Passed to the ``routes()`` of :data:`ROUTE_MODULES` that accept them.
    """
    check_policy(compression)  # now: Starlette builds the middleware at the first request
    metrics = api_metrics(session.registry)
    metrics.watch(session)
    started = int(time.time() * 1000)
    all_flags = {
        "query.lookback-delta": format_duration(session.engine.lookback_ms),
        "query.max-samples": str(session.engine.max_samples),
        "query.timeout": format_duration(session.engine.timeout_ms or 0),
        "storage.tsdb.path": session.path or "",
        "web.enable-admin-api": str(enable_admin_api).lower(),
        "web.enable-lifecycle": str(enable_lifecycle).lower(),
        "web.external-url": session.external_url + "/",
        "web.cors.origin": cors_origin or "",
        "web.max-request-body-bytes": str(max_body_bytes),
        **(flags or {}),
    }
    status = StatusAPI(session, metrics, flags=all_flags, started_ms=started)
    routes: list[BaseRoute] = []
    query_api = QueryAPI(session, metrics)
    routes += query_api.routes()
    routes += status.routes()
    notices = Notifications()
    routes += notification_routes(notices, metrics)
    routes += federate_routes(session, metrics)
    routes += _management_routes(session, metrics, status, enable_lifecycle=enable_lifecycle,
                                 reload=reload or (lambda: _default_reload(session)), quit=quit,
                                 notices=notices)
    routes += admin_routes(session, metrics, enabled=enable_admin_api)
    # Route modules with background work (the push endpoint's re-append loop) register how to
    # stop it here; the server calls them on stop (``app.state.closers``).
    closers: list[Callable[[], None]] = [query_api.close]
    # ... and how to start it again when a stopped server starts again (``app.state.openers``).
    openers: list[Callable[[], None]] = []
    routes += _extra_routes(session, {"metrics": metrics, "closers": closers, "openers": openers,
                                      "enable_admin_api": enable_admin_api,
                                      "server_flags": all_flags, **route_options})
    drop_implicit_head(routes)
    routes.append(API_OPTIONS_ROUTE)  # after every API route (promlab.api.methods)
    # Go's path redirects come after the credentials check and are never compressed.
    middleware = [Middleware(Guard, web_config=web_config, bearer_token=bearer_token,
                             max_body_bytes=max_body_bytes),
                  Middleware(GoPaths, routes=routes),
                  Middleware(Compression, policy=compression)]
    if cors_origin:
        middleware.append(Middleware(Cors, origin=cors_origin))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)
    app.router.redirect_slashes = False  # GoPaths redirects as Prometheus does
    app.state.session = session
    app.state.closers = closers
    app.state.openers = openers
    # Called as the server starts to stop, before it waits for open connections: the live
    # notification streams end (within a poll) instead of holding the shutdown to its timeout.
    app.state.before_stop = [notices.close]
    app.state.notices = notices
    app.state.metrics = metrics
    app.state.query_api = query_api  # its cost memo: where queries run (promlab.api.costs)
    return app


def _management_routes(service: Service, metrics: ApiMetrics, status: StatusAPI, *,
                       enable_lifecycle: bool, reload: Callable[[], None],
                       quit: Callable[[], None] | None,
                       notices: Notifications) -> list[BaseRoute]:
    # Prometheus's HEAD handlers write a status only: no body, no content type.
    async def healthy(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=200)
        return PlainTextResponse("Prometheus Server is Healthy.\n")

    async def ready(request: Request) -> Response:
        if service.closed:
            return PlainTextResponse("Service Unavailable", status_code=503)
        if request.method == "HEAD":
            return Response(status_code=200)
        return PlainTextResponse("Prometheus Server is Ready.\n")

    async def do_reload(request: Request) -> Response:
        if not enable_lifecycle:
            return PlainTextResponse("Lifecycle API is not enabled.", status_code=403)
        try:
            await run_in_threadpool(reload)
        except (PromlabError, OSError) as exc:
            status.reload_ok = False
            notices.add(CONFIG_RELOAD_FAILED)
            return PlainTextResponse(f"failed to reload config: {exc}\n", status_code=500)
        status.reload_ok = True
        notices.delete(CONFIG_RELOAD_FAILED)
        status.last_config_ms = int(time.time() * 1000)
        return PlainTextResponse("")

    async def do_quit(request: Request) -> Response:
        if not enable_lifecycle:
            return PlainTextResponse("Lifecycle API is not enabled.", status_code=403)
        if quit is None:
            return PlainTextResponse("quit is not available in this server\n", status_code=503)
        quit()
        return PlainTextResponse("Requesting termination... Goodbye!")

    async def post_or_put_only(request: Request) -> Response:
        return PlainTextResponse("Only POST or PUT requests allowed", status_code=405)

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    async def root(request: Request) -> Response:
        # Prometheus redirects to its UI; promlab has none, and clients (prometheus-api-client's
        # connection check) only want a 200 here.
        return PlainTextResponse("promlab: the Prometheus HTTP API is under /api/v1/\n")

    get_only = [Route("/-/reload", post_or_put_only, methods=["GET"]),
                Route("/-/quit", post_or_put_only, methods=["GET"])]
    for route in get_only:
        assert route.methods is not None
        route.methods.discard("HEAD")  # Starlette adds one; Prometheus has none here
    return [
        *get_only,
        Route("/", root, methods=["GET", "HEAD"]),
        Route("/-/healthy", healthy, methods=["GET", "HEAD"]),
        Route("/-/ready", ready, methods=["GET", "HEAD"]),
        Route("/-/reload", do_reload, methods=["POST", "PUT"]),
        Route("/-/quit", do_quit, methods=["POST", "PUT"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]

