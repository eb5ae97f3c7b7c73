"""``/federate``: the latest sample of every series matching ``match[]``, negotiated as Prometheus.

The format follows the ``Accept`` header as Prometheus 2.42's ``expfmt.Negotiate`` picks it
(:func:`promlab.exposition.accept.negotiate_accept`) and is answered with the same
``Content-Type``: the text format 0.0.4 by default, length-delimited ``MetricFamily`` protobuf
messages or their protobuf text forms when asked (:mod:`promlab.api.federate_proto`). In the text
format: the external labels a series lacks after its own (``instance=""`` among them when no
external label is named so), one ``# TYPE <name> untyped`` per metric name, sample timestamps in
milliseconds, ``-0`` written ``0``; a series whose newest sample is a native histogram is left
out (the text format has none; the protobuf formats carry it).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from promlab.api.federate_proto import PROTO_ENCODERS
from promlab.api.federate_samples import (
    Encoder,
    FederatedSample,
    external_labels,
    federate_samples,
    labels_with_external,
)
from promlab.api.metrics import ApiMetrics
from promlab.api.params import read_params
from promlab.api.service import Service
from promlab.api.v1 import check_open, handler
from promlab.errors import BadData
from promlab.exposition.accept import ACCEPT_FORMATS, AcceptFormat, negotiate_accept
from promlab.model import Matcher, format_label_value
from promlab.model.value import format_float_g
from promlab.promql.parser import parse_series_selector

__all__ = ["ENCODERS", "TEXT_TYPE", "encode_text", "federate_body", "federate_text", "routes"]

TEXT_TYPE = ACCEPT_FORMATS["text"]


def encode_text(samples: list[FederatedSample], external: dict[str, str]) -> bytes:
    """The text format 0.0.4: one ``# TYPE <name> untyped`` per name, native histograms left out."""
    by_name: dict[str, list[str]] = {}
    for s in samples:
        if s.histogram is not None:
            continue  # the text format cannot carry a native histogram: Prometheus skips it
        name, pairs = labels_with_external(s.labels, external)
        if not name:
            continue  # Prometheus ignores nameless series
        body = ",".join(f"{k}={format_label_value(val)}" for k, val in pairs)
        value = "0" if s.value == 0 else format_float_g(s.value)  # Go's text writer: -0 as 0
        line = f"{name}{{{body}}} {value} {s.t_ms}" if body else f"{name} {value} {s.t_ms}"
        by_name.setdefault(name, []).append(line)
    out = []
    for name in sorted(by_name):
        out.append(f"# TYPE {name} untyped")
        out.extend(by_name[name])
    return ("\n".join(out) + ("\n" if out else "")).encode()


def federate_text(service: Service, sets: list[tuple[Matcher, ...]], *,
                  time_ms: int | None = None) -> str:
    """The federation page for the series matching any of ``sets`` at ``time_ms`` (now)."""
    samples = federate_samples(service, sets, time_ms=time_ms)
    return encode_text(samples, external_labels(service)).decode()


#: The encoder of each negotiated format.
ENCODERS: dict[AcceptFormat, Encoder] = {"text": encode_text, **PROTO_ENCODERS}


def federate_body(service: Service, sets: list[tuple[Matcher, ...]], fmt: AcceptFormat, *,
                  time_ms: int | None = None) -> bytes:
    """The ``/federate`` body in the negotiated format ``fmt`` (a key of :data:`ENCODERS`)."""
    samples = federate_samples(service, sets, time_ms=time_ms)
    return ENCODERS[fmt](samples, external_labels(service))


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
        fmt = negotiate_accept(request.headers.get("accept"))
        body = await run_in_threadpool(federate_body, service, sets, fmt)
        return Response(body, headers={"Content-Type": ACCEPT_FORMATS[fmt]})

    return [Route("/federate", handler("/federate", metrics, federate), methods=["GET"])]  # GET only, as Prometheus
