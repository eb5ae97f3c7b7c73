"""Whole lists remembered by promlab.promql.labelmemo: a repeat, an equal list of other
objects and a list sharing only its ends all get each set's own derivation."""

from __future__ import annotations

import pytest

from promlab.model import Labels
from promlab.promql import labelmemo


def _series(n: int, salt: str = "") -> list[Labels]:
    return [Labels({"__name__": f"m{i % 2}", "job": f"j{i % 3}", "n": f"{salt}{i}"})
            for i in range(n)]


def _without_name(ls: Labels) -> tuple[tuple[str, str], ...]:
    return tuple(p for p in ls.pairs if p[0] != "__name__")


def _check(got: list[Labels], inputs: list[Labels]) -> None:
    assert [g.pairs for g in got] == [_without_name(ls) for ls in inputs]
    assert all(g is labelmemo.intern(g) for g in got)


@pytest.mark.parametrize("n", [3, labelmemo.MIN_LIST, 3 * labelmemo.MIN_LIST],
                         ids=["short", "at-min", "long"])
def test_lists_get_each_sets_derivation(n: int) -> None:
    series = _series(n)
    first = labelmemo.without_name_labels(series)
    _check(first, series)
    again = labelmemo.without_name_labels(series)
    _check(again, series)
    assert again is not first and all(a is b for a, b in zip(again, first, strict=True))
    again.clear()  # the caller's copy: the memo's answer is unchanged
    _check(labelmemo.without_name_labels(series), series)
    copies = [Labels(dict(ls.pairs)) for ls in series]  # equal sets, other objects
    _check(labelmemo.without_name_labels(copies), copies)
    _check(labelmemo.without_name_labels(tuple(series)), series)


def test_same_ends_other_middle() -> None:
    series = _series(labelmemo.MIN_LIST + 4)
    other = [series[0], *_series(labelmemo.MIN_LIST + 2, salt="x"), series[-1]]
    for _ in range(2):
        for s in (series, other):
            _check(labelmemo.without_name_labels(s), s)
            got = labelmemo.filtered(s, frozenset({"n"}), keep=False)
            assert [g.pairs for g in got] == [tuple(p for p in ls.pairs if p[0] != "n")
                                               for ls in s]


def test_lists_start_over_with_the_tables() -> None:
    series = _series(labelmemo.MIN_LIST)
    before = labelmemo.without_name_labels(series)
    labelmemo.clear()
    # the new generation's interned sets: the old generation's answer must not be handed out
    fresh = [labelmemo.intern(Labels.from_sorted_pairs(_without_name(ls))) for ls in series]
    after = labelmemo.without_name_labels(series)
    assert all(a is f for a, f in zip(after, fresh, strict=True))
    assert not any(a is b for a, b in zip(after, before, strict=True))
