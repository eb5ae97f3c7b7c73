"""go-yaml's wording of YAML syntax errors, for messages that match Prometheus's.

go-yaml is a Go port of libyaml, so its problems are libyaml's ("did not find expected node
content", "mapping values are not allowed in this context"), not PyYAML's own parser's. PyYAML's
C binding runs libyaml itself: :func:`go_yaml_syntax_error` parses with it and words the error
as go-yaml does. The line is taken from libyaml's 0-based marks the way go-yaml takes it, which
is one less than the real line for parser errors (scanner errors get the +1):

* ``gopkg.in/yaml.v2`` (promtool's unit-test files, Prometheus 2's configuration) prefers the
  problem's mark, then the context's;
* ``gopkg.in/yaml.v3`` (rule files, through rulefmt) prefers the context's mark, then the
  problem's.

A mark on the first line (0) is no line at all: the message has no ``line N:`` then.
"""

from __future__ import annotations

import math
import re
from typing import Literal

import yaml

from promlab.errors import ConfigError

__all__ = ["go_yaml_desc", "go_yaml_int", "go_yaml_syntax_error", "go_yaml_tag"]


def _c_loader() -> type[yaml.CSafeLoader] | None:
    return getattr(yaml, "CSafeLoader", None)


def go_yaml_syntax_error(text: str | bytes, *, version: Literal["v2", "v3"], file: str | None = None,
                         ) -> ConfigError | None:
    """The error go-yaml gives for the first document of ``text`` (reason ``yaml: line N:
    ...``, ``line`` set when there is one), or None when it parses (or when PyYAML has no
    libyaml binding to ask).

    Examples
    --------
    >>> go_yaml_syntax_error("tests: [\\n", version="v2").reason
    'yaml: line 1: did not find expected node content'
    >>> go_yaml_syntax_error("a: *x\\n", version="v3").reason
    "yaml: unknown anchor 'x' referenced"
    >>> go_yaml_syntax_error("a: 1\\n", version="v3") is None
    True
    >>> go_yaml_syntax_error(b"a: \\xff\\n", version="v2").reason
    'yaml: invalid leading UTF-8 octet'
    """
    loader = _c_loader()
    if loader is None:  # pragma: no cover - PyYAML without libyaml
        return None
    try:
        next(iter(yaml.compose_all(text, Loader=loader)), None)
    except yaml.reader.ReaderError as e:
        # Bytes that are not UTF-8, control characters: libyaml's reader, no position.
        return ConfigError(f"yaml: {e.reason}", file=file)
    except yaml.composer.ComposerError as e:
        if e.problem == "found undefined alias" and e.problem_mark is not None:
            # go-yaml resolves aliases itself, without a position.
            name = _alias_name(text if isinstance(text, str) else text.decode("utf-8", "replace"),
                               e.problem_mark.index)
            return ConfigError(f"yaml: unknown anchor '{name}' referenced", file=file)
        return None
    except yaml.MarkedYAMLError as e:
        scanner = isinstance(e, yaml.scanner.ScannerError)
        marks = [e.problem_mark, e.context_mark]
        if version == "v3":
            marks.reverse()
        line = 0
        for m in marks:
            if m is not None and m.line != 0:
                line = m.line + 1 if scanner else m.line
                break
        where = f"line {line}: " if line else ""
        return ConfigError(f"yaml: {where}{e.problem or 'unknown problem parsing YAML content'}",
                           file=file, line=line or None)
    except yaml.YAMLError:
        return None
    return None


def _alias_name(text: str, index: int) -> str:
    # The alias token starts at the mark: ``*name`` up to a space or flow indicator.
    end = index + 1
    while end < len(text) and text[end] not in " \t\r\n,[]{}":
        end += 1
    return text[index + 1:end]


_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS_V3 = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
# yaml.v2 resolves YAML 1.1's bool words as well.
_BOOLS_V2 = _BOOLS_V3 | frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON",
                                   "n", "N", "no", "No", "NO", "off", "Off", "OFF"})
