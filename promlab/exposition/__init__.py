"""Exposition formats: the Prometheus text format 0.0.4 and OpenMetrics 1.0 text, parsed to columns.

* :class:`Parser` — one per target or stream; caches series texts so repeated scrapes reuse
  ``Labels`` objects; :meth:`Parser.parse` returns a :class:`Page` of numpy columns.
* :func:`parse` — a one-off parse with a fresh parser.
* :func:`negotiate` / :data:`ACCEPT_HEADER` — content negotiation for scrapes.
"""

from promlab.exposition.negotiate import ACCEPT_HEADER, Format, detect_format, negotiate
from promlab.exposition.page import NO_TIMESTAMP, Exemplar, MetricMetadata, Page
from promlab.exposition.parser import Parser, parse

__all__ = [
    "ACCEPT_HEADER",
    "NO_TIMESTAMP",
    "Exemplar",
    "Format",
    "MetricMetadata",
    "Page",
    "Parser",
    "detect_format",
    "negotiate",
    "parse",
]
