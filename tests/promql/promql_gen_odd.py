"""More corners for the differential fuzzer's generator (:mod:`tests.promql.promql_gen`):
functions given NaN, infinite, negative or tiny arguments, regexes Go's RE2 reads its own way,
``offset`` together with ``@ start()``/``@ end()``, subqueries inside subqueries (with ranges
and offsets that keep every window edge off the step grids, so 2.42's closed windows and 3.x's
left-open ones agree), sorts of more than 12 samples with NaNs and ties, ``bool`` comparisons
of scalars, set operators over series that collide once their name is dropped, and
``group_left``/``group_right`` copying ``__name__`` and several labels."""

from __future__ import annotations

import random
from typing import Protocol

__all__ = ["SAFE_NESTED_RANGE", "odd"]

# A subquery range of whole minutes and a half: windows start at :20 or :30 past a minute, so
# on a grid of whole minutes (and at queries at :50) no window edge meets a grid point.
SAFE_NESTED_RANGE = r"\d+m30s"

ODD_NUMBERS = ["NaN", "Inf", "-Inf", "-0", "0", "1e-300", "-1e300", "4.9e-324", "0.999999999"]
ODD_REGEXES = ["(", "\\\\", "[[:alpha:]]+", "\\\\d+", "\\\\pL+", "(?i)WEB", "a{2,}", "^$",
               "(?s).*", "[^a]*", ".*?", "(?U)a+", "\\\\Q.\\\\E", "(|a)+", "((a)|b)*",
               "\\\\x{61}pi", "[[:^digit:]]*", "(?m)^api$", "*", "a**", "\\\\8", "(?P<x>a)",
               "[a-", "\\\\b", "x{1001}", "é|ü.*"]
MANY = '{__name__=~"g|m|h_bucket"}'  # 16 series, so a sort of them is pdqsort's
DUPLICATES = ['abs({__name__=~"dup_.*"})', '{__name__=~"dup_.*"}',
              '{__name__=~"dup_.*"} offset 1m', '({__name__=~"dup_.*"} * 2)']


class _Gen(Protocol):
    r: random.Random

    def pick(self, xs: list[str]) -> str: ...

    def vector(self, depth: int) -> str: ...

    def matrix(self, depth: int) -> str: ...


def odd(g: _Gen, d: int) -> str:
    """One of the corners above, over sub-expressions of depth ``d``."""
    return _BRANCHES[g.r.randrange(len(_BRANCHES))](g, d)


def _odd_args(g: _Gen, d: int) -> str:
    x = g.pick(ODD_NUMBERS)
    fn = g.pick(["clamp", "clamp_min", "clamp_max", "round", "predict_linear", "holt_winters",
                 "histogram_quantile", "quantile_over_time", "quantile", "topk"])
    if fn == "clamp":
        return f"clamp({g.vector(d)}, {x}, {g.pick(ODD_NUMBERS)})"
    if fn in ("clamp_min", "clamp_max", "round"):
        return f"{fn}({g.vector(d)}, {x})"
    if fn == "predict_linear":
        return f"predict_linear({g.matrix(d)}, {x})"
    if fn == "holt_winters":
        return f"holt_winters({g.matrix(d)}, {x}, {g.pick(['0.5', '1e-9', '0.999999999'])})"
    if fn == "histogram_quantile":
        return f"histogram_quantile({x}, {g.pick(['rate(h_bucket[5m])', 'h_bucket'])})"
    if fn == "quantile_over_time":
        return f"quantile_over_time({x}, {g.matrix(d)})"
    return f"{fn}({x}, {g.vector(d)})"


def _odd_regex(g: _Gen, d: int) -> str:
    src = g.pick(["job", "kind", "__name__", "d", "le", "missing"])
    repl = g.pick(["$1", "$0", "x", "${1}", ""])
    regex = g.pick(ODD_REGEXES)
    if g.r.random() < 0.3:  # the same regexes in a matcher
        return f'{g.pick(["g", "c_total", "m"])}{{{src}=~"{regex}"}}'
    return f'label_replace({g.vector(d)}, "dst", "{repl}", "{src}", "{regex}")'


def _gaps(g: _Gen, d: int) -> str:
    """changes/resets/absent_over_time over the counter with a gap, the short series and the
    reset counters, near their edges."""
    fn = g.pick(["changes", "resets", "absent_over_time", "present_over_time", "idelta"])
    sel = g.pick(['c_total{job="web"}', "short", 'c_total{instance="a"}', "c_total"])
    rng = g.pick(["1m", "5m", "10m", "20m"])
    mod = g.pick(["", " offset 10m", " offset -5m", " @ end()", " @ start() offset -8m"])
    if g.r.random() < 0.3:
        return f"{fn}(({sel} - {sel} offset 1m)[{rng}:1m]{mod})"
    return f"{fn}({sel}[{rng}]{mod})"


