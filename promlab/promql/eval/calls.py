"""What an implementation receives, and the per-module tables implementations are declared in.

Each implementation module declares its own table (``function = FunctionTable()``, used as the
decorator ``@function("rate")``); :mod:`promlab.promql.eval.registry` imports those modules and
merges their tables, so the registry is complete as soon as it is imported. This module sits
below both, so neither imports the other's importer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from promlab.model import Labels
from promlab.promql.parser.ast import AggregateExpr, Call
from promlab.promql.values import I64, EvalContext, Value, Vector

__all__ = [
    "AggregationCall",
    "AggregationImpl",
    "AggregationTable",
    "FunctionCall",
    "FunctionImpl",
    "FunctionTable",
    "ImplTable",
]


@dataclass(slots=True)
class FunctionCall:
    """A function call with its arguments already evaluated over all steps."""

    node: Call
    args: list[Value]
    ctx: EvalContext


@dataclass(slots=True)
class AggregationCall:
    """An aggregation: the input vector, its group id per series, the label set per group
    (already reduced per ``by``/``without``) and the evaluated parameter, if any."""

    node: AggregateExpr
    vector: Vector
    param: Value | None
    group_ids: I64
    groups: list[Labels]
    ctx: EvalContext
    # topk/bottomk/limitk: k was checked by the evaluator over slices of a range (kcheck.py)
    k_checked: bool = False


FunctionImpl = Callable[[FunctionCall], Value]
AggregationImpl = Callable[[AggregationCall], Vector]

ImplT = TypeVar("ImplT")


class ImplTable(Generic[ImplT]):
    """One module's implementations keyed by PromQL name; call it to get a registering decorator.

    Examples
    --------
    >>> table: ImplTable[int] = ImplTable()
    >>> _ = table("one", "uno")(1)
    >>> sorted(table.impls)
    ['one', 'uno']
    """

    def __init__(self) -> None:
        self.impls: dict[str, ImplT] = {}

    def __call__(self, *names: str) -> Callable[[ImplT], ImplT]:
        def deco(impl: ImplT) -> ImplT:
            for name in names:
                if name in self.impls:
                    raise ValueError(f"{name!r} is implemented twice in one table")
                self.impls[name] = impl
            return impl

        return deco

    @staticmethod
    def merge(tables: Iterable[ImplTable[ImplT]]) -> dict[str, ImplT]:
        """One dict of all ``tables``' implementations; a name in two tables is an error."""
        out: dict[str, ImplT] = {}
        for table in tables:
            twice = out.keys() & table.impls.keys()
            if twice:
                raise ValueError(f"implemented in two modules: {sorted(twice)}")
            out.update(table.impls)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self.impls)})"


class FunctionTable(ImplTable[FunctionImpl]):
    """A module's PromQL function implementations (``@function("rate")``)."""


class AggregationTable(ImplTable[AggregationImpl]):
    """A module's aggregation implementations (``@aggregation("sum")``)."""
