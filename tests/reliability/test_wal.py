"""WAL damage (issue 15 item 5): every intact record is recovered, losses are counted exactly.

Segment cases damage one WAL segment built from known records and read it as the writer's replay
(``repair=True``) and as a read-only follower; checkpoint cases damage the checkpoints of a store
left by a writer that died without closing, and open it.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import describe_store, open_store
from promlab.storage.wal import (
    MAGIC,
    SamplesRecord,
    SeriesRecord,
    WalFollower,
    encode_samples,
    encode_series,
)

A = Labels({"__name__": "m", "s": "a"})
B = Labels({"__name__": "m", "s": "b"})
C = Labels({"__name__": "m", "s": "c"})
HDR = 13  # sync(4) type(1) length(4) crc(4)


def _samples(series: list[Labels], t: int) -> bytes:
    sids = np.array([ls.hash for ls in series], np.int64)
    return encode_samples(sids, np.full(len(series), t, np.int64), np.full(len(series), float(t)))


# Segment 0 holds records 0-6, segment 1 record 7.
RECORDS: list[tuple[bytes, list[Labels], int | None]] = [
    (encode_series([(A.hash, A), (B.hash, B)]), [A, B], None),
    (_samples([A, B], 1), [A, B], 1),
    (_samples([A, B], 2), [A, B], 2),
    (encode_series([(C.hash, C)]), [C], None),
    (_samples([A, B, C], 3), [A, B, C], 3),
    (_samples([A, B, C], 4), [A, B, C], 4),
    (_samples([A, B, C], 5), [A, B, C], 5),
    (_samples([A, B, C], 6), [A, B, C], 6),
]
SEG0 = 7


def _offsets() -> list[int]:
    out, pos = [], len(MAGIC)
    for i, (rec, _, _) in enumerate(RECORDS):
        if i == SEG0:
            pos = len(MAGIC)
        out.append(pos)
        pos += len(rec)
    return out


OFF = _offsets()
Damager = Callable[[bytearray, bytearray], tuple[bytearray, bytearray]]


def flip(rec: int, at: int, mask: int = 0xFF) -> Damager:
    """Flip byte ``at`` of record ``rec`` (0-12: header, 13+: payload)."""
    def f(s0: bytearray, s1: bytearray) -> tuple[bytearray, bytearray]:
        seg = s0 if rec < SEG0 else s1
        seg[OFF[rec] + at] ^= mask
        return s0, s1
    return f


def set_length(rec: int, length: Callable[[int], int]) -> Damager:
    def f(s0: bytearray, s1: bytearray) -> tuple[bytearray, bytearray]:
        pos = OFF[rec] + 5
        (old,) = struct.unpack_from("<I", s0, pos)
        struct.pack_into("<I", s0, pos, length(old))
        return s0, s1
    return f


def both(*fs: Damager) -> Damager:
    def f(s0: bytearray, s1: bytearray) -> tuple[bytearray, bytearray]:
        for g in fs:
            s0, s1 = g(s0, s1)
        return s0, s1
    return f


def zero(start: int, end: int) -> Damager:
    def f(s0: bytearray, s1: bytearray) -> tuple[bytearray, bytearray]:
        s0[start:end] = bytes(end - start)
        return s0, s1
    return f


def insert(at: int, junk: bytes) -> Damager:
    def f(s0: bytearray, s1: bytearray) -> tuple[bytearray, bytearray]:
        return s0[:at] + bytearray(junk) + s0[at:], s1
    return f


def cut_last(nbytes: int) -> Damager:
    def f(s0: bytearray, s1: bytearray) -> tuple[bytearray, bytearray]:
        return s0, s1[:-nbytes]
    return f


@dataclass(frozen=True)
class Case:
    damage: Damager
    lost: set[int]  # records that must be missing; every other one must be recovered
    expect: dict[str, int] = field(default_factory=dict)  # exact loss counters
    orphans: set[str] = field(default_factory=set)  # series whose series record is lost


def n_samples(*recs: int) -> int:
    return sum(len(RECORDS[r][1]) for r in recs)


CASES = {
    "payload-flip": Case(flip(2, HDR + 5), {2}, {"records": 1, "samples": 2, "series": 0,
                                                   "bytes": len(RECORDS[2][0])}),
    "crc-flip": Case(flip(2, 10), {2}, {"records": 1, "samples": 2}),
    "last-payload-byte": Case(flip(5, len(RECORDS[5][0]) - 1), {5}, {"records": 1, "samples": 3}),
    "sync-flip": Case(flip(2, 1), {2}, {"records": 1, "samples": 2}),
    "type-flip": Case(flip(4, 4, 0x0C), {4}, {"records": 1}),
    "length-longer": Case(set_length(2, lambda n: n + 100), {2}, {"records": 1, "samples": 2}),
    "length-shorter": Case(set_length(4, lambda n: n - 24), {4}, {"records": 1, "samples": 3}),
    "length-huge": Case(set_length(1, lambda n: 0xFFFFFFF0), {1}, {"records": 1, "samples": 2}),
    "length-zero": Case(set_length(5, lambda n: 0), {5}, {"records": 1, "samples": 3}),
    "series-record": Case(flip(3, HDR + 4), {3}, {"records": 1, "series": 1,
                                                  "samples": 4}, {"c"}),
    "first-series-record": Case(flip(0, HDR + 9), {0}, {"series": 2, "samples": 6 + 2 * 3},
                                {"a", "b"}),
    "magic": Case(flip(0, -len(MAGIC) + 2), set(), {"records": 0, "samples": 0, "bytes": 8}),
    "magic-and-first": Case(both(flip(0, -3), flip(0, HDR + 2)), {0},
                            {"bytes": 8 + len(RECORDS[0][0])}, {"a", "b"}),
    "two-records": Case(both(flip(1, HDR + 30), flip(5, 7)), {1, 5}, {"records": 2,
                                                                      "samples": 5}),
    # headers wiped: the samples of records 2 and 4 cannot be counted, only C's orphans
    "zeroed-span": Case(zero(OFF[2] + 3, OFF[4] + 20), {2, 3, 4}, {"samples": 3}, {"c"}),
    "garbage-between": Case(insert(OFF[3], b"\xa7PL\x5e\x02garbage" * 3), set(),
                            {"samples": 0, "series": 0, "bytes": 36}),
    "end-of-older-segment": Case(flip(6, len(RECORDS[6][0]) - 2), {6}, {"records": 1,
                                                                        "samples": 3}),
    "next-segment": Case(flip(7, HDR + 1), {7}, {"records": 1, "samples": 3}),
}
TORN = Case(cut_last(5), {7}, {"records": 0, "samples": 0, "bytes": 0})


def _write(wal_dir: str, damage: Damager) -> None:
    s0 = bytearray(MAGIC + b"".join(r for r, _, _ in RECORDS[:SEG0]))
    s1 = bytearray(MAGIC + b"".join(r for r, _, _ in RECORDS[SEG0:]))
    s0, s1 = damage(s0, s1)
    os.makedirs(wal_dir)
    for n, data in enumerate((s0, s1)):
        with open(os.path.join(wal_dir, f"{n:08d}"), "wb") as f:
            f.write(data)


def _contents(recs: list[SeriesRecord | SamplesRecord]) -> tuple[set[str], set[tuple[str, int]]]:
    names = {A.hash: "a", B.hash: "b", C.hash: "c"}
    series = {names[sid] for r in recs if isinstance(r, SeriesRecord) for sid, _ in r.series}
    samples = {(names[int(s)], int(t)) for r in recs if isinstance(r, SamplesRecord)
               for s, t in zip(r.sids, r.ts_ms, strict=True)}
    return series, samples


def _want(case: Case) -> tuple[set[str], set[tuple[str, int]]]:
    names = {A.hash: "a", B.hash: "b", C.hash: "c"}
    series, samples = set(), set()
    for i, (_, ls, t) in enumerate(RECORDS):
        if i in case.lost:
            continue
        for x in ls:
            if t is None:
                series.add(names[x.hash])
            elif names[x.hash] not in case.orphans:
                samples.add((names[x.hash], t))
    return series, samples


@pytest.mark.parametrize("repair", [pytest.param(True, id="writer"),
                                    pytest.param(False, id="readonly")])
@pytest.mark.parametrize("case", [pytest.param(c, id=k) for k, c in [*CASES.items(),
                                                                       ("torn-tail", TORN)]])
def test_segment_damage_loses_only_the_damaged_records(tmp_path: os.PathLike[str], case: Case,
                                                       repair: bool) -> None:
    wal_dir = os.path.join(tmp_path, "wal")
    _write(wal_dir, case.damage)
    fol = WalFollower(wal_dir, repair=repair)
    reset, recs = fol.poll()
    assert reset
    assert _contents(recs) == _want(case)
    got = fol.losses.to_dict()
    for k, v in case.expect.items():
        assert got[k] == v, (k, got)
    if case is TORN:  # the writer cuts it off; a reader waits for the rest of the record
        assert got["torn_bytes"] == (len(RECORDS[7][0]) - 5 if repair else 0) and not fol.losses
        assert os.path.getsize(os.path.join(wal_dir, "00000001")) == (
            OFF[7] if repair else len(MAGIC) + len(RECORDS[7][0]) - 5)
    else:
        assert fol.losses and got["torn_bytes"] == 0
        assert fol.needs_checkpoint == (repair and bool(case.lost or got["bytes"]))
    # Polling again reads nothing new and counts nothing twice.
    assert fol.poll() == (False, [])
    assert fol.losses.to_dict() == got


def test_intact_wal_reports_no_losses(tmp_path: os.PathLike[str]) -> None:
    wal_dir = os.path.join(tmp_path, "wal")
    _write(wal_dir, lambda a, b: (a, b))
    fol = WalFollower(wal_dir, repair=True)
    _, recs = fol.poll()
    assert _contents(recs) == _want(Case(lambda a, b: (a, b), set()))
    assert not fol.losses and not fol.needs_checkpoint and fol.losses.torn_bytes == 0


def test_format_1_segments_are_still_read(tmp_path: os.PathLike[str]) -> None:
    """Segments written before format 2 (no sync marker) replay; damage ends them, as before."""
    wal_dir = os.path.join(tmp_path, "wal")
    os.makedirs(wal_dir)

    def v1(rec: bytes) -> bytes:  # re-frame a format-2 record as format 1
        kind, payload = rec[4], rec[HDR:]
        crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
        return struct.pack("<IIB", len(payload), crc, kind) + payload

    body = b"".join(v1(r) for r, _, _ in RECORDS)
    with open(os.path.join(wal_dir, "00000000"), "wb") as f:
        f.write(b"PLWAL\x00\x00\x01" + body)
    _, recs = WalFollower(wal_dir).poll()
    assert _contents(recs) == _want(Case(lambda a, b: (a, b), set()))


# --- checkpoints, through the store ----------------------------------------------------------

T0 = 1_700_000_000_000
N_SERIES = 10
N_STEPS = 80
SMALL = {"block_duration": "10s", "max_block_duration": "40s", "ooo_window": "5s"}
ALL = [Matcher(MatchType.EQUAL, "__name__", "m")]

CRASHED_WRITER = r"""
import os, sys
import numpy as np
from promlab.model import Labels
from promlab.storage import open_store
st = open_store(sys.argv[1], block_duration="10s", max_block_duration="40s", ooo_window="5s",
                wal_fsync=False)
