"""The range check of ``topk``/``bottomk``/``limitk``'s k over all steps of a range, also when
the range is evaluated in step slices (:func:`.limits.eval_in_slices`).

Prometheus 3 checks k once over every step of the range it evaluates (``rangeEvalAgg``): a NaN
at any step fails ("Parameter value is NaN"); a k below 1 at every step selects nothing; else a
k at or past either end of int64 fails, the low end checked first. The value named is the one
of the first step out of range in time order, as Prometheus 2.42 names it (it fails at that
step); 3.x names the smallest or largest k, which is the same value whenever one value is out of
range (an infinite k).

A slice sees part of the range only, so the evaluator gathers each aggregation's
:class:`KFacts` over its slices (:class:`PendingChecks`) and fails as soon as the later steps
cannot change the verdict, else once the slices are done.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from promlab.errors import QueryError
from promlab.promql.eval.functions._common import format_go_g
from promlab.promql.values import F64, I64

__all__ = ["K_AGGREGATIONS", "KFacts", "PendingChecks", "check_k"]

#: Aggregations whose parameter is an integer count k.
K_AGGREGATIONS = frozenset({"topk", "bottomk", "limitk"})

_INT64_END = 2.0**63

# (step time in ms, k) of the first step with a k out of range on one side, or None.
_Step = tuple[int, float] | None


def _first(a: _Step, b: _Step) -> _Step:
    if a is None or b is None:
        return a if b is None else b
    return a if a[0] <= b[0] else b


@dataclass(frozen=True, slots=True)
class KFacts:
    """What the check needs to know of k at some steps of a range."""

    has_nan: bool = False
    max_k: float = -np.inf  # the largest k that is not NaN
    first_under: _Step = None  # first step with k <= -2^63
    first_over: _Step = None  # first step with k >= 2^63

    @classmethod
    def of(cls, k: F64, steps_ms: I64) -> KFacts:
        """The facts of ``k`` at the steps ``steps_ms`` (one k per step)."""
        if k.size == 0:
            return cls()
        nan = np.isnan(k)
        numbers = k[~nan]

        def first(mask: np.ndarray) -> _Step:
            if not mask.any():
                return None
            i = int(np.argmax(mask))
            return int(steps_ms[i]), float(k[i])

        return cls(has_nan=bool(nan.any()),
                   max_k=float(numbers.max()) if numbers.size else -np.inf,
                   first_under=first(k <= -_INT64_END), first_over=first(k >= _INT64_END))

    def merged(self, other: KFacts) -> KFacts:
        """The facts of both sets of steps (in any order; slices may overlap)."""
        return KFacts(has_nan=self.has_nan or other.has_nan,
                      max_k=max(self.max_k, other.max_k),
                      first_under=_first(self.first_under, other.first_under),
                      first_over=_first(self.first_over, other.first_over))

    def error(self) -> QueryError | None:
        """The check's verdict when these are all the range's steps (None: k is usable)."""
        if self.has_nan:
            return QueryError("Parameter value is NaN")
        if self.max_k < 1:
            return None
        if self.first_under is not None:
            return QueryError(f"Scalar value {format_go_g(self.first_under[1])} underflows int64")
        if self.first_over is not None:
            return QueryError(f"Scalar value {format_go_g(self.first_over[1])} overflows int64")
        return None

    @property
    def settled(self) -> bool:
        """Whether steps not seen yet cannot change :meth:`error`'s verdict or its value."""
        return self.has_nan or (self.first_under is not None and self.max_k >= 1)


def check_k(k: F64, steps_ms: I64) -> None:
    """Raise the check's error for ``k`` at ``steps_ms``, the whole range."""
    err = KFacts.of(k, steps_ms).error()
    if err is not None:
        raise err


@dataclass
class PendingChecks:
    """The k facts of aggregations evaluated in step slices, by ``id()`` of their node, until
    the outermost slicing is done (a subquery's inner range spans the slices of the range that
    contains it, as Prometheus evaluates a subquery once over its whole range)."""

    facts: dict[int, KFacts] = dataclasses.field(default_factory=dict)

    def note(self, node_id: int, k: F64, steps_ms: I64) -> None:
        """Add the facts of some steps of one aggregation; raise once its verdict is sure."""
        seen = self.facts.get(node_id)
        got = KFacts.of(k, steps_ms)
        facts = got if seen is None else seen.merged(got)
        self.facts[node_id] = facts
        if facts.settled:
            self.facts.clear()
            err = facts.error()
            assert err is not None
            raise err

    def finish(self) -> None:
        """All slices are done: raise the first failing aggregation's error, forget the rest."""
        pending, self.facts = self.facts, {}
        for facts in pending.values():
            err = facts.error()
            if err is not None:
                raise err

    def clear(self) -> None:
        self.facts.clear()
