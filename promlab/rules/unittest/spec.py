"""Reading a rule unit-test file: the YAML ``promtool test rules`` takes, decoded strictly.

Decoding follows go-yaml's ``UnmarshalStrict`` into promtool's types: an unknown field, a
value of the wrong shape or a bad duration is an error that stops the file, reported as
go-yaml reports it (``yaml: unmarshal errors:`` and ``line N: ...``). Scalars are kept as
their source text, so ``values: 2.9999999999999996`` reaches the series parser untouched.

Examples
--------
>>> f = parse_test_file('''
... rule_files: [rules.yml]
... tests:
... - interval: 1m
...   input_series: [{series: up, values: 1x3}]
...   promql_expr_test: [{expr: up, eval_time: 2m, exp_samples: [{labels: up, value: 1}]}]
... ''')
>>> f.evaluation_interval_ms, f.tests[0].interval_ms, f.tests[0].promql_expr_tests[0].eval_time_ms
(60000, 60000, 120000)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import yaml

from promlab.config.goyaml import go_yaml_desc, go_yaml_syntax_error
from promlab.errors import BadData, ConfigError
from promlab.model import parse_duration, parse_time
from promlab.rules.unittest.text import go_quote

__all__ = [
    "AlertTestCase",
    "ExpAlert",
    "ExpSample",
    "InputSeries",
    "PromqlTestCase",
    "TestGroup",
    "UnitTestFile",
    "parse_test_file",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InputSeries:
    """``series`` (a series selector text) and ``values`` (the expanding notation)."""

    series: str = ""
    values: str = ""


@dataclass(frozen=True, slots=True)
class ExpAlert:
    """One expected firing alert: its labels (``alertname`` is added) and annotations."""

    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertTestCase:
    eval_time_ms: int = 0
    alertname: str = ""
    exp_alerts: tuple[ExpAlert, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpSample:
    """``labels`` is a series selector text ("" for no labels); ``histogram`` (a native
    histogram literal) replaces ``value`` when not empty."""

    labels: str = ""
    value: float = 0.0
    histogram: str = ""


@dataclass(frozen=True, slots=True)
class PromqlTestCase:
    expr: str = ""
    eval_time_ms: int = 0
    exp_samples: tuple[ExpSample, ...] = ()


@dataclass(frozen=True, slots=True)
class TestGroup:
    """One element of ``tests``: input series and the expectations over them.

    ``interval_ms`` is 0 when the file does not set it (the file's evaluation interval is
    used); ``start_ms`` is ``start_timestamp`` (None: the Unix epoch).
    """

    __test__ = False  # not a pytest class

    interval_ms: int = 0
    input_series: tuple[InputSeries, ...] = ()
    alert_rule_tests: tuple[AlertTestCase, ...] = ()
    promql_expr_tests: tuple[PromqlTestCase, ...] = ()
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    name: str = ""
    start_ms: int | None = None

    def max_eval_time_ms(self) -> int:
        """The latest ``eval_time`` of any alert or PromQL test (0 when there are none)."""
        times = [a.eval_time_ms for a in self.alert_rule_tests]
        times += [p.eval_time_ms for p in self.promql_expr_tests]
        return max(times, default=0)


@dataclass(frozen=True, slots=True)
class UnitTestFile:
    """A whole test file; ``rule_files`` as written (resolved later, relative to the file)."""

    rule_files: tuple[str, ...] = ()
    evaluation_interval_ms: int = 60_000
    group_eval_order: tuple[str, ...] = ()
    tests: tuple[TestGroup, ...] = ()
    fuzzy_compare: bool = False


_GO_TRUE = frozenset(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"])
_GO_FALSE = frozenset(["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"])
_GO_SPECIAL = {**dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
               **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
               **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan)}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def _go_parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)`` (or ``ParseUint`` past int64): 0x, 0o, 0b and
    leading-0 octal prefixes."""
    sign, digits = (-1, text[1:]) if text[:1] == "-" else (1, text[1:] if text[:1] == "+" else text)
    low = digits[:2].lower()
    base = {"0x": 16, "0o": 8, "0b": 2}.get(low, 8 if len(digits) > 1 and digits[0] == "0" else 10)
    body = digits[2:] if low in ("0x", "0o", "0b") else digits
    if not body or not body.isascii() or not body.isalnum():
        return None
    try:
        v = sign * int(body, base)
    except ValueError:
        return None
    return v if -(2**63) <= v < 2**64 else None


