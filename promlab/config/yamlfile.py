"""Reading YAML files the way go-yaml does: UTF-8 only, no duplicate keys, errors with a line.

``prometheus.yml`` and rule files go through here, so a file Prometheus would refuse (bytes that
are not UTF-8, a key given twice) is a :class:`~promlab.errors.ConfigError` naming the file and
the line, never a ``UnicodeDecodeError`` traceback or a silently kept second value.

:func:`load_config_file` reads ``prometheus.yml`` as Prometheus 2.42 and 3.x do (gopkg.in/yaml.v2):
syntax errors in go-yaml's words (:mod:`promlab.config.goyaml`), and mappings and sequences
loaded as :class:`YamlMap` / :class:`YamlList`, which keep each value's node so that the config
reader can word type errors as go-yaml does (``line 3: cannot unmarshal !!str `abc` into uint``)
and report a key given twice where it knows the Go type.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import yaml

from promlab.config.goyaml import go_yaml_desc, go_yaml_syntax_error
from promlab.errors import ConfigError

__all__ = ["YamlList", "YamlMap", "load_config_file", "load_yaml", "node_of", "read_text", "unmarshal_error"]


def read_text(path: str | os.PathLike[str], *, what: str = "config") -> str:
    """The text of ``path``, which must be UTF-8.

    Raises
    ------
    ConfigError
        When the file cannot be read (``cannot read config: ...``) or is not UTF-8
        (``yaml: invalid leading UTF-8 octet``, as Prometheus says, with the line).
    """
    data = _read_bytes(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"yaml: line {line}: invalid leading UTF-8 octet "
                          f"(byte 0x{data[exc.start]:02x} at offset {exc.start})",
                          file=os.fspath(path), line=line) from None


def _read_bytes(path: str | os.PathLike[str], what: str) -> bytes:
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", file=str(p)) from None


def unmarshal_error(line: int, problem: str, *, file: str | None = None,
                    path: str | None = None) -> ConfigError:
    """go-yaml's collected type error: ``yaml: unmarshal errors:\\n  line N: <problem>``."""
    return ConfigError(f"yaml: unmarshal errors:\n  line {line}: {problem}", file=file, path=path,
                       line=line)


class YamlMap(dict[Any, Any]):
    """A loaded mapping that remembers, per key, the key's line and the value's node, and the
    keys given more than once (``dups``: key and line of the repeat, in document order)."""

    key_lines: dict[Any, int]
    nodes: dict[Any, yaml.Node]
    dups: list[tuple[Any, int]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines = {}
        self.nodes = {}
        self.dups = []

    def subset(self, keys: Iterator[Any] | set[Any]) -> YamlMap:
        """The entries whose key is in ``keys``, nodes kept."""
        out = YamlMap({k: v for k, v in self.items() if k in keys})
        out.key_lines = self.key_lines
        out.nodes = self.nodes
        out.dups = self.dups
        return out


class YamlList(list[Any]):
    """A loaded sequence that remembers each item's node."""

    nodes: list[yaml.Node]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.nodes = []


def node_of(container: Any, key: Any) -> yaml.Node | None:
    """The node ``container[key]`` was loaded from, when it came from a file."""
    nodes = getattr(container, "nodes", None)
    if isinstance(nodes, dict):
        node: yaml.Node | None = nodes.get(key)
        return node
    if isinstance(nodes, list) and isinstance(key, int) and 0 <= key < len(nodes):
        item: yaml.Node = nodes[key]
        return item
    return None


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


class _NodeLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Builds :class:`YamlMap` / :class:`YamlList`; a repeated key keeps its first value (the
    reader reports it) and is listed in ``dups``."""


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[YamlMap]:
    out = YamlMap()
    yield out
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        try:
            repeated = key in out.key_lines
        except TypeError:
            key = str(key)
            repeated = key in out.key_lines
        if repeated:
            out.dups.append((key, line))
            continue
        out.key_lines[key] = line
        out.nodes[key] = value_node
        out[key] = loader.construct_object(value_node, deep=True)


def _construct_list(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> Iterator[YamlList]:
    out = YamlList()
    yield out
    out.nodes = list(node.value)
    out.extend(loader.construct_object(n, deep=True) for n in node.value)


_NodeLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_NodeLoader.add_constructor("tag:yaml.org,2002:seq", _construct_list)
# go-yaml keeps timestamps and binary as the scalar's text for a string field.
_NodeLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def load_config_file(path: str | os.PathLike[str]) -> Any:
    """The first YAML document of ``prometheus.yml`` at ``path``, read as Prometheus reads it
    (gopkg.in/yaml.v2): mappings and sequences as :class:`YamlMap` / :class:`YamlList`.

    Raises
    ------
    ConfigError
        When the file cannot be read or is not YAML, worded as go-yaml words it
        (``yaml: line 3: did not find expected node content``).
    """
    p = os.fspath(path)
    data = _read_bytes(p, "config")
    err = go_yaml_syntax_error(data, version="v2", file=p)
    if err is not None:
        raise err
    try:
        doc = next(iter(yaml.load_all(data, Loader=_NodeLoader)), None)
        if doc is None or isinstance(doc, dict):
            return doc
        node = next(iter(yaml.compose_all(data, Loader=_NodeLoader)))
    except yaml.YAMLError as exc:  # what libyaml takes and the Python loader refuses
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"yaml: {getattr(exc, 'problem', None) or exc}", file=p, line=line) from None
    # The document is not a mapping: Prometheus's Config cannot take it.
    raise unmarshal_error(node.start_mark.line + 1,
                          f"cannot unmarshal {go_yaml_desc(node, version='v2')} into config.plain", file=p)


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
