"""``/federate``: the latest sample of every series matching ``match[]``, in the text format.

As Prometheus: for each series its newest sample at most the engine's lookback old (a stale
marker ends the series: nothing is sent for it), the external labels it lacks after its own
(``instance=""`` among them when no external label is named so), one ``# TYPE <name>
untyped`` per metric name, sample timestamps in milliseconds, ``-0`` written ``0``; a series
whose newest sample is a native histogram is left out (the text format has none; Prometheus
sends those only in the protobuf format, which promlab does not offer).
"""

from __future__ import annotations

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from promlab.api.metrics import ApiMetrics
from promlab.api.params import read_params
from promlab.api.service import Service
from promlab.api.v1 import check_open, handler
from promlab.errors import BadData
from promlab.model import Labels, Matcher, format_label_value, now_ms, stale_mask
from promlab.model.value import format_float_g
from promlab.promql.parser import parse_series_selector

__all__ = ["TEXT_TYPE", "federate_text", "routes"]

TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def federate_text(service: Service, sets: list[tuple[Matcher, ...]], *,
                  time_ms: int | None = None) -> str:
    """The federation page for the series matching any of ``sets`` at ``time_ms`` (now)."""
    now = now_ms() if time_ms is None else time_ms
    lookback = service.engine.lookback_ms
    cfg = service.config
    external = cfg.global_config.external_labels.to_dict() if cfg is not None else {}
    external.setdefault("instance", "")  # as Prometheus: a series without one gets instance=""
    q = service.store.querier(now - lookback, now)
    latest: dict[Labels, tuple[int, float]] = {}
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
                if j < a or ts[j] <= now - lookback or stale_mask(vals[j:j + 1])[0]:
                    continue
                if hs is not None and hs[j] is not None:
                    continue  # the text format cannot carry a native histogram: Prometheus skips it
                latest[ls] = (int(ts[j]), float(vals[j]))
    finally:
        q.close()
    by_name: dict[str, list[str]] = {}
    for ls in sorted(latest):
        t, v = latest[ls]
        labels = ls.to_dict()
        name = labels.pop("__name__", "")
        # The series' labels, then the external ones it lacks, each in name order (not
        # merged: Prometheus appends them).
        pairs = [*sorted(labels.items()),
                 *((k, external[k]) for k in sorted(external) if k not in labels)]
        body = ",".join(f"{k}={format_label_value(val)}" for k, val in pairs)
        value = "0" if v == 0 else format_float_g(v)  # Go's text writer: -0 as 0
        line = f"{name}{{{body}}} {value} {t}" if body else f"{name} {value} {t}"
        by_name.setdefault(name, []).append(line)
    out = []
    for name in sorted(by_name):
        out.append(f"# TYPE {name} untyped")
        out.extend(by_name[name])
    return "\n".join(out) + ("\n" if out else "")


def routes(service: Service, metrics: ApiMetrics) -> list[BaseRoute]:
    """The ``/federate`` route."""

    async def federate(request: Request) -> Response:
        p = await read_params(request, multipart=False)  # r.ParseForm first
        if p.form_error:
            return PlainTextResponse(f"error parsing form values: {p.form_error}\n",
                                     status_code=400, headers={"X-Content-Type-Options": "nosniff"})
        values = p.getlist("match[]")
        try:  # as Prometheus's handler: a bad selector is a plain-text 400, none selects nothing
            sets = [parse_series_selector(v)[1] for v in values]
        except BadData as exc:
            return PlainTextResponse(f"{exc}\n", status_code=400,
                                     headers={"X-Content-Type-Options": "nosniff"})
        check_open(service)
        text = await run_in_threadpool(federate_text, service, sets)
        return Response(text, media_type=TEXT_TYPE)

    return [Route("/federate", handler("/federate", metrics, federate), methods=["GET"])]  # GET only, as Prometheus
