"""Scraping native histograms: content negotiation, the histogram options, staleness, counts."""

from __future__ import annotations

import math
from typing import Any

import pytest

from promlab.config import load_config
from promlab.errors import ConfigError
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.exposition.protobuf import HISTOGRAM_MARK, ProtobufParser, encode_delimited
from promlab.model import Labels, Matcher, MatchType, is_stale
from promlab.model.histogram import FloatHistogram
from promlab.scrape.loop import ScrapeResult
from promlab.scrape.native import accept_header
from promlab.storage import MemoryStorage

from .drive import scrape_rounds
from .pbtarget import PbTarget, exp_histogram, native_family

T0 = 1_700_000_000_000


def hist_a() -> pb.Histogram:
    h = exp_histogram(1, {-1: 2, 0: 3, 2: 1}, zero_count=1, negative={0: 2}, sum_=4.5)
    h.bucket.extend([pb.Bucket(upper_bound=1.0, cumulative_count=6)])
    return h


def families(with_b: bool) -> list[pb.MetricFamily]:
    hists = [({"k": "a"}, hist_a())]
    if with_b:
        hists.append(({"k": "b"}, exp_histogram(-2, {1: 4}, sum_=100.0)))
    g = pb.MetricFamily(name="g", type=pb.GAUGE)
    g.metric.append(pb.Metric(gauge=pb.Gauge(value=3)))
    return [native_family("lat", hists), g]


def scrape(job: dict[str, Any], rounds: list[bool]) -> tuple[MemoryStorage, list[ScrapeResult], list[str]]:
    """Scrape a PbTarget once per entry of ``rounds`` (whether series ``k="b"`` is exposed)."""
    store = MemoryStorage()
    state = {"b": rounds[0]}
    with PbTarget(lambda _now: families(state["b"])) as target:
        config = {"scrape_configs": [{"job_name": "j", "scrape_interval": "1s",
                                      "static_configs": [{"targets": [target.address]}], **job}]}
        results = scrape_rounds(store, config, [T0 + i * 1000 for i in range(len(rounds))],
                                before=lambda i: state.update(b=rounds[i]))
        return store, results, target.accepts


def select(store: MemoryStorage, name: str) -> dict[str, list[tuple[int, object]]]:
    ss = store.querier(0, 1 << 62).select([Matcher(MatchType.EQUAL, "__name__", name)])
    out: dict[str, list[tuple[int, object]]] = {}
    for i in range(len(ss)):
        ls, ts, vs = ss.series(i)
        hs = ss.series_histograms(i)
        key = ",".join(f"{k}={v}" for k, v in ls.items() if k not in ("__name__", "instance", "job"))
        out[key] = [(int(t), hs[k] if hs is not None and hs[k] is not None else float(v))
                    for k, (t, v) in enumerate(zip(ts.tolist(), vs.tolist(), strict=True))]
    return out


def names(store: MemoryStorage) -> set[str]:
    return set(store.querier(0, 1 << 62).label_values("__name__"))


CASES = [
    # (id, job options, histograms stored, classic series present, scraped per round)
    ("native", {"scrape_native_histograms": True}, True, False, 3),
    ("native+classic", {"scrape_native_histograms": True, "always_scrape_classic_histograms": True}, True, True, 3 + 4),
    ("proto-without-native", {"scrape_protocols": ["PrometheusProto"]}, False, True, 1 + 4 + 3),
    ("text-negotiated", {}, False, False, 1),
]


