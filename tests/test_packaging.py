"""Packaging drift checks: dependency lists, ``__all__``, entry points, lint, the CI command."""

from __future__ import annotations

import importlib
import pkgutil
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

import promlab

REPO = Path(__file__).resolve().parents[1]


def _normalize(req: str) -> str:
    """``Foo_Bar >= 1`` → ``foo-bar>=1`` (PEP 503 names, no spaces)."""
    req = req.replace(" ", "")
    m = re.match(r"^([A-Za-z0-9._-]+)(.*)$", req)
    assert m, req
    return re.sub(r"[-_.]+", "-", m[1]).lower() + m[2]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda
    want = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    assert sorted(map(_normalize, pip)) == sorted(map(_normalize, want))


def test_console_script():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["promlab"] == "promlab.cli:main"


def test_top_level_all_exists():
    assert len(set(promlab.__all__)) == len(promlab.__all__)
    missing = [name for name in promlab.__all__ if not hasattr(promlab, name)]
    assert not missing


def _modules() -> list[str]:
    names = (m.name for m in pkgutil.walk_packages(promlab.__path__, "promlab."))
    return sorted(n for n in names if not n.endswith(".__main__"))  # importing those runs them


@pytest.mark.parametrize("name", _modules())
def test_module_all_exists(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if (e.name or "").startswith("promlab"):
            raise
        pytest.skip(f"optional dependency {e.name} is not installed")
    exported = getattr(module, "__all__", None)
    if exported is None:
        return
    assert len(set(exported)) == len(exported), "duplicates in __all__"
    assert [n for n in exported if not hasattr(module, n)] == []


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed (pip install -e .[dev])")
    proc = subprocess.run([exe, "check", "--no-cache", "--output-format", "concise", "."], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S)
    assert first_block, "README opens with a code block of commands"
    commands = [ln.strip() for ln in first_block[1].splitlines() if ln.strip() and not ln.startswith("#")]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "export CI=true" in ci
    assert re.search(r"^exec bash scripts/test\.sh$", ci, re.M)
