"""One scrape loop against the local fault server: samples, labels, limits, staleness, errors."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from promlab.config import load_config
from promlab.config.httpclient import build_client
from promlab.discovery.static import StaticProvider
from promlab.model import Labels, Matcher, MatchType, stale_mask
from promlab.scrape.loop import Batch, ScrapeLoop, ScrapeResult
from promlab.scrape.targets import build_targets
from promlab.storage import MemoryStorage

from .conftest import CA, FaultServer


def run_scrapes(server: FaultServer, store: MemoryStorage, job: dict[str, Any], times: list[int],
                between: Any = None) -> tuple[ScrapeLoop, list[ScrapeResult]]:
    cfg = load_config({"scrape_configs": [{"job_name": "j", "scrape_interval": "1s",
                                           "static_configs": [{"targets": [server.address]}], **job}]})
    sc = cfg.scrape_configs[0]
    targets, _ = build_targets(StaticProvider(sc.static_configs).groups, sc)

    async def commit(batch: Batch) -> None:
        app = store.appender()
        for part in batch.parts:
            app.append_batch(*part)
        app.commit()

    async def main() -> tuple[ScrapeLoop, list[ScrapeResult]]:
        async with build_client(sc.http, timeout_s=sc.scrape_timeout_ms / 1000) as client:
            lp = ScrapeLoop(targets[0], sc, client=client, commit=commit)
            out = []
            for i, ts in enumerate(times):
                if between is not None:
                    between(i)
                out.append(await lp.scrape_once(ts))
            return lp, out

    return asyncio.run(main())


def series(store: MemoryStorage, name: str) -> dict[Labels, list[tuple[int, float]]]:
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", name)])
    out = {}
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        out[ls] = list(zip(ts.tolist(), vs.tolist(), strict=True))
    return out


def value(store: MemoryStorage, name: str) -> list[float]:
    (pts,) = series(store, name).values()
    return [v for _, v in pts]


def test_samples_and_report_series(fault_server: FaultServer) -> None:
    store = MemoryStorage()
    _, (r,) = run_scrapes(fault_server, store, {"metrics_path": "/ok", "params": {"n": ["4"]}}, [1000])
    assert r.ok and r.scraped == 4
    got = series(store, "m_total")
    assert Labels({"__name__": "m_total", "i": "3", "job": "j", "instance": fault_server.address}) in got
    assert value(store, "up") == [1.0]
    assert value(store, "scrape_samples_scraped") == [4.0]
    assert value(store, "scrape_samples_post_metric_relabeling") == [4.0]
    assert value(store, "scrape_series_added") == [4.0]
    assert 0 < value(store, "scrape_duration_seconds")[0] < 1
    hdr = fault_server.state.headers["/ok"]
    assert "application/openmetrics-text" in hdr["Accept"]
    assert hdr["X-Prometheus-Scrape-Timeout-Seconds"] == "1"


def test_staleness_markers_when_series_disappear(fault_server: FaultServer) -> None:
    store = MemoryStorage()

    def flip(i: int) -> None:
        fault_server.state.series = ["a", "b", "c"] if i == 0 else ["a", "c"]

    run_scrapes(fault_server, store, {"metrics_path": "/toggle"}, [1000, 2000, 3000], between=flip)
    (b,) = series(store, "toggle_b").values()
    assert [t for t, _ in b] == [1000, 2000]
    assert math.isnan(b[1][1]) and stale_mask([b[1][1]])[0]
    (a,) = series(store, "toggle_a").values()
    assert a == [(1000, 1.0), (2000, 1.0), (3000, 1.0)]


def test_failed_scrape_marks_everything_stale(fault_server: FaultServer) -> None:
    store = MemoryStorage()

    def flip(i: int) -> None:
        fault_server.state.series = ["a"] if i == 0 else []

    cfg = {"metrics_path": "/toggle", "sample_limit": 0}
    _lp, results = run_scrapes(fault_server, store, cfg, [1000, 2000], between=flip)
    assert all(r.ok for r in results)
    (a,) = series(store, "toggle_a").values()
    assert stale_mask([a[-1][1]])[0]


def test_honor_labels_false_renames_conflicts(fault_server: FaultServer) -> None:
    store = MemoryStorage()
    run_scrapes(fault_server, store, {"metrics_path": "/conflict"}, [1000])
    (ls,) = series(store, "c")
    assert ls == Labels({"__name__": "c", "job": "j", "instance": fault_server.address,
                         "exported_job": "e", "exported_exported_job": "theirs", "exported_instance": "x"})


def test_honor_labels_true_keeps_scraped(fault_server: FaultServer) -> None:
    store = MemoryStorage()
    run_scrapes(fault_server, store, {"metrics_path": "/conflict", "honor_labels": True}, [1000])
    (ls,) = series(store, "c")
    assert ls == Labels({"__name__": "c", "job": "theirs", "instance": "x", "exported_job": "e"})


@pytest.mark.parametrize(("honor", "want"), [pytest.param(True, 1000, id="honored"),
                                             pytest.param(False, 5000, id="ignored")])
def test_honor_timestamps(fault_server: FaultServer, honor: bool, want: int) -> None:
    store = MemoryStorage()
    run_scrapes(fault_server, store, {"metrics_path": "/timestamps", "honor_timestamps": honor}, [5000])
    ((t, _),) = next(iter(series(store, "with_ts").values()))
    assert t == want


def test_metric_relabeling_drops_and_rewrites(fault_server: FaultServer) -> None:
    store = MemoryStorage()
    job = {"metrics_path": "/ok", "params": {"n": ["5"]}, "metric_relabel_configs": [
        {"source_labels": ["i"], "regex": "[0-2]", "action": "drop"},
        {"source_labels": ["i"], "target_label": "idx", "replacement": "n$1"},
        {"regex": "i", "action": "labeldrop"},
    ]}
    _, (r,) = run_scrapes(fault_server, store, job, [1000])
    assert (r.scraped, r.post_relabel) == (5, 2)
    assert sorted(ls["idx"] for ls in series(store, "m_total")) == ["n3", "n4"]
    assert value(store, "scrape_samples_post_metric_relabeling") == [2.0]


def test_params_go_into_url(fault_server: FaultServer) -> None:
    store = MemoryStorage()
    job = {"metrics_path": "/params", "params": {"module": ["a"], "x": ["1"]},
           "relabel_configs": [{"target_label": "__param_module", "replacement": "b"}]}
    run_scrapes(fault_server, store, job, [1000])
    assert sorted((ls["name"], ls["value"]) for ls in series(store, "param")) == [("module", "b"), ("x", "1")]


FAULTS = [
    pytest.param({"metrics_path": "/500"}, "server returned HTTP status 500 Internal Server Error", id="http-500"),
    pytest.param({"metrics_path": "/garbage"}, "line 1", id="garbage"),
    pytest.param({"metrics_path": "/slow"}, "context deadline exceeded", id="timeout"),
    pytest.param({"metrics_path": "/trickle"}, "context deadline exceeded", id="trickle"),
    pytest.param({"metrics_path": "/big", "body_size_limit": "64KB"}, "body size limit exceeded", id="body-size"),
    pytest.param({"metrics_path": "/ok", "sample_limit": 2}, "sample limit exceeded", id="sample-limit"),
    pytest.param({"metrics_path": "/ok", "label_limit": 2}, "label_limit exceeded", id="label-limit"),
    pytest.param({"metrics_path": "/longlabels", "label_value_length_limit": 100},
                 "label_value_length_limit exceeded", id="label-value-length"),
    pytest.param({"metrics_path": "/ok", "label_name_length_limit": 3},
                 "label_name_length_limit exceeded", id="label-name-length"),
    pytest.param({"metrics_path": "/basic"}, "401 Unauthorized", id="basic-auth-missing"),
    pytest.param({"metrics_path": "/bearer", "bearer_token": "wrong"}, "401 Unauthorized", id="bearer-wrong"),
]


@pytest.mark.parametrize(("job", "error"), FAULTS)
def test_faults_set_up_zero_and_error(fault_server: FaultServer, job: dict[str, Any], error: str) -> None:
    store = MemoryStorage()
    lp, (r,) = run_scrapes(fault_server, store, job, [1000])
    assert not r.ok
    assert error in r.error and error in lp.last_error
    assert lp.health == "down"
    assert value(store, "up") == [0.0]
    assert not any(ls.name == "m_total" for ls in series(store, "m_total"))


@pytest.mark.parametrize("job", [
    pytest.param({"metrics_path": "/basic", "basic_auth": {"username": "user", "password": "secret"}}, id="basic"),
    pytest.param({"metrics_path": "/bearer", "authorization": {"credentials": "s3cret"}}, id="bearer"),
    pytest.param({"metrics_path": "/gzip"}, id="gzip"),
])
def test_auth_and_gzip_succeed(fault_server: FaultServer, job: dict[str, Any]) -> None:
    store = MemoryStorage()
    _, (r,) = run_scrapes(fault_server, store, job, [1000])
    assert r.ok, r.error
    assert value(store, "up") == [1.0]


def test_secret_files(fault_server: FaultServer, tmp_path: Any) -> None:
    (tmp_path / "pw").write_text("secret\n")
    store = MemoryStorage()
    job = {"metrics_path": "/basic", "basic_auth": {"username": "user", "password_file": str(tmp_path / "pw")}}
    _, (r,) = run_scrapes(fault_server, store, job, [1000])
    assert r.ok, r.error


def test_connection_refused(fault_server: FaultServer) -> None:
    from benchmarks.realprom import free_port

    store = MemoryStorage()
    server = FaultServer("", f"127.0.0.1:{free_port()}", fault_server.state, fault_server.server)
    _lp, (r,) = run_scrapes(server, store, {}, [1000])
    assert "connection refused" in r.error


@pytest.mark.parametrize(("tls", "ok", "error"), [
    pytest.param("ca", True, "", id="trusted-ca"),
    pytest.param("none", False, "x509: certificate signed by unknown authority", id="unknown-authority"),
    pytest.param("wrong-name", False, "x509: Hostname mismatch", id="wrong-host-name"),
    pytest.param("insecure", True, "", id="insecure-skip-verify"),
])
def test_tls(tls_server: FaultServer, tls_ca: CA, tls: str, ok: bool, error: str) -> None:
    tls_config = {"ca": {"ca_file": str(tls_ca.ca_file)}, "none": {},
                  "wrong-name": {"ca_file": str(tls_ca.ca_file), "server_name": "wrong.example"},
                  "insecure": {"insecure_skip_verify": True}}[tls]
    store = MemoryStorage()
    job = {"scheme": "https", "metrics_path": "/ok", "tls_config": tls_config}
    _lp, (r,) = run_scrapes(tls_server, store, job, [1000])
    assert r.ok == ok, r.error
    assert error in r.error


def test_honor_labels_explicit_empty_label_blocks_target_label(fault_server: FaultServer) -> None:
    """Pushgateway writes ``instance=""`` for groups without one; Prometheus then stores no instance."""
    from promlab.exposition import Parser

    page = Parser().parse(b'push_time_seconds{instance="",job="batch"} 1\nx{a="q\\"",b=""} 2\ny{a="b"} 3\n')
    named = {page.series[r].pairs: names for r, names in page.empty_labels.items()}
    assert named == {(("__name__", "push_time_seconds"), ("job", "batch")): ("instance",),
                     (("__name__", "x"), ("a", 'q"')): ("b",)}


def test_series_churn_resets_cache_and_keeps_staleness(fault_server: FaultServer) -> None:
    store = MemoryStorage()

    def churn(i: int) -> None:
        fault_server.state.series = [f"{i}_{k}" for k in range(3000)]

    times = [1000, 2000, 3000, 4000, 5000]
    lp, results = run_scrapes(fault_server, store, {"metrics_path": "/toggle"}, times, between=churn)
    assert all(r.ok for r in results)
    assert len(lp.cache) == 3000  # reset after the 4th scrape pushed it past 2 × page + 5k
    for i in range(4):  # every generation of series ended with a marker at the next scrape
        (pts,) = series(store, f"toggle_{i}_7").values()
        assert pts[-1][0] == times[i + 1] and stale_mask([pts[-1][1]])[0]
