"""``/federate`` byte for byte as a real Prometheus 2.42 answers it over the same fresh samples
(federation only looks back 5 minutes from now: both receive them by remote write), with
external labels: a series' own labels, then the external ones it lacks, ``instance=""`` among
them; ``-0`` written ``0``; a native histogram left out (was: all labels merged in name order,
no ``instance=""``, ``-0``, a histogram written as ``NaN``). Then the negotiated formats: the
length-delimited ``MetricFamily`` protobuf byte for byte (native and gauge histograms, ±Inf,
NaN, ``-0`` kept, a name split into families where floats and histograms alternate), the protobuf
text forms message for message, the ``Content-Type`` Prometheus picks for an ``Accept`` header,
and a real Prometheus scraping promlab's ``/federate`` with ``honor_labels``."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import text_format

from benchmarks import realprom
from promlab import Session
from promlab.api import Server
from promlab.exposition.proto import metrics_pb2 as mpb
from promlab.exposition.protobuf import iter_delimited
from promlab.remote.codec import compress
from promlab.remote.proto import prometheus_remote_pb2 as pb

from .test_remote_write import v1_request

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

STALE = struct.unpack(">d", bytes.fromhex("7ff0000000000002"))[0]
CONFIG = {"global": {"external_labels": {"job": "ext", "region": "eu"}}}


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    realprom.require_binary("prometheus")
    now = int(time.time() * 1000)
    req = pb.WriteRequest.FromString(v1_request([
        ({"__name__": "fed_a", "job": "j", "instance": "i1"}, [(now - 10_000, 1.5),
                                                               (now - 1000, 2.0)]),
        ({"__name__": "fed_a", "job": "j", "instance": "i2"}, [(now - 2000, float("nan"))]),
        ({"__name__": "fed_b", "x": 'q"u\\o\nte'}, [(now - 3000, 1e21), (now - 500, -0.0)]),
        ({"__name__": "fed_c"}, [(now - 400_000, 5.0)]),  # older than the lookback
        ({"__name__": "fed_d", "a": "1"}, [(now - 2500, 123456789.125)]),
        ({"__name__": "fed_e", "job": "other", "zz": "x"}, [(now - 1000, 0.1)]),
        ({"__name__": "fed_f"}, [(now - 3000, 1.0), (now - 1000, STALE)]),  # ended
        ({"__name__": "fed_i", "s": "+"}, [(now - 1500, float("inf"))]),
        ({"__name__": "fed_i", "s": "-"}, [(now - 1500, float("-inf"))]),
        ({"__name__": "fed_m", "k": "a"}, [(now - 1200, 7.0)]),
        ({"__name__": "fed_m", "k": "c"}, [(now - 1200, 8.0)]),
    ]))
    # and a native histogram, left out of the text format
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="fed_h")
    h = ts.histograms.add(count_int=3, sum=1.5, schema=0, zero_threshold=1e-128,
                          zero_count_int=1, timestamp=now - 1000)
    h.positive_spans.add(offset=0, length=2)
    h.positive_deltas.extend([1, 0])
    # a gauge histogram and a histogram between two float series of one name (fed_m k="b")
    for name, extra, hint in (("fed_g", {}, 3), ("fed_m", {"k": "b"}, 0)):
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value=name)
        for k, v in extra.items():
            ts.labels.add(name=k, value=v)
        h = ts.histograms.add(count_float=2.5, sum=-1.0, schema=1, zero_threshold=0.001,
                              zero_count_float=0.5, reset_hint=hint, timestamp=now - 900)
        h.negative_spans.add(offset=-2, length=1)
        h.negative_counts.extend([1.0])
        h.positive_spans.add(offset=1, length=1)
        h.positive_counts.extend([1.0])
    body = compress(req.SerializeToString())
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}
    root = tmp_path_factory.mktemp("federate")
    with Session(str(root / "promlab"), progress=False) as session:
        session.set_config(CONFIG)
        with Server(session, listen="127.0.0.1:0") as ours, \
                realprom.prometheus(config=CONFIG, data_dir=Path(root / "prom"),
                                    extra_args=["--web.enable-remote-write-receiver",
                                                "--enable-feature=native-histograms"]) as theirs:
            for base in (ours.url, theirs.url):
                r = httpx.post(base + "/api/v1/write", content=body, headers=headers)
                assert r.status_code == 204, r.text
            yield ours.url, theirs.url


@pytest.mark.parametrize("params", [
    pytest.param({"match[]": '{__name__=~"fed_.*"}'}, id="all"),
    pytest.param({"match[]": ["fed_b", "fed_a"]}, id="two-selectors"),
    pytest.param({"match[]": '{job="ext"}'}, id="external-label-not-matched"),
    pytest.param({"match[]": "fed_c"}, id="too-old"),
    pytest.param({"match[]": '{__name__=~"fed_[fhg]"}'}, id="stale-and-histogram"),
])
def test_federate_same_text(bases: tuple[str, str], params: dict[str, Any]) -> None:
    ours, theirs = (httpx.get(base + "/federate", params=params, timeout=30,
                              headers={"Accept-Encoding": "identity"}) for base in bases)
    assert (ours.status_code, ours.headers["content-type"]) == \
        (theirs.status_code, theirs.headers["content-type"])
    assert ours.text == theirs.text
    assert bool(ours.text) == (params["match[]"] not in ("fed_c", '{job="ext"}',
                                                         '{__name__=~"fed_[fhg]"}'))


PROTO = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding="


def _get(base: str, params: dict[str, Any], accept: str) -> httpx.Response:
    return httpx.get(base + "/federate", params=params, timeout=30,
                     headers={"Accept-Encoding": "identity", "Accept": accept})


@pytest.mark.parametrize("params", [
    pytest.param({"match[]": '{__name__=~"fed_.*"}'}, id="all"),
    pytest.param({"match[]": ["fed_m", "fed_i", "fed_a"]}, id="float-histogram-float"),
    pytest.param({"match[]": '{__name__=~"fed_[fhg]"}'}, id="stale-and-histograms"),
    pytest.param({"match[]": "fed_c"}, id="too-old"),
])
def test_federate_same_delimited_protobuf(bases: tuple[str, str], params: dict[str, Any]) -> None:
    ours, theirs = (_get(base, params, PROTO + "delimited") for base in bases)
    assert (ours.status_code, ours.headers["content-type"]) == \
        (theirs.status_code, theirs.headers["content-type"])
    assert theirs.headers["content-type"] == \
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
    # message for message first (a readable diff), then byte for byte
    assert [str(m) for m in iter_delimited(ours.content)] == \
        [str(m) for m in iter_delimited(theirs.content)]
    assert ours.content == theirs.content


@pytest.mark.parametrize("encoding", ["text", "compact-text"])
def test_federate_protobuf_text_forms_same_messages(bases: tuple[str, str], encoding: str) -> None:
    # Go's printers differ from Python's in spacing, brackets and float spelling: compare what a
    # parser reads (one family, since the forms have no delimiters between messages)
    params = {"match[]": "fed_m"}
    ours, theirs = (_get(base, params, PROTO + encoding) for base in bases)
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    assert ours.headers["content-type"].endswith(f"encoding={encoding}")
    ours_mf, theirs_mf = (text_format.Merge(r.text, mpb.MetricFamily()) for r in (ours, theirs))
    assert ours_mf == theirs_mf


@pytest.mark.parametrize("accept", [
    pytest.param(PROTO + "text;q=0.5, " + PROTO + "delimited;q=0.7", id="by-q"),
    pytest.param("*/*;q=0.9, " + PROTO + "compact-text;q=0.2", id="wildcard-first"),
    pytest.param("application/openmetrics-text;version=1.0.0", id="openmetrics"),
    pytest.param("text/plain;version=1.0.0, " + PROTO + "delimited;q=0.1", id="text-wrong-version"),
    pytest.param(PROTO + "json", id="unknown-encoding"),
    pytest.param("application/vnd.google.protobuf;encoding=delimited", id="no-proto"),
    pytest.param("", id="empty"),
    pytest.param(PROTO + "delimited;q=abc, text/plain;q=0.1", id="bad-q"),
    pytest.param("Text/Plain, " + PROTO + "delimited;q=0.1", id="case-sensitive-types"),
    pytest.param("text/html, application/vnd.google.protobuf ; "
                 "proto=io.prometheus.client.MetricFamily ; encoding=delimited", id="spaces"),
])
def test_federate_negotiates_as_prometheus(bases: tuple[str, str], accept: str) -> None:
    params = {"match[]": "fed_d"}
    ours, theirs = (_get(base, params, accept) for base in bases)
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    if not theirs.headers["content-type"].endswith("text"):  # the protobuf text forms differ
        assert ours.content == theirs.content


def test_prometheus_scrapes_federate_with_honor_labels(bases: tuple[str, str],
                                                      tmp_path: Path) -> None:
    """A Prometheus with native histograms on asks for protobuf first: it reads our delimited
    answer, keeps the federated labels (honor_labels) and the histograms."""
    host = bases[0].removeprefix("http://")  # the scraper asks promlab's /federate only
    config = {"global": {"scrape_interval": "1s"}, "scrape_configs": [{
        "job_name": "federate", "honor_labels": True, "metrics_path": "/federate",
        "params": {"match[]": ['{__name__=~"fed_[abgm]"}']},
        "static_configs": [{"targets": [host]}]}]}
    with realprom.prometheus(config=config, data_dir=tmp_path,
                             extra_args=["--enable-feature=native-histograms"]) as scraper:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            up = scraper.query("up")["result"]
            if up and scraper.query('fed_m{k="c"}')["result"]:
                break
            time.sleep(0.25)
        assert up and up[0]["value"][1] == "1"
        got = {tuple(sorted(r["metric"].items())): r for r in
               scraper.query('{__name__=~"fed_[abgm]"}')["result"]}
    assert (("__name__", "fed_a"), ("instance", "i1"), ("job", "j"), ("region", "eu")) in got
    # instance="" is honored too: the label is unset, not the target's
    assert got[(("__name__", "fed_b"), ("job", "ext"), ("region", "eu"),
                ("x", 'q"u\\o\nte'))]["value"][1] == "-0"
    assert len([k for k in got if k[0] == ("__name__", "fed_m")]) == 3
    hist = got[(("__name__", "fed_m"), ("job", "ext"), ("k", "b"), ("region", "eu"))]
    assert hist["histogram"][1]["count"] == "2.5"
    assert got[(("__name__", "fed_g"), ("job", "ext"),
                ("region", "eu"))]["histogram"][1]["sum"] == "-1"
