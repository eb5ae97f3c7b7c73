"""Every docstring example in the package runs and shows what it claims (``doctest``)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import promlab


def _modules() -> list[str]:
    # ``promlab.__main__`` runs the CLI when imported
    return sorted(m.name for m in pkgutil.walk_packages(promlab.__path__, "promlab.")
                  if not m.name.endswith(".__main__"))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
