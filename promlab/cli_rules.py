"""The ``promlab rules ...`` and ``promlab test rules`` handlers of the command line.

Split out of :mod:`promlab.cli`, which builds the parser and dispatches here. Like the rest of the
command line, heavy modules are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["cmd_rules_backfill", "cmd_rules_backtest", "cmd_rules_check", "cmd_test_rules", "fail"]


def fail(cmd: str, message: object) -> int:
    """Print ``promlab <cmd>: <message>`` to stderr and return the exit status 1."""
    print(f"promlab {cmd}: {message}", file=sys.stderr)
    return 1


def cmd_rules_check(args: argparse.Namespace) -> int:
    from promlab.rules.load import check_files

    # promtool's command line takes existing files only: one missing path (or a directory)
    # checks nothing; the first bad argument is named.
    promtool_feature_warnings(args.enable_feature, args.files)
    for f in args.files:
        if not Path(f).exists():
            return fail("rules check", f"error: path '{f}' does not exist")
        if Path(f).is_dir():
            return fail("rules check", f"error: '{f}' is a directory")
    code, lines = check_files(args.files, lint=lint_duplicates(args.lint), lint_fatal=args.lint_fatal)
    print("\n".join(lines))
    return code


def promtool_feature_warnings(values: list[str], files: list[str]) -> None:
    """Print what promtool 2.42 prints for its ``--enable-feature`` values (stdout, before
    anything else): @ and negative offsets are always on, other names unknown to it. Nothing
    when a file argument is missing or a directory: promtool's command line refuses it first."""
    if not all(Path(f).exists() and not Path(f).is_dir() for f in files):
        return
    for item in (o for v in values for o in v.split(",")):
        if item in ("promql-at-modifier", "promql-negative-offset"):
            print(f"  WARNING: Option for --enable-feature is a no-op after promotion to a stable feature: "
                  f'"{item}"')
        elif item not in ("", "no-default-scrape-port"):
            print(f'  WARNING: Unknown option for --enable-feature: "{item}"')


def lint_duplicates(value: str) -> bool:
    """Whether ``--lint`` asks for the duplicate-rules check; an unknown item is warned about
    on stdout, as promtool does, and otherwise ignored."""
    on = False
    for item in value.split(","):
        if item in ("all", "duplicate-rules"):
            on = True
        elif item != "none":
            print(f"WARNING: unknown lint option {item}")
    return on


def cmd_rules_backtest(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError
    from promlab.rules.backtest import backtest

    if not Path(args.data).is_dir():
        return fail("rules backtest", f"no store at {args.data}")
    try:
        df = backtest(args.file, args.start, args.end, data=args.data, step=args.step)
    except (PromlabError, ValueError) as e:
        return fail("rules backtest", e)
    if args.format == "json":
        out = df.drop(columns=[c for c in df.columns if c not in (
            "group", "alertname", "labels", "pending_at", "firing_at", "resolved_at", "duration",
            "peak_value", "value", "annotations")])
        print(out.to_json(orient="records", date_format="iso", date_unit="ms"))
    elif args.format == "csv":
        print(str(df.drop(columns=["labels", "annotations"]).to_csv(index=False)).rstrip("\n"))
    else:
        shown = df.drop(columns=["labels", "annotations", "group"])
        print("(no alerts)" if df.empty else shown.to_string(index=False))
    return 0


def cmd_rules_backfill(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError
    from promlab.rules.backfill import backfill
    from promlab.session import Session

    t0 = time.perf_counter()
    try:
        with Session(args.data, progress=not args.quiet) as session:
            stats = backfill(args.file, args.start, args.end, data=session.storage, step=args.step,
                             progress=not args.quiet)
    except (PromlabError, ValueError, OSError) as e:
        return fail("rules backfill", e)
    refused = stats.out_of_order + stats.out_of_bounds
    print(f"backfilled {args.file} into {args.data} in {time.perf_counter() - t0:.2f} s: "
          f"rules={len(stats.per_rule)}, series={stats.series:,}, samples={stats.samples:,}, "
          f"blocks={len(stats.blocks)}" + (f", refused={refused:,}" if refused else ""))
    for name, n in stats.per_rule.items():
        print(f"  {name}: {n:,} samples")
    return 0


def cmd_test_rules(args: argparse.Namespace) -> int:
    from promlab.errors import PromlabError

    if args.from_history:
        return _test_rules_from_history(args)
    if not args.files:
        return fail("test rules", "give unit-test files, or --from-history DIR with --rules")
    from promlab.rules.unittest import rules_unit_test

    promtool_feature_warnings(args.enable_feature, args.files)
    try:
        return rules_unit_test(args.files, run=args.run, diff=args.diff, debug=args.debug,
                               ignore_unknown_fields=args.ignore_unknown_fields)
    except PromlabError as e:
        return fail("test rules", e)


def _test_rules_from_history(args: argparse.Namespace) -> int:
    from promlab import Session
    from promlab.errors import PromlabError
    from promlab.model import parse_duration, parse_time
    from promlab.rules.unittest.history import history_test_file

    if not args.rules or not args.start or not args.end:
        return fail("test rules", "--from-history needs --rules, --start and --end")
    if not Path(args.from_history).is_dir():
        return fail("test rules", f"no store at {args.from_history}")
    out_dir = str(Path(args.output).parent) if args.output else "."
    try:
        with Session(args.from_history, read_only=True) as s:
            text = history_test_file(
                s.store, args.rules, start_ms=parse_time(args.start), end_ms=parse_time(args.end),
                interval_ms=parse_duration(args.interval), match=args.match or (),
                out_dir=out_dir, absolute=not args.relative)
    except (PromlabError, ValueError) as e:
        return fail("test rules", e)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
