"""%promql / %%promql / %promlab and completion through a real IPython InteractiveShell."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from promlab import Labels, MemoryStorage, Session
from promlab.model import now_ms
from promlab.notebook import current_state, use_session
from tests.ipyshell import close_shell


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A fresh shell with the extension loaded over a small memory store."""
    sh = InteractiveShell.instance()
    sh.run_line_magic("load_ext", "promlab")
    st = MemoryStorage()
    # Up to now as the test runs (the magics query at "now"; a time taken when the module was
    # collected is minutes old by then in a long run: past the 5 m lookback).
    end_ms = now_ms() // 15_000 * 15_000
    ts = list(range(end_ms - 3_600_000, end_ms + 1, 15_000))
    for job in ("a", "b"):
        for code in ("200", "500"):
            st.add_series(Labels({"__name__": "http_requests_total", "job": job, "code": code}),
                          ts, np.arange(len(ts), dtype=float).tolist())
    session = Session(st)
    use_session(session, sh)
    try:
        yield sh
    finally:
        sh.run_line_magic("unload_ext", "promlab")
        session.close()  # the test's own session (and a server a test started on it)
        close_shell(sh)


@pytest.mark.parametrize(("cell", "rows", "columns"), [
    pytest.param("%promql sum by (job) (http_requests_total)", 2,
                 ["job", "timestamp", "value"], id="instant"),
    pytest.param("%promql --range 10m --step 1m http_requests_total{job=\"a\"}", 22,
                 ["__name__", "code", "job", "timestamp", "value"], id="range"),
    pytest.param("%promql --wide --range=10m --step='1m' http_requests_total", 11,
                 ['http_requests_total{code="200", job="a"}', 'http_requests_total{code="200", job="b"}',
                  'http_requests_total{code="500", job="a"}', 'http_requests_total{code="500", job="b"}'],
                 id="wide"),
    pytest.param("%%promql --time now\nsum by (code) (\n  http_requests_total\n)", 2,
                 ["code", "timestamp", "value"], id="cell"),
])
def test_promql_returns_frames(shell: InteractiveShell, cell: str, rows: int,
                               columns: list[str]) -> None:
    result = shell.run_cell(cell)
    assert result.error_in_exec is None
    df = result.result
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == columns
    assert len(df) == rows


def test_interpolation_and_output(shell: InteractiveShell) -> None:
    shell.user_ns["window"] = "5m"
    shell.user_ns["job"] = "b"
    shell.run_cell('%promql -o out rate(http_requests_total{job="{job}"}[{window}])')
    out = shell.user_ns["out"]
    assert out.attrs["query"] == 'rate(http_requests_total{job="b"}[5m])'
    assert set(out["job"]) == {"b"}


@pytest.mark.parametrize(("cell", "expected"), [
    pytest.param("%promql sum(rate(x[5m])", "sum(rate(x[5m])\n               ^\n1:16: parse error",
                 id="parse-error-caret"),
    pytest.param("%promql --range 1h --time now up", "--time excludes", id="bad-options"),
    pytest.param("%promql", "no expression", id="empty"),
    pytest.param("%promlab frobnicate", "unknown command", id="unknown-command"),
    # PromQL would read --rang as -(-rang): a mistyped option must not become a silent query.
    pytest.param("%promql --rang 1h up", "unknown option --rang", id="unknown-option"),
    pytest.param("%promql --stp=1m up", "unknown option --stp=1m", id="unknown-with-equals"),
])
def test_errors_without_traceback(shell: InteractiveShell, capsys: pytest.CaptureFixture[str],
                                  cell: str, expected: str) -> None:
    result = shell.run_cell(cell)
    captured = capsys.readouterr()
    assert result.error_in_exec is None
    assert expected in captured.err
    assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("cell", ["%promql --help", "%promql -h", "%promql --wide --help up"])
def test_help_prints_usage(shell: InteractiveShell, capsys: pytest.CaptureFixture[str],
                           cell: str) -> None:
    result = shell.run_cell(cell)
    out = capsys.readouterr().out
    assert result.result is None
    assert "--range D [--end E]" in out and "-o NAME" in out


