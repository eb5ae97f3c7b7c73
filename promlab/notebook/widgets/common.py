"""Pieces the widgets share: plots as PNG images, tables as HTML, progress in an Output."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

from promlab.plotting import figure_png, new_figure, plot_frame

__all__ = ["frame_html", "plot_png", "stat_html", "with_progress"]

T = TypeVar("T")


def with_progress(out: Any, fn: Callable[[], T]) -> T:
    """``fn()`` with what it displays (its ``tqdm.auto`` bars: see :mod:`promlab.progress`)
    going to the Output widget ``out``, cleared first. Exceptions propagate: an Output used as a
    context manager would show and swallow them."""
    out.clear_output()
    err: BaseException | None = None
    with out:
        try:
            result = fn()
        except BaseException as e:  # re-raised below, outside the Output context
            err = e
    if err is not None:
        raise err
    return result


def plot_png(df: pd.DataFrame, *, kind: Any = "line", tz: str = "UTC", width: float = 8.0,
             height: float = 3.5, title: str | None = None) -> bytes:
    """The frame plotted with :func:`promlab.plotting.plot_frame` as PNG bytes (no pyplot)."""
    fig = new_figure(width, height)
    plot_frame(df, ax=fig.add_subplot(), kind=kind, tz=tz, title=title)
    return figure_png(fig)


def frame_html(df: pd.DataFrame, *, max_rows: int = 50) -> str:
    """A result frame as a compact HTML table (the first ``max_rows`` rows)."""
    shown = df.head(max_rows)
    more = f"<div>… {len(df) - max_rows} more rows</div>" if len(df) > max_rows else ""
    return str(shown.to_html(index=False, classes="promlab-table", border=0)) + more


def stat_html(df: pd.DataFrame, title: str) -> str:
    """A single-stat panel: the latest value of the first series, big."""
    if df.empty:
        value = "no data"
    else:
        last = df.sort_values("timestamp").iloc[-1]["value"]
        value = f"{float(last):.4g}" if isinstance(last, float | int) else str(last)
    return (f'<div class="promlab-stat" style="text-align:center">'
            f'<div style="font-size:0.9em">{html.escape(title)}</div>'
            f'<div style="font-size:2.2em;font-weight:600">{html.escape(value)}</div></div>')
