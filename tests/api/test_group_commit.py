"""Remote write group commits: concurrent requests share one commit, answers stay per request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promlab import Session
from promlab.api.remote import RemoteWriteReceiver, WriteResult
from promlab.model import Labels, Matcher, MatchType
from promlab.remote.codec import compress
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.storage.interface import AppendStats, Storage

NOW_MS = int(time.time() * 1000) // 1000 * 1000
V1 = "application/x-protobuf"


def body(job: str, samples: list[tuple[int, float]]) -> bytes:
    req = pb.WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="gc_metric")
    ts.labels.add(name="job", value=job)
    for t, v in samples:
        ts.samples.add(timestamp=t, value=v)
    return compress(req.SerializeToString())


class GatedStore:
    """A real store whose first commit waits for :attr:`release` (a fake, not a mock)."""

    def __init__(self, store: Storage) -> None:
        self.store = store
        self.release = threading.Event()
        self.entered = threading.Event()
        self.commits: list[AppendStats] = []

    def appender(self) -> GatedAppender:
        return GatedAppender(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class GatedAppender:
    def __init__(self, gate: GatedStore) -> None:
        self.gate = gate
        self.app = gate.store.appender()

    @property
    def reports_units(self) -> bool:
        return bool(getattr(self.app, "reports_units", False))

    def append_batch(self, *args: Any, **kwargs: Any) -> None:
        self.app.append_batch(*args, **kwargs)

    def commit(self) -> AppendStats:
        self.gate.entered.set()
        assert self.gate.release.wait(30)
        stats = self.app.commit()
        self.gate.commits.append(stats)
        return stats


def run_concurrently(rx: RemoteWriteReceiver, gate: GatedStore, first: bytes,
                     rest: list[bytes]) -> list[WriteResult]:
    """``first`` commits (held at the gate) while ``rest`` queue up; then all go on."""
    out: list[WriteResult | None] = [None] * (1 + len(rest))

    def send(i: int, b: bytes) -> None:
        out[i] = rx.handle(b, V1, "snappy")

    threads = [threading.Thread(target=send, args=(0, first))]
    threads[0].start()
    assert gate.entered.wait(30)
    for i, b in enumerate(rest, 1):
        threads.append(threading.Thread(target=send, args=(i, b)))
        threads[-1].start()
    deadline = time.monotonic() + 30
    while len(rx._commits._queue) < len(rest) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(rx._commits._queue) == len(rest)
    gate.release.set()
    for t in threads:
        t.join(30)
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def samples_of(s: Session, job: str) -> list[tuple[int, float]]:
    q = s.store.querier(0, NOW_MS + 3_600_000)
    ss = q.select([Matcher(MatchType.EQUAL, "__name__", "gc_metric"),
                   Matcher(MatchType.EQUAL, "job", job)])
    q.close()
    if not len(ss):
        return []
    _, t, v = ss.series(0)
    return list(zip(t.tolist(), v.tolist(), strict=True))


@pytest.mark.parametrize("too_old", [False, True], ids=["clean", "one-refused"])
def test_queued_requests_share_one_commit(tmp_path: Path, too_old: bool) -> None:
    with Session(tmp_path / "data") as s:
        gate = GatedStore(s.storage)
        rx = RemoteWriteReceiver(gate)  # type: ignore[arg-type]
        # job "d" already has a recent sample: a 2 h older one is out of bounds (before the head's minimum valid time).
        gate.release.set()
        assert rx.handle(body("d", [(NOW_MS, 1.0)]), V1, "snappy").status == 204
        gate.release.clear()
        gate.entered.clear()
        gate.commits.clear()
        d_samples = [(NOW_MS - 7_200_000, 9.0)] if too_old else [(NOW_MS + 1000, 9.0)]
        results = run_concurrently(
            rx, gate, body("a", [(NOW_MS, 1.0)]),
            [body("b", [(NOW_MS, 2.0), (NOW_MS + 1000, 3.0)]), body("c", [(NOW_MS, 4.0)]),
             body("d", d_samples)])
        assert len(gate.commits) == 2  # the first alone, then the three queued together
        assert results[0].status == 204
        assert samples_of(s, "a") == [(NOW_MS, 1.0)]
        assert samples_of(s, "b") == [(NOW_MS, 2.0), (NOW_MS + 1000, 3.0)]
        assert samples_of(s, "c") == [(NOW_MS, 4.0)]
        if too_old:
            # Each request of the shared commit is refused or stored whole on its own.
            assert [r.status for r in results[1:]] == [204, 204, 400]
            assert results[3].message == "out of bounds"
            assert samples_of(s, "d") == [(NOW_MS, 1.0)]
        else:
            assert [r.status for r in results[1:]] == [204, 204, 204]
            assert [r.written for r in results] == [1, 2, 1, 1]
            assert samples_of(s, "d") == [(NOW_MS, 1.0), (NOW_MS + 1000, 9.0)]


def test_many_threads_lose_nothing(tmp_path: Path) -> None:
    with Session(tmp_path / "data") as s:
        rx = RemoteWriteReceiver(s.storage)
        n_threads, per_thread = 8, 25

        def work(k: int) -> None:
            for i in range(per_thread):
                r = rx.handle(body(f"t{k}", [(NOW_MS - 600_000 + i * 1000, float(i))]), V1,
                              "snappy")
                assert r.status == 204, r.message

        threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for k in range(n_threads):
            got = samples_of(s, f"t{k}")
            assert [v for _, v in got] == list(np.arange(per_thread, dtype=float))
        assert Labels({"__name__": "gc_metric", "job": "t0"}) in rx.table.series
