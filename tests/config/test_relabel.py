"""Relabeling: every action with Prometheus's defaults, Go Expand semantics, validation."""

from __future__ import annotations

import pytest

from promlab.config.relabel import RelabelConfig, process
from promlab.errors import ConfigError
from promlab.model import Labels
from promlab.model.re2 import compile_anchored as compile_regex
from promlab.model.re2 import expand

ABC = {"a": "foo", "b": "bar", "c": "baz"}


def rules(*dicts: dict) -> list[RelabelConfig]:
    return [RelabelConfig.from_dict(d) for d in dicts]


CASES = [
    pytest.param({"a": "foo"}, [{"source_labels": ["a"], "regex": "f(.*)", "target_label": "d",
                                 "replacement": "ch${1}-ch${1}"}],
                 {"a": "foo", "d": "choo-choo"}, id="replace-braced-group"),
    pytest.param(ABC, [{"source_labels": ["a", "b"], "regex": "f(.*);(.*)r", "target_label": "a",
                        "replacement": "b${1}${2}m"},
                       {"source_labels": ["c", "a"], "regex": "(b).*b(.*)ba(.*)", "target_label": "d",
                        "replacement": "$1$2$2$3"}],
                 {"a": "boobam", "b": "bar", "c": "baz", "d": "boooom"}, id="replace-chain-prometheus-doc"),
    pytest.param({"a": "foo"}, [{"source_labels": ["a"], "regex": "(f).*", "target_label": "x",
                                 "replacement": "$1x"}],
                 {"a": "foo"}, id="dollar-1x-is-group-named-1x-so-empty-deletes"),
    pytest.param({"a": "foo"}, [{"source_labels": ["a"], "regex": "(f).*", "target_label": "x",
                                 "replacement": "${1}x"}],
                 {"a": "foo", "x": "fx"}, id="braced-1-then-x"),
    pytest.param({"a": "foo"}, [{"source_labels": ["a"], "regex": "o", "target_label": "x", "replacement": "y"}],
                 {"a": "foo"}, id="regex-is-anchored-no-match-no-change"),
    pytest.param({"a": "foo"}, [{"source_labels": ["a"], "target_label": "b"}],
                 {"a": "foo", "b": "foo"}, id="defaults-copy"),
    pytest.param({"a": "foo", "b": "x"}, [{"source_labels": ["z"], "target_label": "b"}],
                 {"a": "foo"}, id="empty-source-deletes-target"),
    pytest.param({"a": "foo"}, [{"target_label": "c", "replacement": "static"}],
                 {"a": "foo", "c": "static"}, id="no-source-sets-static-value"),
    pytest.param({"a": "some-name-value"}, [{"source_labels": ["a"], "regex": "some-([^-]+)-([^,]+)",
                                            "replacement": "${2}", "target_label": "${1}"}],
                 {"a": "some-name-value", "name": "value"}, id="target-label-from-group"),
    pytest.param({"a": "some-name-0"}, [{"source_labels": ["a"], "regex": "some-([^-]+)-([^,]+)",
                                        "replacement": "${1}", "target_label": "${3}"}],
                 {"a": "some-name-0"}, id="invalid-expanded-target-skipped"),
    pytest.param({"a": "x"}, [{"source_labels": ["a"], "regex": "(?P<grp>x)", "target_label": "t",
                               "replacement": "[$grp][${grp}][$$]"}],
                 {"a": "x", "t": "[x][x][$]"}, id="named-groups-and-dollar-dollar"),
    pytest.param({"a": "line1\nline2"}, [{"source_labels": ["a"], "regex": "line1.*line2", "target_label": "d",
                                          "replacement": "match${1}"}],
                 {"a": "line1\nline2", "d": "match"}, id="dot-matches-newline"),
    pytest.param(ABC, [{"source_labels": ["a"], "regex": ".*o.*", "action": "keep"}], ABC, id="keep-match"),
    pytest.param(ABC, [{"source_labels": ["a"], "regex": "o", "action": "keep"}], None, id="keep-anchored-drop"),
    pytest.param(ABC, [{"source_labels": ["a"], "regex": "f.*", "action": "drop"}], None, id="drop"),
    pytest.param(ABC, [{"source_labels": ["a"], "regex": "no", "action": "drop"}], ABC, id="drop-no-match"),
    pytest.param(ABC, [{"source_labels": ["c"], "target_label": "d", "action": "hashmod", "modulus": 1000}],
                 {**ABC, "d": "976"}, id="hashmod-prometheus-example"),
    pytest.param({"a": "foo\nbar"}, [{"source_labels": ["a"], "target_label": "b", "action": "hashmod",
                                      "modulus": 1000}],
                 {"a": "foo\nbar", "b": "734"}, id="hashmod-newline"),
    pytest.param({"a": "foo", "b1": "bar", "b2": "baz"}, [{"regex": "(b.*)", "replacement": "bar_${1}",
                                                           "action": "labelmap"}],
                 {"a": "foo", "b1": "bar", "b2": "baz", "bar_b1": "bar", "bar_b2": "baz"}, id="labelmap"),
    pytest.param({"a": "foo", "__meta_my_bar": "aaa", "__meta_other": "ccc"},
                 [{"regex": "__meta_(my.*)", "action": "labelmap"}],
                 {"a": "foo", "__meta_my_bar": "aaa", "__meta_other": "ccc", "my_bar": "aaa"},
                 id="labelmap-default-replacement"),
    pytest.param({"a": "foo", "b1": "bar", "b2": "baz"}, [{"regex": "(b.*)", "action": "labelkeep"}],
                 {"b1": "bar", "b2": "baz"}, id="labelkeep"),
    pytest.param({"a": "foo", "b1": "bar", "b2": "baz"}, [{"regex": "(b.*)", "action": "labeldrop"}],
                 {"a": "foo"}, id="labeldrop"),
    pytest.param({"foo": "bAr123Foo"}, [{"source_labels": ["foo"], "action": "uppercase", "target_label": "up"},
                                        {"source_labels": ["foo"], "action": "lowercase", "target_label": "lo"}],
                 {"foo": "bAr123Foo", "up": "BAR123FOO", "lo": "bar123foo"}, id="upper-lower"),
    pytest.param({"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"},
                 [{"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port1"}],
                 {"__tmp_port": "1234", "__port1": "1234", "__port2": "5678"}, id="keepequal-keeps"),
    pytest.param({"__tmp_port": "1234", "__port1": "1234"},
                 [{"source_labels": ["__tmp_port"], "action": "dropequal", "target_label": "__port1"}],
                 None, id="dropequal-drops"),
    pytest.param({"__tmp_port": "1234", "__port2": "5678"},
                 [{"source_labels": ["__tmp_port"], "action": "keepequal", "target_label": "__port2"}],
                 None, id="keepequal-drops"),
    pytest.param({"a": "x", "b": "y"}, [{"source_labels": ["a", "b"], "separator": "-", "target_label": "c"}],
                 {"a": "x", "b": "y", "c": "x-y"}, id="separator"),
    pytest.param({"a": "x"}, [{"source_labels": ["a"], "regex": "X", "action": "KEEP"}], None,
                 id="action-case-insensitive"),
    pytest.param({"__meta_x": "1", "_y": "2"},
                 [{"target_label": "__z", "replacement": "3"}, {"action": "labelmap", "regex": "_+(.)", "replacement": "r"}],
                 {"__meta_x": "1", "_y": "2", "__z": "3", "r": "2"}, id="labelmap-collision-last-name-wins"),
    pytest.param({"a": "ßﬀ straße ᾀ"}, [{"source_labels": ["a"], "action": "uppercase", "target_label": "b"}],
                 {"a": "ßﬀ straße ᾀ", "b": "ßﬀ STRAßE ᾈ"}, id="uppercase-simple-case-mapping-like-go"),
    pytest.param({"a": "İΑΣ"}, [{"source_labels": ["a"], "action": "lowercase", "target_label": "b"}],
                 {"a": "İΑΣ", "b": "iασ"}, id="lowercase-simple-case-mapping-no-final-sigma"),
]


