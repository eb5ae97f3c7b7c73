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

from promlab.config.goyaml import go_yaml_desc, go_yaml_syntax_error
from promlab.config.yamlfile import read_text
from promlab.errors import ConfigError, ParseError, PromlabError
from promlab.model import is_valid_label_name
from promlab.promql.parser import parse_expr
from promlab.rules.rule import DEFAULT_INTERVAL_MS, RuleGroup
from promlab.rules.rulefile import (
    GroupDraft,
    RuleDraft,
    RuleFileShape,
    is_null_node,
    node_line,
    node_pos,
    read_shape,
)
from promlab.rules.templating import check_rule_template

__all__ = [
    "FileCheck",
    "check_file",
    "check_files",
    "load_rules",
    "parse_rule_file",
    "parse_rules",
    "validate_rules",
]

_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

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


def _validate_rule(g: GroupDraft, r: RuleDraft, scheme: str) -> list[tuple[yaml.Node | None, str]]:
    """Every problem of one rule: ``(node at fault, message)`` in rulefmt's order."""
    out: list[tuple[yaml.Node | None, str]] = []
    rec_node, alert_node = r.value_node("record"), r.value_node("alert")
    if r.record and r.alert:
        # rulefmt prints both nodes' positions ahead of the group: "5:13: 4:12: group ...".
        out.append((rec_node, _ALT_POS + f"{node_pos(alert_node)}: " + _ALT_POS
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


def _validate(groups: list[GroupDraft], file: str, scheme: str) -> list[ConfigError]:
    errors: list[ConfigError] = []
    seen: set[str] = set()
    for gi, g in enumerate(groups):
        gpath = f"groups[{gi}]"
        if not g.name:
            errors.append(ConfigError(f"{node_pos(g.node)}: Groupname must not be empty", file=file,
                                      path=gpath + ".name", line=node_line(g.node)))
        if g.name in seen:
            errors.append(ConfigError(f'{node_pos(g.node)}: groupname: "{g.name}" is repeated in the same file',
                                      file=file, path=gpath + ".name", line=node_line(g.node)))
        seen.add(g.name)
        for knode, k, _v in g.labels:
            if not _valid_label_name(k, scheme) or k == "__name__":
                errors.append(ConfigError(f"{node_pos(knode)}: invalid label name: {k}", file=file,
                                          path=f"{gpath}.labels", line=node_line(knode)))
        for r in g.rules:
            name = r.alert or r.record
            for node, msg in _validate_rule(g, r, scheme):
                # A rule key that is absent is a zero YAML node to rulefmt: "0:0:".
                where = f"{node_pos(node)}: " if node is not None else "0:0: "
                if msg.startswith(_NO_POS):
                    where, msg = "", msg[len(_NO_POS):]
                elif msg.startswith(_ALT_POS):
                    alt, msg = msg[len(_ALT_POS):].split(_ALT_POS, 1)
                    where += alt
                errors.append(ConfigError(
                    f'{where}group "{g.name}", rule {r.index + 1}, "{name}": {msg}', file=file,
                    path=f"{gpath}.rules[{r.index}]", line=node_line(node) if node is not None else None))
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
    shape = RuleFileShape(ignore_unknown=ignore_unknown_fields)
    drafts = read_shape(root, shape)
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


def parse_rule_file(data: bytes, *, file: str, name_validation: str = "legacy",
                    default_interval_ms: int = DEFAULT_INTERVAL_MS,
                    ignore_unknown_fields: bool = False) -> tuple[list[RuleGroup], list[ConfigError]]:
    """A rule file's bytes read as ``rulefmt.ParseFile`` reads them for promtool: its groups and
    every problem, worded and repeated as promtool prints them.

    rulefmt decodes the text twice, strictly into rule groups and loosely into groups of raw
    YAML nodes, and reports both failures: bad YAML twice (bytes that are not UTF-8 too, as
    libyaml's reader words it, without a line), a wrong shape at the top once for each decoding.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        bad = go_yaml_syntax_error(data, version="v3")
        reason = bad.reason if bad is not None else "yaml: invalid leading UTF-8 octet"
        return [], [ConfigError(reason, file=file)] * 2
    groups, errors = validate_rules(text, file=file, name_validation=name_validation,
                                    default_interval_ms=default_interval_ms,
                                    ignore_unknown_fields=ignore_unknown_fields)
    if errors:
        if _is_yaml_syntax_error(text):
            errors.append(errors[0])
        elif (second := _node_decoding_error(text)) is not None:
            errors.append(ConfigError(second, file=file))
        return [], errors
    return groups, []


def _is_yaml_syntax_error(text: str) -> bool:
    if go_yaml_syntax_error(text, version="v3") is not None:
        return True
    try:
        next(iter(yaml.compose_all(text, Loader=yaml.SafeLoader)), None)
    except yaml.YAMLError:
        return True
    return False


def _node_decoding_error(text: str) -> str | None:
    """The error of rulefmt's second, loose decoding (``struct{Groups []yaml.Node}``): only a
    wrong shape at the top fails it (the document not a mapping, ``groups`` not a sequence)."""
    root = next(iter(yaml.compose_all(text, Loader=yaml.SafeLoader)), None)
    if root is None or is_null_node(root):
        return None
    found: list[tuple[int, int, str]] = []
    if not isinstance(root, yaml.MappingNode):
        found.append((root.start_mark.line, root.start_mark.column,
                      f"cannot unmarshal {go_yaml_desc(root, version='v3')} into rulefmt.ruleGroups"))
    else:
        found.extend((v.start_mark.line, v.start_mark.column,
                      f"cannot unmarshal {go_yaml_desc(v, version='v3')} into []yaml.Node")
                     for k, v in root.value
                     if str(k.value) == "groups" and not is_null_node(v)
                     and not isinstance(v, yaml.SequenceNode))
    if not found:
        return None
    return "yaml: unmarshal errors:\n" + "\n".join(f"  line {ln + 1}: {what}" for ln, _, what in sorted(found))


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
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        res.errors.append(ConfigError(f"cannot read rule file: {exc.strerror or exc}", file=str(path)))
        return res
    groups, res.errors = parse_rule_file(data, file=str(path), name_validation=name_validation)
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


def check_files(paths: Sequence[str | os.PathLike[str]], *, lint: bool = True, lint_fatal: bool = False,
                name_validation: str = "legacy") -> tuple[int, list[str]]:
    """Check rule files and render the report ``promtool check rules`` prints.

    Returns the exit code (0: all good or only lint findings; 1: a file has errors; 3: lint
    findings with ``lint_fatal``) and the output lines (promtool writes the ``FAILED`` blocks
    to stderr and the rest to stdout; here they come in file order). Without ``lint`` the
    duplicate-rules check is off (``--lint=none``).
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
        elif res.lint and lint:
            lint_failed = True
            lines.append("  FAILED:")
            lines.extend(res.lint)
        else:
            lines.append(f"  SUCCESS: {res.num_rules} rules found")
        lines.append("")
    if failed:
        return 1, lines
    return (3 if lint_failed and lint_fatal else 0), lines
