"""Relabeling: the ``relabel_config`` rule (validated as Prometheus's loader does) and applying
rules to label sets, as Prometheus's ``model/relabel`` holds both.

Scrape (target and metric relabeling), alerting (``alert_relabel_configs``) and remote write all
use it, so it sits in :mod:`promlab.config`, below each of them. Regexes are RE2 syntax,
translated and fully anchored by :mod:`promlab.model.re2`.

Semantics follow Prometheus's ``model/relabel``: source label values are joined with
``separator``; ``regex`` is fully anchored; ``replacement`` and (for ``replace``) ``target_label``
are expanded with Go's ``regexp.Expand`` rules (``$1``, ``${1}``, ``$name``, ``$$``; a reference
takes the longest run of letters, digits and ``_``, so ``$1x`` names group ``1x``, which does not
exist and expands to nothing). ``hashmod`` is the unsigned big-endian integer of the last 8 bytes
of the MD5 digest modulo ``modulus``, so shards agree with Prometheus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from promlab.config.goyaml import go_yaml_desc
from promlab.errors import ConfigError, RegexError
from promlab.model import Labels
from promlab.model.labels import format_label_value, is_valid_label_name
from promlab.model.re2 import Regex, compile_anchored, expand

__all__ = [
    "ACTIONS",
    "DEFAULT_REGEX",
    "DEFAULT_REPLACEMENT",
    "DEFAULT_SEPARATOR",
    "RelabelConfig",
    "go_lower",
    "go_upper",
    "process",
    "process_dict",
]

ACTIONS = (
    "replace", "keep", "drop", "keepequal", "dropequal", "hashmod",
    "labelmap", "labeldrop", "labelkeep", "lowercase", "uppercase",
)
DEFAULT_REGEX = "(.*)"
DEFAULT_SEPARATOR = ";"
DEFAULT_REPLACEMENT = "$1"

# A target label with references: runs of letters/underscores or $refs, then word characters.
# Linear-time (RE2) like every user-facing regex: Python's re backtracks on nested "+".
_RELABEL_TARGET = compile_anchored(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+")


@dataclass(frozen=True, kw_only=True)
class RelabelConfig:
    """One relabel rule (frozen). Build from YAML data with :meth:`from_dict`."""

    source_labels: tuple[str, ...] = ()
    separator: str = DEFAULT_SEPARATOR
    regex: str = DEFAULT_REGEX
    modulus: int = 0
    target_label: str = ""
    replacement: str = DEFAULT_REPLACEMENT
    action: str = "replace"
    compiled: Regex = field(default=compile_anchored(DEFAULT_REGEX), compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Any, *, file: str | None = None, path: str = "relabel_config",
                  type_errors: list[tuple[int, str, str]] | None = None) -> RelabelConfig:
        """Validate and build a rule the way Prometheus's config loader does.

        ``type_errors``: where go-yaml's type errors (a value of the wrong type, an unknown key)
        go as ``(line, problem, key path)`` when ``data`` came from a file: the config reader
        reports them with the file's others. The rule returned then is a placeholder.
        """

        def fail(reason: str, key: str | None = None) -> ConfigError:
            return ConfigError(reason, file=file, path=f"{path}.{key}" if key else path)

        if not isinstance(data, Mapping):
            raise fail("relabel config must be a mapping")
        # Keys are decoded in document order, as Go's YAML decoder does: a bad regex, action or
        # source label name stops it at once; unknown keys and values of the wrong type are
        # collected and reported after the whole rule was read; then the rule is validated.
        kw: dict[str, Any] = {}
        deferred: list[tuple[str, str, Any]] = []  # (problem, key, the item's node for a list item)
        regex, action = DEFAULT_REGEX, "replace"
        for key, v in data.items():
            if key == "source_labels":
                if v is None:  # null is no list (labeldrop allows it); [] is a list
                    continue
                if isinstance(v, str) or not isinstance(v, Sequence):
                    deferred.append((_type_error(v, "model.LabelNames"), key, None))
                    continue
                item_nodes = getattr(v, "nodes", [])
                for j, s in enumerate(v):
                    if isinstance(s, Mapping | list):  # go-yaml goes on; a bad name stops it
                        deferred.append((_type_error(s, "string"), key,
                                         item_nodes[j] if j < len(item_nodes) else None))
                    elif not is_valid_label_name(_scalar(s)):
                        raise fail(f"{format_label_value(_scalar(s))} is not a valid label name", key)
                kw[key] = tuple(_scalar(s) for s in v)
            elif key in ("separator", "target_label", "replacement"):
                if isinstance(v, Mapping | list):
                    deferred.append((_type_error(v, "string"), key, None))
                else:  # a YAML null is Go's zero value, "", not the default
                    kw[key] = _scalar(v)
            elif key == "regex":
                if isinstance(v, Mapping | list):
                    deferred.append((_type_error(v, "string"), key, None))
                    continue
                regex = _scalar(v)
                try:
                    kw["compiled"] = compile_anchored(regex)
                except RegexError as exc:
                    raise fail(str(exc), key) from exc
            elif key == "modulus":
                if v is None:
                    continue
                if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or float(v) > 2.0**64:
                    deferred.append((_type_error(v, "uint64"), key, None))
                    continue
                kw[key] = _go_uint64(v)
            elif key == "action":
                if isinstance(v, Mapping | list):
                    deferred.append((_type_error(v, "string"), key, None))
                    continue
                action = _scalar(v)
                if v is not None and action.lower() not in ACTIONS:
                    raise fail(f"unknown relabel action {format_label_value(action)}", key)
            else:
                deferred.append((f"field {key} not found in type relabel.plain", str(key), None))
        if deferred:
            if type_errors is not None and _with_lines(data, deferred, path, type_errors):
                return cls()
            raise fail(*deferred[0][:2])
        if action == "":
            raise fail("relabel action cannot be empty", "action")
        kw["regex"] = regex
        kw["action"] = action.lower()
        cfg = cls(**kw)
        reason = cfg.check(data)
        if reason:
            raise fail(reason)
        return cfg

    def check(self, data: Mapping[str, Any]) -> str | None:
        """Why this rule is invalid given the YAML ``data`` it came from (None when it is valid)."""
        a, t = self.action, self.target_label
        if a == "hashmod" and self.modulus == 0:
            return "relabel configuration for hashmod requires non-zero modulus"
        needs_target = ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
        if a in needs_target and t == "":
            return f"relabel configuration for {a} action requires 'target_label' value"
        if a == "replace" and "$" not in t and not is_valid_label_name(t):
            return f"{format_label_value(t)} is invalid 'target_label' for {a} action"
        if a == "replace" and "$" in t and not _RELABEL_TARGET.matches(t):
            return f"{format_label_value(t)} is invalid 'target_label' for {a} action"
        if a in ("lowercase", "uppercase", "keepequal", "dropequal", "hashmod") and not is_valid_label_name(t):
            return f"{format_label_value(t)} is invalid 'target_label' for {a} action"
        if a in ("lowercase", "uppercase", "keepequal", "dropequal") and self.replacement != DEFAULT_REPLACEMENT:
            return f"'replacement' can not be set for {a} action"
        if a == "labelmap" and not _RELABEL_TARGET.matches(self.replacement):
            return f"{format_label_value(self.replacement)} is invalid 'replacement' for {a} action"
        # Any regex key counts as set, even "(.*)": Prometheus compares the compiled regex with
        # the default one by identity.
        if a in ("keepequal", "dropequal") and (
            "regex" in data or self.modulus != 0 or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            return f"{a} action requires only 'source_labels' and `target_label`, and no other fields"
        if a in ("labeldrop", "labelkeep") and (
            data.get("source_labels") is not None or t != "" or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR or self.replacement != DEFAULT_REPLACEMENT
        ):
            return f"{a} action requires only 'regex', and no other fields"
        return None


def _with_lines(data: Any, deferred: list[tuple[str, str, Any]], path: str,
                out: list[tuple[int, str, str]]) -> bool:
    """Add the rule's type errors to ``out`` with their lines (a value's own line, an unknown
    key's line) and the value worded from its node, as go-yaml does; False when ``data`` did
    not come from a file."""
    nodes: Mapping[Any, Any] = getattr(data, "nodes", {})
    key_lines: Mapping[Any, int] = getattr(data, "key_lines", {})
    if not all(key in key_lines for _, key, _ in deferred):
        return False
    for problem, key, item_node in deferred:
        node = item_node or nodes.get(key)
        if problem.startswith("cannot unmarshal") and node is not None:
            problem = f"cannot unmarshal {go_yaml_desc(node, version='v2')} into {problem.rsplit(' ', 1)[1]}"
            line = node.start_mark.line + 1
        else:
            line = key_lines[key]
        out.append((line, problem, f"{path}.{key}"))
    return True


def _type_error(value: Any, gotype: str) -> str:
    """Go's YAML type error: ``cannot unmarshal !!str `x` into uint64`` (a value over 10
    characters shortened to 7 and ``...``; none shown for a list or mapping)."""
    if isinstance(value, Mapping):
        return f"cannot unmarshal !!map into {gotype}"
    if isinstance(value, list):
        return f"cannot unmarshal !!seq into {gotype}"
    tag = {bool: "!!bool", int: "!!int", float: "!!float"}.get(type(value), "!!str")
    text = _scalar(value)
    text = text[:7] + "..." if len(text) > 10 else text
    return f"cannot unmarshal {tag} `{text}` into {gotype}"


def _scalar(value: Any) -> str:
    """A YAML scalar as Go's decoder stores it in a string: null is "", true is "true"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_uint64(m: float) -> int:
    """A YAML number as Go's YAML decoder stores it in a uint64 (on amd64): a float, or an integer
    too big for uint64 (which it reads as a float), is truncated; 2**64 itself becomes 2**63."""
    if isinstance(m, int) and m < 2**64:
        return m
    f = float(m)
    if f < 2.0**63:
        return int(f)
    rest = f - 2.0**63
    return (int(rest) if rest < 2.0**63 else 2**63) | 2**63


