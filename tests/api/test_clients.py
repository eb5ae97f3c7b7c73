"""Real clients against promlab's API: promtool, prometheus-api-client, and a real Prometheus
federating from promlab; each compared with the same client against a real Prometheus."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import Labels, MemoryStorage, Session

pytestmark = [pytest.mark.realprom, pytest.mark.slow]


def _promtool(*args: str) -> str:
    exe = realprom.require_binary("promtool")
    out = subprocess.run([exe, "query", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("args", [
    pytest.param(["instant", "{url}", 'http_requests_total{method="GET"}', "--time={end}"],
                 id="instant"),
    pytest.param(["instant", "{url}", "sum by (job) (rate(http_requests_total[5m]))",
                  "--time={end7}"], id="instant-rate"),
    pytest.param(["range", "{url}", "sum by (job) (http_requests_total)", "--start={start}",
                  "--end={end}", "--step=1m"], id="range"),
    # promtool's default series/labels range is now ± 9999h: the dataset lies before it.
    pytest.param(["series", "{url}", "--match=http_requests_total", "--match=up",
                  "--start={start}", "--end={end}"], id="series"),
    pytest.param(["labels", "{url}", "job", "--start={start}", "--end={end}"], id="labels"),
    pytest.param(["instant", "{url}", "http_requests_total", "--time={end}", "-o", "json"],
                 id="instant-json"),
])
def test_promtool_query(pair: Any, args: list[str]) -> None:
    end = pair.end_s

    def run(url: str) -> str:
        subs = {"{url}": url, "{end}": str(end), "{end7}": str(end - 7),
                "{start}": str(end - 600)}
        out = []
        for a in args:
            for k, v in subs.items():
                a = a.replace(k, v)
            out.append(a)
        return _promtool(*out)

    ours = run(pair.promlab.url)
    assert ours.strip(), "promtool printed nothing"
    assert ours == run(pair.prometheus.url)


# prometheus-api-client's own pandas call, not ours.
@pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")
def test_prometheus_api_client(pair: Any) -> None:
    from prometheus_api_client import MetricRangeDataFrame, PrometheusConnect

    end = datetime.fromtimestamp(pair.end_s, UTC)
    answers = []
    for url in (pair.promlab.url, pair.prometheus.url):
        pc = PrometheusConnect(url=url, disable_ssl=True)
        assert pc.check_prometheus_connection()
        instant = pc.custom_query('sum by (job) (http_requests_total)',
                                  params={"time": pair.end_s})
        ranged = pc.get_metric_range_data("http_requests_total",
                                          label_config={"method": "GET"},
                                          start_time=end - timedelta(minutes=10), end_time=end,
                                          chunk_size=timedelta(minutes=5))
        names = pc.all_metrics()
        df = MetricRangeDataFrame(ranged)
        answers.append((instant, ranged, names, df))
    (i1, r1, n1, df1), (i2, r2, n2, df2) = answers
    assert i1 == i2 and i1
    assert n1 == n2
    assert len(r1) == len(r2) > 0
    assert sorted(map(str, r1)) == sorted(map(str, r2))
    assert len(df1) == len(df2) > 0
    assert sorted(df1["value"].astype(float)) == sorted(df2["value"].astype(float))


def test_prometheus_federates_from_promlab() -> None:
    realprom.require_binary("prometheus")
    st = MemoryStorage()
    now_ms = int(time.time() * 1000)
    ts = [now_ms - 60_000 + i * 15_000 for i in range(4)]  # the last one is "now"
    st.add_series(Labels({"__name__": "fed_metric", "job": "src", "instance": "i1"}), ts,
                  [1.0, 2.0, 3.0, 42.5])
    st.add_series(Labels({"__name__": "other_metric", "job": "src", "instance": "i1"}), ts,
                  [1.0] * 4)
    with Session(st) as session, session.serve("127.0.0.1:0") as server:
        config = {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{
                "job_name": "federate", "honor_labels": True, "metrics_path": "/federate",
                "params": {"match[]": ["fed_metric"]},
                "static_configs": [{"targets": [f"127.0.0.1:{server.port}"]}],
            }],
        }
        with realprom.prometheus(config=config) as prom:
            deadline = time.monotonic() + 30
            got: list[Any] = []
            while time.monotonic() < deadline and not got:
                got = prom.query("fed_metric")["result"]
                time.sleep(0.5)
            assert got, prom.log()[-2000:]
            assert got[0]["metric"] == {"__name__": "fed_metric", "job": "src",
                                        "instance": "i1"}
            assert got[0]["value"][1] == "42.5"
            assert prom.query("other_metric")["result"] == []
            up = prom.query('up{job="federate"}')["result"]
            assert up and up[0]["value"][1] == "1"


def test_grafana_calls(pair: Any) -> None:
    """The requests Grafana's Prometheus data source makes when it connects and explores."""
    url = pair.promlab.url
    end = pair.end_s
    calls = [
        ("GET", "/api/v1/status/buildinfo", {}),
        ("POST", "/api/v1/query", {"query": "1+1", "time": str(end)}),
        ("POST", "/api/v1/labels", {"start": str(end - 3600), "end": str(end)}),
        ("GET", "/api/v1/label/__name__/values", {"start": str(end - 3600), "end": str(end)}),
        ("POST", "/api/v1/series", {"match[]": "http_requests_total", "start": str(end - 3600),
                                    "end": str(end)}),
        ("GET", "/api/v1/metadata", {}),
        ("POST", "/api/v1/query_range", {"query": "rate(http_requests_total[5m])",
                                         "start": str(end - 3600), "end": str(end),
                                         "step": "60"}),
        ("POST", "/api/v1/query_exemplars", {"query": "http_requests_total",
                                             "start": str(end - 3600), "end": str(end)}),
        ("POST", "/api/v1/format_query", {"query": "sum(up)by(job)"}),
        ("GET", "/api/v1/rules", {}),
    ]
    for method, path, params in calls:
        kw = {"params": params} if method == "GET" else {"data": params}
        r = httpx.request(method, url + path, timeout=30, **kw)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["status"] == "success"
