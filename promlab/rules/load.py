"""Reading and checking rule files in Prometheus's format.

Two passes, as Prometheus's ``rulefmt`` makes them: first the YAML's shape (syntax, unknown
fields, types, durations: any problem stops the file there, and is reported the way go-yaml
reports it, ``yaml: unmarshal errors:`` with line numbers), then every rule's meaning (PromQL,
names, templates, fields that do not belong), all problems collected, each prefixed with the
``line:column`` of the YAML node at fault and ``group "g", rule N, "name"``.

:func:`check_files` prints what ``promtool check rules`` prints and returns its exit code.

Examples
--------
>>> groups = parse_rules('''
... groups:
... - name: g
...   interval: 30s
...   rules:
...   - alert: Down
...     expr: up == 0
...     for: 5m
... ''')
>>> groups[0].interval_ms, groups[0].rules[0].for_ms
(30000, 300000)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import yaml

from promlab.config.goyaml import go_yaml_desc, go_yaml_int, go_yaml_syntax_error, go_yaml_tag
from promlab.config.yamlfile import read_text
from promlab.errors import ConfigError, ParseError, PromlabError
from promlab.model import is_valid_label_name, parse_duration
from promlab.promql.parser import parse_expr
from promlab.rules.rule import DEFAULT_INTERVAL_MS, AlertingRule, RecordingRule, Rule, RuleGroup
from promlab.rules.templating import check_rule_template

__all__ = ["FileCheck", "check_file", "check_files", "load_rules", "parse_rules", "validate_rules"]

_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

_FILE_KEYS = ("groups",)
_GROUP_KEYS = ("name", "interval", "limit", "query_offset", "labels", "rules")
_RULE_KEYS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")
# go-yaml's names for the types, as promtool prints them in unmarshal errors.
_GO_TYPES = {"file": "rulefmt.RuleGroups", "group": "rulefmt.RuleGroup", "rule": "rulefmt.RuleNode"}


def _line(node: yaml.Node | None) -> int:
    return 0 if node is None else node.start_mark.line + 1


def _pos(node: yaml.Node | None) -> str:
    if node is None:
        return "0:0"
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _tag(node: yaml.Node) -> str:
    return go_yaml_tag(node, version="v3")  # rulefmt decodes with gopkg.in/yaml.v3


def _desc(node: yaml.Node) -> str:
    return go_yaml_desc(node, version="v3")


@dataclass
class _Shape:
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
                           f"line {_line(node) if line is None else line}: {what}"))

    @property
    def problems(self) -> list[str]:
        return [text for _, _, text in sorted(self.found, key=lambda p: p[:2])]

    def mapping(self, node: yaml.Node, kind: str, known: Sequence[str]) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if _is_null(node):
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
                self.at(node, f'mapping key "{key}" already defined at line {_line(seen[key])}',
                        line=_line(k))
                bad = True
            else:
                seen[key] = k
        return bad

    def seq(self, node: yaml.Node, into: str) -> list[yaml.Node]:
        if _is_null(node):
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
        kept = [n for n in raw if not _is_null(n)]
        return list(zip(kept, raw, strict=False))

    def node_text(self, node: yaml.Node | None) -> str:
        """A ``yaml.Node`` field's ``Value``: a scalar's text as written (``~`` too), empty
        for a mapping or a sequence (decoded without a type error)."""
        if isinstance(node, yaml.ScalarNode):
            return str(node.value)
        return ""

    def string(self, node: yaml.Node | None) -> str:
        if node is None or _is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            self.bad(node, f"cannot unmarshal {_desc(node)} into string")
            return ""
        return str(node.value)

    def integer(self, node: yaml.Node | None) -> int:
        """yaml.v3 into a Go int: any integer it resolves (``0x10``, ``1_0``), and a float
        truncated (``2.9`` is 2); a quoted number is a string, an error."""
        if node is None or _is_null(node):
            return 0
        if isinstance(node, yaml.ScalarNode) and (value := go_yaml_int(node)) is not None:
            return value
        self.bad(node, f"cannot unmarshal {_desc(node)} into int")
        return 0

    def duration(self, node: yaml.Node | None) -> int:
        text = self.string(node)
        if node is None or _is_null(node) or not isinstance(node, yaml.ScalarNode):
            return 0
        if not text:  # a quoted '': the unmarshaler parses it
            self.durations.append((_line(node), node.start_mark.column, "empty duration string"))
            return 0
        try:
            return parse_duration(text, allow_float_seconds=False)
        except ValueError:
            self.durations.append((_line(node), node.start_mark.column,
                                   f'not a valid duration string: "{text}"'))
            return 0

    def str_map(self, node: yaml.Node | None) -> list[tuple[yaml.Node, str, str]]:
        if node is None or _is_null(node):
            return []
        if not isinstance(node, yaml.MappingNode):
            self.bad(node, f"cannot unmarshal {_desc(node)} into map[string]string")
            return []
        if self.repeated_keys(node):
            return []
        return [(k, str(k.value), self.string(v)) for k, v in node.value]


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null")


@dataclass
class _RuleDraft:
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
class _GroupDraft:
    node: yaml.Node
    name: str
    interval_ms: int
    limit: int
    query_offset_ms: int
    labels: list[tuple[yaml.Node, str, str]]
    rules: list[_RuleDraft]


def _read_shape(root: yaml.Node | None, shape: _Shape) -> list[_GroupDraft]:
    if root is None:
        return []
    top = shape.mapping(root, "file", _FILE_KEYS)
    groups: list[_GroupDraft] = []
    if "groups" not in top:
        return groups
    for gnode, raw_node in shape.struct_seq(top["groups"][1], "[]rulefmt.RuleGroup"):
        g = shape.mapping(gnode, "group", _GROUP_KEYS)
        draft = _GroupDraft(
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

            draft.rules.append(_RuleDraft(
                # record, alert and expr are yaml.Node fields: any kind decodes.
                index=i, nodes=r, record=shape.node_text(get("record")),
                alert=shape.node_text(get("alert")), expr=shape.node_text(get("expr")),
                for_ms=shape.duration(get("for")),
                keep_firing_for_ms=shape.duration(get("keep_firing_for")),
                labels=shape.str_map(get("labels")), annotations=shape.str_map(get("annotations"))))
        groups.append(draft)
    return groups


def _valid_metric_name(name: str, scheme: str) -> bool:
    if scheme == "utf8":
        return bool(name) and "{" not in name and "}" not in name
    return _LEGACY_METRIC.fullmatch(name) is not None


def _valid_label_name(name: str, scheme: str) -> bool:
    if scheme == "utf8":
        return bool(name)
    return is_valid_label_name(name)


_NO_POS = "\x00"  # marks a rule problem printed without its node's position
_ALT_POS = "\x01"  # brackets a second position printed after the node's


def _validate_rule(g: _GroupDraft, r: _RuleDraft, scheme: str) -> list[tuple[yaml.Node | None, str]]:
    """Every problem of one rule: ``(node at fault, message)`` in rulefmt's order."""
    out: list[tuple[yaml.Node | None, str]] = []
    rec_node, alert_node = r.value_node("record"), r.value_node("alert")
    if r.record and r.alert:
        # rulefmt prints both nodes' positions ahead of the group: "5:13: 4:12: group ...".
        out.append((rec_node, _ALT_POS + f"{_pos(alert_node)}: " + _ALT_POS
                    + "only one of 'record' and 'alert' must be set"))
    if not r.record and not r.alert:
        out.append((rec_node, "one of 'record' or 'alert' must be set"))
    expr_node = r.value_node("expr")
    if not r.expr:
        out.append((expr_node, "field 'expr' must be set in rule"))
    else:
        try:
            parse_expr(r.expr)
        except ParseError as e:
            out.append((expr_node, f"could not parse expression: {e}"))
    if r.record:
        if r.annotations:
            out.append((rec_node, "invalid field 'annotations' in recording rule"))
        if r.for_ms:
            out.append((rec_node, "invalid field 'for' in recording rule"))
        if r.keep_firing_for_ms:
            out.append((rec_node, "invalid field 'keep_firing_for' in recording rule"))
        if not _valid_metric_name(r.record, scheme):
            out.append((rec_node, f"invalid recording rule name: {r.record}"))
    # rulefmt attaches no YAML node to label, annotation and template problems: their messages
    # carry no line:column (the node is kept for ConfigError.line).
    for knode, k, _v in r.labels:
        if not _valid_label_name(k, scheme) or k == "__name__":
            out.append((knode, _NO_POS + f"invalid label name: {k}"))
    for knode, k, _v in r.annotations:
        if not _valid_label_name(k, scheme):
            out.append((knode, _NO_POS + f"invalid annotation name: {k}"))
    if r.alert:
        for kind, items in (("label", r.labels), ("annotation", r.annotations)):
            for knode, k, v in items:
                try:
                    check_rule_template(v, alertname=r.alert)
                except PromlabError as e:
                    out.append((knode, _NO_POS + f'{kind} "{k}": {e}'))
    return out


