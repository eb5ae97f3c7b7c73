"""The library functions behind the magics and widgets: options, panels, explain, plotting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from promlab import Labels, MemoryStorage, Session
from promlab.errors import ConfigError
from promlab.notebook.explain import explain
from promlab.notebook.format import error_text
from promlab.notebook.options import interpolate, split_options
from promlab.notebook.panels import expand, load_dashboard, resolve_variables
from promlab.plotting import bucket_matrix, legend_names, plot_frame
from promlab.promql.parser import parse_expr


@pytest.mark.parametrize(("line", "expr", "kwargs"), [
    pytest.param("up", "up", {"time": None}, id="bare"),
    pytest.param("--time 100 up", "up", {"time": "100"}, id="time"),
    pytest.param("--start 0 --end 600 --step 60 up", "up", {"start": 0.0, "end": 600.0, "step": "60"},
                 id="start-end"),
    pytest.param("--range 10m --end 600 up", "up", {"start": 0.0, "end": 600.0, "step": "2s"},
                 id="range-auto-step"),
    pytest.param('-- --x{a="b"}', '--x{a="b"}', {"time": None}, id="double-dash"),
])
def test_split_options(line: str, expr: str, kwargs: dict[str, object]) -> None:
    opts, rest = split_options(line)
    assert rest == expr
    assert opts.query_kwargs() == kwargs


def test_interpolate_leaves_matchers_alone() -> None:
    assert interpolate('x{a="1"}[{w}] {missing}', {"w": "5m"}) == 'x{a="1"}[5m] {missing}'


def test_error_text_points_at_position_on_its_line() -> None:
    with pytest.raises(Exception) as info:
        parse_expr("sum(\n  rate(x[5m]) +\n)")
    lines = error_text(info.value).split("\n")
    line, col = info.value.line_col()
    assert lines[0] == ["sum(", "  rate(x[5m]) +", ")"][line - 1]
    assert lines[1].index("^") == col - 1


def _store() -> MemoryStorage:
    st = MemoryStorage()
    for job in ("a", "b"):
        st.add_series(Labels({"__name__": "up", "job": job}), [0, 60_000], [1.0, 0.0])
    return st


def test_explain_counts_series_per_node() -> None:
    with Session(_store()) as s:
        nodes = explain(s, "count(up == 1) + (2)", time=30)
    assert [(n.depth, n.text, n.series) for n in nodes] == [
        (0, "count(up == 1) + (2)", 1), (1, "count(up == 1)", 1), (2, "up == 1", 2),
        (3, "up", 2), (3, "1", 1), (1, "2", 1)]


@pytest.mark.parametrize(("source", "kinds"), [
    pytest.param("panels: [{title: a, expr: up}, {title: b, expr: up, kind: heatmap}]",
                 ["line", "heatmap"], id="yaml"),
    pytest.param('{"panels": [{"type": "graph", "stack": true, "targets": [{"expr": "up"}]},'
                 '{"type": "row", "panels": [{"type": "singlestat", "targets": [{"expr": "up"}]}]},'
                 '{"type": "text"},'
                 '{"type": "table", "targets": [{"expr": "up", "datasource": {"type": "loki"}}]}]}',
                 ["stacked", "stat"], id="grafana"),
    pytest.param([("a", "up", "table")], ["table"], id="tuples"),
])
def test_load_dashboard(source: object, kinds: list[str]) -> None:
    assert [p.kind for p in load_dashboard(source).panels] == kinds


def test_load_dashboard_rejects_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="unknown kind"):
        load_dashboard("panels: [{title: a, expr: up, kind: pie}]")


def test_grafana_variables_resolve_from_the_store() -> None:
    d = load_dashboard({"templating": {"list": [
        {"name": "job", "type": "query", "query": {"query": "label_values(up, job)"}}]},
        "panels": [{"type": "timeseries", "targets": [{"expr": 'up{job=~"$job"}'}]}]})
    with Session(_store()) as s:
        values = resolve_variables(s, d.variables)
    assert values == {"job": ["a", "b"]}
    assert expand(d.panels[0].exprs[0] + "[$__rate_interval]", values, interval_ms=14_000,
                  scrape_interval_ms=15_000, range_ms=3_600_000) == 'up{job=~"(a|b)"}[60s]'


def test_legend_names_only_differing_labels() -> None:
    ls = [Labels({"__name__": "x", "job": "a", "i": "1"}), Labels({"__name__": "x", "job": "a", "i": "2"})]
    assert legend_names(ls) == ['{i="1"}', '{i="2"}']


def test_plot_frame_gaps_and_top_n() -> None:
    from promlab.plotting import new_figure

    t = pd.to_datetime([0, 15, 30, 90, 105], unit="s", utc=True)
    rows = [{"job": f"j{k}", "timestamp": ts, "value": float(k)} for k in range(12) for ts in t]
    df = pd.DataFrame(rows)
    df.attrs["step"] = pd.Timedelta(15, unit="s")
    ax = plot_frame(df, ax=new_figure().add_subplot(), top_n=3)
    line = ax.get_lines()[0]
    assert np.isnan(np.asarray(line.get_ydata(), float)).sum() == 1  # the gap stays a gap
    texts = [x.get_text() for x in ax.get_legend().get_texts()]
    assert texts == ['{job="j9"}', '{job="j10"}', '{job="j11"}', "… and 9 more series"]


def test_bucket_matrix_sums_and_differences() -> None:
    t = pd.Timestamp(0, tz="UTC")
    df = pd.DataFrame({"le": ["1", "+Inf", "1", "+Inf"], "job": ["a", "a", "b", "b"],
                       "timestamp": [t] * 4, "value": [1.0, 3.0, 2.0, 2.0]})
    bm = bucket_matrix(df)
    assert bm.upper.tolist() == [1.0, float("inf")]
    assert bm.counts.tolist() == [[3.0, 2.0]]
