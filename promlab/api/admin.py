"""The TSDB admin API (behind ``--web.enable-admin-api``): ``snapshot``, ``delete_series``,
``clean_tombstones``, as Prometheus answers them.

- ``POST|PUT /api/v1/admin/tsdb/snapshot[?skip_head=true]``: hard links of every block (the
  head flushed to blocks first unless ``skip_head``) under ``<data>/snapshots/<name>``, where
  ``name`` is ``YYYYMMDDTHHMMSSZ-<16 hex>``; answers ``{"name": name}``. A store in object
  storage cannot be snapshotted (an ``internal`` error says so).
- ``POST|PUT /api/v1/admin/tsdb/delete_series?match[]=...&start=...&end=...``: the matching
  samples, float and native histogram, are gone at once (blocks and histogram files rewritten,
  no tombstones); 204.
- ``POST|PUT /api/v1/admin/tsdb/clean_tombstones``: nothing to clean; 204.

With the admin API disabled every route answers ``unavailable`` (503).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from promlab.api.encode import success
from promlab.api.errors import error_response
from promlab.api.metrics import ApiMetrics
from promlab.api.params import (
    MAX_TIME_MS,
    MIN_TIME_MS,
    parse_api_time,
    read_params,
)
from promlab.api.service import Service
from promlab.api.v1 import check_open, handler
from promlab.errors import BadData, StorageError
from promlab.model import Matcher
from promlab.promql.parser import parse_series_selector
from promlab.promql.parser.literals import go_quote

__all__ = ["parse_go_bool", "routes", "snapshot_name"]

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_go_bool(text: str, name: str) -> bool:
    """A boolean parameter as Go's ``strconv.ParseBool`` reads it (absent or empty: false).

    Examples
    --------
    >>> parse_go_bool("T", "skip_head"), parse_go_bool("", "skip_head")
    (True, False)
    """
    if text == "" or text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise BadData(f'invalid parameter "{name}": unable to parse boolean: strconv.ParseBool: '
                  f"parsing {go_quote(text)}: invalid syntax")


def snapshot_name(now_s: float | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<16 hex>`` (UTC), as Prometheus names snapshots."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now_s is None else now_s))
    return f"{stamp}-{secrets.token_hex(8)}"


def _selector(text: str) -> tuple[Matcher, ...]:
    try:
        return parse_series_selector(text)[1]
    except BadData as exc:
        raise BadData(f'invalid parameter "match[]": {exc}') from None


def _store_method(service: Service, name: str) -> Any:
    fn = getattr(service.store, name, None)
    if fn is None or not service.path:
        raise StorageError(f"this store ({type(service.store).__name__}) does not support it")
    return fn


def routes(service: Service, metrics: ApiMetrics, *, enabled: bool) -> list[BaseRoute]:
    """The three admin routes (all answering ``unavailable`` unless ``enabled``)."""

    async def snapshot(request: Request) -> Response:
        p = await read_params(request)
        skip_head = parse_go_bool(p.get("skip_head", ""), "skip_head")
        check_open(service)
        name = snapshot_name()
        try:
            make = _store_method(service, "snapshot")
            dest = os.path.join(str(service.path), "snapshots", name)
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: make(dest, with_head=not skip_head))
        except (StorageError, OSError) as exc:
            return error_response("internal", f"create snapshot: {exc}")
        return success({"name": name})

    async def delete_series(request: Request) -> Response:
        p = await read_params(request, multipart=False)  # r.ParseForm first
        if p.form_error:
            raise BadData(f"error parsing form values: {p.form_error}")
        values = p.getlist("match[]")
        if not values:
            raise BadData("no match[] parameter provided")
        start = parse_api_time(p.get("start"), "start", default=MIN_TIME_MS)
        end = parse_api_time(p.get("end"), "end", default=MAX_TIME_MS)
        # As Prometheus's delete: selectors whose matchers all match "" are accepted (and
        # select every series), unlike the read endpoints' match[]. Prometheus deletes
        # selector by selector: those before a bad one are deleted, then the error answered.
        sets: list[tuple[Matcher, ...]] = []
        bad: BadData | None = None
        for v in values:
            try:
                sets.append(_selector(v))
            except BadData as exc:
                bad = exc
                break
        check_open(service)
        if sets:
            try:
                delete = _store_method(service, "delete_series")
                await asyncio.get_running_loop().run_in_executor(None, delete, sets, start, end)
            except (StorageError, OSError) as exc:
                return error_response("internal", f"delete series: {exc}")
        if bad is not None:
            raise bad
        return Response(status_code=204)

    async def clean_tombstones(request: Request) -> Response:
        check_open(service)
        # delete_series rewrites blocks at once: there are never tombstones to clean.
        return Response(status_code=204)

    async def disabled(request: Request) -> Response:
        return error_response("unavailable", "admin APIs disabled")

    table = [("snapshot", snapshot), ("delete_series", delete_series),
             ("clean_tombstones", clean_tombstones)]
    return [Route(f"/api/v1/admin/tsdb/{name}",
                  handler(f"/api/v1/admin/tsdb/{name}", metrics, fn if enabled else disabled),
                  methods=["POST", "PUT"])
            for name, fn in table]
