"""Which remote-write 1.0 samples promlab's receiver takes, against a real Prometheus 2.42.

A side finding of the data-side differential test (test_differential_data.py): out-of-order,
out-of-bounds and duplicate-timestamp samples, against 2.42 with its default (no out-of-order
window) and promlab's store with its default (the same). Both refuse a request with a sample
the head refuses whole (400, nothing stored), keep the first of two samples at one timestamp,
and drop a sample older than an earlier one of the same request at commit (204).

Native histogram samples (remote write 1.0, 2.42 with ``--enable-feature=native-histograms``)
follow the same rules, a series' floats and histograms sharing its latest timestamp; and after a
restart of both, samples are taken or refused as 2.42 takes them (2.42 replays its WAL; promlab
flushed its head into blocks on close and reads each series' latest sample back from them, its
minimum valid time half a block range before the newest persisted sample, as Prometheus's
appender's). 2.42 words some refusals differently from 3.x (the duplicate's values), so only
statuses and stored samples are compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab.api.remote import RemoteWriteReceiver
from promlab.model.histogram import Histogram
from promlab.remote.codec import compress
from promlab.remote.histproto import fill_histogram
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.remote.proto import write_v2_pb2 as pb2
from promlab.storage.store import open_store
from tests.promql.fuzz_compare import diff
from tests.promql.rw_datasets import write_request
from tests.promql.test_differential_data import (
    ENGINE,
    HEADERS,
    prometheus_answer,
    promlab_answer,
)

RW_T0 = 1_700_000_000_000
RW_BASE = [(RW_T0, 1.0), (RW_T0 + 15_000, 2.0), (RW_T0 + 30_000, 3.0)]


# (case, the request after RW_BASE was written to series "x" and (RW_T0, 1) to series "y")
RW_CASES = [
    pytest.param([("x", [(RW_T0 + 10_000, 9.0)])], id="older"),
    pytest.param([("x", [(RW_T0 + 30_000, 3.0)])], id="duplicate-same-value"),
    pytest.param([("x", [(RW_T0 + 45_000, 4.0)])], id="newer"),
    pytest.param([("x", [(RW_T0 - 2 * 3_600_000, 1.0)])], id="older-than-head"),
    pytest.param([("x", [(RW_T0 + 20_000, 9.0)]), ("y", [(RW_T0 + 15_000, 2.0)])],
                 id="older-then-good"),
    pytest.param([("x", [(RW_T0 + 30_000, 4.0)])], id="duplicate-other-value"),
    pytest.param([("y", [(RW_T0 + 15_000, 2.0)]), ("x", [(RW_T0 + 20_000, 9.0)])],
                 id="good-then-older"),
    pytest.param([("z", [(RW_T0 + 100_000, 1.0), (RW_T0 + 90_000, 2.0)])],
                 id="out-of-order-within-request"),
    pytest.param([("z", [(RW_T0 + 100_000, 1.0), (RW_T0 + 100_000, 2.0)])],
                 id="duplicate-within-request"),
    pytest.param([("z", [(RW_T0 - 2 * 3_600_000, 1.0)])], id="older-than-head-new-series"),
]


@pytest.mark.realprom
@pytest.mark.parametrize("request_series", RW_CASES)
def test_remote_write_takes_what_prometheus_takes(
        request_series: list[tuple[str, list[tuple[int, float]]]],
        tmp_path: Path) -> None:
    """Status and stored samples after one more request, against a 2.42 and promlab's store,
    both with their defaults (no out-of-order window)."""
    realprom.require_binary("prometheus")
    store = open_store(tmp_path / "store", wal_fsync=False)
    rx = RemoteWriteReceiver(store)
    base = write_request([({"__name__": "x"}, RW_BASE), ({"__name__": "y"}, RW_BASE[:1])])
    probe = write_request([({"__name__": n}, pts) for n, pts in request_series])
    with realprom.prometheus(extra_args=["--web.enable-remote-write-receiver"]) as prom:
        statuses = []
        for body in (base, probe):
            r = httpx.post(f"{prom.url}/api/v1/write", content=body, headers=HEADERS, timeout=30)
            res = rx.handle(body, HEADERS["Content-Type"], "snappy")
            statuses.append((r.status_code, res.status))
        when = str((RW_T0 + 200_000) / 1000)
        want = prometheus_answer(prom, '{__name__=~"[xyz]"}[1d]', when)
        got = promlab_answer(store, '{__name__=~"[xyz]"}[1d]', when)
    store.close()
    assert statuses[0] == (204, 204)
    assert statuses[1][0] == statuses[1][1], statuses
    assert diff(want, got) is None, (want, got)


# --- native histograms (2.42 with --enable-feature=native-histograms) ------------------------
NH_ARGS = ["--web.enable-remote-write-receiver", "--enable-feature=native-histograms"]


def _h(n: int) -> Histogram:
    """An integer histogram with ``n`` observations in bucket 1 (sum ``1.5 n``)."""
    return Histogram(count=n, sum=1.5 * n, positive_spans=((1, 1),), positive_buckets=(n,))


HIST_BASE = [(RW_T0, _h(1)), (RW_T0 + 15_000, _h(2)), (RW_T0 + 30_000, _h(3))]
Point = tuple[int, float | Histogram]


def hist_request(series: list[tuple[str, list[Point]]]) -> bytes:
    """A remote-write 1.0 request of float samples and integer native histograms."""
    req = pb.WriteRequest()
    for name, points in series:
        ts = req.timeseries.add()
        ts.labels.add(name="__name__", value=name)
        for t, v in points:
            if isinstance(v, Histogram):
                fill_histogram(ts.histograms.add(), v, t)
            else:
                ts.samples.add(timestamp=t, value=v)
    return compress(req.SerializeToString())


def _hist_points(data: dict[str, Any]) -> list[tuple[tuple[tuple[str, str], ...], list[Any]]]:
    """Each series' samples of a matrix answer: floats as values, histograms as (count, sum)."""
    out = []
    for item in data["result"]:
        pts: list[Any] = [(float(t), v) for t, v in item.get("values", [])]
        pts += [(float(t), (float(h["count"]), float(h["sum"]))) for t, h in item.get("histograms", [])]
        out.append((tuple(sorted(item["metric"].items())), sorted(pts)))
    return sorted(out)


