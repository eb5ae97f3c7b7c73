"""The push endpoint against the real Pushgateway: the same pushes (prometheus_client's
push_to_gateway, pushadd_to_gateway, delete_from_gateway) to both, then what each exposes on
``/metrics`` compared, sample by sample."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import realprom
from promlab import MemoryStorage, Session
from promlab.api import Server

pytestmark = [pytest.mark.realprom]

JOBS = {"batch", "backup/nightly", "other"}
PUSH_TIMES = {"push_time_seconds", "push_failure_time_seconds"}


def exposed(url: str) -> list[str]:
    """The pushed samples on ``url/metrics``: sorted ``name{labels} value`` lines, empty label
    values dropped (the Pushgateway adds ``instance=""``), push times as set/zero."""
    text = httpx.get(url + "/metrics", timeout=30).text
    out = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = {k: v for k, v in s.labels.items() if v != ""}
            if labels.get("job") not in JOBS:
                continue
            value = ("set" if s.value > 0 else "zero") if s.name in PUSH_TIMES else \
                repr(float(s.value))
            out.append(f"{s.name}{sorted(labels.items())} {value}")
    return sorted(out)


@functools.cache  # built once: both gateways get the same bytes (_created times)
def _registry_a() -> CollectorRegistry:
    reg = CollectorRegistry()
    Gauge("batch_last_success", "Last success.", registry=reg).set(1_700_000_000.5)
    c = Counter("batch_records", "Records.", ["kind"], registry=reg)
    c.labels("in").inc(7)
    c.labels("out").inc(3)
    h = Histogram("batch_seconds", "Durations.", buckets=(0.5, 2.0), registry=reg)
    for v in (0.1, 1.0, 3.0):
        h.observe(v)
    return reg


@functools.cache  # built once: both gateways get the same bytes (_created times)
def _registry_b() -> CollectorRegistry:
    reg = CollectorRegistry()
    Gauge("batch_errors", "Errors.", registry=reg).set(2)
    Summary("batch_size", "Sizes.", registry=reg).observe(42)
    return reg


@functools.cache  # built once: both gateways get the same bytes (_created times)
def _registry_c() -> CollectorRegistry:
    reg = CollectorRegistry()
    Gauge("batch_last_success", "Last success.", registry=reg).set(5)
    return reg


Step = Callable[[str], Any]

STEPS: list[tuple[str, Step]] = [
    ("push", lambda gw: push_to_gateway(gw, job="batch", registry=_registry_a(),
                                        grouping_key={"instance": "host/1"})),
    ("pushadd-merges", lambda gw: pushadd_to_gateway(gw, job="batch", registry=_registry_b(),
                                                     grouping_key={"instance": "host/1"})),
    ("base64-job-and-labels", lambda gw: push_to_gateway(
        gw, job="backup/nightly", registry=_registry_c(),
        grouping_key={"path": "/var/tmp", "note": "a b/ü"})),
    ("other-job", lambda gw: pushadd_to_gateway(gw, job="other", registry=_registry_c())),
    ("push-replaces", lambda gw: push_to_gateway(gw, job="batch", registry=_registry_c(),
                                                 grouping_key={"instance": "host/1"})),
    ("delete", lambda gw: delete_from_gateway(gw, job="other")),
    ("delete-base64", lambda gw: delete_from_gateway(
        gw, job="backup/nightly", grouping_key={"path": "/var/tmp", "note": "a b/ü"})),
]


@pytest.fixture(scope="module")
def gateways() -> Iterator[tuple[str, str]]:
    realprom.require_binary("pushgateway")
    with Session(MemoryStorage(), progress=False) as s, \
            Server(s, listen="127.0.0.1:0") as srv, realprom.pushgateway() as pgw:
        yield srv.url, pgw.url


def test_same_exposition_after_each_push(gateways: tuple[str, str]) -> None:
    ours, theirs = gateways
    seen = []
    for name, step in STEPS:
        for url in (ours, theirs):
            step(url)
        a, b = exposed(ours), exposed(theirs)
        assert a == b, name
        seen.append(len(a))
    # The sequence did what it says: the merge added samples, the replace and deletes removed.
    assert seen[1] > seen[0] and seen[4] < seen[3] and seen[-1] < seen[-2] and seen[-1] > 0
