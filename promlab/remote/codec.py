"""Wire codecs of the remote protocols: snappy, write requests to columns, read frames.

Remote-write 1.0 requests are decoded by a scanner that walks the protobuf wire format at the
series level and decodes all samples of a request with numpy; a series' label bytes key a cache
of :class:`~promlab.model.Labels`, so a label set is decoded once per receiver, not once per
request. Anything the scanner does not expect (metadata, exemplars, histograms, unusual field
order) falls back to the generated protobuf classes. Remote-write 2.0 requests are decoded with
the generated classes.

Exemplars (1.0 ``TimeSeries.exemplars``; 2.0 exemplars whose labels are references into the
request's symbols) of valid series come out as items for
:meth:`promlab.storage.exemplars.ExemplarStore.append_many`; an exemplar whose labels do not
decode (bad symbol references, invalid names) is dropped and counted, as Prometheus does not fail
a request over its exemplars.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cramjam
import numpy as np
import numpy.typing as npt

from promlab.errors import BadData
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.remote.chunks import _uvarint as _uvarint_bytes
from promlab.remote.chunks import read_uvarints
from promlab.remote.histproto import histogram_from_proto
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.remote.proto import prometheus_types_pb2 as pbt
from promlab.remote.proto import write_v2_pb2 as pb2

__all__ = [
    "METRIC_TYPES",
    "SeriesTable",
    "WriteBatch",
    "compress",
    "decompress",
    "frame",
    "parse_write_v1",
    "parse_write_v2",
    "read_frames",
]

ExemplarItem = tuple[Labels, Labels, float, int, bool]

METRIC_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info",
                "stateset")


def compress(data: bytes) -> bytes:
    """Snappy block format (not framed), as remote write and read use."""
    return bytes(cramjam.snappy.compress_raw(data))


def decompress(data: bytes) -> bytes:
    """Inverse of :func:`compress`; raises :class:`BadData` on a corrupt block."""
    try:
        return bytes(cramjam.snappy.decompress_raw(data))
    except Exception as exc:  # cramjam raises its own DecompressionError
        raise BadData(f"snappy: {exc}") from exc


def _crc32c(data: bytes) -> int:
    import google_crc32c

    return int(google_crc32c.value(data))


def frame(message: bytes) -> bytes:
    """One frame of a streamed response: uvarint length, big-endian CRC32C, the message."""
    return _uvarint_bytes(len(message)) + struct.pack(">I", _crc32c(message)) + message


def read_frames(data: bytes | memoryview, *, max_frame: int = 1 << 30) -> Iterator[bytes]:
    """The messages of a streamed response held in memory; raises :class:`BadData` if corrupt.

    A trailing incomplete frame is an error (the stream was cut).
    """
    mv = memoryview(data)
    pos, n = 0, len(mv)
    while pos < n:
        size, shift = 0, 0
        while True:
            if pos >= n or shift > 63:
                raise BadData("streamed response: truncated frame header")
            b = mv[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if size > max_frame:
            raise BadData(f"streamed response: frame of {size} bytes exceeds the limit")
        if pos + 4 + size > n:
            raise BadData("streamed response: truncated frame")
        crc = struct.unpack_from(">I", mv, pos)[0]
        msg = bytes(mv[pos + 4:pos + 4 + size])
        pos += 4 + size
        if _crc32c(msg) != crc:
            raise BadData("streamed response: corrupted frame (checksum mismatch)")
        yield msg


@dataclass
class WriteBatch:
    """A decoded write request as columns for ``Appender.append_batch``.

    ``index`` points into the :class:`SeriesTable`'s ``series`` list. ``invalid`` holds one
    message per series refused for its labels (their samples are not in the columns).
    """

    index: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    invalid: list[str] = field(default_factory=list)
    invalid_samples: int = 0
    histograms: int = 0
    exemplars: int = 0
    #: ``(series, exemplar labels, value, ts_ms, has_timestamp)`` of the valid series' exemplars
    exemplar_items: list[ExemplarItem] = field(default_factory=list)
    #: exemplars dropped for labels that do not decode
    invalid_exemplars: int = 0
    start_ts_ms: npt.NDArray[np.int64] | None = None
    # metric family -> (type, help, unit)
    metadata: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: the valid series' native histogram samples: series index, ts_ms, histogram
    hist_index: list[int] = field(default_factory=list)
    hist_ts_ms: list[int] = field(default_factory=list)
    hist_values: list[Histogram | FloatHistogram] = field(default_factory=list)

    @property
    def samples(self) -> int:
        return int(self.ts_ms.shape[0])


class SeriesTable:
    """The label sets a receiver has seen, as one growing list (so the store's ref cache works).

    Keys are a series' raw label bytes (1.0) or its label pairs (2.0). ``series`` only grows;
    invalid label sets map to a message instead of an index. Not thread-safe: one writer.
    """

    def __init__(self, *, max_series: int = 5_000_000) -> None:
        self.series: list[Labels] = []
        self._index: dict[object, int | str] = {}
        self.max_series = max_series

    def __len__(self) -> int:
        return len(self.series)

    def lookup(self, key: object) -> int | str | None:
        return self._index.get(key)

    def add(self, key: object, pairs: list[tuple[str, str]]) -> int | str:
        """Register the label set of ``key``; returns its index or why it is invalid."""
        got = self._index.get(key)
        if got is not None:
            return got
        res = _validate(pairs)
        if isinstance(res, Labels):
            if len(self.series) >= self.max_series:
                # A fresh list: the store resolves it from scratch once, then caches it again.
                self.series = []
                self._index = {}
            self.series.append(res)
            out: int | str = len(self.series) - 1
        else:
            out = res
        self._index[key] = out
        return out


def _validate(pairs: list[tuple[str, str]]) -> Labels | str:
    # As Prometheus 3 (UTF-8 names): a metric name is required, names are non-empty, unique.
    names = [n for n, _ in pairs]
    if not dict(pairs).get("__name__") or not all(names):
        return f"invalid metric name or labels, got {_text(pairs)}"
    if len(set(names)) != len(names):
        return f"invalid labels for series, labels {_text(pairs)}, duplicated label"
    try:
        return Labels(pairs)
    except BadData as exc:
        return f"invalid labels for series, labels {_text(pairs)}: {exc}"


class _Fallback(Exception):
    """The fast scanner met something it does not handle."""


def _uvarint(raw: bytes, pos: int) -> tuple[int, int]:
    x, shift = 0, 0
    while True:
        b = raw[pos]
        pos += 1
        x |= (b & 0x7F) << shift
        if b < 0x80:
            return x, pos
        shift += 7
        if shift > 63:
            raise _Fallback


def parse_write_v1(raw: bytes, table: SeriesTable) -> WriteBatch:
    """Decode a ``prometheus.WriteRequest`` (remote write 1.0); :class:`BadData` if malformed."""
    try:
        return _scan_v1(raw, table)
    except (_Fallback, IndexError):
        pass
    msg = pb.WriteRequest()
    try:
        msg.ParseFromString(raw)
    except Exception as exc:  # google.protobuf.message.DecodeError
        raise BadData(f"decoding remote write request: {exc}") from exc
    idx: list[int] = []
    ts: list[int] = []
    vals: list[float] = []
    out = WriteBatch(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    for series in msg.timeseries:
        pairs = [(lb.name, lb.value) for lb in series.labels]
        got = table.add(("v1", tuple(pairs)), pairs)
        n = len(series.samples)
        out.histograms += len(series.histograms)
        out.exemplars += len(series.exemplars)
        if isinstance(got, str):
            out.invalid.append(got)
            out.invalid_samples += n
            continue
        for s in series.samples:
            idx.append(got)
            ts.append(s.timestamp)
            vals.append(s.value)
        _histograms(out, got, series.histograms)
        for ex in series.exemplars:
            _exemplar(out, table.series[got], [(lb.name, lb.value) for lb in ex.labels],
                      ex.value, ex.timestamp)
    for md in msg.metadata:
        out.metadata[md.metric_family_name] = (METRIC_TYPES[md.type] if md.type < 8 else "unknown",
                                               md.help, md.unit)
    out.index = np.array(idx, np.int64)
    out.ts_ms = np.array(ts, np.int64)
    out.values = np.array(vals, np.float64)
    return out


def _scan_v1(raw: bytes, table: SeriesTable) -> WriteBatch:
    n = len(raw)
    pos = 0
    s_pos: list[int] = []
    s_len: list[int] = []
    s_ser: list[int] = []
    invalid: list[str] = []
    invalid_samples = 0
    lookup = table.lookup
    while pos < n:
        if raw[pos] != 0x0A:
            raise _Fallback
        length = raw[pos + 1]
        p = pos + 2
        if length >= 0x80:
            length, p = _uvarint(raw, pos + 1)
        end = p + length
        # Fast path: a known label set followed by one sample with a value and a 6-byte
        # timestamp (18 bytes: the usual shape). The guess is safe: a cache hit means the bytes
        # before the cut are exactly a label list seen (and parsed) before, so the rest is the
        # sample.
        cut = end - 18
        if cut > p and raw[cut] == 0x12 and raw[cut + 1] == 16:
            got = lookup(raw[p:cut])
            if got is not None:
                if isinstance(got, str):
                    invalid.append(got)
                    invalid_samples += 1
                else:
                    s_pos.append(cut + 2)
                    s_len.append(16)
                    s_ser.append(got)
                pos = end
                continue
        q = p
        while q < end and raw[q] == 0x0A:
            ll = raw[q + 1]
            if ll < 0x80:
                q += 2 + ll
            else:
                ll, q = _uvarint(raw, q + 1)
                q += ll
        key = raw[p:q]
        got = lookup(key)
        if got is None:
            try:
                lab = pbt.TimeSeries.FromString(key)
            except Exception as exc:  # invalid UTF-8 or a cut label: let the full parser say
                raise _Fallback from exc
            got = table.add(key, [(lb.name, lb.value) for lb in lab.labels])
        first = len(s_pos)
        while q < end:
            if raw[q] != 0x12:
                raise _Fallback
            sl = raw[q + 1]
            if sl >= 0x80:
                raise _Fallback
            s_pos.append(q + 2)
            s_len.append(sl)
            q += 2 + sl
        if q != end:
            raise _Fallback
        k = len(s_pos) - first
        if isinstance(got, str):
            invalid.append(got)
            invalid_samples += k
            del s_pos[first:], s_len[first:]
        else:
            s_ser.extend([got] * k)
        pos = end
    buf = np.frombuffer(raw + bytes(16), np.uint8)
    start = np.array(s_pos, np.int64)
    ln = np.array(s_len, np.int64)
    stop = start + ln
    has_v = (ln >= 9) & (buf[start] == 0x09)
    vals = np.zeros(start.shape[0], np.float64)
    if has_v.any():
        vpos = start[has_v] + 1
        vals[has_v] = np.ascontiguousarray(buf[vpos[:, None] + np.arange(8)]).view("<f8")[:, 0]
    tpos = start + 9 * has_v
    has_t = tpos < stop
    ts = np.zeros(start.shape[0], np.int64)
    if has_t.any():
        tp = tpos[has_t]
        if not bool((buf[tp] == 0x10).all()):
            raise _Fallback
        tv, tend = read_uvarints(buf, tp + 1)
        if not bool((tend == stop[has_t]).all()):
            raise _Fallback
        ts[has_t] = tv.astype(np.int64)
    elif start.shape[0] and not bool((tpos == stop).all()):
        raise _Fallback
    if not bool((tpos[~has_t] == stop[~has_t]).all()):
        raise _Fallback
    return WriteBatch(np.array(s_ser, np.int64), ts, vals, invalid=invalid,
                      invalid_samples=invalid_samples)


def parse_write_v2(raw: bytes, table: SeriesTable) -> WriteBatch:
    """Decode an ``io.prometheus.write.v2.Request``; :class:`BadData` if malformed.

    Symbol references out of range, odd label reference lists and series with neither samples
    nor histograms make the series invalid (listed in ``invalid``), as the 2.0 spec requires.
    """
    msg = pb2.Request()
    try:
        msg.ParseFromString(raw)
    except Exception as exc:
        raise BadData(f"decoding remote write 2.0 request: {exc}") from exc
    symbols = list(msg.symbols)
    nsym = len(symbols)
    idx: list[int] = []
    ts: list[int] = []
    vals: list[float] = []
    st: list[int] = []
    out = WriteBatch(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    for series in msg.timeseries:
        refs = list(series.labels_refs)
        n = len(series.samples)
        nh = len(series.histograms)
        out.histograms += nh
        out.exemplars += len(series.exemplars)
        if len(refs) % 2 or (refs and max(refs) >= nsym):
            out.invalid.append(f"parsing labels for series {refs}: invalid symbol references")
            out.invalid_samples += n
            continue
        pairs = [(symbols[refs[i]], symbols[refs[i + 1]]) for i in range(0, len(refs), 2)]
        if n == 0 and nh == 0:
            out.invalid.append("TimeSeries must contain at least one sample or histogram for "
                               f"series {_text(pairs)}")
            continue
        got = table.add(("v2", tuple(pairs)), pairs)
        if isinstance(got, str):
            out.invalid.append(got)
            out.invalid_samples += n
            continue
        md = series.metadata
        if md.type or md.help_ref or md.unit_ref:
            if md.help_ref >= nsym or md.unit_ref >= nsym:
                out.invalid.append(f"parsing metadata for series {_text(pairs)}: "
                                   "invalid symbol references")
                out.invalid_samples += n
                continue
            name = dict(pairs).get("__name__", "")
            out.metadata[name] = (METRIC_TYPES[md.type] if md.type < 8 else "unknown",
                                  symbols[md.help_ref], symbols[md.unit_ref])
        for s in series.samples:
            idx.append(got)
            ts.append(s.timestamp)
            vals.append(s.value)
            st.append(s.start_timestamp)
        _histograms(out, got, series.histograms)
        for ex in series.exemplars:
            erefs = list(ex.labels_refs)
            if len(erefs) % 2 or (erefs and max(erefs) >= nsym):
                out.invalid_exemplars += 1
                continue
            _exemplar(out, table.series[got],
                      [(symbols[erefs[i]], symbols[erefs[i + 1]]) for i in range(0, len(erefs), 2)],
                      ex.value, ex.timestamp)
    out.index = np.array(idx, np.int64)
    out.ts_ms = np.array(ts, np.int64)
    out.values = np.array(vals, np.float64)
    out.start_ts_ms = np.array(st, np.int64)
    return out


def _histograms(out: WriteBatch, index: int, hps: Any) -> None:
    """Add a valid series' native histogram samples to ``out``."""
    for hp in hps:
        out.hist_index.append(index)
        out.hist_ts_ms.append(int(hp.timestamp))
        out.hist_values.append(histogram_from_proto(hp))


def _exemplar(out: WriteBatch, series: Labels, pairs: list[tuple[str, str]], value: float,
              ts_ms: int) -> None:
    """Add one exemplar of ``series`` to ``out`` (remote-written exemplars carry a timestamp)."""
    names = {n for n, _ in pairs}
    if len(names) != len(pairs) or "" in names:
        out.invalid_exemplars += 1
        return
    try:
        labels = Labels(pairs)
    except BadData:
        out.invalid_exemplars += 1
        return
    out.exemplar_items.append((series, labels, float(value), int(ts_ms), True))


def _text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in pairs) + "}"
