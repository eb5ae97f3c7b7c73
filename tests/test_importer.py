"""Bulk import of OpenMetrics / text files into a store."""

from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import pytest

from promlab.errors import ExpositionError
from promlab.importer import import_file
from promlab.model import Labels, Matcher, MatchType
from promlab.storage import MemoryStorage
from promlab.storage.interface import Storage

T0 = 1_700_000_000  # seconds


def om_file(path: Path, *, steps: int = 50, series: int = 20, eof: bool = True, seed: int = 0) -> dict[tuple[str, int], list[tuple[int, float]]]:
    """Write a backfill-style OpenMetrics file; return {(metric, series#): [(ts_ms, value)]}."""
    rnd = random.Random(seed)
    expected: dict[tuple[str, int], list[tuple[int, float]]] = {}
    lines = ["# HELP req Requests.", "# TYPE req counter"]
    for s in range(series):
        v = 0
        for k in range(steps):
            v += rnd.randint(0, 10)
            ts = T0 + 15 * k
            lines.append(f'req_total{{path="/p{s}",code="200"}} {v} {ts}')
            expected.setdefault(("req_total", s), []).append((ts * 1000, float(v)))
    lines += ["# TYPE temp gauge"]
    for s in range(series):
        for k in range(steps):
            val = round(rnd.uniform(-10, 40), 2)
            ts = f"{T0 + 15 * k}.250"
            lines.append(f'temp{{room="r{s}"}} {val} {ts}')
            expected.setdefault(("temp", s), []).append(((T0 + 15 * k) * 1000 + 250, val))
    if eof:
        lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return expected


def select(store: Storage, name: str) -> dict[Labels, tuple[list[int], list[float]]]:
    q = store.querier(0, 2**62)
    try:
        ss = q.select([Matcher(MatchType.EQUAL, "__name__", name)])
    finally:
        q.close()
    return {ls: (ts.tolist(), vs.tolist()) for ls, ts, vs in (ss.series(i) for i in range(len(ss)))}


@pytest.mark.parametrize("chunk_bytes", [64 << 20, 4096, 97])
def test_openmetrics_import_roundtrip(tmp_path: Path, chunk_bytes: int) -> None:
    f = tmp_path / "data.om"
    expected = om_file(f)
    store = MemoryStorage()
    stats = import_file(f, store, progress=False, chunk_bytes=chunk_bytes)
    assert stats.format == "openmetrics"
    assert stats.samples == stats.appended == 2 * 20 * 50
    assert stats.series == 40
    assert stats.lines == len(f.read_text().splitlines())
    assert stats.chunks >= (1 if chunk_bytes > 1 << 20 else 10)
    assert stats.min_time_ms == T0 * 1000
    got = select(store, "req_total")
    for s in range(20):
        ts, vs = got[Labels({"__name__": "req_total", "path": f"/p{s}", "code": "200"})]
        assert list(zip(ts, vs, strict=True)) == expected[("req_total", s)]
    got = select(store, "temp")
    assert got[Labels({"__name__": "temp", "room": "r3"})][0] == [t for t, _ in expected[("temp", 3)]]


def test_text_format_import_autodetected(tmp_path: Path) -> None:
    f = tmp_path / "data.prom"
    f.write_text("# TYPE a gauge\na{x=\"1\"} 1 1000\na{x=\"1\"} 2 2000\nb NaN 3000\n")
    store = MemoryStorage()
    stats = import_file(f, store, progress=False)
    assert stats.format == "text"
    assert select(store, "a")[Labels({"__name__": "a", "x": "1"})] == ([1000, 2000], [1.0, 2.0])
    (ts, vs), = select(store, "b").values()
    assert ts == [3000] and math.isnan(vs[0])


def test_missing_timestamps_get_import_time(tmp_path: Path) -> None:
    f = tmp_path / "data.om"
    f.write_text("a 1\nb 2 5\n# EOF\n")
    store = MemoryStorage()
    import_file(f, store, progress=False, default_timestamp_ms=123_000)
    assert select(store, "a")[Labels({"__name__": "a"})] == ([123_000], [1.0])
    assert select(store, "b")[Labels({"__name__": "b"})] == ([5000], [2.0])


def test_error_in_the_middle_stores_nothing(tmp_path: Path) -> None:
    f = tmp_path / "data.om"
    lines = [f'm{{i="{i % 10}"}} {i} {T0 + i}' for i in range(2000)]
    lines[1500] = 'm{i="0"} not-a-number 1'
    f.write_text("\n".join(lines) + "\n# EOF\n")
    store = MemoryStorage()
    with pytest.raises(ExpositionError) as info:
        import_file(f, store, progress=False, chunk_bytes=4096)
    assert info.value.lineno == 1501
    assert "invalid value" in str(info.value)
    assert select(store, "m") == {}  # atomic: the chunks before the bad line are not stored