@pytest.mark.parametrize(("given", "configs", "want"), CASES)
def test_process(given: dict, configs: list[dict], want: dict | None) -> None:
    got = process(Labels(given), rules(*configs))
    assert got == (None if want is None else Labels(want))


@pytest.mark.parametrize(("template", "want"), [
    pytest.param("$1", "a", id="num"),
    pytest.param("${1}b", "ab", id="braced"),
    pytest.param("$1b", "", id="greedy-name"),
    pytest.param("$", "$", id="lone-dollar"),
    pytest.param("${", "${", id="unclosed-brace"),
    pytest.param("$$1", "$1", id="escaped"),
    pytest.param("$01", "", id="leading-zero-is-a-name"),
    pytest.param("$9", "", id="missing-group"),
    pytest.param("x$2y", "x", id="group-2-y-name"),
    pytest.param("x${2}y", "xby", id="group-2"),
])
def test_expand_go_semantics(template: str, want: str) -> None:
    m = compile_regex("(a)(b)").match("ab")
    assert m is not None
    assert expand(template, m) == want


@pytest.mark.parametrize(("config", "reason"), [
    pytest.param({"action": "hashmod", "target_label": "x"}, "requires non-zero modulus", id="hashmod-modulus"),
    pytest.param({"action": "replace"}, "requires 'target_label' value", id="replace-target"),
    pytest.param({"action": "replace", "target_label": "1x"}, "is invalid 'target_label'", id="bad-target"),
    pytest.param({"action": "replace", "target_label": "${"}, "is invalid 'target_label'", id="bad-ref-target"),
    pytest.param({"action": "lowercase", "target_label": "x", "replacement": "y"}, "can not be set",
                 id="lowercase-replacement"),
    pytest.param({"action": "labelmap", "replacement": "a-$1"}, "is invalid 'replacement'", id="labelmap-repl"),
    pytest.param({"action": "keepequal", "source_labels": ["a"], "target_label": "b", "separator": ","},
                 "requires only 'source_labels'", id="keepequal-extra"),
    pytest.param({"action": "labeldrop", "regex": "x", "source_labels": ["a"]}, "requires only 'regex'",
                 id="labeldrop-extra"),
    pytest.param({"action": "keep", "regex": "(a"}, "error parsing regexp", id="bad-regex"),
    pytest.param({"action": "explode"}, "unknown relabel action", id="unknown-action"),
    pytest.param({"source_labels": ["a-b"], "target_label": "x"}, "not a valid label name", id="bad-source"),
    pytest.param({"target_label": "x", "foo": 1}, "field foo not found", id="unknown-key"),
    pytest.param({"action": "keepequal", "source_labels": ["a"], "target_label": "b", "regex": "(.*)"},
                 "requires only 'source_labels'", id="keepequal-default-regex-written-out"),
    pytest.param({"action": "dropequal", "source_labels": ["a"], "target_label": "b", "separator": None},
                 "requires only 'source_labels'", id="null-separator-is-empty"),
    pytest.param({"action": "labelmap", "replacement": None}, "\"\" is invalid 'replacement' for labelmap",
                 id="null-replacement-is-empty"),
    pytest.param({"action": None}, "relabel action cannot be empty", id="null-action"),
    pytest.param({"action": ""}, 'unknown relabel action ""', id="empty-action"),
    pytest.param({"action": "replace", "target_label": "1x"}, "\"1x\" is invalid 'target_label' for replace",
                 id="go-quoted-target"),
    pytest.param({"foo": 1, "regex": "(a"}, "error parsing regexp", id="regex-error-before-unknown-key"),
    pytest.param({"modulus": "10", "foo": 1}, "cannot unmarshal !!str `10` into uint64",
                 id="type-error-in-document-order"),
    pytest.param({"source_labels": "a"}, "cannot unmarshal !!str `a` into model.LabelNames", id="source-not-list"),
])
def test_invalid_rules(config: dict, reason: str) -> None:
    with pytest.raises(ConfigError) as ei:
        RelabelConfig.from_dict(config, path="scrape_configs[0].relabel_configs[0]")
    assert reason in ei.value.reason
    assert ei.value.path is not None and ei.value.path.startswith("scrape_configs[0].relabel_configs[0]")


