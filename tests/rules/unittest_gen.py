"""Random rule unit-test files for the differential test against ``promtool test rules`` 2.42.

:func:`generate` writes, for one seed, a rule-file tree and a unit-test file that exercise
promtool's semantics: the input-series notation (``a+bxn``, ``a-bxn``, ``_``, ``_xn``,
``stale``, float and negative steps, NaN/Inf), ``interval`` and ``evaluation_interval``,
recording rules feeding alerts, ``for``/``keep_firing_for``, templated labels and annotations,
``external_labels``/``external_url``, ``group_eval_order``, ``rule_files`` globs (one matching
nothing, now and then) and several test groups, alert checks between evaluation steps,
duplicated input series, and most template functions. The expectations are filled in by a
first promlab run (``fill``, shuffled now and then), then some are perturbed so that promtool's
failure messages are compared too. :func:`mutate` breaks a filled case in one or two places
(wrong YAML kinds, go-yaml's number forms, dropped and unknown keys) for the complaints.

Also steered clear of: promtool's template ``query`` returns series in the head's creation
order, which its loader makes random (Go map order), so templates print query results
without labels where ties could reorder them.

Prometheus 2.42 differs from Prometheus 3 (which promlab follows) in ways the generator steers
clear of rather than chases:

* range windows and the 5m lookback are left-closed in 2.42 (``[t-r, t]``) and left-open in 3:
  every range is ``k*15s + 7s`` (all times here are multiples of 15s, so no sample sits on a
  window's left edge), and :func:`lookback_safe` rejects series whose last sample before some
  time is exactly 5m old;
* ``rate``/``increase`` limit the extrapolation to the counter's zero point before the
  extrapolation threshold in 2.42, after it in 3 (only ``delta``-like functions here);
* ``avg_over_time`` and ``stdvar`` differ in the last bit (2.42 keeps a running mean, 3 a
  Kahan sum), ``stdvar`` of one NaN/Inf is 0 in 2.42 and NaN in 3; ``topk``/``bottomk`` break ties in their own order (neither generated);
* native histograms in ``input_series`` are a parse error in 2.42 (not generated);
* a test group without ``interval`` gets the evaluation interval in Prometheus 3 but 0 in
  2.42 (always set here);
* ``start_timestamp``, ``fuzzy_compare``, ``--run`` and ``--diff`` do not exist in 2.42.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STEP_S = 15  # every interval, evaluation interval and eval_time is a multiple of this
LOOKBACK_S = 300

METRICS = ("req", "temp", "errs")
INSTANCES = ("i0", "i1", "i2")
JOBS = ("api", "db")

ANNOTATIONS = (
    "{{ $labels.instance }} is {{ $value }}",
    "{{ $value | humanize }}",
    "{{ $value | humanize1024 }}",
    "{{ $value | humanizePercentage }}",
    "{{ $value | humanizeDuration }}",
    '{{ printf "%.2f" $value }}',
    "{{ $externalLabels.cluster }} {{ $externalURL }}",
    "{{ if gt $value 5.0 }}big{{ else }}small{{ end }}",
    "{{ $labels.job | toUpper }} {{ title $labels.instance }}",
    "{{ with query \"count(METRIC)\" }}{{ . | first | value }}{{ end }}",
    "{{ $value | humanizeTimestamp }}",
    "static text",
    "{{ $labels }}",
    "{{ $labels.job | title }} {{ toLower \"ABC\" }}",
    '{{ reReplaceAll "i(.)" "inst$1" $labels.instance }}',
    '{{ $value | printf "%.3e" }} {{ printf "%q %d" $labels.job 3 }}',
    "{{ humanizeDuration 3661 }} {{ humanizePercentage 0.1234 }} {{ 1.5e9 | humanizeTimestamp }}",
    # Only values: promtool's query returns series in head creation order, which its loader
    # makes random (Go map order) -- ties in sort_desc keep that order.
    '{{ range query "sort_desc(METRIC)" }}{{ .Value }};{{ end }}',
    '{{ with query "METRIC" }}{{ range sortByLabel "instance" . }}{{ label "instance" . }} {{ end }}{{ end }}',
    '{{ "<b>" | safeHtml }} {{ (args 1 "a").arg1 }} {{ match "i." $labels.instance }}',
    '{{ with query "METRIC" }}{{ . | first | strvalue }}{{ end }}|{{ query "METRIC" | len }}',
    '{{ with query "nothing" }}{{ . | first | value }}{{ else }}none{{ end }}',
    "{{ range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end }}",
    '{{ graphLink "METRIC" }} {{ tableLink "METRIC" }} {{ $externalLabels }}',
    "{{ $value | humanize | printf \"%q\" }} {{ humanize 0.000123 }} {{ humanize1024 1048576 }}",
    "{{ .Value }} {{ .Labels.job }} {{ index $labels \"instance\" }}",
    # Go's fmt and text/template corners: argument indexes, * widths, flags on strings, maps.
    '{{ printf "%[2]v|%[1]*.2f|%x|% X|%+q|%#q|%U" 7 $value $labels.job $labels.instance "é" "a" 65 }}',
    '{{ printf "%v|%s|%d|%08.3e|%-6.1f|%#o|%O" $labels $labels.job $value $value $value 8 8 }}',
    '{{ printf "%.*f %*d %[9]d %d" 2 $value 4 1 }} {{ printf "%x %.3x" $value $value }}',
    "{{- /* trimmed */ -}} {{ $x := 1 }}{{ if and (gt $value 1.0) (lt $value 1e6) }}mid{{ else if eq $value 0.0 }}zero"
    "{{ else }}other{{ end }} {{ $x = 2 }}{{ $x }}",
    '{{ range $i, $k := (query "METRIC") }}{{ if ge $i 2 }}{{ break }}{{ end }}{{ $i }}{{ end }}|'
    '{{ range $k, $v := $labels }}{{ if eq $k "job" }}{{ continue }}{{ end }}{{ $k }}{{ end }}',
    '{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" $labels.job }}{{ block "y" $value }}<{{ . }}>{{ end }}',
    '{{ len $labels }} {{ slice $labels.instance 1 }} {{ index $labels "nope" }}| {{ not (eq $labels.job "api") }}'
    ' {{ or $labels.nope "dflt" }} {{ and $labels.job 0 }} {{ ne 1 2 }} {{ le 1.5 1.5 }}',
    '{{ humanize $labels.instance }}',
    '{{ eq $value 1 }}',
    '{{ 1e400 }}|{{ 09 }}',
    '{{ humanize "1.5e3" }} {{ humanize1024 "2048" }} {{ humanizeDuration "3600.5" }} {{ humanizePercentage "0.25" }} '
    '{{ humanizeTimestamp "1.7e9" }} {{ 0.0000012345 | humanizeDuration }} {{ -1e-10 | humanize }}',
    '{{ toUpper "é ß ǆ" }} {{ toLower "ÉİΣ" }} {{ title "élan vital" }} {{ stripPort "[::1]:9" }} {{ stripDomain "a.b:1" }}',
    '{{ match "^(?i)I[0-9]$" $labels.instance }} {{ reReplaceAll "^(.)(.*)$" "${2}_$1" $labels.job }} {{ match "(" "x" }}',
    '{{ parseDuration "1h2m3s" }} {{ parseDuration "1d12h" }} {{ parseDuration "0" }}',
    '{{ $value | printf "%6.2f" | printf "[%s]" }} {{ print 1 2 "a" 3.5 nil }} {{ println "x" 1 }}',
    '{{ urlquery $labels.job "a b" }} {{ html "<&>" }} {{ js "it\'s" }} {{ safeHtml "<br>" }}',
    # time.Time's methods, wrong verbs under flags and width, # on floats.
    '{{ (toTime $value).Format "2006-01-02 15:04:05.000 Mon _2 3PM" }} {{ (toTime $value).Weekday }}',
    '{{ printf "%.2f|%-5d|%#g|%+b" $labels.instance $value $value $value }} {{ printf "%s" . }}',
)


@dataclass
class Case:
    """One generated test: files relative to a directory, and the unit-test file's name."""

    name: str
    files: dict[str, Any] = field(default_factory=dict)
    main: str = "test.yml"

    def write(self, base: Path) -> Path:
        for rel, doc in self.files.items():
            p = base / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False, width=1000))
        return base / self.main


