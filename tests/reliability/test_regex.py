"""Hostile regexes: catastrophic patterns run in linear time everywhere a user regex is used
(matchers, relabel rules, label_replace, templates), and what RE2 rejects is a clear error with
Go's text. Each case asserts the answer too: fast and wrong would not pass."""

from __future__ import annotations

import time

import numpy as np
import pytest

from promlab.config.relabel import RelabelConfig, process
from promlab.errors import ConfigError, ParseError, QueryError
from promlab.model import Labels, Matcher, MatchType
from promlab.model.re2 import compile_anchored, compile_regex, replace_all
from promlab.promql.engine import Engine
from promlab.rules.template import expand_template
from promlab.storage import MemoryStorage

# Python's re takes exponential time on each of these against the value (2^n paths for n=40).
CATASTROPHIC = [
    pytest.param("(a+)+b", "a" * 40, False, id="nested-plus"),
    pytest.param("(a|aa)+$", "a" * 40 + "!", False, id="alternation-overlap"),
    pytest.param("(x+x+)+y", "x" * 40, False, id="double-plus"),
    pytest.param("(a*)*b", "a" * 40, False, id="nested-star"),
    pytest.param("(.*a){20}", "a" * 19 + "b" * 30, False, id="counted-dotstar"),
    pytest.param("(\\w+\\s?)+$", "word " * 12 + "!", False, id="words"),
    pytest.param("(a+)+b", "a" * 40 + "b", True, id="nested-plus-matching"),
    pytest.param("(a|a)+", "a" * 100_000, True, id="long-value"),
]
LIMIT_S = 1.0  # per case; each runs in well under a millisecond on RE2


def _timed(fn):  # type: ignore[no-untyped-def]
    t = time.monotonic()
    out = fn()
    return out, time.monotonic() - t


@pytest.mark.parametrize(("pattern", "value", "want"), CATASTROPHIC)
def test_matcher_linear(pattern: str, value: str, want: bool) -> None:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "m", "v": value}), np.array([1000]), np.array([1.0]))
    st.add_series(Labels({"__name__": "m", "v": "-!-"}), np.array([1000]), np.array([2.0]))
    res, spent = _timed(lambda: Engine().instant(st, f'm{{v=~"{pattern.replace(chr(92), chr(92) * 2)}"}}', 2000))
    assert spent < LIMIT_S
    assert len(res.value.labels) == int(want)
    assert Matcher(MatchType.NOT_REGEX, "v", pattern).matches(value) is (not want)


@pytest.mark.parametrize(("pattern", "value", "want"), CATASTROPHIC)
def test_relabel_linear(pattern: str, value: str, want: bool) -> None:
    cfg = RelabelConfig.from_dict({"source_labels": ["v"], "regex": pattern, "action": "keep"})
    out, spent = _timed(lambda: process(Labels({"v": value}), [cfg]))
    assert spent < LIMIT_S
    assert (out is not None) is want


@pytest.mark.parametrize(("pattern", "value", "want"), CATASTROPHIC)
def test_label_replace_linear(pattern: str, value: str, want: bool) -> None:
    st = MemoryStorage()
    st.add_series(Labels({"__name__": "m", "v": value}), np.array([1000]), np.array([1.0]))
    q = f'label_replace(m, "hit", "yes", "v", "{pattern.replace(chr(92), chr(92) * 2)}")'
    res, spent = _timed(lambda: Engine().instant(st, q, 2000))
    assert spent < LIMIT_S
    assert (res.value.labels[0].get("hit") == "yes") is want


@pytest.mark.parametrize(("pattern", "value", "want"), CATASTROPHIC)
def test_template_linear(pattern: str, value: str, want: bool) -> None:
    text = '{{ if match `^(?:' + pattern + ')$` .Labels.v }}yes{{ else }}no{{ end }}'
    out, spent = _timed(lambda: expand_template(text, name="t", labels={"v": value}, value=1.0))
    assert spent < LIMIT_S
    assert out == ("yes" if want else "no")


REJECTED = [
    pytest.param("(?=a)", "invalid or unsupported Perl syntax: `(?=`", id="lookahead"),
    pytest.param("(?!a)", "invalid or unsupported Perl syntax: `(?!`", id="negative-lookahead"),
    pytest.param("(a)\\1", "invalid escape sequence: `\\1`", id="backreference"),
    pytest.param("a++", "invalid nested repetition operator: `++`", id="possessive"),
    pytest.param("a{1001}", "invalid repeat count: `{1001}`", id="repeat-count"),
    pytest.param("*", "missing argument to repetition operator: `*`", id="bare-star"),
    pytest.param("[z-a]", "invalid character class range: `z-a`", id="class-range"),
    pytest.param("\\C", "invalid escape sequence: `\\C`", id="any-byte"),
    pytest.param("(", "missing closing ): `^(?s:()$`", id="missing-paren"),
]


@pytest.mark.parametrize(("pattern", "message"), REJECTED)
def test_rejected_everywhere(pattern: str, message: str) -> None:
    text = f"error parsing regexp: {message}"
    esc = pattern.replace("\\", "\\\\")
    with pytest.raises(ParseError) as info:
        Engine().instant(MemoryStorage(), f'm{{v=~"{esc}"}}', 0)
    assert str(info.value).endswith(text)
    with pytest.raises(ConfigError, match="error parsing regexp"):
        RelabelConfig.from_dict({"source_labels": ["v"], "regex": pattern, "action": "keep"})
    with pytest.raises(QueryError, match="invalid regular expression"):
        Engine().instant(MemoryStorage(), f'label_replace(vector(1), "a", "b", "c", "{esc}")', 0)
    with pytest.raises(Exception, match="error parsing regexp"):
        compile_regex(pattern)


FAST = ["", "abc", "api|web|db", "a||b", "foo.*", ".*foo", ".*foo.*", ".*", ".+", "a.b", "a\\.*",
        "(?i)abc", "a|b.*"]
VALUES = ["", "abc", "ABC", "api", "web", "db", "apiweb", "foo", "xfoo", "foox", "xfoox", "a.b",
          "axb", "a", "b", "bzz", "a...", "\n", "x\nfoo"]


@pytest.mark.parametrize("pattern", FAST)
def test_fast_paths_agree_with_the_program(pattern: str) -> None:
    rx = compile_anchored(pattern)
    for v in VALUES:
        assert rx.matches(v) is (rx.match(v) is not None), (pattern, v)


@pytest.mark.parametrize(("pattern", "text", "repl", "want"), [
    pytest.param("a*", "baaac", "<$0>", "<>b<aaa>c<>", id="empty-matches"),
    pytest.param("(\\w+)@(\\w+)", "x@y z@w", "$2.$1", "y.x w.z", id="groups"),
    pytest.param("é", "aéb", "[$0]", "a[é]b", id="multibyte"),
    pytest.param("", "ab", "-", "-a-b-", id="empty-pattern"),
])
def test_replace_all_go_semantics(pattern: str, text: str, repl: str, want: str) -> None:
    assert replace_all(compile_regex(pattern), text, repl) == want
