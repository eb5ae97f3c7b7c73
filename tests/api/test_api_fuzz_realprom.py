"""Differential fuzzing of the HTTP API: promlab and a real Prometheus 2.42 over the same
samples answer the same random requests (:mod:`tests.api.apifuzz`; classes of differences in :mod:`tests.api.apifuzz_classes`), and must give the same
status code, media type, ``Allow``, JSON ``status``, ``errorType``, ``error``, ``warnings``,
``infos`` and ``data`` (floats within 1e-9).

A difference is either fixed in promlab or belongs to a known class (:data:`KNOWN_CLASSES`):
a deliberate change of Prometheus 3.x that promlab follows, or a documented divergence.

Run length: a seeded run of :data:`DEFAULT_REQUESTS` requests by default; ``PROMLAB_API_FUZZ=N``
sends N requests from a random seed (printed), ``PROMLAB_API_FUZZ=N:SEED`` replays one.
"""

from __future__ import annotations

import collections
import os
import random
from collections.abc import Iterator

import httpx
import pytest

from . import apifuzz, apifuzz_classes
from .conftest import PromPair, prom_pair

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

DEFAULT_REQUESTS = 25_000  # about a minute
DEFAULT_SEED = 20_240_114

#: Differences that are not bugs, by the name :func:`apifuzz.known_class` gives them.
KNOWN_CLASSES = {
    "3.x-info-annotations": "info annotations (``infos``: rate() of a non-counter, ...) are 2.44+",
    "3.x-stats-value-warning": "a stats value other than true/all is deprecated with a warning",
    "3.x-parse-query": "/api/v1/parse_query is 2.47+ (404 in 2.42)",
    "3.x-limit": "limit on series, labels, label values (2.49+) and query/query_range (3.x)",
    "3.x-limit-per-metric": "metadata's limit_per_metric (2.42 ignores it)",
    "3.x-lookback-delta": "a per-query lookback_delta parameter",
    "3.x-utf8-names": "UTF-8 label names: quoted names in selectors, U__ escapes, any UTF-8 "
                      "name in /label/<name>/values",
    "3.x-no-delete-series": "2.42 routes DELETE /api/v1/series (to an error); 3.x does not",
    "3.x-query-range-invalid-param": "query_range wraps parse errors as invalid parameter "
                                     '"query", as /query does',
    "3.x-rate-extrapolation": "rate()/increase() extrapolate to a counter's zero point only "
                              "within the usual extrapolation",
    "per-step-stats-zero-interval": "stats=all on a range query with a step under 1 ms: "
                                    "Prometheus (per-step stats on) drops the connection; "
                                    "promlab answers the 422 of the same query without stats",
    "3.x-endpoints": "notifications (3.0+), status/tsdb/blocks (3.x)",
    "pushgateway-api": "the Pushgateway's /api/v1/status and /api/v1/metrics (promlab's push "
                       "endpoint is Pushgateway-compatible)",
    "block-granular-bounds": "series/labels with end before start: Prometheus answers from "
                             "whole blocks, promlab selects nothing",
}


def fuzz_plan() -> tuple[int, int]:
    """(requests, seed) from ``PROMLAB_API_FUZZ``: unset, ``N`` or ``N:SEED``."""
    spec = os.environ.get("PROMLAB_API_FUZZ", "")
    if not spec:
        return DEFAULT_REQUESTS, DEFAULT_SEED
    n, _, seed = spec.partition(":")
    return int(n), int(seed) if seed else random.SystemRandom().randrange(2**32)


@pytest.fixture(scope="module")
def fuzz_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromPair]:
    with prom_pair(tmp_path_factory.mktemp("api-fuzz")) as pair:
        yield pair


def test_api_fuzz_against_prometheus(fuzz_pair: PromPair) -> None:
    n, seed = fuzz_plan()
    requests = apifuzz.generate(seed, n, fuzz_pair.end_s)
    known: collections.Counter[str] = collections.Counter()
    unknown: list[str] = []
    identical = 0
    with httpx.Client(timeout=60) as client:
        for req in requests:
            ours = apifuzz.observe(client, fuzz_pair.promlab.url, req)
            theirs = apifuzz.observe(client, fuzz_pair.prometheus.url, req)
            apifuzz_classes.normalize_pair(req, ours, theirs)
            if apifuzz.same_answer(ours, theirs):
                identical += 1
                continue
            kind = apifuzz_classes.known_class(req, ours, theirs) or \
                apifuzz_classes.explain_by_dropping(client, fuzz_pair.promlab.url, req, theirs)
            if kind is not None:
                assert kind in KNOWN_CLASSES, kind
                known[kind] += 1
                continue
            unknown.append(f"{apifuzz.describe(req)}\n  promlab:    {ours.status} {ours.media} "
                           f"{ours.allow} {ours.raw[:300]!r}\n  prometheus: {theirs.status} "
                           f"{theirs.media} {theirs.allow} {theirs.raw[:300]!r}")
    print(f"\napi fuzz: seed {seed}, {n} requests, {identical} identical, known classes "
          f"{dict(known)}, {len(unknown)} unexplained")
    assert not unknown, f"seed {seed}: {len(unknown)} differences:\n" + "\n".join(unknown[:10])
    # Most answers must be the same byte for byte (after normalisation): a broken comparison
    # (or a known class that swallows everything) would show here.
    assert identical >= 0.75 * n, (identical, n, dict(known))


def test_generator_covers_every_endpoint(fuzz_pair: PromPair) -> None:
    """The default run sends every endpoint, method and body kind it is meant to cover."""
    n, seed = fuzz_plan()
    reqs = apifuzz.generate(seed, n, fuzz_pair.end_s)
    paths = {r.path for r in reqs}
    for path in ("/api/v1/query", "/api/v1/query_range", "/api/v1/series", "/api/v1/labels",
                 "/api/v1/label/job/values", "/api/v1/metadata", "/api/v1/query_exemplars",
                 "/api/v1/format_query", "/api/v1/parse_query", "/federate",
                 "/api/v1/status/buildinfo"):
        assert path in paths, path
    assert {r.method for r in reqs} >= {"GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD"}
    assert {r.post for r in reqs} >= {"", "form", "json", "none", "multipart"}
