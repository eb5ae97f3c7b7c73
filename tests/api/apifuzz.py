"""Random HTTP API requests for the differential fuzz test against a real Prometheus 2.42.

:func:`generate` draws requests (endpoint, method, parameters, body, content type, path
oddities) from a seeded :class:`random.Random`; :func:`observe` sends one to a server and keeps
what is compared (status, media type, ``Allow``, and for JSON the envelope and a normalised
``data``); :func:`same_answer` compares two (floats within 1e-9). The classes of differences
are in :mod:`tests.api.apifuzz_classes`.

Times are drawn off the 15 s sample grid of the dataset (``E - k*60 - 7.25``, steps in half
seconds): on the grid, Prometheus 2.42's range windows are closed at the left and 3.x's (and
promlab's) left-open.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import httpx

__all__ = ["FORM_TYPES", "STATUS_PATHS", "Observed", "Req", "describe", "generate",
           "observe", "same", "same_answer"]


@dataclass(frozen=True)
class Req:
    """One request: ``params`` go to the URL (GET and the like) or a form body (``post="form"``)."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    # "", "form" (Content-Type: one of FORM_TYPES[form_type]), "json" (params as a JSON
    # object), "none" (form text, no type), "multipart" (multipart/form-data fields)
    post: str = ""
    url_params: tuple[tuple[str, str], ...] = ()  # in the URL even for a POST
    raw: str = ""  # sent instead of the encoded params (URL-encoding oddities)
    form_type: int = 0

    def send(self, client: httpx.Client, base: str) -> httpx.Response:
        url = base + self.path
        query = urlencode(self.url_params) if self.post else self.raw or urlencode(self.params)
        if query:
            url += "?" + query
        headers: dict[str, str] = {}
        content: bytes | None = None
        if self.post == "form":
            headers["Content-Type"] = FORM_TYPES[self.form_type]
            content = (self.raw or urlencode(self.params)).encode()
        elif self.post == "json":
            headers["Content-Type"] = "application/json"
            content = json.dumps(dict(self.params)).encode()
        elif self.post == "multipart":
            headers["Content-Type"] = "multipart/form-data; boundary=fuzz"
            content = b"".join(b'--fuzz\r\nContent-Disposition: form-data; name="%s"\r\n\r\n'
                               b"%s\r\n" % (k.encode(), v.encode()) for k, v in self.params)
            content += b"--fuzz--\r\n"
        elif self.post == "none":
            content = urlencode(self.params).encode()
        return client.send(client.build_request(self.method, url, headers=headers,
                                                content=content))


FORM_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
              "Application/X-WWW-Form-URLEncoded", "text/plain",
              # Go's mime.ParseMediaType errors: the body read or not, series refusing it
              "application/x-www-form-urlencoded;;", "application/x-www-form-urlencoded; a",
              "application/x-www-form-urlencoded,a/b", "application/x-www-form-urlencoded;"]


def describe(req: Req) -> str:
    """The request in one line, to replay it."""
    raw = f" raw={req.raw!r}" if req.raw else ""
    ctype = f" ({FORM_TYPES[req.form_type]})" if req.post == "form" else ""
    return (f"{req.method} {req.path} {req.post or ''}{ctype} {list(req.params)} "
            f"url={list(req.url_params)}{raw}")


def _oddities(rng: random.Random, params: list[tuple[str, str]]) -> str:
    """The params URL-encoded, then one or two pairs garbled as a client might."""
    pairs = [urlencode([kv]) for kv in params]
    for _ in range(rng.choice([1, 1, 2])):
        i = rng.randrange(len(pairs) + 1)
        k, v = params[i] if i < len(params) else ("time", "1")
        pairs.insert(i, rng.choice([
            f"{quote(k, safe='')}={quote(v, safe='')}%zz", f"{k}={quote(v, safe='')}%2",
            "".join(f"%{ord(c):02X}" for c in k) + "=" + quote(v, safe=""),
            f"{k};x={quote(v, safe='')}", "", k, f"{k}=%ff", f"{k}=%00",
            f"{k}={quote(v, safe='').replace('%20', '+')}", "=", f"{k}=a=b", "&", "%zz=1"]))
        if i < len(params) and rng.random() < 0.7:
            del pairs[i + 1]  # the garbled pair replaces the good one
    return "&".join(pairs)


