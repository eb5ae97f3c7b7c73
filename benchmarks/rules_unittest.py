"""A long rule unit test, timed: ``promlab test rules`` against ``promtool test rules``.

:func:`write_case` writes a rule file and a unit-test file into a directory: ``n_series`` input
series of ``n_points`` points each at ``interval``, per instance a request counter, an error
counter, ``up`` and three histogram buckets (so ``n_series`` is cut into instances of six);
recording rules with ``rate``/``sum``/``histogram_quantile``, alerting rules with ``for``,
``keep_firing_for`` and templated labels and annotations; a few ``alert_rule_test`` and
``promql_expr_test`` entries spread over the span, expecting nothing (so the report prints
what each one got: alerts, values and annotations are compared too).

Chosen so that Prometheus 2.42's promtool and promlab (Prometheus 3's semantics) agree: every
range is ``k*interval + 7s`` long (no sample on a window's left edge) and counters start far
from zero (``rate`` never reaches its zero-point limit); sums printed in full are of
multiples of 1/4 (2.42 adds plainly, Prometheus 3 with Kahan's compensation: other sums may
differ in the last bit), other sums are compared after rounding or a threshold.

:func:`main` (``python -m benchmarks.rules --unittest``) times both tools on the same file,
each as a subprocess, and checks that their stdout, stderr and exit code are identical.
"""

from __future__ import annotations

import cProfile
import io
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import realprom
from promlab.model import format_duration, parse_duration

__all__ = ["main", "time_tools", "write_case"]

RULES = """\
groups:
- name: recording
  rules:
  - record: instance:requests:rate5m
    expr: round(rate(requests_total[{rng}]), 0.25)
  - record: job:requests:rate5m
    expr: sum by (job) (instance:requests:rate5m)
  - record: instance:errors:ratio5m
    expr: rate(errors_total[{rng}]) / rate(requests_total[{rng}])
  - record: job:latency_seconds:p90
    expr: histogram_quantile(0.9, sum by (job, le) (rate(latency_seconds_bucket[{rng}])))
- name: alerts
  rules:
  - alert: HighErrorRatio
    expr: instance:errors:ratio5m > 0.2
    for: 3m
    labels: {{severity: page}}
    annotations: {{summary: '{{{{ $labels.instance }}}} errors at {{{{ $value | humanizePercentage }}}}'}}
  - alert: SlowJob
    expr: job:latency_seconds:p90 > 0.3
    for: 10m
    keep_firing_for: 5m
    annotations: {{p90: '{{{{ printf "%.3f" $value }}}}'}}
  - alert: InstanceDown
    expr: up == 0
    for: 2m
  - alert: TrafficDrop
    expr: job:requests:rate5m < 2
"""


def _segments(r: random.Random, n: int, start: float, lo: int, hi: int) -> str:
    """``n`` points of a counter (``a+bxk`` runs of random slopes in ``[lo, hi]``)."""
    parts: list[str] = []
    v, have = start, 0
    while have < n:
        k = min(n - have, r.randint(20, 400))
        step = r.randint(lo, hi)
        parts.append(f"{v:g}+{step:g}x{k - 1}")
        v += step * k
        have += k
    return " ".join(parts)


def _up(r: random.Random, n: int) -> str:
    parts: list[str] = []
    have = 0
    while have < n:
        k = min(n - have, r.randint(5, 600))
        parts.append(f"{0 if r.random() < 0.15 else 1}x{k - 1}")
        have += k
    return " ".join(parts)


def _series(n_series: int, n_points: int, seed: int) -> list[tuple[str, str]]:
    r = random.Random(seed)
    out: list[tuple[str, str]] = []
    inst = 0
    while len(out) < n_series:
        job = ("api", "db", "web")[inst % 3]
        lab = f'instance="host-{inst}:9100", job="{job}"'
        out.append((f"requests_total{{{lab}}}", _segments(r, n_points, 10_000 + inst, 5, 60)))
        out.append((f"errors_total{{{lab}}}", _segments(r, n_points, 5_000 + inst, 0, 15)))
        out.append((f"up{{{lab}}}", _up(r, n_points)))
        # Bucket rates in disjoint ranges, so the buckets stay monotonic.
        for le, start, lo, hi in (("0.1", 20_000, 10, 30), ("0.5", 40_000, 50, 55), ("+Inf", 90_000, 56, 60)):
            out.append((f'latency_seconds_bucket{{{lab}, le="{le}"}}', _segments(r, n_points, start, lo, hi)))
        inst += 1
    return out[:n_series]


