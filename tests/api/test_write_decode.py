"""Remote-write 1.0 decoding: the scanner's fast path (known label set, one sample) agrees with
the generated protobuf classes, request after request."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.remote.codec import SeriesTable, parse_write_v1
from promlab.remote.proto import prometheus_remote_pb2 as pb

T = 1_700_000_000_123


def request(series: list[tuple[list[tuple[str, str]], list[tuple[int, float]]]]) -> bytes:
    req = pb.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k, v in labels:
            ts.labels.add(name=k, value=v)
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return req.SerializeToString()


A = [("__name__", "a"), ("job", "x")]
B = [("__name__", "b"), ("job", "y"), ("long", "v" * 300)]
BAD = [("job", "no-name")]


@pytest.mark.parametrize("series", [
    pytest.param([(A, [(T, 1.5)]), (B, [(T, 2.5)])], id="one-sample"),
    pytest.param([(A, [(T, 1.5), (T + 1000, 2.5)])], id="two-samples"),
    pytest.param([(A, [(T, 0.0)]), (B, [(0, 3.0)])], id="default-fields-omitted"),
    pytest.param([(BAD, [(T, 1.0)]), (A, [(T, 4.0)])], id="invalid-labels"),
    pytest.param([(A, [(5, 1.0)]), (A, [(T, 2.0)])], id="short-timestamp-then-usual"),
])
def test_repeated_requests_decode_alike(series: list[tuple[list[tuple[str, str]],
                                                           list[tuple[int, float]]]]) -> None:
    table = SeriesTable()
    raw = request(series)
    want_ts = [t for _, ss in series for t, _ in ss]
    want_v = [v for labels, ss in series for _, v in ss if labels is not BAD]
    for _ in range(3):  # first: slow path registers the label sets; then: fast path
        b = parse_write_v1(raw, table)
        ok = [labels is not BAD for labels, ss in series for _ in ss]
        assert b.ts_ms.tolist() == [t for t, k in zip(want_ts, ok, strict=True) if k]
        assert b.values.tolist() == want_v
        assert [dict(table.series[i].pairs)["__name__"] for i in b.index.tolist()] == \
            [dict(labels)["__name__"] for labels, ss in series for _ in ss if labels is not BAD]
        assert b.invalid_samples == sum(len(ss) for labels, ss in series if labels is BAD)
        assert len(b.invalid) == sum(labels is BAD for labels, _ in series)
    assert np.array_equal(b.index, parse_write_v1(raw, table).index)
