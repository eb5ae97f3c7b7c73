"""``stats=all`` sample counts against a real Prometheus 2.42 (``promql-per-step-stats`` on)
over the same samples: ``totalQueryableSamples``, its per-step list and ``peakSamples`` must be
equal (promlab models Prometheus's held samples, :mod:`promlab.promql.eval.querystats`,
including the ``@``-pinned subtrees it evaluates once per range). With the same small
``--query.max-samples`` both must refuse the same queries, with the same error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import PromPair, prom_pair

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

E = "END"  # replaced by the dataset's last timestamp (seconds)
# Times off the 15 s sample grid (E-7) and ranges off it (299s): Prometheus 2.42's windows are
# closed at the left, promlab's (3.x) left-open; off the grid both select the same samples.
R = "http_requests_total"


@pytest.fixture(scope="module")
def stats_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromPair]:
    with prom_pair(tmp_path_factory.mktemp("stats-pair")) as pair:
        yield pair


def _params(params: dict[str, str], end: float) -> dict[str, str]:
    """``END``, ``END-7`` (also inside a query: ``@ END-67``) as seconds."""
    def at(m: re.Match[str]) -> str:
        return f"{end + float(m.group(1) or 0):.3f}"

    return {k: re.sub(r"END([+-]\d+)?", at, v) for k, v in params.items()}


CASES = [
    pytest.param("/api/v1/query", {"query": R, "time": E + "-7"}, id="selector"),
    pytest.param("/api/v1/query", {"query": f"rate({R}[299s])", "time": E + "-7"}, id="rate"),
    pytest.param("/api/v1/query", {"query": f"sum by (status) (rate({R}[299s]))",
                                   "time": E + "-7"}, id="sum-by"),
    pytest.param("/api/v1/query", {"query": f"{R}[299s]", "time": E + "-7"}, id="matrix"),
    pytest.param("/api/v1/query", {"query": f"max_over_time(rate({R}[299s])[10m:1m])",
                                   "time": E + "-7"}, id="subquery"),
    pytest.param("/api/v1/query", {"query": f"{R}[10m:1m]", "time": E + "-7"}, id="subquery-top"),
    pytest.param("/api/v1/query", {"query": f"rate({R}[299s] @ END-67)", "time": E + "-7"},
                 id="at-rate"),
    pytest.param("/api/v1/query", {"query": f"{R} @ END-607", "time": E + "-7"}, id="at-selector"),
    pytest.param("/api/v1/query", {"query": f"rate({R}[299s] offset 2m)", "time": E + "-7"},
                 id="offset"),
    pytest.param("/api/v1/query", {"query": f"{R} offset 10m", "time": E + "-7"},
                 id="offset-selector"),
    pytest.param("/api/v1/query", {"query": f"{R} / ignoring(status) group_left "
                                   f"sum without(status) ({R})", "time": E + "-7"}, id="binop"),
    pytest.param("/api/v1/query_range", {"query": f"sum by (job) (rate({R}[299s]))",
                                         "start": E + "-1807", "end": E + "-7", "step": "60"},
                 id="range-sum-rate"),
    pytest.param("/api/v1/query_range", {"query": R, "start": E + "-607", "end": E + "-7",
                                         "step": "30"}, id="range-selector"),
    pytest.param("/api/v1/query_range", {"query": f"rate({R}[299s] @ end())",
                                         "start": E + "-607", "end": E + "-7", "step": "60"},
                 id="range-at"),
    pytest.param("/api/v1/query_range", {"query": f"{R} offset 5m", "start": E + "-607",
                                         "end": E + "-7", "step": "60"}, id="range-offset"),
    pytest.param("/api/v1/query_range", {"query": f"max_over_time(rate({R}[299s])[5m:1m])",
                                         "start": E + "-907", "end": E + "-7", "step": "60"},
                 id="range-subquery"),

    # @-pinned (step-invariant) subtrees: Prometheus evaluates them at one step, then copies
    # an instant vector's result to every step
    pytest.param("/api/v1/query_range", {"query": f"sum({R} @ end())", "start": E + "-607",
                                         "end": E + "-7", "step": "60"}, id="range-at-sum"),
    pytest.param("/api/v1/query_range", {
        "query": f"max_over_time({R}[5m:1m] @ end())",
        "start": E + "-607", "end": E + "-7", "step": "60"}, id="range-at-subquery"),
    pytest.param("/api/v1/query_range", {
        "query": f"max_over_time(({R} @ end())[5m:1m])",
        "start": E + "-607", "end": E + "-7", "step": "60"}, id="range-at-in-subquery"),
    pytest.param("/api/v1/query_range", {
        "query": f"rate({R}[299s] @ end()) + rate({R}[299s])",
        "start": E + "-607", "end": E + "-7", "step": "60"}, id="range-at-operand"),
    pytest.param("/api/v1/query_range", {
        "query": f"sum by (job) ({R} @ END-300) / sum by (job) ({R})",
        "start": E + "-1207", "end": E + "-7", "step": "30"}, id="range-at-binop"),
    pytest.param("/api/v1/query_range", {
        "query": f"avg_over_time((sum({R} @ end()))[10m:1m] @ END-67)",
        "start": E + "-607", "end": E + "-7", "step": "60"}, id="range-at-nested"),
    pytest.param("/api/v1/query_range", {
        "query": f"sum(count_over_time({R}[2m:30s] @ end()))",
        "start": E + "-607", "end": E + "-7", "step": "60"}, id="range-at-subquery-sum"),
    pytest.param("/api/v1/query_range", {
        "query": f"count({R} @ end()) + count({R} @ start())",
        "start": E + "-607", "end": E + "-7", "step": "60"}, id="range-at-both-sides"),
]


def _stats(server: Any, path: str, params: dict[str, str]) -> dict[str, Any]:
    r = httpx.get(server.url + path, params={**params, "stats": "all"}, timeout=60)
    assert r.status_code == 200, r.text
    samples: dict[str, Any] = r.json()["data"]["stats"]["samples"]
    return samples


@pytest.mark.parametrize(("path", "params"), CASES)
def test_sample_stats(stats_pair: PromPair, path: str, params: dict[str, str]) -> None:
    p = _params(params, stats_pair.end_s)
    ours = _stats(stats_pair.promlab, path, p)
    theirs = _stats(stats_pair.prometheus, path, p)
    assert theirs["totalQueryableSamples"] > 0
    assert ours["totalQueryableSamples"] == theirs["totalQueryableSamples"]
    assert ours["totalQueryableSamplesPerStep"] == theirs["totalQueryableSamplesPerStep"]
    assert ours["peakSamples"] == theirs["peakSamples"]


LIMIT = 300  # samples held; the dataset has 20 series of http_requests_total


@pytest.fixture(scope="module")
def limit_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromPair]:
    with prom_pair(tmp_path_factory.mktemp("limit-pair"), max_samples=LIMIT) as pair:
        yield pair


B = "http_request_duration_seconds_bucket"


def _q(query: str, time: str = E + "-7") -> dict[str, str]:
    return {"query": query, "time": time}


def _r(query: str, start: str, step: str) -> dict[str, str]:
    return {"query": query, "start": E + start, "end": E + "-7", "step": step}


# (path, params, whether Prometheus refuses it at LIMIT): pairs on either side of the limit
LIMIT_CASES = [
    pytest.param("/api/v1/query_range", _r(R, "-607", "60"), False, id="selector-11-steps"),
    pytest.param("/api/v1/query_range", _r(R, "-307", "15"), True, id="selector-21-steps"),
    pytest.param("/api/v1/query", _q(f"{B}[1m]"), False, id="matrix-small"),
    pytest.param("/api/v1/query", _q(f"{R}[5m]"), True, id="matrix-big"),
    pytest.param("/api/v1/query_range", _r(f"rate({R}[299s])", "-607", "60"), False,
                 id="rate-11-steps"),
    pytest.param("/api/v1/query_range", _r(f"rate({R}[299s])", "-307", "15"), True,
                 id="rate-21-steps"),
    pytest.param("/api/v1/query", _q(f"{R}[10m:1m]"), False, id="subquery-small"),
    pytest.param("/api/v1/query", _q(f"{R}[50m:1m]"), True, id="subquery-big"),
    pytest.param("/api/v1/query_range", _r(f"sum({B} @ end())", "-3007", "60"), False,
                 id="pinned-sum"),
    pytest.param("/api/v1/query_range", _r(f"rate({B}[299s] @ end())", "-607", "60"), False,
                 id="pinned-rate-11-steps"),
    pytest.param("/api/v1/query_range", _r(f"rate({B}[299s] @ end())", "-3007", "60"), True,
                 id="pinned-rate-51-steps"),
    pytest.param("/api/v1/query", _q(f"{R} + {R}"), False, id="binop-instant"),
    pytest.param("/api/v1/query_range", _r(f"{R} + {R}", "-607", "60"), True, id="binop-range"),
    pytest.param("/api/v1/query_range", _r(f"count({B})", "-607", "60"), False,
                 id="count-11-steps"),
    pytest.param("/api/v1/query_range", _r(f"topk(5, {B})", "-607", "60"), True,
                 id="topk-11-steps"),
]


@pytest.mark.parametrize(("path", "params", "refused"), LIMIT_CASES)
def test_max_samples(limit_pair: PromPair, path: str, params: dict[str, str],
                     refused: bool) -> None:
    """The same small ``--query.max-samples``: the same queries refused, with the same error."""
    p = _params(params, limit_pair.end_s)
    ours = httpx.get(limit_pair.promlab.url + path, params=p, timeout=60)
    theirs = httpx.get(limit_pair.prometheus.url + path, params=p, timeout=60)
    assert theirs.status_code == (422 if refused else 200), theirs.text  # the case still bites
    assert ours.status_code == theirs.status_code, ours.text
    a, b = ours.json(), theirs.json()
    assert (a["status"], a.get("errorType"), a.get("error")) == \
        (b["status"], b.get("errorType"), b.get("error"))