def _at_offset(g: _Gen, d: int) -> str:
    """offset with @ start()/end(), in either order, on selectors, ranges and subqueries."""
    at = g.pick(["@ start()", "@ end()"])
    off = g.pick(["offset 3m", "offset -3m", "offset 90s", "offset -1h", "offset 1h"])
    mods = f"{at} {off}" if g.r.random() < 0.5 else f"{off} {at}"
    roll = g.r.randrange(3)
    if roll == 0:
        return f"{g.pick(['g', 'c_total', 'short', 'm'])} {mods}"
    if roll == 1:
        fn = g.pick(["rate", "max_over_time", "count_over_time", "last_over_time"])
        return f"{fn}({g.pick(['c_total', 'g', 'short'])}[5m] {mods})"
    fn = g.pick(["max_over_time", "count_over_time", "last_over_time", "changes"])
    return f"{fn}(({g.vector(d)})[10m:1m] {mods})"


def _nested(g: _Gen, d: int) -> str:
    """A subquery inside a subquery, both with ranges of whole minutes and a half, steps and
    offsets of whole minutes (see :data:`SAFE_NESTED_RANGE`)."""
    fn1 = g.pick(["max_over_time", "rate", "sum_over_time", "count_over_time", "deriv",
                  "last_over_time"])
    fn2 = g.pick(["max_over_time", "min_over_time", "avg_over_time", "count_over_time",
                  "changes", "last_over_time", "quantile_over_time"])
    arg2 = "0.5, " if fn2 == "quantile_over_time" else ""
    off1 = g.pick(["", " offset 2m", " offset -1m", " offset 5m"])
    off2 = g.pick(["", " offset 1m", " offset -3m"])
    r1, r2 = g.pick(["2m30s", "5m30s", "3m30s"]), g.pick(["10m30s", "7m30s", "15m30s"])
    s1, s2 = g.pick(["1m", "2m"]), g.pick(["1m", "3m"])
    inner = f"{fn1}(({g.vector(d)})[{r1}:{s1}]{off1})"
    return f"{fn2}({arg2}({inner})[{r2}:{s2}]{off2})"


def _many_sorted(g: _Gen, d: int) -> str:
    form = g.pick(["{s}", "{s} * 0", "0 / {s}", "{s} / 0", "round({s} / 1e6)", "sgn({s})",
                   "clamp({s}, 0, 1)", "{s} > bool 3", "{s} % 2", "ln({s})"])
    return f"{g.pick(['sort', 'sort_desc'])}({form.format(s=MANY)})"


def _scalar_bool(g: _Gen, d: int) -> str:
    op = g.pick(["==", "!=", ">", "<", ">=", "<="])
    a = g.pick([*ODD_NUMBERS, "scalar(g)", "time()", 'scalar(g{kind="special"})'])
    b = g.pick([*ODD_NUMBERS, "scalar(short)", "-0 * 1"])
    return f"({a} {op} bool {b})" if g.r.random() < 0.6 else f"vector({a} {op} bool {b})"


def _set_duplicates(g: _Gen, d: int) -> str:
    op = g.pick(["and", "or", "unless"])
    match = g.pick([" on()", " ignoring(__name__)", " on(job)", " ignoring(job)", "",
                    " on(__name__)"])
    dup = g.pick(DUPLICATES)
    other = g.pick([g.vector(d), "vector(1)", 'short', '{__name__=~"dup_a"}'])
    return f"({dup} {op}{match} {other})" if g.r.random() < 0.5 else f"({other} {op}{match} {dup})"


def _group_name(g: _Gen, d: int) -> str:
    extra = g.pick(["__name__", "__name__, version", "version, __name__, instance", "__name__, le",
                    "job, __name__"])
    side, one = g.pick([("group_left", "info_metric"), ("group_right", "info_metric")]), \
        g.pick(["c_total", "h_count", "short", g.vector(d)])
    op = g.pick(["*", "+", "== bool", "and", ">"])
    if side == "group_left":
        return f"({one} {op} on(job) group_left({extra}) info_metric)"
    return f"(info_metric {op} on(job) group_right({extra}) {one})"


_BRANCHES = [_odd_args, _odd_regex, _gaps, _at_offset, _nested, _many_sorted, _scalar_bool,
             _set_duplicates, _group_name]
