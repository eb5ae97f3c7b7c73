"""The native-histogram scrape options of ``prometheus.yml`` (global and per scrape config).

Prometheus 3's names: ``scrape_native_histograms``, ``always_scrape_classic_histograms``,
``convert_classic_histograms_to_nhcb`` (global defaults, overridable per job),
``native_histogram_bucket_limit`` and ``native_histogram_min_bucket_factor`` (per job) and
``scrape_protocols`` (global default, per job). ``scrape_classic_histograms`` (the name from
Prometheus 2.45 to 2.55) is read as ``always_scrape_classic_histograms``. Prometheus 2.42 had none
of these: its ``--enable-feature=native-histograms`` amounts to ``scrape_native_histograms: true``
in the global section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from promlab.config.model import GlobalConfig
from promlab.config.reader import Reader, join

__all__ = ["GLOBAL_KEYS", "SCRAPE_KEYS", "SCRAPE_PROTOCOLS", "global_options", "scrape_options"]

SCRAPE_PROTOCOLS = ("PrometheusProto", "OpenMetricsText0.0.1", "OpenMetricsText1.0.0",
                    "PrometheusText0.0.4", "PrometheusText1.0.0")
"""The ``scrape_protocols`` values Prometheus accepts (case sensitive)."""

GLOBAL_KEYS = {"scrape_native_histograms", "always_scrape_classic_histograms",
               "convert_classic_histograms_to_nhcb", "scrape_protocols"}
SCRAPE_KEYS = GLOBAL_KEYS | {"scrape_classic_histograms", "native_histogram_bucket_limit",
                             "native_histogram_min_bucket_factor"}


def _protocols(r: Reader, d: Mapping[str, Any], path: str) -> tuple[str, ...] | None:
    if d.get("scrape_protocols") is None:
        return None
    p = join(path, "scrape_protocols")
    out: list[str] = []
    for v in r.seq(d["scrape_protocols"], p):
        name = str(v)
        if name not in SCRAPE_PROTOCOLS:
            raise r.err(p, f"unknown scrape protocol {name}, supported: [{' '.join(SCRAPE_PROTOCOLS)}]")
        if name in out:
            raise r.err(p, f"duplicated protocol in scrape_protocols, got {list(map(str, d['scrape_protocols']))}")
        out.append(name)
    if not out:
        raise r.err(p, "scrape_protocols cannot be empty")
    return tuple(out)


def global_options(r: Reader, d: Mapping[str, Any], path: str = "global") -> dict[str, Any]:
    """Keyword arguments of :class:`GlobalConfig` for the histogram options."""
    return {
        "scrape_native_histograms": r.boolean(d, "scrape_native_histograms", path, False),
        "always_scrape_classic_histograms": r.boolean(d, "always_scrape_classic_histograms", path, False),
        "convert_classic_histograms_to_nhcb": r.boolean(d, "convert_classic_histograms_to_nhcb", path, False),
        "scrape_protocols": _protocols(r, d, path) or (),
    }


def scrape_options(r: Reader, d: Mapping[str, Any], path: str, g: GlobalConfig) -> dict[str, Any]:
    """Keyword arguments of :class:`ScrapeConfig` for the histogram options (global defaults applied)."""
    factor_raw = d.get("native_histogram_min_bucket_factor")
    factor = 0.0
    if factor_raw is not None:
        if isinstance(factor_raw, bool) or not isinstance(factor_raw, int | float) or not math.isfinite(factor_raw) \
                or factor_raw < 0:
            raise r.err(join(path, "native_histogram_min_bucket_factor"), f"cannot unmarshal {factor_raw!r} into float")
        factor = float(factor_raw)
    always = g.always_scrape_classic_histograms
    if d.get("scrape_classic_histograms") is not None:
        always = r.boolean(d, "scrape_classic_histograms", path, always)
    return {
        "scrape_native_histograms": r.boolean(d, "scrape_native_histograms", path, g.scrape_native_histograms),
        "always_scrape_classic_histograms": r.boolean(d, "always_scrape_classic_histograms", path, always),
        "convert_classic_histograms_to_nhcb": r.boolean(d, "convert_classic_histograms_to_nhcb", path,
                                                        g.convert_classic_histograms_to_nhcb),
        "native_histogram_bucket_limit": r.uint(d, "native_histogram_bucket_limit", path),
        "native_histogram_min_bucket_factor": factor,
        "scrape_protocols": _protocols(r, d, path) or g.scrape_protocols,
    }
