"""Reading YAML files the way go-yaml does: UTF-8 only, no duplicate keys, errors with a line.

``prometheus.yml`` and rule files go through here, so a file Prometheus would refuse (bytes that
are not UTF-8, a key given twice) is a :class:`~promlab.errors.ConfigError` naming the file and
the line, never a ``UnicodeDecodeError`` traceback or a silently kept second value.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from promlab.errors import ConfigError

__all__ = ["load_yaml", "read_text"]


def read_text(path: str | os.PathLike[str], *, what: str = "config") -> str:
    """The text of ``path``, which must be UTF-8.

    Raises
    ------
    ConfigError
        When the file cannot be read (``cannot read config: ...``) or is not UTF-8
        (``yaml: invalid leading UTF-8 octet``, as Prometheus says, with the line).
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", file=str(p)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"yaml: line {line}: invalid leading UTF-8 octet "
                          f"(byte 0x{data[exc.start]:02x} at offset {exc.start})",
                          file=str(p), line=line) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping key given twice (go-yaml's strict decoding)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise ConfigError(f'yaml: line {line}: mapping key "{key}" already defined at '
                                  f"line {first}", line=line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, *, file: str | None = None) -> Any:
    """Parse ``text`` (the first YAML document) with duplicate keys refused.

    Raises
    ------
    ConfigError
        On invalid YAML or a duplicate key, with ``file`` and ``line``.
    """
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except ConfigError as exc:
        raise ConfigError(exc.reason, file=file, line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc}", file=file, line=line) from None
