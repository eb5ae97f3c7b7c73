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


@pytest.mark.slow
def test_alert_prototyping(tmp_path: Path) -> None:
    nb = run("alert-prototyping.ipynb", [
        # the lab as it opened, then driven: a higher threshold, a sweep, both exports
        "import json\n"
        "first = {'episodes': lab.episodes, 'fired': lab.fired, 'threshold': lab.threshold,\n"
        "         'png': lab.plot_image.value[:8] == b'\\x89PNG\\r\\n\\x1a\\n',\n"
        "         'firing_rows': lab.episodes_out.value.count('promlab-episode-firing')}\n"
        "lab.threshold_box.value = 0.15\nlab.run_button.click()\n"
        "second = {'expr': lab.expr, 'episodes': lab.episodes, 'fired': lab.fired, 'error': lab.error}\n"
        "lab.sweep_button.click()\n"
        "print(json.dumps({'first': first, 'second': second,\n"
        "                  'sweep': lab.sweep_frame[['threshold', 'alerts']].values.tolist()}))",
        "print(lab.to_yaml())",
        f"paths = lab.export_test({str(tmp_path / 'export')!r}, name='lab')\n"
        "from promlab.rules.unittest import run_rule_tests\n"
        "print([(r.ok, r.failures) for r in run_rule_tests(paths[1])], lab.test_yaml.count('exp_labels'))",
        "lab.expr = 'sum(rate(http_requests_total[5m]) > '\nlab.run()\nprint(repr(lab.error))",
    ], tmp_path)
    episodes = text(nb, "alert-prototyping-5")
    assert episodes.count("2024-05-01") >= 8 and "api: 19.6% of requests fail" in episodes
    assert any("image/png" in o.get("data", {}) for o in outputs(nb, "alert-prototyping-6"))
    assert "caught 3 of 3 incidents, missed 0, false alerts 1" in text(nb, "alert-prototyping-8")
    sweep = text(nb, "alert-prototyping-10").splitlines()
    assert len(sweep) == 17 and sweep[0].split() == ["threshold", "for", "alerts", "pending_only",
                                                     "firing_time", "flapping"]
    assert "[('" in text(nb, "alert-prototyping-12") and "True, [])]" in text(nb, "alert-prototyping-12")
    hist = text(nb, "alert-prototyping-14")
    assert "1 expected alert(s)" in hist and "[(True, [])]" in hist
    assert any(WIDGET_VIEW in o.get("data", {}) for o in outputs(nb, "alert-prototyping-16"))

    lab = json.loads(text(nb, "test-0"))
    assert lab["first"] == {"episodes": 4, "fired": 4, "threshold": 0.05, "png": True, "firing_rows": 4}
    assert lab["second"]["expr"].endswith("> 0.15") and lab["second"]["error"] == ""
    assert lab["second"]["fired"] == 1  # only the first incident passes 15%
    # default variants around threshold 0.15 and for 5m: x0.5 .. x2, for 0, 2m30s, 5m, 10m
    assert [round(t, 6) for t, _ in lab["sweep"]] == [v for v in (0.075, 0.1125, 0.15, 0.225, 0.3) for _ in range(4)]
    assert [a for t, a in lab["sweep"] if t == 0.15][2] == 1  # the variant shown: one alert
    yml = text(nb, "test-1")
    assert "alert: HighErrorRatio" in yml and "> 0.15" in yml and "for: 5m" in yml and "name: service" in yml
    assert text(nb, "test-2").startswith("[(True, [])]")
    assert int(text(nb, "test-2").split()[-1]) >= 1  # the export expects the alert that fired
    assert "parse error" in text(nb, "test-3")
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    classes = {c for m in state.values() for c in m["state"].get("_dom_classes", [])}
    assert {"promlab-rulelab", "promlab-rulelab-plot", "promlab-rulelab-episodes"} <= classes
