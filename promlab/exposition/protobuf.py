"""The protobuf exposition format (``io.prometheus.client.MetricFamily``, length-delimited).

The only format that carries native histograms to a scraper. :data:`ACCEPT_PROTOBUF` is the
``Accept`` header a scrape sends when native histograms are on (protobuf preferred, text formats
as fallbacks, as Prometheus sends it); :func:`is_protobuf` tells a protobuf answer by its
``Content-Type``. :func:`parse_protobuf` turns a body into float samples and native histogram
samples, applying the scrape options of :class:`ProtobufOptions` (Prometheus's
``scrape_native_histograms``, ``always_scrape_classic_histograms``,
``native_histogram_bucket_limit``, ``native_histogram_min_bucket_factor``,
``convert_classic_histograms_to_nhcb``).

Float samples are named as Prometheus's protobuf parser names them: counters, gauges and untyped
by the family name; summaries ``name{quantile=...}``, ``name_sum``, ``name_count``; classic
histograms ``name_bucket{le=...}`` (cumulative, ``+Inf`` added when missing), ``name_sum``,
``name_count``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain

import numpy as np

from promlab.errors import ExpositionError
from promlab.exposition.nhcb import nhcb_from_cumulative
from promlab.exposition.page import NO_TIMESTAMP, Exemplar, MetricMetadata, Page
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.model import Labels
from promlab.model.histogram import (
    CUSTOM_BUCKETS_SCHEMA,
    MAX_SCHEMA,
    MIN_SCHEMA,
    CounterResetHint,
    FloatHistogram,
    Histogram,
    HistogramError,
)
from promlab.model.value import format_float_g

__all__ = [
    "ACCEPT_PROTOBUF",
    "HISTOGRAM_MARK",
    "PROTOBUF_CONTENT_TYPE",
    "HistogramPage",
    "ParsedScrape",
    "ProtobufOptions",
    "ProtobufParser",
    "encode_delimited",
    "is_protobuf",
    "iter_delimited",
    "parse_protobuf",
]

PROTOBUF_CONTENT_TYPE = "application/vnd.google.protobuf;proto=io.prometheus.client;encoding=delimited"
ACCEPT_PROTOBUF = (
    f"{PROTOBUF_CONTENT_TYPE};q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2")

Sample = tuple[Labels, int | None, float]
HistSample = tuple[Labels, int | None, Histogram | FloatHistogram]


@dataclass(frozen=True, slots=True)
class ProtobufOptions:
    """Scrape options for histograms (Prometheus's scrape config names)."""

    scrape_native_histograms: bool = True
    always_scrape_classic_histograms: bool = False
    native_histogram_bucket_limit: int = 0
    native_histogram_min_bucket_factor: float = 0.0
    convert_classic_histograms_to_nhcb: bool = False


@dataclass(slots=True)
class ParsedScrape:
    floats: list[Sample] = field(default_factory=list)
    histograms: list[HistSample] = field(default_factory=list)
    #: family name -> (type name, help, unit)
    metadata: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: (on a histogram row?, index into ``floats`` or ``histograms``, labels, value, ts_ms or None)
    exemplars: list[tuple[bool, int, Labels, float, int | None]] = field(default_factory=list)


def is_protobuf(content_type: str | None) -> bool:
    if not content_type:
        return False
    parts = [p.strip() for p in content_type.split(";")]
    return parts[0] == "application/vnd.google.protobuf" and "proto=io.prometheus.client" in parts


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ExpositionError("protobuf body: truncated length prefix")
        b = buf[pos]
        pos += 1
        out |= (b & 0x7F) << shift
        if not b & 0x80:
            return out, pos
        shift += 7


def iter_delimited(body: bytes) -> Iterator[pb.MetricFamily]:
    """The MetricFamily messages of a delimited body."""
    pos = 0
    while pos < len(body):
        n, pos = _varint(body, pos)
        if pos + n > len(body):
            raise ExpositionError("protobuf body: message cut short")
        mf = pb.MetricFamily()
        try:
            mf.ParseFromString(body[pos:pos + n])
        except Exception as exc:  # protobuf's DecodeError
            raise ExpositionError(f"protobuf body: invalid MetricFamily: {exc}") from exc
        pos += n
        yield mf


def encode_delimited(families: list[pb.MetricFamily]) -> bytes:
    """A delimited body of ``families`` (for endpoints and tests)."""
    out = bytearray()
    for mf in families:
        data = mf.SerializeToString()
        n = len(data)
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                break
        out += data
    return bytes(out)


def _is_native(h: pb.Histogram) -> bool:
    return (h.HasField("schema") or len(h.positive_span) > 0 or len(h.negative_span) > 0
            or h.zero_threshold > 0 or h.zero_count > 0 or h.zero_count_float > 0)


def _native(h: pb.Histogram, gauge: bool) -> Histogram | FloatHistogram:
    hint = CounterResetHint.GAUGE if gauge else CounterResetHint.UNKNOWN
    pspans = tuple((s.offset, s.length) for s in h.positive_span)
    nspans = tuple((s.offset, s.length) for s in h.negative_span)
    if h.HasField("sample_count_float") or len(h.positive_count) or len(h.negative_count):
        return FloatHistogram(
            schema=h.schema, zero_threshold=h.zero_threshold, zero_count=h.zero_count_float,
            count=h.sample_count_float, sum=h.sample_sum, positive_spans=pspans,
            positive_buckets=tuple(h.positive_count), negative_spans=nspans,
            negative_buckets=tuple(h.negative_count), counter_reset_hint=hint)
    return Histogram(
        schema=h.schema, zero_threshold=h.zero_threshold, zero_count=h.zero_count,
        count=h.sample_count, sum=h.sample_sum, positive_spans=pspans,
        positive_buckets=tuple(h.positive_delta), negative_spans=nspans,
        negative_buckets=tuple(h.negative_delta), counter_reset_hint=hint)


def _limit(h: Histogram | FloatHistogram, opts: ProtobufOptions) -> Histogram | FloatHistogram:
    """Schema reductions: over-resolution schemas, the bucket factor and the bucket limit."""
    f = h.to_float()
    if f.schema == CUSTOM_BUCKETS_SCHEMA:
        return h
    if f.schema > MAX_SCHEMA and f.schema <= 52:
        f = f.with_hint(f.counter_reset_hint).reduce_resolution(MAX_SCHEMA)
    elif not MIN_SCHEMA <= f.schema <= MAX_SCHEMA:
        raise ExpositionError(f"histogram schema {f.schema} is invalid")
    factor = opts.native_histogram_min_bucket_factor
    if factor > 1:
        while f.schema > MIN_SCHEMA and 2 ** (2.0 ** -f.schema) < factor:
            f = f.reduce_resolution(f.schema - 1)
    limit = opts.native_histogram_bucket_limit
    if limit > 0:
        c = f.compact()
        while len(c.positive_buckets) + len(c.negative_buckets) > limit:
            if f.schema <= MIN_SCHEMA:
                raise ExpositionError("native histogram bucket limit exceeded")
            f = f.reduce_resolution(f.schema - 1)
            c = f.compact()
    if f is h.to_float():
        return h
    return f.to_int() if isinstance(h, Histogram) else f


def _classic_nhcb(h: pb.Histogram, gauge: bool) -> FloatHistogram | Histogram:
    """A classic histogram as a native histogram with custom buckets (NHCB)."""
    floats = any(b.HasField("cumulative_count_float") for b in h.bucket)
    total = h.sample_count_float if h.HasField("sample_count_float") else float(h.sample_count)
    bounds: list[float] = []
    cums: list[float] = []
    inf = total
    for b in h.bucket:
        cum = b.cumulative_count_float if floats else float(b.cumulative_count)
        if math.isinf(b.upper_bound):
            inf = cum
        else:
            bounds.append(b.upper_bound)
            cums.append(cum)
    return nhcb_from_cumulative(bounds, cums, inf, total, h.sample_sum, gauge=gauge, integer=not floats)


def _exemplar(ex: pb.Exemplar) -> tuple[Labels, float, int | None]:
    ts = ex.timestamp.seconds * 1000 + ex.timestamp.nanos // 1_000_000 if ex.HasField("timestamp") else None
    return Labels({lp.name: lp.value for lp in ex.label}), ex.value, ts


def parse_protobuf(body: bytes, opts: ProtobufOptions | None = None) -> ParsedScrape:
    """Float and histogram samples of a delimited protobuf body (timestamps None: scrape time)."""
    opts = opts or ProtobufOptions()
    out = ParsedScrape()
    for mf in iter_delimited(body):
        name = mf.name
        if not name:
            raise ExpositionError("protobuf body: metric family without a name")
        tname = pb.MetricType.Name(mf.type).lower()
        out.metadata[name] = (tname, mf.help, mf.unit)
        for m in mf.metric:
            base = {lp.name: lp.value for lp in m.label}
            ts = m.timestamp_ms if m.HasField("timestamp_ms") else None

            def add(metric: str, value: float, extra: dict[str, str] | None = None,
                    base: dict[str, str] = base, ts: int | None = ts) -> None:
                out.floats.append((Labels({**base, **(extra or {}), "__name__": metric}), ts, value))

            if mf.type == pb.COUNTER:
                if m.counter.HasField("exemplar"):
                    out.exemplars.append((False, len(out.floats), *_exemplar(m.counter.exemplar)))
                add(name, m.counter.value)
            elif mf.type == pb.GAUGE:
                add(name, m.gauge.value)
            elif mf.type == pb.UNTYPED:
                add(name, m.untyped.value)
            elif mf.type == pb.SUMMARY:
                s = m.summary
                for q in s.quantile:
                    add(name, q.value, {"quantile": format_float_g(q.quantile)})
                add(name + "_sum", s.sample_sum)
                add(name + "_count", float(s.sample_count))
            elif mf.type in (pb.HISTOGRAM, pb.GAUGE_HISTOGRAM):
                h = m.histogram
                gauge = mf.type == pb.GAUGE_HISTOGRAM
                native = opts.scrape_native_histograms and _is_native(h)
                # Prometheus's three cases (configuration.md): a native histogram is ingested as
                # such, plus its classic buckets only with always_scrape_classic_histograms (and
                # only if it has buckets besides +Inf), never as NHCB; otherwise the classic
                # parts (perhaps just +Inf) become an NHCB with convert_classic_histograms_to_nhcb,
                # and are also kept as classic series unless converted without always_*.
                if native:
                    try:
                        nh = _limit(_native(h, gauge), opts)
                        nh.validate()
                    except HistogramError as exc:
                        raise ExpositionError(f"{name}: invalid native histogram: {exc}") from exc
                    # its exemplars: the exemplars field, else those of the classic buckets
                    exs = list(h.exemplars) or [b.exemplar for b in h.bucket if b.HasField("exemplar")]
                    out.exemplars.extend((True, len(out.histograms), *_exemplar(e)) for e in exs)
                    out.histograms.append((Labels({**base, "__name__": name}), ts, nh))
                    keep_classic = opts.always_scrape_classic_histograms and any(
                        not math.isinf(b.upper_bound) for b in h.bucket)
                else:
                    if opts.convert_classic_histograms_to_nhcb:
                        out.exemplars.extend((True, len(out.histograms), *_exemplar(b.exemplar))
                                             for b in h.bucket if b.HasField("exemplar"))
                        out.histograms.append((Labels({**base, "__name__": name}), ts,
                                               _classic_nhcb(h, gauge)))
                    keep_classic = not opts.convert_classic_histograms_to_nhcb or \
                        opts.always_scrape_classic_histograms
                if keep_classic:
                    count = h.sample_count_float if h.HasField("sample_count_float") else float(h.sample_count)
                    inf = False
                    for b in h.bucket:
                        cum = (b.cumulative_count_float if b.HasField("cumulative_count_float")
                               else float(b.cumulative_count))
                        if b.HasField("exemplar") and not native:
                            out.exemplars.append((False, len(out.floats), *_exemplar(b.exemplar)))
                        add(name + "_bucket", cum, {"le": format_float_g(b.upper_bound)})
                        inf = inf or math.isinf(b.upper_bound)
                    if not inf:
                        add(name + "_bucket", count, {"le": "+Inf"})
                    add(name + "_sum", h.sample_sum)
                    add(name + "_count", count)
    return out


HISTOGRAM_MARK: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000003))[0]
"""The value a histogram sample has in a :class:`HistogramPage`'s ``values`` (a NaN with the bits
of storage's ``HISTOGRAM_PLACEHOLDER``): the histogram itself is in ``page.histograms``."""

