"""Regressions found by the differential API fuzzer (test_api_fuzz_realprom.py): each answer
below is what Prometheus gives (2.42, captured; or the 3.x source where 3.x changed it), checked
on promlab alone over the small memory store of conftest.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

BAD_TIME = "invalid parameter \"time\": Invalid time value for 'time': cannot parse "
POINTS = ("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
          "query resolution (?step=XX)")
END_BEFORE = 'invalid parameter "end": end timestamp must not be before start time'


def _get(client: httpx.Client, url: str) -> httpx.Response:
    """GET with the query string sent as written (escapes and oddities kept)."""
    return client.get(url)


@pytest.mark.parametrize(("url", "error"), [
    pytest.param("/api/v1/query?query=up&time=%20100", BAD_TIME + '" 100" to a valid timestamp',
                 id="time-leading-space"),
    pytest.param("/api/v1/query?query=up&time=2023-11-14T22:13:20.1234567891Z",
                 BAD_TIME + '"2023-11-14T22:13:20.1234567891Z" to a valid timestamp',
                 id="time-ten-fraction-digits"),
    pytest.param("/api/v1/query?query=up&time=%00", BAD_TIME + '"\\x00" to a valid timestamp',
                 id="time-quoted-as-go"),
    pytest.param("/api/v1/query_range?query=up&end=600&step=15",
                 'invalid parameter "start": cannot parse "" to a valid timestamp',
                 id="range-start-required"),
    pytest.param("/api/v1/query_range?query=up&start=0&end=600&step=1e-9", POINTS,
                 id="range-step-in-ns"),
    pytest.param("/api/v1/query_range?query=up&start=0&end=600&step=%2060",
                 'invalid parameter "step": cannot parse " 60" to a valid duration',
                 id="range-step-leading-space"),
    pytest.param("/api/v1/query_range?query=sum(&start=0&end=600&step=%2060",
                 'invalid parameter "step": cannot parse " 60" to a valid duration',
                 id="range-params-before-query"),
    pytest.param("/api/v1/query_range?query=up&start=1970-01-01T00:10:00.000000001Z&end=600"
                 "&step=15", END_BEFORE, id="range-order-in-ns"),
    pytest.param("/api/v1/query_range?query=up&start=Inf&end=600&step=15", POINTS,
                 id="range-start-inf"),
    pytest.param("/api/v1/query_range?query=up&start=0&end=%2BInf&step=15", END_BEFORE,
                 id="range-end-inf"),
    pytest.param("/api/v1/labels?match[]={}",
                 "match[] must contain at least one non-empty matcher", id="labels-empty-match"),
    pytest.param("/api/v1/labels?match[]={}&match[]=sum(", '1:4: parse error: unexpected "("',
                 id="labels-all-parsed-first"),
    pytest.param("/api/v1/series?match[]={}", 'invalid parameter "match[]": match[] must '
                 "contain at least one non-empty matcher", id="series-empty-match"),
    pytest.param("/api/v1/query_exemplars?query=up&start=600&end=0",
                 "end timestamp must not be before start timestamp", id="exemplars-order"),
    pytest.param("/api/v1/query_exemplars?query=sum(&start=0&end=600",
                 "1:5: parse error: unclosed left parenthesis", id="exemplars-parse"),
    pytest.param("/api/v1/series?match[]=up&time=1%zz",
                 'error parsing form values: invalid URL escape "%zz"', id="series-bad-escape"),
    pytest.param("/api/v1/series?match[]=up&a;b=1&t=%zz",
                 "error parsing form values: invalid semicolon separator in query",
                 id="series-semicolon"),
    pytest.param("/api/v1/query?query=%ff&time=600",
                 "invalid parameter \"query\": 1:1: parse error: unexpected character: '\ufffd'",
                 id="query-raw-byte"),
    # Prometheus 3.x (web/api/v1/api.go): limits and lookback_delta.
    pytest.param("/api/v1/query?query=up&limit=1.5",
                 'invalid parameter "limit": strconv.Atoi: parsing "1.5": invalid syntax',
                 id="limit-atoi"),
    pytest.param("/api/v1/metadata?limit=x", "limit must be a number", id="metadata-limit"),
    pytest.param("/api/v1/metadata?limit_per_metric=x", "limit_per_metric must be a number",
                 id="metadata-limit-per-metric"),
    pytest.param("/api/v1/status/tsdb?limit=x", "limit must be a positive number",
                 id="tsdb-limit-not-a-number"),
    pytest.param("/api/v1/status/tsdb?limit=0", "limit must be a positive number",
                 id="tsdb-limit-zero"),
    pytest.param("/api/v1/status/tsdb?limit=10001", "limit must not exceed 10000",
                 id="tsdb-limit-too-large"),
    pytest.param("/api/v1/query?query=up&lookback_delta=x",
                 'error parsing lookback delta duration: cannot parse "x" to a valid duration',
                 id="lookback-delta"),
])
def test_bad_data(client: httpx.Client, url: str, error: str) -> None:
    r = _get(client, url)
    assert r.status_code == 400, r.text
    assert r.json() == {"status": "error", "errorType": "bad_data", "error": error}


@pytest.mark.parametrize(("url", "result"), [
    pytest.param("/api/v1/query?query=time()&time=Inf", [-9223372036.854, "-9223372036.854"],
                 id="time-inf-as-go"),
    pytest.param("/api/v1/query?query=time()&time=NaN", [-9223372036.854, "-9223372036.854"],
                 id="time-nan-as-go"),
    pytest.param("/api/v1/query?query=time()&time=0x1p4", [16, "16"], id="time-hex-float"),
    pytest.param("/api/v1/query?query=time()&time=1_000", [1000, "1000"], id="time-underscores"),
    pytest.param("/api/v1/query?query=time()&time=-0.0005", [-0.001, "-0.001"],
                 id="time-rounds-half-away"),
    pytest.param("/api/v1/query?query=time()&time=1970-01-01T00:10:00.999999999Z",
                 [600.999, "600.999"], id="rfc3339-truncated-to-ms"),
    pytest.param("/api/v1/query?query=time()&query=1&time=600", [600, "600"],
                 id="first-of-repeated-param"),
    pytest.param("/api/v1/format_query?query=1&query=2", None, id="format-first-param"),
])
def test_scalar(client: httpx.Client, url: str, result: Any) -> None:
    r = _get(client, url)
    assert r.status_code == 200, r.text
    if result is None:
        assert r.json()["data"] == "1"
    else:
        assert r.json()["data"] == {"resultType": "scalar", "result": result}


def test_form_body_before_url(client: httpx.Client) -> None:
    r = client.post("/api/v1/query?query=1", data={"query": "time()", "time": "600"})
    assert r.json()["data"]["result"] == [600, "600"]


def test_timeout_nan_times_out(client: httpx.Client) -> None:
    r = _get(client, "/api/v1/query?query=time()&time=600&timeout=NaN")
    assert r.status_code == 503
    assert r.json()["errorType"] == "timeout"


def test_exemplars_without_selector_no_content(client: httpx.Client) -> None:
    r = _get(client, "/api/v1/query_exemplars?query=1&start=0&end=600")
    assert (r.status_code, r.content) == (204, b"")


def test_stats_value_warning(client: httpx.Client) -> None:
    body = _get(client, "/api/v1/query?query=up&time=600&stats=x").json()
    assert "stats" in body["data"]
    assert body["warnings"] == ['value "x" for parameter "stats" is deprecated and will be '
                                'rejected in the next major release, use "true" or "all"']
    assert "warnings" not in _get(client, "/api/v1/query?query=up&time=600&stats=all").json()


@pytest.mark.parametrize(("lookback", "n"), [
    pytest.param("", 2, id="default"),  # the last samples are at 600 s
    pytest.param("1m", 0, id="one-minute"),
    pytest.param("0", 2, id="zero-is-default"),
])
def test_lookback_delta(client: httpx.Client, lookback: str, n: int) -> None:
    r = _get(client, f"/api/v1/query?query=up&time=700&lookback_delta={lookback}")
    assert len(r.json()["data"]["result"]) == n


@pytest.mark.parametrize(("method", "url", "status", "allow", "body"), [
    pytest.param("HEAD", "/api/v1/query", 405, "GET, OPTIONS, POST", b"", id="head-query"),
    pytest.param("PUT", "/api/v1/query", 405, "GET, OPTIONS, POST", b"Method Not Allowed\n",
                 id="put-query"),
    pytest.param("HEAD", "/api/v1/label/job/values", 405, "GET, OPTIONS", b"",
                 id="head-values"),
    pytest.param("OPTIONS", "/api/v1/query", 204, None, b"", id="options-query"),
    pytest.param("OPTIONS", "/api/v1/nope", 204, None, b"", id="options-any-api-path"),
    pytest.param("POST", "/api/v1/nope", 404, None, b"404 page not found\n", id="not-found"),
    pytest.param("OPTIONS", "/federate", 200, "GET, OPTIONS", b"", id="options-federate"),
    pytest.param("POST", "/federate", 405, "GET, OPTIONS", b"Method Not Allowed\n",
                 id="post-federate"),
    pytest.param("GET", "/federate?match[]=up&time=1%2", 400, None,
                 b'error parsing form values: invalid URL escape "%2"\n', id="federate-escape"),
])
def test_methods(client: httpx.Client, method: str, url: str, status: int, allow: str | None,
                 body: bytes) -> None:
    r = client.request(method, url)
    assert r.status_code == status
    assert r.headers.get("allow") == allow
    assert r.content == body


ZERO_INTERVAL = "unexpected error: runtime error: integer divide by zero"


@pytest.mark.parametrize(("url", "status", "kind", "error"), [
    # A step under 1 ms that passes the 11,000-points check: Prometheus evaluates at 0 ms
    # intervals and divides by zero (was: promlab evaluated at 1 ms steps, 200).
    pytest.param("/api/v1/query_range?query=up&start=0&end=5&step=0.0005", 422, "execution",
                 ZERO_INTERVAL, id="half-ms-step"),
    pytest.param("/api/v1/query_range?query=1%2B1&start=600&end=600&step=1e-9", 422,
                 "execution", ZERO_INTERVAL, id="ns-step-one-point"),
    # ... after what Prometheus checks before evaluating
    pytest.param("/api/v1/query_range?query=sum(&start=0&end=5&step=0.0005", 400, "bad_data",
                 'invalid parameter "query": 1:5: parse error: unclosed left parenthesis',
                 id="parse-first"),
    pytest.param("/api/v1/query_range?query=up[5m]&start=0&end=5&step=0.0005", 400,
                 "bad_data", 'invalid expression type "range vector" for range query, must be '
                 "Scalar or instant Vector", id="type-first"),
    pytest.param("/api/v1/query_range?query=up&start=0&end=5&step=0.0005&timeout=0s", 503,
                 "timeout", "query timed out in query queue", id="expired-timeout-first"),
])
def test_zero_interval(client: httpx.Client, url: str, status: int, kind: str,
                       error: str) -> None:
    r = _get(client, url)
    assert r.status_code == status, r.text
    assert r.json() == {"status": "error", "errorType": kind, "error": error}


def test_tsdb_limit(client: httpx.Client) -> None:
    data = _get(client, "/api/v1/status/tsdb?limit=1").json()["data"]
    lists = [v for v in data.values() if isinstance(v, list)]
    assert lists and all(len(v) == 1 for v in lists), data
    assert len(_get(client, "/api/v1/status/tsdb?limit=").json()["data"]["seriesCountByLabelValuePair"]) > 1
