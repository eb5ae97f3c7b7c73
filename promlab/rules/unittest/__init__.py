"""Rule unit tests in ``promtool test rules``'s format, and past it.

* :func:`rules_unit_test` — the ``promlab test rules FILE...`` command: promtool's report and
  exit code; :func:`run_rule_tests` returns the results instead;
  :func:`assert_rule_tests_pass` runs a project's rule tests under pytest.
* :func:`history_test_file` (:mod:`.history`) — a test file whose ``input_series`` come from a
  slice of stored history (``promlab test rules --from-history``).
* :mod:`.spec` reads the YAML, :mod:`.runner` runs one test group, :mod:`.text` prints as Go.
"""

from promlab.rules.unittest.files import (
    FileResult,
    assert_rule_tests_pass,
    rules_unit_test,
    run_rule_file,
    run_rule_tests,
)
from promlab.rules.unittest.runner import GroupResult, RunOptions, run_test_group
from promlab.rules.unittest.spec import UnitTestFile, parse_test_file

__all__ = [
    "FileResult",
    "GroupResult",
    "RunOptions",
    "UnitTestFile",
    "assert_rule_tests_pass",
    "parse_test_file",
    "rules_unit_test",
    "run_rule_file",
    "run_rule_tests",
    "run_test_group",
]
