"""Native histograms in rule unit tests (Prometheus 3's ``promtool test rules``).

promtool 2.42 (installed) refuses histogram input series, so nothing here is diffed against a
binary: expectations are computed by hand, and every expression's result is also checked
through the promqltest runner (which passes the conformance corpus) on the same data.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from promlab.model import Labels
from promlab.model.histogram import CounterResetHint, FloatHistogram, from_bucket_map
from promlab.promql.promqltest.runner import Runner
from promlab.rules.unittest import run_rule_tests
from promlab.rules.unittest.histograms import expected_histogram, go_histogram_text
from promlab.rules.unittest.text import go_labels

H = "{{schema:0 sum:5 count:4 buckets:[1 2 1]}}"
C = "{{schema:-53 sum:10 count:4 custom_values:[1 5] buckets:[1 2 1]}}"
INPUT = [
    # count 4(i+1), sum 5(i+1), buckets [1 2 1]*(i+1) in (0.5,1], (1,2], (2,4] at i minutes.
    {"series": 'h{job="a"}', "values": f"{H}+{H}x10"},
    {"series": "c", "values": f"{C}x5"},
    {"series": "r", "values": "{{count:5 buckets:[5]}} {{count:2 buckets:[2]}}"},
    {"series": "g", "values": "{{count:5 buckets:[5] counter_reset_hint:gauge}} "
                              "{{count:2 buckets:[2] counter_reset_hint:gauge}}"},
    {"series": "m", "values": "1 {{count:1 buckets:[1]}} 3"},
    {"series": "s", "values": "{{count:1 buckets:[1]}} stale"},
    {"series": "nh", "values": "{{count:3 buckets:[1 0 2] offset:-2 n_buckets:[0 4]}}"},
]


def _f(v: float) -> dict[str, Any]:
    return {"value": v}


# (id, expr, eval_time, expected samples [(labels, value or histogram text)]), hand-computed.
CASES = [
    ("count", "histogram_count(h)", "5m", [('{job="a"}', 24.0)]),
    ("sum", "histogram_sum(h)", "5m", [('{job="a"}', 30.0)]),
    # rank 12 of 24 is half-way through (1,2]: exponential interpolation gives sqrt(2).
    ("quantile-exp", "histogram_quantile(0.5, h)", "5m", [('{job="a"}', math.sqrt(2.0))]),
    # rank 2 of 4 is half-way through the custom bucket (1,5]: linear, 3.
    ("quantile-nhcb", "histogram_quantile(0.5, c)", "5m", [("{}", 3.0)]),
    # Samples at 1m..5m: delta 16/20/[4 8 4] over 240s, extrapolated to 300s (x1.25).
    ("increase", "increase(h[5m])", "5m",
     [('{job="a"}', "{{count:20 sum:25 counter_reset_hint:gauge buckets:[5 10 5]}}")]),
    ("count-of-rate", "histogram_count(rate(h[5m])) * 300", "5m", [('{job="a"}', 20.0)]),
    ("selector", "h", "2m",
     [('h{job="a"}', "{{count:12 sum:15 counter_reset_hint:not_reset buckets:[3 6 3]}}")]),
    ("first-sample-unknown-hint", "h", "0m", [('h{job="a"}', H)]),
    ("nhcb-selector", "c", "5m",
     [("c", "{{schema:-53 count:4 sum:10 custom_values:[1 5] counter_reset_hint:not_reset "
            "buckets:[1 2 1]}}")]),
    # A count going down cuts a chunk: the hint read back is unknown again.
    ("reset-hint", "r", "1m", [("r", "{{count:2 buckets:[2]}}")]),
    ("resets", "resets(r[5m])", "1m", [("{}", 1.0)]),
    ("gauge", "g", "1m", [("g", "{{count:2 counter_reset_hint:gauge buckets:[2]}}")]),
    ("mixed-float", "m", "0m", [("m", 1.0)]),
    ("mixed-histogram", "m", "1m", [("m", "{{count:1 buckets:[1]}}")]),
    ("mixed-float-after", "m", "2m", [("m", 3.0)]),
    ("stale", "s", "1m", []),
    # Empty edge buckets dropped, an inner empty one kept, offset printed only when not 0.
    ("offsets", "nh", "0m", [("nh", "{{count:3 offset:-2 buckets:[1 0 2] n_offset:1 n_buckets:[4]}}")]),
    # sum of one series copies its histogram, hint included (Prometheus's aggregation does).
    ("sum-aggregation", "sum(h)", "1m", [("{}", "{{count:8 sum:10 counter_reset_hint:not_reset buckets:[2 4 2]}}")]),
    # An exponential and a custom-bucket histogram do not add up: no sample (an annotation).
    ("sum-incompatible", "sum(h or c)", "1m", []),
]


def _exp_sample(labels: str, v: float | str) -> dict[str, Any]:
    return {"labels": labels, "histogram": v} if isinstance(v, str) else {"labels": labels, "value": v}


def _write(tmp_path: Path, tests: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None) -> Path:
    files = []
    if rules is not None:
        (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": rules}]}))
        files = ["rules.yml"]
    test = {"rule_files": files, "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": INPUT, **t} for t in tests]}
    path = tmp_path / "test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return path


@pytest.mark.parametrize(("expr", "at", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hand_computed(tmp_path: Path, expr: str, at: str, expected: list[tuple[str, float | str]]) -> None:
    path = _write(tmp_path, [{"promql_expr_test": [
        {"expr": expr, "eval_time": at, "exp_samples": [_exp_sample(ls, v) for ls, v in expected]}]}])
    (res,) = run_rule_tests(path)
    assert res.ok, res.failures
    assert not res.warnings and not res.groups[0].warnings


def _promqltest_line(labels: Labels, v: float | FloatHistogram) -> str:
    text = go_histogram_text(v) if isinstance(v, FloatHistogram) else repr(float(v))
    return f"  {go_labels(labels)} {text}"


@pytest.mark.parametrize(("expr", "at", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_agrees_with_promqltest_runner(tmp_path: Path, expr: str, at: str,
                                       expected: list[tuple[str, float | str]]) -> None:
    # What the rule test observed, written as the promqltest expectation of the same eval over
    # the same load: the conformance runner must accept it (histograms with their hints).
    path = _write(tmp_path, [{"promql_expr_test": [{"expr": expr, "eval_time": at, "exp_samples": []}]}])
    (res,) = run_rule_tests(path)
    ((_, observed),) = res.groups[0].observed_samples.items()
    load = "\n".join(f"  {s['series']} {s['values']}" for s in INPUT)
    body = "\n".join(_promqltest_line(ls, v) for ls, v in observed)
    script = f"load 1m\n{load}\n\neval instant at {at} {expr}\n{body}\n"
    result = Runner().run_text(script)
    assert (result.passed, result.failed, result.skipped) == (1, 0, 0), [f.format() for f in result.failures]
    assert len(observed) == len(expected)


def test_failure_output(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"promql_expr_test": [
        {"expr": "h", "eval_time": "1m",
         "exp_samples": [{"labels": 'h{job="a"}', "histogram": "{{buckets:[9] count:9}}"}]},
        {"expr": "histogram_count(h)", "eval_time": "1m",
         "exp_samples": [{"labels": '{job="a"}', "histogram": "{{count:8}}"}]},
    ]}])
    (res,) = run_rule_tests(path)
    assert res.failures == [
        '    expr: "h", time: 1m,\n'
        '        exp: {__name__="h", job="a"} {{count:9 buckets:[9]}}\n'
        '        got: {__name__="h", job="a"} {{count:8 sum:10 counter_reset_hint:not_reset buckets:[2 4 2]}}',
        '    expr: "histogram_count(h)", time: 1m,\n'
        '        exp: {job="a"} {{count:8}}\n'
        '        got: {job="a"} 8E+00',
    ]


def test_value_next_to_histogram_is_compared(tmp_path: Path) -> None:
    # promtool keeps `value` beside `histogram` and compares it with the sample's float (0).
    path = _write(tmp_path, [{"promql_expr_test": [
        {"expr": "c", "eval_time": "0m", "exp_samples": [{"labels": "c", "histogram": C, "value": 1}]}]}])
    (res,) = run_rule_tests(path)
    assert len(res.failures) == 1 and "exp: {__name__=\"c\"} {{schema:-53" in res.failures[0]


@pytest.mark.parametrize(("hist", "err"), [
    pytest.param("5", 'labels "c": expected histogram, got 5.000000', id="float"),
    pytest.param("_", 'labels "c": expected histogram, got _', id="omitted"),
    pytest.param("{{count:1}} {{count:2}}", 'labels "c": expected 1 value, got 2', id="two"),
])
def test_bad_expected_histogram(tmp_path: Path, hist: str, err: str) -> None:
    path = _write(tmp_path, [{"promql_expr_test": [
        {"expr": "c", "eval_time": "0m", "exp_samples": [{"labels": "c", "histogram": hist}]}]}])
    (res,) = run_rule_tests(path)
    assert res.failures == [f'    expr: "c", time: 0s, err: {err}']


def test_rules_over_histograms(tmp_path: Path) -> None:
    rules = [
        {"record": "h:count", "expr": "histogram_count(h)"},
        {"alert": "ManyObservations", "expr": "histogram_count(h) > 20", "for": "1m",
         "annotations": {"summary": "{{ $value }} observations"}},
    ]
    path = _write(tmp_path, [{
        "alert_rule_test": [
            {"eval_time": "5m", "alertname": "ManyObservations", "exp_alerts": []},  # pending
            {"eval_time": "6m", "alertname": "ManyObservations",
             "exp_alerts": [{"exp_labels": {"job": "a"}, "exp_annotations": {"summary": "28 observations"}}]},
        ],
        "promql_expr_test": [
            {"expr": "h:count", "eval_time": "3m", "exp_samples": [{"labels": 'h:count{job="a"}', "value": 16}]},
        ],
    }], rules)
    (res,) = run_rule_tests(path)
    assert res.ok, res.failures


@pytest.mark.parametrize(("hist", "text"), [
    pytest.param(from_bucket_map(0, {0: 1.0}, count=1), "{{count:1 buckets:[1]}}", id="offset-0-omitted"),
    pytest.param(from_bucket_map(0, {}, count=0), "{{}}", id="empty"),
    pytest.param(from_bucket_map(2, {3: 1.0, 6: 2.0}, count=3, sum=math.nan, zero_count=0.5, zero_threshold=0.001,
                                 counter_reset_hint=CounterResetHint.COUNTER_RESET),
                 "{{schema:2 count:3 sum:NaN z_bucket:0.5 z_bucket_w:0.001 counter_reset_hint:reset "
                 "offset:3 buckets:[1 0 0 2]}}", id="full"),
    pytest.param(from_bucket_map(-53, {0: 1.0}, count=1, sum=1e21, custom_values=(0.5, 1e6)),
                 "{{schema:-53 count:1 sum:1e+21 custom_values:[0.5 1e+06] buckets:[1]}}", id="nhcb-%g"),
])
def test_go_histogram_text(hist: FloatHistogram, text: str) -> None:
    assert go_histogram_text(hist) == text
    assert go_histogram_text(expected_histogram(text)) == text


def test_history_file_with_histograms(tmp_path: Path) -> None:
    # --from-history writes stored native histograms as literals (hints left to the loader,
    # repeats as {{...}}xN, a histogram staleness marker as stale) and the file passes.
    from promlab.model import STALE_NAN
    from promlab.rules.unittest import assert_rule_tests_pass
    from promlab.rules.unittest.history import history_test_file
    from promlab.storage import MemoryStorage

    t0 = 1_700_000_000_000
    hists: list[FloatHistogram | float] = [
        from_bucket_map(0, {0: float(c)}, count=float(c), sum=float(2 * c),
                        counter_reset_hint=CounterResetHint.NOT_COUNTER_RESET if c > 1 else CounterResetHint.UNKNOWN)
        for c in (1, 2, 4, 4, 4, 6)]
    hists.append(from_bucket_map(0, {0: 6.0}, count=6.0, sum=STALE_NAN))
    st = MemoryStorage()
    st.add_histogram_series(Labels({"__name__": "lat", "job": "a"}), [t0 + i * 60_000 for i in range(7)], hists)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "Slow", "expr": "histogram_count(lat) > 3"}]}]}))
    text = history_test_file(st, [str(tmp_path / "rules.yml")], start_ms=t0, end_ms=t0 + 5 * 60_000,
                             eval_times_ms=[2 * 60_000, 5 * 60_000], out_dir=str(tmp_path))
    (test,) = yaml.safe_load(text)["tests"]
    assert test["input_series"] == [{"series": 'lat{job="a"}', "values": "{{count:1 sum:2 buckets:[1]}} "
                                     "{{count:2 sum:4 buckets:[2]}} {{count:4 sum:8 buckets:[4]}}x2 "
                                     "{{count:6 sum:12 buckets:[6]}}"}]
    fired = [t["exp_alerts"] for t in test["alert_rule_test"]]
    assert fired == [[{"exp_labels": {"job": "a"}, "exp_annotations": {}}]] * 2
    out = tmp_path / "generated.yml"
    out.write_text(text)
    assert_rule_tests_pass(out)
    text = history_test_file(st, [str(tmp_path / "rules.yml")], start_ms=t0, end_ms=t0 + 6 * 60_000,
                             out_dir=str(tmp_path))
    assert yaml.safe_load(text)["tests"][0]["input_series"][0]["values"].endswith("{{count:6 sum:12 buckets:[6]}} stale")


def test_recording_rules_write_histograms(tmp_path: Path) -> None:
    """A recording rule whose result is native histograms writes histograms (not NaN floats):
    later rules and queries see them."""
    rules = [
        {"record": "h:sum", "expr": "sum(h)"},
        {"record": "h:rate", "expr": "rate(h[5m])"},
        {"record": "h:sum_count", "expr": "histogram_count(h:sum)"},
    ]
    path = _write(tmp_path, [{"promql_expr_test": [
        {"expr": "histogram_count(h:sum)", "eval_time": "3m", "exp_samples": [{"labels": "{}", "value": 16}]},
        {"expr": "h:sum_count", "eval_time": "3m", "exp_samples": [{"labels": "h:sum_count", "value": 16}]},
        {"expr": "histogram_sum(h:sum)", "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": 30}]},
        {"expr": "histogram_count(h:rate) * 300", "eval_time": "5m",
         "exp_samples": [{"labels": '{job="a"}', "value": 20}]},
        {"expr": "h:sum > 0", "eval_time": "3m", "exp_samples": []},  # histograms never compare
    ]}], rules)
    (res,) = run_rule_tests(path)
    assert res.ok, res.failures


def test_backtest_records_histograms(tmp_path: Path) -> None:
    """The backtest's recorded series carry histograms too: an alert on a recorded histogram."""
    from promlab.rules import backtest
    from promlab.rules.load import parse_rules
    from promlab.storage import MemoryStorage

    st = MemoryStorage()
    t0 = 1_700_000_000_000
    hists = [from_bucket_map(0, {0: 1.0 * (i + 1), 1: 2.0 * (i + 1)}, count=3.0 * (i + 1), sum=5.0 * (i + 1))
             for i in range(11)]
    st.add_histogram_series(Labels({"__name__": "h", "job": "a"}), [t0 + i * 60_000 for i in range(11)], hists)
    groups = parse_rules(
        "groups:\n- name: g\n  interval: 1m\n  rules:\n"
        "  - record: h:sum\n    expr: sum(h)\n"
        "  - alert: Many\n    expr: histogram_count(h:sum) > 20\n")
    episodes = backtest(groups, t0, t0 + 10 * 60_000, data=st)
    # count 3(i+1) > 20 from i = 6 on
    assert len(episodes) == 1
    assert episodes["alertname"].iloc[0] == "Many"
    assert episodes["firing_at"].iloc[0] == pd.Timestamp(t0 + 6 * 60_000, unit="ms", tz="UTC")
