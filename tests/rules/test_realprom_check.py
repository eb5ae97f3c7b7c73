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
