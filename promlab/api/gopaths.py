"""Path redirects as Prometheus's Go server answers them, before routing.

Prometheus 2.42 serves its API through Go's ``http.ServeMux`` and, below it, two
``julienschmidt/httprouter`` routers (the API under ``/api/v1/``, with that prefix stripped, and
the rest). Both answer some paths that match no route with a redirect instead of a 404, and
clients (a proxy, ``curl -L``, a Grafana data source with a stray slash) see those:

1. ServeMux cleans the decoded path (``//``, ``.`` and ``..`` segments; a trailing slash is
   kept) and sends ``301`` to the cleaned path when it differs: ``//api/v1/query`` →
   ``/api/v1/query``, ``/api/v1/../api/v1/query`` → ``/api/api/v1/query``.
2. ServeMux sends ``/api/v1`` (the API's subtree without its slash) ``301`` to ``/api/v1/``.
3. httprouter, when the request's method has routes but none matches: the same path with the
   trailing slash toggled, or matched case-insensitively (``/-/READY``), is sent there, ``301``
   for ``GET`` and ``307`` for other methods. Under ``/api/v1/`` the prefix was stripped before
   routing, so the ``Location`` lacks it (``/api/v1/query/`` → ``/query``): Prometheus's
   answer, kept as it is. httprouter also sends a path ending in a slash that a parameter
   follows in some route to the path without it (``/api/v1/label/`` → ``/label``).

The bodies are Go's ``http.Redirect``'s: an HTML link for ``GET``, nothing otherwise, with an
HTML content type for ``GET`` and ``HEAD``. Which routes exist, for which methods, is read from
the Starlette application's own routes, so promlab's extra endpoints redirect the way Prometheus
would if it had them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from promlab.api.params import route_path

__all__ = ["API_PREFIX", "GoPaths", "clean_path", "go_location"]

#: The ServeMux subtree of the API router (routes below it are matched with the prefix off).
API_PREFIX = "/api/v1"
_STATUS_TEXT = {301: "Moved Permanently", 307: "Temporary Redirect"}
# Go's url.PathEscape-like escaping of a path (reserved characters a path may hold stay).
_PATH_SAFE = "/$&+,:;=@"
_PARAM = re.compile(r"\{[^}]*\}")
# Go's html.EscapeString (numeric references for quotes, unlike Python's html.escape).
_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;"})


def clean_path(path: str) -> str:
    """The path as Go's ServeMux cleans it: ``path.Clean``, a trailing slash kept.

    Examples
    --------
    >>> [clean_path(p) for p in ("//api/v1/query", "/api/v1/../x/", "/a/./b", "", "/..")]
    ['/api/v1/query', '/api/x/', '/a/b', '/', '/']
    """
    if not path.startswith("/"):
        path = "/" + path
    out = posixpath.normpath(path)
    if out.startswith("//"):  # posixpath keeps a leading double slash (POSIX); Go does not
        out = "/" + out.lstrip("/")
    if path.endswith("/") and out != "/":
        out += "/"
    return out


def go_location(path: str, query: str) -> str:
    """``Location`` of a Go redirect to the decoded ``path`` with the raw ``query``."""
    return quote(path, safe=_PATH_SAFE) + ("?" + query if query else "")


@dataclass(frozen=True)
class _Tree:
    """The routes of one Go router: those under ``prefix`` (stripped) or all the others."""

    prefix: str
    routes: tuple[Route, ...]

    def has_method(self, method: str) -> bool:
        return any(method in (r.methods or ()) for r in self.routes)

    def matches(self, scope: Scope, method: str, path: str) -> bool:
        sub = {**scope, "method": method, "path": scope.get("root_path", "") + self.prefix + path}
        return any(r.matches(sub)[0] is Match.FULL for r in self.routes)

    def param_below(self, method: str, path: str) -> bool:
        """Whether a route of ``method`` has a parameter right after ``path`` (which ends in a
        slash): httprouter then recommends ``path`` without its slash, route or not."""
        return any(method in (r.methods or ()) and
                   r.path_format.startswith(self.prefix + path + "{") for r in self.routes)

    def case_insensitive(self, method: str, path: str) -> str | None:
        """The path of a route of ``method`` that ``path`` matches ignoring case (the route's
        spelling, the request's parameters), or None."""
        for route in self.routes:
            if method not in (route.methods or ()):
                continue
            m = re.compile(route.path_regex.pattern, re.IGNORECASE).match(self.prefix + path)
            if m is None:
                continue
            pieces = _PARAM.split(route.path_format)  # static parts around the parameters
            fixed = "".join(p + v for p, v in zip(pieces, [*m.groups(), ""], strict=True))
            return fixed[len(self.prefix):]
        return None


class GoPaths:
    """ASGI middleware: the redirects of the module docstring, in front of ``app``.

    Parameters
    ----------
    app
        The application to wrap.
    routes
        Its routes (what exists, for which methods).
    """

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        plain = [r for r in routes if isinstance(r, Route)]
        self.api = _Tree(API_PREFIX, tuple(r for r in plain
                                          if r.path.startswith(API_PREFIX + "/")))
        self.main = _Tree("", tuple(r for r in plain if not r.path.startswith(API_PREFIX + "/")))
        # The routes do not change: each (method, root, path) is decided once (most requests
        # ask for a few paths; the memo is emptied when it holds MEMO_SIZE of them).
        self._memo: dict[tuple[str, str, str], tuple[int, str] | None] = {}

    #: Most (method, root, path) decisions kept.
    MEMO_SIZE = 4096

    def location(self, scope: Scope) -> tuple[int, str] | None:
        """``(status, Location)`` of the redirect Prometheus answers ``scope`` with, or None."""
        method: str = scope["method"]
        if method == "CONNECT":
            return None
        root = scope.get("root_path", "")
        path = route_path(scope)
        key = (method, root, path)
        try:
            moved = self._memo[key]
        except KeyError:
            moved = self._decide(scope, method, root, path)
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = moved
        if moved is None:
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return moved[0], moved[1] + ("?" + query if query else "")

    def _decide(self, scope: Scope, method: str, root: str, path: str
                ) -> tuple[int, str] | None:
        """:meth:`location` without the query string."""
        query = ""
        clean = clean_path(path)
        if clean == API_PREFIX:
            return 301, go_location(root + clean + "/", query)
        if clean != path:
            return 301, go_location(root + clean, query)
        tree, sub = self.main, path
        if path.startswith(API_PREFIX + "/"):
            tree, sub = self.api, path[len(API_PREFIX):]
        if sub == "/" or not tree.has_method(method) or tree.matches(scope, method, sub):
            return None
        code = 301 if method == "GET" else 307
        base = "" if tree is self.api else root  # the API router never saw the prefixes
        toggled = sub[:-1] if sub.endswith("/") else sub + "/"
        if tree.matches(scope, method, toggled) or \
                (sub.endswith("/") and tree.param_below(method, sub)):
            return code, go_location(base + toggled, query)
        for candidate in (sub, toggled):
            fixed = tree.case_insensitive(method, candidate)
            if fixed is not None:
                return code, go_location(base + fixed, query)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        moved = self.location(scope) if scope["type"] == "http" else None
        if moved is None:
            await self.app(scope, receive, send)
            return
        code, location = moved
        method = scope["method"]
        headers = [(b"location", location.encode("latin-1"))]
        body = b""
        if method in ("GET", "HEAD"):
            headers.append((b"content-type", b"text/html; charset=utf-8"))
        if method == "GET":
            body = (f'<a href="{location.translate(_HTML)}">{_STATUS_TEXT[code]}</a>.\n\n').encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": body})
