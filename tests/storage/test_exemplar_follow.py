"""A read-only store serves the writer's exemplars (promlab.storage.exfollow): loaded from
``wal/exemplars.log`` on opening, re-read when the log changed (appends read from the last whole
record on, rewrites read whole), never written; a torn tail is silently not yet read, damage is
skipped with one warning per change."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from promlab import Session
from promlab.api import Server
from promlab.model import Labels
from promlab.storage.exemplars import ExemplarItem, ExemplarStore, exemplars_of
from promlab.storage.exfollow import ExemplarFollower
from promlab.storage.exwal import FILE_NAME, MIN_REWRITE, encode
from promlab.storage.histwal import record_header
from promlab.storage.store import ParquetStore, open_store
from promlab.storage.walwatch import WAL_RACY_NS

T0 = 1_700_000_000_000
S = Labels({"__name__": "a_total", "job": "j"})
U = Labels({"__name__": "b_total", "job": "k"})
EVER = (-(1 << 62), 1 << 62)


def item(series: Labels, trace: str, ts: int) -> ExemplarItem:
    return (series, Labels({"trace_id": trace}), 1.0, ts, True)


def exemplars(st: ParquetStore) -> ExemplarStore:
    got = exemplars_of(st)
    assert got is not None
    return got


def follower(ro: ParquetStore) -> ExemplarFollower:
    got = exemplars_of(ro, create=False)
    assert isinstance(got, ExemplarFollower)
    return got


def traces(st: ParquetStore) -> list[str]:
    """The trace ids a query over all time and series answers, oldest first."""
    found = [(e.timestamp_ms, e.labels["trace_id"])
             for r in exemplars(st).select(*EVER, [[]]) for e in r.exemplars]
    return [t for _, t in sorted(found)]


def scrape(st: ParquetStore, items: list[ExemplarItem]) -> None:
    """What the scrape writer does: the samples committed, then the exemplars appended to the
    store's exemplar storage (which logs them)."""
    app = st.appender()
    for s, _, _, ts, _ in items:
        app.append(s, ts, 1.0)
    app.commit()
    exemplars(st).append_many(items)


def age(path: Path, seconds: float = 2 * WAL_RACY_NS / 1e9) -> None:
    """Set the log's times ``seconds`` into the past (its fingerprint can be trusted)."""
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[ParquetStore]:
    st = open_store(tmp_path, wal_fsync=False, auto_compact=False)
    yield st
    st.close()


def log_path(st: ParquetStore) -> Path:
    return Path(st.wal_dir) / FILE_NAME


@pytest.mark.parametrize("aged", [False, True], ids=["fresh-times", "old-times"])
def test_readonly_sees_what_the_writer_logs(writer: ParquetStore, aged: bool) -> None:
    scrape(writer, [item(S, "a", T0), item(U, "b", T0 + 1)])
    with open_store(writer.path, readonly=True) as ro:
        assert traces(ro) == ["a", "b"]
        scrape(writer, [item(S, "c", T0 + 2)])
        if aged:  # the size and the inode still tell
            age(log_path(writer))
        assert traces(ro) == ["a", "b", "c"]
        scrape(writer, [item(U, "d", T0 + 3), item(S, "e", T0 + 4)])
        assert traces(ro) == ["a", "b", "c", "d", "e"]
        # appends are read from the last whole record on: one whole read (the opening)
        assert follower(ro).full_reads == 1
        assert traces(ro) == traces(writer)


def test_unchanged_log_is_not_read_again(writer: ParquetStore) -> None:
    scrape(writer, [item(S, "a", T0)])
    age(log_path(writer))
    with open_store(writer.path, readonly=True) as ro:
        reads = follower(ro).reads
        for _ in range(3):
            assert traces(ro) == ["a"]
        assert follower(ro).reads == reads


