"""The step-invariance re-runs: pin every selector and subquery to the evaluation time with ``@``.

Prometheus's runner (``atModifierTestCases``) re-evaluates every instant ``eval`` with ``@ <t>``
added to each vector selector, matrix selector and subquery that has no ``@ <timestamp>`` yet,
at the times ``[-10t, 0, t/5, t, 10t]`` (``[-1000, 0, 1000]`` when ``t == 0``); the result must
not change. Two details of the Go code are reproduced on purpose:

* it never descends into a subquery (which always carries an ``@`` after the rewrite), so neither
  the selectors nor the time-dependent calls inside one are looked at;
* ``@ start()`` / ``@ end()`` are not "a timestamp" there, so they are replaced by ``@ <t>``
  (equivalent for an instant query at ``t``).

Expressions calling a time-dependent function outside subqueries are not re-run.
"""

from __future__ import annotations

import dataclasses

from promlab.promql.eval.stepinvariant import AT_UNSAFE_FUNCTIONS
from promlab.promql.parser.ast import Call, Expr, MatrixSelector, SubqueryExpr, VectorSelector

__all__ = ["add_at", "rerun_times"]


class _Unsafe(Exception):
    """Raised to abandon the rewrite when a time-dependent function is found."""


def _rewrite(node: Expr, ts: int) -> Expr:
    if isinstance(node, VectorSelector):
        if node.at_ms is None:
            return dataclasses.replace(node, at_ms=ts, at_modifier=None)
        return node
    if isinstance(node, MatrixSelector):
        vs = node.vector_selector
        if vs.at_ms is not None:
            return node
        return dataclasses.replace(node, vector_selector=dataclasses.replace(vs, at_ms=ts, at_modifier=None))
    if isinstance(node, SubqueryExpr):
        if node.at_ms is None:
            return dataclasses.replace(node, at_ms=ts, at_modifier=None)
        return node
    if isinstance(node, Call) and node.func.name in AT_UNSAFE_FUNCTIONS:
        raise _Unsafe(node.func.name)
    changes: dict[str, object] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Expr):
            new = _rewrite(value, ts)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, tuple) and value and any(isinstance(v, Expr) for v in value):
            items = tuple(_rewrite(v, ts) if isinstance(v, Expr) else v for v in value)
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[f.name] = items
    return dataclasses.replace(node, **changes) if changes else node  # type: ignore[arg-type]


def add_at(expr: Expr, ts_ms: int) -> Expr | None:
    """``expr`` with ``@ ts_ms`` on every selector and subquery lacking one.

    Returns ``None`` when the expression calls a function whose result depends on the
    evaluation time (then Prometheus skips the re-runs).
    """
    try:
        return _rewrite(expr, ts_ms)
    except _Unsafe:
        return None


def rerun_times(ts_ms: int) -> list[int]:
    """The evaluation times of the re-runs for an instant eval at ``ts_ms``."""
    if ts_ms == 0:
        return [-1000, 0, 1000]
    return [-10 * ts_ms, 0, ts_ms // 5 if ts_ms >= 0 else -((-ts_ms) // 5), ts_ms, 10 * ts_ms]
