"""The PromQL conformance scripts, and the script runner's own pieces.

* Corpus: every ``*.test`` in ``../shared/conformance/promql/`` (Prometheus's promqltest files) and
  our own ``tests/promql/scripts/*.test`` run through :class:`Runner`; each file must pass at least
  the number of evals recorded in ``conformance_floors.json`` (raise the floors as the engine
  improves; never set one above what passes now), and fail and skip at most as many as
  ``conformance_ceilings.json`` allows (a file not listed there may fail or skip none; lower
  the ceilings as failures are fixed).
* Unit tests of the series notation, Go number parsing, ``almost.Equal``, the script parser,
  the ``@`` rewrite and the skip rules.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from promlab.errors import ParseError
from promlab.model import STALE_NAN, Labels, Matcher, MatchType, is_stale
from promlab.promql.parser import ast
from promlab.promql.parser.functions import FUNCTIONS
from promlab.promql.promqltest import skips
from promlab.promql.promqltest.almost import almost_equal, almost_equal_array
from promlab.promql.promqltest.compare import Observed, compare
from promlab.promql.promqltest.dsl import ClearCmd, EvalCmd, LoadCmd, parse_script
from promlab.promql.promqltest.rewrite import add_at, rerun_times
from promlab.promql.promqltest.series import (
    HistogramLiteral,
    go_unquote,
    parse_go_number,
    parse_series_desc,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CORPUS = (REPO / ".." / "shared" / "conformance" / "promql").resolve()
OWN_SCRIPTS = HERE / "scripts"
FLOORS = json.loads((HERE / "conformance_floors.json").read_text())
CEILINGS: dict[str, dict[str, int]] = json.loads((HERE / "conformance_ceilings.json").read_text())
IN_CI = os.environ.get("CI") == "true"

CORPUS_FILES = sorted(CORPUS.glob("*.test")) if CORPUS.is_dir() else []
OWN_FILES = sorted(OWN_SCRIPTS.glob("*.test"))


def _corpus_missing() -> None:
    msg = f"conformance corpus not found at {CORPUS}"
    if IN_CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def runner():  # type: ignore[no-untyped-def]
    try:
        from promlab.promql.engine import Engine  # noqa: F401
        from promlab.promql.parser import parse_expr, to_string  # noqa: F401
    except ImportError as exc:
        if IN_CI:
            pytest.fail(f"engine/parser not importable: {exc}")
        pytest.skip(f"engine/parser not importable yet: {exc}")
    from promlab.promql.promqltest import Runner

    return Runner()


def _floor_key(path: Path) -> str:
    return path.name if path.parent == CORPUS else f"scripts/{path.name}"


def _check_file(runner, path: Path) -> None:  # type: ignore[no-untyped-def]
    res = runner.run_path(path)
    floor = int(FLOORS.get(_floor_key(path), 0))
    print(res.summary())
    for reason, n in res.skip_reasons.most_common():
        print(f"  skipped {n}: {reason}")
    for f in res.failures[:20]:
        print("  " + f.format())
    assert res.passed >= floor, (
        f"{res.summary()} — below the recorded floor of {floor} passing evals; first failures:\n"
        + "\n".join(f.format() for f in res.failures[:10]))
    ceiling = CEILINGS.get(_floor_key(path), {})
    max_failed, max_skipped = int(ceiling.get("failed", 0)), int(ceiling.get("skipped", 0))
    assert res.failed <= max_failed, (
        f"{res.summary()} — more than the {max_failed} failures allowed; first failures:\n"
        + "\n".join(f.format() for f in res.failures[:10]))
    assert res.skipped <= max_skipped, (
        f"{res.summary()} — more than the {max_skipped} skips allowed: "
        + ", ".join(f"{n} {reason}" for reason, n in res.skip_reasons.most_common()))


@pytest.mark.parametrize("path", CORPUS_FILES or [None], ids=[p.name for p in CORPUS_FILES] or ["corpus"])
def test_corpus_file(runner, path: Path | None) -> None:  # type: ignore[no-untyped-def]
    if path is None:
        _corpus_missing()
        return
    _check_file(runner, path)


@pytest.mark.parametrize("path", OWN_FILES, ids=[p.name for p in OWN_FILES])
def test_own_script(runner, path: Path) -> None:  # type: ignore[no-untyped-def]
    _check_file(runner, path)


def test_floors_name_existing_files() -> None:
    known = {p.name for p in CORPUS_FILES} | {f"scripts/{p.name}" for p in OWN_FILES}
    if not CORPUS_FILES:
        known |= {k for k in FLOORS if not k.startswith("scripts/")}
    assert set(FLOORS) <= known
    assert set(CEILINGS) <= known


# --- series notation ---------------------------------------------------------------------------
S = STALE_NAN


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("0+10x3", [0.0, 10.0, 20.0, 30.0], id="ramp"),
    pytest.param("0+10x100", [float(10 * i) for i in range(101)], id="ramp-101-values"),
    pytest.param("1x5", [1.0] * 6, id="repeat-n-plus-1"),
    pytest.param("-2-2x3", [-2.0, -4.0, -6.0, -8.0], id="negative-ramp"),
    pytest.param("1 _x3 stale", [1.0, None, None, None, S], id="gaps-and-stale"),
    pytest.param("_x3", [None, None, None], id="gaps-exactly-n"),
    pytest.param("_", [None], id="one-gap"),
    pytest.param("2+3x2 _ stale", [2.0, 5.0, 8.0, None, S], id="doc-example"),
    pytest.param("Inf -Inf +Inf inf NaN nan", [math.inf, -math.inf, math.inf, math.inf, math.nan, math.nan], id="inf-nan"),
    pytest.param(".5 5. 1e3 -1.5e-3 +7", [0.5, 5.0, 1000.0, -0.0015, 7.0], id="number-forms"),
    pytest.param("0x5", [0.0] * 6, id="zero-times-five-not-hex"),
    pytest.param("1+0.1x3", [1.0, 1.1, 1.2000000000000002, 1.3000000000000003], id="cumulative-addition"),
    pytest.param("NaN Inf", [math.nan, math.inf], id="nan-inf"),
    pytest.param("1\t2", [1.0, 2.0], id="tabs"),
    pytest.param("", [], id="empty"),
])
def test_series_values(text: str, expected: list[float | None]) -> None:
    _, vals = parse_series_desc("m " + text if text else "m")
    assert len(vals) == len(expected)
    for got, exp in zip(vals, expected, strict=True):
        if exp is None:
            assert got is None
        elif isinstance(exp, float) and math.isnan(exp):
            assert isinstance(got, float) and math.isnan(got)
            assert is_stale(got) == is_stale(exp)
        else:
            assert got == exp


@pytest.mark.parametrize(("line", "labels"), [
    pytest.param("up 1", {"__name__": "up"}, id="name"),
    pytest.param('up{job="a", instance=\'b\'} 1', {"__name__": "up", "job": "a", "instance": "b"}, id="labels"),
    pytest.param('{__name__="up", a="1",} 1', {"__name__": "up", "a": "1"}, id="name-label-trailing-comma"),
    pytest.param('{"my.metric", "a.b"="v"} 1', {"__name__": "my.metric", "a.b": "v"}, id="utf8-quoted"),
    pytest.param("{} 1", {}, id="empty-set"),
    pytest.param('m{a="x\\"y\\n"} 1', {"__name__": "m", "a": 'x"y\n'}, id="escapes"),
    pytest.param("m{a=`r\\aw`} 1", {"__name__": "m", "a": "r\\aw"}, id="raw-string"),
    pytest.param("sum{by=\"x\"} 1", {"__name__": "sum", "by": "x"}, id="keyword-names"),
    pytest.param("a:b:c 1", {"__name__": "a:b:c"}, id="colons"),
])
def test_series_labels(line: str, labels: dict[str, str]) -> None:
    ls, _ = parse_series_desc(line)
    assert ls == Labels(labels)


def test_series_histogram_literals_are_kept_opaque() -> None:
    _, vals = parse_series_desc("h {{schema:0 sum:5 count:4 buckets:[1 2 1]}}x2 {{}} 3")
    assert [type(v).__name__ for v in vals] == ["HistogramLiteral"] * 4 + ["float"]
    assert isinstance(vals[0], HistogramLiteral) and vals[0].text.startswith("{{schema")
    _, vals = parse_series_desc("h {{count:1}}+{{count:2}}x3")
    assert len(vals) == 4


def test_histogram_literal_fields() -> None:
    from promlab.promql.promqltest.histogram import parse_histogram

    h = parse_histogram("{{schema:1 sum:-2.5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 0 2] offset:-2 "
                        "n_buckets:[3] n_offset:4 counter_reset_hint:gauge}}")
    assert (h.schema, h.sum, h.count, h.zero_count, h.zero_threshold) == (1, -2.5, 4.0, 1.0, 0.001)
    assert h.positive == ((-2, 1.0), (0, 2.0)) and h.negative == ((4, 3.0),)
    assert h.counter_reset_hint == "gauge"
    empty = parse_histogram("{{}}")
    assert (empty.schema, empty.count, empty.positive, empty.counter_reset_hint) == (0, 0.0, (), None)
    nhcb = parse_histogram("{{schema:-53 count:1 custom_values:[5 10] buckets:[0 1]}}")
    assert nhcb.custom_values == (5.0, 10.0) and nhcb.positive == ((1, 1.0),)


@pytest.mark.parametrize("text", [
    pytest.param("{{count:1 count:2}}", id="duplicate-key"),
    pytest.param("{{counter_reset_hint:maybe}}", id="bad-hint"),
    pytest.param("{{bogus:1}}", id="unknown-key"),
    pytest.param("{{schema:1.5}}", id="fractional-schema"),
    pytest.param("{{buckets:1}}", id="buckets-not-a-list"),
])
def test_histogram_literal_errors(text: str) -> None:
    from promlab.promql.promqltest.histogram import parse_histogram

    with pytest.raises(ValueError):
        parse_histogram(text)


def test_histogram_arithmetic_and_equality() -> None:
    from promlab.promql.promqltest.histogram import (
        histogram_series,
        histograms_equal,
        parse_histogram,
    )

    base = parse_histogram("{{schema:0 count:1 sum:1 buckets:[1] offset:1}}")
    inc = parse_histogram("{{schema:1 count:2 sum:2 buckets:[1 1 1] offset:0}}")   # finer schema
    series = histogram_series(base, inc, 2)
    assert len(series) == 3 and series[2].count == 5.0
    # schema-1 buckets 0, 1, 2 fall into schema-0 buckets 0, 1, 1.
    assert series[1].positive == ((0, 1.0), (1, 3.0))
    down = histogram_series(series[2], inc, 1, -1.0)[1]
    assert histograms_equal(series[1], down)
    with pytest.raises(ValueError):
        histogram_series(inc, base, 1)          # cannot merge schema 0 into schema 1
    with pytest.raises(ValueError):
        histogram_series(parse_histogram("{{schema:-53 custom_values:[1]}}"),
                         parse_histogram("{{schema:-53 custom_values:[2]}}"), 1)
    zeros = parse_histogram("{{schema:0 count:1 sum:1 buckets:[0 1 0 0] offset:0}}")
    assert histograms_equal(base, zeros)        # equivalent spans after compaction
    assert histograms_equal(parse_histogram("{{count:1}}"), parse_histogram("{{count:1.0000001 counter_reset_hint:reset}}"))
    assert not histograms_equal(parse_histogram("{{count:1 counter_reset_hint:gauge}}"), parse_histogram("{{count:1}}"))
    assert not histograms_equal(parse_histogram("{{schema:-53 custom_values:[1]}}"),
                                parse_histogram("{{schema:-53 custom_values:[2]}}"))
    assert not histograms_equal(base, parse_histogram("{{schema:0 count:1 sum:1 buckets:[1] offset:2}}"))


@pytest.mark.parametrize("line", [
    pytest.param("m 1y", id="duration-value"), pytest.param("m 1x", id="missing-count"),
    pytest.param("m{a=1} 1", id="unquoted-value"), pytest.param("m{a='x} 1", id="unterminated"),
    pytest.param("1 2", id="no-metric"), pytest.param("m 1+2", id="step-without-count"),
    pytest.param("m {{count:1", id="unterminated-histogram"),
    pytest.param("m {{count:1}}+{{count:1}}", id="histogram-step-without-count"),
    pytest.param("m {{nope:1}}", id="bad-histogram"),
    # Prometheus lexes NaNx2 / Infx2 as one identifier (promtool 2.42: 'unexpected identifier').
    pytest.param("m NaNx2", id="nan-repeat"), pytest.param("m 1+Infx2", id="inf-step-repeat"),
])
def test_series_errors(line: str) -> None:
    with pytest.raises(ParseError):
        parse_series_desc(line)


@pytest.mark.parametrize(("text", "value"), [
    pytest.param("1", 1.0, id="int"), pytest.param("0x1f", 31.0, id="hex"),
    pytest.param("010", 8.0, id="octal"), pytest.param("0b101", 5.0, id="binary"),
    pytest.param("0o17", 15.0, id="octal-o"), pytest.param("1_000", 1000.0, id="underscore"),
    pytest.param("1e3", 1000.0, id="exp"), pytest.param("-0.5", -0.5, id="neg"),
    pytest.param("+Inf", math.inf, id="inf"), pytest.param("-infinity", -math.inf, id="infinity"),
    pytest.param("NaN", math.nan, id="nan"), pytest.param("0x1p-2", 0.25, id="hexfloat"),
    pytest.param("9223372036854775808", 9.223372036854776e18, id="int-overflow-float"),
])
def test_parse_go_number(text: str, value: float) -> None:
    got = parse_go_number(text)
    assert got == value or (math.isnan(got) and math.isnan(value))


@pytest.mark.parametrize("text", ["", "abc", "1_", "_1", "1x3", "+nan", "1.2.3", "5m", "0x"])
def test_parse_go_number_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_number(text)


def test_go_unquote() -> None:
    assert go_unquote('"a\\tb\\u00e9"') == "a\tbé"
    assert go_unquote("'x\\'y'") == "x'y"
    assert go_unquote("`a\\nb`") == "a\\nb"
    with pytest.raises(ValueError):
        go_unquote('"bad\\q"')


# --- almost.Equal ------------------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b", "equal"), [
    pytest.param(1.0, 1.0, True, id="same"),
    pytest.param(1.0, 1.0 + 1e-7, True, id="within-1e-6"),
    pytest.param(1.0, 1.00001, False, id="outside"),
    pytest.param(1e300, 1.0000001e300, True, id="large-relative"),
    pytest.param(0.0, 1e-300, False, id="zero-vs-tiny"),
    pytest.param(0.0, -0.0, True, id="signed-zero"),
    pytest.param(math.nan, math.nan, True, id="nan-nan"),
    pytest.param(math.nan, 1.0, False, id="nan-number"),
    pytest.param(STALE_NAN, math.nan, False, id="stale-vs-nan"),
    pytest.param(STALE_NAN, STALE_NAN, True, id="stale-stale"),
    pytest.param(math.inf, math.inf, True, id="inf"),
    pytest.param(math.inf, -math.inf, False, id="inf-neg-inf"),
    pytest.param(1.7976931348623157e308, -1.7976931348623157e308, False, id="max-opposite"),
    pytest.param(5e-324, 0.0, True, id="denormal-vs-zero-is-equal"),
])
def test_almost_equal(a: float, b: float, equal: bool) -> None:
    assert almost_equal(a, b) is equal
    assert almost_equal(b, a) is equal
    arr = almost_equal_array(np.array([a]), np.array([b]))
    assert bool(arr[0]) is equal


def test_stale_nan_bits() -> None:
    assert struct.pack("<d", STALE_NAN) == struct.pack("<Q", 0x7FF0000000000002)


# --- script parsing ----------------------------------------------------------------------------
SCRIPT = """
# a comment
load 1m
  up{job="a"} 0+1x3
  up{job="a"} 5 6
  other 1 _ stale

