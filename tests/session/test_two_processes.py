"""Two processes, one store: the daemon scrapes, a read-only Session in another process reads.

For a minute of scraping, every sample the daemon commits is visible to the reader within two
seconds of its timestamp, and the reader (polling hard) never holds up the writer's scrapes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from promlab import Session
from promlab.model import Matcher, MatchType

from .conftest import CounterTarget

pytestmark = pytest.mark.slow

SCRAPE_S = float(os.environ.get("PROMLAB_TWO_PROCESS_SECONDS", "60"))
INTERVAL_MS = 250
VISIBLE_WITHIN_MS = 2_000
TICKS = [Matcher(MatchType.EQUAL, "__name__", "ticks_total")]
UP = [Matcher(MatchType.EQUAL, "__name__", "up")]


def _timestamps(session: Session, matchers: list[Matcher]) -> np.ndarray:
    q = session.store.querier(0, 2**62)
    try:
        return np.asarray(q.select(matchers).ts_ms)
    finally:
        q.close()


def test_daemon_and_reader_side_by_side(tmp_path: Path, counter_target: CounterTarget) -> None:
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump(counter_target.config(f"{INTERVAL_MS}ms")))
    data = tmp_path / "data"
    daemon = subprocess.Popen([sys.executable, "-m", "promlab", "scrape", "--config", str(cfg),
                               "--data", str(data), "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_seen: dict[int, float] = {}
    polls: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while not (data / "wal").is_dir():
            assert daemon.poll() is None, daemon.communicate()[0]
            assert time.monotonic() < deadline, "the daemon did not create its store"
            time.sleep(0.05)
        with Session(data, read_only=True) as reader:
            t_end = time.monotonic() + SCRAPE_S
            while time.monotonic() < t_end:
                assert daemon.poll() is None, daemon.communicate()[0]
                ts = _timestamps(reader, TICKS)
                now = time.time() * 1000
                polls.append(now)
                for t in ts.tolist():
                    first_seen.setdefault(t, now)
                # The reader also runs real queries, not only selects.
                reader.query("rate(ticks_total[5s])")
                time.sleep(0.05)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, out

    with Session(data, read_only=True) as final:
        committed = _timestamps(final, TICKS)
        up = _timestamps(final, UP)
    assert committed.size >= SCRAPE_S * 1000 / INTERVAL_MS * 0.8, committed.size
    # Every sample committed early enough to be checked was seen by the reader in time.
    checkable = committed[committed <= polls[-1] - VISIBLE_WITHIN_MS]
    missing = [t for t in checkable.tolist() if t not in first_seen]
    assert not missing, f"{len(missing)} committed samples never seen by the reader"
    lag = np.array([first_seen[t] - t for t in checkable.tolist()])
    assert lag.max() <= VISIBLE_WITHIN_MS, f"max visibility lag {lag.max():.0f} ms"
    # The writer was never held up: scrapes kept their 250 ms schedule throughout.
    gaps = np.diff(up)
    assert gaps.max() <= 2 * INTERVAL_MS, f"largest gap between scrapes {gaps.max()} ms"
    assert len(up) >= SCRAPE_S * 1000 / INTERVAL_MS * 0.9
