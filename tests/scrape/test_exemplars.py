"""Exemplars without a real Prometheus: the circular store's rules, the protobuf parser's
exemplars (counter, classic buckets, native histograms) and the text NHCB page moving bucket
exemplars to the histogram row, the max_exemplars config."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from promlab.config import load_config
from promlab.exposition.nhcbtext import NhcbTextParser
from promlab.exposition.proto import metrics_pb2 as pb
from promlab.exposition.protobuf import ProtobufOptions, ProtobufParser, encode_delimited
from promlab.model import Labels, Matcher, MatchType
from promlab.storage.exemplars import ExemplarStore, exemplars_of

from .pbtarget import exp_histogram

S = Labels({"__name__": "a_total", "job": "j"})
T = Labels({"__name__": "b_total", "job": "k"})


def ex(trace: str) -> Labels:
    return Labels({"trace_id": trace})


@pytest.mark.parametrize(("size", "appends", "results", "kept"), [
    (10, [(S, "x", 1.0, 10, True), (S, "x", 1.0, 10, True)], ["added", "duplicate"], ["x@10"]),
    (10, [(S, "x", 1.0, 10, True), (S, "y", 1.0, 10, True)], ["added", "out of order"], ["x@10"]),
    (10, [(S, "x", 1.0, 10, True), (S, "y", 1.0, 5, True)], ["added", "out of order"], ["x@10"]),
    (10, [(S, "x", 2.0, 10, False), (S, "x", 2.0, 20, False)], ["added", "duplicate"], ["x@10"]),
    (10, [(S, "x", 2.0, 10, False), (S, "x", 3.0, 20, False)], ["added", "added"], ["x@10", "x@20"]),
    (2, [(S, "x", 1.0, 10, True), (T, "y", 1.0, 11, True), (S, "z", 1.0, 12, True)],
     ["added"] * 3, ["y@11", "z@12"]),
    (0, [(S, "x", 1.0, 10, True)], ["disabled"], []),
], ids=["duplicate", "same-time-other-labels", "older", "untimed-duplicate", "untimed-new-value",
        "circular-overwrite", "disabled"])
def test_store_rules(size: int, appends: list[tuple[Labels, str, float, int, bool]], results: list[str],
                     kept: list[str]) -> None:
    st = ExemplarStore(size)
    got = [st.append(s, ex(t), v, ts, has) for s, t, v, ts, has in appends]
    assert got == results
    everything = [[Matcher(MatchType.REGEX, "__name__", ".+")]]
    found = [f"{e.labels['trace_id']}@{e.timestamp_ms}" for r in st.select(0, 100, everything) for e in r.exemplars]
    assert sorted(found) == sorted(kept)


@pytest.mark.parametrize(("sets", "start", "end", "want"), [
    ([[Matcher(MatchType.EQUAL, "job", "j")]], 0, 100, ["x", "z"]),
    ([[Matcher(MatchType.EQUAL, "job", "j")], [Matcher(MatchType.EQUAL, "job", "k")]], 0, 100, ["x", "z", "y"]),
    ([[Matcher(MatchType.REGEX, "__name__", ".+")]], 11, 12, ["z", "y"]),
    ([[Matcher(MatchType.EQUAL, "job", "nope")]], 0, 100, []),
], ids=["one-set", "or-of-sets", "time-range-inclusive", "no-match"])
def test_store_select(sets: list[list[Matcher]], start: int, end: int, want: list[str]) -> None:
    st = ExemplarStore()
    for s, t, ts in ((S, "x", 10), (T, "y", 11), (S, "z", 12)):
        st.append(s, ex(t), 1.0, ts)
    got = [e.labels["trace_id"] for r in st.select(start, end, sets) for e in r.exemplars]
    assert got == want


def test_resize_keeps_newest_and_store_follows_storage() -> None:
    st = ExemplarStore(5)
    for i in range(5):
        st.append(S, ex(str(i)), 1.0, i)
    st.resize(2)
    assert [e.labels["trace_id"] for r in st.select(0, 10, [[]]) for e in r.exemplars] == ["3", "4"]
    assert st.append(S, ex("late"), 1.0, 4) == "out of order"  # the newest is still known

    class Store:
        pass

    a, b = Store(), Store()
    assert exemplars_of(a) is exemplars_of(a) is not exemplars_of(b)
    assert exemplars_of(Store(), create=False) is None


@pytest.mark.parametrize(("yaml_storage", "want"), [
    (None, 100_000), ({"exemplars": {"max_exemplars": 7}}, 7), ({"exemplars": {"max_exemplars": 0}}, 0),
    ({"tsdb": {"out_of_order_time_window": "1h"}}, 100_000),
], ids=["default", "set", "off", "other-storage-keys"])
def test_max_exemplars_config(yaml_storage: object, want: int) -> None:
    data: dict[str, object] = {"scrape_configs": []}
    if yaml_storage is not None:
        data["storage"] = yaml_storage
    assert load_config(data).max_exemplars == want


def _pb_ex(trace: str, value: float, ts_ms: int | None) -> pb.Exemplar:
    e = pb.Exemplar(label=[pb.LabelPair(name="trace_id", value=trace)], value=value)
    if ts_ms is not None:
        e.timestamp.CopyFrom(Timestamp(seconds=ts_ms // 1000, nanos=(ts_ms % 1000) * 1_000_000))
    return e


def _families() -> list[pb.MetricFamily]:
    c = pb.MetricFamily(name="c_total", type=pb.COUNTER)
    c.metric.append(pb.Metric(counter=pb.Counter(value=3, exemplar=_pb_ex("ct", 1.0, 1_700_000_000_123))))
    classic = pb.Histogram(sample_count=4, sample_sum=2.0, bucket=[
        pb.Bucket(upper_bound=0.5, cumulative_count=1, exemplar=_pb_ex("b1", 0.25, 1_700_000_000_500)),
        pb.Bucket(upper_bound=1.0, cumulative_count=3)])
    h = pb.MetricFamily(name="h", type=pb.HISTOGRAM)
    h.metric.append(pb.Metric(histogram=classic))
    native = exp_histogram(0, {0: 2, 1: 1}, sum_=3.0)
    native.exemplars.append(_pb_ex("n1", 1.5, 1_700_000_001_000))
    n = pb.MetricFamily(name="n", type=pb.HISTOGRAM)
    n.metric.append(pb.Metric(histogram=native))
    return [c, h, n]


@pytest.mark.parametrize(("opts", "want"), [
    (ProtobufOptions(), {("c_total", "", "ct", 1_700_000_000_123), ("h_bucket", "0.5", "b1", 1_700_000_000_500),
                         ("n", "", "n1", 1_700_000_001_000)}),
    (ProtobufOptions(convert_classic_histograms_to_nhcb=True),
     {("c_total", "", "ct", 1_700_000_000_123), ("h", "", "b1", 1_700_000_000_500),
      ("n", "", "n1", 1_700_000_001_000)}),
], ids=["classic", "nhcb"])
def test_protobuf_exemplars(opts: ProtobufOptions, want: set[tuple[str, str, str, int]]) -> None:
    p = ProtobufParser(opts)
    page = p.parse(encode_delimited(_families()))
    got = set()
    for e in page.exemplars:
        ls = p.series[int(page.refs[e.index])]
        assert e.timestamp_ms is not None
        got.add((ls.name, ls.get("le", ""), e.labels["trace_id"], e.timestamp_ms))
    assert got == want


def test_nhcb_text_page_moves_bucket_exemplars_to_the_histogram() -> None:
    p = NhcbTextParser()
    page = p.parse(b'# TYPE h histogram\nh_bucket{le="1"} 2 # {trace_id="t"} 0.5 1700000000.5\n'
                   b'h_bucket{le="+Inf"} 3\nh_count 3\nh_sum 4.5\n# TYPE c counter\n'
                   b'c_total 1 # {trace_id="u"} 1\n# EOF\n', "application/openmetrics-text; version=1.0.0")
    got = {(p.series[int(page.refs[e.index])].name, e.labels["trace_id"], e.timestamp_ms) for e in page.exemplars}
    assert got == {("h", "t", 1_700_000_000_500), ("c_total", "u", None)}