_TYPE_NAMES = {"untyped": "unknown", "gauge_histogram": "gaugehistogram"}


@dataclass(slots=True)
class HistogramPage(Page):
    """A :class:`~promlab.exposition.page.Page` of a protobuf body: float samples as usual, and
    one row per native histogram whose value is :data:`HISTOGRAM_MARK`; ``histograms`` maps
    such a row's series ref to its histogram (the first one, if a page repeats a series)."""

    histograms: dict[int, Histogram | FloatHistogram] = field(default_factory=dict)


class ProtobufParser:
    """Parses the protobuf bodies of one target into :class:`HistogramPage` columns.

    Like the text :class:`~promlab.exposition.Parser` it keeps a table of the series it has seen
    (``series``, append-only) so that refs stay stable across scrapes. Float NaNs are made
    ordinary NaNs (never the staleness marker or :data:`HISTOGRAM_MARK`); labels with empty
    values are dropped, and listed in ``page.empty_labels``.
    """

    def __init__(self, options: ProtobufOptions | None = None) -> None:
        self.options = options or ProtobufOptions()
        self.series: list[Labels] = []
        self._refs: dict[tuple[tuple[str, str], ...], int] = {}

    def __len__(self) -> int:
        return len(self.series)

    def _ref(self, ls: Labels, empty: dict[int, tuple[str, ...]]) -> int:
        key = ls.pairs
        ref = self._refs.get(key)
        if ref is None:
            blank = tuple(k for k, v in key if not v)
            if blank:
                ref = self._ref(Labels.from_sorted_pairs(tuple(p for p in key if p[1])), empty)
                self._refs[key] = ref
                empty[ref] = blank
                return ref
            ref = len(self.series)
            self.series.append(ls)
            self._refs[key] = ref
        elif any(not v for _, v in key):
            empty[ref] = tuple(k for k, v in key if not v)
        return ref

    def parse(self, body: bytes, content_type: str | None = None) -> HistogramPage:
        """One body (``content_type`` is accepted for symmetry with the text parser)."""
        parsed = parse_protobuf(body, self.options)
        empty: dict[int, tuple[str, ...]] = {}
        floats, hist_rows = parsed.floats, parsed.histograms
        # Refs in page order (floats, then histograms): new series get refs in that order.
        frefs = [self._ref(ls, empty) for ls, _, _ in floats]
        hrefs = [self._ref(ls, empty) for ls, _, _ in hist_rows]
        refs = np.array(frefs + hrefs, np.int32)
        fvalues = np.array([v for _, _, v in floats], np.float64)
        fvalues[np.isnan(fvalues)] = np.nan  # any NaN payload becomes the ordinary NaN
        values = np.concatenate([fvalues, np.full(len(hist_rows), HISTOGRAM_MARK, np.float64)])
        ts = np.array([NO_TIMESTAMP if t is None else t for _, t, _ in chain(floats, hist_rows)], np.int64)
        hists: dict[int, Histogram | FloatHistogram] = {}
        for ref, (_, _, h) in zip(hrefs, hist_rows, strict=True):
            hists.setdefault(ref, h)
        meta = {name: MetricMetadata(name, _TYPE_NAMES.get(t, t), help_, unit)
                for name, (t, help_, unit) in parsed.metadata.items()}
        nf = len(floats)
        exemplars = [Exemplar(nf + i if on_hist else i, ls, v, t) for on_hist, i, ls, v, t in parsed.exemplars]
        return HistogramPage(refs=refs, values=values, timestamps_ms=ts, series=self.series, metadata=meta,
                             exemplars=exemplars, empty_labels=empty, histograms=hists)