series = [Labels({"__name__": "m", "i": str(i)}) for i in range(int(sys.argv[3]))]
idx = np.arange(len(series))
for k in range(int(sys.argv[4])):
    app = st.appender()
    t = int(sys.argv[2]) + k * 1000
    app.append_batch(series, idx, np.full(len(series), t), np.full(len(series), float(k)))
    app.commit()
os._exit(0)  # dies without closing: the head lives only in the WAL
"""


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = os.fspath(tmp_path_factory.mktemp("crashed") / "data")
    subprocess.run([sys.executable, "-c", CRASHED_WRITER, path, str(T0), str(N_SERIES),
                    str(N_STEPS)], check=True, timeout=120)
    return path


def _ckpts(path: str) -> list[str]:
    wal = os.path.join(path, "wal")
    return sorted(os.path.join(wal, n) for n in os.listdir(wal) if n.startswith("checkpoint."))


def _damage_file(path: str, how: str) -> None:
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        if how == "empty":
            data = bytearray()
        elif how == "magic":
            data[3] ^= 0xFF
        elif how == "series-chunk":
            data[len(MAGIC) + HDR + 3] ^= 0xFF
        elif how == "samples-chunk":
            data[-5] ^= 0xFF
        elif how == "truncated":
            data = data[: len(data) // 2]
        f.seek(0)
        f.truncate()
        f.write(data)


def _read(path: str, **kw: object) -> tuple[dict[int, list[int]], dict[str, int]]:
    with open_store(path, **SMALL, **kw) as st:  # type: ignore[arg-type]
        ss = st.querier(0, 2**62).select(ALL)
        losses = st.wal_losses.to_dict()
        out = {}
        for k in range(len(ss)):
            ls, ts, vs = ss.series(k)
            assert np.array_equal(vs, (ts - T0) / 1000.0)  # nothing silently wrong
            out[int(ls["i"])] = ((ts - T0) // 1000).tolist()
    return out, losses


def _block_steps(path: str, scratch: str) -> int:
    """How many leading steps the blocks alone hold (flushed before the crash)."""
    saved = os.path.join(scratch, "blocks-only")
    shutil.copytree(os.path.join(path, "blocks"), os.path.join(saved, "blocks"))
    got, _ = _read(saved, readonly=True)
    steps = {len(v) for v in got.values()}
    assert len(steps) == 1
    return steps.pop()


CKPT_CASES = {
    # damage to the newest checkpoint: rebuilt from the previous one, nothing lost
    "newest-empty": ("newest", "empty", False),
    "newest-magic": ("newest", "magic", False),
    "newest-series-chunk": ("newest", "series-chunk", False),
    "newest-samples-chunk": ("newest", "samples-chunk", False),
    "newest-truncated": ("newest", "truncated", False),
    # an older checkpoint damaged is never read
    "previous-series-chunk": ("previous", "series-chunk", False),
    # no previous checkpoint: the blocks (and intact chunks) are what is left, losses counted
    "only-series-chunk": ("only", "series-chunk", True),
    "only-empty": ("only", "empty", True),
    "only-samples-chunk": ("only", "samples-chunk", True),
}


@pytest.mark.parametrize("case", list(CKPT_CASES), ids=list(CKPT_CASES))
def test_damaged_checkpoint_falls_back(crashed: str, tmp_path: os.PathLike[str], case: str) -> None:
    which, how, lossy = CKPT_CASES[case]
    path = os.path.join(tmp_path, "data")
    shutil.copytree(crashed, path)
    ckpts = _ckpts(path)
    assert len(ckpts) == 2, "the writer keeps one checkpoint generation back"
    if which == "only":
        os.unlink(ckpts[0])
    _damage_file(ckpts[0] if which == "previous" else ckpts[-1], how)
    everything = {i: list(range(N_STEPS)) for i in range(N_SERIES)}
    ro_got, ro_losses = _read(path, readonly=True)
    got, losses = _read(path)  # the writer's open: repairs
    assert ro_got == got and ro_losses == losses  # read-only opens report the same
    if not lossy:
        assert got == everything
        assert losses["samples"] == 0 and losses["records"] == 0
        assert losses["checkpoints"] == (0 if which == "previous" else 1)
    else:
        kept = _block_steps(crashed, os.fspath(tmp_path))
        assert 0 < kept < N_STEPS
        lost = sum(N_STEPS - len(got.get(i, [])) for i in range(N_SERIES))
        assert lost > 0 and losses["checkpoints"] == 1 and (losses["bytes"] > 0) == (how != "empty")
        for i in range(N_SERIES):  # whatever is left is a prefix (blocks) plus intact records
            assert got.get(i, [])[:kept] == list(range(kept))
        if how == "series-chunk":  # every series lost its definition: the blocks are left
            assert got == {i: list(range(kept)) for i in range(N_SERIES)}
        if how == "empty":  # nothing tells what the file held: only the orphans are counted
            assert 0 < losses["samples"] < lost
        else:
            assert losses["samples"] == lost  # counted exactly
    # The writer's open checkpointed what it recovered: later opens find nothing damaged.
    again, later = _read(path)
    assert again == got and not any(v for k, v in later.items() if k != "torn_bytes")


def test_damaged_segment_in_a_store(crashed: str, tmp_path: os.PathLike[str]) -> None:
    """A flipped record in the newest segment costs that commit only; reopening is clean."""
    path = os.path.join(tmp_path, "data")
    shutil.copytree(crashed, path)
    wal = os.path.join(path, "wal")
    newest = max(n for n in os.listdir(wal) if n.isdigit())
    seg = os.path.join(wal, newest)
    with open(seg, "rb") as f:
        data = bytearray(f.read())
    first = data.index(b"\xa7PL\x5e")
    second = data.index(b"\xa7PL\x5e", first + 1)
    assert data[first + 4] == 2  # a samples record: one commit (10 series)
    data[second - 7] ^= 0x40
    with open(seg, "wb") as f:
        f.write(data)
    with open_store(path, readonly=True) as ro:  # Session.info() shows it too
        assert describe_store(ro).wal_losses["records"] == 1
    got, losses = _read(path)
    lost = [(i, k) for i in range(N_SERIES) for k in range(N_STEPS) if k not in got[i]]
    assert len(lost) == N_SERIES and len({k for _, k in lost}) == 1  # one step, all series
    assert losses["records"] == 1 and losses["samples"] == N_SERIES
    assert _read(path)[0] == got