def _validate(groups: list[_GroupDraft], file: str, scheme: str) -> list[ConfigError]:
    errors: list[ConfigError] = []
    seen: set[str] = set()
    for gi, g in enumerate(groups):
        gpath = f"groups[{gi}]"
        if not g.name:
            errors.append(ConfigError(f"{_pos(g.node)}: Groupname must not be empty", file=file,
                                      path=gpath + ".name", line=_line(g.node)))
        if g.name in seen:
            errors.append(ConfigError(f'{_pos(g.node)}: groupname: "{g.name}" is repeated in the same file',
                                      file=file, path=gpath + ".name", line=_line(g.node)))
        seen.add(g.name)
        for knode, k, _v in g.labels:
            if not _valid_label_name(k, scheme) or k == "__name__":
                errors.append(ConfigError(f"{_pos(knode)}: invalid label name: {k}", file=file,
                                          path=f"{gpath}.labels", line=_line(knode)))
        for r in g.rules:
            name = r.alert or r.record
            for node, msg in _validate_rule(g, r, scheme):
                # A rule key that is absent is a zero YAML node to rulefmt: "0:0:".
                where = f"{_pos(node)}: " if node is not None else "0:0: "
                if msg.startswith(_NO_POS):
                    where, msg = "", msg[len(_NO_POS):]
                elif msg.startswith(_ALT_POS):
                    alt, msg = msg[len(_ALT_POS):].split(_ALT_POS, 1)
                    where += alt
                errors.append(ConfigError(
                    f'{where}group "{g.name}", rule {r.index + 1}, "{name}": {msg}', file=file,
                    path=f"{gpath}.rules[{r.index}]", line=_line(node) if node is not None else None))
    return errors


