"""Remote write receiver (``/api/v1/write``, 1.0 and 2.0) and remote read (``/api/v1/read``).

The protocol work is framework-free (:class:`RemoteWriteReceiver`, :class:`RemoteReader`: bytes
and headers in, status, headers and body out); :func:`routes` wraps them for Starlette, and the
benchmark wraps the same receiver for aiohttp.

Write semantics: a request is decoded whole first, so a payload that does not decode (bad
snappy, bad protobuf) gets 400 and stores nothing; an unsupported ``Content-Type`` or
``Content-Encoding`` gets 415. Samples are checked as Prometheus's head checks them
(:mod:`promlab.storage.accept`: out of order, out of bounds, too old, another value at a
series' latest timestamp; more than 10 minutes in the future is out of bounds too, Prometheus's
``maxAheadTime``), against what was committed before the request. 1.0, as Prometheus's
handler: any such refusal rolls the whole request back — 400 with Prometheus's error text,
nothing stored. 2.0, as Prometheus 3.x's: the refused samples are listed in the 400 (one line
each, ``<error> for series {...}``) and the others committed. In both, a sample that repeats
or precedes an earlier one of the same series in the same request is dropped at commit
without an error (Prometheus's commit does the same; the first of two at one timestamp
wins). Native histogram samples follow the same rules (:mod:`promlab.storage.histaccept`): in
1.0 a refused histogram refuses its request whole too, in 2.0 it is listed. Series with invalid
labels are not written and make the answer 400 (Prometheus's 1.0 handler skips them silently).
2.0 answers carry the ``X-Prometheus-Remote-Write-*-Written`` headers;
start (created) timestamps become a zero sample at that time when ``ingest_start_timestamps``
is on (Prometheus's ``created-timestamp-zero-ingestion``; a refused zero sample is no error).
A store whose appender cannot report refusals per request (``MemoryStorage``) gets partial
1.0 writes.

Every answer comes after its samples are durable (the store's WAL fsync). Concurrent 1.0
requests share commits (:class:`GroupCommitter`): while one commit runs, the requests that
arrive queue up and the next commit takes them all, so a WAL write and fsync serve many
requests; each request of a shared commit is still refused or stored whole on its own. 2.0
requests, whose answers carry exact written counts, commit alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from promlab.errors import BadData, PromlabError
from promlab.model import Labels, Matcher, MatchType, format_label_value
from promlab.model.histogram import FloatHistogram, Histogram
from promlab.remote.chunks import encode_xor_series
from promlab.remote.codec import (
    SeriesTable,
    WriteBatch,
    compress,
    decompress,
    frame,
    parse_write_v1,
    parse_write_v2,
)
from promlab.remote.proto import prometheus_remote_pb2 as pb
from promlab.remote.proto import prometheus_types_pb2 as pbt
from promlab.storage.accept import MESSAGES, OUT_OF_BOUNDS
from promlab.storage.exemplars import exemplars_of
from promlab.storage.interface import AppendStats, Queryable, SelectHints, SeriesSet, Storage

__all__ = [
    "PROTO_V1",
    "PROTO_V2",
    "GroupCommitter",
    "RemoteReader",
    "RemoteWriteReceiver",
    "WriteResult",
    "routes",
]

PROTO_V1 = "prometheus.WriteRequest"
PROTO_V2 = "io.prometheus.write.v2.Request"
MAX_AHEAD_MS = 10 * 60 * 1000
TOO_FAR = "timestamp is too far in the future"
STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"


@dataclass
class WriteResult:
    """The answer to one remote-write request."""

    status: int
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    written: int = 0
    exemplars_written: int = 0
    histograms_written: int = 0


def negotiate(content_type: str | None, content_encoding: str | None) -> str | WriteResult:
    """The protobuf message named by the headers, or the 415 answer."""
    enc = (content_encoding or "").strip().lower()
    # No Content-Encoding: assume snappy, as Prometheus does for old 1.0 senders.
    if enc and enc != "snappy":
        return WriteResult(415, f"unsupported compression: {content_encoding}. Only snappy is supported")
    if not content_type:
        return PROTO_V1
    media, _, params = content_type.partition(";")
    if media.strip().lower() != "application/x-protobuf":
        return WriteResult(415, f"unsupported content type: {content_type}")
    proto = PROTO_V1
    for p in params.split(";"):
        k, _, v = p.partition("=")
        if k.strip().lower() == "proto":
            proto = v.strip().strip('"')
    if proto not in (PROTO_V1, PROTO_V2):
        return WriteResult(415, f"unsupported proto message: {proto}")
    return proto


class RemoteWriteReceiver:
    """Decodes remote-write requests and appends them to ``store`` (thread-safe)."""

    def __init__(self, store: Storage, *, ingest_start_timestamps: bool = False,
                 max_ahead_ms: int = MAX_AHEAD_MS) -> None:
        self.store = store
        self.ingest_start_timestamps = ingest_start_timestamps
        self.max_ahead_ms = max_ahead_ms
        self.table = SeriesTable()
        self.metadata: dict[str, tuple[str, str, str]] = {}
        self._lock = threading.Lock()
        self._commits = GroupCommitter(store)

    def handle(self, body: bytes, content_type: str | None, content_encoding: str | None
               ) -> WriteResult:
        proto = negotiate(content_type, content_encoding)
        if isinstance(proto, WriteResult):
            return proto
        v2 = proto == PROTO_V2
        try:
            raw = decompress(body)
            # Only decoding touches the series table; the commit (WAL write and fsync) runs
            # outside this lock, so the next request decodes while this one is made durable.
            with self._lock:
                batch = (parse_write_v2 if v2 else parse_write_v1)(raw, self.table)
                series = self.table.series
                self.metadata.update(batch.metadata)
            res = self._append(batch, series, grouped=not v2)
        except BadData as exc:
            res = WriteResult(400, str(exc))
        except PromlabError as exc:
            return WriteResult(500, str(exc))
        if v2:
            res.headers.update({
                "X-Prometheus-Remote-Write-Samples-Written": str(res.written),
                "X-Prometheus-Remote-Write-Histograms-Written": str(res.histograms_written),
                "X-Prometheus-Remote-Write-Exemplars-Written": str(res.exemplars_written),
            })
        return res

    def _append(self, b: WriteBatch, series: list[Labels], *, grouped: bool) -> WriteResult:
        v2 = not grouped
        problems = list(b.invalid)
        idx, ts, vals = b.index, b.ts_ms, b.values
        limit = int(time.time() * 1000) + self.max_ahead_ms
        ahead = ts > limit
        h_idx, h_ts = np.array(b.hist_index, np.int64), np.array(b.hist_ts_ms, np.int64)
        h_vals = b.hist_values
        h_ahead = h_ts > limit
        if ahead.any() or h_ahead.any():
            if not v2:  # an append error rolls Prometheus's 1.0 request back whole
                return WriteResult(400, f"{MESSAGES[OUT_OF_BOUNDS]}: {TOO_FAR}")
            problems.extend(f"{MESSAGES[OUT_OF_BOUNDS]}: {TOO_FAR} for series {series_string(series[i])}"
                            for i in [*idx[ahead].tolist(), *h_idx[h_ahead].tolist()])
            idx, ts, vals = idx[~ahead], ts[~ahead], vals[~ahead]
            if h_ahead.any():
                keep = ~h_ahead
                h_idx, h_ts = h_idx[keep], h_ts[keep]
                h_vals = [h for h, k in zip(h_vals, keep.tolist(), strict=True) if k]
        extra = 0
        zero = None
        if self.ingest_start_timestamps and b.start_ts_ms is not None and ts.shape[0]:
            st = b.start_ts_ms[~ahead] if ahead.any() else b.start_ts_ms
            use = (st != 0) & (st < ts)
            if use.any():
                # The zero sample first: the store checks order in append order. Its refusal
                # is no error of the request (Prometheus ignores a failed zero sample).
                extra = int(use.sum())
                idx = np.concatenate([idx[use], idx])
                ts = np.concatenate([st[use], ts])
                vals = np.concatenate([np.zeros(extra), vals])
                zero = np.zeros(ts.shape[0], bool)
                zero[:extra] = True
        written = h_written = 0
        if ts.shape[0] or h_ts.shape[0]:
            item = _Pending(series, idx, ts, vals, zero=zero, atomic=not v2,
                            hist_index=h_idx, hist_ts_ms=h_ts, hists=h_vals)
            if grouped:
                self._commits.commit(item)
            else:
                _commit_group(self.store, [item])
            if item.error is not None:
                raise item.error
            stats = item.stats
            assert stats is not None
            mine = [(text, ls) for u, text, ls in stats.refusals if u == item.unit]
            mine_h = [(text, ls) for u, text, ls in stats.histogram_refusals if u == item.unit]
            if (mine or mine_h) and not v2:
                # Nothing of the request was stored (Prometheus's handler appends a series'
                # samples before its histograms: a float refusal is named first).
                return WriteResult(400, (mine or mine_h)[0][0])
            problems.extend(f"{text} for series {series_string(ls)}" for text, ls in [*mine, *mine_h])
            # As Prometheus counts: the samples its appender took (a commit may still drop one
            # that repeats or precedes another of the same request, silently).
            written = int(ts.shape[0]) - extra - len(mine)
            h_written = int(h_ts.shape[0]) - len(mine_h)
            problems.extend(stats.errors)
        ex_written = 0
        if b.exemplar_items:
            ex_store = exemplars_of(self.store)
            if ex_store is not None:
                ex_written = ex_store.append_many(b.exemplar_items)
        if problems:
            return WriteResult(400, ("\n" if v2 else "; ").join(problems), written=written,
                               exemplars_written=ex_written, histograms_written=h_written)
        return WriteResult(204, written=written, exemplars_written=ex_written,
                           histograms_written=h_written)


def series_string(ls: Labels) -> str:
    """A series as Prometheus's ``labels.Labels.String()`` prints it (in its error texts)."""
    return "{" + ", ".join(f"{k}={format_label_value(v)}" for k, v in ls.items()) + "}"


