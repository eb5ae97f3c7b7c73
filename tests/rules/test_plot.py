"""Alert timelines of backtest episodes: one bar row per alert, pending and firing bands."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.rules import AlertingRule, RuleGroup, backtest, plot_backtest
from promlab.rules.plot import FIRING_COLOR, PENDING_COLOR, row_names
from promlab.storage import MemoryStorage

mpl = pytest.importorskip("matplotlib")

MIN = 60_000
PATTERNS = {"a": [0, 0, 5, 6, 7, 8, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            "b": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]}
RULE = AlertingRule(name="HighErrors", expr="errors > 3", for_ms=2 * MIN)


@pytest.fixture(autouse=True)
def _agg() -> Iterator[None]:
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


@pytest.fixture
def store() -> MemoryStorage:
    st = MemoryStorage()
    for inst, vals in PATTERNS.items():
        st.add_series(Labels({"__name__": "errors", "instance": inst, "job": "api"}),
                      np.arange(len(vals)) * MIN, [float(v) for v in vals])
    return st


def _bars(ax, color: str) -> list[tuple[float, float, float]]:
    """(row, start minute, end minute) of every bar of one colour."""
    from matplotlib.colors import to_rgba
    from matplotlib.dates import date2num

    zero = date2num(pd.Timestamp(0, unit="ms", tz="UTC").tz_localize(None).to_pydatetime())
    out = []
    for coll in ax.collections:
        if not np.allclose(coll.get_facecolor()[0], to_rgba(color)):
            continue
        for path in coll.get_paths():
            (x0, y0), (x1, y1) = path.get_extents().get_points()
            out.append((round((y0 + y1) / 2), round((x0 - zero) * 1440, 6), round((x1 - zero) * 1440, 6)))
    return sorted(out)


def test_one_row_per_alert_with_pending_and_firing_bands(store: MemoryStorage) -> None:
    ep = backtest(RULE, 0, 20 * MIN, data=store, step="1m")
    assert ep.attrs["kind"] == "alert_episodes"
    ax = ep.prom.plot_timeline()
    assert [t.get_text() for t in ax.get_yticklabels()] == ['{instance="a"}', '{instance="b"}']
    # a: pending 2-4, firing 4-6; pending 9-10 (dropped); b: pending 11-13, firing 13-end (20)
    assert _bars(ax, PENDING_COLOR) == [(0, 2, 4), (0, 9, 10), (1, 11, 13)]
    assert _bars(ax, FIRING_COLOR) == [(0, 4, 6), (1, 13, 20)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["pending", "firing"]


def test_alerts_accessor_with_expression_plot(store: MemoryStorage) -> None:
    ep = backtest(RULE, 0, 20 * MIN, data=store, step="1m")
    expr_df = Engine().range(store, "errors", 0, 20 * MIN, MIN).to_frame()
    ax = ep.alerts.plot_timeline(expr_df=expr_df)
    top, bottom = ax.figure.axes[:2]
    assert bottom is ax and len(top.get_lines()) == 2
    assert [t.get_text() for t in top.get_legend().get_texts()] == ['{instance="a"}', '{instance="b"}']
    assert top.get_xlim() == ax.get_xlim()  # shared time axis
    assert ep.alerts.rows()["fired"].tolist() == [1, 1]


def test_plot_backtest_draws_the_rule_expression(store: MemoryStorage) -> None:
    group = RuleGroup(name="g", interval_ms=MIN, rules=(RULE, AlertingRule(name="Other", expr="errors > 100")))
    ep, ax = plot_backtest(group, 0, 20 * MIN, data=store)
    assert len(ep) == 3 and len(ax.figure.axes[0].get_lines()) == 2
    assert ax.figure.axes[0].get_title(loc="left") == "errors > 3"
    with pytest.raises(ValueError, match="no alerting rule 'Nope'"):
        plot_backtest(group, 0, 20 * MIN, data=store, alertname="Nope")


def test_no_alerts_and_wrong_frames(store: MemoryStorage) -> None:
    ep = backtest(AlertingRule(name="Never", expr="errors > 100"), 0, 20 * MIN, data=store, step="1m")
    ax = ep.prom.plot_timeline()
    assert [t.get_text() for t in ax.texts] == ["no alerts"]
    df = Engine().range(store, "errors", 0, MIN, MIN).to_frame()
    with pytest.raises(TypeError, match="episode frame"):
        df.prom.plot_timeline()
    with pytest.raises(AttributeError, match=r"df\.alerts needs"):
        _ = df.alerts


@pytest.mark.parametrize(("sets", "want"), [
    pytest.param([{"alertname": "A", "job": "x"}], ['A{job="x"}'], id="single-full"),
    pytest.param([{"alertname": "A", "job": "x"}, {"alertname": "A", "job": "y"}],
                 ['{job="x"}', '{job="y"}'], id="differing-label"),
    pytest.param([{"alertname": "A", "job": "x"}, {"alertname": "B", "job": "x"}], ["A", "B"],
                 id="differing-alertname"),
    pytest.param([{"alertname": "A"}, {"alertname": "A", "sev": "page"}], ["{}", '{sev="page"}'],
                 id="missing-label"),
    pytest.param([], [], id="empty"),
])
def test_row_names(sets: list[dict[str, str]], want: list[str]) -> None:
    assert row_names(sets) == want
