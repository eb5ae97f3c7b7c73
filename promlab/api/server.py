"""The HTTP server: uvicorn running :func:`~promlab.api.app.create_app` in a background thread.

:meth:`Server.start` returns once the socket listens (or raises why it could not);
:meth:`Server.stop` stops accepting, lets requests in flight finish and joins the thread. The
address is ``127.0.0.1:9090`` unless told otherwise (port 0 picks a free port: read
:attr:`Server.port`). With a web config whose ``tls_server_config`` names a certificate the
server speaks HTTPS.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

from promlab.api.app import create_app
from promlab.api.security import WebConfig, load_web_config
from promlab.api.service import Service
from promlab.errors import BadData, ConfigError

__all__ = ["DEFAULT_LISTEN", "Server", "normalize_prefix", "parse_listen"]

DEFAULT_LISTEN = "127.0.0.1:9090"
log = logging.getLogger("promlab.api")


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9090``, ``:9090`` = all interfaces as Go) into host and port.

    Examples
    --------
    >>> parse_listen("127.0.0.1:9090"), parse_listen("[::1]:0"), parse_listen(":80")
    (('127.0.0.1', 9090), ('::1', 0), ('0.0.0.0', 80))
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise BadData(f"invalid listen address {listen!r}: want host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def normalize_prefix(prefix: str | None) -> str:
    """A route prefix as ``/a/b`` (``""`` for the root).

    Examples
    --------
    >>> [normalize_prefix(p) for p in (None, "/", "prom", "/a/b/", "//x//")]
    ['', '', '/prom', '/a/b', '/x']
    """
    parts = [p for p in (prefix or "").split("/") if p]
    return "/" + "/".join(parts) if parts else ""


def _mounted(app: Any, prefix: str) -> Any:
    """``app`` under ``prefix``; ``/`` redirects to the prefix, as Prometheus's root does."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Mount, Route

    async def to_prefix(request: Any) -> RedirectResponse:
        return RedirectResponse(prefix + "/", status_code=302)

    return Starlette(routes=[Route("/", to_prefix, methods=["GET", "HEAD"]),
                             Mount(prefix, app=app)])


class Server:
    """A background HTTP server for one session.

    Parameters
    ----------
    session
        What to serve (a :class:`~promlab.session.Session`).
    listen
        ``host:port``; binds 127.0.0.1 unless another host is named.
    web_config
        A web configuration file path or a parsed :class:`~promlab.api.security.WebConfig`.
    route_prefix
        Serve everything under this path (Prometheus's ``--web.route-prefix``, which defaults
        to the path of ``--web.external-url``): ``"/prom"`` serves ``/prom/api/v1/query``, and
        ``/`` redirects there. None or ``"/"``: at the root.
    options
        Passed to :func:`~promlab.api.app.create_app` (``enable_lifecycle``,
        ``enable_admin_api``, ``bearer_token``, ``max_body_bytes``, ...).

    Examples
    --------
    >>> from promlab import MemoryStorage, Session
    >>> import httpx
    >>> with Session(MemoryStorage()) as s, Server(s, listen="127.0.0.1:0") as srv:
    ...     httpx.get(srv.url + "/-/healthy").text
    'Prometheus Server is Healthy.\\n'
    """

    def __init__(self, session: Service, *, listen: str = DEFAULT_LISTEN,
                 web_config: str | os.PathLike[str] | WebConfig | None = None,
                 route_prefix: str | None = None, **options: Any) -> None:
        self.session = session
        self.host, self._port = parse_listen(listen)
        if web_config is None or isinstance(web_config, WebConfig):
            self.web_config = web_config or WebConfig()
        else:
            self.web_config = load_web_config(web_config)
        #: The application (its ``state``: closers, metrics); :attr:`asgi` is what is served.
        self.app = create_app(session, web_config=self.web_config, **options)
        self.route_prefix = normalize_prefix(route_prefix)
        self.asgi: Any = self.app if not self.route_prefix else _mounted(self.app, self.route_prefix)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stopped = False  # stop() ran its closers

    @property
    def port(self) -> int:
        """The port listened on (the real one once started, also after ``:0``)."""
        return self._port

    @property
    def scheme(self) -> str:
        return "https" if self.web_config.tls is not None else "http"

    @property
    def url(self) -> str:
        """``http(s)://host:port`` of the running server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host == "0.0.0.0":
            host = "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}{self.route_prefix}"

    @property
    def running(self) -> bool:
        t = self._thread
        return t is not None and t.is_alive()

    def start(self, timeout: float = 30.0) -> Server:
        """Start serving; returns when the socket listens.

        Raises
        ------
        ConfigError
            Already running, or the server could not start (port in use, bad certificate).
        """
        import uvicorn

        if self.running:
            raise ConfigError("the server is already running")
        if self._stopped:  # started again: what stop() closed opens again
            self._stopped = False
            for open_again in getattr(self.app.state, "openers", []):
                open_again()
        tls = self.web_config.tls.uvicorn_options() if self.web_config.tls else {}
        config = uvicorn.Config(self.asgi, host=self.host, port=self._port, log_level="warning",
                                access_log=False, lifespan="off", timeout_graceful_shutdown=10,
                                server_header=False,  # Prometheus sends no Server header
                                **tls)
        self._server = server = uvicorn.Server(config)
        self._error = None

        # uvloop and httptools when installed (uvicorn's "auto"): the faster event loop and
        # HTTP parser carry remote write and query responses with less CPU per request.
        get_factory = getattr(config, "get_loop_factory", None)
        loop_factory = get_factory() if get_factory is not None else None

        def run() -> None:
            try:
                with asyncio.Runner(loop_factory=loop_factory) as runner:
                    runner.run(server.serve())
            except BaseException as exc:  # reported to start() / logged
                self._error = exc
                log.error("HTTP server stopped: %s", exc)

        self._thread = threading.Thread(target=run, name=f"promlab-http-{self._port}",
                                        daemon=True)
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not server.started and self._thread.is_alive() and waited < timeout:
            deadline.wait(0.02)
            waited += 0.02
        if not server.started:
            self.stop()
            why = self._error or "it did not start in time (is the port in use?)"
            raise ConfigError(f"cannot serve on {self.host}:{self._port}: {why}")
        sockets = [s for srv in server.servers for s in srv.sockets]
        if sockets:
            self._port = int(sockets[0].getsockname()[1])
        log.info("serving the Prometheus API on %s", self.url)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Stop accepting, finish requests in flight, join the thread (idempotent)."""
        server, thread = self._server, self._thread
        if server is not None:
            for end in getattr(self.app.state, "before_stop", []):
                end()
            server.should_exit = True
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None
        if self._stopped:
            return
        self._stopped = True
        for close in getattr(self.app.state, "closers", []):
            close()

    def __enter__(self) -> Server:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Server {self.url} {state}>"
