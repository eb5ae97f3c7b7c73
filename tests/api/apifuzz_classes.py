"""Classes of differences for the API fuzzer (:mod:`tests.api.apifuzz`): what must differ
(normalised by :func:`normalize_pair`), and the deliberate Prometheus 3.x changes promlab
follows or documented divergences (named by :func:`known_class` and
:func:`explain_by_dropping`; the names are listed in test_api_fuzz_realprom.py)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx

from promlab.api.params import parse_api_time_parts, time_order_key

from .apifuzz import FORM_TYPES, STATUS_PATHS, Observed, Req, observe, same, same_answer

__all__ = ["NEW_PARAMS", "PROMLAB_PATHS", "ZERO_INTERVAL", "effective", "explain_by_dropping", "known_class", "normalize_pair"]


#: Prometheus's answer to a range query with a step under 1 ms (an interval of 0 ms).
ZERO_INTERVAL = "unexpected error: runtime error: integer divide by zero"
_LEGACY_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_TIMEOUT = re.compile(r"query timed out in .*")
# Parser messages Prometheus 3.x changed (duration expressions, number offsets).
_PARSER_3X = [("expected number, duration, step(), or range()", "expected duration"),
              ("`^(?s:", "`^(?:")]  # 3.x's regex matchers: "." matches a newline too


def normalize_pair(req: Req, ours: Observed, theirs: Observed) -> None:
    """Blank out, in place, what must differ: the stage a timeout is noticed in (racy in
    Prometheus: the query queue or the execution), the status endpoints' contents (build,
    flags, runtime, head statistics: only the envelope is compared), 3.x parser wording."""
    for o in (ours, theirs):
        if isinstance(o.body, dict):
            if o.body.get("errorType") == "timeout":
                o.body["error"] = _TIMEOUT.sub("query timed out in <stage>", o.body["error"])
            if req.path.startswith(STATUS_PATHS) and o.body.get("status") == "success":
                o.body["data"] = "<status data>"
            if isinstance(o.body.get("error"), str):
                for new, old in _PARSER_3X:
                    o.body["error"] = o.body["error"].replace(new, old)


#: Paths 2.42 does not route (404) that promlab serves: 3.x endpoints, and the Pushgateway's
#: API (promlab's push endpoint is Pushgateway-compatible; ``/api/v1/status/`` then redirects).
PROMLAB_PATHS = {"/api/v1/notifications": "3.x-endpoints",
                 "/api/v1/notifications/live": "3.x-endpoints",
                 "/api/v1/status/tsdb/blocks": "3.x-endpoints",
                 "/api/v1/status": "pushgateway-api", "/api/v1/metrics": "pushgateway-api"}


def known_class(req: Req, ours: Observed, theirs: Observed) -> str | None:
    """The name of the deliberate Prometheus 3.x change (or documented divergence) explaining a
    difference, or None for a difference to fix."""
    p = effective(req)
    b_ours = ours.body if isinstance(ours.body, dict) else {}
    b_theirs = theirs.body if isinstance(theirs.body, dict) else {}
    same_head = (ours.status, ours.media, ours.allow) == (theirs.status, theirs.media,
                                                          theirs.allow)
    # What 2.42 cannot give, taken off promlab's answer: info annotations (2.44+: rate() of
    # a gauge...) and the deprecation warning of a stats value other than true/all (3.x).
    adjusted, removed = dict(b_ours), []
    if "infos" in adjusted:
        del adjusted["infos"]
        removed.append("3.x-info-annotations")
    warnings = [w for w in adjusted.get("warnings", []) if "for parameter \"stats\"" not in w]
    if "warnings" in adjusted and len(warnings) < len(adjusted["warnings"]):
        removed.append("3.x-stats-value-warning")
        adjusted["warnings"] = warnings
        if not warnings:
            del adjusted["warnings"]
    b_ours = adjusted
    if same_head and b_theirs and removed and same(adjusted, b_theirs):
        return removed[0]
    if req.path == "/api/v1/series" and (req.method == "DELETE" or
                                         theirs.allow == "DELETE,GET,OPTIONS,POST"):
        return "3.x-no-delete-series"  # 2.42 routes DELETE /series (to "not implemented")
    if req.path == "/api/v1/query_range" and same_head and \
            f'invalid parameter "query": {b_theirs.get("error")}' == b_ours.get("error"):
        return "3.x-query-range-invalid-param"  # 3.x wraps its parse errors as /query does
    if req.path == "/api/v1/query_range" and theirs.status == -1 and \
            p.get("stats") == "all" and b_ours.get("error") == ZERO_INTERVAL:
        # A step under 1 ms: the per-step statistics (promql-per-step-stats) divide by zero
        # outside Prometheus's recovery, and Go's server drops the connection
        return "per-step-stats-zero-interval"
    if theirs.status == 404 and req.path.rstrip("/") in PROMLAB_PATHS:
        return PROMLAB_PATHS[req.path.rstrip("/")]
    if req.path == "/api/v1/parse_query" and theirs.status == 404:
        return "3.x-parse-query"  # the endpoint is 2.47+
    if "U__" in req.path or any("U__" in v or '{"' in v for _, v in (*req.params, *req.url_params)):
        return "3.x-utf8-names"  # UTF-8 label names, quoted names in selectors (3.x)
    if req.path.startswith("/api/v1/label/") and req.path.endswith("/values"):
        seg = unquote(req.path[len("/api/v1/label/"):-len("/values")], errors="replace")
        if seg and not _LEGACY_NAME.match(seg) and "\ufffd" not in seg:
            return "3.x-utf8-names"  # any UTF-8 label name is valid in 3.x
    if same_head and b_ours.get("status") == "success" and \
            re.search(r"\b(rate|increase)\(", p.get("query", "")) and \
            same(_strip_values(b_ours), _strip_values(b_theirs)):
        # Same series and timestamps, other values: 3.x extrapolates a counter's rate to its
        # zero point only within the usual extrapolation (2.42 could extrapolate further).
        return "3.x-rate-extrapolation"
    if req.path.startswith(("/api/v1/series", "/api/v1/label")) and theirs.status == 200 and \
            ours.status == 200 and _end_before_start(p):
        return "block-granular-bounds"  # Prometheus answers from whole blocks
    return None


def effective(req: Req) -> dict[str, str]:
    """The parameters as Go's ``r.FormValue`` sees them: a form body's first, then the URL's
    (a multipart body's after the URL's); the first value of a name counts."""
    out: dict[str, str] = {}
    if req.post == "form" and FORM_TYPES[req.form_type].startswith("application/x-www-form-urlencoded,"):
        items = list(req.url_params)  # a type Go cannot read: no body values
    elif req.post == "multipart":  # read after the URL's, where read at all
        items = [*req.url_params, *req.params]
    else:
        items = [*req.params, *req.url_params] if req.post == "form" else \
            list(req.url_params if req.post else req.params)
    for k, v in items:
        out.setdefault(k, v)
    return out


#: Parameters 2.42 ignores and promlab reads as 3.x does, by the class a difference they
#: make belongs to: limit on series/labels/values (2.49+) and query/query_range (3.x),
#: metadata's limit_per_metric, a per-query lookback_delta (3.x).
NEW_PARAMS = {"limit": "3.x-limit", "limit_per_metric": "3.x-limit-per-metric",
              "lookback_delta": "3.x-lookback-delta"}


def explain_by_dropping(client: httpx.Client, base: str, req: Req, theirs: Observed) -> str | None:
    """The class of a difference that goes away when promlab is asked again without the
    parameters 2.42 ignores (:data:`NEW_PARAMS`), or None."""
    present = [k for k, _ in (*req.params, *req.url_params) if k in NEW_PARAMS]
    if not present:
        return None

    def keep(kvs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in kvs if k not in NEW_PARAMS)

    # (a raw query left empty is sent as "&": an empty one would send the params instead)
    raw = "&".join(pair for pair in req.raw.split("&")
                   if unquote(pair.partition("=")[0]) not in NEW_PARAMS) or "&" \
        if req.raw else ""
    again = Req(method=req.method, path=req.path, params=keep(req.params), post=req.post,
                url_params=keep(req.url_params), raw=raw, form_type=req.form_type)
    ours = observe(client, base, again)
    normalize_pair(again, ours, theirs)
    if same_answer(ours, theirs) or known_class(again, ours, theirs) is not None:
        return NEW_PARAMS[present[0]]
    return None


def _strip_values(x: Any) -> Any:
    """The answer without its sample values (``("str", v)`` pairs), stats and warnings."""
    if isinstance(x, dict):
        return {k: _strip_values(v) for k, v in x.items() if k not in ("stats", "infos")}
    if isinstance(x, list):
        return [_strip_values(v) for v in x]
    if isinstance(x, tuple):
        return ("str", "<value>")
    return x


def _end_before_start(p: dict[str, str]) -> bool:
    """Whether ``end`` is before ``start`` as Prometheus compares them (to the nanosecond: a
    reversal inside one millisecond counts); either absent is all of time, never reversed."""
    if not p.get("start") or not p.get("end"):
        return False
    try:
        return time_order_key(parse_api_time_parts(p["end"], "end")) < \
            time_order_key(parse_api_time_parts(p["start"], "start"))
    except ValueError:
        return False
