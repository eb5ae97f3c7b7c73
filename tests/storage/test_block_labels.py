"""Label sets built from a block's label columns: one pass per query, one object per series."""

from __future__ import annotations

import os

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage.blocks import Block
from promlab.storage.postings import LabelColumn, LabelIndex
from promlab.storage.writer import write_block

from .conftest import T0

HOUR = 3_600_000

SETS = [
    Labels({"__name__": "up", "job": "api", "instance": "a:1"}),
    Labels({"__name__": "up", "job": "api", "instance": "a:2"}),
    Labels({"__name__": "up", "job": "db"}),
    Labels({"job": "db", "le": "0.5"}),
    Labels(),
    Labels({"__name__": "x" * 3, "a": "1", "b": "1", "c": "1"}),
]


@pytest.mark.parametrize("rows", [
    [0, 1],
    [1, 0, 1, 0],
    [2, 3, 0],
    [4],
    [4, 0, 4, 5, 2],
    list(range(len(SETS)))[::-1],
    [],
], ids=["one-pattern", "repeated", "patterns", "empty-set", "mixed-with-empty", "all-reversed",
        "no-rows"])
def test_label_index_labels_of(rows: list[int]) -> None:
    idx = LabelIndex.from_labels(SETS)
    got = idx.labels_of(np.array(rows, np.int64))
    assert got == [SETS[r] for r in rows]
    assert [ls.pairs for ls in got] == [SETS[r].pairs for r in rows]
    assert got == [idx.labels_at(r) for r in rows]


def test_label_index_labels_of_shares_pairs() -> None:
    idx = LabelIndex.from_labels(SETS)
    a, b = idx.labels_of(np.array([0, 1], np.int64))
    c, = idx.labels_of(np.array([1], np.int64))  # a later call reuses the pairs made
    assert a.pairs[2] is b.pairs[2] is c.pairs[2]  # ("job", "api")
    assert a.pairs[0] is b.pairs[0]  # ("__name__", "up")


def _block(tmp_path: os.PathLike[str]) -> tuple[Block, list[Labels]]:
    series = [Labels({"__name__": "m", "i": str(k), "odd": "y" if k % 2 else ""})
              for k in range(7)] + [Labels({"__name__": "n", "i": "0"})]
    sids = np.array([ls.hash for ls in series], np.int64)
    steps = np.arange(0, 4 * HOUR, 60_000)
    idx = np.repeat(np.arange(len(series)), steps.shape[0])
    ts = T0 + np.tile(steps, len(series))
    vals = np.arange(idx.shape[0], dtype=np.float64)
    blocks_dir = os.path.join(tmp_path, "blocks")
    meta = write_block(blocks_dir, series, sids, idx, ts, vals, start=T0, end=T0 + 4 * HOUR,
                       seq=1, bucket_ms=HOUR)
    return Block(os.path.join(blocks_dir, meta.dirname)), series


@pytest.mark.parametrize("first", ["labels_at", "labels_of", "metric_columns"])
def test_block_labels_one_object_per_series(tmp_path: os.PathLike[str], first: str) -> None:
    blk, series = _block(tmp_path)
    by_sid = {ls.hash: ls for ls in series}
    blk.index()
    rows = np.arange(blk.sids.shape[0], dtype=np.int64)
    assert rows.shape[0] == 4 * len(series)  # a chunk per series per hour
    if first == "labels_at":
        early = [blk.labels_at(int(r)) for r in rows[::3].tolist()]
    elif first == "labels_of":
        early = blk.labels_of(rows[::3])
    else:
        early = list(blk.metric_columns("m").labels)
        assert early == sorted(s for s in series if s.name == "m")
    got = blk.labels_of(rows[::-1])[::-1]
    assert got == [by_sid[s] for s in blk.sids.tolist()]
    first_of: dict[int, Labels] = {}
    for sid, ls in zip(blk.sids.tolist(), got, strict=True):
        assert first_of.setdefault(sid, ls) is ls  # every chunk of a series: the same object
    for ls in early:
        assert first_of[ls.hash] is ls
    assert all(blk.labels_at(int(r)) is ls for r, ls in zip(rows.tolist(), got, strict=True))


@pytest.mark.parametrize(("codes", "code", "want"), [
    ([0, 0, 1, 1, 1, 2], 1, (2, 5)),
    ([0, 0, 1, 1, 1, 2], 2, (5, 6)),
    ([0, 0, 1, 1, 1, 2], 0, (0, 2)),
    ([0, 1, 0], 0, None),
    ([0, 1, 0], 1, (1, 2)),
    ([-1, -1, 3], -1, (0, 2)),
    ([0, 0], 5, None),
    ([], 0, None),
], ids=["middle", "last", "first", "two-runs", "between", "absent-code", "unknown", "empty"])
def test_label_column_span(codes: list[int], code: int, want: tuple[int, int] | None) -> None:
    col = LabelColumn(np.array(codes, np.int32), ["a", "b", "c", "d"])
    assert col.span(code) == want
    assert col.span(code) == want  # from the runs found once