def _simple_upper(ch: str) -> str:
    up = ch.upper()
    if len(up) == 1:
        return up
    title = ch.title()  # ᾀ: full upper "ἈΙ", simple upper (= title) "ᾈ"
    return title if len(title) == 1 else ch  # ß, ﬀ, ŉ: no simple upper case


def go_upper(text: str) -> str:
    """``text`` in upper case as Go's ``strings.ToUpper``: rune by rune with Unicode's simple
    mappings, so ``ß`` and ``ﬀ`` stay (Python's ``str.upper`` makes ``SS``/``FF``)."""
    if text.isascii():
        return text.upper()
    return "".join(_simple_upper(ch) for ch in text)


def go_lower(text: str) -> str:
    """``text`` in lower case as Go's ``strings.ToLower``: rune by rune with Unicode's simple
    mappings, so ``İ`` becomes ``i`` and a final ``Σ`` becomes ``σ`` (Python's ``str.lower``
    makes ``i̇`` and ``ς``)."""
    if text.isascii():
        return text.lower()
    return "".join(low if len(low := ch.lower()) == 1 else "i" if ch == "\u0130" else ch for ch in text)


def _hashmod(value: str, modulus: int) -> int:
    digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % modulus


def _set(d: dict[str, str], name: str, value: str) -> None:
    if value == "":
        d.pop(name, None)
    else:
        d[name] = value


