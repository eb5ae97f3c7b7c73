"""``promlab.rule_lab(rule_or_file)``: the alert-rule lab widget.

Edit an alerting rule's expression, threshold and ``for``; Backtest draws the rule's expression
with the pending (amber) and firing (red) bands of its alerts under it
(:func:`timeline_png`, over :func:`promlab.rules.plot_timeline`) and lists the episodes; Sweep tabulates threshold × ``for``
variants (:func:`promlab.rules.backtest_sweep`); YAML and Test export the rule as a rule file and
as a promtool-style test over the same window of history (:mod:`promlab.rules.export`).

The state lives in traits (``expr``, ``threshold``, ``for_``, ``range``, ``end``, ``step``,
``episodes``, ``fired``, ``error``, ``yaml``, ``test_yaml``); every button is a method:
:meth:`RuleLab.run`, :meth:`RuleLab.sweep`, :meth:`RuleLab.to_yaml`, :meth:`RuleLab.export_test`.
The library functions :func:`lab_group` and :func:`default_variants` hold what is not display.
"""

from __future__ import annotations

import html
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
import traitlets as t

from promlab import progress as _progress
from promlab.errors import PromlabError
from promlab.model import format_duration, parse_duration, parse_time
from promlab.notebook.extension import resolve_session
from promlab.notebook.format import error_html
from promlab.notebook.widgets.common import with_progress
from promlab.plotting import figure_png
from promlab.rules.backtest import (
    as_groups,
    backtest,
    backtest_sweep,
    split_threshold,
    threshold_of,
    with_threshold,
)
from promlab.rules.export import rules_yaml, write_rule_test
from promlab.rules.load import parse_rules
from promlab.rules.plot import FIRING_COLOR, plot_timeline, row_names
from promlab.rules.rule import AlertingRule, RuleGroup

__all__ = ["RuleLab", "default_variants", "episodes_html", "lab_group", "pick_rule", "timeline_png"]


#: Evaluation times of an exported test taken from the backtest's firing episodes, at most.
MAX_TEST_TIMES = 10


def pick_rule(rule_or_file: Any, alertname: str | None = None) -> tuple[RuleGroup, AlertingRule]:
    """The group and alerting rule the lab works on: ``rule_or_file`` is a rule, a group, a
    rule file's path or its YAML text (anything with a newline); ``alertname`` picks one rule
    (default: the first alerting rule).

    Raises
    ------
    ValueError
        No such alerting rule.
    ConfigError
        The rule file does not load.
    """
    if isinstance(rule_or_file, str) and "\n" in rule_or_file:
        groups = parse_rules(rule_or_file)
    else:
        groups = as_groups(rule_or_file)
    for g in groups:
        for r in g.rules:
            if isinstance(r, AlertingRule) and (alertname is None or r.name == alertname):
                return g, r
    raise ValueError(f"no alerting rule {alertname!r}" if alertname else "no alerting rule")


def lab_group(group: RuleGroup, original: AlertingRule, rule: AlertingRule) -> RuleGroup:
    """``group`` cut down to what ``rule`` needs: the recording rules before ``original``
    (which it may read) and ``rule`` in its place."""
    before: list[Any] = []
    for r in group.rules:
        if r is original:
            break
        if not isinstance(r, AlertingRule):
            before.append(r)
    return replace(group, rules=(*before, rule))


