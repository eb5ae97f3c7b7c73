"""Where queries run: the cost memo's decisions, and the same answers inline as in a thread."""

from __future__ import annotations

import httpx
import pytest

from promlab.api import Server
from promlab.api.costs import CostMemo


@pytest.mark.parametrize(("recorded", "budget_s", "inline"), [
    pytest.param([], 0.005, False, id="unseen"),
    pytest.param([0.001], 0.005, True, id="cheap"),
    pytest.param([0.005], 0.005, True, id="at-budget"),
    pytest.param([0.02], 0.005, False, id="expensive"),
    pytest.param([0.001, 0.02], 0.005, False, id="became-expensive"),
    pytest.param([0.02, 0.001], 0.005, True, id="became-cheap"),
    pytest.param([0.0], 0.0, True, id="zero-budget-free-query"),
    pytest.param([1e-6], 0.0, False, id="zero-budget"),
])
def test_inline_decision(recorded: list[float], budget_s: float, inline: bool) -> None:
    memo = CostMemo(budget_s=budget_s)
    for seconds in recorded:
        memo.record("q", seconds)
    assert memo.inline("q") is inline
    assert memo.inline("other") is False


def test_oldest_entry_goes_first() -> None:
    memo = CostMemo(max_entries=3)
    for key in "abcd":
        memo.record(key, 0.001)
    assert len(memo) == 3
    assert [memo.inline(k) for k in "abcd"] == [False, True, True, True]
    memo.record("b", 0.001)  # known: nothing dropped
    assert len(memo) == 3 and memo.inline("c")


RANGE = {"query": "sum by (job) (rate(http_requests_total[1m]))", "start": "60", "end": "600",
         "step": "15"}


@pytest.mark.parametrize(("path", "params", "key"), [
    pytest.param("/api/v1/query_range", RANGE,
                 ("range", RANGE["query"], 36, 15_000), id="range"),
    pytest.param("/api/v1/query", {"query": "up", "time": "300"}, ("instant", "up"),
                 id="instant"),
])
def test_inline_answers_as_thread(served: Server, client: httpx.Client, path: str,
                                  params: dict[str, str], key: tuple[object, ...]) -> None:
    costs = served.app.state.query_api.costs
    costs.budget_s = 60.0  # every query seen once runs inline from then on
    first = client.get(path, params=params)  # unseen: in a worker thread
    assert first.status_code == 200
    assert costs.inline(key)
    second = client.get(path, params=params)  # inline
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]


def test_inline_errors_as_thread(served: Server, client: httpx.Client) -> None:
    """A query known to be cheap that fails inline answers with the same error body."""
    costs = served.app.state.query_api.costs
    query = "up + on(job) http_requests_total"  # many-to-many: an execution error
    params = {"query": query, "time": "300"}
    in_thread = client.get("/api/v1/query", params=params)
    assert in_thread.status_code == 422
    assert not costs.inline(("instant", query))  # failures are not remembered
    costs.record(("instant", query), 0.0)
    inline = client.get("/api/v1/query", params=params)
    assert inline.status_code == 422
    assert inline.json() == in_thread.json()
