"""Which remote-write 1.0 samples promlab's receiver takes, against a real Prometheus 2.42.

A side finding of the data-side differential test (test_differential_data.py): out-of-order,
out-of-bounds and duplicate-timestamp samples, against 2.42 with its default (no out-of-order
window) and promlab's store with its default (the same). Both refuse a request with a sample
the head refuses whole (400, nothing stored), keep the first of two samples at one timestamp,
and drop a sample older than an earlier one of the same request at commit (204).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from benchmarks import realprom
from promlab.api.remote import RemoteWriteReceiver
from promlab.storage.store import open_store
from tests.promql.rw_datasets import write_request
from tests.promql.test_differential_data import HEADERS, prometheus_answer, promlab_answer
from tests.promql.test_differential_fuzz import diff

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
