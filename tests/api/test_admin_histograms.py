"""``/api/v1/admin/tsdb/delete_series`` on native histograms: samples scraped from a protobuf
target into a Parquet store (head, histogram WAL, files), deleted through the HTTP API, gone from
PromQL answers and still gone after the session is restarted; other series and samples outside
``[start, end]`` untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from promlab import Session
from promlab.api import Server
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.storage.store import ParquetStore
from tests.scrape.drive import scrape_rounds
from tests.scrape.pbtarget import PbTarget, exp_histogram, native_family

DELETE = "/api/v1/admin/tsdb/delete_series"
T0 = 1_700_000_000_000
STEP = 15_000
ROUNDS = 20
ALL = [T0 + k * STEP for k in range(ROUNDS)]


def families(k: int) -> list[pb.MetricFamily]:
    """Round ``k``'s page: two native histograms and a gauge stamped ``T0 + k * STEP``."""
    fine = exp_histogram(3, {i: (i % 3 + 1) * (k + 1) for i in range(-2, 5)}, sum_=0.5 * k)
    coarse = exp_histogram(-1, {0: k, 2: 1}, negative={1: k}, zero_count=k + 1,
                           zero_threshold=0.01, sum_=k - 2.0)
    g = pb.MetricFamily(name="temp", type=pb.GAUGE)
    g.metric.append(pb.Metric(gauge=pb.Gauge(value=float(k)), timestamp_ms=T0 + k * STEP))
    return [native_family("lat", [({"s": "fine"}, fine), ({"s": "coarse"}, coarse)],
                          ts_ms=T0 + k * STEP), g]


def scrape(session: Session, rounds: range, *, flush_after: int | None) -> None:
    """Scrape one page per round into the session's store (``flush_after`` rounds: flushed)."""
    store = session.store
    assert isinstance(store, ParquetStore)
    state = {"k": 0}
    with PbTarget(lambda _now: families(state["k"])) as target:
        config = {"global": {"scrape_native_histograms": True},
                  "scrape_configs": [{"job_name": "h", "scrape_interval": "15s",
                                      "static_configs": [{"targets": [target.address]}]}]}
        ks = list(rounds)

        def flush_at(i: int) -> None:
            if flush_after is not None and ks[i] + 1 == flush_after:
                store.flush()

        results = scrape_rounds(store, config, [T0 + k * STEP for k in ks],
                                before=lambda i: state.update(k=ks[i]), after=flush_at,
                                wait_commit=True)
        assert all(r.ok for r in results), [r.error for r in results]


def raw(url: str) -> dict[str, list[int]]:
    """Every sample time per series of ``lat`` and ``temp``, as ``x[range]`` answers them."""
    span = f"{(ROUNDS + 1) * STEP // 1000}s"
    out: dict[str, list[int]] = {}
    for metric, key in (("lat", "histograms"), ("temp", "values")):
        r = httpx.get(url + "/api/v1/query", params={
            "query": f"{metric}[{span}]", "time": (T0 + ROUNDS * STEP) / 1000}, timeout=30)
        r.raise_for_status()
        for s in r.json()["data"]["result"]:
            name = s["metric"].get("s", metric)
            out[name] = [round(float(t) * 1000) for t, _ in s.get(key, [])]
            if key == "histograms":  # whole histograms, not placeholders
                assert all(float(h["count"]) > 0 for _, h in s[key])
    return out


def counts(url: str) -> dict[str, float]:
    """``histogram_count`` per series at the last round: PromQL over the kept histograms."""
    r = httpx.get(url + "/api/v1/query", params={
        "query": "histogram_count(lat)", "time": (T0 + (ROUNDS - 1) * STEP) / 1000}, timeout=30)
    r.raise_for_status()
    return {s["metric"]["s"]: float(s["value"][1]) for s in r.json()["data"]["result"]}


def _s(ms: int) -> str:
    return f"{ms / 1000:.3f}"


@pytest.mark.parametrize(("flush_after", "params", "want"), [
    pytest.param(None, {"match[]": 'lat{s="fine"}', "start": _s(ALL[5]), "end": _s(ALL[9])},
                 {"fine": ALL[:5] + ALL[10:], "coarse": ALL, "temp": ALL}, id="head-partial"),
    pytest.param(ROUNDS, {"match[]": 'lat{s="fine"}', "start": _s(ALL[5]), "end": _s(ALL[9])},
                 {"fine": ALL[:5] + ALL[10:], "coarse": ALL, "temp": ALL}, id="files-partial"),
    pytest.param(10, {"match[]": '{job="h",s=~"fine|coarse"}', "start": _s(ALL[8]),
                      "end": _s(ALL[12] + 1)},
                 {"fine": ALL[:8] + ALL[13:], "coarse": ALL[:8] + ALL[13:], "temp": ALL},
                 id="files-and-head-partial"),
    pytest.param(10, {"match[]": ['lat{s="coarse"}', "temp"]}, {"fine": ALL},
                 id="files-and-head-all-time"),
    pytest.param(ROUNDS, {"match[]": "lat", "end": _s(ALL[-1] - 1)},
                 {"fine": ALL[-1:], "coarse": ALL[-1:], "temp": ALL}, id="files-until-end"),
])
def test_delete_series_deletes_native_histograms(tmp_path: Path, flush_after: int | None,
                                                 params: dict[str, Any],
                                                 want: dict[str, list[int]]) -> None:
    data = tmp_path / "data"
    with Session(str(data), progress=False, wal_fsync=False, ooo_window=None) as session:
        scrape(session, range(ROUNDS), flush_after=flush_after)
        with Server(session, listen="127.0.0.1:0", enable_admin_api=True) as server:
            assert raw(server.url) == {"fine": ALL, "coarse": ALL, "temp": ALL}
            before = counts(server.url)
            r = httpx.post(server.url + DELETE, params=params, timeout=60)
            assert r.status_code == 204, r.text
            assert raw(server.url) == want
            after = counts(server.url)
    # The last round's histograms are kept (or gone) whole: the same counts PromQL saw before.
    assert after == {s: c for s, c in before.items() if s in want and ALL[-1] in want[s]}
    with Session(str(data), progress=False, wal_fsync=False, ooo_window=None) as session, \
            Server(session, listen="127.0.0.1:0", enable_admin_api=True) as server:
        assert raw(server.url) == want
        assert counts(server.url) == after
