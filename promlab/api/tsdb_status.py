"""API v1 status views of the store and of promlab itself: ``status/tsdb/blocks``,
``status/walreplay`` and ``status/self_metrics``.

How promlab's store maps onto Prometheus's shapes:

* **blocks**: one entry per complete Parquet block (sorted by ``minTime``, as Prometheus lists
  its blocks). ``minTime`` is the block's first sample (its ``meta.json`` ``mint``) and
  ``maxTime`` the end of the block's time range (``end``, exclusive), as a Prometheus block cut
  from the head has them; ``stats`` has ``numSamples`` and ``numSeries`` (``numChunks`` is not
  in promlab's block meta and is left out, as Prometheus leaves out zero stats);
  ``compaction.level`` and ``compaction.sources`` are promlab's own (a block written from the
  head is level 1 and its own source); ``version`` is promlab's block format version, not
  Prometheus's (1). Native histogram files are not blocks and are not listed. A store without
  blocks (memory) lists none.
* **walreplay**: promlab replays the WAL while the store opens, before the server answers, so
  the replay is always done: ``min`` and ``max`` are the lowest and highest WAL segment numbers
  on disk and ``current == max``; ``0, 0, 0`` for a store without a WAL (Prometheus 2.42 answers
  ``0, 0, 0`` for a fresh one too).
* **self_metrics**: the session's ``prometheus_client`` registry as ProtoJSON
  ``io.prometheus.client.MetricFamily`` objects (what client_golang's ``Gather`` would give for
  the same metrics: counters named with ``_total``, 64-bit counts as strings, no ``+Inf``
  bucket, non-finite values as ``"NaN"``/``"Infinity"``), families sorted by name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from promlab.api.encode import success
from promlab.api.metrics import ApiMetrics
from promlab.api.params import read_params
from promlab.api.service import Service
from promlab.api.v1 import Handler, check_open, handler
from promlab.errors import BadData, RegexError
from promlab.model.re2 import Regex, compile_anchored

__all__ = ["TSDBStatusAPI", "block_entries", "metric_families", "routes", "wal_replay_status"]

_PROTO_TYPES = {"counter": "COUNTER", "gauge": "GAUGE", "summary": "SUMMARY",
                "histogram": "HISTOGRAM", "gaugehistogram": "GAUGE_HISTOGRAM",
                "info": "GAUGE", "stateset": "GAUGE", "unknown": "UNTYPED"}


class TSDBStatusAPI:
    """The store and self-metrics status handlers over one service."""

    def __init__(self, service: Service, metrics: ApiMetrics) -> None:
        self.service = service
        self.metrics = metrics

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler]] = [
            ("status/tsdb/blocks", self.blocks),
            ("status/walreplay", self.walreplay),
            ("status/self_metrics", self.self_metrics),
        ]
        return [Route(f"/api/v1/{name}", handler(f"/api/v1/{name}", self.metrics, fn),
                      methods=["GET"]) for name, fn in table]

    async def blocks(self, request: Request) -> Response:
        check_open(self.service)
        entries = await run_in_threadpool(block_entries, self.service.store)
        return success({"blocks": entries})

    async def walreplay(self, request: Request) -> Response:
        return success(wal_replay_status(self.service.store))

    async def self_metrics(self, request: Request) -> Response:
        p = await read_params(request)
        pattern = p.get("metric_name_pattern", "")
        name_filter: Regex | None = None
        if pattern:
            try:
                name_filter = compile_anchored(pattern)
            except RegexError as exc:
                raise BadData(f"invalid metric_name_pattern: {exc}") from None
        return success(metric_families(self.service.registry, name_filter))


def block_entries(store: Any) -> list[dict[str, Any]]:
    """``status/tsdb/blocks`` entries of ``store``'s blocks (none when it has no blocks)."""
    lister = getattr(store, "blocks", None)
    if not callable(lister):
        return []
    out = []
    for block in sorted(lister(), key=lambda b: (b.meta.mint, b.meta.ulid)):
        meta = block.meta
        stats: dict[str, int] = {}
        if meta.num_samples:
            stats["numSamples"] = meta.num_samples
        if meta.num_series:
            stats["numSeries"] = meta.num_series
        out.append({
            "ulid": meta.ulid,
            "minTime": meta.mint if meta.num_samples else meta.start,
            "maxTime": meta.end,
            "stats": stats,
            "compaction": {"level": meta.level, "sources": list(meta.sources) or [meta.ulid]},
            "version": meta.version,
        })
    return out


