"""The Pushgateway-compatible push endpoint, driven by prometheus_client's push functions."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import (
    delete_from_gateway,
    push_to_gateway,
    pushadd_to_gateway,
)

from promlab import Session
from promlab.api import Server
from promlab.api.push import PushError, parse_grouping_key


def values(s: Session, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    df = s.query(expr)
    cols = [c for c in df.columns if c not in ("timestamp", "value")]
    return {tuple((c.removeprefix("label:"), str(r[c])) for c in cols if str(r[c]) not in ("", "nan", "None")):
            float(r["value"]) for _, r in df.iterrows()}


def gauge(reg: CollectorRegistry, name: str, value: float, **labels: str) -> None:
    g = Gauge(name, "help of " + name, list(labels), registry=reg)
    (g.labels(**labels) if labels else g).set(value)


def test_push_pushadd_delete_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "d"
    with Session(data) as s, Server(s, listen="127.0.0.1:0") as srv:
        gw = srv.url.removeprefix("http://")
        reg = CollectorRegistry()
        gauge(reg, "batch_last_success", 3.0)
        push_to_gateway(gw, job="batch", registry=reg, grouping_key={"instance": "x/y"})
        got = values(s, "batch_last_success")
        assert list(got.values()) == [3.0]
        (labels,) = got
        assert ("job", "batch") in labels and ("instance", "x/y") in labels
        assert next(iter(values(s, 'push_time_seconds{job="batch"}').values())) > 1e9
        assert list(values(s, 'push_failure_time_seconds{job="batch"}').values()) == [0.0]

        reg2 = CollectorRegistry()
        c = Counter("batch_records", "records", registry=reg2)
        c.inc(7)
        pushadd_to_gateway(gw, job="batch", registry=reg2, grouping_key={"instance": "x/y"})
        assert list(values(s, "batch_last_success").values()) == [3.0]  # POST merges
        assert list(values(s, "batch_records_total").values()) == [7.0]

        push_to_gateway(gw, job="batch", registry=reg2, grouping_key={"instance": "x/y"})
        assert values(s, "batch_last_success") == {}  # PUT replaced the group: stale now
        assert list(values(s, "batch_records_total").values()) == [7.0]

    # The group survives a restart.
    state = json.loads((data / "pushgateway.json").read_text())
    assert len(state["groups"]) == 1
    with Session(data) as s, Server(s, listen="127.0.0.1:0") as srv:
        gw = srv.url.removeprefix("http://")
        assert list(values(s, "batch_records_total").values()) == [7.0]
        delete_from_gateway(gw, job="batch", grouping_key={"instance": "x/y"})
        assert values(s, "batch_records_total") == {}
        assert values(s, 'push_time_seconds{job="batch"}') == {}
    assert json.loads((data / "pushgateway.json").read_text())["groups"] == []


@pytest.mark.parametrize(("path", "body", "status"), [
    pytest.param("/metrics/job/j", b"m 1\n", 200, id="plain"),
    pytest.param("/metrics/job/j/a/b/c@base64/L3Zhci90bXA", b"m 1\n", 200, id="base64-label"),
    pytest.param("/metrics/job@base64/Zm9vL2Jhcg", b"m 1\n", 200, id="base64-job"),
    pytest.param("/metrics/job/j/e@base64/=", b"m 1\n", 200, id="empty-value"),
    pytest.param("/metrics/job/j", b"m 1 1700000000000\n", 400, id="timestamp"),
    pytest.param("/metrics/job/j", b"m{ 1\n", 400, id="garbage"),
    pytest.param("/metrics/job/j/odd", b"m 1\n", 400, id="odd-labels"),
    pytest.param("/metrics/job/j/x@base64/!!", b"m 1\n", 400, id="bad-base64"),
])
def test_push_status(tmp_path: Path, path: str, body: bytes, status: int) -> None:
    with Session(tmp_path / "d") as s, Server(s, listen="127.0.0.1:0") as srv:
        r = httpx.put(srv.url + path, content=body)
        assert r.status_code == status, r.text
        stored = values(s, "m")
        assert len(stored) == (1 if status == 200 else 0)
        failed = values(s, "push_failure_time_seconds")
        if b" 1700000000000" in body:  # refused after parsing: the failure time is set
            assert next(iter(failed.values())) > 1e9
        elif status != 200:  # a bad path or body: refused before (as the Pushgateway: no group)
            assert failed == {}


@pytest.mark.parametrize(("job", "rest", "key"), [
    pytest.param("a", "", (("job", "a"),), id="job"),
    pytest.param("a", "/instance/i", (("instance", "i"), ("job", "a")), id="instance"),
    pytest.param("a", "/p@base64/L3Zhci90bXA=", (("job", "a"), ("p", "/var/tmp")), id="b64"),
])
def test_grouping_key(job: str, rest: str, key: tuple[tuple[str, str], ...]) -> None:
    assert parse_grouping_key(job, rest) == key


def test_grouping_key_errors() -> None:
    with pytest.raises(PushError):
        parse_grouping_key("", "")
    with pytest.raises(PushError):
        parse_grouping_key("a", "/__x/y")


@pytest.mark.parametrize(("body", "want"), [
    pytest.param(b"m NaN\n", [math.nan], id="nan"),
    pytest.param(b"m +Inf\nm{a=\"b\"} -Inf\n", [math.inf, -math.inf], id="infinities"),
    pytest.param(b"m 1.5e300\n", [1.5e300], id="huge"),
])
def test_state_file_keeps_special_values(tmp_path: Path, body: bytes, want: list[float]) -> None:
    from promlab.api.push import PushStore

    key = (("job", "j"),)
    PushStore(None, str(tmp_path), interval_s=0).push(key, body, "text/plain", replace=True)
    again = PushStore(None, str(tmp_path), interval_s=0)
    got = [v for _, v in again.groups[key].families["m"]]
    assert len(got) == len(want)
    for g, w in zip(sorted(got, key=repr), sorted(want, key=repr), strict=True):
        assert (math.isnan(g) and math.isnan(w)) or g == w


_HIST = (b"# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n"
         b"h_count 2\n")
_AS_GAUGE = b"# TYPE h_bucket gauge\nh_bucket{le=\"1.0\"} 5\n"


@pytest.mark.parametrize("bodies", [
    pytest.param([b"a 1\nb 2\n", b"b 3\nc{x=\"y\"} 4\n", b"a 5\nb 6\n"], id="series-change"),
    pytest.param([_HIST, _AS_GAUGE, _HIST], id="types-change"),
    pytest.param([b"a{job=\"own\",i=\"1\"} 1\n", b"a{i=\"1\"} 2\n"], id="grouping-overrides"),
    pytest.param([b"a 1\n", b"a{\n", b"a 2\nz 3\n"], id="after-a-bad-body"),
])
@pytest.mark.parametrize("replace", [True, False], ids=["put", "post"])
def test_repeated_pushes_as_fresh_ones(tmp_path: Path, bodies: list[bytes],
                                       replace: bool) -> None:
    """A key's parser and per-series results are reused from push to push: each push must
    leave the group (and the samples appended) as if every body had met a fresh store."""
    from promlab import MemoryStorage
    from promlab.api.push import PushStore

    key = (("instance", "i"), ("job", "j"))
    reused = PushStore(MemoryStorage(), None, interval_s=0, clock=lambda: 100.0)
    for k, body in enumerate(bodies):
        with contextlib.suppress(PushError):
            reused.push(key, body, "text/plain", replace=replace)
        fresh = PushStore(MemoryStorage(), None, interval_s=0, clock=lambda: 100.0)
        fresh.MAX_PARSERS = 0  # nothing reused: every body meets a new parser
        for earlier in bodies[:k + 1]:  # the same history
            with contextlib.suppress(PushError):
                fresh.push(key, earlier, "text/plain", replace=replace)
        assert reused.groups[key].families == fresh.groups[key].families
        assert reused.groups[key].types == fresh.groups[key].types
        assert sorted(reused.samples(), key=repr) == sorted(fresh.samples(), key=repr)


def test_push_under_a_route_prefix(tmp_path: Path) -> None:
    """Served under ``/prom`` (``--web.external-url .../prom/``): prometheus_client's push
    functions with the prefix in the gateway address, base64 jobs and the trailing-slash
    redirect keep working."""
    with Session(tmp_path / "d") as s, \
            Server(s, listen="127.0.0.1:0", route_prefix="/prom") as srv:
        gw = srv.url.removeprefix("http://")
        assert gw.endswith("/prom")
        reg = CollectorRegistry()
        gauge(reg, "batch_done", 1.0)
        push_to_gateway(gw, job="nightly/backup", registry=reg)  # a '/' in the job: base64
        pushadd_to_gateway(gw, job="plain", registry=reg)
        got = values(s, "batch_done")
        assert {dict(k)["job"] for k in got} == {"nightly/backup", "plain"}
        moved = httpx.put(srv.url + "/metrics/job/", content=b"x 1\n")
        assert moved.status_code == 307
        assert moved.headers["location"] == "/prom/metrics/job"
        delete_from_gateway(gw, job="nightly/backup")
        assert "batch_done" in httpx.get(srv.url + "/metrics").text