def _apply(cfg: RelabelConfig, d: dict[str, str]) -> bool:
    """Apply one rule to ``d`` in place; False when the label set is dropped."""
    val = cfg.separator.join(d.get(n, "") for n in cfg.source_labels)
    a = cfg.action
    rx = cfg.compiled
    if a == "drop":
        return not rx.matches(val)
    if a == "keep":
        return rx.matches(val)
    if a == "dropequal":
        return d.get(cfg.target_label, "") != val
    if a == "keepequal":
        return d.get(cfg.target_label, "") == val
    if a == "replace":
        if (val == "" and cfg.regex == DEFAULT_REGEX and "$" not in cfg.target_label
                and "$" not in cfg.replacement):
            _set(d, cfg.target_label, cfg.replacement)
            return True
        m = rx.match(val)
        if m is None:
            return True
        target = expand(cfg.target_label, m)
        if not is_valid_label_name(target):
            return True
        _set(d, target, expand(cfg.replacement, m))
        return True
    if a == "lowercase":
        _set(d, cfg.target_label, go_lower(val))
    elif a == "uppercase":
        _set(d, cfg.target_label, go_upper(val))
    elif a == "hashmod":
        d[cfg.target_label] = str(_hashmod(val, cfg.modulus))
    elif a == "labelmap":
        # In name order, as Prometheus walks a label set: when two names map to one target, the
        # later name's value wins.
        for name, value in sorted(d.items()):
            m = rx.match(name)
            if m is not None:
                _set(d, expand(cfg.replacement, m), value)
    elif a == "labeldrop":
        for name in [n for n in d if rx.matches(n)]:
            del d[name]
    elif a == "labelkeep":
        for name in [n for n in d if not rx.matches(n)]:
            del d[name]
    return True


def process_dict(labels: dict[str, str], configs: Sequence[RelabelConfig]) -> dict[str, str] | None:
    """Relabel a plain dict in place; returns it, or None when a rule drops it."""
    for cfg in configs:
        if not _apply(cfg, labels):
            return None
    return labels


def process(labels: Labels | Mapping[str, str], configs: Sequence[RelabelConfig]) -> Labels | None:
    """Apply ``configs`` in order; the relabeled set, or None when dropped.

    An empty result is returned as is; the scrape path treats it as dropped.

    Examples
    --------
    >>> rc = RelabelConfig.from_dict({"source_labels": ["a"], "target_label": "b"})
    >>> process(Labels({"a": "x"}), [rc])
    Labels({'a': 'x', 'b': 'x'})
    """
    if not configs:
        return labels if isinstance(labels, Labels) else Labels(labels)
    out = process_dict(dict(labels.items()), configs)
    if out is None:
        return None
    return Labels(out)
