"""The ``promlab`` command line, run in-process through ``main(argv)`` and once as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import realprom
from promlab import datasets
from promlab.cli import main
from promlab.datasets import DatasetSpec

REPO = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for cmd in ("demo", "import", "query", "scrape", "tsdb"):
        assert cmd in out


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("promlab ")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param([], "required", id="no-command"),
        pytest.param(["nosuch"], "invalid choice", id="unknown-command"),
        pytest.param(["query"], "expr", id="query-without-expr"),
        pytest.param(["import"], "file", id="import-without-file"),
        pytest.param(["tsdb"], "required", id="tsdb-without-subcommand"),
        pytest.param(["query", "up", "--format", "xml"], "invalid choice", id="bad-format"),
    ],
)
def test_usage_errors(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--start", "0"], "needs --start, --end and --step", id="partial-range"),
        pytest.param(["--time", "0", "--start", "0", "--end", "1", "--step", "1s"], "exclude", id="time-and-range"),
        pytest.param(["--time", "yesterday-ish"], "cannot parse", id="bad-time"),
        pytest.param(["--start", "0", "--end", "60", "--step", "fast"], "fast", id="bad-step"),
        pytest.param(["--data", "/nonexistent/promlab-store"], "no store at", id="missing-store"),
    ],
)
def test_query_argument_errors(capsys, argv, message):
    code, _, err = run(capsys, "query", "up", *argv)
    assert code == 1
    assert err.startswith("promlab query: ") and message in err


def test_import_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "import", str(tmp_path / "nope.om"), "--data", str(tmp_path / "d"))
    assert code == 1 and "no such file" in err


def test_tsdb_info_missing_store(capsys, tmp_path):
    code, _, err = run(capsys, "tsdb", "info", "--data", str(tmp_path / "nope"))
    assert code == 1 and err.startswith("promlab tsdb info: no store at")


def test_subprocess_help():
    proc = subprocess.run([sys.executable, "-m", "promlab", "--help"], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "usage: promlab" in proc.stdout


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A tiny standard dataset imported with ``promlab import``."""
    root = tmp_path_factory.mktemp("cli")
    info = datasets.generate(root / "tiny.om", DatasetSpec(hours=0.5, scale=0.02))
    code = main(["import", str(info.path), "--data", str(root / "store"), "--quiet"])
    assert code == 0
    return info, root / "store"


def test_import_prints_rate(capsys, tmp_path):
    info = datasets.generate(tmp_path / "t.om", DatasetSpec(hours=0.1, scale=0.01))
    code, out, _ = run(capsys, "import", str(info.path), "--data", str(tmp_path / "s"), "-q")
    assert code == 0
    assert "samples/s" in out


def test_tsdb_info(capsys, imported):
    info, store = imported
    code, out, _ = run(capsys, "tsdb", "info", "--data", str(store), "--json")
    assert code == 0
    got = json.loads(out)
    assert got["series"] == info.series
    assert got["samples"] == info.samples
    assert got["mint_ms"] == info.spec.start_ms and got["maxt_ms"] == info.spec.end_ms
    assert {"__name__", "instance", "job", "kind", "le", "method", "status"} <= set(got["label_names"])
    code, out, _ = run(capsys, "tsdb", "info", "--data", str(store))
    assert code == 0 and f"{info.series:,}" in out


def _require_query() -> None:
    import promlab

    if not hasattr(promlab, "query"):
        pytest.skip("promlab.query is not available yet")


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_instant_query(capsys, imported, fmt):
    _require_query()
    info, store = imported
    at = str(info.spec.end_ms / 1000)
    code, out, err = run(capsys, "query", "count(http_requests_total)", "--data", str(store), "--time", at,
                         "--format", fmt)
    assert code == 0, err
    n = str(info.spec.instances * 10)
    if fmt == "json":
        data = json.loads(out)
        assert data["resultType"] == "vector"
        assert data["result"][0]["value"][1] == n
    else:
        assert n in out


def test_range_query_csv(capsys, imported):
    _require_query()
    info, store = imported
    end = info.spec.end_ms / 1000
    code, out, err = run(capsys, "query", 'sum by (method) (http_requests_total)', "--data", str(store),
                         "--start", str(end - 300), "--end", str(end), "--step", "60s", "--format", "csv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert "timestamp" in lines[0] and "value" in lines[0] and "method" in lines[0]
    assert len(lines) == 1 + 2 * 6


def test_query_parse_error(capsys, imported):
    _require_query()
    _, store = imported
    code, _, err = run(capsys, "query", "sum(", "--data", str(store), "--time", "0")
    assert code == 1
    assert err.startswith("promlab query: ") and "parse error" in err


def test_import_reports_bad_line(capsys, tmp_path):
    bad = tmp_path / "bad.om"
    bad.write_text("# TYPE a gauge\na 1 1700000000\na{ 2 1700000015\n# EOF\n")
    code, _, err = run(capsys, "import", str(bad), "--data", str(tmp_path / "s"), "-q")
    assert code == 1
    assert err.startswith(f"promlab import: {bad}: line 3: ")
    assert err.rstrip().endswith("(nothing imported)")


def test_scrape_bad_config(capsys, tmp_path):
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("scrape_configs: [{job_name: x, scrape_interval: banana}]\n")
    code = main(["scrape", "--config", str(cfg), "--data", str(tmp_path / "s")])
    assert code == 1


@pytest.mark.realprom
def test_scrape_node_exporter(tmp_path):
    """``promlab scrape`` as a process: scrapes a real node_exporter into the store, stops on SIGTERM."""
    from promlab.model import Matcher, MatchType
    from promlab.storage import open_store

    realprom.require_binary("node_exporter")
    with realprom.node_exporter() as ne:
        cfg = tmp_path / "prometheus.yml"
        target = ne.url.removeprefix("http://")
        cfg.write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n"
                       f"  - job_name: node\n    static_configs: [{{targets: ['{target}']}}]\n")
        store_dir = tmp_path / "store"
        proc = subprocess.Popen([sys.executable, "-m", "promlab", "scrape", "--config", str(cfg),
                                 "--data", str(store_dir)], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            up = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and up is None:
                time.sleep(0.5)
                if not store_dir.is_dir():
                    continue
                with open_store(store_dir, readonly=True) as store:
                    q = store.querier(0, 2**62)
                    ss = q.select([Matcher(MatchType.EQUAL, "__name__", "up")])
                    q.close()
                if ss.num_samples:
                    up = ss.values[-1]
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=20)
    assert up == 1.0, out.decode(errors="replace")[-2000:]
    assert proc.returncode == 0
