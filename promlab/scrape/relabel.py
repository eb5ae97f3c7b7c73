"""Relabeling: Prometheus's ``relabel_config`` rules applied to label sets.

Semantics follow Prometheus's ``model/relabel``: source label values are joined with
``separator``; ``regex`` is fully anchored; ``replacement`` and (for ``replace``) ``target_label``
are expanded with Go's ``regexp.Expand`` rules (``$1``, ``${1}``, ``$name``, ``$$``; a reference
takes the longest run of letters, digits and ``_``, so ``$1x`` names group ``1x``, which does not
exist and expands to nothing). ``hashmod`` is the unsigned big-endian integer of the last 8 bytes
of the MD5 digest modulo ``modulus``, so shards agree with Prometheus. The rule itself
(:class:`~promlab.config.relabel.RelabelConfig`) lives in :mod:`promlab.config`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from promlab.config.relabel import ACTIONS, DEFAULT_REGEX, RelabelConfig
from promlab.model import Labels
from promlab.model.labels import is_valid_label_name
from promlab.model.re2 import expand

__all__ = [
    "ACTIONS",
    "RelabelConfig",
    "is_valid_label_name",
    "process",
    "process_dict",
]


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
        return rx.match(val) is None
    if a == "keep":
        return rx.match(val) is not None
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
        _set(d, cfg.target_label, val.lower())
    elif a == "uppercase":
        _set(d, cfg.target_label, val.upper())
    elif a == "hashmod":
        d[cfg.target_label] = str(_hashmod(val, cfg.modulus))
    elif a == "labelmap":
        for name, value in list(d.items()):
            m = rx.match(name)
            if m is not None:
                _set(d, expand(cfg.replacement, m), value)
    elif a == "labeldrop":
        for name in [n for n in d if rx.match(n) is not None]:
            del d[name]
    elif a == "labelkeep":
        for name in [n for n in d if rx.match(n) is None]:
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
