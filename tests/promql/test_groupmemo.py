"""Tests for promlab.promql.eval.groupmemo: the remembered grouping equals a fresh one."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.model import Labels
from promlab.promql.eval.groupmemo import MIN_SERIES, group_by, grouped
from promlab.promql.values import group_labels


def _series(n: int) -> list[Labels]:
    return [Labels({"__name__": "m", "instance": f"i{i % 7}", "job": f"j{i % 3}", "n": str(i)})
            for i in range(n)]


@pytest.mark.parametrize(("names", "without"), [
    (("instance",), False),
    (("job", "instance"), False),
    ((), False),
    (("n",), True),
    ((), True),
], ids=["by-instance", "by-two", "by-nothing", "without-n", "without-nothing"])
@pytest.mark.parametrize("n", [3, MIN_SERIES + 5], ids=["short", "long"])
def test_grouped_equals_group_labels_every_time(names: tuple[str, ...], without: bool,
                                                 n: int) -> None:
    series = _series(n)
    want_ids, want_groups = group_labels(series, names, without=without)
    for _ in range(3):  # a miss, then hits
        ids, groups = grouped(series, names, without=without)
        assert ids.tolist() == want_ids.tolist()
        assert groups == want_groups


def test_other_order_or_other_objects_are_grouped_afresh() -> None:
    series = _series(MIN_SERIES + 5)
    grouped(series, ("job",), without=False)
    rev = series[::-1]
    ids, groups = grouped(rev, ("job",), without=False)
    want_ids, want_groups = group_labels(rev, ("job",), without=False)
    assert ids.tolist() == want_ids.tolist() and groups == want_groups
    copies = [Labels(dict(ls.pairs)) for ls in series]
    ids2, _ = grouped(copies, ("instance",), without=False)
    assert ids2.tolist() == group_labels(copies, ("instance",), without=False)[0].tolist()


def test_remembered_ids_are_read_only_and_groups_a_copy() -> None:
    series = _series(MIN_SERIES + 1)
    grouped(series, ("instance",), without=False)
    ids, groups = grouped(series, ("instance",), without=False)
    with pytest.raises(ValueError):
        ids[0] = 5
    groups.clear()
    again = grouped(series, ("instance",), without=False)[1]
    assert len(again) == 7
    assert isinstance(ids, np.ndarray)


@pytest.mark.parametrize("n", [0, 1, MIN_SERIES + 5], ids=["none", "one", "long"])
def test_by_nothing_is_one_interned_group(n: int) -> None:
    series = _series(n)
    ids, groups = grouped(series, (), without=False)
    want_ids, want_groups = group_labels(series, (), without=False)
    assert ids.tolist() == want_ids.tolist() == [0] * n
    assert groups == want_groups
    assert all(g is w for g, w in zip(groups, want_groups, strict=True))  # the interned set


def _mixed() -> list[Labels]:
    """Several metrics with other label layouts, missing and extra labels, upper-case names."""
    out = []
    for i in range(40):
        d = {"__name__": f"m{i % 3}", "instance": f"i{i % 4}"}
        if i % 5:
            d["job"] = f"j{i % 2}"
        if i % 7 == 0:
            d["Zone"] = "z"  # sorts before __name__: shifts every position
        if i % 11 == 0:
            d["aaa"] = "x"
        if i % 13 == 0:
            del d["instance"]
        out.append(Labels(d))
    return out


@pytest.mark.parametrize("series", [
    _series(50),
    _mixed(),
    _series(5) + _mixed() + [Labels()],
    [Labels({"instance": "a"}), Labels({"job": "b"}), Labels({"instance": "a", "x": "1"})],
    [Labels({"__name__": "up", "job": "a", "instance": "b"})] * 3,
    [Labels({"instance": f"i{i % 3}", "job": "j1"}) for i in range(6)] + _series(40)
    + [Labels({"instance": f"i{i % 5}"}) for i in range(7)],
    [Labels({"a": "1", "instance": "x", "job": "j"}), Labels({"a": "1", "b": "2", "job": "j"}),
     Labels({"a": "2", "instance": "x", "job": "j"})],
], ids=["one-layout", "mixed-layouts", "with-empty-set", "missing-first", "same-set",
        "three-runs", "run-with-other-layout"])
@pytest.mark.parametrize("names", [
    ("instance",), ("job", "instance"), ("instance", "job", "instance"), ("__name__",),
    ("absent",), ("Zone", "job"), ("aaa",),
], ids=["instance", "two", "duplicate-name", "name", "absent", "upper-case", "aaa"])
def test_group_by_equals_group_labels(series: list[Labels], names: tuple[str, ...]) -> None:
    want_ids, want_groups = group_labels(series, names, without=False)
    ids, groups = group_by(series, names)
    assert ids.dtype == np.int64
    assert ids.tolist() == want_ids.tolist()
    assert [g.pairs for g in groups] == [g.pairs for g in want_groups]
    assert all(g is w for g, w in zip(groups, want_groups, strict=True))  # interned


def test_group_by_of_nothing_is_empty() -> None:
    ids, groups = group_by([], ("job",))
    assert ids.tolist() == [] and groups == []


def test_same_ends_other_middle_is_grouped_afresh() -> None:
    # Same length, same first and last objects: the remembered entry's key, another list.
    series = _series(MIN_SERIES + 5)
    grouped(series, ("instance",), without=False)
    other = [series[0], *reversed(series[1:-1]), series[-1]]
    for _ in range(2):  # replaces the entry, then hits it
        for s in (other, series):
            ids, groups = grouped(s, ("instance",), without=False)
            want_ids, want_groups = group_labels(s, ("instance",), without=False)
            assert ids.tolist() == want_ids.tolist() and groups == want_groups
