"""Rule files: parsing, validation messages with positions, promtool-style check output."""

from __future__ import annotations

from pathlib import Path

import pytest

from promlab.errors import ConfigError
from promlab.rules import (
    AlertingRule,
    RecordingRule,
    check_files,
    load_rules,
    parse_rules,
    validate_rules,
)

DATA = Path(__file__).parent / "data"


def test_load_good_file() -> None:
    (g,) = load_rules(DATA / "good.yml")
    assert (g.name, g.interval_ms, g.file) == ("g", 30_000, str(DATA / "good.yml"))
    rec, alert = g.rules
    assert rec == RecordingRule(name="job:up:sum", expr="sum by (job) (up)")
    assert isinstance(alert, AlertingRule)
    assert (alert.for_ms, alert.keep_firing_for_ms, dict(alert.labels)) == (120_000, 60_000, {"severity": "page"})


def test_group_fields() -> None:
    (g,) = parse_rules("groups:\n- name: g\n  limit: 3\n  query_offset: 1m\n  labels: {team: a}\n  rules: []\n")
    assert (g.limit, g.query_offset_ms, dict(g.labels), g.interval_ms) == (3, 60_000, {"team": "a"}, 60_000)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("groups:\n- name: g\n  rules:\n  - record: x\n    expr: sum(up\n",
                 '5:11: group "g", rule 1, "x": could not parse expression: 1:7: parse error: unclosed left parenthesis',
                 id="promql-position"),
    pytest.param("groups:\n- name: a\n  rules: []\n- name: a\n  rules: []\n",
                 '4:3: groupname: "a" is repeated in the same file', id="duplicate-group"),
    pytest.param("groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    for: 1m\n",
                 '4:13: group "g", rule 1, "x": invalid field \'for\' in recording rule', id="for-on-record"),
    pytest.param("groups:\n- name: g\n  rules:\n  - record: a-b\n    expr: up\n",
                 '4:13: group "g", rule 1, "a-b": invalid recording rule name: a-b', id="bad-record-name"),
    pytest.param("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      __name__: x\n",
                 'group "g", rule 1, "A": invalid label name: __name__', id="bad-label-name"),
    pytest.param("groups:\n- name: g\n  rules:\n  - expr: up\n",
                 '0:0: group "g", rule 1, "": one of \'record\' or \'alert\' must be set', id="no-kind"),
    pytest.param("groups:\n- name: g\n  owner: me\n",
                 "yaml: unmarshal errors:\n  line 3: field owner not found in type rulefmt.RuleGroup",
                 id="unknown-field"),
    pytest.param("groups:\n- name: g\n  limit: x\n",
                 "yaml: unmarshal errors:\n  line 3: cannot unmarshal !!str `x` into int", id="bad-int"),
    pytest.param("groups:\n- name: g\n  interval: 1x\n", 'not a valid duration string: "1x"',
                 id="bad-duration"),
    pytest.param("groups: [\n", "yaml: line 1: did not find expected node content",
                 id="yaml-syntax"),
])
def test_errors(text: str, message: str) -> None:
    _, errors = validate_rules(text, file="f.yml")
    assert [e.reason for e in errors][:1] == [message]
    assert errors[0].file == "f.yml"
    with pytest.raises(ConfigError):
        parse_rules(text)


def test_utf8_names_accepted_when_asked() -> None:
    text = "groups:\n- name: g\n  rules:\n  - record: a-b\n    expr: up\n"
    assert validate_rules(text, name_validation="utf8")[1] == []


@pytest.mark.parametrize(("files", "code", "summary"), [
    pytest.param(["good.yml"], 0, ["  SUCCESS: 2 rules found"], id="good"),
    pytest.param(["good.yml", "bad_expr.yml"], 1, ["  SUCCESS: 2 rules found", "  FAILED:"], id="one-bad"),
    pytest.param(["dup_group.yml"], 1, ["  FAILED:"], id="dup-group"),
])
def test_check_files(files: list[str], code: int, summary: list[str]) -> None:
    got_code, lines = check_files([DATA / f for f in files])
    assert got_code == code
    assert [ln for ln in lines if ln.startswith("  ")] == summary
    assert [ln for ln in lines if ln.startswith("Checking")] == [f"Checking {DATA / f}" for f in files]


def test_duplicate_rules_are_lint_only(tmp_path: Path) -> None:
    f = tmp_path / "dups.yml"
    f.write_text("groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n  - record: x\n    expr: up\n")
    code, lines = check_files([f])
    assert code == 0 and lines[1:3] == ["  FAILED:", "lint error 1 duplicate rule(s) found.\nMetric: x\n"
                                        "Label(s):\nMight cause inconsistency while recording expressions"]
    assert check_files([f], lint_fatal=True)[0] == 3
