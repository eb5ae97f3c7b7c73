"""Protobuf exposition: delimited bodies, native and classic histograms, the scrape options."""

from __future__ import annotations

import pytest

from promlab.errors import ExpositionError
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.exposition.protobuf import (
    ACCEPT_PROTOBUF,
    ProtobufOptions,
    encode_delimited,
    is_protobuf,
    parse_protobuf,
)
from promlab.model import Labels
from promlab.model.histogram import Histogram


def family(name: str, typ: int, **metric: object) -> pb.MetricFamily:
    mf = pb.MetricFamily(name=name, help="h", type=typ)
    mf.metric.append(pb.Metric(label=[pb.LabelPair(name="job", value="x")], **metric))
    return mf


def hist_family(*, native: bool = True, classic: bool = True) -> pb.MetricFamily:
    h = pb.Histogram(sample_count=6, sample_sum=12.5)
    if classic:
        h.bucket.extend([pb.Bucket(upper_bound=1, cumulative_count=2),
                         pb.Bucket(upper_bound=4, cumulative_count=5)])
    if native:
        h.schema = 0
        h.zero_threshold = 0.001
        h.zero_count = 1
        h.positive_span.extend([pb.BucketSpan(offset=0, length=2), pb.BucketSpan(offset=1, length=1)])
        h.positive_delta.extend([1, 1, -1])   # absolute 1, 2, 1 at indexes 0, 1, 3
        h.negative_span.extend([pb.BucketSpan(offset=1, length=1)])
        h.negative_delta.extend([1])
    return family("lat", pb.HISTOGRAM, histogram=h)


NATIVE = Histogram(schema=0, zero_threshold=0.001, zero_count=1, count=6, sum=12.5,
                   positive_spans=((0, 2), (1, 1)), positive_buckets=(1, 1, -1),
                   negative_spans=((1, 1),), negative_buckets=(1,))
CLASSIC = [("lat_bucket", {"le": "1"}, 2.0), ("lat_bucket", {"le": "4"}, 5.0),
           ("lat_bucket", {"le": "+Inf"}, 6.0), ("lat_sum", {}, 12.5), ("lat_count", {}, 6.0)]


def floats(body: bytes, opts: ProtobufOptions) -> list[tuple[str, dict[str, str], float]]:
    out = parse_protobuf(body, opts).floats
    return [(ls["__name__"], {k: v for k, v in ls.items() if k not in ("__name__", "job")}, v)
            for ls, _, v in out]


CASES = [
    ("native", ProtobufOptions(), True, []),
    ("native+classic", ProtobufOptions(always_scrape_classic_histograms=True), True, CLASSIC),
    ("native-off", ProtobufOptions(scrape_native_histograms=False), False, CLASSIC),
]


@pytest.mark.parametrize(("opts", "want_native", "want_floats"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_histogram_options(opts: ProtobufOptions, want_native: bool,
                           want_floats: list[tuple[str, dict[str, str], float]]) -> None:
    body = encode_delimited([hist_family()])
    parsed = parse_protobuf(body, opts)
    assert [h for _, _, h in parsed.histograms] == ([NATIVE] if want_native else [])
    if want_native:
        assert parsed.histograms[0][0] == Labels({"__name__": "lat", "job": "x"})
    assert floats(body, opts) == want_floats


def test_simple_types_and_summary() -> None:
    s = pb.Summary(sample_count=3, sample_sum=1.5, quantile=[pb.Quantile(quantile=0.5, value=0.25)])
    body = encode_delimited([
        family("c_total", pb.COUNTER, counter=pb.Counter(value=7), timestamp_ms=1234),
        family("g", pb.GAUGE, gauge=pb.Gauge(value=-1)),
        family("u", pb.UNTYPED, untyped=pb.Untyped(value=2)),
        family("s", pb.SUMMARY, summary=s)])
    parsed = parse_protobuf(body)
    assert floats(body, ProtobufOptions()) == [
        ("c_total", {}, 7.0), ("g", {}, -1.0), ("u", {}, 2.0), ("s", {"quantile": "0.5"}, 0.25),
        ("s_sum", {}, 1.5), ("s_count", {}, 3.0)]
    assert parsed.floats[0][1] == 1234 and parsed.floats[1][1] is None
    assert parsed.metadata["s"] == ("summary", "h", "")


def test_nhcb_conversion() -> None:
    body = encode_delimited([hist_family(native=False)])
    parsed = parse_protobuf(body, ProtobufOptions(convert_classic_histograms_to_nhcb=True))
    (_, _, h), = parsed.histograms
    f = h.to_float()
    assert f.schema == -53 and f.custom_values == (1.0, 4.0)
    assert list(f.buckets()) == [(0, 2.0), (1, 3.0), (2, 1.0)] and f.count == 6
    assert parsed.floats == []


def test_bucket_limit_and_factor_reduce_schema() -> None:
    body = encode_delimited([hist_family()])
    (_, _, h), = parse_protobuf(body, ProtobufOptions(native_histogram_bucket_limit=3)).histograms
    f = h.to_float()
    # schema 0 -> -1: positive indexes 0,1,3 -> 0,1,2 (3 buckets) and negative 1 -> 1: 4 > 3,
    # schema -2: positive -> 0,1,1 ; negative 1: 3 buckets.
    assert f.schema == -2 and len(f.compact().positive_buckets) + len(f.compact().negative_buckets) <= 3
    assert f.count == 6 and sum(f.positive_buckets) == 4
    (_, _, h2), = parse_protobuf(body, ProtobufOptions(native_histogram_min_bucket_factor=3)).histograms
    assert h2.schema == -1  # 2**2 = 4 >= 3 (schema 0's factor 2 is too fine)


def test_errors_and_negotiation() -> None:
    with pytest.raises(ExpositionError):
        parse_protobuf(b"\x05\x0a\x01")  # cut short
    bad = hist_family()
    bad.metric[0].histogram.schema = 9 + 50  # 59: not a schema
    with pytest.raises(ExpositionError):
        parse_protobuf(encode_delimited([bad]))
    assert is_protobuf("application/vnd.google.protobuf; proto=io.prometheus.client; encoding=delimited")
    assert not is_protobuf("text/plain; version=0.0.4")
    assert ACCEPT_PROTOBUF.startswith("application/vnd.google.protobuf;proto=io.prometheus.client")
