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

from typing import Literal

import yaml

from promlab.errors import ConfigError

__all__ = ["go_yaml_syntax_error"]


def _c_loader() -> type[yaml.CSafeLoader] | None:
    return getattr(yaml, "CSafeLoader", None)


def go_yaml_syntax_error(text: str, *, version: Literal["v2", "v3"], file: str | None = None,
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
    """
    loader = _c_loader()
    if loader is None:  # pragma: no cover - PyYAML without libyaml
        return None
    try:
        next(iter(yaml.compose_all(text, Loader=loader)), None)
    except yaml.composer.ComposerError as e:
        if e.problem == "found undefined alias" and e.problem_mark is not None:
            # go-yaml resolves aliases itself, without a position.
            name = _alias_name(text, e.problem_mark.index)
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
