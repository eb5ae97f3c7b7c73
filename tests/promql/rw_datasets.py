"""Seeded random datasets for the data-side differential test (test_differential_data.py).

Each dataset keeps the metric names and label sets of :mod:`tests.promql.promql_gen` (so its
generator and hand-written expressions apply) but draws the data: sample spacing (regular,
jittered, gaps past the lookback, dense bursts, series that start late or end early), counter
resets (to zero, to a smaller positive value, several in a row), special values (NaN, ±Inf, -0,
huge and tiny numbers), staleness markers (a series going stale and coming back, stale as its
last sample) and classic histogram buckets with odd ``le`` values and non-monotonic counts.

Two flavours: ``ongrid`` puts samples on whole seconds (often on whole minutes, so on query
steps, window starts and exactly one lookback apart); otherwise every sample has a non-zero
millisecond part, so no sample ever lies on a window start of a whole-second query.
The data are sent as remote-write 1.0 requests (:func:`write_request`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from promlab.model import STALE_NAN
from promlab.remote.codec import compress
from promlab.remote.proto import prometheus_remote_pb2 as pb
from tests.promql.promql_gen import T0_S

START_MS = (T0_S - 40 * 60) * 1000
END_MS = (T0_S + 60 * 60) * 1000
SPECIALS = [math.nan, math.inf, -math.inf, -0.0, 1e300, -1e300, 5e-324, 1e-300, 1.7e308,
            -2.5e-310, 0.0]

Series = tuple[dict[str, str], list[tuple[int, float]]]


@dataclass
class Dataset:
    """The series (labels with ``__name__``, time-ordered (ms, value) samples) and the
    dataset-specific query instants (seconds; strings so milliseconds survive)."""

    seed: int
    ongrid: bool
    series: list[Series] = field(default_factory=list)
    instants: list[str] = field(default_factory=list)
    range_query: tuple[int, int, int] = (0, 0, 1)


def _times(rng: np.random.Generator, ongrid: bool) -> list[int]:
    """Strictly increasing sample times (ms) with one of several spacing shapes."""
    interval = int(rng.choice([10, 15, 30, 60, 45, 7])) * 1000
    shape = rng.integers(0, 6)
    start = START_MS + int(rng.integers(0, 4)) * interval
    if rng.random() < 0.2:  # appears late
        start += int(rng.integers(10, 90)) * 60_000
    end = END_MS
    if rng.random() < 0.2:  # disappears early
        end = start + int(rng.integers(5, 60)) * 60_000
    ts: list[int] = []
    t = start
    while t < end:
        step = interval
        if shape == 1:  # jitter
            step = int(interval * rng.uniform(0.5, 1.5))
        elif shape == 2 and rng.random() < 0.04:  # gap longer than the lookback
            step = int(rng.choice([300, 301, 299, 420, 900])) * 1000
        elif shape == 3 and rng.random() < 0.08:  # a dense burst
            for _ in range(int(rng.integers(2, 8))):
                t += int(rng.integers(1, 1500))
                ts.append(t)
        elif shape == 4:  # mostly regular, exactly one lookback apart now and then
            step = 300_000 if rng.random() < 0.05 else interval
        ts.append(t)
        t += max(step, 1)
    out = []
    for t in ts:
        if ongrid:
            t = t // 1000 * 1000
        else:
            t = t // 1000 * 1000 + int(rng.integers(1, 1000))
        if not out or t > out[-1]:
            out.append(t)
    return out


def _counter(rng: np.random.Generator, n: int) -> list[float]:
    v = float(rng.integers(0, 50))
    out = []
    resets = set(rng.integers(0, max(n, 1), int(rng.integers(0, 5))).tolist())
    for k in range(n):
        if k in resets:
            v = float(rng.choice([0.0, float(rng.integers(1, 20)), v * 0.5]))
        else:
            v += float(rng.choice([0, 1, 3, 17, rng.integers(0, 500)]))
        out.append(v)
    return out


def _gauge(rng: np.random.Generator, n: int) -> list[float]:
    vals = [float(x) for x in np.round(rng.normal(0, float(rng.choice([1, 50, 1e6])), n), 3)]
    for k in rng.integers(0, max(n, 1), int(rng.integers(0, 6))):
        vals[int(k)] = float(rng.choice(SPECIALS))
    return vals


def _stale(rng: np.random.Generator, samples: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Staleness markers: some samples replaced by one (the series comes back after it), and
    sometimes one as the last sample."""
    out = list(samples)
    if rng.random() < 0.5 and out:
        for k in rng.integers(0, len(out), int(rng.integers(1, 4))):
            out[int(k)] = (out[int(k)][0], STALE_NAN)
    if rng.random() < 0.4 and out:
        out.append((out[-1][0] + int(rng.choice([1, 999, 15_000, 60_000])), STALE_NAN))
    return out