@dataclass
class _Pending:
    """One request's samples waiting for a (group) commit, and what the commit did."""

    series: list[Labels]
    index: npt.NDArray[np.int64]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    zero: npt.NDArray[np.bool_] | None = None  # start-timestamp zero samples (in no unit)
    atomic: bool = True  # refused whole when the store refuses any of its samples (1.0)
    hist_index: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    hist_ts_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    hists: list[Histogram | FloatHistogram] = field(default_factory=list)
    unit: int = 0  # its number in the group's commit
    stats: AppendStats | None = None
    error: BaseException | None = None
    group: int = 1
    done: bool = False


def _commit_group(store: Storage, group: list[_Pending]) -> None:
    """Append ``group`` in order in one commit (one WAL write and fsync); results on the items.

    Runs of items over the same series list go to the store as one batch (one ref lookup).
    """
    try:
        app = store.appender()
        units = bool(getattr(app, "reports_units", False))
        i = 0
        for k, p in enumerate(group):
            p.unit = k
        while i < len(group):
            j = i + 1
            while (j < len(group) and group[j].series is group[i].series
                   and group[j].atomic == group[i].atomic):
                j += 1
            run = group[i:j]
            args = ((run[0].series, run[0].index, run[0].ts_ms, run[0].values) if len(run) == 1 else
                    (run[0].series, np.concatenate([p.index for p in run]),
                     np.concatenate([p.ts_ms for p in run]), np.concatenate([p.values for p in run])))
            if units:
                app.append_batch(*args, units=np.concatenate([_units(p) for p in run]),  # type: ignore[call-arg]
                                 atomic=run[0].atomic)
            else:  # a store without per-request refusals (MemoryStorage): a partial write
                app.append_batch(*args)
            for p in run:
                if not p.hists:
                    continue
                if units:
                    app.append_histogram_batch(p.series, p.hist_index, p.hist_ts_ms, p.hists,  # type: ignore[call-arg]
                                               units=np.full(len(p.hists), p.unit, np.int64),
                                               atomic=p.atomic)
                else:
                    app.append_histogram_batch(p.series, p.hist_index, p.hist_ts_ms, p.hists)
            i = j
        stats = app.commit()
    except Exception as exc:  # handed to every request of the group, raised in its thread
        for p in group:
            p.error = exc
        return
    for p in group:
        p.stats, p.group = stats, len(group)


