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
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from starlette.datastructures import MultiDict
from starlette.requests import Request

from promlab.api.mediatype import parse_media_type
from promlab.api.multipart import is_multipart, multipart_values
from promlab.errors import BadData
from promlab.model import Matcher, now_ms, parse_go_duration
from promlab.promql.parser import parse_series_selector
from promlab.promql.parser.literals import go_quote

__all__ = [
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "FormValues",
    "go_atoi",
    "go_parse_float",
    "go_parse_query",
    "parse_api_duration",
    "parse_api_duration_ns",
    "parse_api_time",
    "parse_api_time_parts",
    "parse_count_limit",
    "parse_limit",
    "parse_match",
    "parse_match_list",
    "read_params",
    "route_path",
    "time_order_key",
    "time_parts_ms",
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

_INT64 = 2**64
_MIN_INT64 = -(2**63)
_MAX_INT64 = 2**63 - 1
_NS = 1_000_000_000
_UNIX_TO_INTERNAL = 62_135_596_800  # Go's seconds from year 1 to 1970
# Go's strconv.ParseFloat: decimal (underscores between digits), hexadecimal with a p exponent,
# inf/infinity (signed) and nan in any case. No spaces.
_DECIMAL_RE = re.compile(r"[+-]?(\d(_?\d)*(\.(\d(_?\d)*)?)?|\.\d(_?\d)*)([eE][+-]?\d(_?\d)*)?\Z")
_HEX_RE = re.compile(r"[+-]?0[xX]([0-9a-fA-F_]*\.?[0-9a-fA-F_]*)[pP][+-]?\d+\Z")
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
            "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan}
_RFC3339_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                         r"(Z|[+-]\d{2}:\d{2})\Z")
# Prometheus's minTime/maxTime formatted as RFC 3339 (what clients echo back for "unbounded");
# Go's time.Parse takes no 9-digit year, so Prometheus compares these strings as they are.
_EDGE_TIMES = {"-292273086-05-16T16:47:06Z": (-9_223_309_901_257_974, 0),
               "292277025-08-18T07:12:54.999999999Z": (9_223_309_901_257_974, 999_999_999)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _quote(s: str) -> str:
    """Go's ``%q`` (``strconv.Quote``): a raw byte kept by ``surrogateescape`` as ``\\xff``."""
    return go_quote(s)


def _wrap64(n: int) -> int:
    """``n`` as Go's int64 arithmetic leaves it (two's complement wrap-around)."""
    return (n - _MIN_INT64) % _INT64 + _MIN_INT64


def _go_int64(x: float) -> int:
    """Go's ``int64(x)`` on amd64: truncation; NaN and out-of-range values give MinInt64."""
    if math.isnan(x) or not -(2.0**63) <= x < 2.0**63:
        return _MIN_INT64
    return int(x)


def _go_round(x: float) -> float:
    """Go's ``math.Round``: half away from zero."""
    if not math.isfinite(x):
        return x
    r = math.floor(abs(x) + 0.5)
    return math.copysign(r, x)


def go_parse_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)``, or None where Go returns an error (a finite
    literal out of range included).

    Examples
    --------
    >>> go_parse_float("1_000"), go_parse_float("0x1p4"), go_parse_float("-Inf")
    (1000.0, 16.0, -inf)
    >>> go_parse_float(" 1") is None, go_parse_float("1e400") is None
    (True, True)
    """
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return special
    if _DECIMAL_RE.match(text):
        v = float(text)
    elif _HEX_RE.match(text) and "__" not in text:
        sign = -1.0 if text.startswith("-") else 1.0
        try:
            v = sign * float.fromhex(text.lstrip("+-").replace("_", ""))
        except (ValueError, OverflowError):
            return None
    else:
        return None
    return v if math.isfinite(v) else None


def _float_time(v: float) -> tuple[int, int]:
    """Unix seconds as Prometheus's ``parseTime`` makes a time of them: (seconds, nanoseconds
    in [0, 1e9)), Go's float-to-int conversions and int64 wrap-around included (``Inf`` and
    ``NaN`` give a time, as in Prometheus)."""
    if math.isinf(v) or math.isnan(v):
        frac, whole = math.nan, v  # Go's math.Modf(±Inf) has a NaN fraction
    else:
        frac, whole = math.modf(v)
    sec = _go_int64(whole)
    nsec = _go_int64(_go_round(frac * 1000) / 1000 * _NS)
    if not 0 <= nsec < _NS:  # time.Unix normalises the nanoseconds into [0, 1e9)
        n = int(nsec / _NS)  # Go's integer division truncates
        sec = _wrap64(sec + n)
        nsec -= n * _NS
        if nsec < 0:
            nsec += _NS
            sec = _wrap64(sec - 1)
    return sec, nsec


def _rfc3339(text: str) -> tuple[int, int] | None:
    """Go's ``time.Parse(time.RFC3339Nano, text)`` as (unix seconds, nanoseconds), or None."""
    m = _RFC3339_RE.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    zone = m.group(8)
    hours, minutes = (0, 0) if zone == "Z" else (int(zone[1:3]), int(zone[4:6]))
    if hours > 23 or minutes > 59:
        return None
    offset = (hours * 60 + minutes) * (-1 if zone[0] == "-" else 1)
    try:
        dt = datetime(y, mo, d, h, mi, s, tzinfo=timezone(timedelta(minutes=offset)))
    except ValueError:
        return None
    return (dt - _EPOCH) // timedelta(seconds=1), int((m.group(7) or "0").ljust(9, "0"))


