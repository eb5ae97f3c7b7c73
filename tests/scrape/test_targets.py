"""Targets from groups (PopulateLabels), SD file parsing, schedule offsets, target_limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import promlab.scrape as scrape
from promlab.config import load_config
from promlab.discovery.file import read_file_groups
from promlab.discovery.group import TargetGroup
from promlab.errors import ConfigError
from promlab.model import Labels
from promlab.scrape.loop import ScrapeLoop
from promlab.scrape.targets import build_targets
from promlab.storage import MemoryStorage


def job(**kw: object) -> object:
    return load_config({"scrape_configs": [{"job_name": "j", "scrape_interval": "15s", **kw}]}).scrape_configs[0]


@pytest.mark.parametrize(("address", "scheme", "want_url"), [
    pytest.param("host:9100", "http", "http://host:9100/metrics", id="has-port"),
    pytest.param("host", "http", "http://host/metrics", id="http-no-default-port"),
    pytest.param("host", "https", "https://host/metrics", id="https-no-default-port"),
    pytest.param("[::1]", "http", "http://[::1]/metrics", id="ipv6-no-default-port"),
    pytest.param("[::1]:9", "http", "http://[::1]:9/metrics", id="ipv6-port"),
])
def test_address_kept_as_given(address: str, scheme: str, want_url: str) -> None:
    """Prometheus 3.x adds no default port (2.x made ``host`` ``host:80``)."""
    (t,), _ = build_targets([TargetGroup(({"__address__": address},), {})], job(scheme=scheme))
    assert t.labels["__address__"] == address
    assert t.labels["instance"] == address
    assert t.url == want_url


def test_any_scheme_without_port() -> None:
    """2.x refused a portless address with a scheme other than http(s); 3.x keeps the target."""
    sc = job(relabel_configs=[{"target_label": "__scheme__", "replacement": "ftp"}])
    (t,), dropped = build_targets([TargetGroup(({"__address__": "host"},), {})], sc)
    assert not dropped
    assert t.url == "ftp://host/metrics"


def test_populate_labels_like_prometheus() -> None:
    sc = job(metrics_path="/probe", params={"module": ["icmp"], "b": ["2"]},
             relabel_configs=[{"source_labels": ["__meta_x"], "target_label": "x"},
                              {"source_labels": ["__address__"], "target_label": "__param_target"},
                              {"target_label": "__address__", "replacement": "prober:9115"}])
    group = TargetGroup(({"__address__": "10.0.0.1:80", "team": "t"},), {"team": "g", "__meta_x": "m"}, "s:0")
    (t,), dropped = build_targets([group], sc)
    assert not dropped
    assert t.discovered_labels == Labels({
        "__address__": "10.0.0.1:80", "team": "t", "__meta_x": "m", "job": "j", "__metrics_path__": "/probe",
        "__scheme__": "http", "__scrape_interval__": "15s", "__scrape_timeout__": "10s",
        "__param_module": "icmp", "__param_b": "2"})
    assert t.sample_labels == Labels({"job": "j", "instance": "prober:9115", "team": "t", "x": "m"})
    assert t.url == "http://prober:9115/probe?b=2&module=icmp&target=10.0.0.1%3A80"


def test_target_param_label_beats_job_params() -> None:
    """Prometheus 3.x: a target's own ``__param_<k>`` is kept over the job's ``params`` (2.x overrode it)."""
    sc = job(params={"module": ["icmp"], "b": ["2", "3"]})
    group = TargetGroup(({"__address__": "h:1", "__param_module": "http"},), {})
    (t,), _ = build_targets([group], sc)
    assert t.discovered_labels["__param_module"] == "http"
    assert t.url == "http://h:1/metrics?b=2&b=3&module=http"


def test_dropped_and_invalid_targets() -> None:
    sc = job(relabel_configs=[{"source_labels": ["__address__"], "regex": "drop.*", "action": "drop"},
                              {"source_labels": ["bad"], "regex": "yes", "target_label": "__scrape_timeout__",
                               "replacement": "1m"}])
    groups = [TargetGroup(({"__address__": "dropme:1"}, {"__address__": "a:1", "bad": "yes"},
                           {"__address__": "b:1"}), {})]
    active, dropped = build_targets(groups, sc)
    assert [t.labels["__address__"] for t in active] == ["b:1"]
    assert [(d.discovered_labels["__address__"], bool(d.error)) for d in dropped] == [("dropme:1", False),
                                                                                     ("a:1", True)]
    assert "scrape timeout cannot be greater than scrape interval" in dropped[1].error


@pytest.mark.parametrize(("labels", "want"), [
    pytest.param({"__address__": "h:1?x"}, "http://h:1%3Fx/metrics", id="host-escaped-like-go-url"),
    pytest.param({"__address__": "ünï:1"}, "http://%C3%BCn%C3%AF:1/metrics", id="non-ascii-host"),
    pytest.param({"__address__": "h:1", "__metrics_path__": "a b?%é"}, "http://h:1/a%20b%3F%25%C3%A9",
                 id="path-escaped-and-slash-added"),
    pytest.param({"__address__": "h:1", "__metrics_path__": "/a;b,c=$$d:e@f&g+h"}, "http://h:1/a;b,c=$d:e@f&g+h",
                 id="path-keeps-sub-delims"),
    pytest.param({"__address__": "h:1", "__metrics_path__": "*"}, "http://h:1/*", id="path-star-as-go"),
    pytest.param({"__address__": "h:1", "__metrics_path__": "/a*b!"}, "http://h:1/a%2Ab%21", id="path-star-escaped"),
    pytest.param({"__address__": "h:1", "__scheme__": "", "__param_q": "a b/c"}, "//h:1/metrics?q=a+b%2Fc",
                 id="no-scheme-and-query-escape"),
])
def test_scrape_url_like_prometheus(labels: dict[str, str], want: str) -> None:
    relabel = [{"target_label": k, "replacement": v} if v else {"target_label": k, "regex": "", "replacement": ""}
               for k, v in labels.items()]
    (t,), _ = build_targets([TargetGroup(({"__address__": "placeholder:1"},), {})], job(relabel_configs=relabel))
    assert t.url == want


@pytest.mark.parametrize(("labels", "error"), [
    pytest.param({"__scrape_interval__": "1x"}, 'error parsing scrape interval: unknown unit "x" in duration "1x"',
                 id="interval"),
    pytest.param({"__scrape_timeout__": "abc"}, 'error parsing scrape timeout: not a valid duration string: "abc"',
                 id="timeout"),
    pytest.param({"__scrape_interval__": "0s"}, "scrape interval cannot be 0", id="interval-zero"),
])
def test_duration_errors_name_the_label(labels: dict[str, str], error: str) -> None:
    _, (d,) = build_targets([TargetGroup(({"__address__": "h:1"},), labels)], job())
    assert d.error == error


def test_duplicate_target_shows_last_discovered_labels() -> None:
    groups = [TargetGroup(({"__address__": "h:1"},), {"__meta_x": "first"}, "0"),
              TargetGroup(({"__address__": "h:2"}, {"__address__": "h:1"}), {"__meta_x": "second"}, "1")]
    active, _ = build_targets(groups, job())
    assert [(t.labels["__address__"], t.discovered_labels["__meta_x"]) for t in active] == [("h:1", "second"),
                                                                                             ("h:2", "second")]


@pytest.mark.parametrize(("name", "text"), [
    pytest.param("t.json", '[{"targets": ["a:1", "b:2"], "labels": {"env": "x"}}]', id="json"),
    pytest.param("t.yml", "- targets: [a:1, b:2]\n  labels: {env: x}\n", id="yaml"),
])
def test_sd_files(tmp_path: Path, name: str, text: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    (g,) = read_file_groups(str(p))
    assert g.targets == ({"__address__": "a:1"}, {"__address__": "b:2"})
    assert g.labels == {"env": "x", "__meta_filepath": str(p)}
    assert g.source == f"{p}:0"


@pytest.mark.parametrize("text", ['{"targets": []}', '[{"targets": ["a/b"]}]', '[{"labels": {"a-b": "x"}}]',
                                  '[{"targets": [], "foo": 1}]', "[{"])
def test_bad_sd_files(tmp_path: Path, text: str) -> None:
    p = tmp_path / "t.json"
    p.write_text(text)
    with pytest.raises(ConfigError):
        read_file_groups(str(p))


def test_offsets_spread_and_stable() -> None:
    sc = job()
    targets, _ = build_targets([TargetGroup(tuple({"__address__": f"h{i}:1"} for i in range(200)), {})], sc)
    offsets = [ScrapeLoop(t, sc, client=None, commit=print, jitter_seed=7).offset_ms() for t in targets]
    again = [ScrapeLoop(t, sc, client=None, commit=print, jitter_seed=7).offset_ms() for t in targets]
    assert offsets == again
    assert all(0 <= o < 15_000 for o in offsets)
    assert len(set(offsets)) > 190 and max(offsets) - min(offsets) > 12_000
    lp = ScrapeLoop(targets[0], sc, client=None, commit=print, jitter_seed=7)
    nxt = lp.next_scheduled_ms(1_000_000)
    assert nxt > 1_000_000 and nxt % 15_000 == lp.offset_ms()


def test_target_limit_fails_all_targets() -> None:
    cfg = {"scrape_configs": [{"job_name": "j", "scrape_interval": "1s", "target_limit": 1,
                               "static_configs": [{"targets": ["127.0.0.1:1", "127.0.0.1:2"]}]}]}
    with scrape.start(cfg, data=MemoryStorage()) as h:
        deadline = time.monotonic() + 5
        while not (h.targets()["scrapes"] >= 1).all() and time.monotonic() < deadline:
            time.sleep(0.05)
        df = h.targets()
    assert (df["health"] == "down").all()
    assert df["last_error"].str.contains(r"target_limit exceeded \(number of targets: 2, limit: 1\)").all()


def test_api_lists_dropped_not_invalid_targets() -> None:
    """Prometheus logs a target whose labels are invalid and lists only relabel-dropped ones."""
    import httpx

    from promlab import Session
    from promlab.api import Server

    cfg = {"scrape_configs": [{
        "job_name": "j", "scrape_interval": "1h",
        "static_configs": [{"targets": ["127.0.0.1:1", "dropme:1"]},
                           {"targets": ["127.0.0.1:2"], "labels": {"__scrape_timeout__": "2h"}}],
        "relabel_configs": [{"source_labels": ["__address__"], "regex": "drop.*", "action": "drop"}]}]}
    with Session(MemoryStorage()) as s:
        s.scrape.start(cfg)
        with Server(s, listen="127.0.0.1:0", enable_lifecycle=False) as srv:
            data = httpx.get(f"{srv.url}/api/v1/targets", params={"state": "any"}, timeout=30).json()["data"]
    assert [t["discoveredLabels"]["__address__"] for t in data["droppedTargets"]] == ["dropme:1"]
    assert [t["labels"]["instance"] for t in data["activeTargets"]] == ["127.0.0.1:1"]
