"""Prometheus-compatible HTTP API over a :class:`~promlab.session.Session`.

:class:`Server` runs it in the background (``Session.serve()`` and ``promlab serve`` use it);
:func:`create_app` gives the ASGI application for any other ASGI server.
"""

from __future__ import annotations

from promlab.api.app import ROUTE_MODULES, create_app
from promlab.api.security import WebConfig, load_web_config
from promlab.api.server import DEFAULT_LISTEN, Server

__all__ = ["DEFAULT_LISTEN", "ROUTE_MODULES", "Server", "WebConfig", "create_app",
           "load_web_config"]
