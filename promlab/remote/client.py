"""A remote-read client: raw samples of a Prometheus server as columns.

:func:`read_range` asks for streamed XOR chunks (``STREAMED_XOR_CHUNKS``) and decodes all chunks
of the response in one vectorised pass (:func:`~promlab.remote.chunks.decode_xor_chunks`); a
server that answers with the sampled type is decoded too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import numpy as np
import numpy.typing as npt

from promlab.errors import BadData, StorageError
from promlab.model import Labels, Matcher, MatchType
from promlab.remote.chunks import decode_xor_chunks
from promlab.remote.codec import compress, decompress, read_frames
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.remote.proto import prometheus_types_pb2 as pbt

__all__ = ["ReadResult", "build_read_request", "read_range"]

_PB_TYPES = {
    MatchType.EQUAL: pbt.LabelMatcher.EQ,
    MatchType.NOT_EQUAL: pbt.LabelMatcher.NEQ,
    MatchType.REGEX: pbt.LabelMatcher.RE,
    MatchType.NOT_REGEX: pbt.LabelMatcher.NRE,
}


@dataclass
class ReadResult:
    """Samples of one read: ``series[index[k]]`` has sample ``(ts_ms[k], values[k])``.

    Samples are limited to the requested ``[start_ms, end_ms]`` (chunks may reach past it).
    """

    series: list[Labels]
    index: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    bytes_read: int = 0


def build_read_request(matchers: Sequence[Matcher], start_ms: int, end_ms: int, *,
                       streamed: bool = True) -> bytes:
    """The snappy-compressed ``ReadRequest`` body of one query."""
    req = pb.ReadRequest()
    q = req.queries.add(start_timestamp_ms=start_ms, end_timestamp_ms=end_ms)
    for m in matchers:
        q.matchers.add(type=_PB_TYPES[m.type], name=m.name, value=m.value)
    q.hints.start_ms = start_ms
    q.hints.end_ms = end_ms
    if streamed:
        req.accepted_response_types.append(pb.ReadRequest.STREAMED_XOR_CHUNKS)
    req.accepted_response_types.append(pb.ReadRequest.SAMPLES)
    return compress(req.SerializeToString())


def read_range(client: httpx.Client, url: str, matchers: Sequence[Matcher], start_ms: int,
               end_ms: int) -> ReadResult:
    """POST one remote-read query to ``url`` (``.../api/v1/read``) and decode the answer.

    Raises
    ------
    StorageError
        The server answered with an error status or something that does not decode.
    """
    body = build_read_request(matchers, start_ms, end_ms)
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
               "X-Prometheus-Remote-Read-Version": "0.1.0"}
    try:
        r = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise StorageError(f"remote read from {url}: {exc}") from exc
    if r.status_code != 200:
        raise StorageError(f"remote read from {url}: HTTP {r.status_code}: {r.text.strip()[:500]}")
    ctype = r.headers.get("content-type", "")
    try:
        if ctype.startswith("application/x-streamed-protobuf"):
            out = _decode_streamed(r.content)
        else:
            out = _decode_sampled(decompress(r.content))
    except BadData as exc:
        raise StorageError(f"remote read from {url}: {exc}") from exc
    out.bytes_read = len(r.content)
    keep = (out.ts_ms >= start_ms) & (out.ts_ms <= end_ms)
    if not keep.all():
        out.index, out.ts_ms, out.values = out.index[keep], out.ts_ms[keep], out.values[keep]
    return out


def _labels(lbs: Sequence[pbt.Label]) -> Labels:
    return Labels([(lb.name, lb.value) for lb in lbs])


def _decode_streamed(data: bytes) -> ReadResult:
    series: list[Labels] = []
    chunks: list[bytes] = []
    owner: list[int] = []
    for msg in read_frames(data):
        resp = pb.ChunkedReadResponse.FromString(msg)
        for cs in resp.chunked_series:
            i = len(series)
            series.append(_labels(cs.labels))
            for ch in cs.chunks:
                if ch.type != pbt.Chunk.XOR:
                    raise BadData(f"unsupported chunk encoding {ch.type} (native histograms?)")
                chunks.append(ch.data)
                owner.append(i)
    ts, vals, counts = decode_xor_chunks(chunks)
    index = np.repeat(np.array(owner, np.int64), counts)
    return ReadResult(series, index, ts, vals)


def _decode_sampled(raw: bytes) -> ReadResult:
    resp = pb.ReadResponse.FromString(raw)
    series: list[Labels] = []
    idx: list[int] = []
    ts: list[int] = []
    vals: list[float] = []
    for res in resp.results:
        for s in res.timeseries:
            i = len(series)
            series.append(_labels(s.labels))
            for smp in s.samples:
                idx.append(i)
                ts.append(smp.timestamp)
                vals.append(smp.value)
    return ReadResult(series, np.array(idx, np.int64), np.array(ts, np.int64),
                      np.array(vals, np.float64))