def _num(r: random.Random) -> str:
    return r.choice(["0", "1", "2", "3", "5", "10", "-2", "0.5", "1.25", "0.1", "1e6", "1500",
                     "2.5e-3", "100", "+4", "-0.75", ".5", "1E2", "-1e1"])


def _step(r: random.Random) -> str:
    return r.choice(["1", "2", "0.5", "0.1", "0.25", "3", "10", "0", "1e1", "2.5e-1", ".5"])


def _values(r: random.Random, n_points: int) -> str:
    """A values string of about ``n_points`` points (the last part may run past it)."""
    parts: list[str] = []
    have = 0
    while have < n_points:
        kind = r.random()
        if kind < 0.45:
            a, b, n = _num(r), _step(r), r.randint(1, 6)
            sign = r.choice(["+", "+", "-"])
            if r.random() < 0.04:
                a = "stale"  # the marker, then NaNs (not stale)
            parts.append(f"{a}{sign}{b}x{n}")
            have += n + 1
        elif kind < 0.6:
            n = r.randint(1, 5)
            parts.append(f"{_num(r)}x{n}")
            have += n + 1
        elif kind < 0.75:
            parts.append(_num(r))
            have += 1
        elif kind < 0.83:
            n = r.randint(1, 3)
            parts.append(f"_x{n}")
            have += n
        elif kind < 0.88:
            parts.append("_")
            have += 1
        elif kind < 0.93:
            parts.append("stale")
            have += 1
        else:
            parts.append(r.choice(["NaN", "Inf", "-Inf"]))
            have += 1
    return " ".join(parts)


