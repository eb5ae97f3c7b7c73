"""A read-only store opens its newest blocks at open, older ones when a query's range reaches
them (store.ParquetStore.blocks, blocklist.list_blocks with a span)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store
from promlab.storage.blocklist import overlaps, recent_span
from promlab.storage.objectstore import LOCAL
from promlab.storage.writer import write_block

ALL = [Matcher(MatchType.REGEX, "__name__", ".+")]
DAY = 86_400_000
T0 = 1_704_067_200_000  # a day boundary


def _store(tmp_path: os.PathLike[str], days: int) -> tuple[str, list[str]]:
    """A store of ``days`` daily blocks, one series with one sample at each day's noon."""
    data = os.fspath(tmp_path)
    blocks_dir = os.path.join(data, "blocks")
    os.makedirs(blocks_dir)
    series = [Labels({"__name__": "up", "job": "a"})]
    sids = np.array([series[0].hash], np.int64)
    for d in range(days):
        write_block(blocks_dir, series, sids, np.zeros(1, np.int64),
                    np.array([T0 + d * DAY + DAY // 2], np.int64), np.array([float(d)]),
                    start=T0 + d * DAY, end=T0 + (d + 1) * DAY, seq=d + 1)
    return data, sorted(os.listdir(blocks_dir))


def _damage(data: str, name: str) -> None:
    with open(os.path.join(data, "blocks", name, "meta.json"), "w") as f:
        f.write("{not json")


@pytest.mark.parametrize(("name", "span", "want"), [
    ("100-200-x", (0, 99), False),
    ("100-200-x", (0, 100), True),
    ("100-200-x", (199, 300), True),
    ("100-200-x", (200, 300), False),  # the end is exclusive
    ("not-a-block", (0, 1), True),     # opened and judged by its meta.json
    ("abc", (0, 1), True),
], ids=["before", "touches-start", "last-ms", "at-end", "unparsed", "no-dashes"])
def test_overlaps(name: str, span: tuple[int, int], want: bool) -> None:
    assert overlaps(name, span) is want


def test_recent_span_from_names(tmp_path: os.PathLike[str]) -> None:
    data, _ = _store(tmp_path, 3)
    assert recent_span(LOCAL, os.path.join(data, "blocks"), DAY) == (T0 + 2 * DAY, T0 + 3 * DAY)
    assert recent_span(LOCAL, os.path.join(data, "nothing"), DAY) is None


def test_query_opens_only_blocks_in_range(tmp_path: os.PathLike[str]) -> None:
    data, names = _store(tmp_path, 4)
    ro = open_store(data, readonly=True)
    _damage(data, names[0])  # after open, before any query reached it
    q = ro.querier(T0 + 3 * DAY, T0 + 4 * DAY)
    assert q.select(ALL).values.tolist() == [3.0]
    assert q.warnings == []  # the damaged first day was not opened
    q = ro.querier(T0, T0 + 4 * DAY)
    assert q.select(ALL).values.tolist() == [1.0, 2.0, 3.0]
    assert any(names[0] in w for w in q.warnings)
    ro.close()


def test_newest_blocks_opened_at_open(tmp_path: os.PathLike[str]) -> None:
    data, names = _store(tmp_path, 3)
    ro = open_store(data, readonly=True)
    _damage(data, names[-1])  # already open (meta.json read at open): still readable
    _damage(data, names[0])   # not opened yet: found damaged by the first query reaching it
    q = ro.querier(T0, T0 + 3 * DAY)
    assert q.select(ALL).values.tolist() == [1.0, 2.0]
    assert [w for w in q.warnings if names[0] in w] and not [w for w in q.warnings if names[-1] in w]
    ro.close()


def test_deleted_block_out_of_range_is_dropped(tmp_path: os.PathLike[str]) -> None:
    data, names = _store(tmp_path, 3)
    ro = open_store(data, readonly=True)
    assert ro.querier(T0, T0 + 3 * DAY).select(ALL).values.tolist() == [0.0, 1.0, 2.0]
    os.rename(os.path.join(data, "blocks", names[0]), os.path.join(data, "blocks", "." + names[0]))
    assert ro.querier(T0 + 2 * DAY, T0 + 3 * DAY).select(ALL).values.tolist() == [2.0]
    # the vanished block is dropped from the open blocks; the skipped one is kept
    assert sorted(os.path.basename(p) for p in ro._block_cache) == names[1:]
    ro.close()