def validate_rules(text: str, *, file: str = "", name_validation: str = "legacy",
                   default_interval_ms: int = DEFAULT_INTERVAL_MS,
                   ignore_unknown_fields: bool = False) -> tuple[list[RuleGroup], list[ConfigError]]:
    """Parse and check a rule file's text; returns the groups and *every* problem found.

    ``name_validation`` is ``"legacy"`` (``[a-zA-Z_:][a-zA-Z0-9_:]*``, what Prometheus 2 and
    its promtool check) or ``"utf8"`` (Prometheus 3's default). Groups without ``interval``
    get ``default_interval_ms`` (the config's ``evaluation_interval``). Unknown fields are
    errors unless ``ignore_unknown_fields`` (promtool's flag of that name). When there are
    problems the groups are still returned as far as they could be read.
    """
    # rulefmt reads with gopkg.in/yaml.v3: libyaml's wording of syntax errors.
    if (syntax := go_yaml_syntax_error(text, version="v3", file=file)) is not None:
        return [], [syntax]
    try:
        docs = yaml.compose_all(text, Loader=yaml.SafeLoader)
        root = next(iter(docs), None)  # like rulefmt, only the first document counts
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        where = f"line {line}: " if line else ""
        return [], [ConfigError(f"yaml: {where}{problem}", file=file, line=line)]
    shape = _Shape(ignore_unknown=ignore_unknown_fields)
    drafts = _read_shape(root, shape)
    if shape.durations:
        # A duration's own unmarshaler fails the decoding outright (go-yaml): its bare message
        # is the file's only problem, ahead of any collected unmarshal error.
        ln, _, m = min(shape.durations)
        return [], [ConfigError(m, file=file, line=ln)]
    if shape.problems:
        first = int(shape.problems[0].split(":")[0].split()[1])
        msg = "yaml: unmarshal errors:\n" + "\n".join("  " + p for p in shape.problems)
        return [], [ConfigError(msg, file=file, line=first)]
    errors = _validate(drafts, file, name_validation)
    groups = [RuleGroup(name=g.name, rules=tuple(r.build() for r in g.rules),
                        interval_ms=g.interval_ms or default_interval_ms, limit=g.limit,
                        query_offset_ms=g.query_offset_ms, labels={k: v for _, k, v in g.labels},
                        file=file)
              for g in drafts]
    return groups, errors


