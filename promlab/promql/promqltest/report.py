"""A markdown breakdown of a conformance run: per-file counts, failures grouped by cause."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from promlab.promql.promqltest.runner import Failure, FileResult

__all__ = ["render_report", "write_report"]


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_report(results: Sequence[FileResult], *, examples: int = 3) -> str:
    """Render the per-file table, the skip reasons and the failure groups as markdown."""
    lines = ["# PromQL conformance run", "",
             "| file | passed | failed | skipped | seconds |", "|---|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.name} | {r.passed} | {r.failed} | {r.skipped} | {r.seconds:.1f} |")
    tp, tf, ts = (sum(r.passed for r in results), sum(r.failed for r in results),
                  sum(r.skipped for r in results))
    lines += [f"| **total** | **{tp}** | **{tf}** | **{ts}** | {sum(r.seconds for r in results):.1f} |", ""]

    reasons: Counter[str] = Counter()
    for r in results:
        reasons.update(r.skip_reasons)
    lines += ["## Skipped evals by reason", "", "| reason | evals |", "|---|---:|"]
    lines += [f"| {_md(k)} | {v} |" for k, v in reasons.most_common()]
    lines.append("")

    groups: dict[str, list[Failure]] = defaultdict(list)
    for r in results:
        for f in r.failures:
            groups[f.category].append(f)
    lines += ["## Failures by cause", "",
              "Category = kind of failure plus, for wrong results, the first function / aggregation /"
              " operator of the expression. `@-rerun` = the step-invariance re-run with `@ t` failed"
              " while the plain instant query passed; `range-mode` = the range query t-1m..t+1m"
              " disagreed at t.", "",
              "| # | category | failures | files |", "|---:|---|---:|---|"]
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    for k, (cat, fs) in enumerate(ordered, 1):
        files = Counter(f.file for f in fs)
        where = ", ".join(f"{n} ({c})" for n, c in files.most_common(4))
        lines.append(f"| {k} | {_md(cat)} | {len(fs)} | {_md(where)} |")
    lines += ["", "## Examples per category", ""]
    for cat, fs in ordered:
        lines.append(f"### {cat} ({len(fs)})")
        lines.append("")
        for f in fs[:examples]:
            lines.append(f"- `{f.file}:{f.line}` [{f.phase}] `{f.expr}`")
            lines.append("")
            lines.append("  ```")
            lines.extend("  " + ln for ln in f.message.splitlines()[:6])
            lines.append("  ```")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_report(results: Sequence[FileResult], path: str | Path) -> None:
    Path(path).write_text(render_report(results), encoding="utf-8")