def go_yaml_number(text: str) -> float | None:
    """A plain YAML scalar as go-yaml v2 resolves it into a float64 (None: not a number).

    >>> go_yaml_number("017"), go_yaml_number("1_000"), go_yaml_number("-0"), go_yaml_number("nan")
    (15.0, 1000.0, 0.0, None)
    """
    if text in _GO_SPECIAL:
        return _GO_SPECIAL[text]
    if not text or text[0] not in "+-.0123456789":
        return None
    if text[0] == ".":  # ParseFloat of the text itself: "_" only between digits, as Python's
        try:
            v = float(text)
        except ValueError:
            return None
        return None if math.isinf(v) else v
    plain = text.replace("_", "")
    as_int = _go_parse_int(plain)
    if as_int is not None:
        return float(as_int)
    if _YAML_FLOAT.fullmatch(plain):
        v = float(plain)
        return None if math.isinf(v) else v  # Go's ParseFloat: out of range is an error
    return None


class _Abort(Exception):
    """A custom unmarshaler's error: decoding stops there."""

    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(message)
        self.message = message
        self.line = node.start_mark.line + 1


class _Decoder:
    """Collects go-yaml-style unmarshal problems while walking the node tree."""

    def __init__(self, version: Literal["v2", "v3"] = "v2") -> None:
        self._found: list[tuple[int, int, str]] = []
        self.version: Literal["v2", "v3"] = version  # the go-yaml that decodes

    @property
    def problems(self) -> list[str]:
        """The problems in document order (go-yaml meets them walking the document)."""
        return [f"line {line + 1}: {what}" for line, _, what in sorted(self._found, key=lambda p: p[:2])]

    def bad(self, node: yaml.Node, what: str) -> None:
        self._found.append((node.start_mark.line, node.start_mark.column, what))

    @staticmethod
    def null(node: yaml.Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")

    def desc(self, node: yaml.Node) -> str:
        return go_yaml_desc(node, version=self.version)

    def mapping(self, node: yaml.Node, gotype: str, known: Sequence[str]) -> dict[str, yaml.Node]:
        if self.null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"cannot unmarshal {self.desc(node)} into main.{gotype}")
            return {}
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = str(k.value)
            if key not in known:
                self.bad(k, f"field {key} not found in type main.{gotype}")
            elif key in out:
                self.bad(k, f"field {key} already set in type main.{gotype}")
            else:
                out[key] = v
        return out

    def seq(self, node: yaml.Node | None, gotype: str, item: Callable[[yaml.Node], T]) -> tuple[T, ...]:
        if node is None or self.null(node):
            return ()
        if not isinstance(node, yaml.SequenceNode):
            self.bad(node, f"cannot unmarshal {self.desc(node)} into []{gotype}")
            return ()
        return tuple(item(n) for n in node.value)

    def string(self, node: yaml.Node | None, gotype: str = "string") -> str:
        if node is None or self.null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            self.bad(node, f"cannot unmarshal {self.desc(node)} into {gotype}")
            return ""
        return str(node.value)

    def str_map(self, node: yaml.Node | None, gotype: str = "map[string]string") -> dict[str, str]:
        if node is None or self.null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"cannot unmarshal {self.desc(node)} into {gotype}")
            return {}
        out: dict[str, str] = {}
        for k, v in node.value:
            key = str(k.value)
            if key in out:
                self.bad(k, f"key {go_quote(key)} already set in map")
            else:
                out[key] = self.string(v)
        return out

    def duration(self, node: yaml.Node | None) -> int:
        if node is None or self.null(node):
            return 0
        text = self.string(node)
        if not isinstance(node, yaml.ScalarNode):
            return 0
        # A duration's own unmarshaler fails outright in go-yaml v2 (not a collected type
        # error): the file's only problem is that message, with no line.
        if not text:
            raise _Abort("empty duration string", node)
        if text != text.strip():  # Prometheus's parser takes no spaces (a quoted " 1m")
            raise _Abort(f"not a valid duration string: {go_quote(text)}", node)
        try:
            return parse_duration(text, allow_float_seconds=False)
        except ValueError as e:
            raise _Abort(str(e), node) from None

    def quoted(self, node: yaml.Node | None, gotype: str) -> bool:
        """A quoted scalar is a string to go-yaml: never a number or a bool."""
        if isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
            self.bad(node, f"cannot unmarshal {self.desc(node)} into {gotype}")
            return True
        return False

    def boolean(self, node: yaml.Node | None) -> bool:
        text = self.string(node, "bool")
        if node is None or self.quoted(node, "bool") or not text:
            return False
        if text in _GO_TRUE:
            return True
        if text in _GO_FALSE:
            return False
        self.bad(node, f"cannot unmarshal {self.desc(node)} into bool")
        return False

    def float64(self, node: yaml.Node | None) -> float:
        text = self.string(node, "float64")
        if node is None or self.quoted(node, "float64") or not text or text in ("~", "null", "Null", "NULL"):
            return 0.0
        v = go_yaml_number(text)
        if v is None:
            self.bad(node, f"cannot unmarshal {self.desc(node)} into float64")
            return 0.0
        return v

    def timestamp(self, node: yaml.Node | None) -> int | None:
        text = self.string(node)
        if node is None or not text:
            return None
        try:
            return parse_time(text)
        except BadData:
            self.bad(node, f"cannot parse {text!r} to a valid timestamp")
            return None

    # --- promtool's types ------------------------------------------------------------------------
    def series(self, node: yaml.Node) -> InputSeries:
        m = self.mapping(node, "series", ("series", "values"))
        return InputSeries(self.string(m.get("series")), self.string(m.get("values")))

    def exp_alert(self, node: yaml.Node) -> ExpAlert:
        m = self.mapping(node, "alert", ("exp_labels", "exp_annotations"))
        return ExpAlert(self.str_map(m.get("exp_labels")), self.str_map(m.get("exp_annotations")))

    def alert_test(self, node: yaml.Node) -> AlertTestCase:
        m = self.mapping(node, "alertTestCase", ("eval_time", "alertname", "exp_alerts"))
        return AlertTestCase(self.duration(m.get("eval_time")), self.string(m.get("alertname")),
                             self.seq(m.get("exp_alerts"), "main.alert", self.exp_alert))

    def exp_sample(self, node: yaml.Node) -> ExpSample:
        m = self.mapping(node, "sample", ("labels", "value", "histogram"))
        return ExpSample(self.string(m.get("labels")), self.float64(m.get("value")),
                         self.string(m.get("histogram")))

    def promql_test(self, node: yaml.Node) -> PromqlTestCase:
        m = self.mapping(node, "promqlTestCase", ("expr", "eval_time", "exp_samples"))
        return PromqlTestCase(self.string(m.get("expr")), self.duration(m.get("eval_time")),
                              self.seq(m.get("exp_samples"), "main.sample", self.exp_sample))

    def test_group(self, node: yaml.Node) -> TestGroup:
        m = self.mapping(node, "testGroup", (
            "interval", "input_series", "alert_rule_test", "promql_expr_test", "external_labels",
            "external_url", "name", "start_timestamp"))
        return TestGroup(
            interval_ms=self.duration(m.get("interval")),
            input_series=self.seq(m.get("input_series"), "main.series", self.series),
            alert_rule_tests=self.seq(m.get("alert_rule_test"), "main.alertTestCase", self.alert_test),
            promql_expr_tests=self.seq(m.get("promql_expr_test"), "main.promqlTestCase",
                                       self.promql_test),
            external_labels=self.str_map(m.get("external_labels")),
            external_url=self.string(m.get("external_url")),
            name=self.string(m.get("name")),
            start_ms=self.timestamp(m.get("start_timestamp")))

    def file(self, node: yaml.Node | None) -> UnitTestFile:
        if node is None:
            return UnitTestFile()
        m = self.mapping(node, "unitTestFile", (
            "rule_files", "evaluation_interval", "group_eval_order", "tests", "fuzzy_compare"))
        return UnitTestFile(
            rule_files=self.seq(m.get("rule_files"), "string", self.string),
            evaluation_interval_ms=self.duration(m.get("evaluation_interval")) or 60_000,
            group_eval_order=self.seq(m.get("group_eval_order"), "string", self.string),
            tests=self.seq(m.get("tests"), "main.testGroup", self.test_group),
            fuzzy_compare=self.boolean(m.get("fuzzy_compare")))


def parse_test_file(text: str, *, file: str = "") -> UnitTestFile:
    """Decode a unit-test file's text (``evaluation_interval`` defaults to 1m).

    Raises
    ------
    ConfigError
        Bad YAML, unknown fields, wrong types or bad durations (promtool's message).
    """
    # promtool reads the file with gopkg.in/yaml.v2: libyaml's wording, the first document only.
    if (syntax := go_yaml_syntax_error(text, version="v2", file=file)) is not None:
        raise syntax
    try:
        root = next(iter(yaml.compose_all(text, Loader=yaml.SafeLoader)), None)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        where = f"line {line}: " if line else ""
        raise ConfigError(f"yaml: {where}{getattr(e, 'problem', None) or e}", file=file,
                          line=line) from None
    dec = _Decoder()
    try:
        out = dec.file(root)
    except _Abort as e:
        raise ConfigError(e.message, file=file, line=e.line) from None
    if dec.problems:
        first = int(dec.problems[0].split(":")[0].split()[1])
        raise ConfigError("yaml: unmarshal errors:\n" + "\n".join("  " + p for p in dec.problems),
                          file=file, line=first)
    return out