def generate(seed: int, *, ongrid: bool) -> Dataset:
    """One dataset: the metric names and labels of promql_gen's, random data."""
    rng = np.random.default_rng(seed)
    ds = Dataset(seed, ongrid)
    # First in the request: a fresh 2.42 head takes samples up to an hour before its first one.
    ds.series.append(({"__name__": "rw_anchor"}, [(START_MS - 60_000, 1.0)]))

    def add(name: str, labels: dict[str, str], kind: str, times: list[int] | None = None) -> None:
        ts = times if times is not None else _times(rng, ongrid)
        vals = _counter(rng, len(ts)) if kind == "counter" else _gauge(rng, len(ts))
        samples = list(zip(ts, vals, strict=True))
        if rng.random() < 0.5:
            samples = _stale(rng, samples)
        ds.series.append(({"__name__": name, **labels}, samples))

    for job, inst in (("api", "a"), ("api", "b"), ("web", "a"), ("web", "c")):
        add("c_total", {"job": job, "instance": inst}, "counter")
    for kind, host in (("temp", "h1"), ("special", "h1"), ("flat", "h2"), ("neg", "h2"),
                       ("frac", "h3")):
        add("g", {"kind": kind, "host": host}, "gauge")
    for labels in ({"a": "1", "b": "x", "c": "y y", "d": "ü/é", "e": "1.0"},
                   {"a": "2", "b": "x", "c": "", "d": "d2", "e": "-3"},
                   {"a": "3", "b": "z", "d": "d,3", "e": "Inf"}):
        add("m", labels, "gauge")
    shared = _times(rng, ongrid)  # dup_a and dup_b collide once their names go
    add("dup_a", {"job": "x"}, "counter", shared)
    add("dup_b", {"job": "x"}, "gauge", shared if rng.random() < 0.5 else None)
    for job in ("api", "web"):
        add("info_metric", {"job": job, "version": "1.2" if job == "api" else "2.0"}, "gauge")
    add("short", {"job": "api"}, "gauge")
    for job in ("api", "web"):
        ts = _times(rng, ongrid)
        les = ["0.1", "0.5", "2.5", "+Inf"] + [str(x) for x in
                                               rng.choice(["1e0", "0.50", "-1", "1e-3", "5e-324"],
                                                          int(rng.integers(0, 3)), replace=False)]
        base = np.array(_counter(rng, len(ts)))
        for i, le in enumerate(les):
            row = base * (0.2 + 0.2 * min(i, 4))
            if rng.random() < 0.3:  # non-monotonic buckets
                row = row * rng.uniform(0.5, 1.5, len(ts))
            ds.series.append(({"__name__": "h_bucket", "job": job, "le": le},
                              list(zip(ts, np.round(row, 2).tolist(), strict=True))))
        ds.series.append(({"__name__": "h_count", "job": job},
                          list(zip(ts, base.tolist(), strict=True))))
        ds.series.append(({"__name__": "h_sum", "job": job},
                          list(zip(ts, (base * 0.37).tolist(), strict=True))))
    ds.instants = _instants(rng, ds)
    step = int(rng.choice([60, 15, 37, 180, 300]))
    start = T0_S + int(rng.integers(5, 30)) * 60 + (0 if ongrid else int(rng.integers(0, 60)))
    ds.range_query = (start, min(start + step * 20, T0_S + 65 * 60), step)
    return ds


def _instants(rng: np.random.Generator, ds: Dataset) -> list[str]:
    """Whole seconds in both flavours; on the grid also the times of stale markers and of
    samples, and one lookback after a sample."""
    out = [str(T0_S + int(rng.integers(0, 62 * 60))) for _ in range(2)]
    if ds.ongrid:
        stale = [t for _, s in ds.series for t, v in s if _is_stale(v)]
        every = [t for _, s in ds.series for t, _ in s]
        picks = [int(rng.choice(stale))] if stale else []
        picks += [int(rng.choice(every)), int(rng.choice(every)) + 300_000]
        out += [str(t // 1000) for t in picks]
    return out


def _is_stale(v: float) -> bool:
    return math.isnan(v) and np.float64(v).view(np.uint64) == 0x7FF0000000000002


def write_request(series: list[Series]) -> bytes:
    """A snappy-compressed remote-write 1.0 ``WriteRequest`` of ``series``."""
    req = pb.WriteRequest()
    for labels, samples in series:
        ts = req.timeseries.add()
        for k in sorted(labels):
            ts.labels.add(name=k, value=labels[k])
        for t, v in samples:
            ts.samples.add(timestamp=t, value=v)
    return compress(req.SerializeToString())
