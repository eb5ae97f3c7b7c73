"""``python -m promlab.promql.promqltest [-v] [--report FILE.md] FILE...``

Prints one line per file (``functions.test: 380 passed, 12 failed, 39 skipped``) and a last line
``N passed, M failed, K skipped``; exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from promlab.promql.promqltest.report import write_report
from promlab.promql.promqltest.runner import Failure, FileResult, Runner


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m promlab.promql.promqltest",
                                 description="Run PromQL test scripts (Prometheus promqltest format).")
    ap.add_argument("files", nargs="+", type=Path, help=".test files or folders of them")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    ap.add_argument("--skips", action="store_true", help="print the skip reasons per file")
    ap.add_argument("--report", type=Path, help="write a markdown breakdown of failures here")
    ap.add_argument("--floors", type=Path,
                    help="write the pass counts as a floors JSON (keys: file name, or scripts/<name>)")
    ap.add_argument("--no-reruns", action="store_true", help="skip the @-modifier re-runs")
    ap.add_argument("--no-range-mode", action="store_true", help="skip the range-mode checks")
    ap.add_argument("--file-skips", action="store_true",
                    help="skip every eval of the experimental-feature files (default: per-eval syntax rules)")
    args = ap.parse_args(argv)

    paths: list[Path] = []
    for p in args.files:
        paths.extend(sorted(p.glob("*.test")) if p.is_dir() else [p])
    runner = Runner(at_reruns=not args.no_reruns, range_mode=not args.no_range_mode,
                    file_skips=args.file_skips)
    results: list[FileResult] = []
    for path in paths:
        try:
            res = runner.run_path(path)
        except OSError as exc:
            res = FileResult(path.name, failed=1)
            res.failures.append(Failure(path.name, 0, "", "read", str(exc), "unreadable file"))
        results.append(res)
        print(res.summary(), flush=True)
        if args.skips:
            for reason, n in res.skip_reasons.most_common():
                print(f"    skipped {n}: {reason}")
        if args.verbose:
            for f in res.failures:
                print("  " + f.format().replace("\n", "\n  "))
    if args.report:
        write_report(results, args.report)
    if args.floors:
        floors = {(f"scripts/{p.name}" if p.parent.name == "scripts" else p.name): r.passed
                  for p, r in zip(paths, results, strict=True)}
        args.floors.write_text(json.dumps(floors, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    skipped = sum(r.skipped for r in results)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
