"""Alert timelines: pending and firing bands of backtest episodes, one row per alert.

:func:`~promlab.rules.backtest.backtest` returns a DataFrame of episodes whose ``attrs`` say
``kind="alert_episodes"`` (with the range's ``start``/``end``). Two ways to draw it:

* ``episodes.alerts.plot_timeline()`` — the ``df.alerts`` accessor registered by this module
  (imported with :mod:`promlab.rules`); ``episodes.prom.plot_timeline()`` delegates to it, since
  ``df.prom`` recognises episode frames by their ``attrs``;
* :func:`plot_backtest` — runs the backtest and draws the rule's expression above the timeline.

Each alert (one label set, ``alertname`` included) gets one row of bars: pending in amber,
firing in red; an episode still active at the end of the range runs to the end. Rows are named
by the labels that differ between them only. No backend is selected here (``matplotlib.use`` is
never called): with ``ax=None`` the figure comes from ``matplotlib.pyplot``.

Examples
--------
>>> row_names([{"alertname": "A", "job": "x"}, {"alertname": "A", "job": "y"}])
['{job="x"}', '{job="y"}']
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from promlab.model import METRIC_NAME, parse_duration, parse_time
from promlab.promql.engine import Engine
from promlab.rules.backtest import RulesLike, as_groups, backtest
from promlab.rules.rule import AlertingRule
from promlab.storage.interface import Queryable

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["EPISODES_KIND", "FIRING_COLOR", "PENDING_COLOR", "AlertsAccessor", "plot_backtest",
           "plot_timeline", "row_names"]

#: ``df.attrs["kind"]`` of the episode frames :func:`~promlab.rules.backtest.backtest` returns.
EPISODES_KIND = "alert_episodes"
PENDING_COLOR = "#f2b134"
FIRING_COLOR = "#d62728"
#: Past this many rows the alert names are not written on the y axis.
MAX_TICK_LABELS = 40


def row_names(label_sets: Sequence[Mapping[str, str]]) -> list[str]:
    """Short names: the labels whose values differ between the sets (``alertname`` bare when
    it is the only difference, the full set when there is only one)."""
    if not label_sets:
        return []
    keys = sorted({k for ls in label_sets for k in ls})
    differ = [k for k in keys if len({ls.get(k) for ls in label_sets}) > 1] if len(label_sets) > 1 else keys
    names = []
    for ls in label_sets:
        name = ls.get("alertname", "") if "alertname" in differ or len(label_sets) == 1 else ""
        rest = [k for k in differ if k not in ("alertname", METRIC_NAME) and k in ls]
        if rest:
            name += "{" + ", ".join(f'{k}="{ls[k]}"' for k in rest) + "}"
        names.append(name or "{}")
    return names


def _naive_utc(values: pd.Series) -> np.ndarray:
    out: np.ndarray = pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy("datetime64[ms]")
    return out


def plot_timeline(episodes: pd.DataFrame, expr_df: pd.DataFrame | None = None, *, ax: Axes | None = None,
                  end: Any = None, figsize: tuple[float, float] | None = None) -> Axes:
    """Pending/firing bands per alert; the Axes of the timeline.

    Parameters
    ----------
    episodes
        A :func:`~promlab.rules.backtest.backtest` result (``labels``, ``pending_at``,
        ``firing_at``, ``resolved_at``).
    expr_df
        A range-query result frame (``timestamp``/``value``) drawn above the timeline on a shared
        time axis (the figure's first Axes), one line per series.
    ax
        Axes for the timeline (without ``expr_df``); a new pyplot figure otherwise.
    end
        Where still-active episodes end (default: ``episodes.attrs["end"]``, else the latest
        time in the frame).
    """
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    labels = [dict(d) for d in episodes["labels"]] if len(episodes) else []
    keys = [tuple(sorted(d.items())) for d in labels]
    rows = sorted(set(keys))
    n_rows = len(rows)
    if expr_df is not None:
        height = 0.35 * min(n_rows, MAX_TICK_LABELS) + 1.5
        _fig, (ax_expr, ax) = plt.subplots(2, 1, sharex=True, figsize=figsize or (10, 3 + height),
                                          height_ratios=[3, max(1.0, height)], layout="constrained")
        _plot_expr(ax_expr, expr_df)
    elif ax is None:
        _fig, ax = plt.subplots(figsize=figsize or (10, 1.2 + 0.35 * min(max(n_rows, 1), MAX_TICK_LABELS)),
                               layout="constrained")
    assert ax is not None
    if end is None:
        end = episodes.attrs.get("end")
    if end is None and len(episodes):
        cols = [episodes[c] for c in ("pending_at", "firing_at", "resolved_at")]
        end = max(pd.to_datetime(c, utc=True).max() for c in cols if c.notna().any())
    end_t = np.datetime64(pd.Timestamp(end).tz_convert("UTC").tz_localize(None), "ms") if end is not None \
        else np.datetime64("NaT")
    if n_rows:
        pending = _naive_utc(episodes["pending_at"])
        firing = _naive_utc(episodes["firing_at"])
        resolved = _naive_utc(episodes["resolved_at"])
        resolved = np.where(np.isnat(resolved), end_t, resolved)
        row_of = {k: i for i, k in enumerate(rows)}
        row_idx = np.array([row_of[k] for k in keys])
        pend_end = np.where(np.isnat(firing), resolved, firing)
        to_num = mdates.date2num
        for i in range(n_rows):
            m = row_idx == i
            for lo, hi, color in ((pending[m], pend_end[m], PENDING_COLOR),
                                  (firing[m], resolved[m], FIRING_COLOR)):
                ok = ~np.isnat(lo) & ~np.isnat(hi)
                if ok.any():
                    x0 = to_num(lo[ok])  # type: ignore[no-untyped-call]
                    x1 = to_num(hi[ok])  # type: ignore[no-untyped-call]
                    ax.broken_barh(list(zip(x0, np.maximum(x1 - x0, 0), strict=True)),
                                   (i - 0.4, 0.8), facecolors=color, edgecolor="none")
        ax.set_ylim(n_rows - 0.5, -0.5)
        ax.set_yticks(range(n_rows))
        if n_rows <= MAX_TICK_LABELS:
            ax.set_yticklabels(row_names([dict(k) for k in rows]))
        else:
            ax.set_yticklabels([])
            ax.set_ylabel(f"{n_rows} alerts")
        ax.xaxis_date()
        locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    else:
        ax.text(0.5, 0.5, "no alerts", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("time (UTC)")
    ax.legend(handles=[Patch(color=PENDING_COLOR, label="pending"), Patch(color=FIRING_COLOR, label="firing")],
              loc="upper right", fontsize="small")
    return ax


def _plot_expr(ax: Axes, df: pd.DataFrame) -> None:
    if df.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    wide = df.prom.wide()
    _, series = df.prom.series()
    names = row_names([ls.to_dict() for ls in series])
    idx = wide.index.tz_convert("UTC").tz_localize(None).to_pydatetime() \
        if getattr(wide.index, "tz", None) is not None else wide.index.to_pydatetime()
    for col, name in zip(wide.columns, names, strict=True):
        ax.plot(idx, wide[col].to_numpy(), label=name, linewidth=1)
    if len(names) <= 10:
        ax.legend(fontsize="small", loc="upper left")
    ax.set_title(str(df.attrs.get("query", "")), fontsize="medium", loc="left")


def plot_backtest(rules_or_file: RulesLike, start: Any, end: Any, *, data: Queryable | str | os.PathLike[str],
                  step: str | int | None = None, alertname: str | None = None, engine: Engine | None = None,
                  figsize: tuple[float, float] | None = None) -> tuple[pd.DataFrame, Axes]:
    """Backtest the rules and plot the timeline under the expression of one alerting rule.

    ``alertname`` picks the rule whose expression is drawn (default: the first alerting rule);
    the expression is evaluated as a range query over ``[start, end]`` at the rule group's
    interval (or ``step``). Returns the episodes and the timeline's Axes (the expression's
    Axes is ``ax.figure.axes[0]``).
    """
    step_ms = None if step is None else step if isinstance(step, int) else parse_duration(step)
    groups = as_groups(rules_or_file, step_ms)
    picked = [(g, r) for g in groups for r in g.rules
              if isinstance(r, AlertingRule) and (alertname is None or r.name == alertname)]
    if not picked:
        raise ValueError(f"no alerting rule {alertname!r}" if alertname else "no alerting rule")
    group, rule = picked[0]
    if isinstance(data, str | os.PathLike):
        from promlab.storage import open_store

        data = open_store(data, readonly=True)
    eng = engine if engine is not None else Engine()
    episodes = backtest(groups, start, end, data=data, step=step, engine=eng)
    s_ms, e_ms = _ms(start), _ms(end)
    expr_df = eng.range(data, rule.expr, s_ms - group.query_offset_ms, e_ms - group.query_offset_ms,
                        group.interval_ms).to_frame()
    return episodes, plot_timeline(episodes, expr_df, figsize=figsize)


def _ms(t: Any) -> int:
    return int(t) if isinstance(t, int | np.integer) else parse_time(t)


@pd.api.extensions.register_dataframe_accessor("alerts")
class AlertsAccessor:
    """``df.alerts``: views of a backtest's episode frame."""

    def __init__(self, df: pd.DataFrame) -> None:
        if "labels" not in df.columns or "pending_at" not in df.columns:
            raise AttributeError("df.alerts needs a backtest episode frame (labels, pending_at, ...)")
        self._df = df

    def plot_timeline(self, expr_df: pd.DataFrame | None = None, **kwargs: Any) -> Axes:
        """See :func:`plot_timeline`."""
        return plot_timeline(self._df, expr_df, **kwargs)

    def rows(self) -> pd.DataFrame:
        """One row per alert: its labels, episodes, fired episodes and total firing time."""
        df = self._df
        key = [tuple(sorted(dict(d).items())) for d in df["labels"]]
        g = df.assign(_key=key).groupby("_key", sort=True)
        out = pd.DataFrame({"episodes": g.size(), "fired": g["firing_at"].count(),
                            "firing_time": g["duration"].sum()})
        out.index = pd.Index(row_names([dict(k) for k in out.index]), name="alert")
        return out

