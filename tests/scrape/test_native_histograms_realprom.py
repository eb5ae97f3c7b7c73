"""Differential test (issue 10 item 6): the same protobuf target scraped by a real Prometheus 2.42
(``--enable-feature=native-histograms``) and by promlab with the same scrape config.

The target serves integer native histograms (exponential schemas 3, 0 and -2; positive, negative
and zero buckets, gaps between spans) whose counts are a function of the second they are served
in, stamped with that second (explicit timestamps, so both scrapers store the same samples at the
same times). promlab writes through the scrape writer into a ParquetStore that is flushed, closed
and reopened (head, histogram WAL and Parquet files all on the way); Prometheus answers
``x[1m]`` with its raw histogram samples. Every sample both stored must agree: count, sum and
every bucket (boundary rule, lower and upper bound, count) as Prometheus's API renders them; and
a set of histogram queries (:data:`QUERIES`) answered at a time both stored give the same numbers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks import realprom
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.model import Labels, Matcher, MatchType
from promlab.model.histogram import FloatHistogram, bucket_lower, bucket_upper
from promlab.promql.engine import Engine
from promlab.scrape import start
from promlab.storage.store import open_store

from .pbtarget import PbTarget, exp_histogram, native_family

pytestmark = pytest.mark.realprom

MIN_SAMPLES = 6


def shapes(k: int) -> list[tuple[dict[str, str], pb.Histogram]]:
    """The histograms served in second ``k`` (counts grow with ``k``)."""
    g = k % 100_000
    fine = exp_histogram(3, {i: (i % 5 + 1) * g for i in range(-3, 9) if i != 2}, sum_=0.25 * g)
    coarse = exp_histogram(-2, {-1: g, 1: 2 * g, 4: 3}, negative={0: g, 2: 1}, zero_count=g + 1,
                           zero_threshold=0.001, sum_=-3.5 + g)
    zero_only = exp_histogram(0, {}, zero_count=2 * g, zero_threshold=0.5, sum_=0.0)
    return [({"s": "fine"}, fine), ({"s": "coarse"}, coarse), ({"s": "zero"}, zero_only)]


def families(now_ms: int) -> list[pb.MetricFamily]:
    k = now_ms // 1000
    return [native_family("x", shapes(k), ts_ms=k * 1000)]


def prom_buckets(h: FloatHistogram) -> list[tuple[int, float, float, float]]:
    """``h``'s buckets as Prometheus's API lists them: (boundary rule, lower, upper, count), empty
    buckets left out; rules 0 (lower, upper], 1 [lower, upper), 3 [lower, upper]."""
    out: list[tuple[int, float, float, float]] = []
    for i, c in reversed(list(h.buckets(positive=False))):
        if c:
            out.append((1, -bucket_upper(h.schema, i), -bucket_lower(h.schema, i), c))
    if h.zero_count:
        out.append((3, -h.zero_threshold, h.zero_threshold, h.zero_count))
    for i, c in h.buckets():
        if c:
            out.append((0, bucket_lower(h.schema, i), bucket_upper(h.schema, i), c))
    return out


def from_api(d: dict[str, Any]) -> tuple[float, float, list[tuple[int, float, float, float]]]:
    return (float(d["count"]), float(d["sum"]),
            [(int(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in d.get("buckets") or []])


QUERIES = ["histogram_count(x)", "histogram_sum(x)", "histogram_quantile(0.9, x)", "histogram_quantile(0.1, x)",
           "histogram_fraction(0, 1, x)", "histogram_count(rate(x[4s]))", "histogram_sum(increase(x[4s]))",
           "histogram_count(sum(x))", "histogram_sum(sum(rate(x[4s])))"]


def raw_times(store: Any) -> set[int]:
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", "x")])
    return {int(t) for i in range(len(ss)) for t in ss.series(i)[1].tolist()}


def query_time(store: Any, prom_raw: dict[str, Any]) -> int:
    """The latest time both stored, whose 4 s window holds the same sample times in both."""
    theirs = {round(float(t) * 1000) for r in prom_raw["result"] for t, _ in r.get("histograms", [])}
    ours = raw_times(store)
    for t in sorted(ours & theirs, reverse=True):
        if {u for u in ours if t - 4000 < u <= t} == {u for u in theirs if t - 4000 < u <= t}:
            return t
    raise AssertionError("no common query time")


def promlab_answer(store: Any, q: str, at_ms: int) -> dict[str, float]:
    df = Engine().instant(store, q, at_ms).to_frame()
    return {str(s) if isinstance(s, str) else "": float(v)
            for s, v in zip(df["s"] if "s" in df else [""] * len(df), df["value"], strict=True)}


def test_native_histograms_match_prometheus(tmp_path: Path) -> None:
    realprom.require_binary("prometheus")
    with PbTarget(families) as target:
        scrape_cfg = {"scrape_configs": [{"job_name": "hist", "scrape_interval": "1s", "scrape_timeout": "1s",
                                          "static_configs": [{"targets": [target.address]}]}]}
        # Prometheus 2.42's --enable-feature=native-histograms is promlab's scrape_native_histograms.
        ours_cfg = {"global": {"scrape_native_histograms": True}, **scrape_cfg}
        with realprom.prometheus(config=scrape_cfg, extra_args=["--enable-feature=native-histograms"]) as prom:
            store = open_store(tmp_path / "promlab")
            handle = start(ours_cfg, data=store)
            try:  # until Prometheus (which starts scraping later) has MIN_SAMPLES scrapes
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    time.sleep(1)
                    n = prom.query("count_over_time(up[1m])", time=time.time())["result"]
                    if n and float(n[0]["value"][1]) >= MIN_SAMPLES + 1:
                        break
            finally:
                handle.stop()
            end_s = time.time()
            got = prom.query("x[1m]", time=end_s)
            up = prom.query("up", time=end_s)["result"]
            store.flush()
            at_ms = query_time(store, got)
            answers = {q: ({r["metric"].get("s", ""): float(r["value"][1])
                            for r in prom.query(q, time=at_ms / 1000)["result"]},
                           promlab_answer(store, q, at_ms)) for q in QUERIES}
        store.close()
    assert up and up[0]["value"][1] == "1", up
    theirs: dict[str, dict[int, Any]] = {}
    for r in got["result"]:
        theirs[r["metric"]["s"]] = {round(float(t) * 1000): from_api(h) for t, h in r.get("histograms", [])}
    store = open_store(tmp_path / "promlab")
    try:
        ss = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", "x")])
        ours: dict[str, dict[int, Any]] = {}
        for i in range(len(ss)):
            ls, ts, _ = ss.series(i)
            hs = ss.series_histograms(i)
            assert hs is not None and ls == Labels({"__name__": "x", "instance": target.address,
                                                    "job": "hist", "s": ls["s"]})
            ours[ls["s"]] = {int(t): (h.count, h.sum, prom_buckets(h)) for t, h in zip(ts.tolist(), hs, strict=True)}
    finally:
        store.close()
    assert sorted(theirs) == sorted(ours) == ["coarse", "fine", "zero"]
    compared = 0
    for s in ours:
        common = sorted(set(ours[s]) & set(theirs[s]))
        assert len(common) >= MIN_SAMPLES - 1, (s, sorted(ours[s]), sorted(theirs[s]))
        for t in common:
            oc, osum, ob = ours[s][t]
            pc, psum, pbk = theirs[s][t]
            assert (oc, osum) == (pc, psum), (s, t)
            assert len(ob) == len(pbk), (s, t, ob, pbk)
            for a, b in zip(ob, pbk, strict=True):
                assert a[0] == b[0] and a[3] == b[3], (s, t, a, b)
                assert math.isclose(a[1], b[1], rel_tol=1e-15) and math.isclose(a[2], b[2], rel_tol=1e-15), (a, b)
            compared += 1
        # and both equal what was served
        for t in common:
            (want,) = [h for lbl, h in shapes(t // 1000) if lbl["s"] == s]
            assert ours[s][t][0] == want.sample_count
    assert compared >= 3 * (MIN_SAMPLES - 1)
    wrong = []
    for q, (prom_ans, our_ans) in answers.items():
        assert sorted(prom_ans) == sorted(our_ans), (q, prom_ans, our_ans)
        for key, want in prom_ans.items():
            got_v = our_ans[key]
            if q.startswith("histogram_quantile"):
                # Prometheus 2.42 interpolates linearly inside a bucket; Prometheus 3 (and
                # promlab) exponentially for exponential schemas: the same bucket, another point.
                def inside(v: float, key: str = key) -> set[int]:
                    return {j for j, b in enumerate(ours[key][at_ms][2]) if b[1] <= v <= b[2]}
                ok = bool(inside(got_v) & inside(want))
            else:
                ok = math.isclose(got_v, want, rel_tol=1e-12) or (math.isnan(want) and math.isnan(got_v))
            if not ok:
                wrong.append((q, key, got_v, want))
    assert not wrong, wrong
