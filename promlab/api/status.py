"""API v1 views of what runs: ``targets``, ``rules``, ``alerts``, ``alertmanagers`` and
``status/buildinfo|config|flags|runtimeinfo|tsdb``.

The shapes are Prometheus 2.42's (``/api/v1/rules`` and ``/api/v1/alerts`` as the
alert-generator compliance spec requires, built by the rule manager's views).
"""

from __future__ import annotations

import math
import os
import platform
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from promlab.api.encode import success
from promlab.api.metrics import ApiMetrics
from promlab.api.params import MAX_TIME_MS, MIN_TIME_MS, go_atoi, read_params
from promlab.api.service import Service
from promlab.api.v1 import Handler, check_open, handler
from promlab.errors import BadData, PromlabError
from promlab.model import Labels, Matcher, MatchType, format_duration

__all__ = ["PROMETHEUS_API_VERSION", "StatusAPI", "rfc3339"]

#: The Prometheus release whose API promlab answers as (``status/buildinfo``'s ``version``:
#: clients such as Grafana enable features by it).
PROMETHEUS_API_VERSION = "2.42.0"
_ALL = (Matcher(MatchType.REGEX, "__name__", ".+"),)


def rfc3339(ms: float | None) -> str:
    """Milliseconds as Go's RFC 3339 (``0001-01-01T00:00:00Z`` for never)."""
    if ms is None or not math.isfinite(ms) or ms <= 0:
        return "0001-01-01T00:00:00Z"
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


class StatusAPI:
    """The status handlers over one service; ``flags`` is what ``status/flags`` shows."""

    def __init__(self, service: Service, metrics: ApiMetrics, *, flags: Mapping[str, str],
                 started_ms: int) -> None:
        self.service = service
        self.metrics = metrics
        self.flags = dict(flags)
        self.started_ms = started_ms
        self.last_config_ms = started_ms
        self.reload_ok = True

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler]] = [
            ("targets", self.targets), ("rules", self.rules), ("alerts", self.alerts),
            ("alertmanagers", self.alertmanagers), ("status/buildinfo", self.buildinfo),
            ("status/config", self.config), ("status/flags", self.status_flags),
            ("status/runtimeinfo", self.runtimeinfo), ("status/tsdb", self.tsdb),
        ]
        return [Route(f"/api/v1/{name}", handler(f"/api/v1/{name}", self.metrics, fn),
                      methods=["GET"]) for name, fn in table]

    # --- targets ------------------------------------------------------------------------------
    async def targets(self, request: Request) -> Response:
        p = await read_params(request, multipart=False)  # the URL's only (r.URL.Query())
        state = p.get("state", "any").lower() or "any"
        pools = set(p.getlist("scrapePool"))
        df = self.service.scrape.targets()
        active: list[dict[str, Any]] = []
        dropped: list[dict[str, Any]] = []
        for row in df.to_dict("records"):
            if pools and row["scrape_pool"] not in pools:
                continue
            if row["health"] == "dropped":
                if not row["last_error"]:  # an invalid target is only logged, as in Prometheus
                    dropped.append({"discoveredLabels": dict(row["discovered_labels"])})
                continue
            last = row["last_scrape"]
            last_ms = None if last is None or last != last else last.value / 1e6
            active.append({
                "discoveredLabels": dict(row["discovered_labels"]),
                "labels": dict(row["labels"]),
                "scrapePool": row["scrape_pool"],
                "scrapeUrl": row["url"],
                "globalUrl": row["url"],
                "lastError": row["last_error"] or "",
                "lastScrape": rfc3339(last_ms),
                "lastScrapeDuration": float(row["last_scrape_duration"] or 0.0),
                "health": row["health"],
                "scrapeInterval": format_duration(round(row["scrape_interval"] * 1000)),
                "scrapeTimeout": format_duration(round(row["scrape_timeout"] * 1000)),
            })
        data: dict[str, Any] = {"activeTargets": [], "droppedTargets": []}
        if state in ("active", "any"):
            data["activeTargets"] = active
        if state in ("dropped", "any"):
            data["droppedTargets"] = dropped
        return success(data)

    # --- rules and alerts ---------------------------------------------------------------------
    async def rules(self, request: Request) -> Response:
        p = await read_params(request, multipart=False)  # the URL's only (r.URL.Query())
        kind = p.get("type", "").lower()
        if kind not in ("", "alert", "record"):
            raise BadData(f'invalid parameter "type": not supported value "{kind}"')
        names, groups, files = (set(p.getlist(k)) for k in ("rule_name[]", "rule_group[]",
                                                              "file[]"))
        filtered = bool(names or groups or files)
        exclude_alerts = p.get("exclude_alerts", "").lower() == "true"
        out = []
        for g in self.service.rules.rules_data():
            if (groups and g["name"] not in groups) or (files and g["file"] not in files):
                continue
            rules = []
            for r in g["rules"]:
                if kind == "alert" and r["type"] != "alerting":
                    continue
                if kind == "record" and r["type"] != "recording":
                    continue
                if names and r["name"] not in names:
                    continue
                if exclude_alerts and "alerts" in r:
                    r = {k: v for k, v in r.items() if k != "alerts"}
                rules.append(r)
            if filtered and not rules:
                continue
            out.append({**g, "rules": rules})
        return success({"groups": out})

    async def alerts(self, request: Request) -> Response:
        return success({"alerts": self.service.rules.alerts_data()})

    async def alertmanagers(self, request: Request) -> Response:
        return success(self.service.rules.alertmanagers_data())

    # --- status -------------------------------------------------------------------------------
    async def buildinfo(self, request: Request) -> Response:
        from promlab.version import __version__

        return success({
            "version": PROMETHEUS_API_VERSION,
            "revision": f"promlab-{__version__}",
            "branch": "promlab",
            "buildUser": "promlab",
            "buildDate": "",
            "goVersion": f"python{platform.python_version()}",
        })

    async def config(self, request: Request) -> Response:
        return success({"yaml": _config_yaml(self.service.config_source)})

    async def status_flags(self, request: Request) -> Response:
        return success(self.flags)

    async def runtimeinfo(self, request: Request) -> Response:
        retention = "0s"
        store = self.service.store
        ms = getattr(store, "retention_time_ms", None)
        if isinstance(ms, int) and ms > 0:
            retention = format_duration(ms)
        return success({
            "startTime": rfc3339(self.started_ms),
            "CWD": os.getcwd(),
            "reloadConfigSuccess": self.reload_ok,
            "lastConfigTime": rfc3339(self.last_config_ms),
            "corruptionCount": 0,
            "goroutineCount": threading.active_count(),
            "GOMAXPROCS": os.cpu_count() or 1,
            "GOGC": "",
            "GODEBUG": "",
            "storageRetention": retention,
        })

    async def tsdb(self, request: Request) -> Response:
        p = await read_params(request)
        limit = _tsdb_limit(p.get("limit"))
        check_open(self.service)
        return success(await run_in_threadpool(_tsdb_stats, self.service, limit))