def test_expression_after_double_dash(shell: InteractiveShell) -> None:
    result = shell.run_cell("%promql -- --http_requests_total{job=\"a\",code=\"200\"}")
    assert result.error_in_exec is None
    assert result.result["value"].tolist() == [240.0]


@pytest.mark.parametrize(("line", "expected"), [
    pytest.param("%promql rate(http_re", ["http_requests_total"], id="metric"),
    pytest.param('%promql http_requests_total{code="', ["200", "500"], id="label-value"),
    pytest.param("%promql http_requests_total{co", ["code"], id="label-name"),
    pytest.param("%promql sum by (jo", ["job"], id="grouping"),
    pytest.param("%promql --range 1h histogram_qu", ["histogram_quantile", "histogram_quantiles"],
                 id="function"),
])
def test_completion(shell: InteractiveShell, line: str, expected: list[str]) -> None:
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        found = list(shell.Completer.completions(line, len(line)))
    completed = [line[:c.start] + c.text + line[c.end:] for c in found]
    assert len(completed) == len(expected)
    for text, candidate in zip(completed, expected, strict=True):
        assert text.endswith(candidate)
        assert text[: len(text) - len(candidate)] == line[: len(text) - len(candidate)]


def test_unload_stops_scraper_and_removes_magics(tmp_path, free_port: int) -> None:
    sh = InteractiveShell.instance()
    try:
        sh.run_line_magic("load_ext", "promlab")
        sh.run_line_magic("promlab", f"data {tmp_path / 'data'}")
        cfg = tmp_path / "prometheus.yml"
        cfg.write_text("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: x\n"
                       f"    static_configs: [{{targets: ['127.0.0.1:{free_port}']}}]\n")
        before = set(threading.enumerate())
        sh.run_line_magic("promlab", f"scrape start {cfg}")
        state = current_state(sh)
        assert state is not None and state.session.scrape.running
        started = set(threading.enumerate()) - before
        assert started, "the scraper runs on threads of its own"
        sh.run_line_magic("unload_ext", "promlab")
        assert "promql" not in sh.magics_manager.magics["line"]
        assert current_state(sh) is None
        for t in started:
            t.join(5)
        assert [t.name for t in started if t.is_alive()] == []
    finally:
        close_shell(sh)


def test_serve_answers_queries_and_stops_on_unload(tmp_path) -> None:
    import httpx

    sh = InteractiveShell.instance()
    try:
        sh.run_line_magic("load_ext", "promlab")
        sh.run_line_magic("promlab", f"data {tmp_path / 'data'}")
        state = current_state(sh)
        assert state is not None
        if not hasattr(state.session, "serve"):
            pytest.skip("this promlab has no HTTP API")
        sh.run_line_magic("promlab", "serve --listen 127.0.0.1:0")
        url = state.session.server.url
        assert httpx.get(f"{url}/api/v1/query", params={"query": "1+1"}).json()["data"][
            "result"][1] == "2"
        sh.run_line_magic("unload_ext", "promlab")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/api/v1/query", params={"query": "1"}, timeout=2)
    finally:
        close_shell(sh)


def test_serve_stop_and_status(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    import httpx

    shell.run_line_magic("promlab", "serve --listen 127.0.0.1:0")
    state = current_state(shell)
    assert state is not None and state.session.server is not None
    url = state.session.server.url
    shell.run_line_magic("promlab", "serve --listen 127.0.0.1:0")  # already serving: an error
    shell.run_line_magic("promlab", "serve status")
    shell.run_line_magic("promlab", "serve --listen")  # no address: usage, no traceback
    out = capsys.readouterr()
    assert "%promlab serve stop" in out.err and "usage: %promlab serve" in out.err
    assert f"serving the Prometheus API at {url}" in out.out
    assert httpx.get(f"{url}/-/healthy").status_code == 200
    shell.run_line_magic("promlab", "serve stop")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/-/healthy", timeout=2)
    shell.run_line_magic("promlab", "serve status")
    assert "not serving" in capsys.readouterr().out
    shell.run_line_magic("promlab", "serve --listen 127.0.0.1:0")  # serving again after a stop
    assert state.session.server.running
