"""The store writer thread: batches handed off from the event loop are committed, merged, drained."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.scrape.loop import Batch
from promlab.scrape.writer import Writer
from promlab.storage import MemoryStorage


def _batch(series: list[Labels], ts: int) -> Batch:
    b = Batch()
    n = len(series)
    b.add(series, np.arange(n, dtype=np.int64), np.full(n, ts, np.int64), np.arange(n, dtype=np.float64))
    return b


def _samples(store: MemoryStorage) -> int:
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
    return ss.num_samples


@pytest.mark.parametrize(("loops", "linger_s", "wait"), [
    pytest.param(1, 0.0, True, id="one-loop-no-linger"),
    pytest.param(20, 0.05, True, id="many-loops-share-commits"),
    pytest.param(20, 0.05, False, id="close-drains-unawaited"),
])
def test_writer_commits_every_batch(loops: int, linger_s: float, wait: bool) -> None:
    store = MemoryStorage()
    series = [[Labels({"__name__": "m", "i": str(i), "t": str(t)}) for i in range(3)] for t in range(loops)]

    async def main() -> Writer:
        w = Writer(store, asyncio.get_running_loop(), linger_s=linger_s)
        futs = [w.submit(_batch(series[t], 1000 + k)) for k in range(3) for t in range(loops)]
        if wait:
            await asyncio.wait_for(asyncio.gather(*futs), 10)
            assert w.idle
        return w

    w = asyncio.run(main())
    w.close()
    assert _samples(store) == loops * 3 * 3
    assert w.samples_appended == loops * 3 * 3
    assert w.commit_errors == 0
    if loops > 1 and wait:
        assert w.commits < loops * 3  # batches that arrive together share a commit


def test_writer_survives_a_failing_commit() -> None:
    class Broken(MemoryStorage):
        def appender(self):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk full")

    async def main() -> Writer:
        w = Writer(Broken(), asyncio.get_running_loop(), linger_s=0.0)
        await asyncio.wait_for(w.submit(_batch([Labels({"__name__": "m"})], 1)), 10)
        return w

    w = asyncio.run(main())
    w.close()
    assert (w.commit_errors, w.commits) == (1, 0)
