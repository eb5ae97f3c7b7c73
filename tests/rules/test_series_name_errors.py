"""Malformed series names and label sets: ``promlab test rules`` refuses them with the message
``promtool test rules`` prints, at the same column, and takes what promtool takes with the same
meaning.

Three places read a series name: an ``input_series`` line (a line of promtool's ``load``
command, read as a series description), an ``exp_samples`` entry's ``labels`` (read by
Prometheus's ``ParseMetric``) and the load command around the lines (split at newlines, a
blank or ``#`` line ends it).

As in test_series_errors.py, an input-series error is numbered by Prometheus 3's line of the
load command (2.42 printed line 1); the comparisons map 2.42's ``1:``. Quoted label names
(``{"a.b"="c"}``) are Prometheus 3 notation that promlab takes and 2.42 refuses; the
differential leaves them out and ``test_quoted_names_are_prometheus_3`` pins both sides.
"""

from __future__ import annotations

import io
import json
import random
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from promlab.rules.unittest import rules_unit_test

# (id, series, what promtool prints for that series with values "1": "column: message").
CASES: list[tuple[str, str, str]] = [
    ("unclosed-brace", 'foo{a="b"', "11: unexpected character inside braces: '1'"),
    ("unquoted-value", "foo{a=b}", '7: unexpected identifier "b" in label set, expected string'),
    ("number-value", "foo{a=1}", "7: unexpected character inside braces: '1'"),
    ("missing-value", "foo{a=}", '7: unexpected "}" in label set, expected string'),
    ("missing-equals", "foo{a}", '6: unexpected "}" in label set, expected "="'),
    ("regex-matcher", 'foo{a=~"b"}', '6: unexpected <op:=~> in label set, expected "="'),
    ("not-equal", 'foo{a!="b"}', '6: unexpected <op:!=> in label set, expected "="'),
    ("bang-alone", "foo{a!", "6: unexpected character after '!' inside braces: ' '"),
    ("no-comma", 'foo{a="b"c="d"}', '10: unexpected identifier "c" in label set, expected "," or "}"'),
    ("lone-comma", "foo{,}", '5: unexpected "," in label set, expected identifier or "}"'),
    ("double-comma", 'foo{a="b",,}', '11: unexpected "," in label set, expected identifier or "}"'),
    ("missing-name", 'foo{="b"}', '5: unexpected "=" in label set, expected identifier or "}"'),
    ("digit-name", 'foo{1a="b"}', "5: unexpected character inside braces: '1'"),
    ("dotted-name", 'foo{a.b="c"}', "6: unexpected character inside braces: '.'"),
    ("non-ascii-name", 'foo{é="b"}', "5: unexpected character inside braces: 'é'"),
    ("nested-brace", 'foo{{a="b"}}', "5: unexpected left brace '{'"),
    ("unterminated", 'foo{a="b', "7: unterminated quoted string"),
    ("unterminated-raw", "foo{a=`b}", "7: unterminated raw string"),
    ("unknown-escape", 'foo{a="\\q"}', "7: unknown escape sequence U+0071 'q'"),
    ("short-hex-escape", 'foo{a="\\x4"}', "7: illegal character U+0022 '\"' in escape sequence"),
    ("octal-too-big", 'foo{a="\\400"}', "7: escape sequence is an invalid Unicode code point"),
    ("surrogate-escape", 'foo{a="\\ud800"}', "7: escape sequence is an invalid Unicode code point"),
    ("quote-escape-in-single", "foo{a='\\\"'}", "7: unknown escape sequence U+0022 '\"'"),
    ("comment-in-braces", 'foo{a="b" # c', "16: unexpected end of input inside braces"),
    ("space-before-brace", 'foo {a="b"}', "5: unexpected character in series sequence: '{'"),
    ("two-label-sets", 'foo{a="b"}{c="d"}', "11: unexpected character in series sequence: '{'"),
    ("close-without-open", "foo}", "4: unexpected character in series sequence: '}'"),
    ("range", "foo[5m]", "4: unexpected character in series sequence: '['"),
    ("value-glued", 'foo{a="b"}1', '11: unexpected number "1" in series values'),
    ("times-glued", 'foo{a="b"}x', '11: unexpected "x" in series values'),
    ("stale-glued", 'foo{a="b"}stale', '11: unexpected identifier "stale" in series values'),
    ("minus-in-name", "foo-bar", "4: unexpected <op:-> in series values"),
    ("fraction-after-name", "foo.5", '4: unexpected number ".5" in series values'),
    ("digit-first", "1foo", '1: bad number or duration syntax: "1"'),
    ("number-first", "1", '1: unexpected number "1" in series values'),
    ("duration-first", "5m", '1: unexpected duration "5m" in series values'),
    ("quoted-name", '"foo"', '1: unexpected string "\\"foo\\"" in series values'),
    ("paren", "(foo)", '1: unexpected "(" in series values'),
    ("close-paren", ")", "2: unexpected right parenthesis ')'"),
    ("close-bracket", "]", "1: unexpected right bracket ']'"),
    ("minus-first", "-foo", "1: unexpected <op:-> in series values"),
    ("at-first", "@", '1: unexpected "<Item 57385>" <op:@> in series values'),
    ("regex-first", "=~", "1: unexpected character after '=': '~'"),
    ("bang-first", "!x", "1: unexpected character after '!': 'x'"),
    ("bool-name", 'bool{a="b"}', "1: unexpected <bool> in series values"),
    ("on-name", "On", "1: unexpected <On> in series values"),
    ("atan2-name", "atan2", "1: unexpected <op:atan2> in series values"),
    ("inf-name", 'inf{a="b"}', '1: unexpected number "inf" in series values'),
    ("long-string", '"0123456789abc"', '1: unexpected string "\\"012345678"... in series values'),
]

