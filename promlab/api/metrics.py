"""promlab's own ``/metrics``: a ``prometheus_client`` registry per Session.

The session's registry already holds what the rule manager and the notifier count
(``prometheus_rule_*``, ``prometheus_notifications_*``). :func:`api_metrics` adds, once per
registry, the HTTP and query metrics the API updates and a collector that reads the scraper's
counters when scraped (scrapes, samples appended, targets up). Remote-write handlers count their
requests in :attr:`ApiMetrics.remote_write_requests`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, Summary
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from promlab.registries import PerRegistry

if TYPE_CHECKING:
    from promlab.api.service import Service

__all__ = ["ApiMetrics", "api_metrics"]


class ApiMetrics:
    """The metrics the API updates, registered in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.http_requests = Counter(
            "prometheus_http_requests_total", "Counter of HTTP requests.",
            ["handler", "code"], registry=r)
        self.http_duration = Histogram(
            "prometheus_http_request_duration_seconds", "Histogram of latencies for HTTP requests.",
            ["handler"], buckets=(0.1, 0.2, 0.4, 1, 3, 8, 20, 60, 120), registry=r)
        self.queries = Counter(
            "promlab_engine_queries_total", "Queries evaluated through the API.",
            ["kind", "outcome"], registry=r)
        self.query_duration = Summary(
            "prometheus_engine_query_duration_seconds", "Query timings",
            ["slice"], registry=r)
        self.remote_write_requests = Counter(
            "promlab_remote_write_requests_total", "Remote-write requests received.",
            ["code"], registry=r)
        self._scrape = _ScrapeCollector()
        r.register(self._scrape)

    def watch(self, service: Service) -> None:
        """Report ``service``'s scraper counters (the latest service served wins)."""
        self._scrape.service = service


#: The :class:`ApiMetrics` of a registry, created on first use.
api_metrics: PerRegistry[ApiMetrics] = PerRegistry(ApiMetrics)


class _ScrapeCollector(Collector):
    """Scrapes, samples appended and targets up, read from the scraper at collection time."""

    def __init__(self) -> None:
        self.service: Service | None = None

    def collect(self) -> Iterator[Metric]:
        scrapes = CounterMetricFamily("promlab_scrapes", "Scrapes done, per scrape pool.",
                                      labels=["scrape_pool"])
        up = GaugeMetricFamily("promlab_targets", "Targets per scrape pool and health.",
                               labels=["scrape_pool", "health"])
        appended = CounterMetricFamily("prometheus_tsdb_head_samples_appended",
                                       "Total number of appended samples (by the scraper).")
        oob = CounterMetricFamily("prometheus_target_scrapes_sample_out_of_bounds",
                                  "Total number of samples rejected due to timestamp falling outside "
                                  "of the time bounds.")
        too_big = CounterMetricFamily("prometheus_target_scrapes_exceeded_body_size_limit",
                                      "Total number of scrapes that hit the body size limit.")
        svc = self.service
        total = n_oob = n_big = 0
        if svc is not None and not svc.closed:
            df = svc.scrape.targets()
            if len(df):
                for pool, n in df.groupby("scrape_pool")["scrapes"].sum().items():
                    scrapes.add_metric([str(pool)], float(n))
                for (pool, health), n in df.groupby(["scrape_pool", "health"]).size().items():
                    up.add_metric([str(pool), str(health)], float(n))
            counters = getattr(svc.scrape, "counters", None)
            if counters is not None:  # a Session's: they continue over a stop and start
                got = counters()
                total = got["samples_appended"]
                n_oob = got["samples_out_of_bounds"]
                n_big = got["exceeded_body_size_limit"]
            elif (handle := svc.scrape.handle) is not None:
                total = int(getattr(handle.manager, "samples_appended", 0))
                n_oob = int(getattr(handle.manager, "samples_out_of_bounds", 0))
                n_big = int(getattr(handle.manager, "exceeded_body_size_limit", 0))
        appended.add_metric([], float(total))
        oob.add_metric([], float(n_oob))
        too_big.add_metric([], float(n_big))
        yield scrapes
        yield up
        yield appended
        yield oob
        yield too_big
