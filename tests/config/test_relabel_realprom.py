"""Differential hunt: target relabeling and target-label derivation against a real Prometheus.

A seeded generator writes scrape jobs, each with a ``file_sd_configs`` file of target groups
(``__address__``, ``__meta_*``, ``__scheme__``, ``__metrics_path__``, ``__param_*``,
``__scrape_interval__``/``__scrape_timeout__``, ``instance``, ``job`` and plain labels) and random
``relabel_configs`` using every action. One Prometheus run serves many jobs; its
``/api/v1/targets?state=any`` (active labels, discovered labels, scrape URL, interval, timeout;
dropped targets) and its log (``Creating target failed``) are compared with
:func:`promlab.scrape.targets.build_targets` over the same files. A second test feeds generated
relabel rules, mostly invalid, to ``promtool check config`` and compares verdicts with
:class:`promlab.config.RelabelConfig` validation.

``PROMLAB_RELABEL_N`` (cases per seed, default 300) and ``PROMLAB_RELABEL_SEEDS``
(comma-separated, default ``1``) make longer hunts.

Known by-design differences between Prometheus 2.42 and 3.x, where promlab follows 3.x and the
generator avoids the case:

- a ``replace`` whose ``target_label`` has ``$`` references and whose replacement expands to
  nothing: 2.42 deletes the label named by the unexpanded template (a no-op), 3.x the expanded one;
- ``lowercase``/``uppercase``/``keepequal``/``dropequal`` with ``$`` in ``target_label``: 2.42
  accepts the rule, 3.x refuses it;
- label values with a newline: 2.42 compiles relabel regexes as ``^(?:re)$``, where ``.`` stops at
  a newline; 3.x as ``^(?s:re)$``;
- the discovered labels of a target whose job relabels: 2.42 relabels the discovered set in place,
  so its API shows them half-relabeled; they are compared only for jobs without rules, and dropped
  targets (which carry nothing else) are counted per Prometheus run;
- duration errors: 2.42 says ``not a valid duration string`` where 3.x names the unknown unit;
- default ports: 3.x adds none to an address without one (2.42 added ``:80``/``:443`` and refused
  other schemes). Prometheus runs with ``--enable-feature=no-default-scrape-port``, which matches
  3.x except that it strips a port equal to the scheme's default, so no generated address or
  replacement ends in ``:80`` or ``:443``;
- a target's own ``__param_<k>`` label: 3.x keeps it over the job's ``params``, 2.42 overrode it;
  the generator never sets both.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import yaml

from benchmarks import realprom
from promlab.config import load_config
from promlab.discovery.group import TargetGroup
from promlab.errors import ConfigError
from promlab.scrape.targets import build_targets

N_CASES = int(os.environ.get("PROMLAB_RELABEL_N", "300"))
SEEDS = [int(s) for s in os.environ.get("PROMLAB_RELABEL_SEEDS", "1").split(",") if s.strip()]

NAMES = ["__address__", "__meta_a", "__meta_b_c", "__meta_1", "__scheme__", "__metrics_path__",
         "__param_x", "__param_y", "__scrape_interval__", "__scrape_timeout__", "instance", "job", "a", "b",
         "env", "A", "_x", "__tmp", "__param_"]
VALUES = ["", "foo", "Foo-Bar", "127.0.0.1:1", "127.0.0.1", "[::1]:1", "[::1]", "::1", "h1", "a/b", "x;y",
          "é", "ΑΣ", "İx", "ß", "ǅ", "ﬀ", "1m", "30s", "0s", "2h", "1h", "60m", "abc", "http", "https", "ftp",
          "HTTP", "/metrics", "/a b", "metrics", "/x?y=1", "%41", "a\tb", "k=v&z", "prober:9115", "h1:70000",
          "ünï:1", "$1", "a:b:c", "127.0.0.1:1/x", "0", "1h30m", "90s", "1d", "1.5s", "-1s", "1y", "5m0s",
          "h 1:2", "h%1:2", "[fe80::1%eth0]:9", "*", "//x", "K", "ſ", "S", "σς", "Ǆ", "a b", "E9"]
ADDRESSES = ["127.0.0.1:1", "127.0.0.1", "[::1]:1", "[::1]", "::1", "h1", "h2:9", "", "a:b:c", "Foo:1",
             "127.0.0.1:1?x", "h:", ":9", "[::1", "ünï:1", "h1:70000", "h1:abc"]
REGEXES = ["(.*)", "(.+)", "", "f(.*)", "([^:]+):(\\d+)", "(?i)FOO", "(.*);(.*)", "(?P<host>[^:]+)(?::\\d+)?",
           ".*", "(a|b)", "[[:alpha:]]+", "\\p{Greek}+", "(é+)", "^foo$", "(?s)a.b", "x*", "(\\w+)", "\\Q.\\E",
           "(h)(1)", "([^;]*);.*", "(?U)(.+)(.*)", "(1)(m)?", "[^/]+", "(.)(.)?(.)?", "(?m)^a$", "\\d+s",
           "(?i)é", "(?i)k", "(?i)s+", "[[:^alpha:]]+", "\\pL+", "\\PL+", "(?i)ǆ", "[^a]*", "\\x{e9}", "é|e",
           "\\b.*", "(?-s:.)+", "(?i)[a-z]+", "[\\w;]+", "(\\S+)\\s(\\S+)", "\\p{Lu}", "(?i)σ+", "a??(.*)"]
NAME_REGEXES = ["__meta_(.+)", "__meta_(.*)", "(.*)", "(a)", "__(.*)__", "(__param_)(.*)", "__meta_.*", "a",
                "instance", "job", "__.*", ".*", "(a|b|env)", "(?i)ENV", "_(.*)", "__scheme__", "(.*)_(.*)"]
TARGETS = ["a", "b", "env", "instance", "job", "__address__", "__scheme__", "__metrics_path__", "__param_x",
           "__param_z", "__scrape_interval__", "__scrape_timeout__", "__tmp", "__meta_a", "A", "_x"]
TEMPLATED_TARGETS = ["${1}", "$1", "t_$1", "${host}_x", "$2", "${1}${2}", "x${1}y", "$host"]
REPLACEMENTS = ["$1", "${1}", "$$", "$1x", "${1}x", "x$2y", "", "static", "$host", "${host}:9", "$0", "${10}",
                "http", "https", "/probe", "1m", "5s", "0s", "2h", "127.0.0.1:2", "${1}:${2}", "$2", "h1",
                "a b", "é"]
LABELMAP_REPLACEMENTS = ["$1", "${1}", "x_$1", "${2}", "$1_$2", "renamed", "__meta_$1", "__param_$1"]
SEPARATORS = [";", "", "-", "/", ":", ";;"]
MODULI = [1, 2, 3, 10, 1000, 2**63, 2**64 - 1]
ACTION_SPELLING = {"replace": ["replace", "Replace"], "labelmap": ["labelmap", "LABELMAP"]}


def _pick(rng: random.Random, seq: list[Any]) -> Any:
    return seq[rng.randrange(len(seq))]


def gen_rule(rng: random.Random) -> dict[str, Any]:
    """One valid relabel rule (valid in both 2.42 and 3.x)."""
    action = _pick(rng, ["replace"] * 4 + ["keep", "drop", "keepequal", "dropequal", "hashmod", "labelmap",
                                           "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase"])
    rule: dict[str, Any] = {"action": _pick(rng, ACTION_SPELLING.get(action, [action]))}
    if action == "replace" and rng.random() < 0.2:
        del rule["action"]
    sources = [_pick(rng, NAMES) for _ in range(rng.randrange(4))]
    if action not in ("labelmap", "labeldrop", "labelkeep") and (sources or rng.random() < 0.5):
        rule["source_labels"] = sources
    if action not in ("labeldrop", "labelkeep") and rng.random() < 0.3 and action not in ("keepequal", "dropequal"):
        rule["separator"] = _pick(rng, SEPARATORS)
    if action in ("replace", "keep", "drop"):
        if rng.random() < 0.8:
            rule["regex"] = _pick(rng, REGEXES)
    elif action in ("labelmap", "labeldrop", "labelkeep"):
        rule["regex"] = _pick(rng, NAME_REGEXES)
    if action == "replace":
        if rng.random() < 0.25:
            rule["target_label"] = _pick(rng, TEMPLATED_TARGETS)
            rule["replacement"] = "v" + _pick(rng, REPLACEMENTS)  # never empty (2.42/3.x differ then)
        else:
            rule["target_label"] = _pick(rng, TARGETS)
            if rng.random() < 0.85:
                rule["replacement"] = _pick(rng, REPLACEMENTS)
    elif action in ("keepequal", "dropequal", "lowercase", "uppercase", "hashmod"):
        rule["target_label"] = _pick(rng, TARGETS)
    if action == "hashmod":
        rule["modulus"] = _pick(rng, MODULI)
    if action == "labelmap" and rng.random() < 0.8:
        rule["replacement"] = _pick(rng, LABELMAP_REPLACEMENTS)
    return rule


def gen_case(rng: random.Random, job: str) -> dict[str, Any]:
    """A scrape job with 1-2 static target groups, each labelled ``__meta_case: <job>``."""
    groups = []
    for _ in range(rng.randrange(1, 3)):
        labels = {n: _pick(rng, VALUES) for n in rng.sample([n for n in NAMES if n != "__address__"],
                                                            rng.randrange(0, 6))}
        groups.append({"targets": rng.sample(ADDRESSES, rng.randrange(0, 3)),
                       "labels": {**labels, "__meta_case": job}})
    cfg: dict[str, Any] = {"job_name": job, "static_configs": groups,
                           "relabel_configs": [gen_rule(rng) for _ in range(rng.randrange(0, 7))]}
    if rng.random() < 0.3:
        cfg["scheme"] = "https"
    if rng.random() < 0.3:
        cfg["metrics_path"] = _pick(rng, ["/probe", "/a b", "/x%y", "/é", "/metrics/", "/a*b!(')[]~", "*"])
    # A group's own __param_<k> beats params in 3.x, params beat it in 2.42: never both.
    free = [k for k in ("x", "y", "module") if not any(g["labels"].get(f"__param_{k}") for g in groups)]
    if rng.random() < 0.3 and free:
        cfg["params"] = {k: [_pick(rng, VALUES) for _ in range(rng.randrange(0, 3))]
                         for k in rng.sample(free, rng.randrange(1, len(free) + 1))}
    if rng.random() < 0.3:
        cfg["scrape_interval"], cfg["scrape_timeout"] = _pick(rng, [("1h", "1h"), ("30m", "10s"), ("2h", "1m"),
                                                                   ("90s", "90s"), ("1d", "1h1m"), ("1w", "1d")])
    return cfg


@dataclass
class Seen:
    """What one side made of one job: sorted comparable records."""

    active: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _key(d: dict[str, Any]) -> str:
    return json.dumps(d, sort_keys=True, ensure_ascii=False)


def _url_key(url: str) -> tuple[str, list[tuple[str, str]]]:
    base, _, query = url.partition("?")
    return base, sorted(parse_qsl(query, keep_blank_values=True))


def _active(labels: dict[str, str], discovered: dict[str, str], url: str, interval: str, timeout: str) -> str:
    return _key({"labels": labels, "discovered": discovered, "url": url, "interval": interval,
                 "timeout": timeout})


# level=error ts=... component="scrape manager" scrape_pool=j1 msg="Creating target failed" err="instance 0 ..."
_FAILED = re.compile(r'scrape_pool=(\S+) msg="Creating target failed" err="instance \d+ in group [^"]*?: (.*)"$')


_SYNCED = re.compile(r'^prometheus_target_sync_length_seconds\{scrape_job="([^"]+)",quantile="0.5"\} [0-9]', re.M)


def _prometheus_side(jobs: list[dict[str, Any]]) -> dict[str, Seen]:
    """Per job what Prometheus made of it; key ``""`` holds every dropped target of the run."""
    config = {"global": {"scrape_interval": "1h", "scrape_timeout": "10s"}, "scrape_configs": jobs}
    names = {j["job_name"] for j in jobs}
    by_name = {j["job_name"]: j for j in jobs}
    seen: dict[str, Seen] = {n: Seen() for n in names}
    with realprom.prometheus(config=yaml.safe_dump(config, allow_unicode=True), timeout=60,
                             extra_args=["--enable-feature=no-default-scrape-port"]) as prom:
        # Every job's pool has synced its groups once (each job has at least one group).
        deadline = time.monotonic() + 60
        while True:
            synced = set(_SYNCED.findall(prom.get("/metrics").text))
            if names <= synced:
                break
            assert time.monotonic() < deadline, f"pools not synced: {sorted(names - synced)[:5]}"
            time.sleep(0.5)
        data = prom.get("/api/v1/targets", state="any").json()["data"]
        log = prom.log()
    for t in data["activeTargets"]:
        if t["scrapePool"] in seen:
            seen[t["scrapePool"]].active.append(_active(t["labels"], t["discoveredLabels"], t["scrapeUrl"],
                                                        t["scrapeInterval"], t["scrapeTimeout"]))
    for t in data["droppedTargets"]:
        job = t["discoveredLabels"].get("__meta_case", "")
        if job in seen and not by_name[job]["relabel_configs"]:
            seen[job].dropped.append(_key(t["discoveredLabels"]))
    for line in log.splitlines():
        m = _FAILED.search(line)
        if m and m.group(1) in seen:
            seen[m.group(1)].errors.append(re.sub(r"\\(.)", _unescape, m.group(2)))
    seen[""] = Seen(dropped=[_key(t["discoveredLabels"]) for t in data["droppedTargets"]])
    return seen


def _unescape(m: re.Match[str]) -> str:
    return {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1))


def _promlab_side(job: dict[str, Any]) -> Seen:
    cfg = load_config({"global": {"scrape_interval": "1h", "scrape_timeout": "10s"},
                       "scrape_configs": [job]}).scrape_configs[0]
    groups = [TargetGroup(tuple({"__address__": t} for t in g["targets"]), dict(g["labels"]), str(i))
              for i, g in enumerate(job["static_configs"])]
    active, dropped = build_targets(groups, cfg)
    seen = Seen()
    for t in active:
        seen.active.append(_active(t.sample_labels.to_dict(), t.discovered_labels.to_dict(), t.url,
                                   t.labels["__scrape_interval__"], t.labels["__scrape_timeout__"]))
    for d in dropped:
        if d.error:
            seen.errors.append(d.error)
        else:
            seen.dropped.append(_key(d.discovered_labels.to_dict()))
    return seen


def _normal_active(rows: list[str], discovered: bool) -> list[str]:
    out = []
    for r in rows:
        d = json.loads(r)
        d["url"] = _url_key(d["url"])
        if not discovered:
            del d["discovered"]
        out.append(_key(d))
    return sorted(out)


_DURATION_ERROR = re.compile(r"^(error parsing scrape (?:interval|timeout)): .*", re.S)


def _normal_errors(errors: list[str]) -> list[str]:
    # 2.42's model.ParseDuration says 'not a valid duration string' where 3.x's names the unit.
    return sorted(_DURATION_ERROR.sub(r"\1", e) for e in errors)


def diff_job(prom: Seen, mine: Seen, *, relabeled: bool) -> list[str]:
    """Differences between the two sides for one job (empty when they agree).

    With ``relabeled`` (the job has relabel rules) discovered labels are not compared and dropped
    targets are only counted (by :func:`hunt`, over a whole run): Prometheus 2.42 relabels the discovered label set in place, so its
    API shows them half-relabeled (fixed in later releases; promlab follows 3.x).
    """
    out = []
    if _normal_active(prom.active, not relabeled) != _normal_active(mine.active, not relabeled):
        out.append(f"active:\n  prometheus {sorted(prom.active)}\n  promlab    {sorted(mine.active)}")
    if not relabeled and Counter(prom.dropped) != Counter(mine.dropped):
        out.append(f"dropped:\n  prometheus {sorted(prom.dropped)}\n  promlab    {sorted(mine.dropped)}")
    if _normal_errors(prom.errors) != _normal_errors(mine.errors):
        out.append(f"errors:\n  prometheus {sorted(prom.errors)}\n  promlab    {sorted(mine.errors)}")
    return out


def hunt(seed: int, n: int, batch: int = 600) -> tuple[int, list[str]]:
    """Run ``n`` generated jobs through both sides; (cases compared, reports of differences)."""
    rng = random.Random(seed)
    reports: list[str] = []
    compared = 0
    for start in range(0, n, batch):
        jobs = []
        for i in range(start, min(n, start + batch)):
            jobs.append(gen_case(rng, f"j{seed}_{i}"))
        seen = _prometheus_side(jobs)
        dropped = 0
        for job in jobs:
            mine = _promlab_side(job)
            dropped += len(mine.dropped)
            problems = diff_job(seen[job["job_name"]], mine, relabeled=bool(job["relabel_configs"]))
            compared += 1
            if problems:
                reports.append(f"{job['job_name']}: {json.dumps(job, ensure_ascii=False)}\n" + "\n".join(problems))
        if dropped != len(seen[""].dropped):
            reports.append(f"run from case {start}: Prometheus dropped {len(seen[''].dropped)} targets, "
                           f"promlab {dropped}")
    return compared, reports


@pytest.mark.parametrize("seed", SEEDS)
def test_targets_match_prometheus(seed: int, require_binary: Callable[[str], str]) -> None:
    require_binary("prometheus")
    compared, reports = hunt(seed, N_CASES)
    assert compared == N_CASES
    assert not reports, f"{len(reports)} of {compared} jobs differ:\n" + "\n\n".join(reports[:5])


# --- validation: promtool check config against RelabelConfig ------------------------------------

BAD_ACTIONS = ["explode", "", None, "Keep", "LabelMap", "HASHMOD", 1, "keep "]
BAD_TARGETS = ["1x", "a-b", "${", "$", "", "a$", "${1}", "x${1}y", "é", "$1x", "${1}-", None, "__x__", "a.b"]
BAD_MODULI = [0, -1, "x", 1.5, None, 2**64, "10"]
BAD_REGEXES = ["(a", "[z-a]", "(?P<n>a)(?P<n>b)", "\\C", "a{1001}", "\\8", "x**", None, 5, "(.*)",
               "", "\\pN", "(?i)a", "[[:foo:]]", "a{2,1}", "\\Z", "(?P<>a)", "(?z)"]
BAD_REPLACEMENTS = ["$1", "a-$1", "", None, "${1}", "ok", "$", "${", "1$1", "$1$2", "é", 7]
BAD_SOURCES = [["a-b"], [], None, "a", ["é"], [1], ["a", "__b"], [""]]


def gen_bad_rule(rng: random.Random) -> dict[str, Any]:
    """A rule from :func:`gen_rule` with one to three fields set to doubtful values."""
    rule = gen_rule(rng)
    for _ in range(rng.randrange(1, 4)):
        key = _pick(rng, ["action", "target_label", "modulus", "regex", "replacement", "separator",
                          "source_labels", "unknown", "drop-key"])
        if key == "action":
            rule["action"] = _pick(rng, [*BAD_ACTIONS, "keepequal", "dropequal", "labelmap", "labeldrop",
                                                   "lowercase", "hashmod", "replace"])
        elif key == "target_label":
            rule["target_label"] = _pick(rng, [*BAD_TARGETS, *TARGETS[:3]])
        elif key == "modulus":
            rule["modulus"] = _pick(rng, [*BAD_MODULI, 3])
        elif key == "regex":
            rule["regex"] = _pick(rng, BAD_REGEXES)
        elif key == "replacement":
            rule["replacement"] = _pick(rng, BAD_REPLACEMENTS)
        elif key == "separator":
            rule["separator"] = _pick(rng, [None, "", ";", 1])
        elif key == "source_labels":
            rule["source_labels"] = _pick(rng, BAD_SOURCES)
        elif key == "unknown":
            rule[_pick(rng, ["foo", "Regex", "target-label"])] = "x"
        elif rule:
            del rule[_pick(rng, sorted(rule))]
    return rule


def _dollar_target_for_non_replace(rules: list[dict[str, Any]]) -> bool:
    return any(str(r.get("action")).lower() in ("lowercase", "uppercase", "keepequal", "dropequal")
               and "$" in str(r.get("target_label")) for r in rules)


def _first_error(message: str) -> str:
    """promtool's message as promlab words it: regexes anchored as 3.x anchors them (go-yaml's
    collected type errors, all of them with their lines, are the same)."""
    return message.replace("`^(?:", "`^(?s:")


def validation_hunt(seed: int, n: int, work: Path, promtool: str, batch: int = 200) -> tuple[int, list[str]]:
    """Check ``n`` generated rules with promtool and promlab; (cases compared, verdict differences)."""
    rng = random.Random(seed)
    reports: list[str] = []
    for start in range(0, n, batch):
        files = {}
        for i in range(start, min(n, start + batch)):
            path = work / f"v{seed}_{i}.yml"
            rules = [gen_bad_rule(rng)] + [gen_rule(rng) for _ in range(rng.randrange(2))]
            path.write_text(yaml.safe_dump({"scrape_configs": [{"job_name": "j", "relabel_configs": rules}]},
                                           allow_unicode=True, sort_keys=rng.random() < 0.5))
            files[str(path)] = rules
        out = subprocess.run([promtool, "check", "config", *files], capture_output=True, text=True, timeout=120)
        failed = {}
        for block in out.stderr.split("  FAILED: parsing YAML file ")[1:]:
            path, _, message = block.partition(": ")
            failed[path] = message.strip()
        for path, rules in files.items():
            try:
                load_config(path)
                mine = None
            except ConfigError as exc:
                mine = exc.reason
            theirs = failed.get(path)
            if _dollar_target_for_non_replace(rules):
                continue  # 2.42 accepts such a rule, 3.x refuses it
            if (mine is None) != (theirs is None) or (theirs is not None and _first_error(theirs) != mine):
                reports.append(f"{json.dumps(rules, ensure_ascii=False)}\n  promtool {theirs}\n  promlab  {mine}")
    return n, reports


@pytest.mark.parametrize("seed", SEEDS)
def test_validation_matches_promtool(seed: int, tmp_path: Path, require_binary: Callable[[str], str]) -> None:
    promtool = require_binary("promtool")
    compared, reports = validation_hunt(seed, N_CASES, tmp_path, promtool)
    assert not reports, f"{len(reports)} of {compared} rule sets differ (verdict or wording):\n" + "\n".join(
        reports[:10])
