"""The explain view: every sub-expression of a query evaluated on its own.

PromLens-style: for ``sum by (job) (rate(x[5m])) > 1`` it shows the result of ``x[5m]``,
``rate(x[5m])``, ``sum by (job) (...)``, ``1`` and the whole, each with its series count, so a
surprising result can be traced to the node that produced it.

Examples
--------
>>> from promlab import MemoryStorage, Labels, Session
>>> st = MemoryStorage()
>>> for j in ("a", "b"):
...     st.add_series(Labels({"__name__": "up", "job": j}), [0], [1.0])
>>> with Session(st) as s:
...     [(n.depth, n.text, n.series) for n in explain(s, "sum(up) > 1", time=10)]
[(0, 'sum(up) > 1', 1), (1, 'sum(up)', 1), (2, 'up', 2), (1, '1', 1)]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promlab.errors import PromlabError
from promlab.promql.parser import parse_expr, to_string
from promlab.promql.parser.ast import Expr, ParenExpr, StringLiteral, children
from promlab.promql.parser.types import ValueType

if TYPE_CHECKING:
    import pandas as pd

    from promlab.session import Session

__all__ = ["ExplainNode", "explain"]


@dataclass
class ExplainNode:
    """One sub-expression: its text, depth in the tree (0: the whole query), PromQL type, and
    result (``frame``; ``error`` when it failed on its own)."""

    depth: int
    text: str
    type: str
    frame: pd.DataFrame | None
    series: int
    error: str | None = None


def explain(session: Session, expr: str, *, time: Any = None, start: Any = None,
            end: Any = None, step: Any = None, max_nodes: int = 50) -> list[ExplainNode]:
    """Evaluate ``expr`` and each of its sub-expressions (pre-order, parentheses skipped).

    A range query evaluates every instant-vector and scalar node over the same range; a
    range-vector node (``x[5m]``, a subquery) is evaluated as an instant query at ``end``.

    Raises
    ------
    ParseError
        When ``expr`` does not parse.
    """
    tree = parse_expr(expr)
    ranged = start is not None
    out: list[ExplainNode] = []
    stack: list[tuple[Expr, int]] = [(tree, 0)]
    while stack and len(out) < max_nodes:
        node, depth = stack.pop()
        stack.extend((c, depth + 1) for c in reversed(children(node)))
        if isinstance(node, ParenExpr):  # same result as its child, shown once
            stack[-1] = (stack[-1][0], depth)
            continue
        if isinstance(node, StringLiteral):
            continue
        out.append(_evaluate(session, node, depth, ranged, time, start, end, step))
    return out


def _evaluate(session: Session, node: Expr, depth: int, ranged: bool, time: Any, start: Any,
              end: Any, step: Any) -> ExplainNode:
    text = to_string(node)
    kind = node.type.value if isinstance(node.type, ValueType) else str(node.type)
    try:
        if ranged and node.type is not ValueType.MATRIX:
            frame = session.evaluate(node, start=start, end=end, step=step).to_frame()
        else:
            frame = session.evaluate(node, time=end if ranged else time).to_frame()
    except PromlabError as e:
        return ExplainNode(depth, text, kind, None, 0, error=str(e))
    return ExplainNode(depth, text, kind, frame, _series_count(frame))


def _series_count(frame: pd.DataFrame) -> int:
    labels = frame.prom.label_columns()
    if not labels:
        return 1 if len(frame) else 0
    return int(frame[labels].drop_duplicates().shape[0])
