"""``/federate`` byte for byte as a real Prometheus 2.42 answers it over the same fresh samples
(federation only looks back 5 minutes from now: both receive them by remote write), with
external labels: a series' own labels, then the external ones it lacks, ``instance=""`` among
them; ``-0`` written ``0``; a native histogram left out (was: all labels merged in name order,
no ``instance=""``, ``-0``, a histogram written as ``NaN``)."""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import Session
from promlab.api import Server
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
    ]))
    # and a native histogram, left out of the text format
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="fed_h")
    h = ts.histograms.add(count_int=3, sum=1.5, schema=0, zero_threshold=1e-128,
                          zero_count_int=1, timestamp=now - 1000)
    h.positive_spans.add(offset=0, length=2)
    h.positive_deltas.extend([1, 0])
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
    pytest.param({"match[]": '{__name__=~"fed_[fh]"}'}, id="stale-and-histogram"),
])
def test_federate_same_text(bases: tuple[str, str], params: dict[str, Any]) -> None:
    ours, theirs = (httpx.get(base + "/federate", params=params, timeout=30,
                              headers={"Accept-Encoding": "identity"}) for base in bases)
    assert (ours.status_code, ours.headers["content-type"]) == \
        (theirs.status_code, theirs.headers["content-type"])
    assert ours.text == theirs.text
    assert bool(ours.text) == (params["match[]"] not in ("fed_c", '{job="ext"}',
                                                         '{__name__=~"fed_[fh]"}'))
