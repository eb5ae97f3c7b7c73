"""The installed package stands alone: a wheel, installed into a fresh venv outside the checkout.

The wheel is built from a copy of the working tree's ``pyproject.toml``, ``README.md``, ``notebooks/*.ipynb`` and
``promlab/`` (so the build leaves nothing in the checkout). The venv gets the wheel alone; its
dependencies come from the checkout's venv through a ``.pth`` line naming that venv's
site-packages, which puts them on ``sys.path`` without running that directory's own ``.pth``
files (the editable install of the checkout among them). Every command runs with the temporary
directory as its working directory and without ``PYTHONPATH``, so neither ``benchmarks/`` nor the
checkout's ``promlab/`` can be imported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from promlab.demo import find_node_exporter

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    root: Path
    wheel: Path
    python: Path
    promlab: Path
    env: dict[str, str]

    def run(self, *args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(a) for a in args], cwd=self.root, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)


def _build_wheel(root: Path) -> Path:
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "promlab", src / "promlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (src / "notebooks").mkdir()
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        shutil.copy2(nb, src / "notebooks" / nb.name)
    out = root / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(src)],
                          cwd=root, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("promlab-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    assert not root.resolve().is_relative_to(REPO)
    wheel = _build_wheel(root)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    (Path(site) / "_promlab_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env |= {"XDG_CACHE_HOME": str(root / "cache"), "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg"}
    return Installed(root, wheel, python, venv / "bin" / "promlab", env)


def test_wheel_contents(installed):
    with zipfile.ZipFile(installed.wheel) as z:
        names = z.namelist()
    want = {p.relative_to(REPO).as_posix() for p in (REPO / "promlab").rglob("*.py") if "__pycache__" not in p.parts}
    have = {n for n in names if n.endswith(".py")}
    assert have == want
    assert not [n for n in names if n.startswith(("benchmarks/", "tests/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(installed.wheel) as z:
        assert "promlab = promlab.cli:main" in z.read(entry_points).decode()


@pytest.mark.parametrize(("code", "want_rc", "want"), [
    pytest.param("import promlab; print(promlab.__file__)", 0, "/venv/lib/", id="promlab-from-venv"),
    pytest.param("import promlab.datasets, promlab.demo, promlab.storage.inspect; print('ok')", 0, "ok",
                 id="demo-modules"),
    pytest.param("import benchmarks", 1, "No module named 'benchmarks'", id="no-benchmarks"),
    pytest.param("from promlab.demo.lab import find_notebooks; print(find_notebooks())", 0,
                 "/venv/share/promlab/notebooks", id="demo-notebooks-installed"),
])
def test_imports(installed, code, want_rc, want):
    proc = installed.run(installed.python, "-c", code)
    assert proc.returncode == want_rc, proc.stderr
    assert want in proc.stdout + proc.stderr
    if want_rc == 0 and "__file__" in code:
        assert Path(proc.stdout.strip()).resolve().is_relative_to(installed.root.resolve())


def test_demo_and_query_from_the_wheel(installed):
    if find_node_exporter() is None and os.environ.get("CI") == "true":
        pytest.fail("prometheus-node-exporter is not installed (CI=true)")
    data = installed.root / "data"
    proc = installed.run(installed.promlab, "demo", "--quick", "--data", data, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-2000:]
    assert out.rstrip().endswith("demo done")
    assert "FAILED" not in out and "skipped" not in out
    assert re.search(r"\[3/6\] importing .*\n.*standard-v\d+-h0\.5-s0\.05-seed42\.om: ", out)
    assert re.search(r"imported [\d,]+ samples of [\d,]+ series", out)
    assert "host-00" in out  # the topk over the imported dataset
    # The dataset is cached in the user cache dir (XDG_CACHE_HOME here), not in a checkout.
    assert [p.name for p in (installed.root / "cache" / "promlab").glob("*.om")] == [
        "standard-v2-h0.5-s0.05-seed42.om"]
    assert (data / "demo.png").stat().st_size > 10_000

    # The query the demo suggests: `up` at the last scrape (its series end with staleness markers).
    at = re.search(r"promlab query 'up' --data \S+ --time (\S+)", out)
    assert at, out
    q = installed.run(installed.promlab, "query", "up", "--data", data, "--time", at[1], "--format", "csv", "-q")
    assert q.returncode == 0, q.stderr
    header, *rows = q.stdout.splitlines()
    assert header.split(",")[:3] == ["__name__", "instance", "job"]
    jobs = {r.split(",")[2]: float(r.split(",")[-1]) for r in rows}
    assert jobs.get("app") == 1.0
    if find_node_exporter() is not None:
        assert jobs.get("node") == 1.0

    # Plain `promlab query up` (at now): exits 0; the series are stale, so empty or all up.
    plain = installed.run(installed.promlab, "query", "up", "--data", data, "-q")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "(empty result)" or "app" in plain.stdout

    info = installed.run(installed.promlab, "tsdb", "info", "--data", data, "-q")
    assert info.returncode == 0, info.stderr
    assert re.search(r"samples:\s+[\d,]+", info.stdout)
    assert re.search(r"label names: .*\b__name__\b", info.stdout)
