"""``ParquetStore.delete_series``: on blocks not read yet (after a restart, or just flushed), and
on native histogram samples wherever they are (head, histogram WAL, files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from promlab.errors import StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import Histogram
from promlab.storage import histcheck, histdir, open_store
from promlab.storage.histstore import HistogramHead
from promlab.storage.store import ParquetStore

T0 = 1_700_000_000_000 // 86_400_000 * 86_400_000
A = Labels({"__name__": "req_total", "job": "a"})
B = Labels({"__name__": "req_total", "job": "b"})


def _count(path: Path, job: str) -> int:
    with open_store(path, readonly=True) as st:
        q = st.querier(0, 2**62)
        try:
            return q.select([Matcher(MatchType.EQUAL, "job", job)]).num_samples
        finally:
            q.close()


@pytest.mark.parametrize("reopen", [True, False], ids=["after-restart", "head-flushed-by-delete"])
def test_delete_series_on_unread_blocks(tmp_path: Path, reopen: bool) -> None:
    st = open_store(tmp_path, ooo_window=None, wal_fsync=False)
    app = st.appender()
    for i in range(20):
        app.append(A, T0 + i * 15_000, float(i))
        app.append(B, T0 + i * 15_000, float(i))
    app.commit()
    if reopen:
        st.flush()
        st.close()
        st = open_store(tmp_path, ooo_window=None, wal_fsync=False)
    try:
        # samples 5..9 of job a only
        assert st.delete_series([[Matcher(MatchType.EQUAL, "job", "a")]],
                                T0 + 5 * 15_000, T0 + 9 * 15_000) == 1
    finally:
        st.close()
    assert (_count(tmp_path, "a"), _count(tmp_path, "b")) == (15, 20)


# --- native histograms -------------------------------------------------------------------------
HA = Labels({"__name__": "lat", "job": "a"})
HB = Labels({"__name__": "lat", "job": "b"})
FA = Labels({"__name__": "up", "job": "a"})
JOB_A = [[Matcher(MatchType.EQUAL, "job", "a")]]
STEP = 15_000
DAY = 86_400_000
ALL_TIME = (-(2**62), 2**62)


def hist(k: int) -> Histogram:
    """An integer histogram whose counts grow with ``k``."""
    return Histogram(schema=0, count=3 * k + 1, sum=0.5 * k, zero_count=1, zero_threshold=1e-3,
                     positive_spans=((0, 2),), positive_buckets=(k, k))


def batch_starts(two_files: bool) -> list[int]:
    """Where the batches of 20 samples start: two days apart land in two files."""
    return [T0, T0 + 2 * DAY] if two_files else [T0]


def times(n: int) -> list[int]:
    """The first ``n`` sample times of the batch at ``T0``."""
    return [T0 + k * STEP for k in range(n)]


def write(st: ParquetStore, start: int, *, flush: bool) -> None:
    app = st.appender()
    for k in range(20):
        app.append_histogram(HA, start + k * STEP, hist(k))
        app.append_histogram(HB, start + k * STEP, hist(k))
        app.append(FA, start + k * STEP, float(k))
    app.commit()
    if flush:
        st.flush()


def contents(st: ParquetStore) -> dict[str, list[int]]:
    """Sample times per series (by job and kind), each histogram checked against :func:`hist`."""
    q = st.querier(-(2**62), 2**62)
    try:
        ss = q.select([Matcher(MatchType.REGEX, "__name__", "lat|up")])
    finally:
        q.close()
    out: dict[str, list[int]] = {}
    for i, ls in enumerate(ss.labels):
        _, ts, _ = ss.series(i)
        hs = ss.series_histograms(i)
        if ls["__name__"] == "lat":
            assert hs is not None
            for t, h in zip(ts.tolist(), hs, strict=True):
                assert h == hist((t - T0) % DAY // STEP).to_float(), (ls, t)
        out[f"{ls['__name__']}/{ls['job']}"] = ts.tolist()
    return out


def crash(st: ParquetStore) -> None:
    """Leave the store as a kill -9 would: WALs written, nothing flushed, lock released."""
    assert st._wal is not None and st._hwal is not None
    st._wal.close()
    st._hwal.close()
    st._release_lock()


@pytest.mark.parametrize(("where", "two_files", "span"), [
    pytest.param("head", False, ALL_TIME, id="head-all-time"),
    pytest.param("head", False, (T0 + 5 * STEP, T0 + 9 * STEP), id="head-partial"),
    pytest.param("wal-replay", False, (T0 + 5 * STEP, T0 + 9 * STEP), id="wal-replay-partial"),
    pytest.param("files", False, ALL_TIME, id="files-all-time"),
    pytest.param("files", False, (T0 + 5 * STEP, T0 + 9 * STEP), id="files-partial"),
    pytest.param("files", True, (T0 + 15 * STEP, T0 + 2 * DAY + 4 * STEP), id="two-files-partial"),
    pytest.param("files-reopened", True, (T0 - DAY, T0 + 19 * STEP), id="reopened-first-file"),
])
def test_delete_series_deletes_native_histograms(tmp_path: Path, where: str, two_files: bool,
                                                 span: tuple[int, int]) -> None:
    mint, maxt = span
    st = open_store(tmp_path, ooo_window=None, wal_fsync=False)
    for start in batch_starts(two_files):
        write(st, start, flush=where.startswith("files"))
    if where == "wal-replay":
        crash(st)
    if where == "files-reopened":
        st.close()
    if where in ("wal-replay", "files-reopened"):
        st = open_store(tmp_path, ooo_window=None, wal_fsync=False)
    before = contents(st)  # reads the files through the decoded cache
    all_ts = [s + k * STEP for s in batch_starts(two_files) for k in range(20)]
    assert before == {"lat/a": all_ts, "lat/b": all_ts, "up/a": all_ts}
    cached = [histdir.CACHE_PREFIX + f[3] for f in histdir.list_files(st.hist_dir)]
    assert all(st.cache.get_entry((key, "")) is not None for key in cached)
    try:
        assert st.delete_series(JOB_A, mint, maxt) >= 1
        kept = [t for t in all_ts if not mint <= t <= maxt]
        want = {"lat/a": kept, "lat/b": all_ts, "up/a": kept}
        want = {k: v for k, v in want.items() if v}
        assert contents(st) == want
        # The replaced files' decoded columns are evicted.
        gone = set(cached) - {histdir.CACHE_PREFIX + f[3] for f in histdir.list_files(st.hist_dir)}
        assert bool(gone) == bool(cached)  # head cases: no file before the delete
        assert all(st.cache.get_entry((key, "")) is None for key in gone)
    finally:
        st.close()
    # A restart (WAL replay, flush and compaction on open) does not bring them back ...
    with open_store(tmp_path, ooo_window=None, wal_fsync=False) as st:
        assert contents(st) == want
    # ... and the rewritten files pass their checksums.
    with open_store(tmp_path, readonly=True) as st:
        assert contents(st) == want
        files = histdir.list_files(st.hist_dir)
    assert files and all(histcheck.verify_file(f[3]) is None for f in files)


def test_delete_outside_the_histograms_leaves_their_files(tmp_path: Path) -> None:
    with open_store(tmp_path, ooo_window=None, wal_fsync=False) as st:
        write(st, T0, flush=True)
        files = histdir.list_files(st.hist_dir)
        st.delete_series(JOB_A, T0 + 20 * STEP, T0 + DAY)
        assert st.delete_series([[Matcher(MatchType.EQUAL, "job", "c")]], *ALL_TIME) == 0
        assert histdir.list_files(st.hist_dir) == files


@pytest.mark.parametrize(("span", "want_a", "mint"), [
    pytest.param((T0 + STEP, T0 + 2 * STEP), [0, 3], T0, id="middle"),
    pytest.param((T0, T0 + 3 * STEP), [], T0, id="all-of-a"),
    pytest.param((T0 - DAY, T0 - 1), [0, 1, 2, 3], T0, id="before"),
])
def test_histogram_head_delete(span: tuple[int, int], want_a: list[int], mint: int) -> None:
    head = HistogramHead()
    head.add([(ls, T0 + k * STEP, hist(k)) for k in range(4) for ls in (HA, HB)])
    head.select([], T0, T0 + DAY)  # float forms remembered: the delete drops them too
    gone = head.delete(lambda ls: ls["job"] == "a", *span)
    assert gone == 4 - len(want_a)
    got = head.select([Matcher(MatchType.EQUAL, "job", "a")], -(2**62), 2**62)
    assert (got[HA][0].tolist() if HA in got else []) == [T0 + k * STEP for k in want_a]
    assert len(head.select([Matcher(MatchType.EQUAL, "job", "b")], T0, T0 + DAY)[HB][0]) == 4
    assert (head.mint, head.maxt) == (mint, T0 + 3 * STEP)


@pytest.mark.parametrize("flushed", [False, True], ids=["in-wal", "in-files"])
def test_reader_beside_the_writer_sees_the_delete(tmp_path: Path, flushed: bool) -> None:
    """A read-only store on the same directory (the HTTP server beside a daemon) reads the
    histogram WAL and files again at each query: deleted samples are gone there too."""
    with open_store(tmp_path, ooo_window=None, wal_fsync=False) as st:
        write(st, T0, flush=flushed)
        with open_store(tmp_path, readonly=True) as reader:
            assert len(contents(reader)["lat/a"]) == 20
            st.delete_series(JOB_A, T0 + 10 * STEP, 2**62)
            assert contents(reader) == {"lat/a": times(10), "lat/b": times(20), "up/a": times(10)}


def test_damaged_histogram_file_stops_the_delete(tmp_path: Path) -> None:
    with open_store(tmp_path, ooo_window=None, wal_fsync=False) as st:
        write(st, T0, flush=True)
        ((*_, path),) = histdir.list_files(st.hist_dir)
        data = bytearray(Path(path).read_bytes())
        data[len(data) // 2] ^= 0xFF
        Path(path).write_bytes(bytes(data))
        with pytest.raises(StorageError, match="damaged histogram file, delete stopped"):
            st.delete_series(JOB_A, *ALL_TIME)
        assert histdir.list_files(st.hist_dir)[0][3] == path  # left for tsdb repair
