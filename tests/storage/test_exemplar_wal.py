"""The exemplar WAL (promlab.storage.exwal): exemplars of a writable Parquet store survive a
restart; damage costs only the damaged records (never samples); replay keeps the newest
``max_exemplars``; head flushes drop what is older than the documented floor."""

from __future__ import annotations

import logging
import math
import os
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter

from promlab.model import Labels, Matcher, MatchType
from promlab.scrape import start
from promlab.storage.exemplars import ExemplarItem, ExemplarStore, exemplars_of
from promlab.storage.exwal import FILE_NAME, MIN_REWRITE, decode, encode
from promlab.storage.histwal import read_records
from promlab.storage.store import ParquetStore, open_store
from tests.scrape.omtarget import serve_openmetrics

H = 3_600_000
T0 = 1_700_000_000_000
S = Labels({"__name__": "a_total", "job": "j"})
U = Labels({"__name__": "b_total", "job": "k", "ü": "ß"})


def item(series: Labels, trace: str, ts: int, value: float = 1.0, timed: bool = True) -> ExemplarItem:
    return (series, Labels({"trace_id": trace}), value, ts, timed)


def ex_store(st: ParquetStore) -> ExemplarStore:
    got = exemplars_of(st)
    assert got is not None
    return got


def stored(st: ParquetStore) -> list[tuple[Labels, str, int, float, bool]]:
    """``(series, trace id, ts)`` in buffer order (the order replay must rebuild)."""
    out = [(s, e.labels.get("trace_id", ""), e.timestamp_ms, e.value, e.has_timestamp)
           for r in ex_store(st).select(-(1 << 62), 1 << 62, [[]]) for e in r.exemplars
           for s in [r.series]]
    return sorted(out, key=lambda x: (x[2], str(x[0])))


def samples(st: ParquetStore) -> int:
    q = st.querier(0, 1 << 62)
    try:
        ss = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
        return int(ss.ts_ms.shape[0])
    finally:
        q.close()


def write(st: ParquetStore, items: list[ExemplarItem], *, n_samples: int = 3) -> None:
    app = st.appender()
    for i in range(n_samples):
        app.append(S, T0 + i * 1000, float(i))
    app.commit()
    ex_store(st).append_many(items)


ITEMS = [item(S, "a", T0), item(U, "b", T0 + 1, math.inf), item(S, "c", T0 + 2, -0.5, timed=False),
         item(U, "d", T0 + 3, math.nan)]


def same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    def key(x: tuple[object, ...]) -> tuple[object, ...]:
        return tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in x)
    return [key(x) for x in a] == [key(x) for x in b]


def test_encode_decode_roundtrip() -> None:
    got = decode(encode(ITEMS))
    assert same(got, ITEMS)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [
    pytest.param(b"not json", id="not-json"),
    pytest.param(b'{"s": [], "e": [[0, [], 1.0, 5, true]]}', id="bad-series-index"),
    pytest.param(b'{"s": [["a"]], "e": []}', id="odd-label-list"),
    pytest.param(b'{"e": []}', id="no-series"),
])
def test_decode_refuses(payload: bytes) -> None:
    with pytest.raises(ValueError, match="bad exemplar WAL record"):
        decode(payload)


def test_survive_restart(tmp_path: Path) -> None:
    with open_store(tmp_path) as st:
        write(st, ITEMS)
        want = stored(st)
    assert len(want) == 4
    with open_store(tmp_path) as st:
        assert same(stored(st), want)  # type: ignore[arg-type]
        # the replayed ones keep their rules: the newest per series is known again
        assert ex_store(st).append(*item(S, "c", T0 + 2, -0.5, timed=False)) == "duplicate"
        assert ex_store(st).append(*item(S, "e", T0 + 10)) == "added"
    with open_store(tmp_path) as st:
        assert [x[1] for x in stored(st)] == ["a", "b", "c", "d", "e"]


