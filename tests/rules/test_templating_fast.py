"""Simple label/value templates are expanded by concatenation; they must equal the engine's."""

from __future__ import annotations

import math

import pytest

from promlab.rules.template import expand_template
from promlab.rules.templating import expand_rule_template

LABELS = {"instance": "host:9100", "job": "api"}
TEMPLATES = [
    pytest.param("{{ $labels.instance }} at {{ $value }}", id="labels-and-value"),
    pytest.param("{{$value}}", id="value-tight"),
    pytest.param("x {{ .Labels.job }}{{ .Value }} y }}", id="dot-forms-and-stray-braces"),
    pytest.param("{{ $labels.missing }}!", id="missing-label"),
    pytest.param("{{- $value }} trimmed", id="trim-marker-not-simple"),
    pytest.param("{{ $value | humanize }}", id="pipeline-not-simple"),
]
VALUES = [0.0, -0.0, 1.0, -2.5, 0.1 + 0.2, 1e-5, 1e-4, 123456789.0, 1e20, 1e21, 5e-324,
          math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("text", TEMPLATES)
def test_simple_templates_match_the_engine(text: str) -> None:
    for v in VALUES:
        want = expand_template(text, name="__alert_A", labels=LABELS, value=v)
        assert expand_rule_template(text, alertname="A", labels=LABELS, value=v) == want, v
