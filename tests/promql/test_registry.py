"""The function and aggregation registries stay in step with the parser's tables."""

from __future__ import annotations

import promlab.promql.eval.functions  # noqa: F401  (registers everything)
from promlab.promql.eval.registry import AGGREGATIONS, FUNCTION_IMPLS, has_function
from promlab.promql.parser.functions import FUNCTIONS
from promlab.promql.parser.lexer import AGGREGATORS


def test_function_keys_match_parser_table() -> None:
    assert set(FUNCTION_IMPLS) == set(FUNCTIONS)


def test_every_aggregation_has_an_implementation() -> None:
    assert set(AGGREGATORS.values()) <= set(AGGREGATIONS)


def test_has_function() -> None:
    assert has_function("rate")
    assert not has_function("no_such_function")