@pytest.mark.parametrize(("config", "field", "want"), [
    pytest.param({"action": "labelkeep", "regex": "a", "source_labels": None}, "source_labels", (),
                 id="labelkeep-null-sources"),
    pytest.param({"action": "hashmod", "target_label": "x", "modulus": 1.5}, "modulus", 1, id="float-modulus"),
    pytest.param({"action": "hashmod", "target_label": "x", "modulus": 2**64}, "modulus", 2**63,
                 id="modulus-2-64-as-go-converts-it"),
    pytest.param({"target_label": "x", "separator": True}, "separator", "true", id="bool-separator"),
    pytest.param({"target_label": "x", "regex": None}, "regex", "", id="null-regex"),
])
def test_rule_fields_as_go_decodes_them(config: dict, field: str, want: object) -> None:
    assert getattr(RelabelConfig.from_dict(config), field) == want


@pytest.mark.parametrize("target", ["label", "label${1}", "${1}label", "${1}", "$1", "asd$2asd", "_${1}_",
                                    "foo${bar}foo"])
def test_valid_templated_targets(target: str) -> None:
    RelabelConfig.from_dict({"action": "replace", "target_label": target})


@pytest.mark.parametrize("target", ["-label", "${", "$", "${}", "foo${", "-foo${1}bar-", "bar.foo${1}bar"])
def test_invalid_templated_targets(target: str) -> None:
    with pytest.raises(ConfigError):
        RelabelConfig.from_dict({"action": "replace", "target_label": target})
