"""``Accept`` negotiation for ``/federate`` as Prometheus 2.42's ``expfmt.Negotiate`` (common
v0.39.0 and its goautoneg ordering); the same headers against a real Prometheus are in
test_federate_vs_prometheus.py."""

from __future__ import annotations

import pytest

from promlab.exposition.accept import ACCEPT_FORMATS, negotiate_accept

PROTO = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding="


@pytest.mark.parametrize(("accept", "expected"), [
    pytest.param(None, "text", id="none"),
    pytest.param("", "text", id="empty"),
    pytest.param(PROTO + "delimited", "proto-delimited", id="delimited"),
    pytest.param(PROTO + "text", "proto-text", id="proto-text"),
    pytest.param(PROTO + "compact-text", "proto-compact-text", id="compact-text"),
    pytest.param(f"{PROTO}delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,"
                 "text/plain;version=0.0.4;q=0.4,*/*;q=0.1", "proto-delimited", id="scrape-2.42"),
    pytest.param("text/plain;version=0.0.4;q=0.3, " + PROTO + "delimited;q=0.7",
                 "proto-delimited", id="higher-q-later"),
    pytest.param("text/plain;version=1.0.0, " + PROTO + "text;q=0.1", "proto-text",
                 id="text-wrong-version-skipped"),
    pytest.param(PROTO + "json, text/plain", "text", id="unknown-encoding"),
    pytest.param("application/vnd.google.protobuf;encoding=delimited", "text", id="no-proto"),
    pytest.param("*/*, " + PROTO + "delimited;q=0.2", "proto-delimited",
                 id="wildcard-sorted-last-despite-q"),
    pytest.param(PROTO + "delimited;q=abc, text/plain;q=0.1", "text", id="bad-q-is-zero"),
    pytest.param("Text/Plain, " + PROTO + "delimited;q=0.1", "proto-delimited",
                 id="case-sensitive-types"),
    pytest.param(" application/vnd.google.protobuf ; proto=io.prometheus.client.MetricFamily ;"
                 " encoding=delimited", "proto-delimited", id="spaces"),
])
def test_negotiate_accept(accept: str | None, expected: str) -> None:
    assert negotiate_accept(accept) == expected


def test_content_types_as_prometheus_sends_them() -> None:
    assert ACCEPT_FORMATS["proto-delimited"] == (
        "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
    assert ACCEPT_FORMATS["text"] == "text/plain; version=0.0.4; charset=utf-8"
