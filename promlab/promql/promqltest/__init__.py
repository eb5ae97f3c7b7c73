"""Prometheus's PromQL test scripts (``promqltest``), runnable against promlab.

Parse a ``.test`` file with :func:`parse_script`; run it with :class:`Runner`, which reports how
many evals passed, failed and were skipped (with reasons). From the shell::

    python -m promlab.promql.promqltest [-v] FILE...

The script format is described in ``DSL.md`` of the shared conformance folder (and Prometheus's
``promql/promqltest/README.md``).
"""

from promlab.promql.promqltest.compare import almost_equal
from promlab.promql.promqltest.dsl import ClearCmd, EvalCmd, LoadCmd, Script, parse_script
from promlab.promql.promqltest.runner import Failure, FileResult, Runner
from promlab.promql.promqltest.series import parse_go_number, parse_series_desc, parse_values

__all__ = [
    "ClearCmd",
    "EvalCmd",
    "Failure",
    "FileResult",
    "LoadCmd",
    "Runner",
    "Script",
    "almost_equal",
    "parse_go_number",
    "parse_script",
    "parse_series_desc",
    "parse_values",
]
