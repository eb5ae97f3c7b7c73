"""PromQL feature flags, with Prometheus's ``--enable-feature`` names.

Prometheus gates its experimental PromQL behind feature flags; promlab does the same so a query
that works here works in a Prometheus started with the same flags:

======================================  ===================================================
flag                                    enables
======================================  ===================================================
``promql-experimental-functions``       ``sort_by_label``, ``mad_over_time``, ``ts_of_*``,
                                        ``info()``, ``limitk``/``limit_ratio``, ... (every
                                        function marked experimental in the parser's table)
``promql-duration-expr``                duration arithmetic (``[5m+1m]``, ``offset step()``,
                                        ``step()``/``range()``/``min_of``/``max_of``)
``promql-extended-range-selectors``     ``anchored`` / ``smoothed`` selector modifiers
``promql-binop-fill-modifiers``         ``fill()`` / ``fill_left()`` / ``fill_right()``
``promql-delayed-name-removal``         ``__name__`` dropped at the end of the query, not
                                        at each operation (ON by default in promlab)
``type-and-unit-labels``                ``__type__`` / ``__unit__`` metadata labels
``use-start-timestamps``                start timestamps in ``rate``/``increase``/...
``native-histograms``                   accepted for compatibility (always on)
======================================  ===================================================

Defaults differ from Prometheus 3 in one place: delayed name removal is ON (Prometheus 3 keeps
it behind its flag). It is what Prometheus's own PromQL tests run with, it never turns a working
query into an error (eager removal can raise "vector cannot contain metrics with the same
labelset" where delayed removal does not), and ``label_replace`` can keep ``__name__``. Pass
``"-promql-delayed-name-removal"`` to get Prometheus 3's default eager removal.
"""

from __future__ import annotations

from collections.abc import Iterable

from promlab.errors import BadData
from promlab.promql.parser import ast

__all__ = [
    "ALL_FEATURES",
    "DEFAULT_FEATURES",
    "DELAYED_NAME_REMOVAL",
    "DURATION_EXPR",
    "EXPERIMENTAL_FUNCTIONS",
    "EXTENDED_RANGE_SELECTORS",
    "FILL_MODIFIERS",
    "check_features",
    "resolve_features",
]

EXPERIMENTAL_FUNCTIONS = "promql-experimental-functions"
DURATION_EXPR = "promql-duration-expr"
EXTENDED_RANGE_SELECTORS = "promql-extended-range-selectors"
FILL_MODIFIERS = "promql-binop-fill-modifiers"
DELAYED_NAME_REMOVAL = "promql-delayed-name-removal"
TYPE_AND_UNIT_LABELS = "type-and-unit-labels"
USE_START_TIMESTAMPS = "use-start-timestamps"
NATIVE_HISTOGRAMS = "native-histograms"

ALL_FEATURES = frozenset({
    EXPERIMENTAL_FUNCTIONS, DURATION_EXPR, EXTENDED_RANGE_SELECTORS, FILL_MODIFIERS,
    DELAYED_NAME_REMOVAL, TYPE_AND_UNIT_LABELS, USE_START_TIMESTAMPS, NATIVE_HISTOGRAMS,
})
DEFAULT_FEATURES = frozenset({DELAYED_NAME_REMOVAL, NATIVE_HISTOGRAMS})
# Aggregations Prometheus treats as experimental functions.
_EXPERIMENTAL_AGGREGATIONS = frozenset({"limitk", "limit_ratio"})
# Functions of duration expressions (gated by promql-duration-expr, not experimental-functions).
_DURATION_FUNCTIONS = frozenset({"step", "range", "start", "end", "min_of", "max_of"})


def resolve_features(features: Iterable[str] | str | None) -> frozenset[str]:
    """The enabled feature set: the defaults plus ``features``.

    ``features`` is a list of flag names or one comma-separated string (as
    ``--enable-feature=a,b``); ``"all"`` enables everything, a name prefixed with ``-`` turns a
    default off. Unknown names raise :class:`~promlab.errors.BadData`.
    """
    if features is None:
        return DEFAULT_FEATURES
    if isinstance(features, str):
        features = [features]
    out = set(DEFAULT_FEATURES)
    for item in features:
        for raw in str(item).split(","):
            name = raw.strip()
            if not name:
                continue
            off = name.startswith("-")
            name = name.lstrip("-")
            if name == "all":
                out |= ALL_FEATURES
                continue
            if name not in ALL_FEATURES:
                raise BadData(f"unknown feature flag {name!r}; known: {', '.join(sorted(ALL_FEATURES))}")
            if off:
                out.discard(name)
            else:
                out.add(name)
    return frozenset(out)


def _uses_duration_expr(node: ast.Expr) -> bool:
    for name in ("range_expr", "step_expr", "offset_expr"):
        if getattr(node, name, None) is not None:
            return True
    return False


def check_features(expr: ast.Expr, enabled: frozenset[str]) -> None:
    """Raise :class:`~promlab.errors.BadData` if ``expr`` uses a feature that is not enabled.

    Constant duration expressions (``[5m+1m]``) are folded by the parser and so are not seen
    here; they are accepted without ``promql-duration-expr``.
    """
    if enabled >= ALL_FEATURES:
        return
    for node in ast.walk(expr):
        if isinstance(node, ast.Call):
            name = node.func.name
            if name in _DURATION_FUNCTIONS:
                if DURATION_EXPR not in enabled:
                    raise BadData("experimental duration expression is not enabled; use "
                                  f"--enable-feature={DURATION_EXPR}")
            elif node.func.experimental and EXPERIMENTAL_FUNCTIONS not in enabled:
                raise BadData(f'function "{name}" is not enabled; use '
                              f"--enable-feature={EXPERIMENTAL_FUNCTIONS}")
        elif isinstance(node, ast.AggregateExpr):
            if node.op in _EXPERIMENTAL_AGGREGATIONS and EXPERIMENTAL_FUNCTIONS not in enabled:
                raise BadData(f"limitk() and limit_ratio() are experimental and must be enabled "
                              f"with --enable-feature={EXPERIMENTAL_FUNCTIONS}")
        elif isinstance(node, ast.BinaryExpr):
            m = node.matching
            if m is not None and (m.fill_lhs is not None or m.fill_rhs is not None) \
                    and FILL_MODIFIERS not in enabled:
                raise BadData("binop fill modifiers are experimental and not enabled; use "
                              f"--enable-feature={FILL_MODIFIERS}")
        if isinstance(node, ast.VectorSelector) and (node.anchored or node.smoothed) \
                and EXTENDED_RANGE_SELECTORS not in enabled:
            raise BadData("anchored and smoothed modifiers are experimental and not enabled; use "
                          f"--enable-feature={EXTENDED_RANGE_SELECTORS}")
        if _uses_duration_expr(node) and DURATION_EXPR not in enabled:
            raise BadData("experimental duration expression is not enabled; use "
                          f"--enable-feature={DURATION_EXPR}")