@pytest.mark.parametrize(("name", "matchers", "mint", "maxt"), [
    ("m", [], None, None),
    ("m", [Matcher(MatchType.EQUAL, "odd", "y")], None, None),
    ("m", [Matcher(MatchType.NOT_EQUAL, "odd", "y")], T0 + HOUR, T0 + 2 * HOUR),
    ("m", [Matcher(MatchType.REGEX, "i", "1|4")], T0 + 3 * HOUR, None),
    ("n", [], None, T0),
    ("m", [Matcher(MatchType.EQUAL, "nope", "x")], None, None),
    ("absent", [], None, None),
], ids=["whole-metric", "matcher", "not-equal-in-range", "regex-from", "to", "no-match",
        "unknown-metric"])
def test_metric_chunks_match_every_row(tmp_path: os.PathLike[str], name: str,
                                       matchers: list[Matcher], mint: int | None,
                                       maxt: int | None) -> None:
    blk, _ = _block(tmp_path)
    idx = blk.index()
    names = idx.columns["__name__"]
    want = [r for r in range(idx.n)
            if names.uniques[names.codes[r]] == name
            and all(m.matches(blk.labels_at(r).get(m.name, "")) for m in matchers)
            and (mint is None or int(blk.max_time[r]) >= mint)
            and (maxt is None or int(blk.min_time[r]) <= maxt)]
    got = blk.metric_chunks(name, [Matcher(MatchType.EQUAL, "__name__", name), *matchers],
                            mint, maxt)
    assert got.tolist() == want
    assert (len(want) > 0) == (name != "absent" and not any(m.name == "nope" for m in matchers))


@pytest.mark.parametrize(("group_codes", "rows"), [
    ([0, 0, 1, 1, 2], [0, 0, 1, 2, 2, 2, 3, 4]),
    ([0, 1, 0], [0, 1, 1, 2]),
    ([-1, 3, 3], [0, 0, 0, 1, 2, 2]),
    ([2], [0, 0, 0]),
    ([1, 2], []),
], ids=["runs", "split-code", "absent", "one-group", "no-rows"])
def test_grouped_column_answers_as_gathered(group_codes: list[int], rows: list[int]) -> None:
    """Codes kept per group (a block's series) and spread over rows (its chunks) answer spans
    and matches exactly as the same codes gathered per row, without gathering them."""
    uniques = ["a", "b", "c", "d"]
    of = np.array(group_codes, np.int32)
    r = np.array(rows, np.int64)
    grouped = LabelColumn(of, uniques, rows=r)
    flat = LabelColumn(of[r], uniques)
    for code in (-1, 0, 1, 2, 3, 9):
        assert grouped.span(code) == flat.span(code), code
    for m in (Matcher(MatchType.EQUAL, "x", "b"), Matcher(MatchType.NOT_EQUAL, "x", "d"),
              Matcher(MatchType.REGEX, "x", "a|d|"), Matcher(MatchType.EQUAL, "x", "zz")):
        for within in (None, slice(1, max(1, len(rows) - 1))):
            assert grouped.match(m, within).tolist() == flat.match(m, within).tolist()
        assert grouped.match_groups(m).tolist() == LabelColumn(of, uniques).match(m).tolist()
    assert grouped._codes is None  # nothing gathered per row


def test_match_groups_needs_every_column_grouped() -> None:
    r = np.array([0, 0, 1], np.int64)
    a = LabelColumn(np.array([0, 1], np.int32), ["x", "y"], rows=r)
    b = LabelColumn(np.array([1, -1], np.int32), ["p", "q"], rows=r)
    idx = LabelIndex(3, {"a": a, "b": b})
    got = idx.match_groups([Matcher(MatchType.EQUAL, "b", "q")])
    assert got is not None and got[0].tolist() == [True, False] and got[1] is r
    assert idx.match_groups([Matcher(MatchType.EQUAL, "zz", "v")])[0].tolist() == [False, False]  # type: ignore[index]
    flat = LabelIndex(3, {"a": a, "b": LabelColumn(np.array([1, 1, -1], np.int32), ["p", "q"])})
    assert flat.match_groups([]) is None


@pytest.mark.parametrize("values", [3, 2_000], ids=["few-values", "many-values"])
def test_label_pairs_shared_per_value(values: int) -> None:
    """A label with few values gets all its pairs at once, one with many (a file-wide
    dictionary) only those asked for; either way one pair object per value."""
    codes = np.arange(40, dtype=np.int32) % values
    col = LabelColumn(codes, [f"v{i}" for i in range(values)])
    idx = LabelIndex(40, {"pod": col})
    rows = np.array([5, 3, 5, 0, 39], np.int64)
    got = idx.labels_of(rows)
    assert [ls.pairs for ls in got] == [(("pod", f"v{i % values}"),) for i in rows.tolist()]
    assert got[0].pairs[0] is got[2].pairs[0]
    again = idx.labels_of(rows[::-1].copy())
    assert again[-1].pairs[0] is got[0].pairs[0]
    assert [ls.pairs for ls in again] == [ls.pairs for ls in got][::-1]
