"""``promlab.query(..., data="dir")``: one shared read-only Session per directory, kept fresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import promlab.session.convenience as pq
from promlab.model import Labels
from promlab.storage import open_store

T0 = 1_700_000_000_000
UP = Labels({"__name__": "up", "job": "a"})


def _append(st: object, ts_ms: list[int], values: list[float]) -> None:
    app = st.appender()  # type: ignore[attr-defined]
    app.append_batch([UP], np.zeros(len(ts_ms), np.int64), np.array(ts_ms, np.int64),
                     np.array(values, np.float64))
    app.commit()


def _value(path: Path, t_ms: int) -> list[float]:
    df = pq.query("up", t_ms / 1000, data=path)
    return df["value"].tolist()


@pytest.fixture(autouse=True)
def _fresh_sessions() -> None:
    pq.close_sessions()
    yield
    pq.close_sessions()


@pytest.mark.parametrize("flush", [pytest.param(False, id="wal"), pytest.param(True, id="flushed")])
def test_second_query_sees_data_written_in_between(tmp_path: Path, flush: bool) -> None:
    with open_store(tmp_path, wal_fsync=False) as writer:
        _append(writer, [T0], [1.0])
        assert _value(tmp_path, T0) == [1.0]
        store = pq.session_for(tmp_path)
        _append(writer, [T0 + 15_000], [2.0])
        if flush:
            writer.flush()
        assert _value(tmp_path, T0 + 15_000) == [2.0]
        assert pq.session_for(tmp_path) is store  # reused, not reopened
        df = pq.query_range("up", T0 / 1000, (T0 + 15_000) / 1000, "15s", data=str(tmp_path))
        assert df["value"].tolist() == [1.0, 2.0]


def test_replaced_directory_is_reopened_and_cache_is_bounded(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                ) -> None:
    path = tmp_path / "data"
    with open_store(path, wal_fsync=False) as w:
        _append(w, [T0], [1.0])
    assert _value(path, T0) == [1.0]
    first = pq.session_for(path)
    shutil.rmtree(path)
    with open_store(path, wal_fsync=False) as w:
        _append(w, [T0], [7.0])
    assert _value(path, T0) == [7.0]
    assert first.closed and pq.session_for(path) is not first

    monkeypatch.setattr(pq, "MAX_OPEN_SESSIONS", 2)
    opened = []
    for i in range(3):
        p = tmp_path / f"s{i}"
        with open_store(p, wal_fsync=False) as w:
            _append(w, [T0], [float(i)])
        assert _value(p, T0) == [float(i)]
        opened.append(pq.session_for(p))
    assert opened[0].closed and not opened[2].closed
    pq.close_sessions()
    assert all(s.closed for s in opened)