@pytest.mark.parametrize(("body", "lineno", "reason"), [
    pytest.param("a 1 1\nb 2 2\n", 2, "does not end with '# EOF'", id="missing-eof"),
    pytest.param("a 1 1\n# EOF\nb 2 2\n", 3, "after '# EOF'", id="data-after-eof"),
    pytest.param("# TYPE a counter\na_total 1 1\n\n# EOF\n", 3, "empty line", id="blank-line"),
])
def test_openmetrics_structure_errors(tmp_path: Path, body: str, lineno: int, reason: str) -> None:
    f = tmp_path / "bad.om"
    f.write_text(body)
    with pytest.raises(ExpositionError) as info:
        import_file(f, MemoryStorage(), progress=False, format="openmetrics", chunk_bytes=8)
    assert info.value.lineno == lineno
    assert reason in str(info.value)


def test_eof_in_the_middle_of_a_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import promlab.importer

    monkeypatch.setattr(promlab.importer, "_PIECE", 64)
    f = tmp_path / "bad.om"
    f.write_text("".join(f"a{k} 1 {k}\n" for k in range(20)) + "# EOF\n" + "b 1 1\n" * 20 + "# EOF\n")
    with pytest.raises(ExpositionError, match="after '# EOF'") as info:
        import_file(f, MemoryStorage(), progress=False, format="openmetrics")
    assert info.value.lineno == 22


def test_small_pieces_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import promlab.importer

    f = tmp_path / "data.om"
    om_file(f, steps=30, series=4)
    big = MemoryStorage()
    import_file(f, big, progress=False)
    monkeypatch.setattr(promlab.importer, "_PIECE", 100)
    small = MemoryStorage()
    stats = import_file(f, small, progress=False)
    assert stats.samples == 240
    assert select(small, "req_total") == select(big, "req_total")
    assert select(small, "temp") == select(big, "temp")


def test_forced_format_and_optional_eof(tmp_path: Path) -> None:
    f = tmp_path / "data.txt"
    f.write_text("a 1 2\n")
    store = MemoryStorage()
    stats = import_file(f, store, progress=False, format="openmetrics", require_eof=False)
    assert stats.format == "openmetrics"
    assert select(store, "a")[Labels({"__name__": "a"})] == ([2000], [1.0])


def test_parse_only_and_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "data.om"
    om_file(f, steps=5, series=3)
    stats = import_file(f, None, progress=True, chunk_bytes=512)
    assert stats.samples == 30 and stats.appended == 0
    assert stats.parse_samples_per_second > 0
    assert "data.om" in capsys.readouterr().err


def test_import_into_parquet_store(tmp_path: Path) -> None:
    storage = pytest.importorskip("promlab.storage")
    open_store = getattr(storage, "open_store", None)
    if open_store is None:
        pytest.skip("promlab.storage.open_store not available yet")
    f = tmp_path / "data.om"
    expected = om_file(f, steps=40, series=5)
    with open_store(tmp_path / "store", wal_fsync=False) as store:
        stats = import_file(f, store, progress=False, chunk_bytes=2048)
        assert stats.samples == 400
        got = select(store, "req_total")
    ts, vs = got[Labels({"__name__": "req_total", "path": "/p2", "code": "200"})]
    assert list(zip(ts, vs, strict=True)) == expected[("req_total", 2)]
    with open_store(tmp_path / "store", readonly=True) as again:
        assert np.isclose(sum(len(v[0]) for v in select(again, "temp").values()), 200)


def test_parquet_backfill_and_live_head(tmp_path: Path) -> None:
    """Old chunks go straight to blocks; chunks in the head's range are appended; an error
    stores nothing (no block published, nothing in the head)."""
    from promlab.storage import open_store

    f = tmp_path / "data.om"
    old = [f'old{{i="{i % 3}"}} {i} {T0 + i}' for i in range(300)]
    new = [f'new{{i="{i % 3}"}} {i} {T0 + 2000 + i}' for i in range(300)]
    f.write_text("\n".join(old + new) + "\n# EOF\n")
    with open_store(tmp_path / "store", wal_fsync=False) as store:
        app = store.appender()  # a live head from T0 + 1500 s: the "new" samples overlap it
        app.append(Labels({"__name__": "live"}), (T0 + 1500) * 1000, 1.0)
        app.commit()
        stats = import_file(f, store, progress=False, chunk_bytes=2048)
        assert stats.samples == stats.appended == 600
        assert store.blocks() and store.head_samples > 300  # both paths were taken
        for name in ("old", "new"):
            got = select(store, name)
            assert sorted(v for _, vs in got.values() for v in vs) == [float(i) for i in range(300)]

    bad = tmp_path / "bad.om"
    lines = [f'm{{i="{i % 10}"}} {i} {T0 + i}' for i in range(2000)]
    lines[1500] = 'm{i="0"} not-a-number 1'
    bad.write_text("\n".join(lines) + "\n# EOF\n")
    with open_store(tmp_path / "store2") as store:
        with pytest.raises(ExpositionError):
            import_file(bad, store, progress=False, chunk_bytes=4096)
        assert select(store, "m") == {}
        assert store.head_samples == 0 and store.blocks() == []
        assert [n for n in os.listdir(store.blocks_dir) if n.startswith(".tmp-")] == []
