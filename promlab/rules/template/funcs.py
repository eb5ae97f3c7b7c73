"""The function table of templates: Go's builtins (:mod:`.builtins`) and Prometheus's functions
(``humanize``, ``query``, ``reReplaceAll``, ...), each with the Go parameter types the executor
checks arguments against."""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from promlab.errors import RegexError
from promlab.model.re2 import Regex, compile_regex, replace_all
from promlab.model.time import parse_go_duration
from promlab.rules.template.builtins import (
    CallError,
    call,
    eq,
    eval_args,
    html_escape,
    index,
    js_escape,
    le,
    length,
    lt,
    ne,
    query_escape,
    slice_,
)
from promlab.rules.template.gofmt import format_float, sprint, sprintf, sprintln
from promlab.rules.template.values import (
    HTML,
    AnyMap,
    GoDuration,
    GoTime,
    QueryResult,
    Sample,
    go_type,
    truth,
)

__all__ = ["FUNCS", "TYPE_NAMES", "CallError", "Func", "FuncContext"]

# Parameter types: "any" (interface{}), "value" (reflect.Value), "string", "float64", "sample",
# "qr" (queryResult). Names as Go prints them in "wrong type for value" errors.
TYPE_NAMES = {"any": "interface {}", "value": "reflect.Value", "string": "string",
              "float64": "float64", "sample": "*template.sample", "qr": "template.queryResult"}


class FuncContext(Protocol):
    """What Prometheus's functions need from the running template."""

    query_func: Callable[[str, int], Any] | None
    timestamp_ms: int
    external_url: str


@dataclass(frozen=True, slots=True)
class Func:
    """A callable template function: its implementation (called with the context first), fixed
    parameter types and the type of its variadic tail (``None``: not variadic)."""

    impl: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None


_NIL_DEREF = "runtime error: invalid memory address or nil pointer dereference"
_FLOAT_RE = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.I)
_HEX_FLOAT_RE = re.compile(r"[+-]?0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)p[+-]?\d+", re.I)


def parse_float_go(s: str) -> float:
    """``strconv.ParseFloat(s, 64)``; CallError with Go's message when ``s`` is not a number."""
    if _FLOAT_RE.fullmatch(s):
        v = float(s)
        if math.isinf(v) and "n" not in s.lower():
            raise CallError(f'strconv.ParseFloat: parsing "{s}": value out of range')
        return v
    if _HEX_FLOAT_RE.fullmatch(s):
        sign = -1.0 if s.startswith("-") else 1.0
        return sign * float.fromhex(s.lstrip("+-"))
    from promlab.rules.template.gofmt import quote

    raise CallError(f"strconv.ParseFloat: parsing {quote(s)}: invalid syntax")


def to_float(v: Any) -> float:
    """Prometheus's ``convertToFloat``: numbers and numeric strings."""
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        return parse_float_go(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    raise CallError(f"can't convert {go_type(v)} to float")


def _g4(v: float) -> str:
    return format_float(v, "g", 4)


def _int64(v: float) -> int:
    """Go's ``int64(v)`` on amd64: truncation, and the minimum int64 when out of range."""
    if math.isnan(v) or not -(2.0**63) <= v < 2.0**63:
        return -(2**63)
    return int(v)


def humanize(_: FuncContext, i: Any) -> str:
    v = to_float(i)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        prefix = ""
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix = p
            v /= 1000
        return _g4(v) + prefix
    return _small(v, "")


def _small(v: float, unit: str) -> str:
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v) + prefix + unit


def humanize1024(_: FuncContext, i: Any) -> str:
    v = to_float(i)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(v) < 1024:
            break
        prefix = p
        v /= 1024
    return _g4(v) + prefix


def _quo(a: int, b: int) -> int:
    """Go's integer ``/``: truncated toward zero."""
    q = abs(a) // b
    return q if a >= 0 else -q


def _rem(a: int, b: int) -> int:
    """Go's integer ``%``: the sign of the dividend."""
    return a - b * _quo(a, b)


def humanize_duration(_: FuncContext, i: Any) -> str:
    v = to_float(i)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        v = abs(v)
        d = _int64(v)  # past 2**63 this is Go's amd64 conversion: math.MinInt64
        secs, mins, hours, days = _rem(d, 60), _rem(_quo(d, 60), 60), _rem(_quo(d, 3600), 24), _quo(d, 86400)
        if days:
            return f"{sign}{days}d {hours}h {mins}m {secs}s"
        if hours:
            return f"{sign}{hours}h {mins}m {secs}s"
        if mins:
            return f"{sign}{mins}m {secs}s"
        return f"{sign}{_g4(v)}s"
    return _small(v, "s")