def _units(p: _Pending) -> npt.NDArray[np.int64]:
    u = np.full(p.ts_ms.shape[0], p.unit, np.int64)
    if p.zero is not None:
        u[p.zero] = -1
    return u


class GroupCommitter:
    """Commits concurrent requests together: one WAL write and fsync for all waiting.

    The first request to arrive commits alone; requests arriving while a commit runs queue up
    and the next of them commits the whole queue at once (a group commit). Every request still
    returns only once its samples are durable, and samples are appended in arrival order.
    """

    def __init__(self, store: Storage, *, max_group: int = 64) -> None:
        self.store = store
        self.max_group = max_group
        self._cv = threading.Condition()
        self._queue: list[_Pending] = []
        self._leading = False

    def commit(self, item: _Pending) -> None:
        with self._cv:
            self._queue.append(item)
            while not item.done:
                if self._leading:
                    self._cv.wait()
                    continue
                self._leading = True
                group = self._queue[:self.max_group]
                del self._queue[:self.max_group]
                self._cv.release()
                try:
                    _commit_group(self.store, group)
                finally:
                    self._cv.acquire()
                    self._leading = False
                    for p in group:
                        p.done = True
                    self._cv.notify_all()


_MATCH_TYPES = {
    pbt.LabelMatcher.EQ: MatchType.EQUAL,
    pbt.LabelMatcher.NEQ: MatchType.NOT_EQUAL,
    pbt.LabelMatcher.RE: MatchType.REGEX,
    pbt.LabelMatcher.NRE: MatchType.NOT_REGEX,
}


