"""The PromQL abstract syntax tree.

Nodes are frozen dataclasses carrying a source position range (``pos``: start and end character
offsets into the query text) and no execution state. ``node.type`` is the PromQL value type the
node evaluates to. :func:`walk` visits a tree depth-first; :func:`children` lists a node's
direct children.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from promlab.model import Matcher
from promlab.promql.parser.functions import Function
from promlab.promql.parser.types import ValueType

__all__ = [
    "AggregateExpr",
    "BinaryExpr",
    "Call",
    "Expr",
    "MatrixSelector",
    "NumberLiteral",
    "ParenExpr",
    "PosRange",
    "StringLiteral",
    "SubqueryExpr",
    "UnaryExpr",
    "ValueType",
    "VectorMatching",
    "VectorSelector",
    "children",
    "walk",
]


@dataclass(frozen=True, slots=True)
class PosRange:
    """Character offsets ``[start, end)`` into the query text."""

    start: int = 0
    end: int = 0


AtModifier = Literal["start", "end"]
Cardinality = Literal["one-to-one", "many-to-one", "one-to-many", "many-to-many"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Expr:
    pos: PosRange = field(default_factory=PosRange, compare=False)

    @property
    def type(self) -> ValueType:  # pragma: no cover - every node overrides
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberLiteral(Expr):
    """A float literal. ``duration`` is True when it was written as a duration (``5m`` = 300);
    it only changes how the literal is printed."""

    value: float
    duration: bool = field(default=False, compare=False)

    @property
    def type(self) -> ValueType:
        return ValueType.SCALAR

    # Equal literals are the same float bit for bit: -0 is another literal than 0 (it prints
    # and computes otherwise), and NaN is NaN. (Float equality let a cache keyed by trees hand
    # a 0 literal to a query that wrote -0.)
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NumberLiteral):
            return NotImplemented
        return _float_bits(self.value) == _float_bits(other.value)

    def __hash__(self) -> int:
        return hash(_float_bits(self.value))


def _float_bits(x: float) -> int:
    return int.from_bytes(struct.pack("<d", x), "little")


@dataclass(frozen=True, slots=True, kw_only=True)
class StringLiteral(Expr):
    value: str

    @property
    def type(self) -> ValueType:
        return ValueType.STRING


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorSelector(Expr):
    """``name{matchers} offset X @ T``.

    ``matchers`` include the ``__name__`` matcher when a name was given. ``offset_ms`` may be
    negative. ``at_ms`` is an ``@ <timestamp>`` in milliseconds; ``at_modifier`` is ``"start"``
    or ``"end"`` for ``@ start()`` / ``@ end()``; at most one of the two is set.
    ``anchored`` / ``smoothed`` are the experimental extended range-selector modifiers
    (``foo[5m] anchored``); at most one is set. ``offset_expr`` is a query-dependent offset
    duration expression (``offset step()``, see :class:`MatrixSelector`).
    """

    name: str | None
    matchers: tuple[Matcher, ...]
    offset_ms: int = 0
    at_ms: int | None = None
    at_modifier: AtModifier | None = None
    anchored: bool = False
    smoothed: bool = False
    offset_expr: Expr | None = None

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixSelector(Expr):
    """``selector[range]``; offset and ``@`` live on the inner vector selector.

    ``range_expr`` is set (and ``range_ms`` is 0) for an experimental duration expression that
    depends on the query (``[step()]``, ``[range() + 1m]``): a scalar expression of number
    literals, ``+ - * / % ^``, unary minus, parentheses and calls of ``step()``, ``range()``,
    ``min_of()``, ``max_of()``, in seconds. Constant duration expressions (``[26m+4m]``) are
    folded into ``range_ms`` by the parser. The same holds for ``step_expr`` and
    ``offset_expr`` elsewhere.
    """

    vector_selector: VectorSelector
    range_ms: int
    range_expr: Expr | None = None

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX


@dataclass(frozen=True, slots=True, kw_only=True)
class SubqueryExpr(Expr):
    """``expr[range:step] offset X @ T``; ``step_ms == 0`` means the engine's default step.

    ``range_expr`` / ``step_expr`` / ``offset_expr``: query-dependent duration expressions (see
    :class:`MatrixSelector`).
    """

    expr: Expr
    range_ms: int
    step_ms: int = 0
    offset_ms: int = 0
    at_ms: int | None = None
    at_modifier: AtModifier | None = None
    range_expr: Expr | None = None
    step_expr: Expr | None = None
    offset_expr: Expr | None = None

    @property
    def type(self) -> ValueType:
        return ValueType.MATRIX


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(Expr):
    func: Function
    args: tuple[Expr, ...]

    @property
    def type(self) -> ValueType:
        return self.func.return_type


@dataclass(frozen=True, slots=True, kw_only=True)
class AggregateExpr(Expr):
    """``op by|without (grouping) (param, expr)``; ``param`` is set for topk, quantile, ..."""

    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False

    @property
    def type(self) -> ValueType:
        return ValueType.VECTOR


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorMatching:
    """How the two sides of a vector/vector binary operation are matched.

    ``on=True`` means ``on(matching_labels)``, otherwise ``ignoring(matching_labels)``.
    ``include`` are the extra labels of ``group_left(...)``/``group_right(...)``.
    ``fill_lhs`` / ``fill_rhs`` are the experimental ``fill(v)`` / ``fill_left(v)`` /
    ``fill_right(v)`` values used for a missing left / right side (None: no filling).
    """

    card: Cardinality = "one-to-one"
    matching_labels: tuple[str, ...] = ()
    on: bool = False
    include: tuple[str, ...] = ()
    fill_lhs: float | None = None
    fill_rhs: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryExpr(Expr):
    """``lhs op [bool] [on(...)|ignoring(...)] [group_left(...)|group_right(...)] rhs``.

    ``matching`` is set when both sides are vectors (the default one-to-one matching when no
    modifier was written; many-to-many for ``and``/``or``/``unless``).
    """

    op: str
    lhs: Expr
    rhs: Expr
    matching: VectorMatching | None = None
    return_bool: bool = False

    @property
    def type(self) -> ValueType:
        # Down the left spine without recursion: chains of thousands of terms are left-deep.
        node: Expr = self
        while isinstance(node, BinaryExpr):
            if node.rhs.type is not ValueType.SCALAR:
                return ValueType.VECTOR
            node = node.lhs
        return ValueType.SCALAR if node.type is ValueType.SCALAR else ValueType.VECTOR


@dataclass(frozen=True, slots=True, kw_only=True)
class UnaryExpr(Expr):
    op: str  # "-" or "+"
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


@dataclass(frozen=True, slots=True, kw_only=True)
class ParenExpr(Expr):
    expr: Expr

    @property
    def type(self) -> ValueType:
        return self.expr.type


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct child expressions of ``node``, left to right."""
    if isinstance(node, MatrixSelector):
        return (node.vector_selector,)
    if isinstance(node, SubqueryExpr | UnaryExpr | ParenExpr):
        return (node.expr,)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, AggregateExpr):
        return (node.param, node.expr) if node.param is not None else (node.expr,)
    if isinstance(node, BinaryExpr):
        return (node.lhs, node.rhs)
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Depth-first pre-order traversal of the tree rooted at ``node``."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n)))
