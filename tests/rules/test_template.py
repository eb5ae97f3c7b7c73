"""The Go-template dialect of rule labels and annotations (promlab.rules.template).

Expected strings were checked against the real Prometheus 2.42 (``test_matches_promtool`` keeps
them honest: it renders every case with ``promtool test rules`` and compares)."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from promlab.errors import PromlabError, TemplateError
from promlab.rules.template import check_template, expand_template
from promlab.rules.template.gofmt import format_float, sprintf
from promlab.rules.template.values import format_duration_go
from tests.rules.template_cases import CASES, ERRORS, LABELS, QUERY_SERIES


@dataclass(frozen=True)
class _Sample:
    labels: dict[str, str]
    value: float


def _series(sel: str, value: float) -> _Sample:
    name, rest = sel.split("{", 1)
    return _Sample({"__name__": name, **dict(re.findall(r'(\w+)="([^"]*)"', rest))}, value)


_ALL = [_series(s, v) for s, v in QUERY_SERIES.items()]
# A fake query function answering the handful of expressions the cases use, as Prometheus would.
_ANSWERS: dict[str, list[_Sample]] = {
    "up": [s for s in _ALL if s.labels["__name__"] == "up"],
    "rate_bytes{device='eth0'}": [s for s in _ALL if s.labels.get("device") == "eth0"],
    "sum by (device) (rate_bytes)": [_Sample({"device": s.labels["device"]}, s.value) for s in _ALL
                                     if s.labels["__name__"] == "rate_bytes"],
    "nothing": [],
}


def fake_query(expr: str, time_ms: int) -> list[_Sample]:
    return list(_ANSWERS[expr])


def _expand(text: str, value: float, **kw: object) -> str:
    return expand_template(text, name="__alert_T", labels=LABELS, value=value, query_func=fake_query, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "value", "want"), [pytest.param(t, v, w, id=i) for i, t, v, w in CASES])
def test_expand(text: str, value: float, want: str) -> None:
    assert _expand(text, value) == want


@pytest.mark.parametrize(("text", "value", "want"), [pytest.param(t, v, w, id=i) for i, t, v, w in ERRORS])
def test_errors(text: str, value: float, want: str) -> None:
    with pytest.raises(TemplateError) as info:
        _expand(text, value)
    assert str(info.value) == want
    assert info.value.phase == ("parse" if want.count(":") and "executing" not in want else "execute")
    assert info.value.name == "__alert_T"


@pytest.mark.parametrize(
    ("text", "line", "col", "phase"),
    [
        pytest.param("{{ humanize \"x\" }}", 1, 4, "execute", id="exec-first-line"),
        pytest.param("ab\ncd {{ $value.x }}", 2, 13, "execute", id="exec-second-line"),
        pytest.param("ab\n\n  {{ nope }}", 3, 6, "parse", id="parse-third-line"),
        pytest.param("{{ if 1 }}", 1, 9, "parse", id="parse-eof"),
    ],
)
def test_error_position_in_user_text(text: str, line: int, col: int, phase: str) -> None:
    with pytest.raises(TemplateError) as info:
        _expand(text, 1.0)
    assert (info.value.line, info.value.col, info.value.phase) == (line, col, phase)


def test_error_types_and_prometheus_message() -> None:
    with pytest.raises(TemplateError) as info:
        _expand("{{ humanize \"x\" }}", 1.0)
    err = info.value
    assert isinstance(err, PromlabError) and isinstance(err, ValueError)
    assert err.reason == 'error calling humanize: strconv.ParseFloat: parsing "x": invalid syntax'
    assert err.prometheus_message.startswith("error executing template __alert_T: template: __alert_T:1:115:")
    with pytest.raises(TemplateError) as info:
        check_template("{{ nope }}", name="__alert_Y")
    assert info.value.prometheus_message == 'error parsing template __alert_Y: template: __alert_Y:1: function "nope" not defined'


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("plain text", id="no-action"),
        pytest.param("{{ $labels.x }} {{ query \"up\" | first | value }}", id="query-not-run"),
        pytest.param("{{ range $i, $v := .Labels }}{{ break }}{{ end }}", id="range-break"),
        pytest.param("{{ define \"a\" }}x{{ end }}{{ template \"a\" }}", id="define"),
    ],
)
def test_check_template_accepts(text: str) -> None:
    check_template(text, name="__alert_X")


def test_external_labels_url_and_time() -> None:
    got = expand_template(
        "{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }} {{ $externalURL }} {{ externalURL }} "
        "{{ pathPrefix }} {{ now }}",
        name="x", labels={}, value=0.0, external_labels={"cluster": "eu"},
        external_url="https://prom.example.com/prom", timestamp_ms=1_500,
    )
    assert got == "eu eu https://prom.example.com/prom https://prom.example.com/prom /prom 1.5"


def test_query_receives_time_and_errors_propagate() -> None:
    seen: list[tuple[str, int]] = []

    def qf(expr: str, time_ms: int) -> list[_Sample]:
        seen.append((expr, time_ms))
        if expr == "bad(":
            raise PromlabError("1:5: parse error: unclosed left parenthesis")
        return [_Sample({"a": "1"}, 2.0)]

    assert expand_template('{{ query "x" | first | value }}', name="n", labels={}, value=0.0,
                           timestamp_ms=42_000, query_func=qf) == "2"
    assert seen == [("x", 42_000)]
    with pytest.raises(TemplateError, match=r'at <query "bad\(">: error calling query: 1:5: parse error'):
        expand_template('{{ query "bad(" }}', name="n", labels={}, value=0.0, query_func=qf)
    with pytest.raises(TemplateError, match="no query function"):
        expand_template('{{ query "x" }}', name="n", labels={}, value=0.0)


def test_labels_are_not_shared_between_expansions() -> None:
    tmpl = "{{ $labels.instance }}={{ $value }}"
    assert [expand_template(tmpl, name="n", labels={"instance": i}, value=v) for i, v in [("a", 1.0), ("b", 2.5)]] == [
        "a=1", "b=2.5"]


@pytest.mark.parametrize(
    ("x", "verb", "prec", "want"),
    [
        pytest.param(1e21, "g", -1, "1e+21", id="g-1e21"),
        pytest.param(123456.0, "g", -1, "123456", id="g-6-digits"),
        pytest.param(1234567.0, "g", -1, "1.234567e+06", id="g-7-digits"),
        pytest.param(0.000123, "g", -1, "0.000123", id="g-small"),
        pytest.param(1000.0, "g", 4, "1000", id="g4-1000"),
        pytest.param(12345.0, "g", 4, "1.234e+04", id="g4-exp"),
        pytest.param(0.5, "g", 4, "0.5", id="g4-half"),
        pytest.param(-0.0, "g", -1, "-0", id="neg-zero"),
        pytest.param(math.inf, "f", 2, "+Inf", id="inf"),
        pytest.param(1e21, "f", -1, "1000000000000000000000", id="f-shortest"),
        pytest.param(1.5, "e", -1, "1.5e+00", id="e-shortest"),
    ],
)
def test_format_float(x: float, verb: str, prec: int, want: str) -> None:
    assert format_float(x, verb, prec) == want


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        pytest.param("%6.2f|%-6.2f|%+.1e", [3.14159, 2.5, 12345.678], "  3.14|2.50  |+1.2e+04", id="floats"),
        pytest.param("%v %v %v %v", [None, [1, "a"], {"b": 2.5}, True], "<nil> [1 a] map[b:2.5] true", id="values"),
        pytest.param("%T %T %T", [1, 1.5, "s"], "int float64 string", id="types"),
        pytest.param("%q|%x", ["a\nb\x01", 3.0], '"a\\nb\\x01"|0x1.8p+01', id="quote-hexfloat"),
        pytest.param("%", [], "%!(NOVERB)", id="noverb"),
    ],
)
def test_sprintf(fmt: str, args: list[object], want: str) -> None:
    assert sprintf(fmt, args) == want


@pytest.mark.parametrize(
    ("ns", "want"),
    [pytest.param(0, "0s", id="zero"), pytest.param(1_500, "1.5µs", id="us"),
     pytest.param(2_000_000, "2ms", id="ms"), pytest.param(3_600_000_000_000, "1h0m0s", id="hour"),
     pytest.param(-61_000_000_000, "-1m1s", id="negative")],
)
def test_duration_string(ns: int, want: str) -> None:
    assert format_duration_go(ns) == want


# --- the real Prometheus -------------------------------------------------------------------------

def _promtool_render(require_binary: Callable[[str], str], templates: dict[str, str], value: float) -> dict[str, str] | str:
    from tests.rules.promtool_templates import render

    return render(require_binary("promtool"), templates, value=value, labels=LABELS, series=QUERY_SERIES)


@pytest.mark.realprom
def test_matches_promtool(require_binary: Callable[[str], str]) -> None:
    """Every case (bar functions newer than 2.42) renders exactly as promtool renders it."""
    by_value: dict[str, dict[str, tuple[str, float]]] = defaultdict(dict)
    for cid, text, value, _ in CASES:
        if not cid.startswith("new_"):
            by_value[repr(value)][cid] = (text, value)
    mismatches = []
    for cases in by_value.values():
        value = next(iter(cases.values()))[1]
        got = _promtool_render(require_binary, {k: t for k, (t, _) in cases.items()}, value)
        assert isinstance(got, dict), got
        for cid, (text, _) in cases.items():
            if got[cid] != _expand(text, value):
                mismatches.append((cid, got[cid], _expand(text, value)))
    assert mismatches == []


@pytest.mark.realprom
def test_errors_match_promtool(require_binary: Callable[[str], str]) -> None:
    """Execution errors appear in the alert as Prometheus renders them; parse errors fail the
    rule file with the same message."""
    exec_cases = {cid: t for cid, t, _, want in ERRORS if "executing" in want}
    got = _promtool_render(require_binary, exec_cases, 1.0)
    assert isinstance(got, dict), got
    for cid, text in exec_cases.items():
        with pytest.raises(TemplateError) as info:
            _expand(text, 1.0)
        assert got[cid] == f"<error expanding template: {info.value.prometheus_message}>", cid
    for cid, text, _, want in ERRORS:
        if cid in exec_cases:
            continue
        out = _promtool_render(require_binary, {"a": text}, 1.0)
        assert isinstance(out, str) and f'annotation "a": {want}\n' in out, (cid, out)