eval instant at 2m up
  expect no_warn
  expect info msg: PromQL info: something
  up{job="a"} 6

eval range from 0 to 2m step 1m rate(up[5m])
  expect warn regex: ^PromQL warning
  {job="a"} 1 _ 3

eval_fail instant at 0 foo
  expected_fail_message some error

eval instant at 1m scalar(up)
  0x10

eval_ordered instant at 1m sort(up)
  up{job="b"} 1
  up{job="a"} 2

eval instant at 1m "x"
  expect string "x"

eval instant at 1m up[1m]
  expect range vector from 0 to 1m step 30s
  up 1 2 3

clear
"""


def test_parse_script_structure() -> None:
    s = parse_script(SCRIPT)
    load = s.commands[0]
    assert isinstance(load, LoadCmd) and load.interval_ms == 60_000 and load.line == 3
    up = load.series[Labels({"__name__": "up", "job": "a"})]
    assert up.ts_ms == [0, 60_000] and up.values == [5.0, 6.0]  # repeated line replaces
    other = load.series[Labels({"__name__": "other"})]
    assert other.ts_ms == [0, 120_000] and is_stale(other.values[1])
    ev = s.evals
    assert [e.line for e in ev] == [8, 13, 17, 20, 23, 27, 30]
    assert ev[0].eval_ms == 120_000 and not ev[0].is_range
    assert ev[0].expects["info"][0].matches("PromQL info: something")
    assert ev[0].expected[Labels({"__name__": "up", "job": "a"})] == (1, [6.0])
    assert ev[1].is_range and (ev[1].start_ms, ev[1].end_ms, ev[1].step_ms) == (0, 120_000, 60_000)
    assert ev[1].expected[Labels({"job": "a"})][1] == [1.0, None, 3.0]
    assert ev[1].expects["warn"][0].matches("PromQL warning: x (1:2)")
    assert ev[2].fail and ev[2].is_fail and ev[2].expected_fail_message == "some error"
    assert ev[3].expect_scalar and ev[3].expected_scalar == 16.0
    assert ev[4].is_ordered
    assert [p for p, _ in ev[4].expected.values()] == [1, 2]
    assert ev[5].expected_string == "x" and ev[5].exclude_from_range_query
    assert ev[6].range_vector and ev[6].eval_ms == 60_000 and ev[6].step_ms == 30_000
    assert isinstance(s.commands[-1], ClearCmd)


@pytest.mark.parametrize(("script", "line", "message"), [
    pytest.param("foo bar\n", 1, "invalid command", id="invalid-command"),
    pytest.param("load 1m\n  up 1\n\nevalx\n", 4, "invalid evaluation command", id="bad-eval"),
    pytest.param("load 1q\n", 1, "invalid step definition", id="bad-interval"),
    pytest.param("eval instant at 1m up\n  up 1 2\n", 2, "multiple values in instant", id="multi-values"),
    pytest.param("eval instant at 1m up\n  expect info\n  expect no_info\n", 3, "info and no_info", id="info-no-info"),
    pytest.param("eval instant at 1m up\n  expect fail\n  expect fail\n", 3, "multiple expect fail", id="two-fails"),
    pytest.param("eval instant at 1m up\n  expect bogus\n", 2, "invalid expect statement", id="bad-expect"),
    pytest.param("eval range from 2m to 1m step 1m up\n", 1, "before start", id="end-before-start"),
    pytest.param("eval instant at 1m up\n  1\n  expect no_warn\n", 3, "invalid command", id="after-scalar"),
    pytest.param("eval instant at 1m \"a\"\n  expect string a\n", 2, "correctly quoted", id="bad-string"),
    pytest.param("load 1m\n  m@st 0 0\n  m 1\n", 2, "values but sample line has", id="st-count"),
])
def test_parse_script_errors(script: str, line: int, message: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_script(script)
    assert str(info.value).startswith(f"{line}:1:")
    assert message in str(info.value)


def test_parse_script_st_and_nhcb() -> None:
    s = parse_script("load_with_nhcb 1m\n  m@st -1m 0sx1\n  m 1 2 3\n  h {{count:1}} 2\n")
    load = s.commands[0]
    assert isinstance(load, LoadCmd) and load.with_nhcb
    assert load.series[Labels({"__name__": "m"})].has_start_timestamps
    h = load.series[Labels({"__name__": "h"})]
    assert h.histograms == 1 and h.ts_ms == [60_000] and not h.has_start_timestamps
    s = parse_script("load 1m\n  a 1\n  @st -1m\n  b 1\n")
    load = s.commands[0]
    assert isinstance(load, LoadCmd)
    assert [x.has_start_timestamps for x in load.series.values()] == [False, True]


def test_comment_ends_block() -> None:
    s = parse_script("eval instant at 0 up\n  up 1\n# c\n  eval instant at 0 down\n")
    assert [e.expr for e in s.evals] == ["up", "down"]


# --- comparison --------------------------------------------------------------------------------
def _ev(text: str) -> EvalCmd:
    return parse_script(text).evals[0]


def test_compare_vector_rules() -> None:
    ev = _ev('eval instant at 0 x\n  x{a="1"} 1\n  {a="2"} NaN\n')
    ok = Observed("vector", vector=[(Labels({"a": "2"}), math.nan), (Labels({"__name__": "x", "a": "1"}), 1.0000001)])
    assert compare(ev, ok) is None
    named = Observed("vector", vector=[(Labels({"__name__": "x", "a": "2"}), math.nan),
                                       (Labels({"__name__": "x", "a": "1"}), 1.0)])
    assert "unexpected metric" in (compare(ev, named) or "")
    missing = Observed("vector", vector=[(Labels({"__name__": "x", "a": "1"}), 1.0)])
    assert "not found" in (compare(ev, missing) or "")
    assert "expected scalar" not in (compare(ev, Observed("scalar", scalar=1.0)) or "")
    assert compare(_ev("eval instant at 0 x\n"), Observed("vector")) is None
    dup = Observed("vector", vector=[(Labels({"a": "2"}), 1.0), (Labels({"a": "2"}), 1.0)])
    assert "twice" in (compare(_ev('eval instant at 0 x\n  {a="2"} 1\n'), dup) or "")


def test_compare_ordered_and_scalar() -> None:
    ev = _ev("eval instant at 0 sort(x)\n  expect ordered\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2\n")
    a = (Labels({"__name__": "x", "a": "1"}), 1.0)
    b = (Labels({"__name__": "x", "a": "2"}), 2.0)
    assert compare(ev, Observed("vector", vector=[a, b])) is None
    assert "position" in (compare(ev, Observed("vector", vector=[b, a])) or "")
    sc = _ev("eval instant at 0 1\n  -Inf\n")
    assert compare(sc, Observed("scalar", scalar=-math.inf)) is None
    assert compare(sc, Observed("scalar", scalar=0.0)) is not None
    assert "expected scalar" in (compare(sc, Observed("vector")) or "")


def test_compare_matrix_rules() -> None:
    ev = _ev('eval range from 0 to 2m step 1m x\n  x{a="1"} 1 _ 3\n  x{a="2"} 5\n')
    s1 = (Labels({"__name__": "x", "a": "1"}), np.array([0, 120_000]), np.array([1.0, 3.0]))
    s2 = (Labels({"__name__": "x", "a": "2"}), np.array([0]), np.array([5.0]))
    assert compare(ev, Observed("matrix", matrix=[s1, s2])) is None
    assert "sorted" in (compare(ev, Observed("matrix", matrix=[s2, s1])) or "")
    bad_t = (s1[0], np.array([0, 60_000]), np.array([1.0, 3.0]))
    assert "timestamp" in (compare(ev, Observed("matrix", matrix=[bad_t, s2])) or "")
    bad_v = (s1[0], s1[1], np.array([1.0, 3.1]))
    assert "to be 3" in (compare(ev, Observed("matrix", matrix=[bad_v, s2])) or "")
    too_many = _ev("eval range from 0 to 1m step 1m x\n  x 1 2 3\n")
    assert "cannot return this many points" in (compare(too_many, Observed("matrix", matrix=[
        (Labels({"__name__": "x"}), np.array([0, 60_000]), np.array([1.0, 2.0]))])) or "")


# --- the @ rewrite -----------------------------------------------------------------------------
def _vs(name: str, **kw: object) -> ast.VectorSelector:
    return ast.VectorSelector(name=name, matchers=(Matcher(MatchType.EQUAL, "__name__", name),), **kw)  # type: ignore[arg-type]


def test_add_at_pins_selectors_and_subqueries() -> None:
    rate = FUNCTIONS["rate"]
    inner = ast.Call(func=rate, args=(ast.MatrixSelector(vector_selector=_vs("a"), range_ms=300_000),))
    sub = ast.SubqueryExpr(expr=ast.Call(func=rate, args=(ast.MatrixSelector(vector_selector=_vs("b"), range_ms=60_000),)),
                           range_ms=600_000)
    fixed = _vs("c", at_ms=5)
    expr = ast.BinaryExpr(op="+", lhs=ast.AggregateExpr(op="sum", expr=inner),
                          rhs=ast.BinaryExpr(op="*", lhs=ast.Call(func=FUNCTIONS["max_over_time"], args=(sub,)),
                                             rhs=ast.BinaryExpr(op="-", lhs=fixed, rhs=_vs("d", at_modifier="start"))))
    out = add_at(expr, 120_000)
    assert out is not None
    sels = {n.name: n for n in ast.walk(out) if isinstance(n, ast.VectorSelector)}
    assert sels["a"].at_ms == 120_000
    assert sels["b"].at_ms is None                     # inside a subquery: untouched
    assert sels["c"].at_ms == 5                        # already pinned
    assert sels["d"].at_ms == 120_000 and sels["d"].at_modifier is None  # @ start() replaced
    subs = [n for n in ast.walk(out) if isinstance(n, ast.SubqueryExpr)]
    assert subs[0].at_ms == 120_000
    assert add_at(expr, 120_000) == out                # deterministic; original not mutated
    assert expr.lhs.expr.args[0].vector_selector.at_ms is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("fn", ["time", "timestamp", "hour", "predict_linear", "day_of_week"])
def test_add_at_refuses_time_dependent_functions(fn: str) -> None:
    f = FUNCTIONS[fn]
    args: tuple[ast.Expr, ...] = ()
    if f.arg_types:
        first = (ast.MatrixSelector(vector_selector=_vs("x"), range_ms=60_000)
                 if f.arg_types[0] is ast.ValueType.MATRIX else _vs("x"))
        args = (first, *tuple(ast.NumberLiteral(value=1.0) for _ in f.arg_types[1:]))
    assert add_at(ast.Call(func=f, args=args), 60_000) is None
    # ... but not when hidden inside a subquery (Prometheus does not look there).
    sub = ast.SubqueryExpr(expr=ast.Call(func=f, args=args) if f.return_type is ast.ValueType.VECTOR
                           else ast.Call(func=FUNCTIONS["vector"], args=(ast.Call(func=f, args=args),)),
                           range_ms=300_000)
    assert add_at(ast.Call(func=FUNCTIONS["max_over_time"], args=(sub,)), 60_000) is not None


def test_rerun_times() -> None:
    assert rerun_times(0) == [-1000, 0, 1000]
    assert rerun_times(3_000_000) == [-30_000_000, 0, 600_000, 3_000_000, 30_000_000]
    assert rerun_times(7) == [-70, 0, 1, 7, 70]


def test_add_at_printed() -> None:
    parser = pytest.importorskip("promlab.promql.parser")
    if not hasattr(parser, "parse_expr") or not hasattr(parser, "to_string"):
        pytest.skip("parser/printer not available yet")
    out = add_at(parser.parse_expr("sum(rate(x[5m])) + max_over_time(y[10m:1m])"), 60_000)
    assert out is not None
    assert parser.to_string(out) == "sum(rate(x[5m] @ 60.000)) + max_over_time(y[10m:1m] @ 60.000)"


# --- skip rules --------------------------------------------------------------------------------
@pytest.mark.parametrize(("expr", "reason"), [
    pytest.param("rate(x[5m])", None, id="plain"),
    pytest.param("rate(x[300])", None, id="numeric-range"),
    pytest.param("max_over_time(x[5m:1m] offset 100)", None, id="numeric-offset"),
    pytest.param('label_replace(x, "dst", "$1", "src", "fill(.*)")', None, id="string-ignored"),
    pytest.param("rate(x[5m+1m])", None, id="duration-arith"),
    pytest.param("x offset (1m*2)", None, id="offset-expr"),
    pytest.param("count_over_time(x[step()])", None, id="step-fn"),
    pytest.param("end() - start()", None, id="start-end-fns"),
    pytest.param("x @ start() + y @ end()", None, id="at-start-end"),
    pytest.param("a + fill(0) b", None, id="fill"),
    pytest.param("rate(x[5m] anchored)", None, id="anchored"),
    pytest.param("info(x)", None, id="info"),
    pytest.param('sum({__type__="counter"})', None, id="type"),
    pytest.param("start_timestamp(x)", None, id="start-ts"),
    pytest.param("histogram_count(x)", None, id="native-fn"),
    pytest.param("h </ 5", None, id="trim"),
    pytest.param("target_info", None, id="info-metric"),
])
def test_syntax_skip_reason(expr: str, reason: str | None) -> None:
    assert skips.syntax_skip_reason(expr) == reason


def test_nhcb_series_and_selection() -> None:
    series = [Labels({"__name__": "h_bucket", "le": "1", "a": "x"}), Labels({"__name__": "h_bucket", "le": "+Inf", "a": "x"}),
              Labels({"__name__": "h_count", "a": "x"}), Labels({"__name__": "g_bucket", "le": "NaN"}),
              Labels({"__name__": "plain"})]
    assert skips.nhcb_series(series) == [Labels({"__name__": "h", "a": "x"})]
    sel = ast.VectorSelector(name=None, matchers=(Matcher(MatchType.REGEX, "__name__", "h|z"),))
    assert skips.selects_any(sel, [Labels({"__name__": "h", "a": "x"})])
    assert not skips.selects_any(_vs("h_bucket"), [Labels({"__name__": "h", "a": "x"})])
    assert skips.file_skip_reason("info.test") and skips.file_skip_reason("functions.test") is None


# --- the runner, end to end (needs the engine) --------------------------------------------------
RUNNER_SCRIPT = """
load 1m
  x{a="1"} 0+1x10
  x{a="2"} 10+10x10
  h {{count:1}}x10

