"""What a rule's query reads, for evaluating rule unit tests rule by rule (:mod:`.rulewise`).

* :func:`produces` — the metric names a rule writes; :func:`reads` — whether a query may
  select a name; :func:`is_plain` — whether it reads nothing past its evaluation time (and
  nothing a range query could answer otherwise than instant ones);
* :func:`lag` — a query rewritten to read some series only up to the step before (the
  output of rules evaluated after it at the same step);
* :func:`peak_bound` — a bound of the samples an instant query of it holds, against the test
  engine's ``max_samples``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from promlab.model import METRIC_NAME, MatchType
from promlab.promql.engine import MIN_MEMORY_BUDGET
from promlab.promql.parser.ast import (
    AggregateExpr,
    Call,
    Expr,
    MatrixSelector,
    SubqueryExpr,
    VectorSelector,
    children,
    walk,
)
from promlab.rules.rule import ALERTS_FOR_STATE_METRIC, ALERTS_METRIC, AlertingRule, Rule
from promlab.storage.memory import MemoryStorage

__all__ = ["SAMPLE_ONLY", "is_plain", "lag", "peak_bound", "produces", "reads"]

#: Aggregations whose ties a range query might break otherwise than an instant one.
_TIE_BREAKING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
#: Range-vector functions of the samples in the window alone (not of the window's bounds).
SAMPLE_ONLY = frozenset({
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "last_over_time", "present_over_time", "absent_over_time", "stddev_over_time",
    "stdvar_over_time", "quantile_over_time", "mad_over_time", "changes", "resets",
})
#: Functions that read more than their arguments.
_READS_STORE = frozenset({"info"})


def produces(rule: Rule) -> tuple[str, ...]:
    """The metric names of the series ``rule`` writes."""
    return (ALERTS_METRIC, ALERTS_FOR_STATE_METRIC) if isinstance(rule, AlertingRule) else (rule.name,)


def is_plain(expr: Expr) -> bool:
    """No ``@``, negative or computed offset, computed range or step, ``anchored`` or
    ``smoothed`` selector (they read past their windows), tie-breaking aggregation or
    store-reading function."""
    for node in walk(expr):
        if isinstance(node, SubqueryExpr) and (
                node.at_ms is not None or node.at_modifier is not None or node.offset_ms < 0
                or node.offset_expr is not None or node.range_expr is not None
                or node.step_expr is not None):
            return False
        if isinstance(node, VectorSelector) and (
                node.at_ms is not None or node.at_modifier is not None or node.offset_ms < 0
                or node.offset_expr is not None or node.anchored or node.smoothed):
            return False
        if isinstance(node, MatrixSelector) and node.range_expr is not None:
            return False
        if isinstance(node, AggregateExpr) and node.op in _TIE_BREAKING:
            return False
        if isinstance(node, Call) and node.func.name in _READS_STORE:
            return False
    return True


def reads(expr: Expr, name: str) -> bool:
    """Whether a selector of ``expr`` may select series named ``name``."""
    return any(all(m.matches(name) for m in node.matchers if m.name == METRIC_NAME)
               for node in walk(expr) if isinstance(node, VectorSelector))


def _selects_only(node: VectorSelector, names: set[str]) -> bool:
    """Whether ``node`` names one metric of ``names`` (``name{...}`` / ``{__name__="name"}``)."""
    return any(m.name == METRIC_NAME and m.type == MatchType.EQUAL and m.value in names
               for m in node.matchers)


class _NotLaggable(Exception):
    pass


def _lagged(node: Expr, names: set[str], *, windows: bool = False) -> Expr:
    """``node`` with its reads of series named in ``names`` kept to samples before the
    evaluation time: the output of rules evaluated after it at the same step.

    At step ``t`` such a rule has written up to ``t - step``: a range selector ``m[r]`` sees
    ``(t - r, t)``, which is ``m[r - 1ms] offset 1ms`` when only the samples count (the
    functions of :data:`SAMPLE_ONLY`, ``windows``); an instant selector sees the latest
    sample before ``t``, which ``m offset 1ms`` finds too (its window also takes ``t - 5m``,
    never the latest sample there: a rule writes at every step, or a staleness marker once,
    and the evaluation interval is shorter than the lookback, see :func:`plan`). A selector
    with an offset sees nothing at ``t`` anyway. Anything else reading them (a subquery, other
    range functions, selectors of those and other series at once) raises
    :class:`_NotLaggable`.
    """
    if isinstance(node, VectorSelector):
        if not any(reads(node, n) for n in names) or node.offset_ms > 0:
            return node
        if not _selects_only(node, names):
            raise _NotLaggable("a selector of a later rule's output and other series")
        return dataclasses.replace(node, offset_ms=1)
    if isinstance(node, MatrixSelector):
        vs = node.vector_selector
        if not any(reads(vs, n) for n in names) or vs.offset_ms > 0:
            return node
        if not (windows and _selects_only(vs, names) and node.range_ms > 1):
            raise _NotLaggable("a range of a later rule's output")
        return dataclasses.replace(node, range_ms=node.range_ms - 1,
                                   vector_selector=dataclasses.replace(vs, offset_ms=1))
    if isinstance(node, SubqueryExpr):
        if any(reads(node.expr, n) for n in names):
            raise _NotLaggable("a subquery of a later rule's output")
        return node
    changes: dict[str, object] = {}
    inside = isinstance(node, Call) and node.func.name in SAMPLE_ONLY
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            new = _lagged(value, names, windows=inside)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and any(isinstance(v, Expr) for v in value):
            items = tuple(_lagged(v, names, windows=inside) if isinstance(v, Expr) else v for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[f.name] = items
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]


def lag(expr: Expr, names: set[str]) -> Expr | None:
    """``expr`` with its reads of the series named in ``names`` kept to samples before the
    evaluation time (see :func:`_lagged`); None when some read cannot be."""
    try:
        return _lagged(expr, names)
    except _NotLaggable:
        return None


def _max_in_window(ts: npt.NDArray[np.int64], window_ms: int) -> int:
    """The most samples of ``ts`` (sorted) in any closed window ``[t - window_ms, t]``."""
    if not ts.shape[0]:
        return 0
    first = np.searchsorted(ts, ts - window_ms, side="left")
    return int((np.arange(ts.shape[0]) - first).max()) + 1


def peak_bound(store: MemoryStorage, expr: Expr, lookback_ms: int, default_step_ms: int) -> int | None:
    """An upper bound of the samples an instant query of ``expr`` holds at once, at any time,
    over what ``store`` holds now (None: histograms, not bounded here; or more selected than
    the engine's own memory budget might take).

    A range selector holds at most its series times the most samples in one window (its
    range, widened by the ranges of the subqueries around it). Each node's result (an
    instant selector's too: one sample per series) has at most as many elements per step as
    all selectors have series, plus one per node (scalars, ``vector()``), at as many steps as
    the subqueries around it evaluate it at. (The engine's model of what Prometheus holds,
    :mod:`promlab.promql.eval.querystats`, never counts more than these results and windows.)
    """
    q = store.querier(-(1 << 62), 1 << 62)
    loads = series = nodes = selected = 0
    most_steps = 1
    # (node, ranges of the subqueries around it, steps they evaluate it at, window if a range
    # selector's vector selector)
    stack: list[tuple[Expr, int, int, int | None]] = [(expr, 0, 1, None)]
    while stack:
        node, around_ms, steps, window = stack.pop()
        nodes += 1
        most_steps = max(most_steps, steps)
        if isinstance(node, SubqueryExpr):
            inner = node.range_ms // (node.step_ms or default_step_ms) + 1
            stack.append((node.expr, around_ms + node.range_ms, steps * inner, None))
            continue
        if isinstance(node, MatrixSelector):
            stack.append((node.vector_selector, around_ms, steps, node.range_ms))
            continue
        stack.extend((c, around_ms, steps, None) for c in children(node))
        if not isinstance(node, VectorSelector):
            continue
        ss = q.select(node.matchers).compact()
        if ss.histograms is not None:
            return None
        series += len(ss)
        runs = list(zip(ss.offsets[:-1].tolist(), ss.offsets[1:].tolist(), strict=True))
        if window is not None:
            loads += len(ss) * max((_max_in_window(ss.ts_ms[a:b], window + around_ms) for a, b in runs),
                                   default=0)
        # What the engine selects, lookback included, against its own memory budget.
        selected += len(ss) * max((_max_in_window(ss.ts_ms[a:b], (window or 0) + around_ms + lookback_ms)
                                   for a, b in runs), default=0)
    if selected > MIN_MEMORY_BUDGET:
        return None
    return loads + nodes * (series + nodes) * most_steps
