"""A range-vector function's label-set collisions are found over its whole range when the
query is evaluated in step slices (:func:`promlab.promql.eval.limits.eval_in_slices`), as
Prometheus 2.42 checks the call's whole result matrix (``mat.ContainsSameLabelset()``)."""

from __future__ import annotations

import pytest

from promlab import Labels, MemoryStorage
from promlab.errors import QueryError
from promlab.promql.engine import Engine

STEP = 15_000
STEPS = 400  # sliced: by samples read (no deadline) or by time (deadline), first slice 64 steps


def _store(b_instance: str) -> MemoryStorage:
    """``a`` with samples in the first slice's steps only, ``b`` in the last slice's only."""
    st = MemoryStorage()
    early = list(range(0, 300_001, STEP))
    late = list(range(5_000_000, STEPS * STEP, STEP))
    st.add_series(Labels({"__name__": "a", "instance": "x"}), early,
                  [float(i) for i in range(len(early))])
    st.add_series(Labels({"__name__": "b", "instance": b_instance}), late,
                  [float(i) for i in range(len(late))])
    return st


@pytest.mark.parametrize("timeout", [None, "2m"], ids=["memory-slices", "time-slices"])
@pytest.mark.parametrize("func", ["rate", "deriv", "max_over_time"])
def test_collision_across_slices_fails(timeout: str | None, func: str) -> None:
    engine = Engine(features="-promql-delayed-name-removal", timeout=timeout)
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        engine.range(_store("x"), f'{func}({{__name__=~"a|b"}}[1m])', 0, (STEPS - 1) * STEP,
                      STEP)


@pytest.mark.parametrize("timeout", [None, "2m"], ids=["memory-slices", "time-slices"])
def test_distinct_series_across_slices_pass(timeout: str | None) -> None:
    engine = Engine(features="-promql-delayed-name-removal", timeout=timeout)
    r = engine.range(_store("y"), 'rate({__name__=~"a|b"}[1m])', 0, (STEPS - 1) * STEP, STEP)
    assert sorted(ls["instance"] for ls in r.value.labels) == ["x", "y"]


def test_delayed_name_removal_merges_across_slices() -> None:
    """With delayed removal (promlab's default) rows that never meet at a step are merged."""
    r = Engine(timeout="2m").range(_store("x"), 'rate({__name__=~"a|b"}[1m])', 0,
                                   (STEPS - 1) * STEP, STEP)
    assert len(r.value.labels) == 1
