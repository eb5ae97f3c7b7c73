"""The example notebooks, executed with nbclient, with assertions on what they show; the
widgets are driven in the kernel (clicks, then the widget state is checked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def run(name: str, extra: list[str], tmp_path: Path) -> Any:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        f"{name} is committed with outputs"
    for i, src in enumerate(extra):
        cell = nbformat.v4.new_code_cell(src)
        cell["id"] = f"test-{i}"
        nb.cells.append(cell)
    NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def outputs(nb: Any, cell_id: str) -> list[Any]:
    return next(c for c in nb.cells if c.get("id") == cell_id).outputs


def text(nb: Any, cell_id: str) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                   for o in outputs(nb, cell_id))


@pytest.mark.slow
def test_quickstart(tmp_path: Path) -> None:
    nb = run("quickstart.ipynb", [
        # drive the explorer: a query, the run button, the explain button, a bad query
        "explorer.expr = 'sum by (method) (rate(demo_requests_total[10s]))'\n"
        "explorer.run_button.click()\n"
        "print(explorer.series, explorer.plot_image.value[:8] == b'\\x89PNG\\r\\n\\x1a\\n', "
        "explorer.history[0])",
        "explorer.explain_button.click()\nprint(explorer.explain_out.value.count('promlab-explain-node'))",
        "explorer.expr = 'sum(rate(demo_requests_total[10s])'\nexplorer.run()\n"
        "print(repr(explorer.error)); print(explorer.status.value)",
    ], tmp_path)
    assert "scraping 1 target(s)" in text(nb, "quickstart-4")
    targets = text(nb, "quickstart-5")
    assert "app" in targets and " up " in targets
    rows = text(nb, "quickstart-7")
    for method, status in (("GET", "200"), ("POST", "200")):
        assert any(method in line and status in line for line in rows.splitlines())
    assert any("image/png" in o.get("data", {}) for o in outputs(nb, "quickstart-9"))
    assert "{method=\"GET\"}" in text(nb, "quickstart-11")
    for cid in ("quickstart-13", "quickstart-14"):
        assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs(nb, cid))
    assert text(nb, "test-0").split() == ["2", "True", "sum", "by", "(method)",
                                          "(rate(demo_requests_total[10s]))"]
    # sum(...), rate(...), the range selector x[10s], the instant selector x
    assert text(nb, "test-1").strip() == "4"
    err = text(nb, "test-2")
    assert "unclosed left parenthesis" in err and "^" in err
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    classes = {c for m in state.values() for c in m["state"].get("_dom_classes", [])}
    assert {"promlab-explorer", "promlab-plot", "promlab-targets"} <= classes


@pytest.mark.slow
def test_offline_history(tmp_path: Path) -> None:
    nb = run("offline-history.ipynb", [], tmp_path)
    assert "all three agree on 10 kinds" in text(nb, "offline-history-8")


@pytest.mark.slow
def test_dashboard(tmp_path: Path) -> None:
    nb = run("dashboard.ipynb", [
        "import json\nprint(json.dumps({'errors': dash.errors, 'refreshes': dash.refreshes,\n"
        " 'kinds': [type(c).__name__ for c in dash.cells],\n"
        " 'png': [c.value[:4] == b'\\x89PNG' for c in dash.cells if hasattr(c, 'format')],\n"
        " 'stat': dash.cells[1].value, 'g_titles': [p.title for p in gdash.spec.panels],\n"
        " 'g_errors': gdash.errors, 'g_stat': gdash.cells[1].value}))",
    ], tmp_path)
    out = json.loads(text(nb, "test-0"))
    assert out["errors"] == {} and out["g_errors"] == {}
    assert out["kinds"] == ["Image", "HTML", "Image", "HTML"]
    assert out["png"] == [True, True]
    assert "promlab-stat" in out["stat"] and "no data" not in out["stat"]
    assert out["g_titles"] == ["Requests/s ($job)", "Requests in the last hour"]
    assert "no data" not in out["g_stat"]