eval instant at 5m x
  x{a="1"} 5
  x{a="2"} 60

eval instant at 5m x
  x{a="1"} 5
  x{a="2"} 61

eval range from 0 to 2m step 1m x{a="1"}
  x{a="1"} 0 1 2

eval instant at 5m h
  h {{count:1}}

eval instant at 5m start_timestamp(x)
  {a="1"} 0
  {a="2"} 0
"""


def test_runner_counts(runner) -> None:  # type: ignore[no-untyped-def]
    res = runner.run_text(RUNNER_SCRIPT, "inline.test")
    assert (res.passed, res.failed, res.skipped) == (4, 1, 0), [f.format() for f in res.failures]
    assert res.failures[0].line == 11 and "61" in res.failures[0].message
    assert not res.skip_reasons


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], runner) -> None:  # type: ignore[no-untyped-def]
    from promlab.promql.promqltest.__main__ import main

    path = tmp_path / "inline.test"
    path.write_text(RUNNER_SCRIPT)
    report = tmp_path / "report.md"
    code = main([str(path), "-v", "--report", str(report)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert out[0] == "inline.test: 4 passed, 1 failed, 0 skipped"
    assert out[-1] == "4 passed, 1 failed, 0 skipped"
    assert re.search(r"inline\.test:11: \[instant\]", "\n".join(out))
    assert "Failures by cause" in report.read_text()


CHECKS_LOAD = """
load 1m
  x{a="1"} 1+1x10
  x{a="2"} 2+2x10

