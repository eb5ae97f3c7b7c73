"""Native histograms in the scrape loop: content negotiation, the parser, histogram samples.

* :func:`accept_header` — the ``Accept`` header of a job: ``scrape_protocols`` when given, else
  protobuf first when ``scrape_native_histograms`` is on (Prometheus's default orders).
* :func:`parser_for` — the text :class:`~promlab.exposition.Parser` or the
  :class:`~promlab.exposition.protobuf.ProtobufParser` (with the job's histogram options) for a
  response's ``Content-Type``.
* :func:`take_histograms` — after the loop has relabeled, limited, de-duplicated and
  time-checked a page's samples (histogram rows ride along as :data:`HISTOGRAM_MARK` values),
  moves the histogram rows into the batch's histogram part and returns the float rows.

A histogram sample counts as one sample everywhere a float does (``scrape_samples_scraped``,
``sample_limit``, series added), as in Prometheus; a histogram series that disappears gets the
float staleness marker like any other series.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

import promlab.exposition as expo
from promlab.config import ScrapeConfig
from promlab.exposition.nhcbtext import NhcbTextParser
from promlab.exposition.protobuf import (
    ACCEPT_PROTOBUF,
    HISTOGRAM_MARK,
    PROTOBUF_CONTENT_TYPE,
    HistogramPage,
    ProtobufOptions,
    ProtobufParser,
    is_protobuf,
)
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.storage.interface import HISTOGRAM_PLACEHOLDER

__all__ = ["HistogramPart", "accept_header", "options_for", "parser_for", "take_histograms"]

_MARK_BITS = np.array([HISTOGRAM_MARK], np.float64).view(np.uint64)[0]
if np.array([HISTOGRAM_PLACEHOLDER], np.float64).view(np.uint64)[0] != _MARK_BITS:  # pragma: no cover
    raise ImportError("exposition's HISTOGRAM_MARK must be storage's HISTOGRAM_PLACEHOLDER")

HistogramPart = tuple[list[Labels], npt.NDArray[np.int64], npt.NDArray[np.int64],
                      list[Histogram | FloatHistogram]]

_MEDIA = {
    "PrometheusProto": PROTOBUF_CONTENT_TYPE,
    "OpenMetricsText1.0.0": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
    "OpenMetricsText0.0.1": "application/openmetrics-text;version=0.0.1",
    "PrometheusText1.0.0": "text/plain;version=1.0.0;escaping=allow-utf-8",
    "PrometheusText0.0.4": "text/plain;version=0.0.4",
}


def accept_header(cfg: ScrapeConfig) -> str:
    """The ``Accept`` header for ``cfg``'s scrapes (Prometheus's weighting: the first protocol
    gets the highest ``q``, ``*/*`` the lowest)."""
    if cfg.scrape_protocols:
        parts = []
        q = 0.1 * (len(cfg.scrape_protocols) + 1)
        for name in cfg.scrape_protocols:
            parts.append(f"{_MEDIA[name]};q={q:.1f}")
            q -= 0.1
        return ",".join([*parts, "*/*;q=0.1"])
    return ACCEPT_PROTOBUF if cfg.scrape_native_histograms else expo.ACCEPT_HEADER


def options_for(cfg: ScrapeConfig) -> ProtobufOptions:
    return ProtobufOptions(
        scrape_native_histograms=cfg.scrape_native_histograms,
        always_scrape_classic_histograms=cfg.always_scrape_classic_histograms,
        native_histogram_bucket_limit=cfg.native_histogram_bucket_limit,
        native_histogram_min_bucket_factor=cfg.native_histogram_min_bucket_factor,
        convert_classic_histograms_to_nhcb=cfg.convert_classic_histograms_to_nhcb)


class _AnyParser(Protocol):
    def parse(self, body: bytes, content_type: str | None = None) -> Any: ...


def parser_for(current: Any, content_type: str | None, cfg: ScrapeConfig) -> tuple[Any, bool]:
    """The parser for a body of ``content_type``: ``current`` when it fits, else a new one.

    Returns ``(parser, switched)``; ``switched`` means ``current`` was of the other kind (its
    series refs do not carry over: the caller starts its series cache afresh).
    """
    want_pb = is_protobuf(content_type)
    if current is not None and isinstance(current, ProtobufParser) == want_pb:
        return current, False
    parser: _AnyParser
    if want_pb:
        parser = ProtobufParser(options_for(cfg))
    elif cfg.convert_classic_histograms_to_nhcb:  # text: histogram families become NHCBs
        parser = NhcbTextParser(keep_classic=cfg.always_scrape_classic_histograms, strict=False)
    else:  # a scrape accepts what Prometheus's scrape parsers accept (no prometheus_client rules)
        parser = expo.Parser(strict=False, keep_refused=True)
    return parser, current is not None


def take_histograms(page: Any, ref_map: npt.NDArray[np.int64], series: list[Labels],
                    idx: npt.NDArray[np.int64], ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64],
                    out: list[HistogramPart]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64],
                                                       npt.NDArray[np.float64]]:
    """Split the final rows ``(idx, ts, values)`` of ``page`` into floats (returned) and histograms
    (appended to ``out`` as one part indexing ``series``).

    ``ref_map`` maps the page's series refs to indices of ``series`` (the loop's series cache).
    Pages that are not :class:`HistogramPage` or have no histograms come back unchanged.
    """
    if not isinstance(page, HistogramPage) or not page.histograms or not idx.shape[0]:
        return idx, ts, values
    is_hist = values.view(np.uint64) == _MARK_BITS
    if not is_hist.any():
        return idx, ts, values
    by_final: dict[int, Histogram | FloatHistogram] = {}
    for ref, h in page.histograms.items():
        if ref < ref_map.shape[0] and ref_map[ref] >= 0:
            by_final.setdefault(int(ref_map[ref]), h)
    h_idx = idx[is_hist]
    hists = [by_final[i] for i in h_idx.tolist()]
    out.append((series, h_idx.astype(np.int64), ts[is_hist].astype(np.int64), hists))
    keep = ~is_hist
    return idx[keep], ts[keep], values[keep]
