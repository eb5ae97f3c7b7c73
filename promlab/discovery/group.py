"""Target groups: the unit every discovery provider sends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promlab.errors import ConfigError
from promlab.model.labels import is_valid_label_name

__all__ = ["TargetGroup", "groups_from_data"]


@dataclass(frozen=True)
class TargetGroup:
    """Targets (label sets with ``__address__``) sharing ``labels``; ``source`` identifies it."""

    targets: tuple[dict[str, str], ...]
    labels: dict[str, str] = field(default_factory=dict)
    source: str = ""


def groups_from_data(data: Any, source: str, meta: dict[str, str] | None = None) -> list[TargetGroup]:
    """Build groups from the file/HTTP SD format: ``[{"targets": [...], "labels": {...}}, ...]``.

    Raises
    ------
    ConfigError
        When the data is not a list of groups or a label name or target is invalid.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError("target groups must be a list", file=source)
    out = []
    for i, g in enumerate(data):
        if not isinstance(g, dict):
            raise ConfigError("target group must be a mapping", file=source, path=f"[{i}]")
        unknown = set(g) - {"targets", "labels"}
        if unknown:
            raise ConfigError(f"field {sorted(unknown)[0]} not found in target group", file=source, path=f"[{i}]")
        labels = dict(meta or {})
        for k, v in (g.get("labels") or {}).items():
            if not isinstance(k, str) or not is_valid_label_name(k):
                raise ConfigError(f"{k!r} is not a valid label name", file=source, path=f"[{i}].labels")
            if not isinstance(v, str):
                raise ConfigError(f"label value of {k} must be a string", file=source, path=f"[{i}].labels")
            labels[k] = v
        targets = []
        for t in g.get("targets") or []:
            if not isinstance(t, str):
                raise ConfigError("targets must be strings", file=source, path=f"[{i}].targets")
            if "/" in t:
                raise ConfigError(f'"{t}" is not a valid hostname', file=source, path=f"[{i}].targets")
            targets.append({"__address__": t})
        out.append(TargetGroup(tuple(targets), labels, f"{source}:{i}"))
    return out
