"""The real ``promtool check rules`` and ``promlab rules check`` agree: exit code, rule counts
and which files fail, on promtool's own rule files and ours."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from promlab.rules import check_files

SHARED = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "promtool" / "testdata"
OURS = Path(__file__).parent / "data"
# features.yml: promlab's parser reads experimental syntax Prometheus 2.42 does not; both fail
# it on its legacy-invalid record names, so the exit code still agrees.
# rules-bad.yml / rules.yml need the template engine (templates in annotations).


def _rule_files() -> list[Path]:
    files = sorted(OURS.glob("*.yml"))
    if SHARED.is_dir():
        files += [p for p in sorted(SHARED.glob("*.yml")) if re.search(r"^groups:", p.read_text(), re.M)]
    elif os.environ.get("CI") == "true":
        pytest.fail(f"{SHARED} is missing")
    return files


def _summary(lines: list[str]) -> list[str]:
    return [ln.strip() for ln in lines if re.match(r"\s+(SUCCESS|FAILED)", ln)]


@pytest.mark.parametrize("path", _rule_files(), ids=lambda p: p.name)
def test_promtool_agrees(path: Path, require_binary: Callable[[str], str]) -> None:
    promtool = require_binary("promtool")
    if "{{" in path.read_text():
        pytest.importorskip("promlab.rules.template", reason="template engine not built yet")
        from promlab.rules import template
        if not hasattr(template, "check_template"):
            pytest.skip("template engine not built yet")
    real = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    code, lines = check_files([path])
    assert code == real.returncode, (real.stdout, real.stderr, lines)
    assert _summary(lines) == _summary((real.stdout + real.stderr).splitlines())


# rulefmt decodes a rule file twice and promtool prints both failures: bad YAML twice (bytes
# that are not UTF-8 worded by libyaml's reader, without a line), a wrong top-level shape
# once per decoding with each decoding's Go type.
WHOLE_OUTPUT = {
    "syntax.yml": b"groups:\n- name: g\n  rules: [\n",
    "not-utf8.yml": b'groups:\n- name: "g\xc3("\n  rules: []\n',
    "groups-not-a-list.yml": b"groups: x\n",
    "not-a-mapping.yml": b"- a\n",
    "duplicates.yml": b"groups: [{name: g, rules: [{record: r, expr: '1'}, {record: r, expr: '2'}]}]\n",
    "good.yml": b"groups: [{name: g, rules: [{record: r, expr: '1'}]}]\n",
}


@pytest.mark.parametrize("name", sorted(WHOLE_OUTPUT))
def test_whole_output_agrees(name: str, tmp_path: Path, require_binary: Callable[[str], str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = require_binary("promtool")
    (tmp_path / name).write_bytes(WHOLE_OUTPUT[name])
    monkeypatch.chdir(tmp_path)
    # promtool writes the FAILED blocks to stderr, the rest to stdout, unbuffered: merged in order.
    real = subprocess.run([promtool, "check", "rules", name], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    code, lines = check_files([name])
    assert (code, "\n".join(lines) + "\n") == (real.returncode, real.stdout)


@pytest.mark.parametrize("args", [["good.yml", "nothere.yml"], ["good.yml", "d"]], ids=["missing", "directory"])
def test_bad_argument_checks_nothing(args: list[str], tmp_path: Path, require_binary: Callable[[str], str],
                                     monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """promtool refuses the whole command line when a path is missing or a directory."""
    from promlab.cli import main

    promtool = require_binary("promtool")
    (tmp_path / "good.yml").write_bytes(WHOLE_OUTPUT["good.yml"])
    (tmp_path / "d").mkdir()
    monkeypatch.chdir(tmp_path)
    real = subprocess.run([promtool, "check", "rules", *args], capture_output=True, text=True,
                          timeout=60, check=False)
    assert main(["rules", "check", *args]) == real.returncode == 1
    got = capsys.readouterr()
    assert (got.out, real.stdout) == ("", "")
    assert real.stderr.split(": error: ")[1].split(", try")[0] in got.err


@pytest.mark.parametrize("flags", [[], ["--lint=none"], ["--lint=all", "--lint-fatal"],
                                   ["--lint=bogus,none", "--lint-fatal"], ["--lint-fatal"]],
                         ids=["default", "none", "all-fatal", "unknown-item", "fatal"])
def test_lint_flags_agree(flags: list[str], tmp_path: Path, require_binary: Callable[[str], str],
                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``--lint`` is a comma-separated list (all, duplicate-rules, none; an unknown item is
    warned about); duplicates count alerts and records by name and label set, across groups."""
    from promlab.cli import main

    promtool = require_binary("promtool")
    (tmp_path / "dup.yml").write_text("""
groups:
- name: g
  rules:
  - {record: r, expr: '1', labels: {b: "2", a: "1"}}
  - {record: r, expr: '2', labels: {a: "1", b: "2"}}
  - {record: q, expr: '2'}
  - {alert: q, expr: '2'}
- name: h
  rules: [{record: r, expr: '2', labels: {a: "1"}}]
""")
    monkeypatch.chdir(tmp_path)
    real = subprocess.run([promtool, "check", "rules", *flags, "dup.yml"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    code = main(["rules", "check", *flags, "dup.yml"])
    assert (code, capsys.readouterr().out) == (real.returncode, real.stdout)


@pytest.mark.parametrize(("promtool_cmd", "promlab_cmd"), [(["check", "rules"], ["rules", "check"]),
                                                          (["test", "rules"], ["test", "rules"])],
                         ids=["check-rules", "test-rules"])
def test_enable_feature_warnings_agree(promtool_cmd: list[str], promlab_cmd: list[str], tmp_path: Path,
                                       require_binary: Callable[[str], str], monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """promtool 2.42's --enable-feature: @ and negative offsets are stable (a warning each),
    no-default-scrape-port is taken, any other name is unknown (a warning); empty items skipped."""
    from promlab.cli import main

    promtool = require_binary("promtool")
    (tmp_path / "f.yml").write_text("groups: []\n" if promtool_cmd[0] == "check" else "tests: []\n")
    monkeypatch.chdir(tmp_path)
    flags = ["--enable-feature=foo,,promql-at-modifier", "--enable-feature=",
             "--enable-feature=promql-negative-offset,promql-experimental-functions,no-default-scrape-port"]
    real = subprocess.run([promtool, *promtool_cmd, *flags, "f.yml"], capture_output=True, text=True,
                          timeout=60, check=False)
    code = main([*promlab_cmd, *flags, "f.yml"])
    assert (code, capsys.readouterr().out) == (real.returncode, real.stdout)
