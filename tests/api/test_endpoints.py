"""Every endpoint of the API over a small memory store: shapes, status codes, error types."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from promlab import Session
from promlab.api import Server

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "reference" / "prometheus-api-examples"

# Captured error responses of Prometheus 2.42 whose request does not depend on its data.
ERROR_EXAMPLES = [
    "error_parse_unclosed_paren", "error_parse_unknown_function", "error_parse_bad_selector",
    "error_parse_range_on_instant", "error_parse_unexpected_char", "error_parse_empty_query",
    "error_missing_query_param", "error_bad_time_param", "error_range_string_expr",
    "error_range_too_many_points", "error_range_end_before_start", "error_range_zero_step",
    "error_range_missing_step", "error_bad_timeout_param", "error_series_no_match",
    "error_series_bad_matcher",
]


def _example(name: str) -> dict:
    path = EXAMPLES / f"{name}.json"
    if not path.exists():
        pytest.fail(f"missing reference example {path}")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", [pytest.param(n, id=n.removeprefix("error_"))
                                  for n in ERROR_EXAMPLES])
def test_errors_as_prometheus(client: httpx.Client, name: str) -> None:
    ex = _example(name)
    req = ex["request"]
    path = req["url"].split("19090", 1)[1]
    r = client.request(req["method"], path, params=req["params"] or None)
    assert r.status_code == ex["http_status"]
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "error"
    assert body["errorType"] == ex["body"]["errorType"]
    assert body["error"] == ex["body"]["error"]


def test_unknown_endpoint(client: httpx.Client) -> None:
    assert client.get("/api/v1/nonexistent").status_code == 404


@pytest.mark.parametrize(("method", "params", "want"), [
    pytest.param("GET", {"query": "up", "time": "600"}, 2, id="get"),
    pytest.param("POST", {"query": "up", "time": "600"}, 2, id="post-form"),
    pytest.param("GET", {"query": 'up{instance="a:1"}', "time": "1970-01-01T00:10:00Z"}, 1,
                 id="rfc3339"),
    pytest.param("GET", {"query": "up", "time": "600", "limit": "1"}, 1, id="limit"),
])
def test_query(client: httpx.Client, method: str, params: dict, want: int) -> None:
    if method == "POST":
        r = client.post("/api/v1/query", data=params)
    else:
        r = client.get("/api/v1/query", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["data"]["resultType"] == "vector"
    assert len(body["data"]["result"]) == want
    first = body["data"]["result"][0]
    assert first["value"][0] == 600 and isinstance(first["value"][1], str)
    if "limit" in params:
        assert body["warnings"] == ["results truncated due to limit"]
    else:
        assert "warnings" not in body


@pytest.mark.parametrize(("query", "rtype", "result"), [
    pytest.param("1 + 1", "scalar", [600, "2"], id="scalar"),
    pytest.param('"hi"', "string", [600, "hi"], id="string"),
    pytest.param("scalar(nothing)", "scalar", [600, "NaN"], id="nan"),
    pytest.param("-1/0", "scalar", [600, "-Inf"], id="neg-inf"),
])
def test_query_scalars(client: httpx.Client, query: str, rtype: str, result: list) -> None:
    body = client.get("/api/v1/query", params={"query": query, "time": "600"}).json()
    assert body["data"] == {"resultType": rtype, "result": result}


def test_query_matrix_and_stats(client: httpx.Client) -> None:
    body = client.get("/api/v1/query", params={"query": 'up{instance="a:1"}[30s]', "time": "600",
                                               "stats": "all"}).json()
    data = body["data"]
    assert data["resultType"] == "matrix"
    assert data["result"][0]["values"] == [[585, "1"], [600, "1"]]
    assert set(data["stats"]) == {"timings", "samples"}
    assert set(data["stats"]["timings"]) == {"evalTotalTime", "resultSortTime",
                                             "queryPreparationTime", "innerEvalTime",
                                             "execQueueTime", "execTotalTime"}


@pytest.mark.parametrize(("step", "points"), [
    pytest.param("60", 11, id="seconds"), pytest.param("1m", 11, id="duration"),
    pytest.param("150.5", 4, id="float"),
])
def test_query_range(client: httpx.Client, step: str, points: int) -> None:
    r = client.get("/api/v1/query_range", params={"query": "sum(up)", "start": "0", "end": "600",
                                                  "step": step})
    data = r.json()["data"]
    assert data["resultType"] == "matrix"
    assert data["result"][0]["metric"] == {}
    assert len(data["result"][0]["values"]) == points


def test_query_warning(client: httpx.Client) -> None:
    body = client.get("/api/v1/query", params={"query": "rate(up[5m])", "time": "600"}).json()
    assert body["status"] == "success"
    assert any("might not be a counter" in m for m in body.get("infos", []))


def test_timeout(client: httpx.Client) -> None:
    # A query needing far longer than 1ms on any machine: 11,000 steps over a subquery.
    r = client.get("/api/v1/query_range", params={
        "query": "max_over_time(rate(http_requests_total[1m])[10m:1s])", "start": "0",
        "end": "10999", "step": "1", "timeout": "1ms"})
    assert r.status_code == 503
    assert r.json()["errorType"] == "timeout"


def test_execution_error(client: httpx.Client) -> None:
    r = client.get("/api/v1/query", params={"query": "up + ignoring(instance) up", "time": "600"})
    assert r.status_code == 422
    assert r.json()["errorType"] == "execution"


@pytest.mark.parametrize(("path", "params", "data"), [
    pytest.param("/api/v1/series", {"match[]": ["up", "http_requests_total"], "limit": "3"}, [
        {"__name__": "http_requests_total", "code": "200", "instance": "a:1", "job": "api"},
        {"__name__": "http_requests_total", "code": "200", "instance": "b:2", "job": "api"},
        {"__name__": "up", "instance": "a:1", "job": "node"}], id="series-limit"),
    pytest.param("/api/v1/series", {"match[]": 'up{instance="b:2"}', "start": "0", "end": "60"},
                 [{"__name__": "up", "instance": "b:2", "job": "node"}], id="series-range"),
    pytest.param("/api/v1/series", {"match[]": "up", "start": "700", "end": "800"}, [],
                 id="series-outside"),
    pytest.param("/api/v1/labels", {}, ["__name__", "code", "instance", "job"], id="labels"),
    pytest.param("/api/v1/labels", {"match[]": "up"}, ["__name__", "instance", "job"],
                 id="labels-match"),
    pytest.param("/api/v1/label/job/values", {}, ["api", "node"], id="values"),
    pytest.param("/api/v1/label/job/values", {"match[]": "up"}, ["node"], id="values-match"),
    pytest.param("/api/v1/label/__name__/values", {"limit": "1"}, ["http_requests_total"],
                 id="values-limit"),
    pytest.param("/api/v1/label/nope/values", {}, [], id="values-unknown"),
    pytest.param("/api/v1/metadata", {}, {}, id="metadata"),
    pytest.param("/api/v1/query_exemplars", {"query": "up", "start": "0", "end": "60"}, [],
                 id="exemplars"),
    pytest.param("/api/v1/format_query", {"query": "sum(rate(foo{a=\"b\"}[5m]))by(c)"},
                 'sum by (c) (rate(foo{a="b"}[5m]))', id="format"),
    pytest.param("/api/v1/rules", {}, {"groups": []}, id="rules"),
    pytest.param("/api/v1/alerts", {}, {"alerts": []}, id="alerts"),
    pytest.param("/api/v1/targets", {}, {"activeTargets": [], "droppedTargets": []},
                 id="targets"),
])
def test_get(client: httpx.Client, path: str, params: dict, data: object) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == data


def test_labels_post(client: httpx.Client) -> None:
    r = client.post("/api/v1/labels", data={"match[]": "http_requests_total"})
    assert r.json()["data"] == ["__name__", "code", "instance", "job"]


def test_parse_query(client: httpx.Client) -> None:
    data = client.get("/api/v1/parse_query", params={"query": "sum by (job) (up) > 1"}).json()["data"]
    assert data["type"] == "binaryExpr" and data["op"] == ">"
    assert data["lhs"]["type"] == "aggregation" and data["lhs"]["grouping"] == ["job"]
    assert data["lhs"]["expr"]["matchers"] == [{"name": "__name__", "value": "up", "type": "="}]
    assert data["rhs"] == {"type": "numberLiteral", "val": "1"}


@pytest.mark.parametrize("path", [
    "/api/v1/status/buildinfo", "/api/v1/status/config", "/api/v1/status/flags",
    "/api/v1/status/runtimeinfo", "/api/v1/status/tsdb", "/api/v1/alertmanagers",
])
def test_status(client: httpx.Client, path: str) -> None:
    name = path.rsplit("/", 1)[1]
    r = client.get(path)
    assert r.status_code == 200
    ours = r.json()["data"]
    ref = _example(f"status_{name}" if "status" in path else name)["body"]["data"]
    if name == "flags":
        assert {"query.lookback-delta", "web.enable-lifecycle"} <= set(ours)
        assert all(isinstance(v, str) for v in ours.values())
    else:
        assert set(ours) == set(ref)


def test_tsdb_counts(client: httpx.Client) -> None:
    data = client.get("/api/v1/status/tsdb").json()["data"]
    assert data["headStats"]["numSeries"] == 4
    assert data["seriesCountByMetricName"] == [{"name": "http_requests_total", "value": 2},
                                               {"name": "up", "value": 2}]


def test_federate(mem_session: Session, client: httpx.Client) -> None:
    # The store's samples end at 600 s: federate "now" is then, through the querier's clock.
    from promlab.api.federate import federate_text
    from promlab.api.params import parse_match_list

    text = federate_text(mem_session, parse_match_list(["up"]), time_ms=600_000)
    assert text == ('# TYPE up untyped\n'
                    'up{instance="a:1",job="node"} 1 600000\n'
                    'up{instance="b:2",job="node"} 0 600000\n')
    assert federate_text(mem_session, parse_match_list(["up"]), time_ms=1_000_000) == ""
    r = client.get("/federate", params={"match[]": "up"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    # As Prometheus's handler: no match[] selects nothing; a bad one is a plain-text 400.
    r = client.get("/federate")
    assert (r.status_code, r.text) == (200, "")
    r = client.get("/federate", params={"match[]": "sum("})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain")
    assert r.text == '1:4: parse error: unexpected "("\n'


@pytest.mark.parametrize(("path", "status"), [
    pytest.param("/api/v1/label/%ff/values", 400, id="not-utf8"),
    pytest.param("/api/v1/label/%C3%BC/values", 200, id="utf8-name"),
    pytest.param("/api/v1/label/U__a_2e_b/values", 200, id="escaped-name"),
])
def test_label_values_name_checks(client: httpx.Client, path: str, status: int) -> None:
    r = client.get(path)
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["errorType"] == "bad_data"
        assert r.json()["error"] == 'invalid label name: "\\xff"'


def test_health_and_metrics(client: httpx.Client) -> None:
    assert client.get("/-/healthy").text == "Prometheus Server is Healthy.\n"
    assert client.get("/-/ready").text == "Prometheus Server is Ready.\n"
    client.get("/api/v1/query", params={"query": "up"})
    text = client.get("/metrics").text
    assert 'prometheus_http_requests_total{code="200",handler="/api/v1/query"}' in text
    assert 'promlab_engine_queries_total{kind="instant",outcome="ok"}' in text


@pytest.mark.parametrize("path", ["/-/reload", "/-/quit"])
def test_lifecycle_off_by_default(client: httpx.Client, path: str) -> None:
    r = client.post(path)
    assert r.status_code == 403
    assert r.text == "Lifecycle API is not enabled."


def test_admin_off_by_default(client: httpx.Client) -> None:
    r = client.post("/api/v1/admin/tsdb/delete_series", params={"match[]": "up"})
    assert r.status_code == 503
    assert r.json() == {"status": "error", "errorType": "unavailable",
                        "error": "admin APIs disabled"}


def test_lifecycle_enabled(mem_session: Session) -> None:
    calls: list[str] = []
    with Server(mem_session, listen="127.0.0.1:0", enable_lifecycle=True,
                reload=lambda: calls.append("reload"), quit=lambda: calls.append("quit")) as srv:
        assert httpx.post(srv.url + "/-/reload").status_code == 200
        assert httpx.put(srv.url + "/-/quit").status_code == 200
        assert httpx.get(srv.url + "/-/reload").status_code == 405
    assert calls == ["reload", "quit"]


def test_session_serve_and_close(mem_session: Session) -> None:
    srv = mem_session.serve("127.0.0.1:0")
    assert mem_session.server is srv
    assert httpx.get(srv.url + "/-/ready").status_code == 200
    with pytest.raises(Exception, match="already serving"):
        mem_session.serve("127.0.0.1:0")
    mem_session.close()
    assert not srv.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(srv.url + "/-/ready")