@dataclass
class Observed:
    """What is compared of one answer."""

    status: int
    media: str
    allow: str
    body: Any  # the JSON envelope (normalised), or the text when not JSON
    raw: str = field(repr=False, default="")


def _num(x: float) -> Any:
    return "NaN" if math.isnan(x) else x


def same(a: Any, b: Any) -> bool:
    """Structural equality, floats within a relative 1e-9 (the engines sum in other orders)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def _normalize(x: Any, now: float, *, sample: bool = False) -> Any:
    """Numbers as floats, a time near now as ``NOW``; a numeric string in a list (a sample
    value: ``[t, "v"]``) as ``("str", v)``; other strings (label values) as they are."""
    if isinstance(x, dict):
        return {k: _normalize(v, now) for k, v in x.items()}
    if isinstance(x, list):
        return [_normalize(v, now, sample=True) for v in x]
    if isinstance(x, bool) or x is None:
        return x
    if isinstance(x, int | float):
        return "NOW" if abs(x - now) < 120 else float(x)
    if isinstance(x, str) and sample:
        try:
            v = float(x)
        except ValueError:
            return x
        return ("str", _num(v))
    return x


STATUS_PATHS = ("/api/v1/status/", "/api/v1/targets", "/api/v1/alertmanagers")


def _shape(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _shape(v) for k, v in sorted(x.items())}
    if isinstance(x, list):
        return [_shape(v) for v in x[:1]]
    return type(x).__name__ if not isinstance(x, int | float) or isinstance(x, bool) else "num"


def observe(client: httpx.Client, base: str, req: Req) -> Observed:
    now = time.time()
    try:
        r = req.send(client, base)
    except httpx.TransportError as exc:  # a server that drops the connection: a difference
        return Observed(-1, "", "", f"transport error: {exc!r}", f"transport error: {exc!r}")
    media = r.headers.get("content-type", "").split(";")[0].strip()
    allow = ",".join(sorted(m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()))
    body: Any = r.text
    if media == "application/json" and req.method != "HEAD":
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            data = doc.get("data")
            if isinstance(data, dict) and "stats" in data:  # timings differ: keys only
                data = {**data, "stats": _shape(data["stats"])}
            body = {k: _normalize(v, now) for k, v in doc.items() if k != "data"}
            body["data"] = _normalize(data, now)
    return Observed(r.status_code, media, allow, body, r.text)


def same_answer(ours: Observed, theirs: Observed) -> bool:
    return (ours.status, ours.media, ours.allow) == (theirs.status, theirs.media, theirs.allow) \
        and same(ours.body, theirs.body)


# --- generation -------------------------------------------------------------------------------

METRICS = ["http_requests_total", "node_memory_usage_bytes", "http_request_duration_seconds_bucket",
           "http_request_duration_seconds_count", "http_request_duration_seconds_sum"]
LABELS = ["__name__", "instance", "job", "kind", "le", "method", "status", "nope"]

GOOD_QUERIES = [
    "http_requests_total", 'http_requests_total{method="GET"}', "sum by (job) (http_requests_total)",
    "rate(http_requests_total[5m])", "sum(rate(http_requests_total[299s])) by (status)",
    "node_memory_usage_bytes", "avg(node_memory_usage_bytes)", "count(node_memory_usage_bytes)",
    "http_requests_total[1m]", "http_requests_total[10m:1m]", "1", "1+1", '"text"', "time()",
    "vector(1)", "scalar(count(http_requests_total))", "nothing_here", "-Inf", "NaN",
    "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "topk(2, http_requests_total)", "http_requests_total offset 5m", "up == 1",
    "rate(node_memory_usage_bytes[5m])", "max_over_time(node_memory_usage_bytes[5m])",
    "http_requests_total / ignoring(status) group_left sum without(status) (http_requests_total)",
    "label_replace(up, \"a\", \"$1\", \"job\", \"(.*)\")", "absent(nothing)", "{job=~\".+\"}",
    'sum(rate({__name__="http_requests_total"}[5m]))', "count_values(\"v\", vector(2))",
]
BAD_QUERIES = [
    "", "sum(", "rate(x)", "x[5m", "foo{", "1 +", "{}", 'x{a="b"', "unknownfn(x)", "x[5m][5m]",
    "sum by (a) x", "'unterminated", "x @ foo", "x offset", "3 == bool", "~", "x)", "((1)",
    "rate(http_requests_total[5m])[1m]", "abs(1, 2)", "x @ 1 @ 2", 'x{a=~"("}', "1 and 1",
    "http_requests_total{__name__=\"a\"}", "{a=\"\"}",
    # trailing garbage
    "up foo", "up)", "1 2", "sum(up) x", "up;", "up,", "up}", "time() time()", "up\x00",
    "up # a comment", "up\n", " up ", "up @", "up[5m] x",
]
SELECTORS = [
    "http_requests_total", 'http_requests_total{method="GET"}', "node_memory_usage_bytes",
    '{__name__=~"http_.*"}', '{job="api"}', "{}", '{a=""}', '{job=~".*"}', "nothing", "sum(",
    "rate(x[5m])", 'up{job!="x"}', '{__name__="node_memory_usage_bytes",kind="free"}', "",
    '{"http_requests_total"}', 'x{a="\\xff"}', '{job=~"a|b",job!~"c"}', "x[5m]",
    # only matchers that match the empty string, and near misses
    '{job=~""}', '{a!~".+"}', '{__name__=~".*"}', '{job=~".*",a=""}', '{a!="",b=""}',
    '{job!~"x"}', '{__name__!=""}', "up{a=\"\"}", '{job=~".+"}', "up x", "up or up",
]


class Gen:
    """Parameter values drawn around the dataset's last time ``end_s``."""

    def __init__(self, rng: random.Random, end_s: float) -> None:
        self.rng = rng
        self.end_s = end_s

    def pick(self, xs: list[str]) -> str:
        return self.rng.choice(xs)

    def near(self) -> float:
        # Off the 15 s grid: E - k*60 - 7.25 (seconds), within the last hour or a little after;
        # with steps in whole half seconds, no evaluation time of a range query is on the grid.
        return self.end_s - self.rng.randint(-2, 60) * 60 - 7.25

    def time(self) -> str:
        r = self.rng.random()
        t = self.near()
        if r < 0.35:
            return f"{t:.3f}" if self.rng.random() < 0.5 else str(round(t, self.rng.randint(0, 2)))
        if r < 0.65:
            tz = timezone(timedelta(minutes=self.rng.choice([0, 60, -300, 330, -720, 840])))
            dt = datetime.fromtimestamp(t, tz)
            frac = self.rng.choice([0, 1, 3, 6, 9])
            s = dt.strftime("%Y-%m-%dT%H:%M:%S")
            if frac:
                s += "." + f"{dt.microsecond:06d}{self.rng.randint(0, 999):03d}"[:frac]
            off = dt.strftime("%z")
            s += "Z" if off == "+0000" and self.rng.random() < 0.5 else off[:3] + ":" + off[3:]
            return s
        return self.pick(["", "-100", "-1e3", "0", "1e20", "9999999999999", "NaN", "Inf", "-Inf",
                          "+Inf", "x", "2024-01-14", "1705276786.2345678", " 100", "0x10",
                          "1_000", "1e3", "1705276779.5e0", "2024-01-14T23:59:39",
                          "2024-01-14 23:59:39Z", "-292275055-05-16T16:47:04.192Z",
                          "292277025-08-18T07:12:54.999Z", "9223372036854775807", ".5", "5.",
                          "-0", "1e-3", "2024-01-14T23:59:39.1234567891Z", "inf", "nan"])

    def step(self) -> str:
        # Multiples of 0.5 s (see near()); shorter ones only where they exceed 11,000 points.
        return self.pick(["15", "60", "1m", "30s", "0", "-1", "-1m", "0.001", "0.5", "1h", "1.5",
                          "1e2", "NaN", "Inf", "", "5m30s", "1d", "1y", "500ms", "x", "1ns",
                          "0s", "1w", "90", "15.5", "1h1m", " 60", "+60", "1e-9", "1M",
                          "0x1p4", "1_0", "-Inf", "1e10", "9e9", "1h30m", "1m30s", "90m",
                          "0.0005", "1e-4", "0.0009", "1ms", "2h0m", "1m1h", "1.5m", "15s "])

    def duration(self) -> str:
        return self.pick(["", "1s", "30", "0", "-1", "x", "1m", "0.5", "2m", "1h", "NaN", "-5s",
                          "1e9", "100ms", "1h30m", "+1s", " 1s", "0s", "1y", "9999999999",
                          "Inf", "-Inf", "1m0s", "1d1h", "0.0", "-0"])
        # (no positive timeout under 100 ms: whether a query beats it is a race)

    def limit(self) -> str:
        return self.pick(["", "0", "1", "2", "-1", "x", "1.5", "100", "3", " 1", "+1", "0x10",
                          "1e3", "9999999999999999999", "-0", "01", "1_0"])

    def query(self) -> str:
        return self.pick(GOOD_QUERIES if self.rng.random() < 0.75 else BAD_QUERIES)

    def match(self) -> list[str]:
        return [self.pick(SELECTORS) for _ in range(self.rng.choice([0, 1, 1, 1, 2, 3]))]

    def label(self) -> str:
        return self.pick([*LABELS, "%ff", "U__a_2e_b", "a.b", "%C3%A9", "__name__", "1abc",
                          "a%2Fb", "U__x", "job%20", ""])


