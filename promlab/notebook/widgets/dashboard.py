"""``promlab.dashboard(panels, refresh="15s")``: a grid of PromQL panels over the live store.

Panels come from :func:`promlab.notebook.panels.load_dashboard` (a list, our YAML, a Grafana
dashboard JSON). Each refresh evaluates every panel over the last ``range`` (Grafana's
``$__interval``/``$__rate_interval`` and template variables substituted) and redraws it: line
and stacked plots and heat maps as PNG images, single stats and tables as HTML. A background
thread refreshes every ``refresh``; ``refresh()`` does one round, ``stop()`` ends the thread.
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from promlab.errors import PromlabError
from promlab.model import parse_duration
from promlab.notebook.extension import resolve_session
from promlab.notebook.format import error_html
from promlab.notebook.panels import Panel, expand, interval_ms, load_dashboard, resolve_variables
from promlab.notebook.refresh import Refresher
from promlab.notebook.widgets.common import frame_html, plot_png, stat_html

__all__ = ["Dashboard", "evaluate_panel"]


def evaluate_panel(session: Any, panel: Panel, *, values: dict[str, list[str]], range_ms: int,
                   end_ms: int, scrape_interval_ms: int) -> pd.DataFrame:
    """The panel's expressions evaluated over the window, concatenated (stat and table panels:
    an instant query at the end)."""
    step_ms = interval_ms(range_ms)
    frames = []
    for e in panel.exprs:
        text = expand(e, values, interval_ms=step_ms, scrape_interval_ms=scrape_interval_ms,
                      range_ms=range_ms)
        if panel.kind in ("stat", "table"):
            frames.append(session.evaluate(text, time=end_ms / 1000).to_frame())
        else:
            frames.append(session.evaluate(text, start=(end_ms - range_ms) / 1000,
                                           end=end_ms / 1000, step=step_ms / 1000).to_frame())
    df = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    df.attrs.update(frames[0].attrs)
    return df


class Dashboard(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A grid of panels (see the module docstring).

    Parameters
    ----------
    panels
        Anything :func:`~promlab.notebook.panels.load_dashboard` reads.
    refresh
        Interval of the background refresh (``"15s"``), or None for none.
    session
        A Session, a store or directory, or None for the ``%load_ext promlab`` session.
    columns
        Panels per row.
    end
        End of the window (default: now at each refresh).
    """

    range = t.Unicode("1h")
    last_refresh = t.Float(0.0)
    refreshes = t.Int(0)
    errors = t.Dict()

    def __init__(self, panels: Any, *, refresh: str | None = "15s", session: Any = None,
                 columns: int = 2, end: Any = None, tz: str = "UTC") -> None:
        self.session = resolve_session(session)
        self.spec = load_dashboard(panels)
        self.end = end
        self.tz = tz
        self.range = self.spec.range
        self.cells: list[w.Widget] = []
        for p in self.spec.panels:
            cell = w.Image(format="png") if p.kind in ("line", "stacked", "heatmap") else w.HTML()
            cell.add_class(f"promlab-panel-{p.kind}")
            self.cells.append(cell)
        boxes = []
        for p, cell in zip(self.spec.panels, self.cells, strict=True):
            box = w.VBox([w.HTML(f"<b>{html.escape(p.title)}</b>"), cell])
            box.add_class("promlab-panel")
            boxes.append(box)
        grid = w.GridBox(boxes, layout=w.Layout(
            grid_template_columns=" ".join(["1fr"] * max(1, columns))))
        self.status = w.HTML()
        title = w.HTML(f"<h3>{html.escape(self.spec.title)}</h3>")
        super().__init__([title, self.status, grid])
        self.add_class("promlab-dashboard")
        self.refresh()
        self._refresher: Refresher | None = None
        if refresh:
            self._refresher = Refresher(self.refresh, parse_duration(refresh) / 1000,
                                        name="promlab-dashboard")

    def refresh(self) -> None:
        """Evaluate and redraw every panel once."""
        from promlab.model import now_ms, parse_time

        end_ms = parse_time(self.end) if self.end is not None else now_ms()
        range_ms = parse_duration(self.range)
        scrape_ms = parse_duration(self.spec.scrape_interval)
        values = resolve_variables(self.session, self.spec.variables)
        errors = {}
        for p, cell in zip(self.spec.panels, self.cells, strict=True):
            try:
                df = evaluate_panel(self.session, p, values=values, range_ms=range_ms,
                                    end_ms=end_ms, scrape_interval_ms=scrape_ms)
                if p.kind == "stat":
                    cell.value = stat_html(df, p.title)
                elif p.kind == "table":
                    cell.value = frame_html(df)
                else:
                    kind = "heatmap" if p.kind == "heatmap" else p.kind
                    cell.value = plot_png(df, kind=kind, tz=self.tz, width=6, height=3,
                                          title="")
            except (PromlabError, ValueError) as e:
                errors[p.title] = str(e)
                if isinstance(cell, w.HTML):
                    cell.value = error_html(e)
        self.errors = errors
        self.last_refresh = time.time()
        self.refreshes += 1
        shown = "; ".join(f"{k}: {v}" for k, v in errors.items())
        self.status.value = (f'<span class="promlab-dashboard-status">refreshed '
                             f"{time.strftime('%H:%M:%S')}</span>"
                             + (f'<pre class="promlab-error">{html.escape(shown)}</pre>'
                                if errors else ""))

    def stop(self) -> None:
        """Stop refreshing in the background."""
        if self._refresher is not None:
            self._refresher.stop()
            self._refresher = None

    def close(self) -> None:
        self.stop()
        super().close()
