"""Request parameters as Prometheus's HTTP API reads them: times, durations, matchers, limits.

Every parser raises :class:`~promlab.errors.BadData` with Prometheus's message, already wrapped
as ``invalid parameter "<name>": ...`` where Prometheus wraps it, so the handler only encodes it.

- Times (``time``, ``start``, ``end``): unix seconds (floats allowed) or RFC 3339; an absent
  ``start``/``end`` means all of time, an absent ``time`` means now.
- Durations (``step``, ``timeout``): seconds as a float, or a Prometheus duration string
  (``5m``, ``1h30m``; no ``ns``/``us``, unlike Go's).
- ``match[]``: series selectors; a selector whose every matcher matches the empty string is
  refused, as Prometheus does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import MultiDict
from starlette.requests import Request

from promlab.errors import BadData
from promlab.model import Matcher, now_ms, parse_go_duration
from promlab.promql.parser import parse_series_selector

__all__ = [
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "parse_api_duration",
    "parse_api_time",
    "parse_limit",
    "parse_match",
    "parse_match_list",
    "read_params",
    "route_path",
]

def route_path(scope: Mapping[str, Any]) -> str:
    """The request's path below the route prefix it is served under (``Server.route_prefix``:
    Starlette's ``Mount`` keeps the whole path in ``path`` and the prefix in ``root_path``).

    Examples
    --------
    >>> route_path({"path": "/prom/api/v1/query", "root_path": "/prom"})
    '/api/v1/query'
    >>> route_path({"path": "/api/v1/query"})
    '/api/v1/query'
    """
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


#: Bounds for "all of time" when ``start``/``end`` are absent (Prometheus's minTime/maxTime).
MIN_TIME_MS = -(2**62)
MAX_TIME_MS = 2**62

_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_FRACTION_RE = re.compile(r"(\.\d{6})\d+")
# Prometheus's minTime/maxTime formatted as RFC 3339 (what clients echo back for "unbounded").
_EDGE_TIMES = {"-292275055-05-16T16:47:04.192Z": MIN_TIME_MS,
               "292277025-08-18T07:12:54.999Z": MAX_TIME_MS}


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_api_time(text: str | None, name: str, *, default: int | None = None) -> int:
    """A time parameter in int ms: unix seconds or RFC 3339; ``default`` (now when None) if absent.

    Raises
    ------
    BadData
        ``invalid parameter "time": Invalid time value for 'time': cannot parse "x" to a valid
        timestamp``.

    Examples
    --------
    >>> parse_api_time("1700000000.5", "time"), parse_api_time("2023-11-14T22:13:20Z", "time")
    (1700000000500, 1700000000000)
    """
    if text is None or text == "":
        return now_ms() if default is None else default
    ms = _parse_time(text)
    if ms is None:
        raise BadData(f"invalid parameter {_quote(name)}: Invalid time value for {name!r}: "
                      f"cannot parse {_quote(text)} to a valid timestamp")
    return ms


def _parse_time(text: str) -> int | None:
    s = text.strip()
    if _NUMBER_RE.match(s):
        v = float(s)
        if not math.isfinite(v) or abs(v) * 1000 > 2**63 - 1:
            return None
        # Seconds and nanoseconds as Prometheus splits them: round to the millisecond.
        return round(v * 1000)
    if s in _EDGE_TIMES:
        return _EDGE_TIMES[s]
    try:
        dt = datetime.fromisoformat(_FRACTION_RE.sub(r"\1", s.replace("Z", "+00:00")))
    except ValueError:
        return None
    if dt.tzinfo is None or "T" not in s:
        return None  # RFC 3339 needs the date, the time and an offset
    return round(dt.timestamp() * 1000)


def parse_api_duration(text: str | None, name: str) -> int:
    """A duration parameter in int ms: float seconds or a Prometheus duration string.

    Raises
    ------
    BadData
        ``invalid parameter "step": cannot parse "x" to a valid duration``.

    Examples
    --------
    >>> parse_api_duration("0.25", "step"), parse_api_duration("1m30s", "step")
    (250, 90000)
    """
    s = (text or "").strip()
    if _NUMBER_RE.match(s):
        v = float(s)
        if not math.isfinite(v) or abs(v) * 1000 > 2**63 - 1:
            raise BadData(f"invalid parameter {_quote(name)}: cannot parse {_quote(s)} to a "
                          "valid duration. It overflows int64")
        return round(v * 1000)
    try:
        return parse_go_duration(s)
    except BadData:
        raise BadData(f"invalid parameter {_quote(name)}: cannot parse {_quote(s)} to a valid "
                      "duration") from None


def parse_match(text: str) -> tuple[Matcher, ...]:
    """One ``match[]`` value as matchers.

    Raises
    ------
    BadData
        A parse error, or every matcher matches the empty string (it would select every series).
    """
    try:
        _, matchers = parse_series_selector(text)
    except BadData as exc:
        raise BadData(f'invalid parameter "match[]": {exc}') from None
    if not any(not m.matches("") for m in matchers):
        raise BadData('invalid parameter "match[]": match[] must contain at least one '
                      "non-empty matcher")
    return matchers


def parse_match_list(values: Sequence[str]) -> list[tuple[Matcher, ...]]:
    """Every ``match[]`` value parsed (see :func:`parse_match`)."""
    return [parse_match(v) for v in values]


def parse_limit(text: str | None) -> int:
    """A ``limit`` parameter: 0 (no limit) when absent.

    Raises
    ------
    BadData
        ``invalid parameter "limit": ...`` for a negative or non-integer value.
    """
    if text is None or text == "":
        return 0
    try:
        n = int(text)
    except ValueError:
        raise BadData(f'invalid parameter "limit": cannot parse {_quote(text)} to a valid '
                      "limit") from None
    if n < 0:
        raise BadData('invalid parameter "limit": limit must be non-negative')
    return n


async def read_params(request: Request) -> MultiDict:
    """The URL's query parameters plus, for a form POST, the body's (Go's ``r.Form``).

    Raises
    ------
    BadData
        A form body that is not UTF-8.
    """
    items = list(request.query_params.multi_items())
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in ("POST", "PUT") and ctype == "application/x-www-form-urlencoded":
        body = await request.body()
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise BadData("error parsing form values: body is not UTF-8") from None
        # Body values first, as Go's ParseForm puts them before the URL's.
        items = parse_qsl(text, keep_blank_values=True) + items
    return MultiDict(items)