def expand(values: str) -> list[str | None]:
    """Each point's kind: ``"v"`` (a value), ``"s"`` (stale) or None (missing)."""
    out: list[str | None] = []
    for tok in values.split():
        if tok == "_":
            out.append(None)
        elif tok == "stale":
            out.append("s")
        elif tok.startswith("stale"):  # stale+SxN: the marker, then N NaNs
            out.extend(["s"] + ["v"] * int(tok.rsplit("x", 1)[1]))
        elif tok.startswith("_x"):
            out.extend([None] * int(tok[2:]))
        elif "x" in tok:
            out.extend(["v"] * (int(tok.rsplit("x", 1)[1]) + 1))
        else:
            out.append("v")
    return out


def lookback_safe(values: str, interval_s: int, horizon_s: int, loaded_s: float = math.inf) -> bool:
    """False when some time up to ``horizon_s`` sees a non-stale sample exactly 5m old as the
    latest one (2.42 returns it, Prometheus 3 does not). Only the points up to ``loaded_s`` are
    there to see: promtool loads the input up to its last evaluation step."""
    pts = [(i * interval_s, k) for i, k in enumerate(expand(values))
           if k is not None and i * interval_s <= loaded_s]
    for j, (t, kind) in enumerate(pts):
        if kind == "s" or t + LOOKBACK_S > horizon_s:
            continue
        nxt = pts[j + 1][0] if j + 1 < len(pts) else math.inf
        if nxt - t > LOOKBACK_S:
            return False
    return True


def _rng(r: random.Random, lo: int, hi: int) -> str:
    s = r.randint(lo, hi) * STEP_S + 7
    return f"{s}s"


