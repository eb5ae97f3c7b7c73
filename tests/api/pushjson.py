"""The Pushgateway's ``/api/v1/metrics`` answers made comparable: promlab's and the real one's
(tests/api/test_pushapi_vs_pushgateway.py, tests/api/test_push_fuzz_pushgateway.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx

_PUSH_TIMES = ("push_time_seconds", "push_failure_time_seconds")
_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)\Z")


def parse_stamp(text: str) -> float:
    """An RFC 3339 time (any number of fraction digits) as Unix seconds."""
    m = _STAMP.match(text)
    assert m, text
    zone = "+00:00" if m[3] == "Z" else m[3]
    base = datetime.fromisoformat(m[1] + zone).astimezone(UTC).timestamp()
    return base + float("0." + (m[2] or "0"))


def normalise(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups sorted by labels; times as ranks; push-time values as ``0`` or ``=time_stamp``."""
    stamps = sorted({parse_stamp(f["time_stamp"]) for g in data for f in g.values()
                     if isinstance(f, dict) and "time_stamp" in f})
    out = []
    for g in data:
        ng: dict[str, Any] = {}
        for name, fam in g.items():
            if isinstance(fam, dict) and "time_stamp" in fam:
                t = parse_stamp(fam["time_stamp"])
                fam = {**fam, "time_stamp": stamps.index(t)}
                if name in _PUSH_TIMES:
                    fam["metrics"] = [{**m, "value": _push_time(m["value"], t)}
                                      for m in fam["metrics"]]
            ng[name] = fam
        out.append(ng)
    return sorted(out, key=lambda g: json.dumps(g["labels"], sort_keys=True))


def _push_time(value: str, stamp: float) -> str:
    v = float(value)
    return "0" if v == 0 else ("=time_stamp" if abs(v - stamp) < 1e-5 else value)


def groups(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    """``url``'s ``/api/v1/metrics`` data (checked to be a success answer in JSON)."""
    r = client.get(url + "/api/v1/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "success"
    assert isinstance(body["data"], list)
    return body["data"]