def humanize_percentage(_: FuncContext, i: Any) -> str:
    return _g4(to_float(i) * 100) + "%"


def _float_to_time(v: float) -> GoTime:
    ns = v * 1e9
    if ns > 2.0**63 - 1 or ns < -(2.0**63):
        raise CallError(f"{format_float(v)} cannot be represented as a nanoseconds timestamp since it overflows int64")
    n = _int64(ns)
    ms = abs(n) // 1_000_000
    return GoTime(ms if n >= 0 else -ms)


def humanize_timestamp(_: FuncContext, i: Any) -> str:
    v = to_float(i)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return str(_float_to_time(v))


def to_time(_: FuncContext, i: Any) -> GoTime:
    v = to_float(i)
    if math.isnan(v) or math.isinf(v):
        raise CallError("value is NaN or Inf")
    return _float_to_time(v)


def to_duration(_: FuncContext, i: Any) -> GoDuration:
    return GoDuration(_int64(to_float(i) * 1e9))


def _compile(pattern: str) -> Regex:
    """Go's ``regexp.Compile`` (RE2, linear time; see :mod:`promlab.model.re2`)."""
    try:
        return compile_regex(pattern)
    except RegexError as e:
        raise CallError(str(e)) from None


def match(_: FuncContext, pattern: str, text: str) -> bool:
    return _compile(pattern).matches(text)


def re_replace_all(_: FuncContext, pattern: str, repl: str, text: str) -> str:
    try:
        rx = _compile(pattern)
    except CallError as e:
        from promlab.rules.template.gofmt import quote

        shown = f"`{pattern}`" if "`" not in pattern and pattern.isprintable() else quote(pattern)
        raise CallError(f"regexp: Compile({shown}): {e}") from None
    return replace_all(rx, text, repl)


def _split_host_port(hp: str) -> tuple[str, str] | None:
    """``net.SplitHostPort``; None where Go returns an error."""
    i = hp.rfind(":")
    if i < 0:
        return None
    if hp.startswith("["):
        end = hp.find("]")
        if end < 0 or end + 1 != i:
            return None
        host = hp[1:end]
        if "[" in hp[1:end] or "]" in hp[end + 1:]:
            return None
    else:
        host = hp[:i]
        if any(c in host for c in ":[]"):
            return None
    return host, hp[i + 1:]


def strip_port(_: FuncContext, hp: str) -> str:
    sp = _split_host_port(hp)
    return hp if sp is None else sp[0]


def strip_domain(_: FuncContext, hp: str) -> str:
    sp = _split_host_port(hp)
    host, port = (hp, "") if sp is None else sp
    try:
        ipaddress.ip_address(host)
        return hp
    except ValueError:
        pass
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def title(_: FuncContext, s: str) -> str:
    out: list[str] = []
    prev = " "
    for c in s:
        if _is_separator(prev):
            t = c.title()
            out.append(t if len(t) == 1 else c.upper() if len(c.upper()) == 1 else c)
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _is_separator(c: str) -> bool:
    if c.isascii():
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdigit():
        return False
    return c.isspace()


def _case(s: str, upper: bool) -> str:
    """Go's ``strings.ToUpper``/``ToLower``: each character by its simple (one-character) case
    mapping. Python's mappings are the full ones; where those give several characters the
    simple one is the title case (Greek letters with a subscript iota), the first character
    (U+0130's ``i``), or none."""
    if s.isascii():
        return s.upper() if upper else s.lower()
    out = []
    for c in s:
        t = c.upper() if upper else c.lower()
        if len(t) != 1:
            alt = c.title() if upper else t[0]
            t = alt if len(alt) == 1 and (not upper or alt != c) else c
        out.append(t)
    return "".join(out)


def query(ctx: FuncContext, q: str) -> QueryResult:
    if ctx.query_func is None:
        raise CallError("no query function given to the template expander")
    try:
        res = ctx.query_func(q, ctx.timestamp_ms)
    except Exception as e:  # any query failure is the function's error, as in Go
        raise CallError(str(e)) from None
    return QueryResult(Sample(dict(s.labels), float(s.value)) for s in res)