def _maybe(g: Gen, name: str, value: str, out: list[tuple[str, str]], p: float = 0.6) -> None:
    if g.rng.random() < p:
        out.append((name, value))


def _query_params(g: Gen, path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    rng = g.rng
    if rng.random() < 0.95:
        out.append(("query", g.query()))
    if path.endswith("query"):
        _maybe(g, "time", g.time(), out, 0.85)
    else:
        end = g.near()
        start = end - rng.choice([0, 0.001, 2, 5]) if rng.random() < 0.1 else \
            g.near() - rng.choice([60, 600, 1800, 3600, -60])
        for name, t in (("start", start), ("end", end)):
            if rng.random() < 0.8:
                out.append((name, f"{t:.3f}"))
            elif rng.random() < 0.8:
                out.append((name, g.time()))
        _maybe(g, "step", g.step(), out, 0.9)
    _maybe(g, "timeout", g.duration(), out, 0.15)
    _maybe(g, "limit", g.limit(), out, 0.1)
    _maybe(g, "lookback_delta", g.duration(), out, 0.08)
    _maybe(g, "stats", g.pick(["all", "true", "1", "x", ""]), out, 0.1)
    return out


def _series_params(g: Gen) -> list[tuple[str, str]]:
    out = [("match[]", m) for m in g.match()]
    rng = g.rng
    if rng.random() < 0.4:
        out.append(("start", f"{g.near() - 600:.3f}" if rng.random() < 0.6 else g.time()))
    if rng.random() < 0.4:
        out.append(("end", f"{g.near():.3f}" if rng.random() < 0.6 else g.time()))
    _maybe(g, "limit", g.limit(), out, 0.1)
    return out


#: A fresh value for a parameter of this name.
_VALUES: dict[str, Callable[[Gen], str]] = {
    "query": Gen.query, "time": Gen.time, "start": Gen.time, "end": Gen.time, "step": Gen.step,
    "limit": Gen.limit, "timeout": Gen.duration, "match[]": lambda g: g.pick(SELECTORS)}


def _request(g: Gen) -> Req:
    rng = g.rng
    kind = rng.choices(
        ["query", "query_range", "series", "labels", "values", "metadata", "exemplars",
         "format", "parse", "status", "federate", "other"],
        weights=[20, 20, 10, 8, 10, 4, 4, 5, 3, 4, 5, 3])[0]
    path = "/api/v1/" + kind
    params: list[tuple[str, str]] = []
    if kind in ("query", "query_range"):
        params = _query_params(g, path)
    elif kind in ("series", "labels", "values", "federate"):
        params = _series_params(g)
        if kind == "values":
            path = f"/api/v1/label/{g.label()}/values"
        elif kind == "federate":
            path = "/federate"
            params = [p for p in params if p[0] == "match[]"]
    elif kind == "metadata":
        _maybe(g, "metric", g.pick([*METRICS, "", "nothing", "up"]), params)
        _maybe(g, "limit", g.limit(), params, 0.4)
        _maybe(g, "limit_per_metric", g.limit(), params, 0.4)
    elif kind == "exemplars":
        path = "/api/v1/query_exemplars"
        params = _query_params(g, "/api/v1/query_range")
        params = [p for p in params if p[0] in ("query", "start", "end")]
    elif kind in ("format", "parse"):
        path = f"/api/v1/{kind}_query"
        _maybe(g, "query", g.query(), params, 0.9)
    elif kind == "status":
        path = "/api/v1/" + g.pick(["status/buildinfo", "status/runtimeinfo", "status/flags",
                                     "status/tsdb", "status/config", "status/walreplay",
                                     "targets", "alertmanagers", "status/nope", "rules",
                                     "alerts", "targets/metadata", "status", "status/",
                                     "status/tsdb/blocks", "notifications", "scrape_pools"])
        if rng.random() < 0.3:
            params = [(g.pick(["limit", "state", "type", "match_target", "metric", "scrape_pool",
                               "exclude_alerts", "rule_name[]"]), g.limit())]
    else:
        path = g.pick(["/api/v1/nope", "/api/v1", "/api/v1/", "/api/v2/query", "/api/v1/query/",
                       "/api/v1/label//values", "/api/v1/label/job", "/api/v1/series/x"])
        params = _query_params(g, "/api/v1/query")
    if rng.random() < 0.08 and params:  # a duplicate parameter: the first one counts
        k, _ = rng.choice(params)
        params.append((k, _VALUES.get(k, lambda _: "x")(g)))
    if rng.random() < 0.05 and params:  # an empty value
        i = rng.randrange(len(params))
        params[i] = (params[i][0], "")
    if rng.random() < 0.08:
        params.append((g.pick(["foo", "Query", "query ", "match", "_", "time[]"]), "1"))
    r = rng.random()
    method, post, url_params, form_type = "GET", "", (), 0
    raw = _oddities(rng, params) if rng.random() < 0.1 else ""
    if r < 0.3:
        method, post = "POST", "form"
        form_type = rng.choice([0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7])
        if rng.random() < 0.15 and params:  # one parameter in the URL instead
            i = rng.randrange(len(params))
            url_params = (params.pop(i),)
        elif rng.random() < 0.1 and params:  # in both, with other values: the body's counts
            k, _ = rng.choice(params)
            url_params = ((k, _VALUES.get(k, lambda _: "x")(g)),)
    elif r < 0.36:
        method, post = rng.choice(["POST", "POST", "GET"]), rng.choice(["json", "none",
                                                                        "multipart"])
        if post == "multipart" and rng.random() < 0.3 and params:  # and one in the URL
            i = rng.randrange(len(params))
            url_params = (params.pop(i),)
    elif r < 0.44:
        method = rng.choice(["PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"])
        post = rng.choice(["", "form"]) if method != "HEAD" else ""
    return Req(method=method, path=path, params=tuple(params), post=post,
               url_params=tuple(url_params), raw=raw, form_type=form_type)


def generate(seed: int, n: int, end_s: float) -> list[Req]:
    """``n`` requests from ``seed`` around the dataset's last time ``end_s`` (seconds)."""
    g = Gen(random.Random(seed), end_s)
    return [_request(g) for _ in range(n)]

