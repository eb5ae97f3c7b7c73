"""The first pass over a rule file: its YAML decoded the way rulefmt's go-yaml (v3) decodes
it into rule groups, with go-yaml's problems (``line N: cannot unmarshal ...``, unknown fields,
repeated keys, bad durations) collected in document order.

:func:`read_shape` returns group and rule drafts (the text of every field and the YAML node
it came from, for positions); :mod:`promlab.rules.load` checks their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import yaml

from promlab.config.goyaml import go_yaml_desc, go_yaml_int, go_yaml_tag
from promlab.model import parse_duration
from promlab.promql.parser.literals import go_quote
from promlab.rules.rule import AlertingRule, RecordingRule, Rule

__all__ = ["GroupDraft", "RuleDraft", "RuleFileShape", "is_null_node", "node_line", "node_pos", "read_shape"]

_FILE_KEYS = ("groups",)
_GROUP_KEYS = ("name", "interval", "limit", "query_offset", "labels", "rules")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
# go-yaml's names for the types, as promtool prints them in unmarshal errors.
_GO_TYPES = {"file": "rulefmt.RuleGroups", "group": "rulefmt.RuleGroup", "rule": "rulefmt.RuleNode"}


def node_line(node: yaml.Node | None) -> int:
    return 0 if node is None else node.start_mark.line + 1


def node_pos(node: yaml.Node | None) -> str:
    if node is None:
        return "0:0"
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _tag(node: yaml.Node) -> str:
    return go_yaml_tag(node, version="v3")  # rulefmt decodes with gopkg.in/yaml.v3


def _desc(node: yaml.Node) -> str:
    return go_yaml_desc(node, version="v3")


@dataclass
class RuleFileShape:
    """Pass one: the YAML's structure, checked the way go-yaml decodes into rulefmt's types."""

    # (line, column, text): sorted by position at the end, the order go-yaml meets them in
    # its depth-first walk (a mapping's repeated keys are reported at the mapping's start).
    found: list[tuple[int, int, str]] = field(default_factory=list)
    # (line, column, message): go-yaml stops at the first one in the document, reported apart.
    durations: list[tuple[int, int, str]] = field(default_factory=list)
    ignore_unknown: bool = False  # promtool's --ignore-unknown-fields

    def bad(self, node: yaml.Node, what: str) -> None:
        self.at(node, what)

    def at(self, node: yaml.Node, what: str, line: int | None = None) -> None:
        self.found.append((node.start_mark.line, node.start_mark.column,
                           f"line {node_line(node) if line is None else line}: {what}"))

    @property
    def problems(self) -> list[str]:
        return [text for _, _, text in sorted(self.found, key=lambda p: p[:2])]

    def mapping(self, node: yaml.Node, kind: str, known: Sequence[str]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if is_null_node(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"cannot unmarshal {_desc(node)} into {_GO_TYPES.get(kind, kind)}")
            return {}
        if self.repeated_keys(node):
            return {}
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = str(k.value)
            if key not in known:
                if not self.ignore_unknown:
                    self.bad(k, f"field {key} not found in type {_GO_TYPES[kind]}")
                continue
            out[key] = (k, v)
        return out

    def repeated_keys(self, node: yaml.MappingNode) -> bool:
        """yaml.v3 checks a mapping for repeated keys before decoding it; with any, it reports
        them all and decodes nothing of the mapping."""
        seen: dict[str, yaml.Node] = {}
        bad = False
        for k, _ in node.value:
            key = str(k.value)
            if key in seen:
                self.at(node, f'mapping key "{key}" already defined at line {node_line(seen[key])}',
                        line=node_line(k))
                bad = True
            else:
                seen[key] = k
        return bad

    def seq(self, node: yaml.Node, into: str) -> list[yaml.Node]:
        if is_null_node(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.bad(node, f"cannot unmarshal {_desc(node)} into {into}")
            return []
        return list(node.value)

    def struct_seq(self, node: yaml.Node, into: str) -> list[tuple[yaml.Node, yaml.Node]]:
        """A sequence decoded into a slice of structs: yaml.v3 drops null items. Each kept
        item comes with the raw item at its index (rulefmt positions a group's problems by
        the raw nodes, which still hold the nulls)."""
        raw = self.seq(node, into)
        kept = [n for n in raw if not is_null_node(n)]
        return list(zip(kept, raw, strict=False))

    def node_text(self, node: yaml.Node | None) -> str:
        """A ``yaml.Node`` field's ``Value``: a scalar's text as written (``~`` too), empty
        for a mapping or a sequence (decoded without a type error)."""
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return ""

    def string(self, node: yaml.Node | None) -> str:
        if node is None or is_null_node(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            self.bad(node, f"cannot unmarshal {_desc(node)} into string")
            return ""
        return str(node.value)

    def integer(self, node: yaml.Node | None) -> int:
        """yaml.v3 into a Go int: any integer it resolves (``0x10``, ``1_0``), and a float
        truncated (``2.9`` is 2); a quoted number is a string, an error."""
        if node is None or is_null_node(node):
            return 0
        if isinstance(node, yaml.ScalarNode) and (value := go_yaml_int(node)) is not None:
            return value
        self.bad(node, f"cannot unmarshal {_desc(node)} into int")
        return 0

    def duration(self, node: yaml.Node | None) -> int:
        text = self.string(node)
        if node is None or is_null_node(node) or not isinstance(node, yaml.ScalarNode):
            return 0
        if not text:  # a quoted '': the unmarshaler parses it
            self.durations.append((node_line(node), node.start_mark.column, "empty duration string"))
            return 0
        try:
            if text != text.strip():  # Prometheus's parser takes no spaces (a quoted " 1m")
                raise ValueError(text)
            return parse_duration(text, allow_float_seconds=False)
        except ValueError:
            self.durations.append((node_line(node), node.start_mark.column,
                                   f"not a valid duration string: {go_quote(text)}"))
            return 0

    def str_map(self, node: yaml.Node | None) -> list[tuple[yaml.Node, str, str]]:
        if node is None or is_null_node(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"cannot unmarshal {_desc(node)} into map[string]string")
            return []
        if self.repeated_keys(node):
            return []
        return [(k, str(k.value), self.string(v)) for k, v in node.value]


def is_null_node(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


@dataclass
class RuleDraft:
    index: int
    nodes: dict[str, tuple[yaml.Node, yaml.Node]]
    record: str
    alert: str
    expr: str
    for_ms: int
    keep_firing_for_ms: int
    labels: list[tuple[yaml.Node, str, str]]
    annotations: list[tuple[yaml.Node, str, str]]

    def value_node(self, key: str) -> yaml.Node | None:
        kv = self.nodes.get(key)
        return None if kv is None else kv[1]

    def build(self) -> Rule:
        labels = {k: v for _, k, v in self.labels}
        if self.alert:
            return AlertingRule(name=self.alert, expr=self.expr, for_ms=self.for_ms,
                                keep_firing_for_ms=self.keep_firing_for_ms, labels=labels,
                                annotations={k: v for _, k, v in self.annotations})
        return RecordingRule(name=self.record, expr=self.expr, labels=labels)


@dataclass
class GroupDraft:
    node: yaml.Node
    name: str
    interval_ms: int
    limit: int
    query_offset_ms: int
    labels: list[tuple[yaml.Node, str, str]]
    rules: list[RuleDraft]


def read_shape(root: yaml.Node | None, shape: RuleFileShape) -> list[GroupDraft]:
    if root is None:
        return []
    top = shape.mapping(root, "file", _FILE_KEYS)
    groups: list[GroupDraft] = []
    if "groups" not in top:
        return groups
    for gnode, raw_node in shape.struct_seq(top["groups"][1], "[]rulefmt.RuleGroup"):
        g = shape.mapping(gnode, "group", _GROUP_KEYS)
        draft = GroupDraft(
            node=raw_node,
            name=shape.string(g["name"][1]) if "name" in g else "",
            interval_ms=shape.duration(g["interval"][1]) if "interval" in g else 0,
            limit=shape.integer(g["limit"][1]) if "limit" in g else 0,
            query_offset_ms=shape.duration(g["query_offset"][1]) if "query_offset" in g else 0,
            labels=shape.str_map(g["labels"][1]) if "labels" in g else [],
            rules=[],
        )
        rules = shape.struct_seq(g["rules"][1], "[]rulefmt.RuleNode") if "rules" in g else []
        for i, (rnode, _) in enumerate(rules):
            r = shape.mapping(rnode, "rule", _RULE_KEYS)

            def get(key: str, r: dict[str, tuple[yaml.Node, yaml.Node]] = r) -> yaml.Node | None:
                return r[key][1] if key in r else None

            draft.rules.append(RuleDraft(
                # record, alert and expr are yaml.Node fields: any kind decodes.
                index=i, nodes=r, record=shape.node_text(get("record")),
                alert=shape.node_text(get("alert")), expr=shape.node_text(get("expr")),
                for_ms=shape.duration(get("for")),
                keep_firing_for_ms=shape.duration(get("keep_firing_for")),
                labels=shape.str_map(get("labels")), annotations=shape.str_map(get("annotations"))))
        groups.append(draft)
    return groups
