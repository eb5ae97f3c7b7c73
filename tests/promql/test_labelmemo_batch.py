"""A label memo's batch miss path (C-level per run of equal-length sets) enters and returns
what the per-set loop does: equal label sets, the very same interned objects."""

from __future__ import annotations

import random

import pytest

from promlab.model import Labels
from promlab.promql import labelmemo

NAME_DROPS = ["__name__", "__type__", "__unit__"]


def _uniform(n: int) -> list[Labels]:
    return [Labels({"__name__": "m", "instance": f"i{i}", "job": "a", "method": "GET"})
            for i in range(n)]


def _mixed(n: int) -> list[Labels]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        d = {"job": f"j{i % 3}", "i": str(i)}
        for name in ("__name__", "__type__", "__unit__", "A", "_a", "__o", "__zz", "le", "z"):
            if rng.random() < 0.4:
                d[name] = f"v{rng.randrange(3)}"
        out.append(Labels(d))
    return out


def _runs_with_strays(n: int) -> list[Labels]:
    """Equal-length runs where a few sets hold a dropped name where the first one does not."""
    out = _uniform(n)
    out[5] = Labels({"__name__": "m", "__type__": "counter", "job": "a", "method": "GET"})
    out[9] = Labels({"__unit__": "s", "instance": "x", "job": "a", "method": "GET"})
    out[11] = Labels({"A": "1", "instance": "x", "job": "a", "method": "GET"})
    out[13] = Labels({"__name__": "m", "__o": "1", "job": "a", "method": "GET"})
    return out


def _late_name(n: int) -> list[Labels]:
    """The run's first set lacks the name; the others hold it where the first one's ``A`` is."""
    return [Labels({"A": "1", "job": "x"})] + [Labels({"__name__": "m", "job": f"j{i}"})
                                               for i in range(n - 1)]


def _runs(n: int) -> list[Labels]:
    out: list[Labels] = []
    for i in range(n):
        width = (i // 10) % 4  # runs of 10 sets of one length
        d = {"__name__": "m", "i": str(i)}
        d.update({f"l{k}": "x" for k in range(width)})
        out.append(Labels(d))
    return out


def _duplicates(n: int) -> list[Labels]:
    return [Labels({"__name__": f"m{i % 2}", "job": f"j{i % 5}"}) for i in range(n)]


def _no_name(n: int) -> list[Labels]:
    return [Labels({"instance": f"i{i}", "job": "a"}) for i in range(n)]


def _only_name(n: int) -> list[Labels]:
    return [Labels({"__name__": f"m{i}"}) for i in range(n)]


def _two_kept(n: int) -> list[Labels]:  # kept positions not one stretch
    return [Labels({"a": str(i), "le": "1", "z": "2", "__name__": "m"}) for i in range(n)]


LAYOUTS = [
    ("uniform", _uniform, NAME_DROPS),
    ("mixed", _mixed, NAME_DROPS),
    ("mixed-le", _mixed, ["le"]),
    ("strays", _runs_with_strays, NAME_DROPS),
    ("late-name", _late_name, NAME_DROPS),
    ("runs", _runs, NAME_DROPS),
    ("duplicates", _duplicates, NAME_DROPS),
    ("no-name", _no_name, NAME_DROPS),
    ("only-name", _only_name, NAME_DROPS),
    ("two-kept", _two_kept, ["le"]),
    ("drop-middle", _uniform, ["job"]),
    ("drop-absent", _uniform, ["zzz", "0"]),
]


def _by_loop(labels: list[Labels], drops: list[str]) -> list[Labels]:
    names = frozenset(drops)
    memo = labelmemo.LabelMemo(lambda ls: Labels.from_sorted_pairs(  # no drops: set by set
        tuple([p for p in ls.pairs if p[0] not in names])))
    return memo.map(labels)


@pytest.mark.parametrize(("make", "drops"), [x[1:] for x in LAYOUTS], ids=[x[0] for x in LAYOUTS])
@pytest.mark.parametrize("n", [20, 200])
def test_batch_matches_loop(make: object, drops: list[str], n: int) -> None:
    assert callable(make)
    labels: list[Labels] = make(n)
    names = frozenset(drops)
    expected = [tuple([p for p in ls.pairs if p[0] not in names]) for ls in labels]
    assert labelmemo.dropped_pairs([ls.pairs for ls in labels], sorted(drops)) == expected
    batch = labelmemo.LabelMemo(lambda ls: Labels.from_sorted_pairs(
        tuple([p for p in ls.pairs if p[0] not in names])), drops=names)
    warm = labels[::3]
    first = batch.map(warm)  # some inputs are in the tables already
    got = batch.map(labels)
    assert [ls.pairs for ls in got] == expected
    loop = _by_loop(labels, drops)
    assert all(a is b for a, b in zip(got, loop, strict=True))  # the same interned objects
    assert all(a is b for a, b in zip(first, got[::3], strict=True))
    again = [Labels.from_sorted_pairs(ls.pairs) for ls in labels]  # equal sets, new objects
    assert all(a is b for a, b in zip(batch.map(again), got, strict=True))


def test_batch_after_tables_start_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labelmemo, "MAX_ENTRIES", 64)
    labelmemo.clear()
    old = labelmemo.without_name_labels(_uniform(10))
    fresh = _uniform(40)  # 3 entries a miss: the tables start over before deriving
    got = labelmemo.without_name_labels(fresh)
    assert labelmemo.size() == 3 * len(fresh)  # the earlier entries are gone
    assert [ls.pairs for ls in got] == [ls.pairs[1:] for ls in fresh]
    # After the reset, an equal derived set is interned anew: the batch's objects are the
    # intern table's (the old generation's objects are forgotten, not mixed in).
    assert all(labelmemo.intern(ls) is ls for ls in got)
    assert got[0] == old[0] and got[0] is not old[0]
