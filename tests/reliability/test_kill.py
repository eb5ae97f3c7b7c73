"""kill -9 trials (issue 15 item 9): a writer SIGKILLed at random moments loses no acknowledged
sample, and the store opens every time (read-only right after the kill, and by the next writer).

Each trial starts a writer process that commits one step of every series per commit (big
enough records that a kill can land inside a write) and acknowledges each commit on stdout once
``commit()`` returned; the store flushes and checkpoints every ~10 commits, so kills also land
in flushes, checkpoints and compactions. The trial kills it after a random delay.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from promlab.model import Matcher, MatchType
from promlab.storage import open_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T0 = 1_700_000_000_000
N_SERIES = 2000
TRIALS = 10
SMALL = {"block_duration": "10s", "max_block_duration": "40s", "ooo_window": "5s"}
ALL = [Matcher(MatchType.EQUAL, "__name__", "m")]

WRITER = r"""
import json, sys
import numpy as np
from promlab.model import Labels
from promlab.storage import open_store
path, t0, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
st = open_store(path, block_duration="10s", max_block_duration="40s", ooo_window="5s")
print("L", json.dumps(st.wal_losses.to_dict()), flush=True)
series = [Labels({"__name__": "m", "i": str(i)}) for i in range(n)]
idx = np.arange(n)
i = first
while True:
    app = st.appender()
    app.append_batch(series, idx, np.full(n, t0 + i * 1000), np.full(n, float(i)))
    app.commit()
    print(i, flush=True)
    i += 1
"""


def _check(path: str, last_ack: int) -> tuple[int, bool, dict[str, int]]:
    """Read-only open: acknowledged samples missing, whether the commit being made when the
    writer was killed is there (written, not acknowledged), and the reported losses."""
    with open_store(path, readonly=True, **SMALL) as st:  # type: ignore[arg-type]
        ss = st.querier(0, 2**62).select(ALL)
        losses = st.wal_losses.to_dict()
    assert len(ss) == N_SERIES, (len(ss), last_ack, losses, sorted(os.listdir(path)),
                                 sorted(os.listdir(os.path.join(path, "blocks"))),
                                 sorted(os.listdir(os.path.join(path, "wal"))))
    step = (ss.ts_ms - T0) // 1000
    assert np.array_equal(ss.values, step.astype(float))  # nothing silently wrong
    # Acknowledged steps all present (a series holds each step at most once); at most one
    # more: the commit written but killed before its acknowledgement.
    acked = np.add.reduceat((step <= last_ack).astype(np.int64), ss.offsets[:-1])
    missing = int((last_ack + 1 - acked).sum())
    assert int(step.max()) <= last_ack + 1
    unacked = int(step.max()) == last_ack + 1
    return missing, unacked, losses


def test_sigkill_trials_lose_no_acknowledged_sample(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "data")
    rng = random.Random(15)
    first, lost, torn_opens, mid_commit, results = 0, 0, 0, 0, []
    for trial in range(TRIALS):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, path, str(T0), str(first),
                                 str(N_SERIES)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        acks: list[int] = []
        opened: dict[str, int] | None = None
        deadline = time.monotonic() + 30
        try:
            line = proc.stdout.readline()  # the writer opened the store (replay, repair)
            assert line.startswith("L "), f"trial {trial}: the writer could not open the store"
            opened = json.loads(line[2:])
            line = proc.stdout.readline()
            assert line, f"trial {trial}: the writer died before its first commit"
            acks.append(int(line))
            time.sleep(rng.uniform(0.0, 0.4))
            assert time.monotonic() < deadline
        finally:
            proc.send_signal(signal.SIGKILL)
            # Through the same reader (communicate() would skip what readline() buffered).
            rest = proc.stdout.read()
            proc.wait(timeout=30)
            proc.stdout.close()
        acks.extend(int(x) for x in rest.split())
        assert proc.returncode == -signal.SIGKILL
        # The writer's own open found no damage (a torn tail is not damage).
        assert opened is not None and not any(v for k, v in opened.items() if k != "torn_bytes")
        torn_opens += opened["torn_bytes"] > 0
        missing, unacked, losses = _check(path, acks[-1])
        mid_commit += unacked
        assert not any(v for k, v in losses.items() if k != "torn_bytes"), losses
        lost += missing
        results.append((trial, len(acks), missing))
        first = acks[-1] + 1
    assert lost == 0, results
    # The last writer's open, as a restart would: everything there, nothing damaged.
    with open_store(path, **SMALL) as st:  # type: ignore[arg-type]
        assert not st.wal_losses
        n = st.querier(0, 2**62).select(ALL).num_samples
    assert n >= first * N_SERIES
    print(f"\n{TRIALS} kills, {first} commits acknowledged, 0 acknowledged samples lost, "
          f"{mid_commit} kills between a commit's WAL write and its acknowledgement, "
          f"{torn_opens} opens found a torn tail")