@pytest.mark.parametrize(("job", "want_hist", "want_classic", "scraped"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_negotiation_and_options(job: dict[str, Any], want_hist: bool, want_classic: bool, scraped: int) -> None:
    store, results, accepts = scrape(job, [True])
    assert results[0].ok, results[0].error
    assert results[0].scraped == scraped
    assert ("application/vnd.google.protobuf" in accepts[0]) == (job != {})
    assert select(store, "g") == {"": [(T0, 3.0)]}
    assert ("lat" in names(store)) == want_hist
    assert ("lat_bucket" in names(store)) == want_classic
    assert select(store, "scrape_samples_scraped") == {"": [(T0, float(scraped))]}
    if want_hist:
        got = select(store, "lat")
        a = got["k=a"][0][1]
        assert isinstance(a, FloatHistogram)
        assert (a.schema, a.count, a.sum, a.zero_count) == (1, 9, 4.5, 1)
        assert list(a.buckets()) == [(-1, 2.0), (0, 3.0), (2, 1.0)]
        assert list(a.buckets(positive=False)) == [(0, 2.0)]
        assert got["k=b"][0][1].schema == -2  # type: ignore[union-attr]
    if want_classic:
        le = select(store, "lat_bucket")
        assert le["k=a,le=1"] == [(T0, 6.0)] and le["k=a,le=+Inf"] == [(T0, 9.0)]


def test_vanished_histogram_series_get_a_stale_marker() -> None:
    store, results, _ = scrape({"scrape_native_histograms": True}, [True, False, True])
    assert all(r.ok for r in results)
    b = select(store, "lat")["k=b"]
    assert [t for t, _ in b] == [T0, T0 + 1000, T0 + 2000]
    assert isinstance(b[0][1], FloatHistogram) and isinstance(b[2][1], FloatHistogram)
    assert isinstance(b[1][1], float) and is_stale(b[1][1])
    # Prometheus's scrape cache forgets a series absent from a good scrape: back, it is added again.
    assert [r.added for r in results] == [3, 0, 1]
    assert [r.scraped for r in results] == [3, 2, 3]


def test_sample_limit_counts_histograms() -> None:
    store, results, _ = scrape({"scrape_native_histograms": True, "sample_limit": 2}, [True])
    assert not results[0].ok and results[0].error == "sample limit exceeded"
    assert "lat" not in names(store)


def test_bucket_limit_reduces_the_stored_schema() -> None:
    store, results, _ = scrape({"scrape_native_histograms": True, "native_histogram_bucket_limit": 3}, [True])
    assert results[0].ok
    a = select(store, "lat")["k=a"][0][1]
    assert isinstance(a, FloatHistogram) and a.schema == 0 and a.count == 9
    assert list(a.buckets()) == [(0, 5.0), (1, 1.0)]
    # 3 buckets (2 positive, 1 negative) at the coarsest schema: the limit of 2 cannot be met
    store, results, _ = scrape({"scrape_native_histograms": True, "native_histogram_bucket_limit": 2}, [True])
    assert not results[0].ok and "bucket limit" in results[0].error
    assert "lat" not in names(store) and select(store, "up") == {"": [(T0, 0.0)]}


def test_scrape_protocols_accept_header_and_errors() -> None:
    cfg = load_config({"global": {"scrape_native_histograms": True},
                       "scrape_configs": [{"job_name": "a"},
                                          {"job_name": "b", "scrape_protocols": ["OpenMetricsText1.0.0",
                                                                                 "PrometheusProto"]},
                                          {"job_name": "c", "scrape_classic_histograms": True}]})
    a, b, c = cfg.scrape_configs
    assert a.scrape_native_histograms and accept_header(a).startswith("application/vnd.google.protobuf")
    assert accept_header(b).startswith("application/openmetrics-text;version=1.0.0")
    assert "application/vnd.google.protobuf" in accept_header(b) and accept_header(b).endswith("*/*;q=0.1")
    assert c.always_scrape_classic_histograms
    for bad in ({"scrape_protocols": ["Nope"]}, {"scrape_protocols": ["PrometheusProto", "PrometheusProto"]},
                {"native_histogram_min_bucket_factor": "x"}, {"native_histogram_bucket_limit": -1}):
        with pytest.raises(ConfigError):
            load_config({"scrape_configs": [{"job_name": "a", **bad}]})


def test_text_float_nan_is_not_a_histogram_mark() -> None:
    """A protobuf gauge carrying the histogram mark's NaN bits stays a float NaN."""
    g = pb.MetricFamily(name="g", type=pb.GAUGE)
    g.metric.append(pb.Metric(gauge=pb.Gauge(value=HISTOGRAM_MARK)))
    page = ProtobufParser().parse(encode_delimited([g]))
    assert math.isnan(page.values[0]) and page.values.view("u8")[0] != 0x7FF0000000000003
    assert not page.histograms
    assert page.series[page.refs[0]] == Labels({"__name__": "g"})
