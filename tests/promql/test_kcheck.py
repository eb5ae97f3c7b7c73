"""The range check of topk/bottomk/limitk's k (promlab.promql.eval.kcheck): Prometheus 3's order
of checks over all steps, the first step out of range named, the same verdict whether the range
is seen at once or in step slices."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.errors import QueryError
from promlab.promql.eval.kcheck import KFacts, PendingChecks

NAN, INF = float("nan"), float("inf")

# (k per step, the error over the whole range or None)
CASES = [
    pytest.param([1, 2, 3], None, id="usable"),
    pytest.param([0, -INF, 0.5], None, id="below-one-everywhere"),
    pytest.param([2, NAN, INF], "Parameter value is NaN", id="nan-first-of-checks"),
    pytest.param([-INF, NAN], "Parameter value is NaN", id="nan-even-below-one"),
    pytest.param([2, 1e300, INF], "Scalar value 1e+300 overflows int64", id="first-overflow"),
    pytest.param([INF, 2, 1e300], "Scalar value +Inf overflows int64", id="first-is-inf"),
    pytest.param([INF, 2, -1e300, -INF], "Scalar value -1e+300 underflows int64",
                 id="underflow-before-overflow"),
    pytest.param([2**63, 1], "Scalar value 9.223372036854776e+18 overflows int64",
                 id="two-to-63"),
    pytest.param([2**63 - 1024, 1], None, id="below-two-to-63"),
]


def _check(facts: KFacts) -> str | None:
    err = facts.error()
    return None if err is None else str(err)


@pytest.mark.parametrize(("ks", "want"), CASES)
def test_whole_range(ks: list[float], want: str | None) -> None:
    k = np.array(ks, float)
    assert _check(KFacts.of(k, np.arange(len(ks)) * 1000)) == want


@pytest.mark.parametrize(("ks", "want"), CASES)
def test_slices_give_the_whole_verdict(ks: list[float], want: str | None) -> None:
    """Every way of cutting the steps in two, seen in either order, gives the same verdict,
    raised when it is sure or when the slices are done."""
    k = np.array(ks, float)
    steps = np.arange(len(ks)) * 1000
    for cut in range(1, len(ks)):
        for parts in ([(0, cut), (cut, len(ks))], [(cut, len(ks)), (0, cut)]):
            pending = PendingChecks()
            got = None
            try:
                for lo, hi in parts:
                    pending.note(1, k[lo:hi], steps[lo:hi])
                pending.finish()
            except QueryError as e:
                got = str(e)
            assert got == want, (cut, parts)
            assert not pending.facts
