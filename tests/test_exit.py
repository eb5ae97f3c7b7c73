"""``promlab query`` exits cleanly, many times over, several processes at once (issue 13).

A query process used to abort after printing its result about once in sixteen runs on a busy
machine (``terminate called without an active exception``, exit status 134): an Arrow
thread-pool worker was still releasing buffers that Python owned (the block files were Python
file objects) while the interpreter shut down. One run proves nothing, so this test runs 200
real CLI processes, four at a time, against one small store, and checks each one's exit status,
stderr and output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUNS = 200
PARALLEL = 4
STEP_S = 15
#: The samples span [START_S, END_S] every STEP_S (2 h ago in 2024: history, written to blocks).
START_S = 1_704_067_200
END_S = START_S + 1_800
INSTANCES = ("a", "b", "c", "d")
METHODS = ("GET", "POST")
SENSORS = ("s1", "s2", "s3")

# A tqdm bar as written to stderr: "desc: 40%|###   | 2/5 [00:01<00:01, 2.0it/s]" or, without
# a total, "desc: 12.0kB [00:01, 9.1kB/s]"; pieces are separated by carriage returns.
_BAR = re.compile(r"[A-Za-z][\w ]*: .*\[\d+:\d+.*\]\s*")


def _write_openmetrics(path: Path) -> None:
    lines = ["# TYPE exit_requests counter"]
    for inst in INSTANCES:
        for k, method in enumerate(METHODS):
            for i, t in enumerate(range(START_S, END_S + 1, STEP_S)):
                lines.append(f'exit_requests_total{{instance="{inst}",method="{method}"}} '
                             f"{i * (k + 1)} {t}")
    lines.append("# TYPE exit_temperature gauge")
    for j, sensor in enumerate(SENSORS):
        for i, t in enumerate(range(START_S, END_S + 1, STEP_S)):
            lines.append(f'exit_temperature{{sensor="{sensor}"}} {20 + j + (i % 7) / 4} {t}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def _promlab(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    return subprocess.run([sys.executable, "-m", "promlab", *argv], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exit")
    om = root / "data.om"
    _write_openmetrics(om)
    done = _promlab("import", str(om), "--data", str(root / "store"), "-q")
    assert done.returncode == 0, done.stderr
    assert any((root / "store" / "blocks").iterdir()), "the import wrote no block"
    return root / "store"


def _json(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def _count_is(n: int) -> Callable[[str], None]:
    def check(out: str) -> None:
        data = _json(out)
        assert data["resultType"] == "vector"
        assert data["result"] == [{"metric": {}, "value": [END_S, str(n)]}]
    return check


def _series(result_type: str, n: int, points: int | None = None) -> Callable[[str], None]:
    def check(out: str) -> None:
        data = _json(out)
        assert data["resultType"] == result_type
        result = data["result"]
        assert isinstance(result, list) and len(result) == n
        if points is not None:
            assert all(len(s["values"]) == points for s in result)
    return check


def _table_rows(n: int, column: str) -> Callable[[str], None]:
    def check(out: str) -> None:
        lines = out.rstrip("\n").splitlines()
        assert column in lines[0].split()
        assert len(lines) == 1 + n
    return check


@dataclass(frozen=True)
class Case:
    """One query: its CLI arguments and a check of its stdout."""

    name: str
    argv: tuple[str, ...]
    check: Callable[[str], None]


_RANGE = ("--start", str(END_S - 600), "--end", str(END_S), "--step", "60s")  # 11 steps
_AT = ("--time", str(END_S))
CASES = [
    Case("instant-json-count", ("count(exit_requests_total)", *_AT, "--format", "json"),
         _count_is(len(INSTANCES) * len(METHODS))),
    Case("instant-json-series", ("exit_requests_total", *_AT, "--format", "json"),
         _series("vector", len(INSTANCES) * len(METHODS))),
    Case("range-json-rate", ("sum by (method) (rate(exit_requests_total[5m]))", *_RANGE,
                             "--format", "json"), _series("matrix", len(METHODS), 11)),
    Case("instant-table", ("exit_temperature", *_AT), _table_rows(len(SENSORS), "sensor")),
    Case("range-table", ("exit_temperature", *_RANGE, "-q"), _table_rows(11 * len(SENSORS), "value")),
    Case("range-json-quiet", ("max_over_time(exit_temperature[10m])", *_RANGE, "--format", "json", "-q"),
         _series("matrix", len(SENSORS), 11)),
]


def _stderr_problems(err: str) -> list[str]:
    """What stderr holds besides progress bars (which may show on a slow machine)."""
    pieces = (p.strip() for p in re.split(r"[\r\n]", err))
    return [p for p in pieces if p and not _BAR.fullmatch(p)]


def test_stderr_filter_keeps_real_errors() -> None:
    bar = "replaying WAL:  40%|####      | 2.0k/5.0k [00:01<00:01, 2.0kB/s]\r" + " " * 60 + "\r"
    assert _stderr_problems(bar) == []
    assert _stderr_problems(bar + "terminate called without an active exception\n") == [
        "terminate called without an active exception"]


def test_many_parallel_queries_exit_cleanly(store: Path) -> None:
    """200 query processes, 4 at a time: every one exits 0 with its whole output and no noise."""
    runs = [CASES[i % len(CASES)] for i in range(RUNS)]

    def run(case: Case) -> tuple[Case, subprocess.CompletedProcess[str]]:
        return case, _promlab("query", *case.argv, "--data", str(store))

    failures: list[str] = []
    with ThreadPoolExecutor(PARALLEL) as pool:
        for case, done in pool.map(run, runs):
            problems = _stderr_problems(done.stderr)
            if done.returncode != 0 or problems:
                failures.append(f"{case.name}: exit {done.returncode}, stderr {[p[:120] for p in problems[:3]]}")
                continue
            try:
                case.check(done.stdout)
            except (AssertionError, ValueError, KeyError, TypeError) as exc:
                failures.append(f"{case.name}: incomplete output ({exc!r}): {done.stdout[:200]!r}")
    assert not failures, f"{len(failures)} of {RUNS} runs failed:\n" + "\n".join(failures[:10])
