"""Hostile import files (issue 15 item 6): each case against the real promtool and promlab.

Every case is run through ``promtool tsdb create-blocks-from openmetrics`` and ``promlab import``
(the CLI, a real process, into a real store). Where promtool refuses a file, promlab must refuse
it too, with a clear message, and store nothing; where promtool accepts it, promlab must store
exactly what promtool's blocks hold (``promtool tsdb dump``) or report each difference in its
counts (and refuse it with ``--strict``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from promlab.errors import ExpositionError
from promlab.importer import import_file
from promlab.storage import open_store

PROMLAB = [sys.executable, "-m", "promlab"]

GOOD = "# TYPE a counter\na_total 1 1700000000\na_total 2 1700000015.5\nb 3 1700000030\n# EOF\n"

# (id, body, promtool accepts, promlab's error text when refused)
CASES = [
    pytest.param(GOOD, True, "", id="good"),
    pytest.param("a_total 1 1700000000\na_total 2 1700000015\n", False,
                 "ambiguous format", id="truncated-download-no-eof"),
    pytest.param("# TYPE a counter\n# UNIT a seconds\na_total 1 1700000000\n", False,
                 "does not end with '# EOF'", id="openmetrics-syntax-no-eof"),
    pytest.param("a_total 1 1700000000\nb_total 1 1700000000\nb_tot", False,
                 "ambiguous format", id="truncated-mid-line"),
    pytest.param("a_total 1 1700000000\nb_total 1 1700000000\nb_tot\n# EOF\n", False,
                 "line 3", id="broken-line-before-eof"),
    pytest.param("a_total 1 1700000000\na_total 2\n# EOF\n", False,
                 "expected timestamp for series", id="sample-without-timestamp"),
    pytest.param("a_total 1 1700000000\n# EOF\na 1 1700000001\n", False,
                 "unexpected data after '# EOF'", id="data-after-eof"),
    pytest.param("a_total 1 1700000000\n\n# EOF\n", False, "line 2", id="empty-line"),
    pytest.param("a_total NaNx 1700000000\n# EOF\n", False, "line 1", id="bad-value"),
    pytest.param("a_total 1 17000000xx\n# EOF\n", False, "line 1", id="bad-timestamp"),
    pytest.param('a_total{x="1",y="a b"} 1 1700000000\na_total{x="2"} NaN 1700000001\n# EOF\n', True, "",
                 id="labels-and-nan"),
    pytest.param("", False, "empty file", id="empty-file"),
]


def _promtool(promtool: str, path: Path, out: Path) -> tuple[bool, dict[str, list[tuple[int, str]]]]:
    """Run promtool's backfill; return (accepted, {series: [(ts_ms, value text)]})."""
    res = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(out)],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        return False, {}
    (out / "wal").mkdir(exist_ok=True)
    dump = subprocess.run([promtool, "tsdb", "dump", str(out)], capture_output=True, text=True,
                          timeout=60, check=True).stdout
    got: dict[str, list[tuple[int, str]]] = {}
    for line in dump.splitlines():
        series, value, ts = line.rsplit(" ", 2)
        got.setdefault(series, []).append((int(ts), value))
    return True, got


def _promlab_samples(data: Path) -> dict[str, list[tuple[int, str]]]:
    got: dict[str, list[tuple[int, str]]] = {}
    with open_store(data, readonly=True) as st:
        from promlab.model import Matcher, MatchType

        ss = st.querier(-(1 << 62), 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
        for i, ls in enumerate(ss.labels):
            lo, hi = int(ss.offsets[i]), int(ss.offsets[i + 1])
            key = "{" + ", ".join(f'{k}="{v}"' for k, v in ls.items()) + "}"
            got[key] = [(int(t), f"{v:g}") for t, v in zip(ss.ts_ms[lo:hi].tolist(),
                                                           ss.values[lo:hi].tolist(), strict=True)]
    return got


def _cli_import(path: Path, data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PROMLAB, "import", "-q", "--data", str(data), *extra, str(path)],
                          capture_output=True, text=True, timeout=120)


def _stored(data: Path) -> int:
    if not data.exists():
        return 0
    return sum(len(v) for v in _promlab_samples(data).values())


def _count(store: object) -> int:
    from promlab.model import Matcher, MatchType

    ss = store.querier(-(1 << 62), 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])  # type: ignore[attr-defined]
    return int(ss.ts_ms.shape[0])


@pytest.mark.parametrize(("body", "promtool_ok", "error"), CASES)
def test_import_matches_promtool(tmp_path: Path, require_binary: Callable[[str], str], body: str,
                                 promtool_ok: bool, error: str) -> None:
    promtool = require_binary("promtool")
    f = tmp_path / "in.om"
    f.write_text(body)
    ok, expected = _promtool(promtool, f, tmp_path / "prom")
    assert ok == promtool_ok
    res = _cli_import(f, tmp_path / "data")
    if not promtool_ok:
        assert res.returncode == 1, res.stdout
        assert "nothing imported" in res.stderr and error in res.stderr
        assert "Traceback" not in res.stderr
        assert _stored(tmp_path / "data") == 0
        return
    assert res.returncode == 0, res.stderr
    assert "openmetrics, detected: ends with '# EOF'" in res.stdout
    got = _promlab_samples(tmp_path / "data")
    assert got == {k: [(t, f"{float(v):g}") for t, v in vs] for k, vs in expected.items()}


