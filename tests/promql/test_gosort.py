"""Go's sort.Sort as replayed for quantile windows holding both 0 and -0 (promql/eval/gosort.py;
its exact arrangement is checked against Prometheus by the differential regressions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promlab.promql.eval.functions.overtime import sort_rows
from promlab.promql.eval.gosort import ReplayBudget, go_sort


@pytest.mark.parametrize("n", [0, 1, 2, 12, 13, 40, 50, 51, 300])
@pytest.mark.parametrize("kind", ["random", "few-values", "sorted", "reversed", "nan"])
def test_go_sort_sorts(n: int, kind: str) -> None:
    """Whatever the input (runs, duplicates, reversed, NaN), the result is the input ordered
    NaN first, then ascending."""
    rng = np.random.default_rng(n)
    if kind == "random":
        x = rng.normal(size=n)
    elif kind == "few-values":
        x = rng.choice([0.0, -0.0, 1.0, -1.0], size=n)
    elif kind == "sorted":
        x = np.sort(rng.normal(size=n))
    elif kind == "reversed":
        x = np.sort(rng.normal(size=n))[::-1]
    else:
        x = rng.choice([np.nan, 0.0, -0.0, 2.0, np.inf], size=n)
    values = x.tolist()
    go_sort(values)
    nan = [math.isnan(v) for v in values]
    assert nan == sorted(nan, reverse=True)  # NaN first
    rest = [v for v in values if not math.isnan(v)]
    assert rest == sorted(x[~np.isnan(x)].tolist())


def test_sort_rows_replays_go_past_twelve_values() -> None:
    """A window of more than 12 values with both zeros gets Go's arrangement (not time order);
    the padding after a row's length stays out of it."""
    rng = np.random.default_rng(7)
    row = rng.choice([0.0, -0.0, 0.25, -0.5, np.nan], size=40)
    want = row.tolist()
    go_sort(want)
    padded = np.concatenate([row, np.full(5, np.inf)])[None, :]
    got = sort_rows(padded, lengths=np.array([40]))[0]
    zeros = [math.copysign(1, v) for v in want if v == 0]
    assert [math.copysign(1, v) for v in got if v == 0] == zeros
    assert np.isnan(got[-int(np.isnan(row).sum()):]).all()
    assert (got[:-int(np.isnan(row).sum())][-5:] == np.inf).all()


def test_replay_budget_bounds_the_work() -> None:
    """Past its budget sort_rows keeps equal zeros in time order (a guess, but bounded time
    on data made of mixed zeros); a quantile that does not land on a zero replays nothing."""
    rng = np.random.default_rng(7)
    row = rng.choice([0.0, -0.0, 0.25, -0.5], size=40)
    rows = np.stack([row, row])
    go = row.tolist()
    go_sort(go)
    signs = [math.copysign(1, v) for v in go if v == 0]
    stable = [math.copysign(1, v) for v in row if v == 0]
    assert signs != stable
    got = sort_rows(rows, budget=ReplayBudget(40))
    assert [math.copysign(1, v) for v in got[0] if v == 0] == signs
    assert [math.copysign(1, v) for v in got[1] if v == 0] == stable
    top = sort_rows(rows, q=np.array([1.0, 0.5]))  # φ = 1 reads 0.25, never a zero
    assert [math.copysign(1, v) for v in top[0] if v == 0] == stable