class RemoteReader:
    """Answers remote-read requests from ``store`` (sampled or streamed XOR chunks).

    ``sample_limit`` bounds a sampled response (Prometheus's ``--storage.remote.read-sample-limit``,
    default 5e7); streamed responses go series by series in frames of about ``frame_bytes``.
    """

    def __init__(self, store: Queryable, *, sample_limit: int = 50_000_000,
                 frame_bytes: int = 1 << 20) -> None:
        self.store = store
        self.sample_limit = sample_limit
        self.frame_bytes = frame_bytes

    @staticmethod
    def parse(body: bytes) -> pb.ReadRequest:
        req = pb.ReadRequest()
        try:
            req.ParseFromString(decompress(body))
        except BadData:
            raise
        except Exception as exc:
            raise BadData(f"decoding remote read request: {exc}") from exc
        return req

    @staticmethod
    def response_type(req: pb.ReadRequest) -> int:
        accepted = list(req.accepted_response_types)
        if not accepted:
            return int(pb.ReadRequest.SAMPLES)
        for t in accepted:
            if t in (pb.ReadRequest.SAMPLES, pb.ReadRequest.STREAMED_XOR_CHUNKS):
                return int(t)
        raise BadData(f"server does not support any of the requested response types: {accepted}")

    def _select(self, q: pb.Query) -> tuple[SeriesSet, list[int]]:
        """The series of ``q`` and their positions in label order."""
        matchers = [Matcher(_MATCH_TYPES[m.type], m.name, m.value) for m in q.matchers]
        hints = SelectHints(start_ms=q.start_timestamp_ms, end_ms=q.end_timestamp_ms,
                            step_ms=q.hints.step_ms, range_ms=q.hints.range_ms, func=q.hints.func)
        querier = self.store.querier(q.start_timestamp_ms, q.end_timestamp_ms)
        try:
            ss = querier.select(matchers, hints)
        finally:
            querier.close()
        return ss, sorted(range(len(ss.labels)), key=lambda i: ss.labels[i].pairs)

    def sampled(self, req: pb.ReadRequest) -> bytes:
        """The snappy-compressed ``ReadResponse``."""
        resp = pb.ReadResponse()
        total = 0
        for q in req.queries:
            result = resp.results.add()
            ss, order = self._select(q)
            for i in order:
                ls = ss.labels[i]
                a, b = int(ss.offsets[i]), int(ss.offsets[i + 1])
                total += b - a
                if total > self.sample_limit:
                    raise BadData(f"exceeded sample limit ({self.sample_limit})")
                ts = result.timeseries.add()
                ts.labels.extend(pbt.Label(name=k, value=v) for k, v in ls.pairs)
                ts.samples.extend(pbt.Sample(value=v, timestamp=t) for t, v in
                                  zip(ss.ts_ms[a:b].tolist(), ss.values[a:b].tolist(), strict=True))
        return compress(resp.SerializeToString())

    def streamed(self, req: pb.ReadRequest) -> Iterator[bytes]:
        """The frames of the streamed response, one ``ChunkedReadResponse`` each."""
        for qi, q in enumerate(req.queries):
            ss, order = self._select(q)
            msg = pb.ChunkedReadResponse(query_index=qi)
            size = 0
            for i in order:
                ls = ss.labels[i]
                a, b = int(ss.offsets[i]), int(ss.offsets[i + 1])
                if a == b:
                    continue
                cs = msg.chunked_series.add()
                cs.labels.extend(pbt.Label(name=k, value=v) for k, v in ls.pairs)
                for lo, hi, data in encode_xor_series(ss.ts_ms[a:b], ss.values[a:b]):
                    cs.chunks.add(min_time_ms=lo, max_time_ms=hi, type=pbt.Chunk.XOR, data=data)
                    size += len(data)
                if size >= self.frame_bytes:
                    yield frame(msg.SerializeToString())
                    msg = pb.ChunkedReadResponse(query_index=qi)
                    size = 0
            if len(msg.chunked_series):
                yield frame(msg.SerializeToString())


