"""Go's sort.Sort as replayed for quantile windows holding both 0 and -0 (promql/eval/gosort.py;
its exact arrangement is checked against Prometheus by the differential regressions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from promlab.promql.eval.functions.overtime import sort_rows
from promlab.promql.eval.gosort import go_sort


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