def write_case(base: Path, n_series: int, n_points: int, interval: str, eval_interval: str,
               seed: int = 1, alerts_first: bool = False) -> Path:
    """Write ``rules.yml`` and ``test.yml`` into ``base``; the test file's path.

    ``alerts_first``: the alerts group is evaluated first (its rules then see the recording
    rules' output of the step before)."""
    iv_ms = parse_duration(interval)
    span_ms = (n_points - 1) * iv_ms
    rng = format_duration(iv_ms * max(1, 300_000 // iv_ms) + 7_000)
    (base / "rules.yml").write_text(RULES.format(rng=rng))
    r = random.Random(seed + 1)
    ev_ms = parse_duration(eval_interval)
    times = sorted({r.randrange(0, span_ms // ev_ms + 1) * ev_ms for _ in range(6)} | {span_ms // ev_ms * ev_ms})
    lines = ["rule_files: [rules.yml]", f"evaluation_interval: {eval_interval}",
             f"group_eval_order: [{'alerts, recording' if alerts_first else 'recording, alerts'}]", "tests:", f"- interval: {interval}",
             "  input_series:"]
    lines += [f"  - series: '{s}'\n    values: '{v}'" for s, v in _series(n_series, n_points, seed)]
    lines.append("  alert_rule_test:")
    for t in times:
        for name in ("HighErrorRatio", "SlowJob", "InstanceDown", "TrafficDrop"):
            lines.append(f"  - {{eval_time: {format_duration(t)}, alertname: {name}}}")
    lines.append("  promql_expr_test:")
    for t in times[-2:]:
        for expr in ("job:requests:rate5m", "round(job:latency_seconds:p90, 0.001)", "count(ALERTS)",
                     "instance:errors:ratio5m"):
            lines.append(f"  - {{eval_time: {format_duration(t)}, expr: '{expr}', exp_samples: []}}")
    (base / "test.yml").write_text("\n".join(lines) + "\n")
    return base / "test.yml"


def _run(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    return time.perf_counter() - t0, p


def time_tools(base: Path, repeat: int = 1) -> tuple[float, float, bool, str]:
    """Median seconds of promlab and promtool on ``base/test.yml``, whether the outputs are
    identical, and a short description of the first difference."""
    promtool = realprom.find_binary("promtool")
    if promtool is None:
        raise SystemExit("promtool is not installed")
    ours_cmd = [sys.executable, "-m", "promlab", "test", "rules", "test.yml"]
    ours = [_run(ours_cmd, base) for _ in range(repeat)]
    theirs = [_run([promtool, "test", "rules", "test.yml"], base) for _ in range(repeat)]
    a, b = ours[0][1], theirs[0][1]
    same = (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr)
    why = ""
    if not same:
        why = f"exit {a.returncode} vs {b.returncode}"
        for x, y in zip(a.stderr.splitlines() + a.stdout.splitlines(),
                        b.stderr.splitlines() + b.stdout.splitlines(), strict=False):
            if x != y:
                why += f"\n  promlab : {x[:300]}\n  promtool: {y[:300]}"
                break
    return (statistics.median(t for t, _ in ours), statistics.median(t for t, _ in theirs), same, why)


def _profile(base: Path, out: str) -> None:
    import os

    from promlab.rules.unittest import rules_unit_test

    cwd = os.getcwd()
    os.chdir(base)
    try:
        cProfile.runctx("rules_unit_test(['test.yml'], stdout=io.StringIO(), stderr=io.StringIO())",
                        {"rules_unit_test": rules_unit_test, "io": io}, {}, filename=out)
    finally:
        os.chdir(cwd)


def main(n_series: int, n_points: int, interval: str, eval_interval: str, *, repeat: int = 1,
         work_dir: str | None = None, profile: str | None = None, alerts_first: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="promlab-bench-ruletest-") as tmp:
        base = Path(work_dir) if work_dir else Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        write_case(base, n_series, n_points, interval, eval_interval, alerts_first=alerts_first)
        steps = (n_points - 1) * parse_duration(interval) // parse_duration(eval_interval) + 1
        print(f"rule unit test: {n_series} series x {n_points:,} points at {interval}, "
              f"{steps:,} evaluations at {eval_interval} (8 rules{', alerts first' if alerts_first else ''})",
              flush=True)
        ours, theirs, same, why = time_tools(base, repeat)
        print(f"  promlab test rules   {ours:7.2f} s")
        print(f"  promtool test rules  {theirs:7.2f} s")
        print(f"  ratio                {ours / theirs:7.2f}")
        print(f"  output (stdout, stderr, exit code): {'identical' if same else 'DIFFERENT: ' + why}")
        if profile:
            _profile(base, profile)
            print(f"  cProfile stats of promlab's run in {profile}")
    return 0 if same else 1
