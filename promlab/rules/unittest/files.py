"""Whole test files: ``promtool test rules FILE...`` (:func:`rules_unit_test`) and its
library and pytest faces (:func:`run_rule_tests`, :func:`assert_rule_tests_pass`).

Output is promtool's: ``Unit Testing:  FILE`` then ``  SUCCESS`` on stdout, or ``  FAILED:`` and
each failure on stderr (each followed by an empty line on stdout); exit code 0 when every
file passed, 1 otherwise.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from promlab.config.goglob import BadPattern, go_glob
from promlab.config.goyaml import go_yaml_syntax_error
from promlab.errors import ConfigError
from promlab.rules.unittest.runner import GroupResult, RunOptions, run_test_group
from promlab.rules.unittest.spec import parse_test_file
from promlab.rules.unittest.text import go_read_error

__all__ = ["FileResult", "assert_rule_tests_pass", "rules_unit_test", "run_rule_file", "run_rule_tests"]


@dataclass(slots=True)
class FileResult:
    """One test file's outcome: file-level errors (unreadable, bad YAML, ...), per-group results
    and warnings (unmatched ``rule_files`` globs)."""

    path: str
    errors: list[str] = field(default_factory=list)
    groups: list[GroupResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Every failure block, in promtool's order."""
        return self.errors + [e for g in self.groups for e in g.errors]

    @property
    def ok(self) -> bool:
        return not self.failures


def _resolve(base: str, patterns: Sequence[str], warnings: list[str]) -> tuple[str, ...]:
    """The rule files, each pattern expanded as Go's ``filepath.Glob`` does (raises
    :class:`~promlab.config.goglob.BadPattern` for a malformed one)."""
    out: list[str] = []
    for rf in patterns:
        p = os.path.normpath(os.path.join(base, rf)) if rf and not os.path.isabs(rf) else rf
        found = go_glob(p) if p else []
        if not found:
            warnings.append(f"no file match pattern {p}")
        out.extend(found)
    return tuple(out)


def run_rule_file(path: str | os.PathLike[str], *, run: Sequence[str] | None = None,
                  diff: bool = False, debug: bool = False, ignore_unknown_fields: bool = False,
                  debug_out: TextIO | None = None) -> FileResult:
    """Run every test group of one file (those whose ``name`` matches one of ``run``'s
    regular expressions, when given)."""
    fn = str(path)
    res = FileResult(fn)
    try:
        data = Path(fn).read_bytes()
    except OSError as e:
        res.errors.append(go_read_error(fn, e))
        return res
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        bad = go_yaml_syntax_error(data, version="v2")
        res.errors.append(bad.reason if bad is not None else "yaml: invalid leading UTF-8 octet")
        return res
    try:
        spec = parse_test_file(text, file=fn)
    except ConfigError as e:
        res.errors.append(e.reason)
        return res
    try:
        rule_files = _resolve(os.path.dirname(fn), spec.rule_files, res.warnings)
    except BadPattern as e:
        res.errors.append(str(e))
        return res
    order: dict[str, int] = {}
    for i, name in enumerate(spec.group_eval_order):
        if name in order:
            res.errors.append(f"group name repeated in evaluation order: {name}")
            return res
        order[name] = i
    focus = re.compile("|".join(run)) if run is not None else None
    opts = RunOptions(rule_files=rule_files, evaluation_interval_ms=spec.evaluation_interval_ms,
                      group_order=order, fuzzy_compare=spec.fuzzy_compare,
                      ignore_unknown_fields=ignore_unknown_fields, diff=diff, debug=debug)
    for i, tg in enumerate(spec.tests):
        if focus is not None and not focus.search(tg.name):
            continue
        g = run_test_group(tg, opts, name=tg.name or f"unnamed#{i}", debug_out=debug_out)
        res.groups.append(g)
        res.warnings.extend(g.warnings)
    return res


def run_rule_tests(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                   run: Sequence[str] | None = None, ignore_unknown_fields: bool = False,
                   ) -> list[FileResult]:
    """Run rule unit-test files (promtool's format); one :class:`FileResult` per file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.yml").write_text('''
    ... tests:
    ... - input_series: [{series: up, values: "1 0"}]
    ...   promql_expr_test: [{expr: up == 0, eval_time: 1m, exp_samples: [{labels: up, value: 0}]}]
    ... ''')
    >>> [r.ok for r in run_rule_tests(d / "t.yml")]
    [True]
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    return [run_rule_file(p, run=run, ignore_unknown_fields=ignore_unknown_fields) for p in items]


def assert_rule_tests_pass(*paths: str | os.PathLike[str], run: Sequence[str] | None = None,
                           ignore_unknown_fields: bool = False) -> None:
    """Run rule unit-test files under pytest (or anywhere): raise ``AssertionError`` with
    promtool's failure text when any test fails.

    A project keeps its promtool rule tests and adds one pytest test::

        from promlab.rules.unittest import assert_rule_tests_pass

        @pytest.mark.parametrize("path", sorted(Path("alerts/tests").glob("*.yml")), ids=str)
        def test_rules(path):
            assert_rule_tests_pass(path)
    """
    results = run_rule_tests(paths, run=run, ignore_unknown_fields=ignore_unknown_fields)
    failed = [r for r in results if not r.ok]
    if failed:
        text = "\n\n".join(f"{r.path}:\n" + "\n\n".join(r.failures) for r in failed)
        raise AssertionError(f"rule unit tests failed\n{text}")


def rules_unit_test(files: Sequence[str | os.PathLike[str]], *, run: Sequence[str] | None = None,
                    diff: bool = False, debug: bool = False, ignore_unknown_fields: bool = False,
                    stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``promtool test rules``: run the files, print promtool's report, return the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    # promtool's command line takes existing files only: one missing path (or a directory)
    # runs nothing; the first bad argument is named.
    for f in files:
        if not os.path.exists(f):
            print(f"promlab test rules: error: path '{f}' does not exist", file=err)
            return 1
        if os.path.isdir(f):
            print(f"promlab test rules: error: '{f}' is a directory", file=err)
            return 1
    failed = False
    for f in files:
        print(f"Unit Testing:  {f}", file=out)
        res = run_rule_file(f, run=run, diff=diff, debug=debug,
                            ignore_unknown_fields=ignore_unknown_fields, debug_out=err)
        for w in res.warnings:
            print(f"  WARNING: {w}", file=err)
        if res.failures:
            print("  FAILED:", file=err)
            for e in res.failures:
                print(e, file=err)
                print(file=out)
            failed = True
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0
