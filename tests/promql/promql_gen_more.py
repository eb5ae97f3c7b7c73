"""Further corners for the differential fuzzer's generator (:mod:`tests.promql.promql_gen`):
number literal spellings (durations as numbers too) and string literals, ``label_replace`` with
anchored regexes and empty matches, ``absent``/``absent_over_time`` label derivation from
repeated and regex matchers, ``changes``/``resets`` over NaN and the ends of series,
``predict_linear``/``holt_winters`` at the edges of their arguments, classic buckets with NaN
counts, ``@``/``offset`` inside and outside subqueries (pinned nodes below subqueries whose
offset leaves their start unmoved), matching on or ignoring ``__name__``,
and unary minus where the name matters."""

from __future__ import annotations

from tests.promql.promql_gen_odd import _Gen

__all__ = ["more"]

NUMBER_SPELLINGS = ["0x10", "0XfF", "1e3", "1E-3", "1e+2", ".5", "5.", "-.5e1", "Inf", "-inf",
                    "+Inf", "NaN", "nAn", "0.0", "-0", "007", "1.5e308", "1h30m", "1y", "90s",
                    "1500ms", "2d", "1w"]
STRINGS = ['"hello"', "'single'", "`raw\\n`", '"a\\tb"', '""', '"\\u00e9"', '"\\x41\\101"']
ANCHORED = ["^(.*)$", "^", "$", "", "^$", "^a", "i$", "(^a)|(b$)", "^(a|w)(.*)", ".*?",
            "(x)?", "()", "(.*?)(p)?(i)?$", "\\\\b", "^api$|^web$"]
REPLACEMENTS = ["$1", "[$1]", "$2", "${1}${2}", "", "x", "$0", "$1-$3"]
ABSENT_MATCHERS = ['a="1", a="1"', 'a="1", a="2"', 'a="1", a=~"1"', 'a=~"x", b="2", b="2"',
                   'a=~"1|2"', 'a!="1", b="2"', 'a="", b="2"', 'job="x", job=~"x"',
                   '__name__="nonexistent", __name__="nonexistent"', 'a=~".*", b="3"']
CHANGING = ['g{kind="special"}', "0 / g", 'g{kind="special"} * 0', "short", "short - 40",
            'c_total{job="web"}', "(g > 0)", 'm{a="1"} / (m{a="1"} - 2)', "-c_total"]
EDGE_TIMES = ["NaN", "Inf", "-Inf", "1e308", "-0", "0.001", "-1e300", "scalar(short) * 60"]
FACTORS = ["1e-9", "0.999999999", "0.5", "NaN", "0.1"]


def more(g: _Gen, d: int) -> str:
    """One of the corners above, over sub-expressions of depth ``d``."""
    return _BRANCHES[g.r.randrange(len(_BRANCHES))](g, d)


def _literals(g: _Gen, d: int) -> str:
    x = g.pick(NUMBER_SPELLINGS)
    roll = g.r.randrange(4)
    if roll == 0:
        return f"vector({x})"
    if roll == 1:
        return f"({g.vector(d)} {g.pick(['+', '*', '>', '== bool', '%'])} {x})"
    if roll == 2:
        return f"vector({x} {g.pick(['+', '-', '/', '< bool', '^'])} {g.pick(NUMBER_SPELLINGS)})"
    return f"label_replace({g.vector(d)}, \"s\", {g.pick(STRINGS)}, \"\", \"\")"


def _anchored(g: _Gen, d: int) -> str:
    src = g.pick(["job", "kind", "instance", "missing", "__name__", "c"])
    dst = g.pick(["dst", src, "job"])
    return (f'label_replace({g.vector(d)}, "{dst}", "{g.pick(REPLACEMENTS)}", "{src}", '
            f'"{g.pick(ANCHORED)}")')


def _absent(g: _Gen, d: int) -> str:
    sel = f"nonexistent{{{g.pick(ABSENT_MATCHERS)}}}"
    roll = g.r.randrange(4)
    if roll == 0:
        return f"absent({sel})"
    if roll == 1:
        return f"absent_over_time({sel}[{g.pick(['1m', '5m'])}])"
    if roll == 2:
        return f"absent_over_time(({sel})[5m:{g.pick(['', '1m'])}])"
    return f"absent({g.pick(['abs', 'sgn', '-', 'sort'])}({sel}))"


