"""``promlab.explore()``: the query explorer widget.

An expression box suggesting metric names, range/step/end controls, a Run button, and tabs:
Plot, Table and Explain (each sub-expression's own result and series count). Errors show at
their position; recent queries are kept in a history list. The state lives in traits
(``expr``, ``range``, ``step``, ``end``, ``history``, ``error``, ``series``); ``run()`` and
``explain()`` do what the buttons do.
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as w
import traitlets as t

from promlab import progress as _progress
from promlab.errors import PromlabError
from promlab.notebook.explain import explain
from promlab.notebook.extension import resolve_session
from promlab.notebook.format import error_html
from promlab.notebook.options import PromqlOptions
from promlab.notebook.widgets.common import frame_html, plot_png, with_progress

__all__ = ["Explorer"]

HISTORY = 20


class Explorer(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The query explorer (see the module docstring).

    Parameters
    ----------
    session
        A Session, a store or directory, or None for the ``%load_ext promlab`` session.
    expr
        The initial expression (run at once when given).
    range, step, end
        The query window: the last ``range`` up to ``end`` every ``step`` (empty: automatic).
    """

    expr = t.Unicode("")
    range = t.Unicode("1h")
    step = t.Unicode("")
    end = t.Unicode("now")
    history = t.List(t.Unicode())
    error = t.Unicode("")
    series = t.Int(0)
    elapsed = t.Float(0.0)

    def __init__(self, session: Any = None, *, expr: str = "", range: str = "1h",
                 step: str = "", end: str = "now", tz: str = "UTC") -> None:
        self.session = resolve_session(session)
        self.tz = tz
        self.frame: Any = None
        self.expr_box = w.Combobox(placeholder="PromQL expression, e.g. rate(x[5m])",
                                   options=self._metric_names(), ensure_option=False,
                                   layout=w.Layout(width="60%"))
        self.expr_box.add_class("promlab-expr")
        self.range_box = w.Text(description="range", layout=w.Layout(width="140px"))
        self.step_box = w.Text(description="step", placeholder="auto",
                               layout=w.Layout(width="140px"))
        self.end_box = w.Text(description="end", layout=w.Layout(width="200px"))
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.run_button.add_class("promlab-run")
        self.explain_button = w.Button(description="Explain")
        self.history_box = w.Select(options=[], rows=4, description="history",
                                    layout=w.Layout(width="90%"))
        self.status = w.HTML()
        self.status.add_class("promlab-status")
        self.progress_out = w.Output()  # progress bars of queries taking over a second
        self.plot_image = w.Image(format="png")
        self.plot_image.add_class("promlab-plot")
        self.table = w.HTML()
        self.table.add_class("promlab-table")
        self.explain_out = w.HTML()
        self.explain_out.add_class("promlab-explain")
        self.tabs = w.Tab(children=[self.plot_image, self.table, self.explain_out])
        for i, name in enumerate(("Plot", "Table", "Explain")):
            self.tabs.set_title(i, name)
        for trait, box in (("expr", self.expr_box), ("range", self.range_box),
                           ("step", self.step_box), ("end", self.end_box)):
            t.link((self, trait), (box, "value"))
        self.run_button.on_click(lambda _: self.run())
        self.explain_button.on_click(lambda _: self.explain())
        self.expr_box.on_submit(lambda _: self.run())
        self.history_box.observe(self._pick_history, names="value")
        controls = w.HBox([self.expr_box, self.run_button, self.explain_button])
        window = w.HBox([self.range_box, self.step_box, self.end_box])
        super().__init__([controls, window, self.status, self.progress_out, self.tabs, self.history_box])
        self.add_class("promlab-explorer")
        self.range, self.step, self.end = range, step, end
        if expr:
            self.expr = expr
            self.run()

    def _metric_names(self) -> list[str]:
        try:
            return self.session.label_values("__name__")
        except PromlabError:
            return []

    def _options(self) -> PromqlOptions:
        return PromqlOptions(range=self.range or "1h", step=self.step or None,
                             end=self.end or "now")

    def _pick_history(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.expr = change["new"]

    def _remember(self, expr: str) -> None:
        hist = [expr, *(h for h in self.history if h != expr)][:HISTORY]
        self.history = hist
        self.history_box.unobserve(self._pick_history, names="value")
        self.history_box.options = hist
        self.history_box.value = None
        self.history_box.observe(self._pick_history, names="value")

    def run(self) -> None:
        """Evaluate :attr:`expr` over the window; fill the plot and the table."""
        expr = self.expr.strip()
        if not expr:
            return
        t0 = time.perf_counter()

        def work() -> Any:
            with _progress.bar(True, total=2, desc="query", unit="step") as bar:
                found = self.session.evaluate(expr, **self._options().query_kwargs()).to_frame()
                bar.update(1)
                png = plot_png(found, tz=self.tz)
                bar.update(1)
            return found, png

        try:
            df, png = with_progress(self.progress_out, work)
        except (PromlabError, ValueError) as e:
            self.error = str(e)
            self.status.value = error_html(e, expr)
            return
        self.frame = df
        self.error = ""
        self._remember(expr)
        self.table.value = frame_html(df)
        self.plot_image.value = png
        self.elapsed = time.perf_counter() - t0
        self.series = int(df.prom.series()[0].max() + 1) if len(df) else 0
        self.status.value = (f"<span>{self.series} series, {len(df)} samples, "
                             f"{self.elapsed * 1000:.0f} ms</span>")
        self.expr_box.options = self._metric_names()

    def explain(self) -> None:
        """Evaluate every sub-expression of :attr:`expr`; show each one's result."""
        expr = self.expr.strip()
        if not expr:
            return
        try:
            nodes = explain(self.session, expr, **self._options().query_kwargs())
        except (PromlabError, ValueError) as e:
            self.error = str(e)
            self.status.value = error_html(e, expr)
            return
        parts = []
        for n in nodes:
            head = (f'<div style="margin-left:{n.depth * 1.5}em"><code>{html.escape(n.text)}'
                    f"</code> — {n.type}, <b>{n.series} series</b>")
            if n.error is not None:
                body = f'<pre class="promlab-error">{html.escape(n.error)}</pre>'
            elif n.frame is not None:
                body = frame_html(n.frame, max_rows=5)
            else:
                body = ""
            parts.append(f'<div class="promlab-explain-node">{head}{body}</div></div>')
        self.explain_out.value = "".join(parts)
        self.tabs.selected_index = 2
