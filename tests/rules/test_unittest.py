"""``promlab test rules``: promtool's own unit-test cases (the table of
../shared/conformance/promtool/README.md), agreement with the real promtool 2.42 on our own
files, the pytest helper, and ``--from-history``."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from promlab.cli import main
from promlab.model import Labels
from promlab.model.histogram import FloatHistogram
from promlab.rules.unittest import (
    assert_rule_tests_pass,
    parse_test_file,
    rules_unit_test,
    run_rule_tests,
)
from promlab.rules.unittest.history import compress, history_test_file
from promlab.storage import MemoryStorage

SHARED = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "promtool" / "testdata"
OURS = Path(__file__).parent / "data" / "unittest"


def _shared() -> Path:
    if not SHARED.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{SHARED} is missing")
        pytest.skip(f"{SHARED} is missing (the shared conformance corpus)")
    return SHARED


def _run(files: list[Path], **kw: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = rules_unit_test(files, stdout=out, stderr=err, **kw)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


# The table of ../shared/conformance/promtool/README.md (promtool's unittest_test.go):
# (id, files, --run, --ignore-unknown-fields, expected exit code).
# promlab always enables the @ modifier and negative offsets, so the README's "with @ disabled"
# / "negative offset disabled" rows (promtool: 1) exit 0 here, as promtool's enabled rows do;
# they are listed once, with 0, under their "enabled" ids.
TABLE = [
    ("unittest", ["unittest.yml"], None, False, 0),
    ("long-period", ["long-period.yml"], None, False, 0),
    ("bad-input-series", ["bad-input-series.yml"], None, False, 1),
    ("bad-promql", ["bad-promql.yml"], None, False, 1),
    ("bad-rules-syntax", ["bad-rules-syntax-test.yml"], None, False, 1),
    ("bad-rules-error", ["bad-rules-error-test.yml"], None, False, 1),
    ("failing", ["failing.yml"], None, False, 1),
    ("at-modifier-enabled", ["at-modifier-test.yml"], None, False, 0),
    ("negative-offset-enabled", ["negative-offset-test.yml"], None, False, 0),
    ("no-test-group-interval", ["no-test-group-interval.yml"], None, False, 0),
    ("start-time", ["start-time-test.yml"], None, False, 0),
    ("rules_run-all", ["rules_run.yml"], None, False, 1),
    ("rules_run-correct-and-wrong", ["rules_run.yml"], ["correct", "wrong"], False, 1),
    ("rules_run-correct", ["rules_run.yml"], ["correct"], False, 0),
    ("rules_run-wrong", ["rules_run.yml"], ["wrong"], False, 1),
    ("rules_run_extrafields-ignore", ["rules_run_extrafields.yml"], None, True, 0),
    ("rules_run_extrafields-strict", ["rules_run_extrafields.yml"], None, False, 1),
    ("rules_run_fuzzy-correct", ["rules_run_fuzzy.yml"], ["correct"], False, 0),
    ("rules_run_fuzzy-wrong", ["rules_run_fuzzy.yml"], ["wrong"], False, 1),
    ("rules_run_no_fuzzy", ["rules_run_no_fuzzy.yml"], None, False, 1),
    # promtool's JUnit case: the @ / negative-offset / start-time files together fail (they
    # include failing ones only under promtool's disabled options; here bad ones are added).
    ("several-files", ["at-modifier-test.yml", "negative-offset-test.yml", "failing.yml"],
     None, False, 1),
]


@pytest.mark.parametrize(("files", "run", "ignore", "want"), [t[1:] for t in TABLE],
                         ids=[t[0] for t in TABLE])
def test_promtool_table(files: list[str], run: list[str] | None, ignore: bool, want: int) -> None:
    base = _shared()
    code, out, err = _run([base / f for f in files], run=run, ignore_unknown_fields=ignore)
    assert code == want, out + err
    assert out.count("Unit Testing:  ") == len(files)
    if want == 0:
        assert "FAILED" not in err and out.count("  SUCCESS") == len(files)
    else:
        assert "  FAILED:" in err


@pytest.mark.parametrize(("file", "needle"), [
    ("bad-rules-error-test.yml", "    rule: joined, time: 0s, err: found duplicate series for the match group"),
    ("bad-rules-syntax-test.yml", '"x": could not parse expression: 1:7: parse error: unexpected end of input'),
    ("bad-promql.yml", '    expr: "join_1 + on(a) join_2", time: 0s, err: found duplicate series'),
    ("bad-input-series.yml", "2:48: parse error:"),  # Prometheus 3 numbering (2.42: 1:48)
    ("rules_run_no_fuzzy.yml", "        got: {__name__=\"test_low\"} 2.9999999999999996E+00"),
], ids=lambda v: str(v)[:24])
def test_promtool_failure_text(file: str, needle: str) -> None:
    code, _, err = _run([_shared() / file])
    assert code == 1
    assert needle in err


def test_shared_unittest_checks_its_native_histograms() -> None:
    # unittest.yml's 3 histogram expectations are loaded and compared (Prometheus 3), not skipped.
    (res,) = run_rule_tests(_shared() / "unittest.yml")
    assert res.ok, [e for g in res.groups for e in g.errors]
    assert not res.warnings and not any(g.warnings for g in res.groups)
    seen = {expr for g in res.groups for (_, expr), samples in g.observed_samples.items()
            if any(isinstance(v, FloatHistogram) for _, v in samples)}
    assert seen == {"test_histogram", "test_histogram_repeat", "test_histogram_increase"}


# --------------------------------------------------------------------------- real promtool


def _normalize(text: str) -> str:
    # Many-to-many errors list the duplicates in hash order in Go: compare them as sets.
    def sort_list(m: re.Match[str]) -> str:
        return "operation: [" + ", ".join(sorted(re.findall(r"\{[^{}]*\}", m.group(1)))) + "]"
    return re.sub(r"operation: \[(.*?)\];", lambda m: sort_list(m) + ";", text)


OUR_FILES = sorted(p.name for p in OURS.glob("*.yml"))
# promtool 2.42-compatible files of the shared corpus (no --run, fuzzy_compare or start_timestamp).
SHARED_FOR_2_42 = ["failing.yml", "bad-promql.yml", "bad-rules-error-test.yml",
                   "bad-rules-syntax-test.yml", "rules_run.yml", "at-modifier-test.yml"]


def test_our_files_cover_passing_and_failing() -> None:
    expected = {"alerts_for.yml": 0, "keep_firing.yml": 0, "templates.yml": 0,
                "recording_feeds_alert.yml": 0, "eval_interval.yml": 0, "failing_alerts.yml": 1, "failing_exprs.yml": 1,
                "rule_error.yml": 1}
    assert set(OUR_FILES) >= set(expected)
    for name, want in expected.items():
        assert _run([OURS / name])[0] == want, name


@pytest.mark.parametrize("where,name", [("ours", f) for f in OUR_FILES]
                         + [("shared", f) for f in SHARED_FOR_2_42],
                         ids=lambda v: str(v))
def test_real_promtool_agrees(where: str, name: str, require_binary: Callable[[str], str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = require_binary("promtool")
    base = OURS if where == "ours" else _shared()
    real = subprocess.run([promtool, "test", "rules", name], cwd=base, capture_output=True,
                          text=True, timeout=120, check=False)
    monkeypatch.chdir(base)
    code, out, err = _run([Path(name)])
    assert code == real.returncode, (real.stdout, real.stderr, out, err)
    assert out == real.stdout
    assert _normalize(err) == _normalize(real.stderr), (real.stderr, err)


# --------------------------------------------------------------------------- API, CLI, helper


def test_assert_rule_tests_pass() -> None:
    assert_rule_tests_pass(OURS / "alerts_for.yml", OURS / "keep_firing.yml")
    with pytest.raises(AssertionError, match=r"alertname: Flapping, time: 4m"):
        assert_rule_tests_pass(OURS / "failing_alerts.yml")


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "rules", str(OURS / "alerts_for.yml")]) == 0
    assert "  SUCCESS" in capsys.readouterr().out
    assert main(["test", "rules", str(OURS / "failing_alerts.yml"), "--run", "^wrong"]) == 1
    err = capsys.readouterr().err
    assert "name: wrong alerts" in err and "Flapping" not in err
    assert main(["test", "rules", str(OURS / "failing_alerts.yml"), "--diff"]) == 1
    assert "        diff: " in capsys.readouterr().err
    assert main(["test", "rules"]) == 1


def test_debug_dump(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "rules", "--debug", str(OURS / "keep_firing.yml")]) == 0
    err = capsys.readouterr().err
    assert "DEBUG: Starting test keep firing" in err
    assert 'ALERTS{alertname="Flapping"' in err or '{__name__="ALERTS", alertname="Flapping"' in err


@pytest.mark.parametrize(("text", "message"), [
    ("tests:\n- nope: 1\n", "line 2: field nope not found in type main.testGroup"),
    ("evaluation_interval: 5x\n", 'unknown unit "x"'),
    ("tests:\n- interval: [1]\n", "line 2: cannot unmarshal !!seq into string"),
], ids=["unknown-field", "bad-duration", "wrong-type"])
def test_strict_yaml(text: str, message: str, tmp_path: Path) -> None:
    p = tmp_path / "t.yml"
    p.write_text(text)
    code, _, err = _run([p])
    assert code == 1 and message in err


def test_group_eval_order_repeated(tmp_path: Path) -> None:
    p = tmp_path / "t.yml"
    p.write_text("group_eval_order: [a, a]\ntests: []\n")
    assert "group name repeated in evaluation order: a" in _run([p])[2]


def test_values_keep_their_text() -> None:
    f = parse_test_file("tests:\n- input_series:\n  - {series: x, values: 2.9999999999999996}\n")
    assert f.tests[0].input_series[0].values == "2.9999999999999996"


# --------------------------------------------------------------------------- --from-history


@pytest.mark.parametrize(("values", "text"), [
    ([1.0, 2.0, 3.0, 4.0], "1+1x3"),
    ([5.0, 5.0, 5.0], "5x2"),
    ([1.0, 2.0], "1 2"),
    ([None, None, None, 1.0], "_x3 1"),
    ([0.1, 0.2, 0.3], "0.1 0.2 0.3"),  # 0.2 + 0.1 != 0.3: no run
    ([0.1, 0.2, 0.30000000000000004, 0.4], "0.1+0.1x3"),
    ([10.0, 8.0, 6.0, float("nan")], "10-2x2 NaN"),
], ids=["ramp", "flat", "short", "gaps", "float-rounding", "float-run", "down"])
def test_compress(values: list[float | None], text: str) -> None:
    from promlab.promql.promqltest.series import parse_values

    assert compress(values) == text
    back = parse_values(text)
    assert [repr(v) for v in back] == [repr(v) for v in values]


def test_history_file_round_trip(tmp_path: Path) -> None:
    st = MemoryStorage()
    t0 = 1_700_000_000_000
    up = [1.0] * 5 + [0.0] * 10
    st.add_series(Labels({"__name__": "up", "job": "node", "instance": "a:9100"}),
                  [t0 + i * 60_000 + 7 for i in range(15)], up)
    st.add_series(Labels({"__name__": "other", "job": "x"}), [t0], [1.0])
    text = history_test_file(st, [str(OURS / "rules" / "alerts.yml")], start_ms=t0,
                             end_ms=t0 + 14 * 60_000, out_dir=str(tmp_path))
    doc = yaml.safe_load(text)
    (test,) = doc["tests"]
    assert test["input_series"] == [{"series": 'up{instance="a:9100", job="node"}', "values": "_ 1x4 0x8"}]
    down = [t for t in test["alert_rule_test"] if t["alertname"] == "InstanceDown"]
    assert down[0]["eval_time"] == "14m"
    assert down[0]["exp_alerts"][0]["exp_labels"] == {"instance": "a:9100", "job": "node", "severity": "page"}
    out = tmp_path / "generated.yml"
    out.write_text(text)
    assert_rule_tests_pass(out)


def test_cli_from_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from promlab.storage import open_store

    with open_store(tmp_path / "data") as st:
        app = st.appender()
        for i in range(12):
            app.append(Labels({"__name__": "flaky", "instance": "x"}), i * 60_000, float(i % 2))
        app.commit()
    out = tmp_path / "t.yml"
    code = main(["test", "rules", "--from-history", str(tmp_path / "data"), "--start", "0",
                 "--end", "660", "--rules", str(OURS / "rules" / "alerts.yml"), "-o", str(out),
                 "--relative"])
    assert code == 0, capsys.readouterr()
    doc = yaml.safe_load(out.read_text())
    assert "start_timestamp" not in doc["tests"][0]
    assert doc["tests"][0]["input_series"][0]["values"] == "0 1 0 1 0 1 0 1 0 1 0 1"
    assert main(["test", "rules", str(out)]) == 0


@pytest.mark.parametrize(("subquery", "needle"), [
    # 1ms default step over an hour: 3.6M sub-steps, refused before the grid is built.
    pytest.param("max_over_time(rate(x[5m])[1h:])",
                 "rule: r, time: 0s, err: query processing would load too many samples into memory "
                 "in query execution", id="default-step-hour"),
    pytest.param("max_over_time(x[1h:1ms])",
                 "rule: r, time: 0s, err: query processing would load too many samples into memory "
                 "in query execution", id="explicit-step-hour"),
])
def test_huge_subquery_grid_fails_the_rule(subquery: str, needle: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(f"groups:\n- name: g\n  rules:\n  - record: r\n    expr: {subquery}\n")
    (tmp_path / "test.yml").write_text(
        "rule_files: [rules.yml]\nevaluation_interval: 1ms\ntests:\n- interval: 1m\n"
        "  input_series: [{series: x, values: '0+1x10'}]\n"
        "  promql_expr_test: [{expr: r, eval_time: 1m}]\n")
    code, _, err = _run([tmp_path / "test.yml"])
    assert code == 1
    assert needle in err