def _both_answers(prom: Any, store: Any, when_ms: int) -> tuple[Any, Any]:
    expr = '{__name__=~"h[xyz]|x|y"}[1d]'
    want = _hist_points(prom.query(expr, time=str(when_ms / 1000)))
    got = _hist_points(ENGINE.instant(store, expr, when_ms).to_json())
    return want, got


# (the request after HIST_BASE was written to "hx", RW_BASE to "x" and (RW_T0, 1) to "y")
HIST_CASES = [
    pytest.param([("hx", [(RW_T0 + 10_000, _h(9))])], id="histogram-older"),
    pytest.param([("hx", [(RW_T0 + 30_000, _h(3))])], id="histogram-repeat"),
    pytest.param([("hx", [(RW_T0 + 30_000, _h(9))])], id="histogram-duplicate-other-value"),
    pytest.param([("hx", [(RW_T0 + 45_000, _h(4))])], id="histogram-newer"),
    pytest.param([("hx", [(RW_T0 - 2 * 3_600_000, _h(1))])], id="histogram-older-than-head"),
    pytest.param([("hx", [(RW_T0 + 30_000, 7.0)])], id="float-at-histogram-time"),
    pytest.param([("x", [(RW_T0 + 30_000, _h(1))])], id="histogram-at-float-time"),
    pytest.param([("x", [(RW_T0 + 20_000, _h(1))])], id="histogram-older-than-float"),
    pytest.param([("y", [(RW_T0 + 15_000, 2.0)]), ("hx", [(RW_T0 + 20_000, _h(9))])],
                 id="good-float-then-older-histogram"),
    pytest.param([("hx", [(RW_T0 + 45_000, _h(4))]), ("x", [(RW_T0 + 20_000, 9.0)])],
                 id="good-histogram-then-older-float"),
    pytest.param([("hz", [(RW_T0 + 100_000, _h(1)), (RW_T0 + 90_000, _h(2))])],
                 id="histogram-out-of-order-within-request"),
    pytest.param([("hz", [(RW_T0 + 100_000, _h(1)), (RW_T0 + 100_000, _h(2))])],
                 id="histogram-duplicate-within-request"),
]


@pytest.mark.realprom
@pytest.mark.parametrize("request_series", HIST_CASES)
def test_remote_write_takes_the_histograms_prometheus_takes(
        request_series: list[tuple[str, list[Point]]], tmp_path: Path) -> None:
    """Native histograms under the same rules as floats: status and stored samples against a
    2.42 with native histograms on (no out-of-order window either side)."""
    realprom.require_binary("prometheus")
    store = open_store(tmp_path / "store", wal_fsync=False)
    rx = RemoteWriteReceiver(store)
    base = hist_request([("hx", list(HIST_BASE)), ("x", list(RW_BASE)), ("y", list(RW_BASE[:1]))])
    probe = hist_request(request_series)
    with realprom.prometheus(extra_args=NH_ARGS) as prom:
        statuses = []
        for body in (base, probe):
            r = httpx.post(f"{prom.url}/api/v1/write", content=body, headers=HEADERS, timeout=30)
            res = rx.handle(body, HEADERS["Content-Type"], "snappy")
            statuses.append((r.status_code, res.status))
        want, got = _both_answers(prom, store, RW_T0 + 200_000)
    store.close()
    assert statuses[0] == (204, 204)
    assert statuses[1][0] == statuses[1][1], statuses
    assert got == want