@pytest.mark.parametrize(("body", "counter", "promtool_keeps"), [
    pytest.param("a_total 1 10\na_total 1 10\n# EOF\n", "duplicates", [(10_000, "1")], id="duplicate"),
    pytest.param("a_total 1 10\na_total 3 10\n# EOF\n", "duplicates", [(10_000, "1")],
                 id="duplicate-other-value"),
    pytest.param("a_total 1 20\na_total 2 10\n# EOF\n", "out_of_order", [(20_000, "1")], id="out-of-order"),
])
def test_refusals_are_counted_and_strict_refuses(tmp_path: Path, require_binary: Callable[[str], str],
                                                 body: str, counter: str,
                                                 promtool_keeps: list[tuple[int, str]]) -> None:
    """promtool drops these silently; promlab reports them and ``--strict`` stores nothing."""
    f = tmp_path / "in.om"
    f.write_text(body)
    ok, expected = _promtool(require_binary("promtool"), f, tmp_path / "prom")
    assert ok and expected == {'{__name__="a_total"}': promtool_keeps}
    res = _cli_import(f, tmp_path / "data")
    assert res.returncode == 0 and f"{counter}=1" in res.stdout
    strict = _cli_import(f, tmp_path / "strict", "--strict")
    assert strict.returncode == 1
    assert f"1 {counter.replace('_', ' ')}" in strict.stderr and "nothing imported" in strict.stderr
    assert _stored(tmp_path / "strict") == 0


def test_text_format_is_reported_and_explicit_format_wins(tmp_path: Path) -> None:
    f = tmp_path / "in.prom"
    f.write_text("a 1 1700000000000\na 2 1700000015000\n")
    res = _cli_import(f, tmp_path / "data")
    assert res.returncode == 0 and "(text, detected: no '# EOF'" in res.stdout
    # The ambiguous file imports once the format is given.
    g = tmp_path / "secs.om"
    g.write_text("a_total 1 1700000000\na_total 2 1700000015\n")
    res = _cli_import(g, tmp_path / "data2", "--format", "openmetrics")
    assert res.returncode == 1 and "does not end with '# EOF'" in res.stderr
    res = _cli_import(g, tmp_path / "data3", "--format", "text")
    assert res.returncode == 0 and "(text, given)" in res.stdout


def test_default_timestamp_is_opt_in(tmp_path: Path) -> None:
    f = tmp_path / "in.om"
    f.write_text("a_total 1\n# EOF\n")
    res = _cli_import(f, tmp_path / "data", "--default-timestamp", "1700000000")
    assert res.returncode == 0, res.stderr
    assert _promlab_samples(tmp_path / "data") == {'{__name__="a_total"}': [(1_700_000_000_000, "1")]}


@pytest.mark.parametrize("where", [0.05, 0.5, 0.999], ids=["early", "middle", "last-line"])
def test_failed_import_stores_nothing_in_a_live_store(tmp_path: Path, where: float) -> None:
    """Many chunks, history and head-range samples, a bad line somewhere: nothing is stored, no
    staging directory is left, and the store's own data is untouched."""
    from promlab.model import Labels

    t0 = 1_700_000_000
    n = 20_000
    lines = [f'm{{i="{i % 50}"}} {i} {t0 + i}' for i in range(n)]
    lines[int(n * where)] = 'm{i="0"} 1 not-a-time'
    f = tmp_path / "bad.om"
    f.write_text("\n".join(lines) + "\n# EOF\n")
    with open_store(tmp_path / "store", wal_fsync=False) as store:
        app = store.appender()  # a live head in the middle of the file's range
        app.append(Labels({"__name__": "live"}), (t0 + n // 2) * 1000, 7.0)
        app.commit()
        before = _count(store)
        with pytest.raises(ExpositionError, match=f"line {int(n * where) + 1}"):
            import_file(f, store, progress=False, chunk_bytes=16 << 10)
        assert _count(store) == before == 1
        assert store.blocks() == []
        assert [x for x in os.listdir(store.blocks_dir) if x.startswith(".")] == []
        # The same file, fixed, imports in full (both paths: blocks and head).
        lines[int(n * where)] = f'm{{i="0"}} {int(n * where)} {t0 + int(n * where)}'
        f.write_text("\n".join(lines) + "\n# EOF\n")
        stats = import_file(f, store, progress=False, chunk_bytes=16 << 10)
        assert stats.appended == n and _count(store) == n + 1