#: Most entries per list ``status/tsdb`` gives (Prometheus 3.x's ``maxTSDBLimit``).
MAX_TSDB_LIMIT = 10_000


def _tsdb_limit(text: str | None) -> int:
    """``status/tsdb``'s ``limit``: 10 when absent or empty; otherwise a whole number from 1 to
    :data:`MAX_TSDB_LIMIT` (Prometheus 3.x's own messages, not the query endpoints')."""
    if not text:
        return 10
    n = go_atoi(text)
    if n is None or n < 1:
        raise BadData("limit must be a positive number")
    if n > MAX_TSDB_LIMIT:
        raise BadData(f"limit must not exceed {MAX_TSDB_LIMIT}")
    return n


def _config_yaml(source: Any) -> str:
    if source is None:
        return ""
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, encoding="utf-8") as f:
                return f.read()
        except OSError:
            return ""
    if isinstance(source, Mapping):
        import yaml

        return str(yaml.safe_dump(dict(source), sort_keys=False))
    return ""


def _tsdb_stats(service: Service, limit: int) -> dict[str, Any]:
    """``status/tsdb``: cardinality over every stored series (Prometheus counts its head)."""
    q = service.store.querier(MIN_TIME_MS, MAX_TIME_MS)
    try:
        series: list[Labels] = q.series(list(_ALL))
    finally:
        q.close()
    by_metric: Counter[str] = Counter()
    by_pair: Counter[str] = Counter()
    values: dict[str, set[str]] = {}
    for ls in series:
        for k, v in ls.pairs:
            by_pair[f"{k}={v}"] += 1
            values.setdefault(k, set()).add(v)
        by_metric[ls.get("__name__") or ""] += 1
    mint: int | None = None
    maxt: int | None = None
    try:
        info = service.info()
        mint, maxt = info.mint_ms, info.maxt_ms
    except PromlabError:
        pass

    def top(c: Mapping[str, int]) -> list[dict[str, Any]]:
        items = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [{"name": k, "value": v} for k, v in items]

    return {
        "headStats": {"numSeries": len(series), "numLabelPairs": len(by_pair),
                      "chunkCount": 0, "minTime": mint if mint is not None else MAX_TIME_MS,
                      "maxTime": maxt if maxt is not None else MIN_TIME_MS},
        "seriesCountByMetricName": top(by_metric),
        "labelValueCountByLabelName": top({k: len(v) for k, v in values.items()}),
        "memoryInBytesByLabelName": top({k: sum(len(x) for x in v) for k, v in values.items()}),
        "seriesCountByLabelValuePair": top(by_pair),
    }
