"""The example notebooks in JupyterLab in a real headless Chromium, driven by Playwright.

Opens ``quickstart.ipynb`` on a temporary copy, runs all cells, uses the explorer (types a
query, presses Run, waits for the plot image to load); opens ``alert-prototyping.ipynb``, runs
all cells and checks the rule lab (its timeline image loads, a firing episode row shows, a
higher threshold typed into it and Backtest leaves fewer firing rows). Screenshots go under
``$PROMLAB_ARTIFACTS`` (default: the test's tmp dir). Fails when the widget manager is missing
(JupyterLab then shows "Loading widget..." or the widget's repr instead of the widget). Without
``/usr/bin/chromium`` the test skips, and fails under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = "/usr/bin/chromium"
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
QUERY = "sum by (method) (rate(demo_requests_total[10s]))"


def _need_chromium() -> None:
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing (Debian package chromium)")
        pytest.skip(f"{CHROMIUM} is missing (Debian package chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _poll(page: Any, js: str, timeout_s: float) -> bool:
    """Evaluate ``js`` every 0.25 s until it is true; False after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if page.evaluate(js):
            return True
        page.wait_for_timeout(250)
    return bool(page.evaluate(js))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab on a copy of the notebooks; yields (base url, token)."""
    root = tmp_path / "root"
    root.mkdir()
    for name in ("quickstart.ipynb", "alert-prototyping.ipynb"):
        shutil.copy(NOTEBOOKS / name, root)
    env = dict(os.environ)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR",
                "MPLCONFIGDIR"):
        (tmp_path / var.lower()).mkdir()
        env[var] = str(tmp_path / var.lower())
    # Lab 4 detaches cells scrolled out of view ("windowing"): widgets there stop updating.
    tracker = tmp_path / "jupyterlab_settings_dir" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    # The kernel runs this checkout's promlab; Lab's own extensions come from the venv prefix.
    env["PYTHONPATH"] = str(NOTEBOOKS.parent) + os.pathsep + env.get("PYTHONPATH", "")
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    port, token = _free_port(), secrets.token_hex(16)
    log = (tmp_path / "lab.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
         f"--port={port}", f"--ServerApp.token={token}", "--allow-root",
         f"--ServerApp.root_dir={root}", "--LabApp.news_url=None"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/status?token={token}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("JupyterLab did not start:\n"
                            + (tmp_path / "lab.log").read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        yield url, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


@pytest.mark.slow
def test_quickstart_in_jupyterlab(lab: tuple[str, str], tmp_path: Path) -> None:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    url, token = lab
    shots = Path(os.environ.get("PROMLAB_ARTIFACTS", tmp_path / "artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/quickstart.ipynb?reset&token={token}")
            # The status bar says Idle once the kernel is really there (the toolbar says it early).
            page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            explorer = page.locator(".promlab-explorer")
            try:
                explorer.wait_for(state="visible", timeout=90_000)
            finally:
                page.screenshot(path=str(shots / "quickstart-run-all.png"), full_page=True)
            body = page.locator("body").inner_text()
            assert "Loading widget" not in body, "the widget manager is missing"
            assert "Explorer(children=" not in body, "widgets shown as text: no widget manager"
            # Run All has finished when the kernel is idle again.
            page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
            explorer.scroll_into_view_if_needed()
            box = explorer.locator(".promlab-expr input")
            box.fill(QUERY)
            explorer.locator(".promlab-run").click()
            ran = _poll(page, "() => Array.from(document.querySelectorAll("
                        "'.promlab-explorer option'))"  # Select shows spaces as U+00A0
                        ".some(o => o.textContent.replace(/\\u00a0/g, ' ') === "
                        f"{json.dumps(QUERY)})", 30)
            if not ran:
                page.screenshot(path=str(shots / "quickstart-explorer-failed.png"), full_page=True)
            assert ran, "the explorer did not run the typed query (not in its history)"
            img = explorer.locator("img.promlab-plot")
            img.wait_for(state="visible", timeout=30_000)
            assert _poll(page, "() => { const i = document.querySelector("
                         "'.promlab-explorer img.promlab-plot');"
                         " return !!(i && i.complete && i.naturalWidth > 0) }", 30)
            assert img.evaluate("i => i.naturalWidth") > 100
            explorer.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "quickstart-explorer.png"), full_page=True)
            explorer.screenshot(path=str(shots / "explorer.png"))
        finally:
            browser.close()


def _open_and_run_all(page: Any, url: str, token: str, name: str) -> None:
    page.goto(f"{url}/lab/tree/{name}?reset&token={token}")
    # The status bar says Idle once the kernel is really there (the toolbar says it early).
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


FIRING_ROWS = "() => document.querySelectorAll('.promlab-rulelab tr.promlab-episode-firing').length"


@pytest.mark.slow
def test_rule_lab_in_jupyterlab(lab: tuple[str, str], tmp_path: Path) -> None:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    url, token = lab
    shots = Path(os.environ.get("PROMLAB_ARTIFACTS", tmp_path / "artifacts"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            _open_and_run_all(page, url, token, "alert-prototyping.ipynb")
            rulelab = page.locator(".promlab-rulelab")
            try:
                rulelab.wait_for(state="visible", timeout=90_000)
            finally:
                page.screenshot(path=str(shots / "alert-prototyping-run-all.png"), full_page=True)
            body = page.locator("body").inner_text()
            assert "Loading widget" not in body, "the widget manager is missing"
            assert "RuleLab(children=" not in body, "widgets shown as text: no widget manager"
            page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(timeout=60_000)
            rulelab.scroll_into_view_if_needed()
            img = rulelab.locator("img.promlab-rulelab-plot")
            img.wait_for(state="visible", timeout=30_000)
            assert _poll(page, "() => { const i = document.querySelector("
                         "'.promlab-rulelab img.promlab-rulelab-plot');"
                         " return !!(i && i.complete && i.naturalWidth > 0) }", 30)
            assert img.evaluate("i => i.naturalWidth") > 400
            firing = rulelab.locator("tr.promlab-episode-firing")
            firing.first.wait_for(state="visible", timeout=30_000)
            assert page.evaluate(FIRING_ROWS) == 4
            assert "2024-05-01 01:06:00" in firing.first.inner_text()  # the first incident fired
            rulelab.screenshot(path=str(shots / "rulelab.png"))
            # Edit the threshold in the browser and backtest again: one episode still fires.
            threshold = rulelab.locator(".widget-text input").first
            threshold.fill("0.15")
            threshold.press("Enter")
            rulelab.locator(".promlab-rulelab-run").click()
            ok = _poll(page, f"() => ({FIRING_ROWS})() === 1", 30)
            rulelab.screenshot(path=str(shots / "rulelab-threshold.png"))
            assert ok, "a backtest with threshold 0.15 did not leave one firing episode"
            expr = rulelab.locator(".promlab-rulelab-expr textarea").input_value()
            assert expr.endswith("> 0.15"), expr
        finally:
            browser.close()
