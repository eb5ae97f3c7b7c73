"""The one-series-per-signature pairing of binops equals the general pair enumeration."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.promql.eval.binmatch import match_pairs
from promlab.promql.eval.binops import unique_pairs


@pytest.mark.parametrize(("n_many", "n_one", "n_groups"), [
    (0, 0, 0), (0, 3, 5), (3, 0, 5), (5, 5, 5), (10, 4, 30), (4, 10, 30), (1, 1, 1),
], ids=["empty", "no-many", "no-one", "all-matched", "more-many", "more-one", "single"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def testunique_pairs_equal_match_pairs(n_many: int, n_one: int, n_groups: int,
                                        seed: int) -> None:
    rng = np.random.default_rng(seed)
    s_many = rng.permutation(n_groups)[:n_many].astype(np.int64)
    s_one = rng.permutation(n_groups)[:n_one].astype(np.int64)
    got = unique_pairs(s_many, s_one, n_groups)
    want = match_pairs(s_many, s_one, n_groups)
    assert got[0].tolist() == want[0].tolist()
    assert got[1].tolist() == want[1].tolist()
    assert got[0].dtype == got[1].dtype == np.int64