def parse_rules(text: str, *, file: str = "", name_validation: str = "legacy",
                default_interval_ms: int = DEFAULT_INTERVAL_MS) -> list[RuleGroup]:
    """Parse a rule file's text into groups, raising the first problem as ``ConfigError``."""
    groups, errors = validate_rules(text, file=file, name_validation=name_validation,
                                    default_interval_ms=default_interval_ms)
    if errors:
        first = errors[0]
        if len(errors) > 1:
            raise ConfigError(f"{first.reason} (and {len(errors) - 1} more problems)",
                              file=first.file, path=first.path, line=first.line)
        raise first
    return groups


def load_rules(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
               name_validation: str = "legacy",
               default_interval_ms: int = DEFAULT_INTERVAL_MS) -> list[RuleGroup]:
    """Read rule files (one path or several) into their groups, in file order.

    Raises
    ------
    ConfigError
        The first problem of the first bad file (``file``, ``path`` and ``line`` say where).
    """
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[RuleGroup] = []
    for p in items:
        out.extend(parse_rules(_read(p), file=str(p), name_validation=name_validation,
                               default_interval_ms=default_interval_ms))
    return out


def _read(path: str | os.PathLike[str]) -> str:
    return read_text(path, what="rule file")  # UTF-8 only: a clear error with the line


@dataclass
class FileCheck:
    """What checking one rule file found: its rule count, errors, and lint findings."""

    path: str
    num_rules: int = 0
    errors: list[ConfigError] = field(default_factory=list)
    lint: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_file(path: str | os.PathLike[str], *, name_validation: str = "legacy") -> FileCheck:
    """Check one rule file as ``promtool check rules`` does (duplicate-rule lint included)."""
    res = FileCheck(str(path))
    try:
        text = _read(path)
    except ConfigError as e:
        res.errors.append(e)
        return res
    groups, res.errors = validate_rules(text, file=str(path), name_validation=name_validation)
    if res.errors:
        return res
    res.num_rules = sum(g.num_rules for g in groups)
    dups = _duplicate_rules(groups)
    if dups:
        msg = f"lint error {len(dups)} duplicate rule(s) found.\n"
        for name, labels in dups:
            msg += f"Metric: {name}\nLabel(s):\n" + "".join(f"\t{k}: {v}\n" for k, v in labels)
        res.lint.append(msg + "Might cause inconsistency while recording expressions")
    return res


def _duplicate_rules(groups: list[RuleGroup]) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    keys = sorted((r.name, tuple(sorted(r.labels.items()))) for g in groups for r in g.rules)
    dups: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    for prev, cur in pairwise(keys):
        if prev == cur and (not dups or dups[-1] != cur):
            dups.append(cur)
    return dups


def check_files(paths: Sequence[str | os.PathLike[str]], *, lint_fatal: bool = False,
                name_validation: str = "legacy") -> tuple[int, list[str]]:
    """Check rule files and render the report ``promtool check rules`` prints.

    Returns the exit code (0: all good or only lint findings; 1: a file has errors; 3: lint
    findings with ``lint_fatal``) and the output lines (promtool writes the ``FAILED`` blocks
    to stderr and the rest to stdout; here they come in file order).
    """
    lines: list[str] = []
    failed = lint_failed = False
    for p in paths:
        res = check_file(p, name_validation=name_validation)
        lines.append(f"Checking {p}")
        if res.errors:
            failed = True
            lines.append("  FAILED:")
            lines.extend(f"{e.file}: {e.reason}" for e in res.errors)
        elif res.lint:
            lint_failed = True
            lines.append("  FAILED:")
            lines.extend(res.lint)
        else:
            lines.append(f"  SUCCESS: {res.num_rules} rules found")
        lines.append("")
    if failed:
        return 1, lines
    return (3 if lint_failed and lint_fatal else 0), lines