#: (id, exp_samples labels, what promtool prints after ``labels "...": ``).
EXP_CASES: list[tuple[str, str, str]] = [
    ("word-after", "foo bar", '1:5: parse error: unexpected identifier "bar"'),
    ("value-after", "up 1", '1:4: parse error: unexpected number "1"'),
    ("number", "1", '1:1: parse error: unexpected number "1"'),
    ("unquoted-value", "up{a=b}", '1:6: parse error: unexpected identifier "b" in label set, expected string'),
    ("unclosed", 'up{a="b"', "1:9: parse error: unexpected end of input inside braces"),
    ("extra-brace", 'up{a="b"}}', "1:10: parse error: unexpected character: '}'"),
    ("range", "up[5m]", '1:3: parse error: unexpected "["'),
    ("second-set", 'up{a="b"}{', '1:10: parse error: unexpected "{"'),
    ("offset", "up offset 5m", "1:4: parse error: unexpected <offset>"),
    ("close-paren", "up)", "1:4: parse error: unexpected right parenthesis ')'"),
    ("duration", "5m", '1:1: parse error: unexpected duration "5m"'),
    ("bad-duration", "5mx", '1:1: parse error: bad number or duration syntax: "5mx"'),
    ("second-line", 'up\n{a="b"}x', '2:8: parse error: unexpected identifier "x"'),
]

#: Accepted by both: exp_samples labels with the same meaning (the test passes, or fails alike).
EXP_ACCEPTED = ["", "  ", "# c", "up # c", 'up {a="b"}', 'up\t{a="b"}', 'up{a="b",}',
                'up{__name__="x",a="b"}', '{__name__="up",a="b"}', 'up{a="b",c=""}',
                'up{a="b",a="c"}', '{__name__="",a="b"}', "0x1f", 'up{a="b"}\n']

_EXPR_SERIES = 'up{a="b"}'


def _words(series: str) -> list[str]:
    return sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", series)) - {"__name__"})


def _series_group(series: list[tuple[str, str]]) -> dict[str, object]:
    """A group loading ``series`` whose one test prints every loaded series it can name."""
    names = ["__name__", *_words(" ".join(s for s, _ in series))]
    expr = " or ".join(f'{{{n}!=""}}' for n in names)
    return {"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
            "promql_expr_test": [{"expr": expr, "eval_time": "1m", "exp_samples": []}]}


def _exp_group(labels: str) -> dict[str, object]:
    return {"interval": "1m", "input_series": [{"series": _EXPR_SERIES, "values": "1 2"}],
            "promql_expr_test": [{"expr": "up", "eval_time": "1m",
                                  "exp_samples": [{"labels": labels, "value": 2}]}]}


def _write(tmp_path: Path, groups: list[dict[str, object]]) -> Path:
    path = tmp_path / "test.yml"
    path.write_text(json.dumps({"tests": groups}))  # JSON is YAML: no quoting questions
    return path


