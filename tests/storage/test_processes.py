"""Crash safety (SIGKILL mid-stream) and a read-only follower in another process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from promlab.model import Labels, Matcher, MatchType
from promlab.storage import open_store

from .conftest import T0

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NSERIES = 20
SMALL = {"block_duration": "10s", "max_block_duration": "40s", "ooo_window": "5s"}

WRITER = r"""
import sys
import numpy as np
from promlab.model import Labels
from promlab.storage import open_store
path, t0, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
st = open_store(path, block_duration="10s", max_block_duration="40s", ooo_window="5s")
series = [Labels({"__name__": "m", "i": str(i)}) for i in range(__NSERIES__)]
idx = np.arange(len(series))
i = first
while True:
    app = st.appender()
    app.append_batch(series, idx, np.full(len(series), t0 + i * 1000), np.full(len(series), float(i)))
    app.commit()
    print(i, flush=True)
    i += 1
""".replace("__NSERIES__", str(NSERIES))

READER = r"""
import sys, time
import numpy as np
from promlab.model import Matcher, MatchType
from promlab.storage import open_store
path, t0, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
st = open_store(path, readonly=True)
end = time.time() + dur
prev, n = -1, 0
while time.time() < end:
    ss = st.querier(0, 2**62).select([Matcher(MatchType.EQUAL, "__name__", "m")])
    lens = set(np.diff(ss.offsets).tolist())
    if len(lens) > 1 or len(ss) not in (0, __NSERIES__):
        print("BAD lengths", lens, len(ss), flush=True)
        sys.exit(1)
    for k in range(len(ss)):
        _, ts, vs = ss.series(k)
        want = t0 + np.arange(ts.shape[0]) * 1000
        if not np.array_equal(ts, want) or not np.array_equal(vs, (ts - t0) / 1000.0):
            print("BAD samples", k, ts[:3], ts.shape, flush=True)
            sys.exit(1)
    last = int(ss.ts_ms.max()) if ss.num_samples else -1
    if last < prev:
        print("BAD went back", last, prev, flush=True)
        sys.exit(1)
    prev, n = last, n + 1
print("OK", n, prev, flush=True)
""".replace("__NSERIES__", str(NSERIES))

ALL = [Matcher(MatchType.EQUAL, "__name__", "m")]


def _check_prefix(path: str, at_least: int) -> int:
    """Every series holds samples 0..n-1 (n >= at_least) and nothing else; returns n."""
    with open_store(path, **SMALL) as st:  # type: ignore[arg-type]
        ss = st.querier(0, 2**62).select(ALL)
    assert len(ss) == NSERIES
    lengths = set(np.diff(ss.offsets).tolist())
    assert len(lengths) == 1, lengths
    n = lengths.pop()
    assert n >= at_least
    for k in range(NSERIES):
        _, ts, vs = ss.series(k)
        assert np.array_equal(ts, T0 + np.arange(n) * 1000)
        assert np.array_equal(vs, np.arange(n, dtype=float))
    return n


def test_sigkill_loses_no_committed_sample(tmp_path: os.PathLike[str]) -> None:
    path = os.fspath(tmp_path)
    first = 0
    for round_, kill_after in enumerate((60, 37)):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, path, str(T0), str(first)],
                                cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        last = -1
        deadline = time.monotonic() + 60
        try:
            while last < first + kill_after and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                last = int(line)
        finally:
            proc.send_signal(signal.SIGKILL)
            rest = proc.communicate(timeout=30)[0]
        for line in rest.split():
            last = int(line)
        assert last >= first + kill_after, f"writer stopped early (round {round_})"
        # Everything acknowledged is there, in order, uncorrupted; the store opens fine.
        first = _check_prefix(path, last + 1)
    blocks = os.listdir(os.path.join(path, "blocks"))
    assert blocks and not [b for b in blocks if b.startswith(".")]


def test_readonly_follower_in_another_process(tmp_path: os.PathLike[str]) -> None:
    path = os.fspath(tmp_path)
    series = [Labels({"__name__": "m", "i": str(i)}) for i in range(NSERIES)]
    idx = np.arange(NSERIES)
    st = open_store(path, wal_fsync=False, **SMALL)  # type: ignore[arg-type]
    stop = threading.Event()
    counter = [0]

    def write() -> None:
        while not stop.is_set():
            i = counter[0]
            app = st.appender()
            app.append_batch(series, idx, np.full(NSERIES, T0 + i * 1000), np.full(NSERIES, float(i)))
            app.commit()
            counter[0] = i + 1
            time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        out = subprocess.run([sys.executable, "-c", READER, path, str(T0), "3"], cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        writer.join()
    blocks_made = len(st.blocks())
    st.close()
    assert out.returncode == 0, out.stdout + out.stderr
    words = out.stdout.split()
    assert words[0] == "OK" and int(words[1]) > 3, out.stdout
    assert int(words[2]) > T0 + 10_000 and blocks_made >= 1  # it followed flushes + compactions
    _check_prefix(path, counter[0])


def test_queries_in_threads_while_flushing_and_compacting(tmp_path: os.PathLike[str]) -> None:
    series = [Labels({"__name__": "m", "i": str(i)}) for i in range(NSERIES)]
    idx = np.arange(NSERIES)
    st = open_store(tmp_path, wal_fsync=False, **SMALL)  # type: ignore[arg-type]
    done = threading.Event()
    errors: list[str] = []

    def read() -> None:
        prev = -1
        while not done.is_set():
            ss = st.querier(0, 2**62).select(ALL)
            if ss.num_samples:
                n = set(np.diff(ss.offsets).tolist())
                last = int(ss.ts_ms.max())
                if len(n) != 1 or last < prev or not np.array_equal(
                        ss.series(0)[1], T0 + np.arange(n.pop()) * 1000):
                    errors.append(f"inconsistent read at {last}")
                    return
                prev = last

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(300):
            app = st.appender()
            app.append_batch(series, idx, np.full(NSERIES, T0 + i * 1000), np.full(NSERIES, float(i)))
            app.commit()
    finally:
        done.set()
        for t in readers:
            t.join()
    assert not errors and len(st.blocks()) >= 2
    st.close()
    _check_prefix(os.fspath(tmp_path), 300)