@pytest.mark.parametrize("how", ["flush", "size-rewrite"])
def test_writer_rewrites_stay_consistent(tmp_path: Path, how: str) -> None:
    """A head flush rewrites the log keeping exemplars above its floor; a log grown past twice
    the buffer is rewritten from the buffer: the read-only store then holds what the log holds."""
    writer = open_store(tmp_path, wal_fsync=False, auto_compact=False, block_duration="1h",
                        max_exemplars=100)
    try:
        if how == "flush":  # the head's newest sample at T0 + 2 h: the floor is T0 + 30 min
            exemplars(writer).append_many([item(S, "old", T0), item(S, "edge", T0 + 1_800_000)])
            scrape(writer, [item(S, "new", T0 + 7_200_000)])
        else:
            scrape(writer, [item(S, f"t{i}", T0 + i) for i in range(MIN_REWRITE)])
        ro = open_store(tmp_path, readonly=True, max_exemplars=100)
        try:
            before = traces(ro)
            assert before == traces(writer)
            if how == "flush":
                writer.flush()  # "old" is below the floor: no longer logged
                want = ["edge", "new"]
            else:
                scrape(writer, [item(U, "last", T0 + MIN_REWRITE)])  # over 10k logged: rewritten
                want = [f"t{i}" for i in range(MIN_REWRITE - 99, MIN_REWRITE)] + ["last"]
            age(log_path(writer))
            assert traces(ro) == want
            assert follower(ro).full_reads == 2
            # appends after a rewrite (no sample so late that the head is flushed again)
            after = T0 + 3 * 3_600_000 if how == "flush" else T0 + MIN_REWRITE + 1
            scrape(writer, [item(U, "after", after)])
            assert traces(ro) == [*want, "after"][-100:]
        finally:
            ro.close()
    finally:
        writer.close()


def test_readonly_keeps_the_newest_max_exemplars(writer: ParquetStore) -> None:
    scrape(writer, [item(S, f"t{i}", T0 + i) for i in range(5)])
    with open_store(writer.path, readonly=True, max_exemplars=3) as ro:
        assert traces(ro) == ["t2", "t3", "t4"]
        scrape(writer, [item(U, "t5", T0 + 5)])
        assert traces(ro) == ["t3", "t4", "t5"]
    with open_store(writer.path, readonly=True, max_exemplars=0) as ro:  # off
        assert traces(ro) == []


