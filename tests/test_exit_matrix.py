"""Interpreter exit with promlab at work: no abort, no hang, no daemon-thread noise, store intact.

Each case runs ``tests/exit_child.py`` in its own process with the project's Python: an action
(a cold query over blocks whose series index is read in pieces, a SeriesSet, ``with
Session``, a daemon thread querying, scraping a local target, the HTTP API serving, rules
firing to an Alertmanager stand-in, remote write in flight, an import from a real Prometheus
2.42, the notebook magics, a dask cluster, an S3 store on moto) followed by an exit mode
(the script's end, ``sys.exit(3)``, an unhandled exception, KeyboardInterrupt, SIGTERM,
SIGINT). Checked: the exit status, stderr free of ``Fatal Python error``/``terminate
called``/``Exception in thread``/``Exception ignored in`` (and of any traceback but the main
thread's own), an exit within a generous timeout, and the store reopening whole (``promlab
tsdb verify`` and a query returning what was written). See issue 13 for the abort at exit that
started this.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from benchmarks import realprom
from promlab import Session

CHILD = Path(__file__).with_name("exit_child.py")
#: Generous: a case takes a few seconds; a hang takes this long and then fails.
TIMEOUT_S = 120
START_S = 1_704_067_200  # 2024-01-01: history, written to blocks
END_S = START_S + 1_800
SERIES = 30_000  # series.arrow > 1 MiB: a metric query reads it in pieces
OTHER = 2_000

#: Exit modes: the status each ends with (negative: killed by that signal).
EXPECTED_RC = {"normal": 0, "exit3": 3, "raise": 1, "keyboard": -signal.SIGINT,
               "sigterm": -signal.SIGTERM, "sigint": -signal.SIGINT}
#: The main thread's own traceback, which these modes print and nothing else may.
MAIN_TRACEBACK = {"raise": "RuntimeError: exit-matrix: boom", "keyboard": "KeyboardInterrupt",
                  "sigint": "KeyboardInterrupt"}
FORBIDDEN = ("Fatal Python error", "terminate called", "Segmentation fault", "Aborted",
             "Exception in thread", "Exception ignored in", "Traceback (most recent call last)")


def _write_openmetrics(path: Path, *, series: int, other: int, step_s: int) -> None:
    with path.open("w") as f:
        f.write("# TYPE exit_series gauge\n")
        for i in range(series):
            for t in range(START_S, END_S + 1, step_s):
                f.write(f'exit_series{{i="{i}",j="{i % 7}"}} {i % 13} {t}\n')
        f.write("# TYPE exit_other gauge\n")
        for i in range(other):
            f.write(f'exit_other{{k="{i}"}} 1 {END_S}\n')
        f.write("# EOF\n")


def _promlab(*argv: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "promlab", *argv], capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cold_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of blocks only (no head): 30,000 series of one metric and 2,000 of another."""
    root = tmp_path_factory.mktemp("exit-cold")
    om = root / "data.om"
    _write_openmetrics(om, series=SERIES, other=OTHER, step_s=300)
    done = _promlab("import", str(om), "--data", str(root / "store"), "-q")
    assert done.returncode == 0, done.stderr
    index = list((root / "store" / "blocks").glob("*/series.arrow"))
    assert index and index[0].stat().st_size > 1 << 20, "the series index is not read in pieces"
    return root / "store"


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus 2.42 holding 2,000 series × 30 min at 15 s, backfilled with promtool."""
    realprom.require_binary("prometheus")
    realprom.require_binary("promtool")
    root = tmp_path_factory.mktemp("exit-prom")
    om = root / "data.om"
    _write_openmetrics(om, series=2_000, other=0, step_s=15)
    realprom.backfill(om, root / "tsdb", progress=False)
    with realprom.prometheus(root / "tsdb") as prom:
        yield prom.url


@dataclass(frozen=True)
class Outcome:
    """A finished child: its status, output and how long it took."""

    rc: int
    out: str
    err: str
    seconds: float


def _run_child(action: str, mode: str, args: dict[str, Any]) -> Outcome:
    env = {**os.environ, "PYTHONFAULTHANDLER": "1", "PROMLAB_PROGRESS": "0"}
    child = "signal" if mode in ("sigterm", "sigint") else mode
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(CHILD), action, child, json.dumps(args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        if child == "signal":
            assert proc.stdout is not None
            first = ""
            while line := proc.stdout.readline():  # up to READY, or the end of the output
                first += line
                if line.startswith("READY"):
                    time.sleep(0.3)  # let what the action started run a little
                    proc.send_signal(signal.SIGTERM if mode == "sigterm" else signal.SIGINT)
                    break
            out, err = proc.communicate(timeout=TIMEOUT_S)
            out = first + out
        else:
            out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{action}/{mode}: no exit within {TIMEOUT_S} s (hang)\nstdout {out[-2000:]}"
                    f"\nstderr {err[-4000:]}")
    return Outcome(proc.returncode, out, err, time.monotonic() - t0)


def exit_problems(mode: str, o: Outcome) -> list[str]:
    """What is wrong with how a child in exit mode ``mode`` ended."""
    problems = []
    if "READY" not in o.out:
        problems.append("the action never got ready")
    if o.rc != EXPECTED_RC[mode]:
        problems.append(f"exit status {o.rc}, expected {EXPECTED_RC[mode]}")
    err = o.err
    own = MAIN_TRACEBACK.get(mode)
    if own is not None:
        # One traceback, the main thread's, ending the output with its exception.
        if err.count("Traceback (most recent call last)") != 1 or not err.rstrip().endswith(own):
            problems.append(f"expected only the main thread's traceback ending {own!r}")
        err = err[:err.find("Traceback (most recent call last)")] if own in err else err
    for word in FORBIDDEN:
        if word in err:
            problems.append(f"stderr has {word!r}")
    return problems


def test_exit_problems_catches_what_it_should() -> None:
    ok = Outcome(1, "READY\n", "Traceback (most recent call last):\n  File x\nRuntimeError: "
                 "exit-matrix: boom\n", 1.0)
    assert exit_problems("raise", ok) == []
    noisy = Outcome(1, "READY\n", "Exception in thread t:\nTraceback (most recent call last):\n"
                    "ValueError\n" + ok.err, 1.0)
    assert exit_problems("raise", noisy)
    aborted = Outcome(-6, "READY\n", "terminate called without an active exception\n", 1.0)
    assert len(exit_problems("normal", aborted)) == 2
    assert exit_problems("sigterm", Outcome(-15, "READY\n", "", 1.0)) == []
    assert exit_problems("exit3", Outcome(3, "", "", 1.0)) == ["the action never got ready"]


# --- checks of the store afterwards ---------------------------------------------------------------
def _verify(path: Path) -> None:
    done = _promlab("tsdb", "verify", "--data", str(path))
    assert done.returncode == 0, f"tsdb verify: {done.stdout}{done.stderr}"


def _count(path: Path, expr: str, at: float | None = None) -> int:
    with Session(path, read_only=True) as s:
        df = s.query(expr, time=at)
    return 0 if df.empty else int(df["value"].iloc[0])


def check_cold(world: World) -> None:
    assert _count(world.cold, "count(exit_series)", END_S) == SERIES
    assert _count(world.cold, "count(exit_other)", END_S) == OTHER


def check_scraped(world: World) -> None:
    _verify(world.data)
    assert _count(world.data, "count(exit_gauge)") == 1


def check_served(world: World) -> None:
    _verify(world.data)
    assert _count(world.data, "count(exit_gauge{job='serve'})") == 1


def check_rules(world: World) -> None:
    _verify(world.data)
    assert _count(world.data, "count(last_over_time(exit:one[1m]))") == 1


def check_remote_write(world: World) -> None:
    _verify(world.data)
    assert _count(world.data, "count(last_over_time(exit_rw[1m]))") == 50


def check_import(world: World) -> None:
    """What the import committed before the exit reads back (none of it half there)."""
    _verify(world.data)
    n = _count(world.data, "count(count_over_time(exit_series[1h]))", END_S)
    assert n in (0, 2_000), n


def check_opens(world: World) -> None:
    _verify(world.data)


@dataclass
class World:
    """Where a case runs: the shared cold store (read only), its own directory."""

    cold: Path
    data: Path
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    action: str
    mode: str
    check: Callable[[World], None]
    #: What the action needs beyond the cold store: "prometheus", "s3", "copy" (a private copy
    #: of the cold store, for an action that opens it read-write).
    needs: str = ""

    @property
    def id(self) -> str:
        return f"{self.action}-{self.mode}"


CASES = [
    Case("query_cold", "normal", check_cold),
    Case("query_cold", "exit3", check_cold),
    Case("query_cold", "raise", check_cold),
    Case("query_cold", "sigterm", check_cold),
    Case("seriesset", "normal", check_cold),
    Case("seriesset", "keyboard", check_cold),
    Case("with_session", "normal", check_cold),
    Case("with_session", "raise", check_cold),
    Case("with_session", "sigint", check_cold),
    Case("bg_query", "normal", check_cold),
    Case("bg_query", "raise", check_cold),
    Case("bg_query", "exit3", check_cold),
    Case("bg_query", "sigint", check_cold),
    Case("bg_query_fresh", "normal", check_cold),
    Case("bg_query_fresh", "keyboard", check_cold),
    Case("scrape", "normal", check_scraped),
    Case("scrape", "exit3", check_scraped),
    Case("scrape", "sigterm", check_scraped),
    Case("scrape", "sigint", check_scraped),
    Case("serve", "normal", check_served),
    Case("serve", "raise", check_served),
    Case("serve", "sigint", check_served),
    Case("rules", "normal", check_rules),
    Case("rules", "keyboard", check_rules),
    Case("rules", "sigterm", check_rules),
    Case("remote_write", "normal", check_remote_write),
    Case("remote_write", "exit3", check_remote_write),
    Case("remote_write", "sigint", check_remote_write),
    Case("magics", "normal", check_cold, needs="copy"),
    Case("magics", "sigint", check_cold, needs="copy"),
    Case("importer", "normal", check_import, needs="prometheus"),
    Case("importer", "sigint", check_import, needs="prometheus"),
    Case("importer", "sigterm", check_import, needs="prometheus"),
    Case("dask_cluster", "normal", check_cold),
    Case("dask_cluster", "raise", check_cold),
    Case("s3_store", "normal", check_opens, needs="s3"),
    Case("s3_store", "sigint", check_opens, needs="s3"),
]
SLOW = {"importer", "dask_cluster", "s3_store"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow]
                                               if c.action in SLOW else [])
                                  for c in CASES])
def test_exit(case: Case, cold_store: Path, tmp_path: Path, request: pytest.FixtureRequest
              ) -> None:
    world = World(cold=cold_store, data=tmp_path / "data")
    args: dict[str, Any] = {"store": str(cold_store), "end_s": END_S, "series": SERIES,
                            "data": str(world.data)}
    if case.needs == "copy":
        world.cold = tmp_path / "copy"
        shutil.copytree(cold_store, world.cold)
        args["store"] = str(world.cold)
    elif case.needs == "prometheus":
        args["prometheus"] = request.getfixturevalue("live_prometheus")
        args["import_start"], args["import_end"] = START_S, END_S
    elif case.needs == "s3":
        opts = request.getfixturevalue("moto_s3")
        import s3fs

        bucket = f"exit-{case.mode}-{os.getpid()}"
        s3fs.S3FileSystem(endpoint_url=opts["endpoint_url"], key=opts["key"],
                          secret=opts["secret"]).mkdir(bucket)
        args["s3"], args["s3_url"] = opts, f"s3://{bucket}/store"
        args["s3_at"] = int(time.time()) - 7_200
    outcome = _run_child(case.action, case.mode, args)
    problems = exit_problems(case.mode, outcome)
    assert not problems, (f"{case.id}: {problems} after {outcome.seconds:.1f} s\n"
                          f"stdout: {outcome.out[-1000:]}\nstderr: {outcome.err[-6000:]}")
    if case.needs == "s3":  # the blocks are on S3, the WAL in args["data"]
        with Session(args["s3_url"], storage_options=args["s3"], local_dir=str(tmp_path / "r"),
                     read_only=True) as s:
            assert len(s.query("exit_s3", time=args["s3_at"])) == 5
    case.check(world)


def test_cold_store_intact(cold_store: Path) -> None:
    """After every case above, the shared store verifies and answers in full."""
    _verify(cold_store)
    world = World(cold=cold_store, data=cold_store)
    check_cold(world)
