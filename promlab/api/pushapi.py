"""The Pushgateway's JSON API over the pushed groups (Pushgateway 1.5's ``api/v1``).

- ``GET /api/v1/metrics``: every group as an object holding its grouping ``labels``,
  ``last_push_successful`` (the last failed push is not later than the last successful one)
  and, under each family's name (``push_time_seconds`` and ``push_failure_time_seconds``
  included), ``{"time_stamp", "type", "help", "metrics"}``: the time the push that set the
  family arrived (RFC 3339), the type as the protobuf enum names it (``COUNTER``, ...), the
  HELP text (left out when empty) and each metric's ``labels`` (its grouping labels and
  ``instance`` included, as the Pushgateway stores them) with its ``value``, or a summary's
  ``quantiles``, ``sum`` and ``count`` or a histogram's ``buckets`` (the pushed bounds only:
  no ``+Inf`` that was not pushed), ``sum`` and ``count``. Numbers are strings as Go's ``%v``
  prints them (``1e+06``, ``+Inf``), counts as unsigned integers.
- ``GET /api/v1/status``: ``build_information``, ``flags`` (the Pushgateway's flag names, with
  what promlab knows of them) and ``start_time``.
- ``PUT /api/v1/admin/wipe``: deletes every group (202); only with ``--web.enable-admin-api``,
  else not served (404 for every method, as from the Pushgateway).

The Pushgateway's ``/-/healthy`` and ``/-/ready`` are served by the server already (it has no
``/api/v1/healthy`` or ``/api/v1/ready``). Its ``OPTIONS`` route and fixed CORS headers are
left out: promlab adds CORS headers only when ``--web.cors.origin`` asks for them.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from promlab.api.encode import success
from promlab.api.pushcheck import BOUND_LABEL, Pairs, Samples, go_float_text, go_type, identity
from promlab.api.status import rfc3339
from promlab.model import format_float_g

__all__ = ["PUSHGATEWAY_FLAGS", "PUSHGATEWAY_VERSION", "GroupView", "group_json",
           "pushgateway_flags", "routes", "status_json"]

#: The Pushgateway release whose API this module answers as (``build_information.version``).
PUSHGATEWAY_VERSION = "1.5.1"
#: The Pushgateway's flags (its ``/api/v1/status`` lists these) and what promlab shows for each
#: it has no value of. promlab keeps groups until deleted and writes them on every push.
PUSHGATEWAY_FLAGS: dict[str, str] = {
    "log.format": "", "log.level": "", "persistence.file": "", "persistence.interval": "0s",
    "push.disable-consistency-check": "false", "web.config.file": "",
    "web.enable-admin-api": "false", "web.enable-lifecycle": "false", "web.external-url": "",
    "web.listen-address": "", "web.local-assets": "", "web.route-prefix": "",
    "web.systemd-socket": "false", "web.telemetry-path": "/metrics",
}
_PUSH_TIME_HELP = {
    "push_time_seconds": "Last Unix time when changing this group in the Pushgateway succeeded.",
    "push_failure_time_seconds": "Last Unix time when changing this group in the Pushgateway "
                                 "failed.",
}
_NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate"}


class GroupView(Protocol):
    """What :func:`group_json` reads of a group (:class:`promlab.api.pushgroup.Group`)."""

    key: Pairs
    families: dict[str, Samples]
    types: dict[str, str]
    helps: dict[str, str]
    push_time: float
    failure_time: float
    stamps: dict[str, float]
    implied: dict[str, frozenset[Pairs]]


def _stamp(seconds: float) -> str:
    return rfc3339(seconds * 1000)


def _count(v: float) -> str:
    """A count as Go prints a ``uint64`` (the stored float is already an unsigned integer)."""
    return str(int(v))


def _metrics(fam: str, typ: str, samples: Samples, implied: frozenset[Pairs]) -> list[Any]:
    """A family's metrics in the Pushgateway's JSON shape, in the order they were pushed."""
    if typ not in BOUND_LABEL:
        return [{"labels": dict(identity(pairs, typ)), "value": format_float_g(v)}
                for pairs, v in samples]
    bound = BOUND_LABEL[typ]
    own = f"{fam}_bucket" if typ == "histogram" else fam
    out: dict[Pairs, dict[str, Any]] = {}
    for pairs, v in samples:
        ident = identity(pairs, typ)
        m = out.get(ident)
        if m is None:
            m = out[ident] = {"labels": dict(ident), "bounds": {}, "sum": "0", "count": "0"}
        labels = dict(pairs)
        name = labels.get("__name__", fam)
        if name == fam + "_sum":
            m["sum"] = format_float_g(v)
        elif name == fam + "_count":
            m["count"] = _count(v)
        elif name == own and bound in labels:
            if typ == "histogram":
                if labels[bound] != "+Inf" or ident not in implied:
                    m["bounds"][go_float_text(labels[bound])] = _count(v)
            else:
                m["bounds"][go_float_text(labels[bound])] = format_float_g(v)
    key = "buckets" if typ == "histogram" else "quantiles"
    return [dict(sorted({key: m["bounds"], "count": m["count"], "labels": m["labels"],
                         "sum": m["sum"]}.items())) for m in out.values()]


def group_json(g: GroupView) -> dict[str, Any]:
    """One group as the Pushgateway's ``/api/v1/metrics`` shows it (keys sorted, as Go's JSON
    encoder writes a map; a family named ``labels`` hides the group's labels there too)."""
    out: dict[str, Any] = {"labels": dict(g.key),
                           "last_push_successful": g.failure_time <= g.push_time}
    fallback = max(g.push_time, g.failure_time)  # a state file older than the stamps
    for name, samples in g.families.items():
        typ = go_type(g.types.get(name, ""))
        fam: dict[str, Any] = {"time_stamp": _stamp(g.stamps.get(name, fallback)),
                               "type": typ.upper()}
        if g.helps.get(name):
            fam["help"] = g.helps[name]
        fam["metrics"] = _metrics(name, typ, samples, g.implied.get(name, frozenset()))
        out[name] = fam
    meta_labels = dict(identity(g.key, "gauge"))
    for name, value in (("push_time_seconds", g.push_time),
                        ("push_failure_time_seconds", g.failure_time)):
        out[name] = {"time_stamp": _stamp(g.stamps.get(name, fallback)), "type": "GAUGE",
                     "help": _PUSH_TIME_HELP[name],
                     "metrics": [{"labels": meta_labels, "value": format_float_g(value)}]}
    return dict(sorted(out.items()))