def _rules(r: random.Random, metrics: list[str]) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Rule groups, recorded metric names and alert names."""
    rec_rules: list[dict[str, Any]] = []
    recorded: list[str] = []
    for m in metrics:
        choice = r.random()
        if choice < 0.3:
            name, expr = f"job:{m}:sum", f"sum by (job) ({m})"
        elif choice < 0.5:
            name, expr = f"{m}:x2", f"{m} * 2"
        elif choice < 0.65:
            fn = r.choice(["delta", "deriv", "changes", "resets", "idelta"])
            name, expr = f"{m}:{fn}", f"{fn}({m}[{_rng(r, 4, 12)}])"
        elif choice < 0.8:
            name, expr = f"{m}:max", f"max_over_time({m}[{_rng(r, 2, 10)}])"
        else:
            name, expr = f"{m}:sq", f"max_over_time({m}[{_rng(r, 2, 8)}:30s])"
        rec: dict[str, Any] = {"record": name, "expr": expr}
        if r.random() < 0.2:
            rec["labels"] = {"recorded": "yes"}
        rec_rules.append(rec)
        recorded.append(name)
    alert_rules: list[dict[str, Any]] = []
    alerts: list[str] = []
    for i in range(r.randint(1, 4)):
        src = r.choice(metrics + recorded)
        name = f"Alert{i}" if r.random() > 0.15 or not alerts else alerts[-1]  # duplicated names too
        op = r.choice([">", ">=", "<", "!="])
        rule: dict[str, Any] = {"alert": name, "expr": f"{src} {op} {_num(r)}"}
        if r.random() < 0.6:
            rule["for"] = r.choice(["30s", "1m", "90s", "2m", "0s", "45s"])
        if r.random() < 0.25:
            rule["keep_firing_for"] = r.choice(["1m", "2m", "75s"])
        labels = {"severity": r.choice(["page", "warn"])}
        if r.random() < 0.3:
            labels["where"] = "{{ $labels.instance }}-x"
        if r.random() < 0.2:
            labels["level"] = "{{ if gt $value 2.0 }}high{{ else }}low{{ end }}"
        rule["labels"] = labels
        n_ann = r.randint(0, 3)
        if n_ann:
            anns = r.sample(ANNOTATIONS, n_ann)
            rule["annotations"] = {f"a{j}": a.replace("METRIC", src) for j, a in enumerate(anns)}
        alert_rules.append(rule)
        if name not in alerts:
            alerts.append(name)
    groups = [{"name": "rec", "rules": rec_rules}, {"name": "alerts", "rules": alert_rules}]
    if r.random() < 0.3:
        groups[0]["interval"] = r.choice(["30s", "1m"])
    if r.random() < 0.15:
        groups[r.randrange(2)]["limit"] = r.choice([1, 2])
    return groups, recorded, alerts


def _exprs(r: random.Random, metrics: list[str], recorded: list[str]) -> list[str]:
    m = r.choice(metrics)
    pool = [m, r.choice(recorded), "ALERTS", "ALERTS_FOR_STATE", f"sum({m})", f"{m} / 0",
            f"-{m}", f"{m} * 1e6", f"{m} / 3", f"scalar(sum({m}))", "vector(1)", "time()",
            f"count({m})", f"{m} > 2", f"count_over_time({m}[{_rng(r, 1, 10)}])",
            f"{m} unless {m}", f"sum by (job) ({r.choice(recorded)})", f"{m} * 1e-7",
            f"round({m} * 1e6) / 7"]
    rng = _rng(r, 2, 12)
    pool += [f"absent({m}{{job=\"none\"}})", f"label_replace({m}, \"dst\", \"$1\", \"instance\", \"i(.*)\")",
             f"quantile_over_time(0.9, {m}[{rng}])",
             f"stddev_over_time({m}[{rng}])", f"sum_over_time({m}[{rng}])",
             f"predict_linear({m}[{rng}], 60)", f"last_over_time({m}[{rng}])", f"timestamp({m})",
             f"{m} offset 1m", f"{m} offset -1m", f"{m} @ 120", f"sum_over_time({m}[{rng}] @ 300)",
             f"{m} > bool 2", f"{m} and {m} > 1", f"{m} or vector(0)", f"count_values(\"v\", {m})", f"clamp({m}, 0, 10)", f"round({m}, 0.3)", f"abs({m})", f"sgn({m})",
             f"quantile(0.5, {m})", f"max by (job) ({m}) * on (job) group_left count by (job) ({m})",
             f"present_over_time({m}[{rng}])", f"absent_over_time({m}[{rng}])",
             f"changes({m}[{rng}])", f"sort_desc({m})", f"{m} % 3", f"{m} ^ 2",
             f"max_over_time(({m} * 2)[{rng}:45s])", f"min_over_time({m}[{rng}:1m] offset 30s)",
             f"histogram_quantile(0.5, sum by (le) (label_replace({m}, \"le\", \"$1\", \"instance\", \"i(.*)\")))",
             # results that are no vector: a string, a range vector (promtool's error), a scalar
             '"text"', f"{m}[1m]", f"scalar(max({m})) * 2"]
    return r.sample(pool, r.randint(1, 6))


def generate(seed: int) -> Case:
    """One random case; its expectations are empty until :func:`fill`."""
    r = random.Random(seed)
    metrics = r.sample(METRICS, r.randint(1, 3))
    groups, recorded, alerts = _rules(r, metrics)
    eval_interval_s = r.choice([15, 30, 45, 60, 60, 60, 90, 120])
    files: dict[str, Any] = {}
    test: dict[str, Any] = {}
    if r.random() < 0.3:
        files["rules/a_rec.yml"] = {"groups": [groups[0]]}
        files["rules/b_alerts.yml"] = {"groups": [groups[1]]}
        test["rule_files"] = [r.choice(["rules/*.yml", "rules/[ab]_*.yml", "rules/?_*.yml",
                                        "rules/[^c]*"])]
    else:
        files["rules.yml"] = {"groups": groups}
        test["rule_files"] = ["rules.yml"]
    if eval_interval_s != 60 or r.random() < 0.5:
        test["evaluation_interval"] = f"{eval_interval_s}s"
    # promtool 2.42 evaluates groups missing from group_eval_order in Go map order (random from
    # run to run): the order is always given in full.
    test["group_eval_order"] = r.choice([["rec", "alerts"], ["alerts", "rec"]])
    if r.random() < 0.1:
        test["rule_files"].append("missing/*.yml")  # a pattern matching nothing: a warning
    tgs = []
    for gi in range(r.randint(1, 3)):
        interval_s = r.choice([15, 30, 60, 60, 120])
        span_s = r.randint(4, 16) * 60
        tg: dict[str, Any] = {}
        if r.random() < 0.6:
            tg["name"] = f"group {gi}"
        # Always set: 2.42 loads a group without ``interval`` at interval 0 (every point at
        # time 0); Prometheus 3 uses the evaluation interval.
        tg["interval"] = f"{interval_s}s" if interval_s % 60 else f"{interval_s // 60}m"
        # Alert checks may sit between evaluation steps (checked after the step before them);
        # an expression's time is on the 15s grid or 3s past it (never a window's edge).
        times = sorted({r.randint(0, span_s // STEP_S) * STEP_S + (r.choice([0, 0, 0, 7, 14])) for _ in range(r.randint(1, 10))})
        expr_times = [r.randint(0, span_s // STEP_S) * STEP_S + r.choice([0, 0, 0, 3])
                      for _ in range(6)]
        exprs = _exprs(r, metrics, recorded)
        maxt = max(times + expr_times[:len(exprs)])
        loaded = maxt // eval_interval_s * eval_interval_s
        horizon = max(maxt + 60, 300) + STEP_S  # offset -1m, @ 300
        series = []
        for m in metrics:
            for inst in r.sample(INSTANCES, r.randint(1, 2)):
                for _ in range(20):
                    vals = _values(r, span_s // interval_s + 2)
                    if lookback_safe(vals, interval_s, horizon, loaded):
                        break
                else:
                    vals = f"1x{span_s // interval_s + 2}"
                series.append({"series": f'{m}{{instance="{inst}", job="{r.choice(JOBS)}"}}', "values": vals})
        if r.random() < 0.1:
            # The same series twice: the later one is loaded.
            dup = dict(r.choice(series))
            dup["values"] = f"7x{span_s // interval_s + 2}"
            series.append(dup)
        tg["input_series"] = series
        if r.random() < 0.5:
            tg["external_labels"] = {"cluster": r.choice(["eu", "us-1"])}
        if r.random() < 0.4:
            tg["external_url"] = r.choice(["https://prom.example.com", "http://x:9090/p"])
        tg["alert_rule_test"] = [{"eval_time": f"{t}s", "alertname": r.choice([*alerts, "Missing"]),
                                  "exp_alerts": []} for t in times]
        tg["promql_expr_test"] = [{"expr": e, "eval_time": f"{t}s", "exp_samples": []}
                                  for e, t in zip(exprs, expr_times, strict=False)]
        tgs.append(tg)
    test["tests"] = tgs
    files["test.yml"] = test
    return Case(f"seed{seed}", files)


def fill(case: Case, base: Path, seed: int) -> None:
    """Fill expectations from promlab's own run of the case in ``base``; perturb about a
    quarter of them so that failure messages are compared too."""
    from promlab.rules.unittest import run_rule_tests

    r = random.Random(seed * 7919 + 1)
    rate = 0.0 if r.random() < 0.5 else 0.2  # half the files should pass
    res = run_rule_tests(case.write(base))[0]
    test = case.files[case.main]
    for tg, gres in zip(test["tests"], res.groups, strict=True):
        for a in tg["alert_rule_test"]:
            got = gres.observed.get((int(a["eval_time"][:-1]) * 1000, a["alertname"]), [])
            alerts = [{"exp_labels": {k: v for k, v in ls if k != "alertname"},
                       "exp_annotations": dict(an)} for ls, an in got]
            for x in alerts:
                if not x["exp_annotations"]:
                    del x["exp_annotations"]
            if r.random() < rate:
                if alerts and r.random() < 0.5:
                    alerts.pop(r.randrange(len(alerts)))
                elif alerts:
                    alerts.append(alerts[0])  # a duplicated expectation
                else:
                    alerts.append({"exp_labels": {"severity": "page"}})
            if r.random() < 0.3:
                r.shuffle(alerts)  # the order of expected alerts does not matter
            if alerts and r.random() < 0.2:
                alerts[0]["exp_labels"]["alertname"] = a["alertname"]
            a["exp_alerts"] = alerts
        for p in tg["promql_expr_test"]:
            got_s = gres.observed_samples.get((int(p["eval_time"][:-1]) * 1000, p["expr"]))
            if got_s is None:
                continue
            samples = [{"labels": _labels_text(ls), "value": v} for ls, v in got_s]
            if r.random() < rate:
                if samples and r.random() < 0.5:
                    samples[0]["value"] = 42.5
                elif samples:
                    samples.pop()
                else:
                    samples.append({"labels": "up", "value": 1})
            if r.random() < 0.3:
                r.shuffle(samples)  # nor that of expected samples
            p["exp_samples"] = samples
    case.write(base)


def _labels_text(labels: Any) -> str:
    items = dict(labels)
    name = items.pop("__name__", "")
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


# What a mutation puts in place of a value: other YAML kinds, numbers go-yaml reads its own
# way, strings that are no duration, series or expression.
MUTANTS: tuple[Any, ...] = ([1], {"a": 1}, "", "abc", -1, None, True, 1.5, "0", "1e3", "x{", [],
                            {}, "1 2 3", "yes", "0o17", "a very long value", "5x", "08")


def _paths(doc: Any, pre: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [pre] if pre else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*pre, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*pre, i))
    return out


def mutate(case: Case, base: Path, seed: int) -> None:
    """Break one or two places of one of a filled case's files (a value replaced by another
    kind, a key dropped, an unknown key added) and write the case again: promtool's
    complaints about the broken file are compared.

    Group names and ``group_eval_order`` are left alone: a group missing from the order is
    evaluated in Go's map order by 2.42 (random from run to run). So is a test group's
    ``interval``: without it 2.42 loads every point at time 0 (a known 2.42 difference)."""
    r = random.Random(seed * 104_729 + 3)
    target = r.choice(sorted(case.files))
    doc = case.files[target]
    keep = {"name", "group_eval_order", "interval"} if target == case.main else {"name"}
    paths = [p for p in _paths(doc) if not keep.intersection(p)]
    for _ in range(r.randint(1, 2)):
        p = r.choice(paths)
        parent = doc
        try:
            for k in p[:-1]:
                parent = parent[k]
            kind = r.random()
            if kind < 0.7:
                parent[p[-1]] = copy.deepcopy(r.choice(MUTANTS))
            elif isinstance(parent, dict) and kind < 0.85:
                del parent[p[-1]]
            elif isinstance(parent, dict):
                parent[f"bogus_{r.randrange(10)}"] = 1
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation replaced the way there
    case.write(base)