def _promlab(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[str]]:
    monkeypatch.chdir(path.parent)
    out, err = io.StringIO(), io.StringIO()
    code = rules_unit_test([path.name], stdout=out, stderr=err)
    return code, err.getvalue().splitlines()


def _promtool(promtool: str, path: Path, *, line: int = 2) -> tuple[int, list[str]]:
    """promtool's exit code and stderr lines, an input-series error's line ``1:`` mapped to
    ``line`` (Prometheus 3's numbering)."""
    real = subprocess.run([promtool, "test", "rules", path.name], cwd=path.parent,
                          capture_output=True, text=True, timeout=120, check=False)
    return real.returncode, [re.sub(r"^1:(\d+): parse error", rf"{line}:\1: parse error", s)
                             for s in real.stderr.splitlines()]


def _errors(lines: list[str]) -> list[str]:
    return [s for s in lines if "parse error" in s]


@pytest.mark.parametrize(("series", "want"), [(s, w) for _, s, w in CASES],
                         ids=[i for i, _, _ in CASES])
def test_message(series: str, want: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """promlab's message is promtool's (pinned from promtool 2.42), at the same column."""
    code, err = _promlab(_write(tmp_path, [_series_group([(series, "1")])]), monkeypatch)
    column, message = want.split(": ", 1)
    assert (code, _errors(err)) == (1, [f"2:{column}: parse error: {message}"])


@pytest.mark.parametrize(("labels", "want"), [(s, w) for _, s, w in EXP_CASES],
                         ids=[i for i, _, _ in EXP_CASES])
def test_exp_samples_message(labels: str, want: str, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    code, err = _promlab(_write(tmp_path, [_exp_group(labels)]), monkeypatch)
    quoted = json.dumps(labels)  # Go's %q of these ASCII texts
    assert code == 1
    assert err[1] == f'    expr: "up", time: 1m, err: labels {quoted}: {want}'


def test_exp_samples_keep_what_no_series_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A label name twice, or an empty value without a name before the braces, stays in the
    expected sample (Prometheus's label list): it never equals a series."""
    groups = [_exp_group('up{a="b",a="c"}'), _exp_group('{__name__="",a="b"}'),
              _exp_group('up{a="b",c=""}')]
    code, err = _promlab(_write(tmp_path, groups), monkeypatch)
    assert code == 1
    assert [s for s in err if "exp:" in s] == ['        exp: {__name__="up", a="b", a="c"} 2E+00',
                                               '        exp: {__name__="", a="b"} 2E+00']


def test_load_command_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Series text is cut into the load command's lines: a newline starts a line (numbered
    from the load line), a blank or ``#`` line ends the series (the rest is not loaded)."""
    groups = [_series_group([("foo", "1\n2")]),
              _series_group([("ok", "1"), ("", ""), ("bad{", "1")]),
              _series_group([("# not loaded", "1"), ("bad{", "1")])]
    code, err = _promlab(_write(tmp_path, groups), monkeypatch)
    assert code == 1
    assert _errors(err) == ['3:1: parse error: unexpected number "2" in series values']
    assert '        got: {__name__="ok"} 1E+00' in err


def test_quoted_names_are_prometheus_3(tmp_path: Path, require_binary: Callable[[str], str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Quoted label names load as Prometheus 3 loads them; 2.42 refuses exactly these."""
    series = ['{"a.b"="c"}', '{"my.metric", a="b"}', 'foo{"le"="1"}']
    path = _write(tmp_path, [_series_group([(s, "1")]) for s in series])
    code, err = _promlab(path, monkeypatch)
    assert code == 1  # the tests print what loaded ("a.b" is no word of the query: nothing)
    assert not _errors(err)
    assert [s for s in err if "got:" in s] == ['        got: {__name__="my.metric", a="b"} 1E+00',
                                               '        got: {__name__="foo", le="1"} 1E+00']
    real_code, real_err = _promtool(require_binary("promtool"), path)
    assert (real_code, _errors(real_err)) == (1, [
        '2:2: parse error: unexpected string "\\"a.b\\"" in label set, expected identifier or "}"',
        '2:2: parse error: unexpected string "\\"my.metric"... in label set, expected identifier or "}"',
        '2:5: parse error: unexpected string "\\"le\\"" in label set, expected identifier or "}"'])


_PROMETHEUS_3_ONLY = re.compile(r'unexpected string .* in label set, expected identifier or "}"')


def _against_promtool(groups: list[dict[str, object]], tmp_path: Path, promtool: str,
                      monkeypatch: pytest.MonkeyPatch) -> tuple[tuple[int, list[str]], tuple[int, list[str]]]:
    path = _write(tmp_path, groups)
    return _promtool(promtool, path), _promlab(path, monkeypatch)


def test_cases_agree_with_promtool(tmp_path: Path, require_binary: Callable[[str], str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    promtool = require_binary("promtool")
    groups = [_series_group([(s, "1")]) for _, s, _ in CASES]
    groups += [_exp_group(s) for _, s, _ in EXP_CASES] + [_exp_group(s) for s in EXP_ACCEPTED]
    theirs, ours = _against_promtool(groups, tmp_path, promtool, monkeypatch)
    assert ours == theirs


def test_load_command_agrees_with_promtool(tmp_path: Path, require_binary: Callable[[str], str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Blank and comment lines end the load alike (single-line series, so no renumbering)."""
    promtool = require_binary("promtool")
    groups = [_series_group(s) for s in (
        [("", ""), ("foo", "1")], [("foo", "1"), ("", ""), ("bar{a=b}", "1")],
        [("# c", "1"), ("bar{a=b}", "1")], [("foo", "1"), ("#bar{a=b}", "1"), ("baz", "1")],
        [("foo", "1\n\nbar{a=b} 1")], [("  foo  ", "  1  ")], [("foo\u00a0", "1")],
        [("foo", "1 # c")], [("foo\r", "1")], [("foo{a=\"b\r\"}", "1")], [("foo\v{a=\"b\"}", "1")],
        [("foo", "1"), ("foo", "2")], [('foo{a="\\xff"}', "1")], [("", "1")])]
    theirs, ours = _against_promtool(groups, tmp_path, promtool, monkeypatch)
    assert ours == theirs


def _mutations(seed: int, n: int) -> list[str]:
    """``n`` distinct series made by 1-3 random edits of valid ones."""
    rnd = random.Random(seed)
    alphabet = [*'{}=",\'`!~ab_:.1x\\# \té@()[]-+u0', "=~", "!=", '"\\x', "__name__", "sum", "\\u"]
    bases = ['up{job="a"}', "foo", '{__name__="m",a="1"}', "a:b{c='d',e=`f`}", 'sum{by="x",}',
             'foo{a="b",c="d"}', '{a="1"}', 'm{a="\\n\\"q\\\\"}', 'x_y{ a = "b" , c = "d" }',
             'offset{__name__="x"}', 'm{a="\\x41\\u00e9\\101"}']
    out: list[str] = []
    while len(out) < n:
        chars = list(rnd.choice(bases))
        for _ in range(rnd.choice([1, 1, 2, 3])):
            i = rnd.randrange(len(chars) + 1)
            op = rnd.random()
            if op < 0.45:
                chars.insert(i, rnd.choice(alphabet))
            elif op < 0.75:
                chars.pop(min(i, len(chars) - 1))
            else:
                chars[min(i, len(chars) - 1)] = rnd.choice(alphabet)
        series = "".join(chars)
        if series not in out:
            out.append(series)
    return out


@pytest.mark.parametrize("seed", [1, 2], ids=["seed1", "seed2"])
def test_mutated_series_agree_with_promtool(seed: int, tmp_path: Path,
                                            require_binary: Callable[[str], str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutated valid series, malformed or not: the same output (what a loaded series is shows
    in its test's "got")."""
    promtool = require_binary("promtool")
    series = _mutations(seed, 150)
    # Left out: what 2.42 refuses for a quoted label name (Prometheus 3 notation).
    suspects = [s for s in series if re.search("[{,][ \t]*[\"'`]", s)]
    quoted = {s for s in suspects if any(_PROMETHEUS_3_ONLY.search(line) for line in _promtool(
        promtool, _write(tmp_path, [_series_group([(s, "1 2")])]))[1])}
    assert len(quoted) < len(series) // 10
    kept = [_series_group([(s, "1 2")]) for s in series if s not in quoted]
    theirs, ours = _against_promtool(kept, tmp_path, promtool, monkeypatch)
    assert ours == theirs
    # Both verdicts are exercised: some mutations load, most are refused.
    assert len(kept) // 2 < len(_errors(ours[1])) < len(kept)