def test_old_wal_without_exemplar_log(tmp_path: Path) -> None:
    """A WAL directory from before the exemplar log opens unchanged."""
    with open_store(tmp_path) as st:
        write(st, [], n_samples=5)
    os.unlink(tmp_path / "wal" / FILE_NAME)
    with open_store(tmp_path) as st:
        assert samples(st) == 5
        assert stored(st) == []


def tear(path: Path, junk: bytes) -> None:
    with open(path, "ab") as f:
        f.write(junk)


@pytest.mark.parametrize(("damage", "kept"), [
    # a header promising 1000 bytes, 10 of them there: a write cut short by a crash
    pytest.param("torn-tail", ["a", "b", "c", "d"], id="torn-tail"),
    pytest.param("flipped-first", ["c", "d"], id="flipped-byte-in-first-record"),
    pytest.param("garbage-tail", ["a", "b", "c", "d"], id="garbage-tail"),
])
def test_damage_costs_only_exemplars(tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str,
                                     kept: list[str]) -> None:
    # Samples unflushed (kill -9 style: no close), so the sample WAL must still replay them.
    st = open_store(tmp_path, auto_compact=False)
    write(st, ITEMS[:2], n_samples=4)
    ex_store(st).append_many(ITEMS[2:])
    log_path = tmp_path / "wal" / FILE_NAME
    data = log_path.read_bytes()
    if damage == "torn-tail":
        tear(log_path, struct.pack("<II", 1000, 0) + b"x" * 10)
    elif damage == "garbage-tail":
        tear(log_path, b"\x07" * 50)
    else:
        raw = bytearray(data)
        raw[12] ^= 0xFF  # inside the first record's payload
        log_path.write_bytes(bytes(raw))
    st._release_lock()  # the process dies: no flush, no close
    with caplog.at_level(logging.WARNING, logger="promlab.storage"):
        st2 = open_store(tmp_path)
    try:
        assert samples(st2) == 4
        assert [x[1] for x in stored(st2)] == kept
        assert any(FILE_NAME in r.getMessage() for r in caplog.records)
        # the log was repaired: a new exemplar appends after the good records
        assert ex_store(st2).append(*item(U, "z", T0 + 100)) == "added"
    finally:
        st2.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="promlab.storage"), open_store(tmp_path) as st3:
        assert [x[1] for x in stored(st3)] == [*kept, "z"]
    assert not [r for r in caplog.records if FILE_NAME in r.getMessage()]


def test_replay_keeps_newest_max_exemplars(tmp_path: Path) -> None:
    with open_store(tmp_path) as st:
        for i in range(10):  # one record each
            ex_store(st).append(*item(S if i % 2 else U, f"t{i}", T0 + i))
        write(st, [])
    with open_store(tmp_path, max_exemplars=3) as st:
        assert ex_store(st).max_exemplars == 3
        assert [x[1] for x in stored(st)] == ["t7", "t8", "t9"]
    with open_store(tmp_path, max_exemplars=0) as st:  # off: nothing replayed, nothing kept
        assert stored(st) == []
        assert ex_store(st).append(*item(S, "x", T0 + 50)) == "disabled"


@pytest.mark.parametrize("how", ["close", "automatic-flush"])
def test_flush_drops_exemplars_below_the_floor(tmp_path: Path, how: str) -> None:
    """At a head flush the log keeps the exemplars at or after (newest sample - 1.5 x
    block_duration): what a restart replays. Memory keeps the rest until the process ends."""
    st = open_store(tmp_path, block_duration="1h", auto_compact=False)
    newest = T0 + 10 * H
    old, edge, recent = newest - 2 * H, newest - 3 * H // 2, newest - H
    ex_store(st).append_many([item(S, "old", old), item(S, "edge", edge), item(S, "recent", recent)])
    app = st.appender()
    app.append(S, T0, 1.0)
    app.commit()
    app = st.appender()
    app.append(S, newest, 2.0)  # the head now spans 10 h > 1.5 h: an automatic flush
    app.commit()
    if how == "close":
        st.close()
    else:
        # after the automatic flush; no clean close (the floor came from that flush)
        assert len(stored(st)) == 3  # memory unchanged
        st._release_lock()
    with open_store(tmp_path) as st2:
        assert [x[1] for x in stored(st2)] == ["edge", "recent"]


