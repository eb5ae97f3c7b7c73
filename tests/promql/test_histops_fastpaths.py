"""histops fast paths (one layout on both sides) agree with the general bucket-map paths.

The general path is forced by writing the same buckets with non-canonical spans (an empty
span in between), which the fast paths refuse.
"""

from __future__ import annotations

import dataclasses

import pytest

from promlab.model.histogram import FloatHistogram
from promlab.promql.eval import histops


def _h(buckets: tuple[float, ...], *, zc: float = 1.0, neg: tuple[float, ...] = (),
       split: bool = False) -> FloatHistogram:
    n = len(buckets)
    spans = ((2, 1), (0, 0), (0, n - 1)) if split else ((2, n),)
    return FloatHistogram(schema=3, zero_threshold=1e-3, zero_count=zc,
                          count=zc + sum(buckets) + sum(neg), sum=5.0, positive_spans=spans,
                          positive_buckets=buckets, negative_spans=((-1, len(neg)),) if neg else (),
                          negative_buckets=neg)


CASES = [
    ("growing", _h((1.0, 2.0, 3.0)), _h((1.0, 3.0, 3.0)), False),
    ("bucket_drops", _h((1.0, 2.0, 3.0)), _h((2.0, 1.0, 4.0)), True),
    ("zero_drops", _h((1.0, 2.0, 3.0), zc=3.0), _h((1.0, 2.0, 5.0), zc=2.0), True),
    ("negative_drops", _h((1.0, 2.0), neg=(4.0,)), _h((1.0, 2.0), neg=(3.0,), zc=2.0), True),
    ("equal", _h((1.0, 2.0, 3.0)), _h((1.0, 2.0, 3.0)), False),
]


@pytest.mark.parametrize(("prev", "cur", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_detect_reset_same_layout_matches_general(prev: FloatHistogram, cur: FloatHistogram,
                                                  want: bool) -> None:
    prev_split = dataclasses.replace(prev, positive_spans=_h(prev.positive_buckets, split=True)
                                     .positive_spans)
    assert histops.detect_reset(cur, prev) is want
    assert histops.detect_reset(cur, prev_split) is want


@pytest.mark.parametrize("op", [histops.add, histops.sub], ids=["add", "sub"])
@pytest.mark.parametrize(("a", "b"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_combine_same_layout_matches_general(op: object, a: FloatHistogram,
                                             b: FloatHistogram) -> None:
    assert callable(op)
    fast = op(a, b)
    split = dataclasses.replace(a, positive_spans=_h(a.positive_buckets, split=True)
                                .positive_spans)
    slow = op(split, dataclasses.replace(b, positive_spans=split.positive_spans))
    assert fast == slow
    assert fast.compact() == slow.compact()
