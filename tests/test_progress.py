"""Progress bars: on stderr when asked for (``DELAY`` forced to 0), silent with ``progress=False``."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import realprom
from promlab import datasets, progress
from promlab.cli import main
from promlab.datasets import DatasetSpec
from promlab.model import Labels
from promlab.storage import open_store

HOUR = 3_600_000


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bars show at once (no one-second delay)."""
    monkeypatch.setattr(progress, "DELAY", 0.0)


def _fill(store: Any, hours: int = 3, start: int = 0) -> None:
    series = [Labels({"__name__": "up", "i": str(i)}) for i in range(3)]
    ts = np.arange(start, start + hours * HOUR, 60_000, dtype=np.int64)
    app = store.appender()
    for k in range(len(series)):
        app.append_batch(series, np.full(ts.shape, k), ts, np.ones(ts.shape))
    app.commit()


def _flush(tmp: Path, on: bool) -> None:
    with open_store(tmp, progress=on, auto_compact=False) as st:
        _fill(st)
        st.flush()


def _wal_replay(tmp: Path, on: bool) -> None:
    with open_store(tmp / "w", progress=False) as writer:
        _fill(writer, hours=1)
        with open_store(tmp / "w", readonly=True, progress=on):
            pass


def _compact(tmp: Path, on: bool) -> None:
    with open_store(tmp, progress=False, auto_compact=False, max_block_duration="24h") as st:
        _fill(st, hours=1)
        st.flush()
        _fill(st, hours=1, start=2 * HOUR)
        st.flush()
        st.progress = on
        assert st.compact()


def _backfill(tmp: Path, on: bool) -> None:
    with open_store(tmp, progress=on, auto_compact=False) as st:
        series = [Labels({"__name__": "x"})]
        ts = np.arange(0, 30 * HOUR, HOUR, dtype=np.int64)
        bf = st.backfill()
        bf.add(series, np.zeros(ts.shape, np.int64), ts, np.ones(ts.shape))
        assert bf.finish()


def _dataset(tmp: Path, on: bool) -> None:
    datasets.generate(tmp / "d.om", DatasetSpec(hours=0.05, scale=0.01), progress=on)


def _sleep(tmp: Path, on: bool) -> None:
    progress.sleep(on, 0.05, desc="measuring")


def _iterate(tmp: Path, on: bool) -> None:
    assert list(progress.iterate(on, range(3), desc="queries")) == [0, 1, 2]


ACTIONS: list[Any] = [
    pytest.param(_flush, "writing blocks", id="store-flush"),
    pytest.param(_wal_replay, "replaying WAL", id="store-open-wal-replay"),
    pytest.param(_compact, "compacting", id="store-compact"),
    pytest.param(_backfill, "writing blocks", id="store-backfill"),
    pytest.param(_dataset, "generating", id="dataset-generate"),
    pytest.param(_sleep, "measuring", id="measure-window"),
    pytest.param(_iterate, "queries", id="query-loop"),
]


@pytest.mark.parametrize(("action", "desc"), ACTIONS)
def test_bar_on_stderr(eager, capsys, tmp_path, action: Callable[[Path, bool], None], desc: str):
    action(tmp_path, True)
    out, err = capsys.readouterr()
    assert desc in err
    assert out == ""


@pytest.mark.parametrize(("action", "desc"), ACTIONS)
def test_progress_false_is_silent(eager, capsys, tmp_path, action: Callable[[Path, bool], None], desc: str):
    action(tmp_path, False)
    assert capsys.readouterr() == ("", "")


def test_delay_hides_quick_actions(capsys, tmp_path):
    _flush(tmp_path, True)
    assert capsys.readouterr() == ("", "")


def test_default_and_defaulting():
    assert progress.DEFAULT is False and progress.enabled(None) is False
    with progress.defaulting(True):
        assert progress.enabled(None) and not progress.enabled(False)
    assert progress.DEFAULT is False


def test_write_keeps_stdout(capsys):
    progress.write("row 1")
    assert capsys.readouterr().out == "row 1\n"


# --- CLI ----------------------------------------------------------------------------------


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A store whose head is only in the WAL (copied while its writer is still open)."""
    src = tmp_path / "src"
    with open_store(src) as st:
        _fill(st, hours=1)
        copy = tmp_path / "data"
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns("lock"))
    return copy


@pytest.mark.parametrize("quiet", [pytest.param(False, id="progress"), pytest.param(True, id="quiet")])
def test_cli_query_json_stdout_stays_json(eager, capsys, store_dir, quiet):
    argv = ["query", "up", "--time", "1800", "--format", "json", "--data", str(store_dir)]
    assert main(argv + (["-q"] if quiet else [])) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["resultType"] == "vector" and len(doc["result"]) == 3
    assert ("replaying WAL" in err) is not quiet
    if quiet:
        assert err == ""


@pytest.mark.parametrize("quiet", [pytest.param(False, id="progress"), pytest.param(True, id="quiet")])
def test_cli_tsdb_info(eager, capsys, store_dir, quiet):
    assert main(["tsdb", "info", "--json", "--data", str(store_dir)] + (["-q"] if quiet else [])) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert (err != "") is not quiet


@pytest.mark.parametrize("quiet", [pytest.param(False, id="progress"), pytest.param(True, id="quiet")])
def test_cli_import(eager, capsys, tmp_path, quiet):
    info = datasets.generate(tmp_path / "d.om", DatasetSpec(hours=0.05, scale=0.01))
    assert main(["import", str(info.path), "--data", str(tmp_path / "data")] + (["-q"] if quiet else [])) == 0
    out, err = capsys.readouterr()
    assert out.startswith("imported ")
    assert (err != "") is not quiet


# --- promtool backfill -------------------------------------------------------------------


@pytest.mark.parametrize("on", [pytest.param(True, id="progress"), pytest.param(False, id="quiet")])
def test_promtool_backfill_bar(eager, capsys, tmp_path, on):
    if realprom.find_binary("promtool") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed")
        pytest.skip("promtool is not installed")
    info = datasets.generate(tmp_path / "d.om", DatasetSpec(hours=0.05, scale=0.01))
    res = realprom.backfill(info.path, tmp_path / "prom", progress=on)
    assert res.samples == info.samples
    _, err = capsys.readouterr()
    assert ("promtool backfill" in err) is on