# (the request after a restart of both, once HIST_BASE / RW_BASE were written to "hx" / "x" and
# (RW_T0, 1) to "y"; 2.42 replays its WAL, promlab flushed its head into blocks on close and reads
# each series' latest sample back from them)
RESTART_CASES = [
    pytest.param([("x", [(RW_T0 + 30_000, 9.0)])], 400, id="float-duplicate"),
    pytest.param([("x", [(RW_T0 + 30_000, 3.0)])], 204, id="float-repeat"),
    pytest.param([("x", [(RW_T0 + 20_000, 9.0)])], 400, id="float-older"),
    pytest.param([("hx", [(RW_T0 + 30_000, _h(9))])], 400, id="histogram-duplicate"),
    pytest.param([("hx", [(RW_T0 + 30_000, _h(3))])], 204, id="histogram-repeat"),
    pytest.param([("hx", [(RW_T0 + 20_000, _h(9))])], 400, id="histogram-older"),
    pytest.param([("hx", [(RW_T0 + 30_000, 7.0)])], 400, id="float-at-histogram-time"),
    pytest.param([("x", [(RW_T0 + 30_000, _h(1))])], 400, id="histogram-at-float-time"),
    pytest.param([("x", [(RW_T0 + 45_000, 4.0)]), ("hx", [(RW_T0 + 45_000, _h(4))])], 204,
                 id="newer"),
    pytest.param([("y", [(RW_T0 + 15_000, 2.0)])], 204, id="lagging-series-in-order"),
    pytest.param([("z", [(RW_T0 + 15_000, 2.0)])], 204, id="new-series-older-than-newest"),
    pytest.param([("z", [(RW_T0 - 2 * 3_600_000, 2.0)])], 400,
                 id="new-series-older-than-half-a-block"),
    pytest.param([("y", [(RW_T0, 1.0), (RW_T0 + 15_000, 2.0)]), ("x", [(RW_T0 + 45_000, 4.0)])],
                 204, id="retried-batch-across-restart"),
    pytest.param([("hx", list(HIST_BASE)), ("x", list(RW_BASE)), ("y", list(RW_BASE[:1]))], 400,
                 id="base-again"),
]


@pytest.mark.realprom
@pytest.mark.parametrize(("request_series", "status"), RESTART_CASES)
def test_after_restart_samples_are_taken_as_prometheus_takes_them(
        request_series: list[tuple[str, list[Point]]], status: int, tmp_path: Path) -> None:
    """After a restart both still know each series' latest sample (2.42 from its WAL, promlab
    from its newest blocks): a duplicate or older sample is refused, an exact repeat taken once,
    a sample in order for its own series taken even when older than the newest of all."""
    realprom.require_binary("prometheus")
    base = hist_request([("hx", list(HIST_BASE)), ("x", list(RW_BASE)), ("y", list(RW_BASE[:1]))])
    probe = hist_request(request_series)
    store = open_store(tmp_path / "store", wal_fsync=False)
    with realprom.prometheus(tmp_path / "prom", extra_args=NH_ARGS) as prom:
        r = httpx.post(f"{prom.url}/api/v1/write", content=base, headers=HEADERS, timeout=30)
        assert (r.status_code, RemoteWriteReceiver(store).handle(base, HEADERS["Content-Type"],
                                                                  "snappy").status) == (204, 204)
    store.close()
    store = open_store(tmp_path / "store", wal_fsync=False)
    with realprom.prometheus(tmp_path / "prom", extra_args=NH_ARGS) as prom:
        r = httpx.post(f"{prom.url}/api/v1/write", content=probe, headers=HEADERS, timeout=30)
        res = RemoteWriteReceiver(store).handle(probe, HEADERS["Content-Type"], "snappy")
        want, got = _both_answers(prom, store, RW_T0 + 200_000)
    store.close()
    assert (r.status_code, res.status) == (status, status), res.message
    assert got == want


def test_remote_write_v2_lists_refused_histograms_and_commits_the_rest(tmp_path: Path) -> None:
    """2.0 (Prometheus 3.x; 2.42 has no 2.0 receiver): the refused histogram is listed, the
    other samples committed and counted in the written headers."""
    req = pb2.Request(symbols=["", "__name__", "hx", "y"])
    first = req.timeseries.add(labels_refs=[1, 2])
    for t, h in HIST_BASE:
        fill_histogram(first.histograms.add(), h, t)
    v2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    with open_store(tmp_path, wal_fsync=False) as store:
        rx = RemoteWriteReceiver(store)
        assert rx.handle(compress(req.SerializeToString()), v2, "snappy").status == 204
        req = pb2.Request(symbols=["", "__name__", "hx", "y"])
        late = req.timeseries.add(labels_refs=[1, 2])
        fill_histogram(late.histograms.add(), _h(9), RW_T0 + 10_000)  # older: refused
        fill_histogram(late.histograms.add(), _h(4), RW_T0 + 45_000)
        req.timeseries.add(labels_refs=[1, 3]).samples.add(value=1.0, timestamp=RW_T0)
        res = rx.handle(compress(req.SerializeToString()), v2, "snappy")
        assert res.status == 400
        assert res.message == "out of order sample for series {__name__=\"hx\"}"
        assert res.headers["X-Prometheus-Remote-Write-Histograms-Written"] == "1"
        assert res.headers["X-Prometheus-Remote-Write-Samples-Written"] == "1"
        got = _hist_points(ENGINE.instant(store, 'hx[1d]', RW_T0 + 200_000).to_json())
        assert [t for t, _ in got[0][1]] == [(RW_T0 + k * 15_000) / 1000 for k in (0, 1, 2, 3)]
