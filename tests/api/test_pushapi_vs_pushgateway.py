"""The Pushgateway's JSON API (promlab.api.pushapi) against the real Pushgateway.

The same requests (text and protobuf pushes of every type, base64 grouping labels, merges,
replacements, failed pushes, deletes) go to promlab and to ``prometheus-pushgateway``; after
each, both ``/api/v1/metrics`` answers are compared whole once their times are normalised:
each ``time_stamp`` becomes its rank among the answer's distinct times (so which push set a
family is compared, not when) and a push-time value becomes ``0`` or whether it equals its
family's ``time_stamp``. The admin wipe is compared with the admin API on and off, and all of it
under a route prefix.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from benchmarks import realprom
from promlab import MemoryStorage, Session
from promlab.api import Server

from .pushjson import groups, normalise, parse_stamp

pytestmark = [pytest.mark.realprom]

PROTO_CT = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
            "encoding=delimited")
_TYPES = {"counter": 0, "gauge": 1, "summary": 2, "untyped": 3, "histogram": 4}


def proto(*families: tuple[str, str, str, list[dict[str, Any]]]) -> bytes:
    """A delimited protobuf body: (name, type, help, metrics); a metric holds ``labels``
    (pairs), ``value``, or ``quantiles``/``buckets`` (pairs) with ``count`` and ``sum``."""
    from promlab.exposition.proto import metrics_pb2 as pb
    from promlab.exposition.protobuf import encode_delimited

    out = []
    for name, typ, help_, metrics in families:
        mf = pb.MetricFamily(name=name, type=_TYPES[typ])  # type: ignore[arg-type]
        if help_:
            mf.help = help_
        for spec in metrics:
            m = mf.metric.add()
            for k, v in spec.get("labels", ()):
                m.label.add(name=k, value=v)
            if typ == "summary":
                m.summary.sample_count, m.summary.sample_sum = spec["count"], spec["sum"]
                for q, v in spec.get("quantiles", ()):
                    m.summary.quantile.add(quantile=q, value=v)
            elif typ == "histogram":
                m.histogram.sample_count, m.histogram.sample_sum = spec["count"], spec["sum"]
                for le, c in spec.get("buckets", ()):
                    m.histogram.bucket.add(upper_bound=le, cumulative_count=c)
            else:
                getattr(m, typ).value = spec["value"]
        out.append(mf)
    return encode_delimited(out)


TEXT_FIRST = b"""# HELP batch_records Records processed.
# TYPE batch_records counter
batch_records{kind="in"} 7
batch_records{kind="out"} 3
# TYPE batch_temp gauge
batch_temp -0.5
odd_values{v="nan"} NaN
odd_values{v="inf"} +Inf
odd_values{v="-inf"} -Inf
odd_values{v="big"} 1e300
odd_values{v="tiny"} 5e-324
odd_values{v="6 digits"} 123456
odd_values{v="7 digits"} 1234567
odd_values{v="neg zero"} -0
"""
TEXT_HISTOGRAMS = b"""# HELP lat Latency.
# TYPE lat histogram
lat_bucket{path="/a",le="0.005"} 1
lat_bucket{path="/a",le="2.0"} 2
lat_bucket{path="/a",le="1e6"} 3
lat_sum{path="/a"} 4.25
lat_count{path="/a"} 3
lat_bucket{path="/b",le="0.5"} 0
lat_bucket{path="/b",le="+Inf"} 5
lat_sum{path="/b"} 9
lat_count{path="/b"} 5
lat_count{path="/c"} 2
# TYPE sizes summary
sizes{quantile="0.5"} 10
sizes{quantile="0.990"} 99.5
sizes_sum 120
sizes_count 7.9
sizes_sum{shard="2"} 1
"""
PROTO_ALL = proto(
    ("p_counter", "counter", "A counter.", [{"labels": [("a", "x")], "value": 3.0},
                                            {"labels": [("a", "")], "value": 4.0}]),
    ("p_gauge", "gauge", "", [{"value": 1e-7}]),
    ("p_untyped", "untyped", "Untyped.", [{"labels": [("instance", "own")], "value": 2.0}]),
    ("p_summary", "summary", "S.", [{"count": 4, "sum": 9.5,
                                     "quantiles": [(0.5, 1.5), (0.99, float("nan"))]}]),
    ("p_hist", "histogram", "H.", [
        {"labels": [("le_style", "go")], "count": 3, "sum": 4.1,
         "buckets": [(0.1, 1), (1.0, 2)]},  # no +Inf: Go's client sends none
        {"labels": [("le_style", "inf")], "count": 3, "sum": 4.1,
         "buckets": [(0.1, 1), (float("inf"), 3)]}]),
)
GROUP_A = "/metrics/job/batch/instance/host1"
GROUP_B64 = "/metrics/job@base64/YmFja3VwL25pZ2h0bHk/path@base64/L3Zhci90bXA/note@base64/YSBiL8O8"
GROUP_EMPTY = "/metrics/job/j/zone@base64/="

#: (id, method, path, body, headers, status both must answer)
STEPS: list[tuple[str, str, str, bytes, dict[str, str], int]] = [
    ("text-put", "PUT", GROUP_A, TEXT_FIRST, {}, 200),
    ("text-post-merges-histograms", "POST", GROUP_A, TEXT_HISTOGRAMS, {}, 200),
    ("protobuf-to-base64-group", "PUT", GROUP_B64, PROTO_ALL, {"Content-Type": PROTO_CT}, 200),
    ("gzip-post-adds-family", "POST", GROUP_B64, gzip.compress(b"later 1\n"),
     {"Content-Encoding": "gzip"}, 200),
    ("failed-push-type-clash", "POST", GROUP_B64, b"# TYPE batch_records gauge\n"
     b"batch_records 1\n", {}, 400),
    ("failed-push-makes-a-group", "PUT", "/metrics/job/failing", b"stamped 1 1700000000000\n",
     {}, 400),
    ("push-after-failure", "POST", "/metrics/job/failing", b"ok 1\n", {}, 200),
    ("empty-grouping-value", "PUT", GROUP_EMPTY, b"e 1\n", {}, 200),
    ("put-replaces", "PUT", GROUP_A, b"# HELP only Only this.\nonly 2\n", {}, 200),
    ("delete", "DELETE", "/metrics/job/failing", b"", {}, 202),
]


def same_groups(client: httpx.Client, ours: str, theirs: str) -> tuple[Any, Any]:
    """Both normalised answers (a queued change of the Pushgateway's is waited for)."""
    for attempt in range(50):
        a, b = normalise(groups(client, ours)), normalise(groups(client, theirs))
        if a == b:
            break
        time.sleep(0.02 * attempt)
    return a, b


class Pair:
    def __init__(self, client: httpx.Client, ours: str, theirs: str, *, admin: bool) -> None:
        self.client, self.ours, self.theirs, self.admin = client, ours, theirs, admin

    def both(self, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None) -> tuple[int, int]:
        codes = [self.client.request(method, url + path, content=body,
                                     headers=headers or {}).status_code
                 for url in (self.ours, self.theirs)]
        return codes[0], codes[1]


@pytest.fixture(scope="module", params=["admin", "no-admin"])
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    """promlab and the Pushgateway, both under the route prefix ``/pg`` (its admin API on for
    ``admin``)."""
    realprom.require_binary("pushgateway")
    admin = request.param == "admin"
    port = realprom.free_port()
    args = [f"--web.external-url=http://127.0.0.1:{port}/pg/",
            *(["--web.enable-admin-api"] if admin else [])]
    with Session(MemoryStorage(), progress=False) as s, \
            Server(s, listen="127.0.0.1:0", route_prefix="/pg", enable_admin_api=admin) as srv, \
            realprom.pushgateway(port=port, extra_args=args, ready_path="/pg/-/ready") as pgw, \
            httpx.Client(timeout=30) as client:
        assert srv.url.endswith("/pg")
        yield Pair(client, srv.url, pgw.url.rstrip("/") + "/pg", admin=admin)


def test_metrics_json_after_each_request(pair: Pair) -> None:
    a, b = same_groups(pair.client, pair.ours, pair.theirs)
    seen = [len(a)]
    for name, method, path, body, headers, status in STEPS:
        assert pair.both(method, path, body, headers) == (status, status), name
        a, b = same_groups(pair.client, pair.ours, pair.theirs)
        assert a == b, name
        seen.append(len(a))
    # The sequence did what it says: groups made (one by a failed push), one deleted.
    assert seen == [0, 1, 1, 2, 2, 2, 3, 3, 4, 4, 3]
    (empty,) = [g for g in groups(pair.client, pair.ours) if g["labels"]["job"] == "j"]
    assert empty["labels"] == {"job": "j", "zone": ""}
    assert empty["e"]["metrics"][0]["labels"] == {"instance": "", "job": "j", "zone": ""}


def test_metrics_json_details(pair: Pair) -> None:
    """What the comparison covered, stated: the shapes that make the differential meaningful."""
    pair.both("PUT", GROUP_B64, PROTO_ALL, {"Content-Type": PROTO_CT})
    pair.both("PUT", GROUP_A, TEXT_HISTOGRAMS)
    pair.both("PUT", "/metrics/job/failing", b"stamped 1 1\n")
    for url in (pair.ours, pair.theirs):
        by_job = {g["labels"]["job"]: g for g in groups(pair.client, url)}
        b64 = by_job["backup/nightly"]
        assert b64["labels"] == {"job": "backup/nightly", "note": "a b/ü", "path": "/var/tmp"}
        hists = b64["p_hist"]["metrics"]
        assert [m["buckets"] for m in hists] == [{"0.1": "1", "1": "2"},
                                                 {"0.1": "1", "+Inf": "3"}], url
        assert b64["p_summary"]["metrics"][0]["quantiles"] == {"0.5": "1.5", "0.99": "NaN"}
        assert "help" not in b64["p_gauge"] and b64["p_gauge"]["metrics"][0]["value"] == "1e-07"
        lat = by_job["batch"]["lat"]
        assert lat["type"] == "HISTOGRAM" and lat["help"] == "Latency."
        assert lat["metrics"][0]["buckets"] == {"0.005": "1", "2": "2", "1e+06": "3"}
        assert by_job["batch"]["sizes"]["metrics"][0]["count"] == "7"
        failing = by_job["failing"]
        assert failing["last_push_successful"] is False
        assert failing["push_time_seconds"]["metrics"][0]["value"] == "0"


def test_wipe(pair: Pair) -> None:
    assert pair.both("PUT", GROUP_A, b"w 1\n") == (200, 200)
    assert pair.both("DELETE", "/api/v1/admin/wipe") == ((405, 405) if pair.admin else (404, 404))
    assert pair.both("PUT", "/api/v1/admin/wipe") == ((202, 202) if pair.admin else (404, 404))
    a, b = same_groups(pair.client, pair.ours, pair.theirs)
    assert a == b
    assert (a == []) is pair.admin


def test_status(pair: Pair) -> None:
    ours, theirs = (pair.client.get(url + "/api/v1/status").json()
                    for url in (pair.ours, pair.theirs))
    assert ours["status"] == theirs["status"] == "success"
    assert ours["data"].keys() == theirs["data"].keys()
    assert ours["data"]["build_information"].keys() == theirs["data"]["build_information"].keys()
    assert ours["data"]["flags"].keys() == theirs["data"]["flags"].keys()
    for key in ("web.enable-admin-api", "web.route-prefix", "web.telemetry-path",
                "push.disable-consistency-check"):
        assert ours["data"]["flags"][key] == theirs["data"]["flags"][key], key
    assert parse_stamp(ours["data"]["start_time"]) <= time.time()


def test_unprefixed_paths_are_not_served(pair: Pair) -> None:
    root_ours, root_theirs = (u[: -len("/pg")] for u in (pair.ours, pair.theirs))
    for path in ("/api/v1/metrics", "/api/v1/status"):
        codes = [pair.client.get(u + path).status_code for u in (root_ours, root_theirs)]
        assert codes == [404, 404], path
