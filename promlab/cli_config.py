"""The ``promlab check config`` handler of the command line, as ``promtool check config``.

Each file is loaded with promlab's config loader (the one ``promlab scrape`` and ``serve --config``
use), the files it names are checked (:mod:`promlab.config.check`), the targets of its static and
file discovery are built as the scraper builds them, and its rule files are checked as ``promlab
rules check`` checks them. Like promtool, progress and successes go to stdout and ``FAILED:``
lines to stderr; the exit status is 0, 1 when a check failed, 3 for lint findings with
``--lint-fatal``. Heavy modules are imported inside the handler.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from promlab.config import Config, ScrapeConfig
    from promlab.config.check import ReferencedFiles

__all__ = ["add_check_config_flags", "cmd_check_config"]


def add_check_config_flags(p: argparse.ArgumentParser) -> None:
    """Add ``promtool check config``'s arguments and flags to ``p``."""
    p.add_argument("files", nargs="+", metavar="FILE", help="prometheus.yml files")
    p.add_argument("--syntax-only", action="store_true",
                   help="only check the config's syntax, not the files it names")
    p.add_argument("--lint", default="duplicate-rules",
                   help="lint checks of the rule files, comma-separated: all, duplicate-rules, none "
                        "(default duplicate-rules; an unknown item is warned about and ignored)")
    p.add_argument("--lint-fatal", action="store_true", help="exit 3 on lint findings")


def _fail(message: object) -> None:
    print(f"  FAILED: {message}", file=sys.stderr)


def _target_problem(sc: ScrapeConfig, targets: list[dict[str, str]], group: str) -> str | None:
    """promtool's first target failure in a group: ``instance 0 in group 1: no address``."""
    from promlab.scrape.targets import populate_labels

    for i, lset in enumerate(targets):
        final, _, err = populate_labels(lset, sc)
        if final is None and err:
            return f"instance {i} in group {group}: {err}"
    return None


def _check_targets(cfg: Config, refs: ReferencedFiles) -> str | None:
    """The first target of a scrape config that would fail to build, as promtool finds it
    (the static groups, then the groups of the discovery files)."""
    from promlab.discovery.file import read_file_groups
    from promlab.errors import ConfigError

    for sc in cfg.scrape_configs:
        for gi, st in enumerate(sc.static_configs):
            problem = _target_problem(sc, [{**st.labels.to_dict(), "__address__": t} for t in st.targets], str(gi))
            if problem:
                return problem
        for path, shown in refs.file_sd.get(sc.job_name, []):
            if path is None:
                print(shown)  # the warning for a pattern that matches nothing
                continue
            try:
                groups = read_file_groups(path)
            except ConfigError as exc:
                return f'checking SD file "{shown}": {exc.reason}'
            for g in groups:
                problem = _target_problem(sc, [{**g.labels, **t} for t in g.targets], "")
                if problem:
                    return problem
    return None


def _check_one(path: str, syntax_only: bool) -> tuple[bool, list[str]]:
    """Check one config file, printing promtool's lines; (passed, rule files to check)."""
    from promlab.config import load
    from promlab.config.check import referenced_files
    from promlab.errors import ConfigError

    print("Checking", path)
    try:
        cfg = load(path)
    except ConfigError as exc:
        _fail(f"parsing YAML file {path}: {exc.reason}"
              + (f" (at {exc.path})" if exc.path and "\n" not in exc.reason else ""))
        return False, []
    try:
        refs = referenced_files(cfg, path, syntax_only=syntax_only)
    except ConfigError as exc:
        _fail(exc.reason)
        return False, []
    problem = _check_targets(cfg, refs)
    if problem:
        _fail(problem)
        return False, []
    for w in refs.warnings:
        print(w)
    if refs.rule_files:
        print(f"  SUCCESS: {len(refs.rule_files)} rule files found")
    print(f" SUCCESS: {path} is valid prometheus config file syntax")
    return True, refs.rule_files


def cmd_check_config(args: argparse.Namespace) -> int:
    from promlab.cli_rules import lint_duplicates
    from promlab.rules.load import check_file

    for path in args.files:  # as promtool's argument parser: nothing is checked then
        if not os.path.exists(path):
            print(f"promlab check config: error: path '{path}' does not exist", file=sys.stderr)
            return 1
    duplicates = lint_duplicates(args.lint)  # its warnings first, as promtool prints them
    errors = lint = False
    for path in args.files:
        passed, rule_files = _check_one(path, args.syntax_only)
        errors |= not passed
        print()
        for rf in rule_files:
            print("Checking", rf)
            res = check_file(rf)
            findings = [f"{e.file}: {e.reason}" for e in res.errors]
            errors |= bool(findings)
            if not findings and duplicates:
                findings = res.lint
                lint |= bool(findings)
            if findings:
                print("  FAILED:", file=sys.stderr)
                for f in findings:
                    print("    ", f, file=sys.stderr)
            else:
                print(f"  SUCCESS: {res.num_rules} rules found")
            print()
    if errors:
        return 1
    return 3 if lint and args.lint_fatal else 0
