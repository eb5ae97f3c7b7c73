"""``promlab.targets_view()``: the scrape targets and their health, refreshed live."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from promlab.model import parse_duration
from promlab.notebook.extension import resolve_session
from promlab.notebook.refresh import Refresher

__all__ = ["TargetsView", "targets_summary"]

_COLORS = {"up": "#1b7f3b", "down": "#b00020", "unknown": "#777", "dropped": "#999"}


def targets_summary(session: Any) -> pd.DataFrame:
    """One row per target: pool, url, health, last scrape, its duration and error."""
    df = session.scrape.targets()
    cols = ["scrape_pool", "url", "health", "last_scrape", "last_scrape_duration", "last_error"]
    return df[cols].reset_index(drop=True)


class TargetsView(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """A live table of :func:`targets_summary` (refreshed every ``refresh``; ``refresh()``
    once; ``stop()`` ends the thread)."""

    up = t.Int(0)
    down = t.Int(0)

    def __init__(self, session: Any = None, *, refresh: str | None = "5s") -> None:
        self.session = resolve_session(session)
        self.table = w.HTML()
        self.summary = w.HTML()
        super().__init__([self.summary, self.table])
        self.add_class("promlab-targets")
        self.refresh()
        self._refresher = Refresher(self.refresh, parse_duration(refresh) / 1000,
                                    name="promlab-targets") if refresh else None

    def refresh(self) -> None:
        df = targets_summary(self.session)
        self.up = int((df["health"] == "up").sum())
        self.down = int((df["health"] == "down").sum())
        running = "running" if self.session.scrape.running else "stopped"
        self.summary.value = (f"<b>scraper {running}</b>: {self.up} up, {self.down} down, "
                              f"{len(df)} targets")
        rows = []
        for r in df.itertuples(index=False):
            color = _COLORS.get(str(r.health), "#000")
            rows.append(
                f"<tr><td>{html.escape(str(r.scrape_pool))}</td><td>{html.escape(str(r.url))}</td>"
                f'<td style="color:{color};font-weight:600">{html.escape(str(r.health))}</td>'
                f"<td>{html.escape(str(r.last_scrape))}</td>"
                f"<td>{html.escape(str(r.last_scrape_duration))}</td>"
                f"<td>{html.escape(str(r.last_error or ''))}</td></tr>")
        self.table.value = ('<table class="promlab-targets-table"><tr><th>pool</th><th>url</th>'
                            "<th>health</th><th>last scrape</th><th>duration (s)</th>"
                            "<th>error</th></tr>" + "".join(rows) + "</table>")

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()
            self._refresher = None

    def close(self) -> None:
        self.stop()
        super().close()
