"""A local target serving the protobuf exposition format (native histograms) when asked for it.

``PbTarget(families)`` serves ``families(now_ms)`` (a list of ``MetricFamily``) as a delimited
protobuf body when the request's ``Accept`` names the protobuf media type, and as a text page
of only the float families otherwise (what a client library without protobuf would do).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from promlab.exposition.proto import metrics_pb2 as pb
from promlab.exposition.protobuf import PROTOBUF_CONTENT_TYPE, encode_delimited
from promlab.model.value import format_float_g

Families = Callable[[int], list[pb.MetricFamily]]


def native_family(name: str, hists: list[tuple[dict[str, str], pb.Histogram]], *,
                  ts_ms: int | None = None) -> pb.MetricFamily:
    mf = pb.MetricFamily(name=name, help=f"{name} help", type=pb.HISTOGRAM)
    for labels, h in hists:
        m = pb.Metric(label=[pb.LabelPair(name=k, value=v) for k, v in sorted(labels.items())], histogram=h)
        if ts_ms is not None:
            m.timestamp_ms = ts_ms
        mf.metric.append(m)
    return mf


def exp_histogram(schema: int, counts: dict[int, int], *, zero_count: int = 0, negative: dict[int, int] | None = None,
                  zero_threshold: float = 1e-128, sum_: float = 0.0) -> pb.Histogram:
    """An integer exponential histogram from absolute bucket counts (index -> count)."""
    h = pb.Histogram(schema=schema, zero_threshold=zero_threshold, zero_count=zero_count, sample_sum=sum_)
    total = zero_count

    def fill(idx_counts: dict[int, int], spans: object, deltas: object) -> int:
        prev_idx: int | None = None
        prev = 0
        n = 0
        for i in sorted(idx_counts):
            if prev_idx is None or i != prev_idx + 1:
                spans.add(offset=i if prev_idx is None else i - prev_idx - 1, length=1)  # type: ignore[attr-defined]
            else:
                spans[-1].length += 1  # type: ignore[index]
            deltas.append(idx_counts[i] - prev)  # type: ignore[attr-defined]
            prev, prev_idx = idx_counts[i], i
            n += idx_counts[i]
        return n

    total += fill(counts, h.positive_span, h.positive_delta)
    total += fill(negative or {}, h.negative_span, h.negative_delta)
    h.sample_count = total
    return h


def text_page(families: list[pb.MetricFamily]) -> bytes:
    lines = []
    for mf in families:
        if mf.type not in (pb.COUNTER, pb.GAUGE):
            continue
        lines.append(f"# TYPE {mf.name} {'counter' if mf.type == pb.COUNTER else 'gauge'}")
        for m in mf.metric:
            labels = ",".join(f'{lp.name}="{lp.value}"' for lp in m.label)
            v = m.counter.value if mf.type == pb.COUNTER else m.gauge.value
            lines.append(f"{mf.name}{{{labels}}} {format_float_g(v)}")
    return ("\n".join(lines) + "\n").encode()


class PbTarget:
    """Serves ``families`` on ``http://127.0.0.1:<port>/metrics`` (use as a context manager)."""

    def __init__(self, families: Families) -> None:
        self.families = families
        self.accepts: list[str] = []
        target = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                accept = self.headers.get("Accept", "")
                target.accepts.append(accept)
                fams = target.families(int(time.time() * 1000))
                if "application/vnd.google.protobuf" in accept:
                    body, ctype = encode_delimited(fams), PROTOBUF_CONTENT_TYPE
                else:
                    body, ctype = text_page(fams), "text/plain; version=0.0.4; charset=utf-8"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="pbtarget", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> PbTarget:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def serving(families: Families) -> Iterator[PbTarget]:
    with PbTarget(families) as t:
        yield t
