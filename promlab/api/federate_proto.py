"""``/federate`` in the protobuf formats: ``io.prometheus.client.MetricFamily`` messages.

As Prometheus 2.42 builds them: samples ordered by metric name (series order kept within a
name), one family per run of samples of one name and one kind, ``UNTYPED`` for floats,
``HISTOGRAM`` (``GAUGE_HISTOGRAM`` for a gauge histogram) for native histograms in their float
form; every metric has its labels (the external ones it lacks appended) and its timestamp. A
name whose samples switch between floats and histograms gets a family per run, as Prometheus
sends it. The delimited form is byte for byte Prometheus's; the text forms are protobuf text
that parses to the same messages (Go's text printer differs in spacing, brackets and floats).
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf import text_format

from promlab.api.federate_samples import Encoder, FederatedSample, labels_with_external
from promlab.exposition.accept import AcceptFormat
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.exposition.protobuf import encode_delimited
from promlab.model.histogram import CounterResetHint, FloatHistogram

__all__ = ["PROTO_ENCODERS", "metric_families"]


def _histogram(h: FloatHistogram) -> pb.Histogram:
    out = pb.Histogram(sample_count_float=h.count, sample_sum=h.sum, schema=h.schema,
                       zero_threshold=h.zero_threshold, zero_count_float=h.zero_count,
                       negative_count=h.negative_buckets, positive_count=h.positive_buckets)
    out.negative_span.extend(pb.BucketSpan(offset=o, length=n) for o, n in h.negative_spans)
    out.positive_span.extend(pb.BucketSpan(offset=o, length=n) for o, n in h.positive_spans)
    return out


def _family_type(s: FederatedSample) -> int:
    if s.histogram is None:
        return pb.UNTYPED
    gauge = s.histogram.counter_reset_hint == CounterResetHint.GAUGE
    return pb.GAUGE_HISTOGRAM if gauge else pb.HISTOGRAM


def metric_families(samples: list[FederatedSample],
                    external: dict[str, str]) -> Iterator[pb.MetricFamily]:
    """The families of ``samples`` (ordered by labels) in the order Prometheus sends them."""
    family: pb.MetricFamily | None = None
    # Stable, as Go's sort.Sort over a byName vector of up to 12 samples (its insertion sort).
    for s in sorted(samples, key=lambda s: s.labels.get("__name__", "")):
        name, pairs = labels_with_external(s.labels, external)
        if not name:
            continue  # Prometheus ignores nameless series
        kind = _family_type(s)
        if family is None or family.name != name or family.type != kind:
            if family is not None:
                yield family
            family = pb.MetricFamily(name=name, type=kind)  # type: ignore[arg-type]
        metric = family.metric.add(timestamp_ms=s.t_ms)
        metric.label.extend(pb.LabelPair(name=k, value=v) for k, v in pairs)
        if s.histogram is None:
            metric.untyped.value = s.value
        else:
            metric.histogram.CopyFrom(_histogram(s.histogram))
    if family is not None:
        yield family


def _delimited(samples: list[FederatedSample], external: dict[str, str]) -> bytes:
    return encode_delimited(list(metric_families(samples, external)))


def _text(samples: list[FederatedSample], external: dict[str, str]) -> bytes:
    return "".join(text_format.MessageToString(mf) + "\n"
                   for mf in metric_families(samples, external)).encode()


def _compact_text(samples: list[FederatedSample], external: dict[str, str]) -> bytes:
    return "".join(text_format.MessageToString(mf, as_one_line=True) + "\n"
                   for mf in metric_families(samples, external)).encode()


#: The protobuf encoders of ``/federate`` by negotiated format.
PROTO_ENCODERS: dict[AcceptFormat, Encoder] = {
    "proto-delimited": _delimited,
    "proto-text": _text,
    "proto-compact-text": _compact_text,
}