_SPECIAL_FLOATS = frozenset({".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                             "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"})
# go-yaml's yamlStyleFloat: what it hands to strconv.ParseFloat after the integer forms.
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_INT = re.compile(r"[-+]?(0[bB][01]+|0[oO][0-7]+|0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def _go_int_value(text: str) -> int | None:
    """The value Go's ``strconv.ParseInt(text, 0, 64)`` or ``ParseUint`` gives, or None."""
    if _GO_INT.fullmatch(text) is None:
        return None
    body = text[1:] if text[:1] in "+-" else text
    prefix = body[:2].lower()
    if prefix in ("0b", "0o", "0x"):
        value = int(body[2:], {"0b": 2, "0o": 8, "0x": 16}[prefix])
    else:
        value = int(body, 8 if body.startswith("0") else 10)
    if text.startswith("-"):
        return -value if value <= 2**63 else None
    return value if value < 2**63 or (not text.startswith("+") and value < 2**64) else None


def _go_int(text: str) -> bool:
    return _go_int_value(text) is not None


def go_yaml_int(node: yaml.Node) -> int | None:
    """A scalar decoded by yaml.v3 into a Go ``int``: an integer as resolved, a float truncated
    toward zero; None when go-yaml refuses it (a string, a bool, out of range).

    Examples
    --------
    >>> [go_yaml_int(yaml.compose(t)) for t in ("0x10", "1_0", "2.9", "1e3", "'5'", "1e30")]
    [16, 10, 2, 1000, None, None]
    """
    tag = go_yaml_tag(node, version="v3")
    text = str(node.value)
    if tag == "!!int":
        value = _go_int_value(text.replace("_", ""))
    elif tag == "!!float":
        f = float(text.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf"))
        value = None if math.isnan(f) or math.isinf(f) else math.trunc(f)
    else:
        return None
    return value if value is not None and -(2**63) <= value < 2**63 else None


def _go_float(text: str) -> bool:
    if "_" in text:  # Go's ParseFloat takes underscores only after a base prefix
        return False
    try:
        v = float(text)
    except ValueError:
        return False
    return not math.isinf(v)  # Go's ParseFloat: "value out of range"


def go_yaml_tag(node: yaml.Node, *, version: Literal["v2", "v3"]) -> str:
    """The tag go-yaml resolves ``node`` to (``!!str``, ``!!int``, ``!!float``, ``!!bool``,
    ``!!null``, ``!!timestamp``, ``!!map``, ``!!seq``), for its "cannot unmarshal" messages.

    PyYAML resolves plain scalars by YAML 1.1 (``1e3`` a string, ``1:30`` an integer); go-yaml
    by its own rules: Go's integer syntax (``0o17``, ``0x1F``), a float wherever
    ``strconv.ParseFloat`` takes the YAML-style number (``1e3``, ``08``), and YAML 1.1's bool
    words only in yaml.v2.

    Examples
    --------
    >>> [go_yaml_tag(yaml.compose(t), version="v3") for t in ("1e3", "0o17", "yes", "1:30")]
    ['!!float', '!!int', '!!str', '!!str']
    >>> go_yaml_tag(yaml.compose("y"), version="v2")
    '!!bool'
    """
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    text = str(node.value)
    resolved = node.tag.rsplit(":", 1)[-1]
    if getattr(node, "style", None) or not resolved.isalpha():
        return "!!str"  # quoted or a block scalar (an explicit local tag: kept as a string)
    if text in _NULLS:
        return "!!null"
    if text in (_BOOLS_V2 if version == "v2" else _BOOLS_V3):
        return "!!bool"
    if text in _SPECIAL_FLOATS:
        return "!!float"
    if text[:1] in "+-.0123456789":
        if resolved == "timestamp":
            return "!!timestamp"
        if text[:1] == ".":
            return "!!float" if _go_float(text) else "!!str"
        plain = text.replace("_", "")
        if _go_int(plain):
            return "!!int"
        if _YAML_STYLE_FLOAT.fullmatch(plain) and _go_float(plain):
            return "!!float"
    return "!!str"


def go_yaml_desc(node: yaml.Node, *, version: Literal["v2", "v3"]) -> str:
    """How go-yaml names a node in "cannot unmarshal" problems: the tag, and a scalar's text
    in backquotes (its first 7 bytes and ``...`` past 10 bytes).

    Examples
    --------
    >>> go_yaml_desc(yaml.compose("9223372036854775808"), version="v3")
    '!!int `9223372...`'
    >>> go_yaml_desc(yaml.compose("[1]"), version="v2")
    '!!seq'
    """
    tag = go_yaml_tag(node, version=version)
    if not isinstance(node, yaml.ScalarNode):
        return tag
    raw = str(node.value).encode("utf-8")
    text = raw[:7].decode("utf-8", "replace") + "..." if len(raw) > 10 else raw.decode("utf-8")
    return f"{tag} `{text}`"
