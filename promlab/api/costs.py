"""Where a query runs: on the event loop when it is known to be cheap, else in a worker thread.

A hop to a worker thread costs about 0.1 ms of CPU and two thread wake-ups per query (the
worker's, then the event loop's); on a busy machine each wake-up can wait for a core, which
costs more than a small query's evaluation. :class:`CostMemo` remembers how long each query
(its text and the shape of its time range) took to evaluate and encode last time; a query
whose last run fit in the budget runs inline, blocking the event loop for about that long,
any other (a new query, an expensive one) in a worker thread, so the loop is never held for
long by a query it has not seen be cheap. A query that turns out slower than its budget is
sent to a thread next time.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["INLINE_BUDGET_S", "CostMemo"]

#: Longest a query may block the event loop: its last evaluation plus encoding, in seconds.
INLINE_BUDGET_S = 0.005


class CostMemo:
    """The last cost (seconds) of recent queries, and whether one is cheap enough to run inline.

    Not thread-safe: the handlers call it from the event loop only.

    Parameters
    ----------
    budget_s
        A query whose last run took at most this long runs inline (0: never).
    max_entries
        Queries remembered; the oldest entry goes first when full.

    Examples
    --------
    >>> memo = CostMemo(budget_s=0.005)
    >>> memo.inline(("range", "up", 601, 30_000))
    False
    >>> memo.record(("range", "up", 601, 30_000), 0.001)
    >>> memo.inline(("range", "up", 601, 30_000))
    True
    """

    def __init__(self, *, budget_s: float = INLINE_BUDGET_S, max_entries: int = 4096) -> None:
        self.budget_s = budget_s
        self.max_entries = max_entries
        self._cost: dict[Hashable, float] = {}

    def inline(self, key: Hashable) -> bool:
        """Whether the query ``key`` was seen and its last run fit in the budget."""
        cost = self._cost.get(key)
        return cost is not None and cost <= self.budget_s

    def record(self, key: Hashable, seconds: float) -> None:
        """Remember that query ``key`` just took ``seconds`` (evaluation and encoding)."""
        cost = self._cost
        if key not in cost and len(cost) >= self.max_entries:
            del cost[next(iter(cost))]
        cost[key] = seconds

    def __len__(self) -> int:
        return len(self._cost)