def status_json(flags: Mapping[str, str], *, started_s: float) -> dict[str, Any]:
    """``/api/v1/status``'s data: promlab's build in the Pushgateway's keys, ``flags`` (see
    :data:`PUSHGATEWAY_FLAGS`) and the start time."""
    from promlab.version import __version__

    build = {"branch": "promlab", "buildDate": "", "buildUser": "promlab",
             "goVersion": f"python{platform.python_version()}",
             "revision": f"promlab-{__version__}", "version": PUSHGATEWAY_VERSION}
    return {"build_information": build, "flags": dict(sorted(flags.items())),
            "start_time": _stamp(started_s)}


def pushgateway_flags(server_flags: Mapping[str, str], *, state_file: str | None,
                      enable_admin_api: bool) -> dict[str, str]:
    """The Pushgateway's flags filled from the server's (``web.*``, ``log.*``) and the push
    store's: promlab's state file stands for ``persistence.file``."""
    out = {name: server_flags.get(name, default) for name, default in PUSHGATEWAY_FLAGS.items()}
    out["persistence.file"] = state_file or ""
    out["web.enable-admin-api"] = str(enable_admin_api).lower()
    if not out["web.route-prefix"] and out["web.external-url"]:
        from urllib.parse import urlsplit

        out["web.route-prefix"] = urlsplit(out["web.external-url"]).path.rstrip("/")
    return out


def routes(groups: Callable[[], Iterable[GroupView]], wipe: Callable[[], None], *,
           flags: Mapping[str, str], enable_admin_api: bool,
           wrap: Callable[[str, Any], Any] | None = None) -> list[BaseRoute]:
    """The JSON API's routes over ``groups()`` (a consistent copy of the groups), ``wipe()``
    (delete them all) and ``flags`` (:func:`pushgateway_flags`); ``wrap(name, handler)``
    instruments a handler (the API's request counters)."""
    from starlette.concurrency import run_in_threadpool

    started_s = time.time()
    status = status_json(flags, started_s=started_s)

    async def metrics(request: Request) -> Response:
        data = await run_in_threadpool(lambda: [group_json(g) for g in groups()])
        resp = success(data)
        resp.headers.update(_NO_CACHE)
        return resp

    async def status_page(request: Request) -> Response:
        data = status
        prefix = request.scope.get("root_path", "")
        if prefix and not flags.get("web.route-prefix"):  # served under Server(route_prefix=)
            data = {**status, "flags": {**status["flags"], "web.route-prefix": prefix}}
        resp = success(data)
        resp.headers.update(_NO_CACHE)
        return resp

    async def do_wipe(request: Request) -> Response:
        await run_in_threadpool(wipe)
        return Response(status_code=202)

    table = [("/api/v1/metrics", metrics, "GET"), ("/api/v1/status", status_page, "GET")]
    if enable_admin_api:  # else no route: 404 for every method, as the Pushgateway
        table.append(("/api/v1/admin/wipe", do_wipe, "PUT"))
    return [Route(path, wrap(path, fn) if wrap else fn, methods=[method])
            for path, fn, method in table]
