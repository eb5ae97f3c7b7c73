"""Native histograms in the Parquet store: automatic flushes of a histogram-only head, checksums of
histogram files (query skip, ``tsdb verify``/``repair``), histogram WAL damage counted as losses."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import Histogram
from promlab.storage import histwal
from promlab.storage.histcheck import SIDECAR
from promlab.storage.store import ParquetStore, open_store
from promlab.storage.verify import repair_store, verify_store

from .conftest import HOUR, T0

H = Labels({"__name__": "lat", "job": "a"})
SEL = [Matcher(MatchType.EQUAL, "__name__", "lat")]


def hist(k: int) -> Histogram:
    return Histogram(schema=0, count=k + 1, sum=float(k), zero_count=1, zero_threshold=1e-3,
                     positive_spans=((0, 1),), positive_buckets=(k,))


def hist_files(path: str) -> list[str]:
    d = os.path.join(path, "histograms")
    return sorted(f for f in os.listdir(d) if f.endswith(".parquet")) if os.path.isdir(d) else []


def stamps(st: ParquetStore, mint: int = T0, maxt: int = T0 + 100 * HOUR) -> list[int]:
    ss = st.querier(mint, maxt).select(SEL)
    return ss.series(0)[1].tolist() if len(ss) else []


def crash(st: ParquetStore) -> None:
    """Drop the store without flushing (as a kill would)."""
    assert st._wal is not None and st._hwal is not None
    st._wal.close()
    st._hwal.close()
    st._release_lock()


def test_histogram_only_head_flushes_automatically(tmp_path: str) -> None:
    path = str(tmp_path)
    st = open_store(path, wal_fsync=False, block_duration="2h")
    times = [T0 + k * 10 * 60_000 for k in range(0, 6 * 5)]  # 5 hours, every 10 minutes
    for k, t in enumerate(times):  # one commit per scrape, as the scraper does
        app = st.appender()
        app.append_histogram(H, t, hist(k))
        app.commit()
    files = hist_files(path)
    assert files, "no histogram file written before flush/close"
    assert int(files[0].split("-")[0]) == T0
    assert stamps(st) == times
    crash(st)
    st2 = open_store(path, wal_fsync=False)
    assert stamps(st2) == times  # files + the histogram WAL's checkpoint of the rest
    st2.close()


def damage(path: str, how: str) -> None:
    (name,) = hist_files(path)
    f = os.path.join(path, "histograms", name)
    if how == "flip":
        with open(f, "r+b") as fh:
            fh.seek(os.path.getsize(f) // 3)
            b = fh.read(1)
            fh.seek(-1, 1)
            fh.write(bytes([b[0] ^ 0xFF]))
    elif how == "truncate":
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) - 5)
    elif how == "sidecar":  # the record itself altered: its own checksum no longer matches
        side = Path(f + SIDECAR)
        side.write_text(side.read_text().replace('"size": ', '"size": 1'))


@pytest.mark.parametrize("how", ["flip", "truncate", "sidecar"])
def test_damaged_histogram_file_is_found_skipped_and_quarantined(tmp_path: str, how: str) -> None:
    path = str(tmp_path)
    st = open_store(path, wal_fsync=False)
    app = st.appender()
    for k in range(5):
        app.append_histogram(H, T0 + k * 1000, hist(k))
    app.commit()
    st.close()
    assert [r.reason for r in verify_store(path)] == [None]
    damage(path, how)
    (rep,) = verify_store(path)
    assert rep.reason is not None and rep.path.endswith(".parquet")
    st = open_store(path, wal_fsync=False, readonly=True)
    assert stamps(st) == []  # skipped, not a crash
    st.close()
    (fixed,) = repair_store(path)
    assert fixed.path == rep.path
    assert verify_store(path) == [] and hist_files(path) == []
    assert os.listdir(os.path.join(path, "histograms", ".quarantine"))


def wal_with_records(path: str, n: int) -> tuple[str, list[int]]:
    """A store crashed with ``n`` histogram commits only in its WAL; the records' offsets."""
    st = open_store(path, wal_fsync=False)
    for k in range(n):
        app = st.appender()
        app.append_histogram(H, T0 + k * 1000, hist(k))
        app.commit()
    crash(st)
    wal = os.path.join(path, "wal", histwal.FILE_NAME)
    data = Path(wal).read_bytes()
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        pos += 8 + struct.unpack_from("<I", data, pos)[0]
    return wal, offsets


CASES = [
    # (id, damage(data, offsets) -> data, samples kept, records lost, torn bytes > 0)
    ("middle-crc", lambda d, o: d[:o[2] + 10] + bytes([d[o[2] + 10] ^ 1]) + d[o[2] + 11:], [0, 1, 3, 4, 5], 1, False),
    ("middle-length", lambda d, o: d[:o[1]] + b"\xff\xff\xff\x7f" + d[o[1] + 4:], [0, 2, 3, 4, 5], 1, False),
    ("torn-tail", lambda d, o: d[:-3], [0, 1, 2, 3, 4], 0, True),
    ("garbage-tail", lambda d, o: d + b"\x01\x00\x00\x00\x00\x00\x00\x00zz", [0, 1, 2, 3, 4, 5], 1, False),
]


@pytest.mark.parametrize(("hurt", "kept", "records", "torn"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_histogram_wal_damage_is_resynced_and_counted(tmp_path: str, hurt: object, kept: list[int], records: int,
                                                      torn: bool) -> None:
    path = str(tmp_path)
    wal, offsets = wal_with_records(path, 6)
    Path(wal).write_bytes(hurt(Path(wal).read_bytes(), offsets))  # type: ignore[operator]
    ro = open_store(path, readonly=True)
    assert stamps(ro) == [T0 + k * 1000 for k in kept]
    losses = ro.wal_losses
    assert losses.records == records and (losses.torn_bytes > 0) == torn
    assert (losses.bytes > 0) == (records > 0)
    ro.close()
    st = open_store(path, wal_fsync=False)  # a writer keeps what survived and rewrites the log
    assert stamps(st) == [T0 + k * 1000 for k in kept]
    crash(st)
    again = open_store(path, readonly=True)
    assert again.wal_losses.records == 0 and again.wal_losses.torn_bytes == 0
    assert stamps(again) == [T0 + k * 1000 for k in kept]
    again.close()
