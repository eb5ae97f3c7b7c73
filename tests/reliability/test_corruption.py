"""Damaged blocks: every query is exact or a clear StorageError naming the block, never silent.

A sweep flips bytes across a block's files (samples, series, meta.json), truncates them, empties
them and rewrites ``maxt`` in meta.json. Each case is queried in a child process (a crash such as
SIGABRT is caught as a failure of that case, not of the test run); the child reports "exact",
"error" (a StorageError naming the block path), "skipped" (the block was reported damaged and
left out, with a warning on the querier) or what went wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from promlab.model import Labels
from promlab.storage import open_store

T0 = 1_700_000_000_000 - 1_700_000_000_000 % 86_400_000

CHILD = r"""
import json, sys, numpy as np
from promlab.errors import StorageError
from promlab.model import Matcher, MatchType
from promlab.storage import open_store
store, expected, cases = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3:]
for case in cases:
    d = store + "/" + case
    try:
        with open_store(d, readonly=True) as st:
            q = st.querier(-(1 << 62), 1 << 62)
            ss = q.select([Matcher(MatchType.REGEX, "__name__", ".+")])
            got = {str(ss.labels[i]): [ss.series(i)[1].tolist(),
                                       ss.series(i)[2].view(np.int64).tolist()]
                   for i in range(len(ss))}
            damaged = st.damaged_blocks()
        if got == expected:
            out = "exact"
        elif damaged and q.warnings and all("blocks/" in w for w in q.warnings):
            out = "skipped"
        else:
            out = "WRONG"
    except StorageError as exc:
        out = "error" if "/blocks/" in str(exc) else f"error without path: {exc}"
    except BaseException as exc:
        out = f"RAW {type(exc).__name__}: {exc}"
    print(case, out, flush=True)
"""


def _make_store(path: Path) -> None:
    series = [Labels({"__name__": f"m{i % 3}", "host": f"h{i}", "kind": "gauge"}) for i in range(12)]
    n = 240
    idx = np.repeat(np.arange(len(series)), n)
    ts = np.tile(T0 + np.arange(n, dtype=np.int64) * 15_000, len(series))
    rng = np.random.default_rng(1)
    vals = np.where(idx % 2 == 0, np.round(rng.normal(size=idx.shape[0]) * 100, 2),
                    rng.normal(size=idx.shape[0]))
    with open_store(path) as st:
        app = st.appender()
        app.append_batch(series, idx, ts, vals)
        app.commit()


def _cases(block: Path) -> list[tuple[str, str, int | None]]:
    """(file, kind, position) cases: a sweep of two-byte flips plus structural damage."""
    out: list[tuple[str, str, int | None]] = []
    for name in ("samples.parquet", "series.parquet", "series.arrow", "meta.json"):
        size = (block / name).stat().st_size
        for pos in np.linspace(0, size - 2, 40 if name != "meta.json" else 20).astype(int).tolist():
            out.append((name, "flip", pos))
        out += [(name, "truncate", size // 2), (name, "empty", 0)]
    out.append(("meta.json", "maxt", None))
    return out


def _damage(block: Path, name: str, kind: str, pos: int | None) -> None:
    f = block / name
    data = bytearray(f.read_bytes())
    if kind == "flip":
        assert pos is not None
        data[pos] ^= 0xFF
        data[pos + 1] ^= 0x5A
    elif kind == "truncate":
        data = data[:pos]
    elif kind == "empty":
        data = bytearray()
    elif kind == "maxt":
        meta = json.loads(data)
        meta["maxt"] = meta["mint"]  # the data's range shrunk: queries would miss samples
        data = bytearray(json.dumps(meta).encode())
    f.write_bytes(bytes(data))


def test_byte_flips_are_never_silently_wrong(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _make_store(src)
    (block,) = [p for p in (src / "blocks").iterdir() if not p.name.startswith(".")]
    with open_store(src, readonly=True) as st:
        from promlab.model import Matcher, MatchType

        ss = st.querier(-(1 << 62), 1 << 62).select([Matcher(MatchType.REGEX, "__name__", ".+")])
        expected = {str(ss.labels[i]): [ss.series(i)[1].tolist(),
                                        ss.series(i)[2].view(np.int64).tolist()]
                    for i in range(len(ss))}
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    cases = _cases(block)
    stores = tmp_path / "cases"
    names = []
    for k, (fname, kind, pos) in enumerate(cases):
        d = stores / f"c{k:03d}"
        shutil.copytree(src, d)
        _damage(d / "blocks" / block.name, fname, kind, pos)
        names.append(d.name)
    results: dict[str, str] = {}
    todo = list(names)
    while todo:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(stores),
                               str(tmp_path / "expected.json"), *todo],
                              capture_output=True, text=True, timeout=600)
        for line in proc.stdout.splitlines():
            case, _, verdict = line.partition(" ")
            results[case] = verdict
        done = [c for c in todo if c in results]
        if proc.returncode != 0:
            crashed = todo[len(done)]
            results[crashed] = f"CRASH rc={proc.returncode} {proc.stderr[-300:]}"
            done.append(crashed)
        todo = todo[len(done):]
    counts: dict[str, int] = {}
    for v in results.values():
        key = v.split(":")[0].split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
    print("corruption sweep:", len(results), "cases", counts)
    bad = {names[i]: (cases[i], results[names[i]]) for i in range(len(names))
           if results[names[i]] not in ("exact", "error", "skipped")}
    assert not bad, bad
    # The sweep must have hit damage: most cases are detected, not all "exact".
    assert counts.get("exact", 0) < len(results) // 2, counts


@pytest.mark.parametrize("kind", ["flip", "empty"], ids=["flip", "empty"])
def test_writer_quarantines_and_verify_reports(tmp_path: Path, kind: str) -> None:
    from promlab.storage.verify import repair_store, verify_store

    _make_store(tmp_path)
    (block,) = [p for p in (tmp_path / "blocks").iterdir() if not p.name.startswith(".")]
    size = (block / "samples.parquet").stat().st_size
    _damage(block, "samples.parquet", kind, size // 3)
    (report,) = verify_store(str(tmp_path))
    assert report.reason is not None and str(block) in report.reason
    damaged = repair_store(str(tmp_path))
    assert [r.path for r in damaged] == [str(block)]
    assert (tmp_path / "blocks" / ".quarantine" / block.name / "REASON").exists()
    assert verify_store(str(tmp_path)) == []
    assert os.path.isdir(tmp_path / "blocks" / ".quarantine")