def _go_time(text: str) -> tuple[int, int] | None:
    v = go_parse_float(text)
    if v is not None:
        return _float_time(v)
    if text in _EDGE_TIMES:
        return _EDGE_TIMES[text]
    return _rfc3339(text)


def time_order_key(parts: tuple[int, int]) -> tuple[int, int]:
    """A parsed time as Go orders it (``Before``, ``Sub``): seconds since year 1 as an int64,
    which wraps for the times ``Inf`` and ``NaN`` give."""
    return _wrap64(parts[0] + _UNIX_TO_INTERNAL), parts[1]


def time_parts_ms(parts: tuple[int, int], *, nano: bool = False) -> int:
    """A parsed time in ms: as ``timestamp.FromTime`` (``nano=False``: series, labels, ...) or
    as the query engine's ``UnixNano() / 1e6`` (``nano=True``; both wrap as Go's int64)."""
    sec, nsec = parts
    if nano:
        return int(_wrap64(sec * _NS + nsec) / 1_000_000)
    return _wrap64(sec * 1000 + nsec // 1_000_000)


def parse_api_time_parts(text: str | None, name: str, *, required: bool = False,
                         default: tuple[int, int] | None = None) -> tuple[int, int]:
    """A time parameter as (unix seconds, nanoseconds), Prometheus's precision for comparing
    ``start`` and ``end``; see :func:`parse_api_time`."""
    if (text is None or text == "") and not required:
        if default is not None:
            return default
        now = now_ms()
        return now // 1000, now % 1000 * 1_000_000
    parts = _go_time(text or "")
    if parts is None:
        if required:
            raise BadData(f"invalid parameter {_quote(name)}: cannot parse {_quote(text or '')} "
                          "to a valid timestamp")
        raise BadData(f"invalid parameter {_quote(name)}: Invalid time value for {name!r}: "
                      f"cannot parse {_quote(text or '')} to a valid timestamp")
    return parts


def parse_api_time(text: str | None, name: str, *, default: int | None = None,
                   required: bool = False, nano: bool = False) -> int:
    """A time parameter in int ms: unix seconds or RFC 3339; ``default`` (now when None) if
    absent, unless ``required`` (``query_range``'s ``start``/``end``). ``nano``: the query
    endpoints' conversion to ms (:func:`time_parts_ms`).

    Parsed as Prometheus's ``parseTime`` does: Go's float syntax (``1_000``, ``0x1p4``,
    ``Inf``, ``NaN``), no surrounding spaces, at most nine fraction digits in RFC 3339.

    Raises
    ------
    BadData
        ``invalid parameter "time": Invalid time value for 'time': cannot parse "x" to a valid
        timestamp`` (a required one: ``invalid parameter "start": cannot parse "x" to a valid
        timestamp``).

    Examples
    --------
    >>> parse_api_time("1700000000.5", "time"), parse_api_time("2023-11-14T22:13:20Z", "time")
    (1700000000500, 1700000000000)
    """
    if (text is None or text == "") and not required and default is not None:
        return default
    return time_parts_ms(parse_api_time_parts(text, name, required=required), nano=nano)


def parse_api_duration_ns(text: str | None, name: str) -> int:
    """A duration parameter in int ns, as Prometheus's ``parseDuration``: float seconds (Go's
    syntax; ``NaN`` is Go's ``Duration(NaN)``, MinInt64) or a Prometheus duration string.

    Raises
    ------
    BadData
        ``invalid parameter "step": cannot parse "x" to a valid duration`` (``... It overflows
        int64`` for a number of seconds past int64 nanoseconds).

    Examples
    --------
    >>> parse_api_duration_ns("1e-9", "step"), parse_api_duration_ns("1m", "step")
    (1, 60000000000)
    """
    s = text or ""
    v = go_parse_float(s)
    if v is not None:
        ns = v * _NS
        if ns > float(_MAX_INT64) or ns < float(_MIN_INT64):
            raise BadData(f"invalid parameter {_quote(name)}: cannot parse {_quote(s)} to a "
                          "valid duration. It overflows int64")
        return _go_int64(ns)
    try:
        return parse_go_duration(s) * 1_000_000
    except BadData:
        raise BadData(f"invalid parameter {_quote(name)}: cannot parse {_quote(s)} to a valid "
                      "duration") from None


def parse_api_duration(text: str | None, name: str) -> int:
    """A duration parameter in int ms (:func:`parse_api_duration_ns`, truncated).

    Examples
    --------
    >>> parse_api_duration("0.25", "step"), parse_api_duration("1m30s", "step")
    (250, 90000)
    """
    return int(parse_api_duration_ns(text, name) / 1_000_000)


def parse_match(text: str, *, wrap: bool = True) -> tuple[Matcher, ...]:
    """One ``match[]`` value as matchers (see :func:`parse_match_list`)."""
    return parse_match_list([text], wrap=wrap)[0]


def parse_match_list(values: Sequence[str], *, wrap: bool = True) -> list[tuple[Matcher, ...]]:
    """Every ``match[]`` value parsed; then, as Prometheus, each checked to have a matcher
    that does not match the empty string (it would select every series).

    Raises
    ------
    BadData
        The first parse error, else the first selector of empty matchers; its message prefixed
        with ``invalid parameter "match[]": `` when ``wrap`` (``series`` wraps it, ``labels``
        and label values do not).
    """
    prefix = 'invalid parameter "match[]": ' if wrap else ""
    sets = []
    for text in values:
        try:
            sets.append(parse_series_selector(text)[1])
        except BadData as exc:
            raise BadData(f"{prefix}{exc}") from None
    for matchers in sets:
        if not any(not m.matches("") for m in matchers):
            raise BadData(f"{prefix}match[] must contain at least one non-empty matcher")
    return sets


_ATOI_RE = re.compile(r"[+-]?\d+\Z")


def go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi`` (an optional sign and decimal digits, within int64), or None."""
    if not _ATOI_RE.match(text):
        return None
    n = int(text)
    return n if _MIN_INT64 <= n <= _MAX_INT64 else None


def parse_count_limit(text: str | None, name: str) -> int:
    """A limit of the metadata endpoints (``metadata``'s ``limit`` and ``limit_per_metric``,
    ``targets/metadata``'s ``limit``): -1 (none) when absent or empty; anything Go's
    ``strconv.Atoi`` refuses is ``<name> must be a number`` (negative values are no limit)."""
    if not text:
        return -1
    n = go_atoi(text)
    if n is None:
        raise BadData(f"{name} must be a number")
    return n


def parse_limit(text: str | None) -> int:
    """A ``limit`` parameter: 0 (no limit) when absent.

    Raises
    ------
    BadData
        ``invalid parameter "limit": ...`` for a negative or non-integer value, with Go's
        ``strconv.Atoi`` message as Prometheus 3.x.
    """
    if text is None or text == "":
        return 0
    n = go_atoi(text)
    if n is None:
        reason = "invalid syntax" if not _ATOI_RE.match(text) else "value out of range"
        raise BadData(f'invalid parameter "limit": strconv.Atoi: parsing {_quote(text)}: '
                      f"{reason}")
    if n < 0:
        raise BadData('invalid parameter "limit": limit must be non-negative')
    return n


class FormValues(MultiDict):
    """Request parameters whose single-value lookups answer the first value, as Go's
    ``r.FormValue`` (Starlette's answer the last); ``form_error`` is the first error of Go's
    ``ParseForm`` ("" if none)."""

    form_error: str = ""

    def __getitem__(self, key: Any) -> Any:
        values = self.getlist(key)
        if not values:
            raise KeyError(key)
        return values[0]

    def get(self, key: Any, default: Any = None) -> Any:
        values = self.getlist(key)
        return values[0] if values else default


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _go_unescape(raw: bytes) -> tuple[str | None, str]:
    """Go's ``url.QueryUnescape`` of one key or value: (text, "") or (None, its error)."""
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                bad = raw[i:i + 3].decode("utf-8", "surrogateescape")
                return None, f"invalid URL escape {_quote(bad)}"
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
            continue
        out.append(0x20 if c == 0x2B else c)  # "+" is a space
        i += 1
    # Go keeps any bytes: those that are not UTF-8 stay as surrogate escapes (quoted as \\xff
    # in messages, written as U+FFFD in the JSON).
    return out.decode("utf-8", "surrogateescape"), ""


def go_parse_query(raw: bytes) -> tuple[list[tuple[str, str]], str]:
    """Go's ``url.ParseQuery``: the pairs it keeps, and its first error ("" if none); a pair
    with a semicolon or a bad escape is skipped.

    Examples
    --------
    >>> go_parse_query(b"query=up+1&a;b=2&time=%zz&x")
    ([('query', 'up 1'), ('x', '')], 'invalid semicolon separator in query')
    """
    items: list[tuple[str, str]] = []
    first = ""
    for part in raw.split(b"&"):
        if not part:
            continue
        if b";" in part:  # this error replaces any earlier one, as in Go
            first = "invalid semicolon separator in query"
            continue
        key, _, value = part.partition(b"=")
        k, err = _go_unescape(key)
        v, err2 = _go_unescape(value) if k is not None else (None, "")
        if k is None or v is None:
            first = first or err or err2
            continue
        items.append((k, v))
    return items, first


async def read_params(request: Request, *, multipart: bool = True) -> FormValues:
    """The URL's query parameters plus, for a form POST (or PUT, PATCH), the body's, as Go's
    ``r.Form`` (body first; a parameter given twice counts with its first value). Parsed as
    Go's ``url.ParseQuery``: a pair with a bad escape or a semicolon is left out, and the first
    such error is kept in ``form_error`` (``series`` refuses the request with it), after an
    error in the ``Content-Type`` of a POST, PUT or PATCH.

    A ``multipart/form-data`` body's values (any method) come after the URL's
    (:mod:`promlab.api.multipart`), unless ``multipart`` is False: Go reads that body at a
    handler's first ``r.FormValue`` only if the handler has not called ``r.ParseForm`` before,
    and ``series`` and ``delete_series`` do.
    """
    query, url_error = go_parse_query(request.scope.get("query_string", b""))
    items = query
    body_error = ""
    full_type = request.headers.get("content-type", "")
    mime_error = ""
    if request.method in ("POST", "PUT", "PATCH"):  # Go's parsePostForm
        # No type reads as application/octet-stream (no body values, no error); a bad
        # parameter is an error, the body still read (promlab.api.mediatype).
        media, _, mime_error = parse_media_type(full_type or "application/octet-stream")
        if media == "application/x-www-form-urlencoded":
            body, body_error = go_parse_query(await request.body())
            items = body + query
    if multipart and is_multipart(full_type):
        items = items + multipart_values(full_type, await request.body())
    params = FormValues(items)
    params.form_error = mime_error or body_error or url_error
    return params
