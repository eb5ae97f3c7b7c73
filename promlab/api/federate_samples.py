"""The samples ``/federate`` sends: the newest of every matching series, and their labels.

As Prometheus: for each series its newest sample at most the engine's lookback old (a stale
marker ends the series: nothing is sent for it); a native histogram in its float form. Every
format then writes a series' labels with the external labels it lacks appended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from promlab.api.service import Service
from promlab.model import Labels, Matcher, now_ms, stale_mask
from promlab.model.histogram import FloatHistogram

__all__ = ["Encoder", "FederatedSample", "external_labels", "federate_samples", "labels_with_external"]


@dataclass(frozen=True)
class FederatedSample:
    """The newest sample of one series: a float ``value`` or a native ``histogram``."""

    labels: Labels
    t_ms: int
    value: float
    histogram: FloatHistogram | None = None


#: A ``/federate`` body writer: the samples (ordered by labels) and the external labels in, bytes out.
Encoder = Callable[[list[FederatedSample], dict[str, str]], bytes]


def federate_samples(service: Service, sets: list[tuple[Matcher, ...]], *,
                     time_ms: int | None = None) -> list[FederatedSample]:
    """The newest sample of every series matching any of ``sets`` at ``time_ms`` (now), by labels.

    Stale series are left out; a native histogram comes in its float form, as Prometheus sends it.
    """
    now = now_ms() if time_ms is None else time_ms
    lookback = service.engine.lookback_ms
    q = service.store.querier(now - lookback, now)
    latest: dict[Labels, FederatedSample] = {}
    try:
        for ms in sets:
            ss = q.select(list(ms))
            ts, vals, off, hs = ss.ts_ms, ss.values, ss.offsets, ss.histograms
            for i, ls in enumerate(ss.labels):
                a, b = int(off[i]), int(off[i + 1])
                if a == b or ls in latest:
                    continue
                # Newest sample in (now - lookback, now]: the window is left-open like PromQL's.
                j = int(np.searchsorted(ts[a:b], now, side="right")) + a - 1
                if j < a or ts[j] <= now - lookback:
                    continue
                h = hs[j] if hs is not None else None
                if h is not None:
                    latest[ls] = FederatedSample(ls, int(ts[j]), 0.0, h.to_float())
                elif not stale_mask(vals[j:j + 1])[0]:
                    latest[ls] = FederatedSample(ls, int(ts[j]), float(vals[j]))
    finally:
        q.close()
    return [latest[ls] for ls in sorted(latest)]


def external_labels(service: Service) -> dict[str, str]:
    """The labels a federated series gets when it lacks them (``instance=""`` among them)."""
    cfg = service.config
    external = cfg.global_config.external_labels.to_dict() if cfg is not None else {}
    external.setdefault("instance", "")  # as Prometheus: a series without one gets instance=""
    return external


def labels_with_external(ls: Labels, external: dict[str, str]) -> tuple[str, list[tuple[str, str]]]:
    """The metric name and label pairs of a federated series.

    The series' labels, then the external ones it lacks, each in name order (not merged:
    Prometheus appends them); labels with an empty value are unset and left out.
    """
    labels = {k: v for k, v in ls.to_dict().items() if v != ""}
    name = labels.pop("__name__", "")
    pairs = [*sorted(labels.items()),
             *((k, external[k]) for k in sorted(external) if k not in labels)]
    return name, pairs