def default_variants(threshold: float | None, for_ms: int) -> tuple[list[float] | None, list[int]]:
    """Sweep variants around a rule: thresholds ×0.5 … ×2 (None without a threshold) and
    ``for`` 0, half, itself, double (0, 1m, 5m when it is 0).

    >>> default_variants(10.0, 300_000)
    ([5.0, 7.5, 10.0, 15.0, 20.0], [0, 150000, 300000, 600000])
    """
    thresholds = None if threshold is None else [threshold * k for k in (0.5, 0.75, 1.0, 1.5, 2.0)]
    fors = sorted({0, for_ms // 2, for_ms, 2 * for_ms}) if for_ms else [0, 60_000, 300_000]
    return thresholds, fors


def timeline_png(session: Any, rule: AlertingRule, episodes: pd.DataFrame, start_ms: int, end_ms: int,
                 step_ms: int, *, offset_ms: int = 0) -> bytes:
    """The backtest timeline as PNG: what the rule compares (its left-hand side, with the
    threshold as a dashed line; the whole expression when it is no comparison) above the
    pending/firing bands of ``episodes``, over the whole window."""
    import matplotlib.pyplot as plt

    parts = split_threshold(rule.expr)
    shown = parts[0] if parts is not None else rule.expr
    expr_df = session.evaluate(shown, start=(start_ms - offset_ms) / 1000, end=(end_ms - offset_ms) / 1000,
                               step=step_ms / 1000).to_frame()
    ax = plot_timeline(episodes, expr_df, figsize=(10, 5),
                       end=pd.Timestamp(end_ms, unit="ms", tz="UTC"))
    from matplotlib.figure import Figure

    fig = ax.figure
    assert isinstance(fig, Figure)
    try:
        lo, hi = (pd.Timestamp(v, unit="ms") for v in (start_ms, end_ms))  # naive UTC, as plotted
        ax.set_xlim(lo.to_pydatetime(), hi.to_pydatetime())
        if parts is not None:
            top = fig.axes[0]
            top.axhline(parts[2], color=FIRING_COLOR, linestyle="--", linewidth=1,
                        label=f"{parts[1]} {parts[2]:g}")
            top.legend(fontsize="small", loc="upper left")
        return figure_png(fig)
    finally:
        plt.close(fig)


def _fmt_time(v: Any) -> str:
    return "" if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M:%S")


def episodes_html(episodes: pd.DataFrame, *, max_rows: int = 100) -> str:
    """Episodes as an HTML table; rows carry ``promlab-episode-firing`` (it fired) or
    ``promlab-episode-pending`` (it never did)."""
    if episodes.empty:
        return '<div class="promlab-episodes-empty">no alerts in this window</div>'
    keys = [tuple(sorted(dict(d).items())) for d in episodes["labels"]]
    unique = sorted(set(keys))  # one name per alert, as the timeline's rows are named
    named = dict(zip(unique, row_names([dict(k) for k in unique]), strict=True))
    names = [named[k] for k in keys]
    rows = []
    for name, r in zip(names[:max_rows], episodes.head(max_rows).itertuples(index=False), strict=False):
        fired = not pd.isna(r.firing_at)
        cls = "promlab-episode-firing" if fired else "promlab-episode-pending"
        dur = "" if pd.isna(r.duration) else str(pd.Timedelta(r.duration))
        rows.append(f'<tr class="promlab-episode {cls}"><td>{html.escape(name)}</td>'
                    f"<td>{_fmt_time(r.pending_at)}</td><td>{_fmt_time(r.firing_at)}</td>"
                    f"<td>{_fmt_time(r.resolved_at)}</td><td>{html.escape(dur)}</td>"
                    f"<td>{float(r.peak_value):.4g}</td></tr>")
    more = f"<div>… {len(episodes) - max_rows} more episodes</div>" if len(episodes) > max_rows else ""
    return ('<table class="promlab-episodes"><tr><th>alert</th><th>pending at</th><th>firing at</th>'
            "<th>resolved at</th><th>firing for</th><th>peak</th></tr>" + "".join(rows) + "</table>" + more)


class RuleLab(w.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The alert-rule lab (see the module docstring).

    Parameters
    ----------
    rule_or_file
        An :class:`~promlab.rules.AlertingRule`, a :class:`~promlab.rules.RuleGroup`, a rule
        file's path or its YAML text.
    session
        A Session, a store or directory, or None for the ``%load_ext promlab`` session.
    alertname
        Which alerting rule (default: the first).
    range, end, step
        The window backtested: the last ``range`` up to ``end``, evaluated every ``step``
        (default: the group's interval).
    run
        Backtest at once.
    """

    expr = t.Unicode("")
    threshold = t.Float(None, allow_none=True)
    for_ = t.Unicode("0s")
    range = t.Unicode("1h")
    end = t.Unicode("now")
    step = t.Unicode("")
    episodes = t.Int(0)
    fired = t.Int(0)
    error = t.Unicode("")
    yaml = t.Unicode("")
    test_yaml = t.Unicode("")

    def __init__(self, rule_or_file: Any, *, session: Any = None, alertname: str | None = None,
                 range: str = "1h", end: Any = "now", step: str | None = None, run: bool = True) -> None:
        self.session = resolve_session(session)
        self.group, self.original = pick_rule(rule_or_file, alertname)
        self.frame: pd.DataFrame | None = None  # the last backtest's episodes
        self.sweep_frame: pd.DataFrame | None = None
        self.expr_box = w.Textarea(layout=w.Layout(width="90%", height="4em"))
        self.expr_box.add_class("promlab-rulelab-expr")
        self.threshold_box = w.FloatText(description="threshold", layout=w.Layout(width="200px"))
        self.for_box = w.Text(description="for", layout=w.Layout(width="140px"))
        self.range_box = w.Text(description="range", layout=w.Layout(width="140px"))
        self.end_box = w.Text(description="end", layout=w.Layout(width="260px"))
        self.step_box = w.Text(description="step", layout=w.Layout(width="140px"))
        self.run_button = w.Button(description="Backtest", button_style="primary", icon="play")
        self.run_button.add_class("promlab-rulelab-run")
        self.sweep_button = w.Button(description="Sweep")
        self.sweep_button.add_class("promlab-rulelab-sweep")
        self.yaml_button = w.Button(description="YAML")
        self.test_button = w.Button(description="Test")
        self.status = w.HTML()
        self.status.add_class("promlab-status")
        self.progress_out = w.Output()
        self.plot_image = w.Image(format="png")
        self.plot_image.add_class("promlab-plot")
        self.plot_image.add_class("promlab-rulelab-plot")
        self.episodes_out = w.HTML()
        self.episodes_out.add_class("promlab-rulelab-episodes")
        self.sweep_out = w.HTML()
        self.sweep_out.add_class("promlab-rulelab-sweep-table")
        self.export_out = w.HTML()
        self.export_out.add_class("promlab-rulelab-export")
        self.tabs = w.Tab(children=[w.VBox([self.plot_image, self.episodes_out]), self.sweep_out,
                                    self.export_out])
        for i, name in enumerate(("Backtest", "Sweep", "Export")):
            self.tabs.set_title(i, name)
        for trait, box in (("expr", self.expr_box), ("for_", self.for_box), ("range", self.range_box),
                           ("end", self.end_box), ("step", self.step_box)):
            t.link((self, trait), (box, "value"))
        self.observe(self._expr_changed, names="expr")
        self.threshold_box.observe(self._threshold_edited, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.sweep_button.on_click(lambda _: self.sweep())
        self.yaml_button.on_click(lambda _: self.to_yaml())
        self.test_button.on_click(lambda _: self.export_test())
        title = w.HTML(f"<b>rule lab: {html.escape(self.original.name)}</b>")
        controls = w.HBox([self.threshold_box, self.for_box, self.run_button, self.sweep_button,
                           self.yaml_button, self.test_button])
        window = w.HBox([self.range_box, self.end_box, self.step_box])
        super().__init__([title, self.expr_box, controls, window, self.status, self.progress_out,
                          self.tabs])
        self.add_class("promlab-rulelab")
        self.expr = self.original.expr
        self.for_ = format_duration(self.original.for_ms)
        self.range = range
        self.end = end if isinstance(end, str) else pd.Timestamp(parse_time(end), unit="ms", tz="UTC").isoformat()
        self.step = step or format_duration(self.group.interval_ms)
        if run:
            self.run()

    # --- state -------------------------------------------------------------------------------------
    def _expr_changed(self, change: dict[str, Any]) -> None:
        try:
            self.threshold = threshold_of(change["new"])
        except (PromlabError, ValueError):
            return  # a half-typed expression: keep the threshold
        self.threshold_box.disabled = self.threshold is None
        if self.threshold is not None and self.threshold_box.value != self.threshold:
            self.threshold_box.value = self.threshold

    def _threshold_edited(self, change: dict[str, Any]) -> None:
        if self.threshold is None or change["new"] == self.threshold:
            return
        try:
            self.expr = with_threshold(self.expr, float(change["new"]))
        except (PromlabError, ValueError) as e:
            self._fail(e)

    @property
    def rule(self) -> AlertingRule:
        """The rule as edited."""
        return replace(self.original, expr=self.expr.strip(), for_ms=parse_duration(self.for_ or "0s"))

    @property
    def window_ms(self) -> tuple[int, int, int]:
        """``(start_ms, end_ms, step_ms)`` of the backtest."""
        end_ms = parse_time(self.end or "now")
        step_ms = parse_duration(self.step) if self.step else self.group.interval_ms
        start_ms = end_ms - parse_duration(self.range or "1h")
        return start_ms - start_ms % step_ms + step_ms, end_ms - end_ms % step_ms, step_ms

    def edited_group(self) -> RuleGroup:
        """The rule's group as the lab evaluates it (see :func:`lab_group`)."""
        step_ms = self.window_ms[2]
        return replace(lab_group(self.group, self.original, self.rule), interval_ms=step_ms)

    def _fail(self, e: BaseException) -> None:
        self.error = str(e)
        self.status.value = error_html(e, self.expr)

    # --- actions -----------------------------------------------------------------------------------
    def run(self) -> pd.DataFrame | None:
        """Backtest the edited rule over the window: the timeline plot and the episodes table.
        Returns the episodes (None on an error, shown in the status line)."""
        try:
            start_ms, end_ms, step_ms = self.window_ms
            group, rule = self.edited_group(), self.rule

            def work() -> pd.DataFrame:
                with _progress.bar(True, total=2, desc="backtest", unit="step") as bar:
                    found = backtest(group, start_ms, end_ms, data=self.session.store,
                                     engine=self.session.engine)
                    bar.update(1)
                    self.plot_image.value = timeline_png(self.session, rule, found, start_ms, end_ms,
                                                         step_ms, offset_ms=self.group.query_offset_ms)
                    bar.update(1)
                return found

            episodes = with_progress(self.progress_out, work)
        except (PromlabError, ValueError) as e:
            self._fail(e)
            return None
        episodes = episodes[episodes["alertname"] == self.original.name].reset_index(drop=True)
        self.frame = episodes
        self.error = ""
        self.episodes = len(episodes)
        self.fired = int(episodes["firing_at"].notna().sum())
        self.episodes_out.value = episodes_html(episodes)
        firing = episodes["duration"].sum() if self.fired else pd.Timedelta(0)
        self.status.value = (f"<span>{self.episodes} episodes, {self.fired} fired, firing for "
                             f"{html.escape(str(firing))} in {html.escape(self.range)}</span>")
        self.tabs.selected_index = 0
        return episodes

    def sweep(self, thresholds: Any = None, fors: Any = None, *, flap: str = "5m") -> pd.DataFrame | None:
        """Backtest threshold × ``for`` variants (default: :func:`default_variants`); the table
        goes to the Sweep tab and is returned."""
        rule = self.rule
        dt, df = default_variants(self.threshold, rule.for_ms)
        thresholds = dt if thresholds is None else list(thresholds)
        fors = df if fors is None else list(fors)
        start_ms, end_ms, step_ms = self.window_ms
        try:
            table = with_progress(self.progress_out, lambda: backtest_sweep(
                rule, start_ms, end_ms, data=self.session.store, thresholds=thresholds, for_=fors,
                step=step_ms, flap=flap, engine=self.session.engine, progress=True))
        except (PromlabError, ValueError) as e:
            self._fail(e)
            return None
        self.sweep_frame = table
        shown = table.assign(**{"for": [format_duration(int(v / pd.Timedelta(1, "ms"))) for v in table["for"]],
                                "firing_time": [str(v) for v in table["firing_time"]]})
        self.sweep_out.value = str(shown.to_html(index=False, classes="promlab-table", border=0))
        self.tabs.selected_index = 1
        return table

    def to_yaml(self) -> str:
        """The edited rule as a rule file (its group's settings kept); shown in the Export tab."""
        group = replace(lab_group(self.group, self.original, self.rule),
                        rules=(self.rule,), file="")
        self.yaml = rules_yaml(group)
        self.export_out.value = f'<pre class="promlab-rulelab-yaml">{html.escape(self.yaml)}</pre>'
        self.tabs.selected_index = 2
        return self.yaml

    def export_test(self, out_dir: str | os.PathLike[str] = ".", name: str | None = None,
                    ) -> tuple[Path, Path]:
        """Write ``<name>.rules.yml`` and ``<name>.test.yml`` (promtool's format) into
        ``out_dir``: the edited rule and a test over the backtested window whose expected alerts
        are those the rule fires when each backtested episode starts firing and at the end
        (:func:`promlab.rules.export.write_rule_test`)."""
        start_ms, end_ms, step_ms = self.window_ms
        fname = name or self.original.name
        times = {end_ms - start_ms - (end_ms - start_ms) % step_ms}
        if self.frame is not None:  # also while each backtested episode fires
            for v in self.frame["firing_at"].dropna().head(MAX_TEST_TIMES):
                times.add(int(pd.Timestamp(v).value // 1_000_000) - start_ms)
        paths = write_rule_test(self.edited_group(), self.session.store, start_ms=start_ms,
                                end_ms=end_ms, out_dir=out_dir, name=fname, interval_ms=step_ms,
                                eval_times_ms=sorted(times))
        self.test_yaml = paths[1].read_text(encoding="utf-8")
        shown = self.test_yaml if len(self.test_yaml) < 20_000 else self.test_yaml[:20_000] + "\n…"
        self.export_out.value = (f"<div>wrote {html.escape(str(paths[0]))} and {html.escape(str(paths[1]))}"
                                 f'</div><pre class="promlab-rulelab-test">{html.escape(shown)}</pre>')
        self.tabs.selected_index = 2
        return paths