"""


@pytest.mark.parametrize(("body", "outcome", "category"), [
    pytest.param('eval instant at 0 label_replace(x, "a", "same", "", "")\n  expect fail\n',
                 "pass", None, id="expect-fail-any"),
    pytest.param('eval instant at 0 label_replace(x, "a", "same", "", "")\n'
                 "  expect fail msg: vector cannot contain metrics with the same labelset\n",
                 "pass", None, id="expect-fail-msg"),
    pytest.param('eval instant at 0 label_replace(x, "a", "same", "", "")\n  expect fail regex: same label\\w+\n',
                 "pass", None, id="expect-fail-regex"),
    pytest.param('eval instant at 0 label_replace(x, "a", "same", "", "")\n  expect fail msg: other\n',
                 "fail", "wrong error message", id="expect-fail-wrong-msg"),
    pytest.param('eval_fail instant at 0 label_replace(x, "a", "same", "", "")\n'
                 "  expected_fail_message vector cannot contain metrics with the same labelset\n",
                 "pass", None, id="legacy-fail-message"),
    pytest.param('eval_fail instant at 0 label_replace(x, "a", "same", "", "")\n  expected_fail_regexp ^nope\n',
                 "fail", "wrong error message", id="legacy-fail-regexp"),
    pytest.param("eval instant at 0 x\n  expect fail\n", "fail", "expected an error, got none", id="no-error"),
    pytest.param('eval instant at 0 label_replace(x, "a", "same", "", "")\n',
                 "fail", "unexpected error", id="unexpected-error"),
    pytest.param("eval instant at 0 quantile(NaN, x)\n  expect warn\n  {} NaN\n", "pass", None, id="warn-any"),
    pytest.param("eval instant at 0 quantile(NaN, x)\n  expect warn regex: got NaN\n  {} NaN\n",
                 "pass", None, id="warn-regex"),
    pytest.param("eval instant at 0 quantile(NaN, x)\n  expect warn msg: PromQL warning: nope\n  {} NaN\n",
                 "fail", "annotations: wrong warn text", id="warn-wrong-msg"),
    pytest.param("eval instant at 0 quantile(NaN, x)\n  expect no_warn\n  {} NaN\n",
                 "fail", "annotations: unexpected warn", id="no-warn"),
    pytest.param("eval instant at 0 quantile(NaN, x)\n  {} NaN\n", "pass", None, id="unchecked-annotations"),
    pytest.param("eval_warn instant at 0 x\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2\n",
                 "fail", "annotations: missing warning", id="legacy-warn"),
    pytest.param("eval instant at 0 x\n  expect info\n  x{a=\"1\"} 1\n  x{a=\"2\"} 2\n",
                 "fail", "annotations: missing info", id="info-missing"),
    pytest.param("eval instant at 1m sort_desc(x)\n  expect ordered\n  x{a=\"2\"} 4\n  x{a=\"1\"} 2\n",
                 "pass", None, id="ordered"),
    pytest.param("eval_ordered instant at 1m sort_desc(x)\n  x{a=\"1\"} 2\n  x{a=\"2\"} 4\n",
                 "fail", "result mismatch: sort_desc()", id="ordered-wrong"),
    pytest.param("eval range from 0 to 1m step 1m sort(x)\n"
                 "  expect warn msg: PromQL warning: sort is ineffective for range queries since results"
                 " are always ordered by labels (1:1)\n  x{a=\"1\"} 1 2\n  x{a=\"2\"} 2 4\n",
                 "pass", None, id="range-warn"),
    pytest.param("eval range from 0 to 1m step 1m x\n  x{a=\"1\"} 1 2\n  x{a=\"2\"} 2 4 6\n",
                 "fail", "result mismatch: vector selector", id="range-too-many-points"),
    pytest.param("eval instant at 1m x{a=\"1\"} @ 0\n  x{a=\"1\"} 1\n", "pass", None, id="at-zero"),
    pytest.param("eval instant at 1m x{a=\"1\"}[1m]\n  expect range vector from 0 to 1m step 1m\n"
                 "  x{a=\"1\"} _ 2\n", "pass", None, id="range-vector"),
    pytest.param("eval instant at 1m \"s\"\n  expect string \"s\"\n", "pass", None, id="string"),
    pytest.param("eval instant at 1m scalar(x{a=\"2\"})\n  4\n", "pass", None, id="scalar"),
    pytest.param("eval instant at 1m scalar(x{a=\"2\"})\n  4.1\n", "fail", "result mismatch: scalar()", id="scalar-wrong"),
])
def test_runner_checks(runner, body: str, outcome: str, category: str | None) -> None:  # type: ignore[no-untyped-def]
    res = runner.run_text(CHECKS_LOAD + body, "checks.test")
    assert res.skipped == 0
    if outcome == "pass":
        assert res.passed == 1, [f.format() for f in res.failures]
    else:
        assert res.failed == 1, "expected a failure"
        assert res.failures[0].category.startswith(category or ""), res.failures[0].format()


class _Shifty:
    """An engine wrapper that breaks step invariance / range mode, to see the extra runs catch it."""

    def __init__(self, engine, *, break_at: bool = False, break_range: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.engine, self.break_at, self.break_range = engine, break_at, break_range

    def instant(self, st, expr, t):  # type: ignore[no-untyped-def]
        if self.break_at and "@" in expr:
            return self.engine.instant(st, expr.split("@")[0] + "@ 0", t)
        return self.engine.instant(st, expr, t)

    def range(self, st, expr, a, b, step):  # type: ignore[no-untyped-def]
        if self.break_range:
            a, b = a - step // 2, b - step // 2
        return self.engine.range(st, expr, a, b, step)


@pytest.mark.parametrize(("kw", "category"), [
    pytest.param({"break_at": True}, "@-rerun mismatch", id="at-rerun"),
    pytest.param({"break_range": True}, "range-mode mismatch", id="range-mode"),
])
def test_extra_runs_catch_engine_mistakes(runner, kw: dict[str, bool], category: str) -> None:  # type: ignore[no-untyped-def]
    from promlab.promql.promqltest import Runner

    script = CHECKS_LOAD + 'eval instant at 3m x{a="1"}\n  x{a="1"} 4\n'
    assert runner.run_text(script).passed == 1
    res = Runner(_Shifty(runner.engine, **kw)).run_text(script)
    assert res.failed == 1 and res.failures[0].category == category, [f.format() for f in res.failures]


# --- our own scripts against real Prometheus 2.42 (promtool test rules) ----------------------------
_DIFFERS = "# 2.42 differs:"


def _notation(ts_ms: list[int], values: list[float], interval: int) -> str:
    from promlab.promql.promqltest.compare import format_value

    slots = ["_"] * (max(ts_ms) // interval + 1)
    for t, v in zip(ts_ms, values, strict=True):
        slots[t // interval] = format_value(v)
    return " ".join(slots)


def _all_pinned(text: str) -> bool:
    """Whether every selector of ``text`` has a numeric ``@`` (its value ignores the eval time)."""
    from promlab.promql.parser import parse_expr

    stack: list[ast.Expr] = [parse_expr(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.VectorSelector) and node.at_ms is None:
            return False
        if isinstance(node, ast.SubqueryExpr) and node.at_ms is not None:
            continue
        stack.extend(ast.children(node))
    return True


def _promtool_suite(path: Path) -> tuple[dict[str, object], int]:
    """A ``promtool test rules`` file for the instant evals of one of our scripts.

    Evals preceded by a ``# 2.42 differs: ...`` comment are left out (Prometheus 3 changed their
    semantics). promtool loads samples lazily up to the evaluation time, so a query whose
    selectors are all pinned with ``@`` is evaluated at the end of the data instead.
    """
    text = path.read_text()
    raw = [ln.strip() for ln in text.split("\n")]
    script = parse_script(text, path.name)
    tests: list[dict[str, object]] = []
    loads: list[LoadCmd] = []
    for cmd in script.commands:
        if isinstance(cmd, ClearCmd):
            loads = []
            continue
        if isinstance(cmd, LoadCmd):
            loads.append(cmd)
            continue
        ev = cmd
        if (ev.is_range or ev.is_fail or ev.expected_string is not None or ev.range_vector
                or raw[ev.line - 2].startswith(_DIFFERS) or len({ld.interval_ms for ld in loads}) != 1):
            continue
        interval = loads[0].interval_ms
        series = [s for ld in loads for s in ld.series.values() if s.ts_ms]
        last = max(max(s.ts_ms) for s in series)
        if ev.expect_scalar:
            samples = [{"labels": "{}", "value": ev.expected_scalar}]
        else:
            samples = [{"labels": str(ls) if len(ls) else "{}", "value": vals[0]}
                       for ls, (_, vals) in ev.expected.items()]
        if any(isinstance(s["value"], float) and math.isnan(s["value"]) for s in samples):
            continue
        eval_ms = max(ev.eval_ms, last) if _all_pinned(ev.expr) else ev.eval_ms
        tests.append({
            "name": f"{path.name}:{ev.line}",
            "interval": f"{interval}ms",
            "input_series": [{"series": str(s.labels), "values": _notation(s.ts_ms, s.values, interval)}
                             for s in series],
            "promql_expr_test": [{"expr": ev.expr, "eval_time": f"{eval_ms}ms", "exp_samples": samples}],
        })
    # A 1s evaluation interval: promtool's lazy loader only advances by whole intervals.
    return {"rule_files": [], "evaluation_interval": "1s", "tests": tests}, len(tests)


@pytest.mark.realprom
@pytest.mark.parametrize("path", OWN_FILES, ids=[p.name for p in OWN_FILES])
def test_own_script_agrees_with_prometheus_2_42(path: Path, tmp_path: Path, require_binary) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    import yaml

    promtool = require_binary("promtool")
    suite, count = _promtool_suite(path)
    if count == 0:
        pytest.skip("no eval of this script has the same semantics in Prometheus 2.42")
    rules = tmp_path / "suite.yml"
    rules.write_text(yaml.safe_dump(suite, sort_keys=False))
    proc = subprocess.run([promtool, "test", "rules", str(rules)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_runner_has_teeth(runner) -> None:  # type: ignore[no-untyped-def]
    """Perturbing every expected value or label set of a corpus file makes those evals fail."""
    path = CORPUS / "name_label_dropping.test"
    if not path.is_file():
        _corpus_missing()
    from promlab.promql.promqltest.runner import FileResult

    for how in ("value", "label"):
        script = parse_script(path.read_text(), path.name)
        touched = 0
        for ev in script.evals:
            if how == "value":
                new = {ls: (pos, [v * 1.01 + 1 if isinstance(v, float) else v for v in vals])
                       for ls, (pos, vals) in ev.expected.items()}
            else:
                new = {ls.set("extra", "x"): entry for ls, entry in ev.expected.items()}
            touched += bool(new)
            ev.expected = new
        res = FileResult(path.name)
        runner.run_script(script, res)
        assert touched > 20
        assert res.failed == touched, (how, res.summary())
