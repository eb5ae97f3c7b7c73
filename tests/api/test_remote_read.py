"""Remote read both ways with a real Prometheus: it reads promlab's history; promlab imports its."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import Session
from promlab.model import Matcher, MatchType
from promlab.remote.client import read_range
from promlab.remote.codec import compress

from .conftest import Pair

pytestmark = [pytest.mark.realprom, pytest.mark.slow]

ALL = '{__name__=~".+"}'


def matrix(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], list[tuple[int, str]]]:
    return {tuple(sorted(r["metric"].items())): [(round(float(t) * 1000), v) for t, v in r["values"]]
            for r in result}


def test_promlab_serves_sampled_and_streamed(pair: Pair) -> None:
    """Both response types give exactly the samples the backfilled Prometheus holds."""
    end = pair.info.spec.end_ms
    start = pair.info.spec.start_ms
    m = [Matcher(MatchType.REGEX, "__name__", ".+")]
    with httpx.Client(timeout=120) as c:
        mine = read_range(c, pair.promlab.url + "/api/v1/read", m, start, end)
        theirs = read_range(c, pair.prometheus.url + "/api/v1/read", m, start, end)
    def as_dict(r: Any) -> dict[Any, list[tuple[int, float]]]:
        out: dict[Any, list[tuple[int, float]]] = {}
        for i, t, v in zip(r.index.tolist(), r.ts_ms.tolist(), r.values.tolist(), strict=True):
            out.setdefault(r.series[i], []).append((t, v))
        return out
    a, b = as_dict(mine), as_dict(theirs)
    assert len(a) > 10 and a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k
    assert mine.ts_ms.shape[0] == theirs.ts_ms.shape[0]


def test_remote_read_bad_request(pair: Pair) -> None:
    r = httpx.post(pair.promlab.url + "/api/v1/read", content=b"junk",
                   headers={"Content-Encoding": "snappy"})
    assert r.status_code == 400
    r = httpx.post(pair.promlab.url + "/api/v1/read", content=compress(b"\x0a\x03\x1a\x01\xff"))
    assert r.status_code == 400


def test_real_prometheus_remote_reads_promlab(pair: Pair, tmp_path: Path) -> None:
    """An empty Prometheus with ``remote_read`` pointed at promlab answers from promlab's data."""
    end_s = pair.end_s
    cfg = {"global": {"scrape_interval": "15s"},
           "remote_read": [{"url": pair.promlab.url + "/api/v1/read", "read_recent": True}]}
    with realprom.prometheus(config=cfg, data_dir=tmp_path / "reader") as reader:
        for expr in (f"{ALL}[10m]", "sum by (job) (rate({__name__=~\".+_total\"}[5m]))"):
            got = reader.query(expr, time=end_s)
            want = pair.prometheus.query(expr, time=end_s)
            assert got["resultType"] == want["resultType"]
            if got["resultType"] == "matrix":
                assert matrix(got["result"]) == matrix(want["result"])
            else:
                g = {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in got["result"]}
                w = {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in want["result"]}
                assert g.keys() == w.keys() and len(g) > 0
                for k in g:
                    assert math.isclose(g[k], w[k], rel_tol=1e-12) or (math.isnan(g[k]) and math.isnan(w[k]))


def test_import_from_real_prometheus(pair: Pair, tmp_path: Path) -> None:
    """import_from copies the raw samples; queries then answer as the server does; resumable."""
    spec = pair.info.spec
    with Session(tmp_path / "copy", progress=False) as s:
        stats = s.import_from(pair.prometheus.url, match=ALL, start=spec.start_ms / 1000,
                              end=spec.end_ms / 1000, slice="20m", progress=False)
        assert stats.samples > 1000 and stats.slices >= 3 and stats.slices_skipped == 0
        again = s.import_from(pair.prometheus.url, match=ALL, start=spec.start_ms / 1000,
                              end=spec.end_ms / 1000, slice="20m", progress=False)
        assert again.slices == 0 and again.slices_skipped == stats.slices
        end_s = pair.end_s
        want = pair.prometheus.query(f"{ALL}[1h]", time=end_s)["result"]
        df = s.query(f"{ALL}[1h]", time=end_s)
        assert df["value"].shape[0] == sum(len(r["values"]) for r in want)
        # Raw samples and a sample-exact aggregate agree with the server itself ...
        w = pair.prometheus.query_range('count by (__name__) ({__name__=~".+"})', end_s - 1800,
                                        end_s, 60)["result"]
        got = s.query_range('count by (__name__) ({__name__=~".+"})', end_s - 1800, end_s, 60)
        assert got.shape[0] == sum(len(r["values"]) for r in w) > 0
        assert sorted(got["value"].tolist()) == sorted(float(v) for r in w for _, v in r["values"])
        # ... and rate() (whose window edges differ between Prometheus 2.42 and the 3.x
        # semantics promlab follows) agrees with promlab over the original file's samples.
        expr = 'sum by (job) (rate({__name__=~".+_total"}[5m]))'
        mine = s.query_range(expr, end_s - 1800, end_s, 60)
        orig = pair.promlab.session.query_range(expr, end_s - 1800, end_s, 60)
        assert mine.shape[0] == orig.shape[0] > 0
        assert mine["value"].tolist() == orig["value"].tolist()


def test_import_from_errors(pair: Pair, tmp_path: Path) -> None:
    from promlab.errors import BadData, StorageError

    with Session(tmp_path / "e", progress=False) as s:
        with pytest.raises(BadData):
            s.import_from(pair.prometheus.url, match=ALL, start=100, end=10, progress=False)
        with pytest.raises(StorageError):
            s.import_from(pair.prometheus.url + "/nope", match=ALL, start=0, end=10, progress=False)


def test_cli_import_from(pair: Pair, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from promlab.cli import main

    spec = pair.info.spec
    rc = main(["import", "--from", pair.prometheus.url, "--match", ALL, "--start",
               str(spec.start_ms / 1000), "--end", str(spec.end_ms / 1000), "--data",
               str(tmp_path / "cli"), "-q"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "samples of" in out and " 0 samples" not in out
    assert main(["import", "--from", pair.prometheus.url, "--data", str(tmp_path / "x"), "-q"]) != 0