@pytest.fixture
def om_target() -> Iterator[tuple[Counter, str]]:
    registry = CollectorRegistry()
    c = Counter("jobs", "Jobs done.", registry=registry)
    with serve_openmetrics(registry) as addr:
        yield c, addr


def test_scraped_exemplars_survive_restart(tmp_path: Path, om_target: tuple[Counter, str]) -> None:
    """Through the real scrape path (an OpenMetrics target with exemplars, the scrape writer)."""
    counter, addr = om_target
    cfg = {"scrape_configs": [{"job_name": "om", "scrape_interval": "200ms",
                               "static_configs": [{"targets": [addr]}]}]}
    st = open_store(tmp_path)
    handle = start(cfg, data=st)
    try:
        for trace in ("t1", "t2"):
            counter.inc(exemplar={"trace_id": trace})
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and trace not in [x[1] for x in stored(st)]:
                time.sleep(0.1)
    finally:
        handle.stop()
    before = stored(st)
    st.close()
    assert [x[1] for x in before] == ["t1", "t2"]
    assert before[0][0].get("job") == "om" and before[0][0].get("__name__") == "jobs_total"
    with open_store(tmp_path) as st2:
        assert stored(st2) == before


class ListJournal:
    """A journal in a list (a fake): what a store would find in its log."""

    def __init__(self, *, fail: bool = False, limit: int = 1 << 30) -> None:
        self.items: list[ExemplarItem] = []
        self.fail = fail
        self.limit = limit

    def log(self, items: Sequence[ExemplarItem]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.items.extend(items)

    def rewrite(self, items: Sequence[ExemplarItem]) -> None:
        self.items = list(items)

    def oversized(self, buffered: int) -> bool:
        return len(self.items) > self.limit


def test_journal_before_visibility() -> None:
    """A failing log refuses the whole append: nothing becomes visible that is not durable."""
    st = ExemplarStore(10)
    st.attach_journal(ListJournal(fail=True))
    with pytest.raises(OSError, match="disk full"):
        st.append_many([item(S, "a", 1), item(U, "b", 2)])
    assert len(st) == 0
    j = ListJournal()
    st.attach_journal(j)
    assert st.append_verdicts([item(S, "a", 1), item(S, "a", 1), item(S, "old", 0)]) == \
        ["added", "duplicate", "out of order"]
    assert [x[1]["trace_id"] for x in j.items] == ["a"]  # only what was added is logged


def test_size_rewrite_keeps_the_flush_floor() -> None:
    st = ExemplarStore(10)
    j = ListJournal(limit=6)
    st.attach_journal(j)
    st.append_many([item(S, f"t{i}", i) for i in range(3)])
    assert st.compact_journal(2) == 1  # a flush: only t2 is at or above the floor
    for i in range(3, 10):
        st.append(*item(U, f"t{i}", i))
    # the log grew past its limit and was rewritten from the buffer, t0 and t1 (below the
    # floor, still in memory) left out
    assert len(st) == 10
    assert [x[1]["trace_id"] for x in j.items] == [f"t{i}" for i in range(2, 10)]


def test_log_size_stays_bounded(tmp_path: Path) -> None:
    """Many exemplars between flushes: the log is rewritten, replay gives the same buffer."""
    st = open_store(tmp_path, max_exemplars=100, wal_fsync=False)
    for b in range(30):
        ex_store(st).append_many([item(S, f"t{b}-{i}", T0 + b * 1000 + i) for i in range(1000)])
    want = stored(st)
    payloads, _, _, _ = read_records(str(tmp_path / "wal" / FILE_NAME))
    in_log = sum(len(decode(p)) for p in payloads)
    assert in_log <= MIN_REWRITE + 1000
    st._release_lock()  # the process dies: the log alone brings them back
    with open_store(tmp_path, max_exemplars=100) as st2:
        assert stored(st2) == want
        assert [x[1] for x in want][-1] == "t29-999" and len(want) == 100
