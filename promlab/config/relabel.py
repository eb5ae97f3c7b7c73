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

from promlab.errors import ConfigError, RegexError
from promlab.model import Labels
from promlab.model.labels import is_valid_label_name
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
    def from_dict(cls, data: Any, *, file: str | None = None, path: str = "relabel_config") -> RelabelConfig:
        """Validate and build a rule the way Prometheus's config loader does."""

        def fail(reason: str, key: str | None = None) -> ConfigError:
            return ConfigError(reason, file=file, path=f"{path}.{key}" if key else path)

        if not isinstance(data, Mapping):
            raise fail("relabel config must be a mapping")
        known = {"source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"}
        for k in data:
            if k not in known:
                raise fail(f"field {k} not found in type relabel.plain", str(k))
        kw: dict[str, Any] = {}
        src = data.get("source_labels")
        if src is not None:
            if isinstance(src, str) or not isinstance(src, Sequence):
                raise fail("source_labels must be a list of label names", "source_labels")
            for s in src:
                if not isinstance(s, str) or not is_valid_label_name(s):
                    raise fail(f"{s!r} is not a valid label name", "source_labels")
            kw["source_labels"] = tuple(src)
        for key in ("separator", "target_label", "replacement"):
            if key in data and data[key] is not None:
                if not isinstance(data[key], str | int | float) or isinstance(data[key], bool):
                    raise fail(f"{key} must be a string", key)
                kw[key] = str(data[key])
        regex = DEFAULT_REGEX
        if "regex" in data:
            r = data["regex"]
            regex = "" if r is None else str(r)
        try:
            compiled = compile_anchored(regex)
        except RegexError as exc:
            raise fail(str(exc), "regex") from exc
        kw["regex"] = regex
        kw["compiled"] = compiled
        if "modulus" in data and data["modulus"] is not None:
            m = data["modulus"]
            if isinstance(m, bool) or not isinstance(m, int) or m < 0:
                raise fail(f"cannot unmarshal {m!r} into uint64", "modulus")
            kw["modulus"] = m
        action = data.get("action", "replace")
        if not isinstance(action, str) or action.lower() not in ACTIONS:
            raise fail(f"unknown relabel action {action!r}", "action")
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
            return f"{t!r} is invalid 'target_label' for {a} action"
        if a == "replace" and "$" in t and not _RELABEL_TARGET.matches(t):
            return f"{t!r} is invalid 'target_label' for {a} action"
        if a in ("lowercase", "uppercase", "keepequal", "dropequal", "hashmod") and not is_valid_label_name(t):
            return f"{t!r} is invalid 'target_label' for {a} action"
        if a in ("lowercase", "uppercase", "keepequal", "dropequal") and self.replacement != DEFAULT_REPLACEMENT:
            return f"'replacement' can not be set for {a} action"
        if a == "labelmap" and not _RELABEL_TARGET.matches(self.replacement):
            return f"{self.replacement!r} is invalid 'replacement' for {a} action"
        if a in ("keepequal", "dropequal") and (
            self.regex != DEFAULT_REGEX or self.modulus != 0 or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            return f"{a} action requires only 'source_labels' and `target_label`, and no other fields"
        if a in ("labeldrop", "labelkeep") and (
            "source_labels" in data or t != "" or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR or self.replacement != DEFAULT_REPLACEMENT
        ):
            return f"{a} action requires only 'regex', and no other fields"
        return None


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