def routes(session: Any, *, metrics: Any = None, ingest_start_timestamps: bool = False,
           remote_read_sample_limit: int = 50_000_000, **_: Any) -> list[Any]:
    """``POST /api/v1/write`` and ``POST /api/v1/read`` for Starlette.

    ``session`` is a :class:`~promlab.api.service.Service`; writes need a writable store (a
    read-only session answers 503).
    """
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    state: dict[str, RemoteWriteReceiver] = {}
    reader = RemoteReader(session.store, sample_limit=remote_read_sample_limit)

    def receiver() -> RemoteWriteReceiver | None:
        store = session.store
        if getattr(session, "read_only", False) or not isinstance(store, Storage):
            return None
        got = state.get("rx")
        if got is None or got.store is not store:
            got = state["rx"] = RemoteWriteReceiver(
                store, ingest_start_timestamps=ingest_start_timestamps)
        return got

    async def write(request: Request) -> Response:
        rx = receiver()
        if rx is None:
            res = WriteResult(503, "remote write receiver needs a writable store")
        else:
            body = await request.body()
            res = await run_in_threadpool(rx.handle, body, request.headers.get("content-type"),
                                          request.headers.get("content-encoding"))
        if metrics is not None:
            metrics.remote_write_requests.labels(str(res.status)).inc()
        if res.status == 204:
            return Response(status_code=204, headers=res.headers)
        return PlainTextResponse(res.message + "\n", status_code=res.status, headers=res.headers)

    async def read(request: Request) -> Response:
        body = await request.body()
        try:
            req = reader.parse(body)
            rtype = reader.response_type(req)
            if rtype == pb.ReadRequest.SAMPLES:
                data = await run_in_threadpool(reader.sampled, req)
                return Response(data, headers={"Content-Type": "application/x-protobuf",
                                               "Content-Encoding": "snappy"})
            # Check the matchers before the status line goes out.
            for q in req.queries:
                for m in q.matchers:
                    Matcher(_MATCH_TYPES[m.type], m.name, m.value)
        except BadData as exc:
            return PlainTextResponse(str(exc) + "\n", status_code=400)
        return StreamingResponse(reader.streamed(req), media_type=STREAMED_CONTENT_TYPE)

    return [Route("/api/v1/write", write, methods=["POST"]),
            Route("/api/v1/read", read, methods=["POST"])]