def wal_replay_status(store: Any) -> dict[str, int]:
    """``status/walreplay`` of ``store``: replay done, over the WAL segments on disk."""
    wal_dir = getattr(store, "wal_dir", None)
    segments: list[int] = []
    if isinstance(wal_dir, str) and os.path.isdir(wal_dir):
        segments = sorted(int(n) for n in os.listdir(wal_dir) if n.isdigit())
    if not segments:
        return {"min": 0, "max": 0, "current": 0}
    return {"min": segments[0], "max": segments[-1], "current": segments[-1]}


def _proto_float(value: float) -> float | str:
    """A double as ProtoJSON writes it (non-finite values as strings)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _family_name(metric: Metric) -> str:
    if metric.type == "counter":
        return metric.name + "_total"
    if metric.type == "info":
        return metric.name + "_info"
    return metric.name


def _family(metric: Metric) -> dict[str, Any]:
    """One registry family as a ProtoJSON ``MetricFamily``."""
    kind = metric.type
    name = _family_name(metric)
    groups: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

    def entry(labels: dict[str, str], drop: str = "") -> dict[str, Any]:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != drop))
        got = groups.get(key)
        if got is None:
            got = groups[key] = {"label": [{"name": k, "value": v} for k, v in key]}
        return got

    for s in metric.samples:
        if s.name.endswith("_created"):
            continue  # client_golang reports no created time in these families
        if kind in ("counter", "gauge", "unknown", "info", "stateset"):
            slot = {"counter": "counter", "unknown": "untyped"}.get(kind, "gauge")
            entry(s.labels)[slot] = {"value": _proto_float(s.value)}
        elif kind in ("histogram", "gaugehistogram"):
            h = entry(s.labels, "le").setdefault("histogram", {})
            if s.name.endswith("_bucket"):
                bound = float(s.labels["le"])
                if not math.isinf(bound):  # client_golang's +Inf bucket is implicit
                    h.setdefault("bucket", []).append(
                        {"cumulativeCount": str(int(s.value)), "upperBound": _proto_float(bound)})
            elif s.name.endswith(("_count", "_gcount")):
                h["sampleCount"] = str(int(s.value))
            elif s.name.endswith(("_sum", "_gsum")):
                h["sampleSum"] = _proto_float(s.value)
        elif kind == "summary":
            sm = entry(s.labels, "quantile").setdefault("summary", {})
            if s.name.endswith("_count"):
                sm["sampleCount"] = str(int(s.value))
            elif s.name.endswith("_sum"):
                sm["sampleSum"] = _proto_float(s.value)
            elif "quantile" in s.labels:
                sm.setdefault("quantile", []).append(
                    {"quantile": _proto_float(float(s.labels["quantile"])),
                     "value": _proto_float(s.value)})
    out: dict[str, Any] = {"name": name, "help": metric.documentation,
                           "type": _PROTO_TYPES.get(kind, "UNTYPED")}
    if metric.unit:
        out["unit"] = metric.unit
    metrics = []
    for key in sorted(groups):
        m = groups[key]
        if not m["label"]:
            del m["label"]  # ProtoJSON leaves out an empty repeated field
        metrics.append(m)
    out["metric"] = metrics
    return out


def metric_families(registry: CollectorRegistry, name_filter: Regex | None = None
                    ) -> list[dict[str, Any]]:
    """The families of ``registry`` as ProtoJSON ``MetricFamily`` objects, sorted by name; only
    those whose name ``name_filter`` matches (fully anchored) when given."""
    families: Iterable[Metric] = registry.collect()
    out = []
    for metric in families:
        fam = _family(metric)
        if not fam["metric"]:
            continue  # a family without samples (a labelled metric never used) is not gathered
        if name_filter is not None and not name_filter.matches(fam["name"]):
            continue
        out.append(fam)
    out.sort(key=lambda f: f["name"])
    return out


def routes(service: Service, metrics: ApiMetrics) -> list[BaseRoute]:
    """The routes of :class:`TSDBStatusAPI` over ``service``."""
    return TSDBStatusAPI(service, metrics).routes()