def first(_: FuncContext, v: QueryResult | None) -> Sample:
    if not v:
        raise CallError("first() called on vector with no elements")
    return v[0]


def _need(s: Sample | None) -> Sample:
    if s is None:
        raise CallError(_NIL_DEREF)
    return s


def sort_by_label(_: FuncContext, label: str, v: QueryResult | None) -> QueryResult:
    # A nil argument comes back as Go's typed nil queryResult, which prints as "[]".
    if v is None:
        return QueryResult()
    v.sort(key=lambda s: s.Labels.get(label, ""))
    return v


def parse_duration_s(_: FuncContext, d: str) -> float:
    try:
        return parse_go_duration(d) / 1000
    except ValueError as e:
        raise CallError(str(e)) from None


def _f(impl: Callable[..., Any], *params: str, variadic: str | None = None) -> Func:
    return Func(impl, params, variadic)


FUNCS: dict[str, Func] = {
    # and/or are short-circuited by the executor; the impls here are never called.
    "and": _f(lambda _c, *a: a[-1], "value", variadic="value"),
    "or": _f(lambda _c, *a: a[-1], "value", variadic="value"),
    "not": _f(lambda _c, a: not truth(a), "value"),
    "len": _f(length, "value"),
    "index": _f(index, "value", variadic="value"),
    "slice": _f(slice_, "value", variadic="value"),
    "print": _f(lambda _c, *a: sprint(list(a)), variadic="any"),
    "printf": _f(lambda _c, fmt, *a: sprintf(fmt, list(a)), "string", variadic="any"),
    "println": _f(lambda _c, *a: sprintln(list(a)), variadic="any"),
    "html": _f(lambda _c, *a: html_escape(eval_args(a)), variadic="any"),
    "js": _f(lambda _c, *a: js_escape(eval_args(a)), variadic="any"),
    "urlquery": _f(lambda _c, *a: query_escape(eval_args(a)), variadic="any"),
    "call": _f(call, "value", variadic="value"),
    "eq": _f(eq, "value", variadic="value"),
    "ne": _f(ne, "value", "value"),
    "lt": _f(lt, "value", "value"),
    "le": _f(le, "value", "value"),
    "gt": _f(lambda c, a, b: not le(c, a, b), "value", "value"),
    "ge": _f(lambda c, a, b: not lt(c, a, b), "value", "value"),
    # Prometheus
    "query": _f(query, "string"),
    "first": _f(first, "qr"),
    "label": _f(lambda _c, name, s: _need(s).Labels.get(name, ""), "string", "sample"),
    "value": _f(lambda _c, s: _need(s).Value, "sample"),
    "strvalue": _f(lambda _c, s: _need(s).Labels.get("__value__", ""), "sample"),
    "args": _f(lambda _c, *a: AnyMap((f"arg{i}", v) for i, v in enumerate(a)), variadic="any"),
    "reReplaceAll": _f(re_replace_all, "string", "string", "string"),
    "safeHtml": _f(lambda _c, s: HTML(s), "string"),
    "match": _f(match, "string", "string"),
    "title": _f(title, "string"),
    "toUpper": _f(lambda _c, s: _case(s, True), "string"),
    "toLower": _f(lambda _c, s: _case(s, False), "string"),
    "graphLink": _f(lambda _c, e: f"/graph?g0.expr={query_escape(e)}&g0.tab=0", "string"),
    "tableLink": _f(lambda _c, e: f"/graph?g0.expr={query_escape(e)}&g0.tab=1", "string"),
    "sortByLabel": _f(sort_by_label, "string", "qr"),
    "stripPort": _f(strip_port, "string"),
    "stripDomain": _f(strip_domain, "string"),
    "humanize": _f(humanize, "any"),
    "humanize1024": _f(humanize1024, "any"),
    "humanizeDuration": _f(humanize_duration, "any"),
    "humanizePercentage": _f(humanize_percentage, "any"),
    "humanizeTimestamp": _f(humanize_timestamp, "any"),
    "toTime": _f(to_time, "any"),
    "toDuration": _f(to_duration, "any"),
    "now": _f(lambda c: c.timestamp_ms / 1000.0),
    "pathPrefix": _f(lambda c: urlsplit(c.external_url).path),
    "externalURL": _f(lambda c: c.external_url),
    "parseDuration": _f(parse_duration_s, "string"),
    "urlQueryEscape": _f(lambda _c, s: query_escape(s), "string"),
}
