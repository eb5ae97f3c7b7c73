"""The function and aggregation registries stay in step with the parser's tables."""

from __future__ import annotations

import subprocess
import sys

import pytest

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


@pytest.mark.parametrize("code", [
    pytest.param("from promlab.promql.eval.registry import has_function as h; print(h('rate'))",
                 id="registry-alone"),
    pytest.param("from promlab.promql.eval.registry import AGGREGATIONS as a; print('topk' in a)",
                 id="aggregations-alone"),
    pytest.param("import promlab.promql.eval.evaluator as e, promlab.promql.eval.registry as r; "
                 "print('histogram_quantile' in r.FUNCTION_IMPLS)", id="via-evaluator"),
])
def test_registry_complete_in_a_fresh_process(code: str) -> None:
    """No other import has to run first: the registry is complete once importable."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


def test_a_name_implemented_twice_is_refused() -> None:
    from promlab.promql.eval.calls import FunctionTable, ImplTable

    a, b = FunctionTable(), FunctionTable()
    a("rate")(lambda call: call.args[0])
    b("rate")(lambda call: call.args[0])
    with pytest.raises(ValueError, match="rate"):
        ImplTable.merge([a, b])
    with pytest.raises(ValueError, match="twice"):
        a("rate")(lambda call: call.args[0])
