"""The Pushgateway's JSON API (promlab.api.pushapi) without the real Pushgateway: the shapes of
one group, push times across a restart, the wipe and the routes under a prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from promlab import MemoryStorage, Session
from promlab.api import Server
from promlab.api.push import PushStore
from promlab.api.pushapi import group_json, pushgateway_flags, status_json
from promlab.api.pushgroup import Group

KEY = (("instance", "i"), ("job", "j"))
HIST = [((("__name__", "h_bucket"), ("instance", "i"), ("job", "j"), ("le", "0.5")), 1.0),
        ((("__name__", "h_bucket"), ("instance", "i"), ("job", "j"), ("le", "+Inf")), 3.0),
        ((("__name__", "h_sum"), ("instance", "i"), ("job", "j")), 4.5),
        ((("__name__", "h_count"), ("instance", "i"), ("job", "j")), 3.0)]
IMPLIED = frozenset({(("instance", "i"), ("job", "j"))})


def group(**kw: Any) -> Group:
    base: dict[str, Any] = {"key": KEY, "push_time": 2.0, "failure_time": 0.0,
                            "stamps": {"push_time_seconds": 2.0}}
    return Group(**{**base, **kw})


@pytest.mark.parametrize(("g", "family", "want"), [
    pytest.param(group(families={"h": HIST}, types={"h": "histogram"}), "h",
                 {"buckets": {"0.5": "1", "+Inf": "3"}, "count": "3",
                  "labels": {"instance": "i", "job": "j"}, "sum": "4.5"}, id="pushed-inf"),
    pytest.param(group(families={"h": HIST}, types={"h": "histogram"}, implied={"h": IMPLIED}),
                 "h", {"buckets": {"0.5": "1"}, "count": "3",
                       "labels": {"instance": "i", "job": "j"}, "sum": "4.5"}, id="implied-inf"),
    pytest.param(group(families={"s": [((("__name__", "s"), ("job", "j"), ("quantile", "0.99")),
                                        2.0),
                                       ((("__name__", "s_sum"), ("job", "j")), 1e6),
                                       ((("__name__", "s_count"), ("job", "j")), 2.0**63)]},
                       types={"s": "summary"}, key=(("job", "j"),)), "s",
                 {"count": "9223372036854775808", "labels": {"instance": "", "job": "j"},
                  "quantiles": {"0.99": "2"}, "sum": "1e+06"}, id="summary-instance-added"),
    pytest.param(group(families={"u": [((("__name__", "u"), ("a", ""), ("job", "j")), -0.0)]}),
                 "u", {"labels": {"a": "", "instance": "", "job": "j"}, "value": "-0"},
                 id="untyped-empty-label-neg-zero"),
])
def test_metric_shapes(g: Group, family: str, want: dict[str, Any]) -> None:
    got = group_json(g)
    (metric,) = got[family]["metrics"]
    assert metric == want
    assert list(metric) == sorted(metric)  # Go's JSON encoder sorts a map's keys


def test_group_fields() -> None:
    g = group(families={"g": [((("__name__", "g"), ("job", "j")), 1.0)], "labels": []},
              types={"g": "gauge"}, helps={"g": "A gauge."}, failure_time=3.0,
              stamps={"g": 1.0, "push_time_seconds": 2.0, "push_failure_time_seconds": 3.0})
    got = group_json(g)
    assert list(got) == sorted(got)
    assert got["last_push_successful"] is False
    assert got["g"]["type"] == "GAUGE" and got["g"]["help"] == "A gauge."
    assert got["g"]["time_stamp"] == "1970-01-01T00:00:01Z"
    assert got["push_failure_time_seconds"]["time_stamp"] == "1970-01-01T00:00:03Z"
    assert got["push_time_seconds"]["metrics"] == [{"labels": {"instance": "i", "job": "j"},
                                                    "value": "2"}]
    # A family named "labels" hides the group's labels, as in the Pushgateway's map (no stamp
    # of its own here: the group's latest push time stands in).
    assert got["labels"] == {"time_stamp": "1970-01-01T00:00:03Z", "type": "UNTYPED",
                             "metrics": []}


def test_stamps_and_implied_buckets_survive_a_restart(tmp_path: Path) -> None:
    clock = iter([100.0, 200.0, 300.0]).__next__
    pushes = PushStore(None, str(tmp_path), interval_s=0, clock=clock)
    pushes.push(KEY, b"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 2\n", None,
                replace=True)
    pushes.push(KEY, b"later 1\n", None, replace=False)
    with pytest.raises(ValueError, match="timestamps"):
        pushes.push(KEY, b"x 1 1000\n", None, replace=False)
    before = [group_json(g) for g in pushes.copy_groups()]
    (got,) = before
    assert got["h"]["metrics"][0]["buckets"] == {"1": "1"}
    stamps = {n: f["time_stamp"][17:19] for n, f in got.items() if isinstance(f, dict)
              and "time_stamp" in f}
    assert stamps == {"h": "40", "later": "20", "push_time_seconds": "20",
                      "push_failure_time_seconds": "00"}  # 100 s, 200 s, 300 s past the epoch
    pushes.stop()
    again = PushStore(None, str(tmp_path), interval_s=0)
    assert [group_json(g) for g in again.copy_groups()] == before
    again.wipe()
    assert PushStore(None, str(tmp_path), interval_s=0).copy_groups() == []


def test_flags() -> None:
    flags = pushgateway_flags({"web.external-url": "http://h:9/pg/", "web.listen-address": ":9"},
                              state_file="/d/pushgateway.json", enable_admin_api=True)
    assert flags["web.route-prefix"] == "/pg" and flags["web.listen-address"] == ":9"
    assert flags["web.enable-admin-api"] == "true"
    assert flags["persistence.file"] == "/d/pushgateway.json"
    data = status_json(flags, started_s=1.5)
    assert data["start_time"] == "1970-01-01T00:00:01.5Z"
    assert data["build_information"]["version"] == "1.5.1"


@pytest.mark.parametrize("admin", [True, False], ids=["admin", "no-admin"])
def test_routes_under_a_prefix(admin: bool) -> None:
    with Session(MemoryStorage(), progress=False) as s, \
            Server(s, listen="127.0.0.1:0", route_prefix="/pg", enable_admin_api=admin) as srv, \
            httpx.Client(timeout=30) as c:
        assert c.put(srv.url + "/metrics/job/j", content=b"m 1\n").status_code == 200
        (g,) = c.get(srv.url + "/api/v1/metrics").json()["data"]
        assert g["labels"] == {"job": "j"} and g["m"]["metrics"][0]["value"] == "1"
        flags = c.get(srv.url + "/api/v1/status").json()["data"]["flags"]
        assert flags["web.route-prefix"] == "/pg"
        assert flags["web.enable-admin-api"] == str(admin).lower()
        assert c.put(srv.url + "/api/v1/admin/wipe").status_code == (202 if admin else 404)
        assert len(c.get(srv.url + "/api/v1/metrics").json()["data"]) == (0 if admin else 1)
        # Wiped groups are stale in the store, as deleted ones.
        assert s.query("m").empty is admin
