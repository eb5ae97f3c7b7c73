"""Render templates with the real ``promtool test rules``: each template becomes an annotation of
an alert whose ``exp_annotations`` are left empty, so promtool's mismatch report prints what
Prometheus rendered."""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from promlab.rules.template.parser import unquote

_ANNOTATION = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _series_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def render(promtool: str, templates: dict[str, str], *, value: float, labels: dict[str, str],
           series: dict[str, float]) -> dict[str, str] | str:
    """The annotations promtool renders for ``templates`` (key -> template) for an alert on one
    series with ``labels`` (``__name__`` included) and ``value``; or promtool's error output
    when the rule file does not load."""
    name = labels["__name__"]
    sel = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items() if k != "__name__") + "}"
    rules = {"groups": [{"name": "g", "rules": [{"alert": "T", "expr": name, "annotations": templates}]}]}
    inputs = [{"series": sel, "values": _series_value(value)}]
    inputs += [{"series": s, "values": _series_value(v)} for s, v in series.items()]
    exp_labels = {k: v for k, v in labels.items() if k != "__name__"}
    test = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": inputs,
        "alert_rule_test": [{"eval_time": "0m", "alertname": "T",
                             "exp_alerts": [{"exp_labels": exp_labels, "exp_annotations": {}}]}]}]}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
        (d / "test.yml").write_text(yaml.safe_dump(test, allow_unicode=True))
        proc = subprocess.run([promtool, "test", "rules", "test.yml"], cwd=d, capture_output=True,
                              text=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    if "got:[" not in out:
        return out
    got = out.split("got:[", 1)[1]
    ann = got.split("Annotations:{", 1)[1]
    return {k: unquote('"' + v + '"') for k, v in _ANNOTATION.findall(ann)}