def test_torn_tail_is_not_yet_read(writer: ParquetStore, caplog: pytest.LogCaptureFixture) -> None:
    """A record the writer is still writing: no error, no warning, read once complete; the log is
    never written by the read-only store (a writer would truncate a torn tail)."""
    scrape(writer, [item(S, "a", T0)])
    path = log_path(writer)
    payload = encode([item(U, "b", T0 + 1)])
    frame = record_header(payload) + payload
    with caplog.at_level(logging.DEBUG, logger="promlab.storage"), \
            open_store(writer.path, readonly=True) as ro:
        for cut in (3, 8, len(frame) - 1):  # a partial header, a header alone, all but a byte
            size = path.stat().st_size
            with open(path, "ab") as f:
                f.write(frame[:cut])
            assert traces(ro) == ["a"]
            assert traces(ro) == ["a"]
            assert path.read_bytes()[size:] == frame[:cut]  # left as it was
            os.truncate(path, size)
        with open(path, "ab") as f:
            f.write(frame[:10])
        assert traces(ro) == ["a"]
        with open(path, "ab") as f:
            f.write(frame[10:])
        assert traces(ro) == ["a", "b"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def frames(*payloads: bytes) -> bytes:
    return b"".join(record_header(p) + p for p in payloads)


GOOD = [encode([item(S, "a", T0)]), encode([item(S, "b", T0 + 1)]), encode([item(S, "c", T0 + 2)])]


@pytest.mark.parametrize(("log", "want"), [
    pytest.param(frames(GOOD[0], GOOD[1], GOOD[2])[:-30] + b"\x00" * 30 + frames(GOOD[2]),
                 ["a", "b", "c"], id="damaged-bytes-then-good-record"),
    pytest.param(frames(GOOD[0], b'{"s": [], "e": [[0]]}', GOOD[2]), ["a", "c"],
                 id="undecodable-record"),
    # a header whose record fits in the file but fails its CRC (a header promising more bytes
    # than there are is a record not yet complete: not read, not reported)
    pytest.param(frames(GOOD[0], GOOD[1]) + b"\x04\x00\x00\x00\x00\x00\x00\x00abcd", ["a", "b"],
                 id="damaged-tail"),
])
def test_damage_is_skipped_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                            log: bytes, want: list[str]) -> None:
    open_store(tmp_path).close()
    path = tmp_path / "wal" / FILE_NAME
    path.write_bytes(log)
    with caplog.at_level(logging.WARNING, logger="promlab.storage"), \
            open_store(tmp_path, readonly=True) as ro:
        for _ in range(3):  # fresh file times: every query reads the log's tail again
            assert traces(ro) == want
        os.utime(path)  # a change of fingerprint only: the same damage is not reported again
        assert traces(ro) == want
    warned = [r for r in caplog.records if FILE_NAME in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert path.read_bytes() == log  # never repaired by a read-only store


def test_inode_rewritten_in_place_is_read_whole(tmp_path: Path) -> None:
    """Same inode, new contents (a rewrite may reuse a freed inode): the last record read is
    checked before reading on from it."""
    open_store(tmp_path).close()
    path = tmp_path / "wal" / FILE_NAME
    path.write_bytes(frames(GOOD[0], GOOD[1]))
    with open_store(tmp_path, readonly=True) as ro:
        assert traces(ro) == ["a", "b"]
        ino = path.stat().st_ino
        with open(path, "r+b") as f:  # rewritten in place, longer
            f.write(frames(encode([item(U, "x", T0 + 5), item(U, "y", T0 + 6)]), GOOD[2]))
        assert path.stat().st_ino == ino
        assert traces(ro) == ["c", "x", "y"]


def test_missing_log(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    path = tmp_path / "wal" / FILE_NAME
    path.write_bytes(frames(GOOD[0]))
    with open_store(tmp_path, readonly=True) as ro:
        assert traces(ro) == ["a"]
        path.unlink()
        assert traces(ro) == []
        path.write_bytes(frames(GOOD[1]))
        assert traces(ro) == ["b"]


def test_query_exemplars_over_a_readonly_session(writer: ParquetStore) -> None:
    """End to end: a notebook's read-only Session served beside a writer."""
    now = int(time.time()) * 1000
    scrape(writer, [item(S, "a", now - 1000)])
    with Session(writer.path, read_only=True) as s, \
            Server(s, listen="127.0.0.1:0", enable_lifecycle=False) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as c:
        def query() -> list[tuple[str, str, float]]:
            r = c.get("/api/v1/query_exemplars",
                      params={"query": "a_total", "start": now / 1000 - 60, "end": now / 1000 + 60})
            r.raise_for_status()
            body = r.json()
            assert body["status"] == "success", json.dumps(body)
            return [(d["seriesLabels"]["job"], e["labels"]["trace_id"], e["timestamp"])
                    for d in body["data"] for e in d["exemplars"]]
        assert query() == [("j", "a", (now - 1000) / 1000)]
        scrape(writer, [item(S, "b", now), item(U, "other", now)])
        assert query() == [("j", "a", (now - 1000) / 1000), ("j", "b", now / 1000)]


def test_reading_while_the_writer_appends(writer: ParquetStore,
                                          caplog: pytest.LogCaptureFixture) -> None:
    """A writer thread appends while queries read: each answer is a prefix of what was written
    (records appear whole, in order), nothing is warned, and the last answer is everything."""
    n = 300
    want = [f"t{i}" for i in range(n)]
    with caplog.at_level(logging.WARNING, logger="promlab.storage"), \
            open_store(writer.path, readonly=True) as ro:
        def write() -> None:
            for i in range(n):
                exemplars(writer).append_many([item(S if i % 2 else U, want[i], T0 + i)])

        t = threading.Thread(target=write)
        t.start()
        answers = []
        while t.is_alive():
            answers.append(traces(ro))
        t.join()
        answers.append(traces(ro))
    assert all(a == want[:len(a)] for a in answers)
    assert answers[-1] == want
    assert not caplog.records
