"""Dashboard panels: a small YAML format, Grafana dashboard JSON, and their variables.

YAML::

    title: Demo service
    range: 1h
    panels:
      - title: Requests/s by status
        expr: sum by (status) (rate(demo_requests_total[$__rate_interval]))
        kind: stacked          # line (default), stacked, stat, table, heatmap
      - title: Error ratio
        expr: sum(rate(demo_requests_total{status="500"}[5m])) / sum(rate(demo_requests_total[5m]))
        kind: stat

A Grafana dashboard JSON contributes its Prometheus panels (``timeseries``/``graph`` → line or
stacked, ``stat``/``singlestat``/``gauge`` → stat, ``table``, ``heatmap``; panels inside rows
too) and its ``label_values(...)`` template variables, resolved against the store.
``$__interval``, ``$__rate_interval``, ``$__range`` and ``$var``/``${var}``/``[[var]]`` are
substituted by :func:`expand`.

Examples
--------
>>> d = load_dashboard("panels: [{title: Up, expr: up, kind: stat}]")
>>> d.panels[0].kind, d.range
('stat', '1h')
>>> expand("rate(x{job=~'$job'}[$__rate_interval])", {"job": ["a", "b"]}, interval_ms=15_000,
...        scrape_interval_ms=15_000, range_ms=3_600_000)
"rate(x{job=~'(a|b)'}[60s])"
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from promlab.errors import ConfigError

if TYPE_CHECKING:
    from promlab.session import Session

__all__ = ["KINDS", "Dashboard", "Panel", "Variable", "expand", "interval_ms", "load_dashboard",
           "resolve_variables"]

KINDS = ("line", "stacked", "stat", "table", "heatmap")
_GRAFANA_KIND = {"timeseries": "line", "graph": "line", "stat": "stat", "singlestat": "stat",
                 "gauge": "stat", "bargauge": "stat", "table": "table", "heatmap": "heatmap"}
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<sel>.+?)\s*,\s*)?(?P<label>[A-Za-z_]\w*)\s*\)\s*$")
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")


@dataclass(frozen=True)
class Panel:
    """One panel: a title, one or more expressions and how to show them."""

    title: str
    exprs: tuple[str, ...]
    kind: str = "line"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"panel {self.title!r}: unknown kind {self.kind!r}, one of "
                              + ", ".join(KINDS))


@dataclass(frozen=True)
class Variable:
    """A template variable: ``label_values(selector, label)`` and the chosen value(s)."""

    name: str
    label: str
    selector: str | None = None
    current: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dashboard:
    """Panels, variables and the time range (a duration such as ``1h``)."""

    title: str
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    range: str = "1h"
    scrape_interval: str = "15s"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def load_dashboard(source: Any) -> Dashboard:
    """A :class:`Dashboard` from a path (``.yml``/``.yaml``/``.json``), YAML or JSON text, a
    parsed mapping (ours or Grafana's: it has ``panels`` with ``targets``), or a list of
    panels (:class:`Panel`, dicts, or ``(title, expr[, kind])`` tuples).

    Raises
    ------
    ConfigError
        When the source has no panels or a panel is invalid.
    """
    if isinstance(source, Dashboard):
        return source
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                           and source.endswith((".yml", ".yaml", ".json"))):
        source = yaml.safe_load(Path(source).read_text())  # JSON is YAML
    elif isinstance(source, str):
        source = yaml.safe_load(source)
    if isinstance(source, Sequence) and not isinstance(source, str):
        return Dashboard("dashboard", tuple(_panel(p) for p in source))
    if not isinstance(source, Mapping) or not source.get("panels"):
        raise ConfigError("a dashboard needs a list of panels")
    if _is_grafana(source):
        return _from_grafana(source)
    return Dashboard(str(source.get("title", "dashboard")),
                     tuple(_panel(p) for p in source["panels"]),
                     tuple(_variable(v) for v in source.get("variables", ())),
                     range=str(source.get("range", "1h")),
                     scrape_interval=str(source.get("scrape_interval", "15s")))


def _panel(p: Any) -> Panel:
    if isinstance(p, Panel):
        return p
    if isinstance(p, tuple | list):
        return Panel(str(p[0]), (str(p[1]),), str(p[2]) if len(p) > 2 else "line")
    if not isinstance(p, Mapping) or not (p.get("expr") or p.get("exprs")):
        raise ConfigError(f"a panel needs a title and an expr: {p!r}")
    exprs = p.get("exprs") or [p["expr"]]
    return Panel(str(p.get("title", exprs[0])), tuple(str(e) for e in exprs),
                 str(p.get("kind", "line")))


def _variable(v: Mapping[str, Any]) -> Variable:
    m = _LABEL_VALUES.match(str(v.get("query", "")))
    if m is None:
        raise ConfigError(f"variable {v.get('name')!r}: only label_values(...) queries are "
                          "supported")
    cur = v.get("current", ())
    return Variable(str(v["name"]), m["label"], m["sel"],
                    tuple(str(c) for c in ([cur] if isinstance(cur, str) else cur)))


def _is_grafana(d: Mapping[str, Any]) -> bool:
    return any(isinstance(p, Mapping) and ("targets" in p or p.get("type") == "row")
               for p in d["panels"])


def _from_grafana(d: Mapping[str, Any]) -> Dashboard:
    panels: list[Panel] = []
    for p in _flatten_rows(d["panels"]):
        kind = _GRAFANA_KIND.get(str(p.get("type")))
        exprs = tuple(str(t["expr"]) for t in p.get("targets", ())
                      if t.get("expr") and not t.get("hide") and _is_prometheus(t, p))
        if kind is None or not exprs:
            continue  # text panels, other data sources
        custom = p.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
        if kind == "line" and (p.get("stack") or custom.get("stacking", {}).get("mode")
                               in ("normal", "percent")):
            kind = "stacked"
        panels.append(Panel(str(p.get("title") or exprs[0]), exprs, kind))
    if not panels:
        raise ConfigError("the Grafana dashboard has no Prometheus panels")
    variables = []
    for v in d.get("templating", {}).get("list", ()):
        q = v.get("query")
        q = q.get("query") if isinstance(q, Mapping) else q
        if v.get("type") != "query" or not isinstance(q, str) or not _LABEL_VALUES.match(q):
            continue
        cur = v.get("current", {}).get("value", ())
        cur = [cur] if isinstance(cur, str) else list(cur or ())
        cur = [c for c in cur if c not in ("$__all", "All")]
        variables.append(_variable({"name": v["name"], "query": q, "current": cur}))
    rng = str(d.get("time", {}).get("from", "now-1h"))
    m = re.fullmatch(r"now-(\w+)", rng)
    return Dashboard(str(d.get("title", "dashboard")), tuple(panels), tuple(variables),
                     range=m.group(1) if m else "1h")


def _flatten_rows(panels: Sequence[Any]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for p in panels:
        if p.get("type") == "row":
            out.extend(_flatten_rows(p.get("panels", ())))
        else:
            out.append(p)
    return out


def _is_prometheus(target: Mapping[str, Any], panel: Mapping[str, Any]) -> bool:
    ds = target.get("datasource") or panel.get("datasource")
    if ds is None or isinstance(ds, str):
        return True  # the default data source, or a name: assume Prometheus
    return str(ds.get("type", "prometheus")) == "prometheus"


def resolve_variables(session: Session, variables: Sequence[Variable]) -> dict[str, list[str]]:
    """Each variable's values: its ``current`` choice, else every value of ``label_values``."""
    out: dict[str, list[str]] = {}
    for v in variables:
        if v.current:
            out[v.name] = list(v.current)
            continue
        sel = [v.selector] if v.selector else []
        out[v.name] = session.label_values(v.label, *sel)
    return out


def interval_ms(range_ms: int, *, points: int = 250, minimum_ms: int = 1000) -> int:
    """Grafana's ``$__interval``: the range over the wanted points, rounded to whole seconds.

    Examples
    --------
    >>> interval_ms(3_600_000)
    14000
    """
    return max(minimum_ms, (range_ms // points) // 1000 * 1000)


def expand(expr: str, values: Mapping[str, Sequence[str]], *, interval_ms: int,
           scrape_interval_ms: int, range_ms: int) -> str:
    """Substitute Grafana's built-in and template variables in ``expr``.

    ``$__rate_interval`` is ``max($__interval + scrape interval, 4 × scrape interval)``, as
    Grafana defines it. A variable with several values becomes ``(a|b)`` (for ``=~``); with
    none, ``.*``.
    """
    builtins = {
        "__interval": f"{interval_ms // 1000}s",
        "__interval_ms": str(interval_ms),
        "__rate_interval": f"{max(interval_ms + scrape_interval_ms, 4 * scrape_interval_ms) // 1000}s",
        "__range": f"{range_ms // 1000}s",
        "__range_s": str(range_ms // 1000),
    }

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name not in values:
            return m.group(0)
        vs = list(values[name])
        if len(vs) == 1:
            return vs[0]
        return "(" + "|".join(vs) + ")" if vs else ".*"

    return _VAR.sub(repl, expr)
