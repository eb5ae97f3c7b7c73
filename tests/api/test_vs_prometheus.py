"""promlab's API and a real Prometheus 2.42 answering the same requests over the same samples:
the JSON must have the same structure (keys, types, result order) and the same data."""

from __future__ import annotations

import http.client
import math
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

E = "END"  # replaced by the dataset's last timestamp (seconds)
# Range windows start off the 15 s sample grid (E-7): Prometheus 2.42's windows are closed at
# the left, current Prometheus's (and promlab's) left-open; off the grid both agree.


def _normalize(x: Any) -> Any:
    """Numbers (and numeric strings) rounded to 12 significant digits; the rest as it is."""
    if isinstance(x, dict):
        return {k: _normalize(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_normalize(v) for v in x]
    if isinstance(x, bool):
        return x
    if isinstance(x, int | float):
        return ("num", float(f"{x:.12g}"))
    if isinstance(x, str):
        try:
            v = float(x)
        except ValueError:
            return x
        return ("num", v if math.isnan(v) or math.isinf(v) else float(f"{v:.12g}")) \
            if not math.isnan(v) else ("num", "NaN")
    return x


def _shape(x: Any) -> Any:
    """The structure only: dict keys, list lengths, JSON types."""
    if isinstance(x, dict):
        return {k: _shape(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_shape(v) for v in x]
    return "number" if isinstance(x, int | float) and not isinstance(x, bool) else type(x).__name__


def _params(params: dict[str, Any], end: float) -> dict[str, Any]:
    out = {}
    for k, v in params.items():
        if isinstance(v, str) and v.startswith(E):
            v = str(end + float(v[len(E):] or 0))
        out[k] = v
    return out


SAME_DATA = [
    pytest.param("/api/v1/query", {"query": "http_requests_total", "time": E}, id="vector"),
    pytest.param("/api/v1/query", {"query": "sum by (status) (rate(http_requests_total[5m]))",
                                   "time": E + "-7"}, id="rate-sum"),
    pytest.param("/api/v1/query", {"query": 'http_requests_total{method="GET"}[1m]', "time": E + "-7"},
                 id="matrix"),
    pytest.param("/api/v1/query", {"query": "scalar(count(node_memory_usage_bytes))", "time": E},
                 id="scalar"),
    pytest.param("/api/v1/query", {"query": '"text"', "time": E}, id="string"),
    pytest.param("/api/v1/query", {"query": "histogram_quantile(0.9, sum by (le) (rate("
                                   "http_request_duration_seconds_bucket[5m])))", "time": E + "-7"},
                 id="quantile"),
    pytest.param("/api/v1/query", {"query": "nothing_here", "time": E}, id="empty"),
    pytest.param("/api/v1/query_range", {"query": "sum by (job) (rate(http_requests_total[5m]))",
                                         "start": E + "-1807", "end": E, "step": "60"},
                 id="range"),
    pytest.param("/api/v1/query_range", {"query": "avg(node_memory_usage_bytes)",
                                         "start": E + "-600", "end": E, "step": "1m"},
                 id="range-duration-step"),
    pytest.param("/api/v1/query_range", {"query": "time()", "start": E + "-60", "end": E,
                                         "step": "15.5"}, id="range-scalar"),
    pytest.param("/api/v1/series", {"match[]": ["http_requests_total",
                                                'node_memory_usage_bytes{kind="free"}']},
                 id="series"),
    pytest.param("/api/v1/series", {"match[]": 'http_requests_total{method="GET"}',
                                    "start": E + "-600", "end": E}, id="series-range"),
    pytest.param("/api/v1/labels", {}, id="labels"),
    pytest.param("/api/v1/labels", {"match[]": "node_memory_usage_bytes"}, id="labels-match"),
    pytest.param("/api/v1/label/job/values", {}, id="values"),
    pytest.param("/api/v1/label/__name__/values", {}, id="values-name"),
    pytest.param("/api/v1/label/instance/values", {"match[]": 'http_requests_total{method="GET"}'},
                 id="values-match"),
    pytest.param("/api/v1/label/nope/values", {}, id="values-unknown"),
    pytest.param("/api/v1/query_exemplars", {"query": "http_requests_total", "start": E + "-60",
                                             "end": E}, id="exemplars"),
    pytest.param("/api/v1/format_query", {"query": 'sum(rate(foo{a="b"}[5m]))by(c)'},
                 id="format"),
    pytest.param("/api/v1/rules", {}, id="rules"),
    pytest.param("/api/v1/alerts", {}, id="alerts"),
    pytest.param("/api/v1/targets", {}, id="targets"),
    pytest.param("/api/v1/metadata", {}, id="metadata"),
    pytest.param("/api/v1/query", {"query": "sum(", "time": E}, id="error-parse"),
    pytest.param("/api/v1/query_range", {"query": "up", "start": E, "end": E + "-10",
                                         "step": "5"}, id="error-range"),
    pytest.param("/api/v1/series", {}, id="error-no-match"),
    pytest.param("/api/v1/query", {"query": "up", "time": "x"}, id="error-time"),
    # series, labels and label values: one bound only, unparsable bounds, matchers that select
    # nothing or match the empty string (end before start: see the fuzz's known classes)
    pytest.param("/api/v1/series", {"match[]": "http_requests_total", "start": E + "-600"},
                 id="series-start-only"),
    pytest.param("/api/v1/labels", {"end": E + "-3000"}, id="labels-end-only"),
    pytest.param("/api/v1/label/job/values", {"start": "x", "end": E}, id="values-bad-start"),
    pytest.param("/api/v1/labels", {"start": E, "end": ""}, id="labels-empty-end"),
    pytest.param("/api/v1/series", {"match[]": "http_requests_total", "end": "NaN"},
                 id="series-nan-end"),
    pytest.param("/api/v1/series", {"match[]": ["nothing", '{job=~"x|"}']}, id="series-nothing"),
    pytest.param("/api/v1/series", {"match[]": '{a=""}'}, id="series-empty-matcher"),
    pytest.param("/api/v1/labels", {"match[]": '{job=""}'}, id="labels-empty-matcher"),
    pytest.param("/api/v1/label/job/values", {"match[]": "sum("}, id="values-bad-match"),
    # end before start outside every block: nothing in both (inside: test_end_before_start)
    pytest.param("/api/v1/labels", {"start": E + "100000", "end": E + "50000"},
                 id="labels-reversed-after-data"),
    pytest.param("/api/v1/series", {"match[]": "http_requests_total", "start": E + "-4000",
                                    "end": E + "-5000"}, id="series-reversed-before-data"),
    pytest.param("/api/v1/label/job/values", {"match[]": "http_requests_total",
                                              "start": E + "-4000", "end": E + "-5000"},
                 id="values-reversed-before-data"),
    # targets/metadata's limit as Go's strconv.Atoi reads it (was Python's int())
    pytest.param("/api/v1/targets/metadata", {"limit": " 1"}, id="target-metadata-limit-space"),
    pytest.param("/api/v1/targets/metadata", {"limit": "1_0"},
                 id="target-metadata-limit-underscore"),
    pytest.param("/api/v1/targets/metadata", {"limit": "9999999999999999999"},
                 id="target-metadata-limit-overflow"),
    pytest.param("/api/v1/targets/metadata", {"limit": "+1"}, id="target-metadata-limit-sign"),
    # a step under 1 ms within 11,000 points: Prometheus evaluates at 0 ms intervals and
    # divides by zero (an execution error), after its parse and type checks
    pytest.param("/api/v1/query_range", {"query": "up", "start": E, "end": E + "5",
                                         "step": "0.0005"}, id="range-zero-interval"),
    pytest.param("/api/v1/query_range", {"query": "1", "start": E, "end": E, "step": "1e-9"},
                 id="range-zero-interval-one-point"),
    pytest.param("/api/v1/query_range", {"query": "up[1m]", "start": E, "end": E + "5",
                                         "step": "0.0005"}, id="range-zero-interval-type"),
]


@pytest.mark.parametrize(("path", "params"), SAME_DATA)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_same_answer(pair: Any, path: str, params: dict[str, Any], method: str) -> None:
    p = _params(params, pair.end_s)
    ours = httpx.request(method, pair.promlab.url + path,
                         **({"params": p} if method == "GET" else {"data": p}), timeout=60)
    theirs = httpx.request(method, pair.prometheus.url + path,
                           **({"params": p} if method == "GET" else {"data": p}), timeout=60)
    assert ours.status_code == theirs.status_code, ours.text
    if theirs.status_code == 405:  # a GET-only endpoint, in both
        return
    a, b = ours.json(), theirs.json()
    assert _shape(a) == _shape(b)
    assert _normalize(a) == _normalize(b)


def _multipart(fields: list[tuple[str, str]]) -> bytes:
    """A ``multipart/form-data`` body (boundary ``B``); a field named ``file`` is a file."""
    out = b""
    for k, v in fields:
        fn = '; filename="f"' if k == "file" else ""
        out += f'--B\r\nContent-Disposition: form-data; name="{k}"{fn}\r\n\r\n{v}\r\n'.encode()
    return out + b"--B--\r\n"


@pytest.mark.parametrize(("method", "url", "fields"), [
    # read at the first r.FormValue, after the URL's values, whatever the method
    pytest.param("POST", "/api/v1/query?time=7", [("query", "time()"), ("time", "5")],
                 id="query-url-first"),
    pytest.param("GET", "/api/v1/query", [("query", "time()"), ("time", "5")], id="query-get"),
    pytest.param("POST", "/api/v1/query_range", [("query", "1"), ("start", "1"), ("end", "2"),
                                                 ("step", "1")], id="range"),
    pytest.param("POST", "/api/v1/query", [("file", "1"), ("query", "2"), ("time", "1")],
                 id="file-part-not-a-value"),
    pytest.param("POST", "/api/v1/labels?match[]=node_memory_usage_bytes",
                 [("match[]", "http_requests_total")], id="labels-match-added"),
    pytest.param("GET", "/api/v1/label/job/values", [("match[]", "node_memory_usage_bytes")],
                 id="values-match"),
    pytest.param("POST", "/api/v1/format_query", [("query", "sum(up)by(a)")], id="format"),
    pytest.param("GET", "/api/v1/metadata", [("limit", "x")], id="metadata-limit"),
    pytest.param("GET", "/api/v1/targets/metadata", [("limit", "x")], id="target-metadata"),
    # never read where the handler calls r.ParseForm first, or reads the URL only
    pytest.param("POST", "/api/v1/series", [("match[]", "http_requests_total")],
                 id="series-no-match"),
    pytest.param("POST", "/api/v1/series?match[]=node_memory_usage_bytes",
                 [("match[]", "sum("), ("start", "x")], id="series-body-ignored"),
    pytest.param("GET", "/api/v1/rules", [("type", "x")], id="rules-url-only"),
    pytest.param("GET", "/federate", [("match[]", "sum(")], id="federate-body-ignored"),
])
def test_multipart_form(pair: Any, method: str, url: str, fields: list[tuple[str, str]]) -> None:
    """A ``multipart/form-data`` body (``curl -F``) is read as Go's ``r.FormValue`` reads it
    (was: ignored)."""
    kw: dict[str, Any] = {"content": _multipart(fields),
                          "headers": {"Content-Type": "multipart/form-data; boundary=B"}}
    ours = httpx.request(method, pair.promlab.url + url, timeout=60, **kw)
    theirs = httpx.request(method, pair.prometheus.url + url, timeout=60, **kw)
    assert ours.status_code == theirs.status_code, ours.text
    if url.startswith("/federate"):
        assert ours.text == theirs.text
        return
    assert _normalize(ours.json()) == _normalize(theirs.json())


@pytest.mark.parametrize("ctype", [
    pytest.param("application/x-www-form-urlencoded;;", id="bad-parameter"),
    pytest.param("application/x-www-form-urlencoded; charset", id="parameter-without-value"),
    pytest.param("application/x-www-form-urlencoded; a=1; A=2", id="duplicate-parameter"),
    pytest.param("application/x-www-form-urlencoded,text/plain", id="content-after-subtype"),
    pytest.param("a b/c", id="no-slash"),
    pytest.param("multipart/form-data; boundary=", id="multipart-empty-boundary"),
    pytest.param("application/x-www-form-urlencoded;", id="trailing-semicolon-fine"),
    pytest.param("text", id="type-without-subtype-fine"),
])
@pytest.mark.parametrize("path", ["/api/v1/series", "/api/v1/query?time=1"])
def test_form_content_type(pair: Any, ctype: str, path: str) -> None:
    """Go's ``mime.ParseMediaType`` errors in a form POST's type: ``series`` refuses the
    request with them ("error parsing form values: mime: ..."), the query endpoints read the
    body as far as Go does (was: the type cut at ";", its errors ignored)."""
    kw: dict[str, Any] = {"content": b"match[]=http_requests_total&query=2",
                          "headers": {"Content-Type": ctype}}
    ours = httpx.post(pair.promlab.url + path, timeout=60, **kw)
    theirs = httpx.post(pair.prometheus.url + path, timeout=60, **kw)
    assert ours.status_code == theirs.status_code, ours.text
    assert _normalize(ours.json()) == _normalize(theirs.json())


@pytest.mark.parametrize(("path", "params"), [
    pytest.param("/api/v1/series", {"match[]": "http_requests_total"}, id="series"),
    pytest.param("/api/v1/series", {}, id="series-no-match"),
    pytest.param("/api/v1/labels", {}, id="labels"),
    pytest.param("/api/v1/labels", {"match[]": "http_requests_total"}, id="labels-match"),
    pytest.param("/api/v1/label/job/values", {}, id="values"),
    pytest.param("/api/v1/label/job/values", {"match[]": "http_requests_total"},
                 id="values-match"),
])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_end_before_start(pair: Any, path: str, params: dict[str, Any], method: str) -> None:
    """``end`` before ``start`` inside the data is no error in Prometheus (2.42 as 3.x): it
    answers what its blocks and chunks spanning the reversed window hold; promlab selects
    nothing (the fuzz's known class ``block-granular-bounds``). Both answer success, promlab a
    part of Prometheus's list; errors (no ``match[]``) are the same."""
    p = _params({**params, "start": E + "-1000", "end": E + "-1100"}, pair.end_s)
    kw: dict[str, Any] = {"params": p} if method == "GET" else {"data": p}
    ours = httpx.request(method, pair.promlab.url + path, **kw, timeout=60)
    theirs = httpx.request(method, pair.prometheus.url + path, **kw, timeout=60)
    assert ours.status_code == theirs.status_code, ours.text
    if theirs.status_code == 405:  # label values: GET only, in both
        return
    a, b = ours.json(), theirs.json()
    if b["status"] == "error":
        assert a == b
        return
    assert a["status"] == b["status"] == "success"
    assert isinstance(a["data"], list) and isinstance(b["data"], list) and b["data"]
    assert all(x in b["data"] for x in a["data"])


@pytest.mark.parametrize("path", [
    "/api/v1/status/buildinfo", "/api/v1/status/runtimeinfo", "/api/v1/status/config",
    "/api/v1/status/tsdb", "/api/v1/alertmanagers", "/api/v1/status/flags",
])
def test_same_structure(pair: Any, path: str) -> None:
    ours = httpx.get(pair.promlab.url + path).json()
    theirs = httpx.get(pair.prometheus.url + path).json()
    assert ours["status"] == theirs["status"] == "success"
    a, b = ours["data"], theirs["data"]
    if path.endswith("flags"):
        assert set(a) - set(b) <= {"web.max-request-body-bytes"}
        return
    assert set(a) == set(b)
    for key in a:
        assert type(a[key]) is type(b[key]) or {type(a[key]), type(b[key])} <= {int, float}, key
        if isinstance(a[key], dict):
            assert set(a[key]) == set(b[key]), key


def test_tsdb_stats(pair: Any) -> None:
    # Prometheus counts its head only (empty after a backfill); promlab counts every series.
    data = httpx.get(pair.promlab.url + "/api/v1/status/tsdb").json()["data"]
    assert data["headStats"]["numSeries"] == pair.info.series
    assert data["headStats"]["maxTime"] == pair.info.spec.end_ms
    names = httpx.get(pair.prometheus.url + "/api/v1/label/__name__/values").json()["data"]
    assert {e["name"] for e in data["seriesCountByMetricName"]} == set(names)
    assert sum(e["value"] for e in data["seriesCountByMetricName"]) == pair.info.series


@pytest.mark.parametrize(("path", "params"), [
    pytest.param("/api/v1/label/%ff/values", {}, id="values-name-not-utf8"),
    pytest.param("/federate", {}, id="federate-no-match"),
    pytest.param("/federate", {"match[]": "sum("}, id="federate-bad-match"),
    pytest.param("/federate", {"match[]": "rate(x[5m])"}, id="federate-not-selector"),
])
def test_same_raw_answer(pair: Any, path: str, params: dict[str, Any]) -> None:
    """Status, content type and body byte for byte (paths sent as written, not re-quoted)."""
    ours = httpx.get(pair.promlab.url + path, params=params, timeout=60)
    theirs = httpx.get(pair.prometheus.url + path, params=params, timeout=60)
    assert ours.status_code == theirs.status_code, ours.text
    assert ours.headers["content-type"].split(";")[0] == theirs.headers["content-type"].split(";")[0]
    assert ours.text == theirs.text


def _raw(base: str, method: str, target: str) -> tuple[int, str | None, str | None, bytes]:
    """Status, ``Location``, content type and body of a request for ``target`` as written
    (no client-side path normalisation: ``//``, ``..`` reach the server)."""
    conn = http.client.HTTPConnection(base.removeprefix("http://"), timeout=30)
    try:
        body = b"" if method in ("POST", "PUT", "DELETE") else None
        conn.request(method, target, body=body)
        r = conn.getresponse()
        return r.status, r.getheader("Location"), r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "target"), [
    # Go's ServeMux: the cleaned path (301 whatever the method, the query kept)
    ("GET", "//api/v1/query?query=1"), ("POST", "/api/v1/../api/v1/query?query=1&time=2"),
    ("HEAD", "/api/v1/./query"), ("GET", "/a/../-/ready"),
    ("GET", "/api/v1/label/job%2F/values"),
    ("GET", "//api/v1/label/%C3%A9/values"), ("OPTIONS", "//api/v1/query"),
    ("GET", "/api/v1/query_range//"), ("GET", "/api/v1"), ("POST", "/api/v1?x=1"),
    # httprouter: trailing slash and case (301 for GET, 307 otherwise; the API loses its prefix)
    ("GET", "/api/v1/query/?query=1"), ("POST", "/api/v1/series/"),
    ("GET", "/api/v1/label/job/values/?a=%3C&b=%22"), ("GET", "/api/v1/QUERY?a=%27&b=1"),
    ("GET", "/api/v1/Label/Job/VALUES"), ("GET", "/api/v1/label/"), ("GET", "/api/v1/query%2F"),
    ("PUT", "/api/v1/admin/tsdb/snapshot/"), ("GET", "/-/READY"), ("HEAD", "/-/ready/"),
    ("POST", "/-/reload/"), ("GET", "/-/quit/"), ("GET", "/federate/"), ("GET", "/Metrics/"),
    # no redirect: no route of the method, or nothing close
    ("POST", "/-/ready/"), ("HEAD", "/-/reload/"), ("HEAD", "/metrics/"), ("PUT", "/api/v1/query/"),
    ("GET", "/api/v1/admin/tsdb/snapshot/"), ("OPTIONS", "/-/ready/"), ("GET", "/api/v1/label/job"),
    # the answers around them
    ("HEAD", "/-/ready"), ("HEAD", "/-/healthy"), ("HEAD", "/metrics"), ("GET", "/-/reload"),
])
def test_same_redirect(pair: Any, method: str, target: str) -> None:
    """Paths Go's ServeMux cleans and httprouter redirects: status, ``Location``, content type
    and body as Prometheus's (``/`` and the UI pages are promlab's own: it has no UI)."""
    ours = _raw(pair.promlab.url, method, target)
    theirs = _raw(pair.prometheus.url, method, target)
    assert ours == theirs
