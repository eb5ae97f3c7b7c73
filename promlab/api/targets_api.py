"""API v1 views of the scrape pools: ``scrape_pools``, ``scrape_pools/config``,
``targets/metadata`` and ``targets/relabel_steps``.

Shapes, parameters and errors are Prometheus's (``web/api/v1/api.go``; ``targets/metadata``
checked against Prometheus 2.42, the others against the current API reference). The pools are
those of the running scraper (``session.scrape.handle``); with no scraper running there are none,
as in a Prometheus that scrapes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from promlab.api.encode import success
from promlab.api.metrics import ApiMetrics
from promlab.api.params import parse_count_limit, read_params
from promlab.api.scrape_yaml import relabel_rule_json, scrape_config_yaml
from promlab.api.service import Service
from promlab.api.v1 import Handler, handler
from promlab.config import ScrapeConfig
from promlab.config.relabel import process_dict
from promlab.errors import BadData, PromlabError
from promlab.model import Labels, Matcher
from promlab.promql.parser import parse_series_selector

__all__ = ["TargetsAPI", "routes"]


class TargetsAPI:
    """The scrape-pool handlers over one service."""

    def __init__(self, service: Service, metrics: ApiMetrics) -> None:
        self.service = service
        self.metrics = metrics

    def routes(self) -> list[BaseRoute]:
        table: list[tuple[str, Handler]] = [
            ("scrape_pools", self.scrape_pools),
            ("scrape_pools/config", self.scrape_pool_config),
            ("targets/metadata", self.target_metadata),
            ("targets/relabel_steps", self.relabel_steps),
        ]
        return [Route(f"/api/v1/{name}", handler(f"/api/v1/{name}", self.metrics, fn),
                      methods=["GET"]) for name, fn in table]

    # --- the running pools --------------------------------------------------------------------
    def _pools(self) -> dict[str, Any]:
        """The running scraper's pools by job name (a copy; empty when not scraping)."""
        handle = self.service.scrape.handle if self.service.scrape.running else None
        manager = getattr(handle, "manager", None)
        pools = getattr(manager, "pools", None)
        return dict(pools) if pools else {}

    def _pool_config(self, params: Any) -> ScrapeConfig:
        name = params.get("scrapePool", "")
        if not name:
            raise BadData("no scrapePool parameter provided")
        pool = self._pools().get(name)
        if pool is None:
            raise BadData(f'error retrieving scrape config: scrape pool "{name}" not found')
        cfg: ScrapeConfig = pool.cfg
        return cfg

    def _active_targets(self) -> Iterator[tuple[Labels, Any]]:
        """(target labels, scrape loop) of every active target, pools by name, targets by labels."""
        for _, pool in sorted(self._pools().items()):
            loops = sorted(list(pool.loops.values()), key=lambda lp: lp.sample_labels.pairs)
            for lp in loops:
                yield lp.sample_labels, lp

    # --- handlers -----------------------------------------------------------------------------
    async def scrape_pools(self, request: Request) -> Response:
        return success({"scrapePools": sorted(self._pools())})

    async def scrape_pool_config(self, request: Request) -> Response:
        cfg = self._pool_config(await read_params(request))
        return success({"yaml": scrape_config_yaml(cfg)})

    async def target_metadata(self, request: Request) -> Response:
        """Metadata of each active target's last page (``match_target``, ``metric``, ``limit``).

        As Prometheus: ``limit`` (negative: none) stops before the next target once that many
        entries were listed, so one target's metadata is never cut; without ``metric`` each
        entry names its metric, with ``metric`` it does not.
        """
        p = await read_params(request)
        limit = parse_count_limit(p.get("limit"), "limit")
        matchers: tuple[Matcher, ...] = ()
        selector = p.get("match_target", "")
        if selector:
            try:
                _, matchers = parse_series_selector(selector)
            except PromlabError as exc:
                raise BadData(f'invalid parameter "match_target": {exc}') from None
        metric = p.get("metric", "")
        out: list[dict[str, Any]] = []
        for labels, lp in self._active_targets():
            if 0 <= limit <= len(out):
                break
            if not all(m.matches(labels.get(m.name, "")) for m in matchers):
                continue
            target = labels.to_dict()
            metadata = dict(lp.metadata)
            if metric:
                md = metadata.get(metric)
                if md is not None:
                    out.append({"target": target, "type": md.type, "help": md.help,
                                "unit": md.unit})
                continue
            for name in sorted(metadata):
                md = metadata[name]
                out.append({"target": target, "metric": md.name, "type": md.type,
                            "help": md.help, "unit": md.unit})
        return success(out)

    async def relabel_steps(self, request: Request) -> Response:
        """Each ``relabel_configs`` rule of ``scrapePool`` applied in turn to ``labels`` (JSON).

        A step's ``output`` is the label set after its rule (``{}`` once a rule dropped the
        target) and ``keep`` whether the target is still kept.
        """
        p = await read_params(request)
        if not p.get("scrapePool", ""):
            raise BadData("no scrapePool parameter provided")
        text = p.get("labels", "")
        if not text:
            raise BadData("no labels parameter provided")
        current = _labels_json(text)
        rules = self._pool_config(p).relabel_configs
        steps: list[dict[str, Any]] = []
        keep = True
        for rule in rules:
            if keep:
                # One rule at a time through relabel's public API: the state after rule k is
                # what the whole list gives after its first k rules.
                keep = process_dict(current, [rule]) is not None
            output = Labels({k: v for k, v in current.items() if v != ""}).to_dict() if keep else {}
            steps.append({"rule": relabel_rule_json(rule), "output": output, "keep": keep})
        return success({"steps": steps})


def _labels_json(text: str) -> dict[str, str]:
    """The ``labels`` parameter: a JSON object of string values."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadData(f"error parsing labels: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise BadData("error parsing labels: want a JSON object of string label values")
    return {str(k): v for k, v in data.items()}


def routes(service: Service, metrics: ApiMetrics) -> list[BaseRoute]:
    """The routes of :class:`TargetsAPI` over ``service``."""
    return TargetsAPI(service, metrics).routes()