def _changes(g: _Gen, d: int) -> str:
    fn = g.pick(["changes", "resets"])
    inner = g.pick(CHANGING)
    rng = g.pick(["3m", "10m", "20m", "1h"])
    if inner in ("short", 'c_total{job="web"}', "-c_total") and g.r.random() < 0.5:
        return f"{fn}({inner}[{rng}]{g.pick(['', ' offset 5m', ' @ end()'])})"
    return f"{fn}(({inner})[{rng}:{g.pick(['', '1m', '2m'])}])"


def _smoothing(g: _Gen, d: int) -> str:
    sel = g.pick(['g{kind="flat"}', 'g{kind="special"}', "short", "c_total", "g"])
    rng = g.pick(["1m", "2m", "10m", "30m"])
    if g.r.random() < 0.5:
        return f"predict_linear({sel}[{rng}], {g.pick(EDGE_TIMES)})"
    return f"holt_winters({sel}[{rng}], {g.pick(FACTORS)}, {g.pick(FACTORS)})"


def _nan_buckets(g: _Gen, d: int) -> str:
    le = g.pick(["0.1", "0.5", "2.5", "+Inf"])
    q = g.pick(["0", "0.25", "0.5", "0.99", "1", "NaN"])
    one, rest = f'h_bucket{{le="{le}"}}', f'h_bucket{{le!="{le}"}}'
    form = g.pick([f"({one} * NaN or {rest} * 1)", f"({one} / 0 or {rest} * 1)",
                   "(h_bucket * NaN)", f"({rest} * 1)", f"({one} - 1e9 or {rest} * 1)"])
    return f"histogram_quantile({q}, {form})"


def _at_offset_subquery(g: _Gen, d: int) -> str:
    at = g.pick(["@ start()", "@ end()"])
    off = g.pick(["offset 2m", "offset -2m", "offset 1h", "offset -30m"])
    inner = g.pick([f"g {at}", f"c_total {at} {off}", f"rate(c_total[5m] {at})",
                    f"g {off}", g.vector(d)])
    fn = g.pick(["max_over_time", "count_over_time", "last_over_time", "sum_over_time"])
    outer = g.pick([f" {at}", f" {off}", f" {at} {off}", f" {off} {at}", ""])
    return f"{fn}(({inner})[{g.pick(['5m', '10m'])}:{g.pick(['1m', ''])}]{outer})"


def _pinned_unmoved(g: _Gen, d: int) -> str:
    """A node pinned with @ below subqueries whose offset leaves their aligned start where
    the evaluating range starts (queries at :50 are on a 10 s grid), one or two deep."""
    rng, off = g.pick(["1m:10s -55s", "5m:10s -4m55s", "30s:10s -25s", "2m:20s -1m45s",
                       "1m:10s -45s"]).split()
    pinned = g.pick([f"g @ {g.pick(['start()', 'end()', '1700001230'])}",
                     "rate(c_total[5m] @ end())", "(c_total @ 1700001230 offset 1m)",
                     "timestamp(short @ end())"])
    fn = g.pick(["max_over_time", "count_over_time", "last_over_time", "sum_over_time"])
    inner = f"{fn}(({pinned})[{rng}] offset {off})"
    if g.r.random() < 0.4:
        return f"{g.pick(['max_over_time', 'min_over_time'])}(({inner})[{rng}] offset {off})"
    return inner


def _names(g: _Gen, d: int) -> str:
    a = g.pick(["dup_a", '{__name__=~"dup_.*"}', "g", "-dup_a", "(dup_a > 3)", "c_total"])
    b = g.pick(["dup_b", '{__name__=~"dup_.*"}', "g", "vector(1)", "(dup_b > bool 3)", "m"])
    match = g.pick([" on(__name__)", " ignoring(__name__)", " on(__name__, job)",
                    " ignoring(__name__, job)", " on(job) group_left(__name__)",
                    " ignoring(__name__) group_right"])
    op = g.pick(["+", "==", "> bool", "and", "or", "unless", "/"])
    if g.r.random() < 0.3:
        return f"-({a} {op}{match} {b})"
    return f"({a} {op}{match} {b})"


def _unary(g: _Gen, d: int) -> str:
    x = g.pick(['{__name__=~"dup_.*"}', "g", "(g > 0)", "-g", "c_total offset 1m",
                'label_replace(g, "__name__", "x", "", "")', "sort(g)", g.vector(d)])
    form = g.pick(["-{x}", "- -{x}", "sum by (__name__) (-{x})", "count by (__name__) (-{x})",
                   "-{x} > 0", "topk(1, -{x})", "-(-{x})", "count_values(\"v\", -{x})"])
    return form.format(x=x)


_BRANCHES = [_literals, _anchored, _absent, _changes, _smoothing, _nan_buckets,
             _at_offset_subquery, _names, _unary, _pinned_unmoved]
