"""The evaluator as node implementations see it.

Selectors, subqueries and binary operators get the running :class:`~promlab.promql.eval.evaluator.Evaluator`
through this protocol, so they need not import the evaluator module that dispatches to them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from promlab.model import Matcher
from promlab.promql.parser.ast import Expr
from promlab.promql.values import EvalContext, Value
from promlab.storage.interface import SeriesSet

__all__ = ["EvalState"]


class EvalState(Protocol):
    """One running query: child evaluation, storage reads and the query's limits."""

    @property
    def max_samples(self) -> int:
        """Limit on samples held at once."""
        ...

    @property
    def stats_nodes(self) -> frozenset[int]:
        """``id()`` of the selectors read through the histogram-stats reader (see
        :mod:`promlab.promql.eval.histstats`)."""
        ...

    @property
    def keep_timestamps(self) -> bool:
        """Whether vector selectors record each cell's sample timestamp (some node of the
        query reads them)."""
        ...

    @property
    def param_depth(self) -> int:
        """How many aggregation parameters are being evaluated (nothing below one is evaluated
        once per range, as Prometheus's preprocessing never looks into it)."""
        ...

    def eval(self, node: Expr, ctx: EvalContext) -> Value:
        """Evaluate a child node over ``ctx.steps_ms`` (checks limits before and after)."""
        ...

    def select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int, *,
               views: bool = False) -> SeriesSet:
        """Series matching ``matchers`` with samples in ``[start_ms, end_ms]`` (possibly in
        the view form of :class:`SeriesSet` when ``views``, else contiguous)."""
        ...

    def check(self) -> None:
        """Raise if the query was canceled or ran out of time."""
        ...

    def add_samples(self, n: int) -> None:
        """Count ``n`` more samples held; raise past the limit."""
        ...

    def check_dense(self, cells: int) -> None:
        """Refuse to allocate an absurdly large dense frame."""
        ...
