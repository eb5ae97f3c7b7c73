"""The differential fuzzer's dataset and expression generator (see test_differential_fuzz.py;
the hand-written cases are in :mod:`tests.promql.promql_handwritten`).

Samples sit 7 s after each whole minute and queries run 50 s after one (a time no subquery
step of 15 s or whole minutes reaches), so no sample or subquery step lies on a window boundary:
Prometheus 3's left-open windows (promlab) and 2.42's closed ones select the same samples.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np

from tests.promql.promql_gen_more import more
from tests.promql.promql_gen_odd import odd

SEED = 20_261_206

T0_S = 1_699_999_200  # a whole hour
MINUTES = 60
# Minutes of flat history before T0 (each series repeats its first value), so no window of a
# generated query starts before the data: rate/increase extrapolate there differently in 2.42
# (zero point before the threshold test) and 3.x.
HISTORY = 40
OFF_S = 7  # samples at T0 + 60 k + 7 s
INSTANT_S = T0_S + 45 * 60 + 50
RANGE = (T0_S + 20 * 60 + 50, T0_S + 50 * 60 + 50, 180)  # 11 steps, all at :50
AT_S = T0_S + 33 * 60 + 50

# --- the dataset ----------------------------------------------------------------------------


def _counter(rng: np.random.Generator, resets: tuple[int, ...] = ()) -> list[float | None]:
    out: list[float | None] = []
    v = 0.0
    for k in range(MINUTES):
        v = 0.0 if k in resets else v + float(rng.integers(0, 40))
        out.append(v)
    return out


def _dataset() -> list[tuple[str, dict[str, str], list[float | None]]]:
    """(metric name, labels, value per minute; None = no sample)."""
    rng = np.random.default_rng(SEED)
    nan, inf = math.nan, math.inf
    gap = _counter(rng)
    for k in range(15, 30):
        gap[k] = None
    special: list[float | None] = [float(x) for x in np.round(rng.normal(0, 50, MINUTES), 2)]
    for k, v in ((3, nan), (10, inf), (22, -inf), (31, nan), (40, inf), (44, nan), (46, -inf),
                 (47, nan)):
        special[k] = v
    short: list[float | None] = [None] * MINUTES
    for k in range(38, 44):
        short[k] = float(k)
    data: list[tuple[str, dict[str, str], list[float | None]]] = [
        ("c_total", {"job": "api", "instance": "a"}, _counter(rng, (20, 41))),
        ("c_total", {"job": "api", "instance": "b"}, _counter(rng)),
        ("c_total", {"job": "web", "instance": "a"}, gap),
        ("c_total", {"job": "web", "instance": "c"}, _counter(rng, (44,))),
        ("g", {"kind": "temp", "host": "h1"},
         [float(x) for x in np.round(rng.normal(20, 5, MINUTES), 3)]),
        ("g", {"kind": "special", "host": "h1"}, special),
        ("g", {"kind": "flat", "host": "h2"}, [3.0] * MINUTES),
        ("g", {"kind": "neg", "host": "h2"},
         [float(x) for x in np.round(-rng.uniform(0.001, 1e6, MINUTES), 4)]),
        ("g", {"kind": "frac", "host": "h3"}, [float(k % 7) * 0.25 - 0.75 for k in range(MINUTES)]),
        ("m", {"a": "1", "b": "x", "c": "y y", "d": "ü/é", "e": "1.0"},
         [float(k % 5) for k in range(MINUTES)]),
        ("m", {"a": "2", "b": "x", "c": "", "d": "d2", "e": "-3"},
         [float(-k) for k in range(MINUTES)]),
        ("m", {"a": "3", "b": "z", "d": "d,3", "e": "Inf"}, [0.5] * MINUTES),
        ("dup_a", {"job": "x"}, [float(k) for k in range(MINUTES)]),
        ("dup_b", {"job": "x"}, [float(2 * k) for k in range(MINUTES)]),
        ("info_metric", {"job": "api", "version": "1.2"}, [1.0] * MINUTES),
        ("info_metric", {"job": "web", "version": "2.0"}, [1.0] * MINUTES),
        ("short", {"job": "api"}, short),
    ]
    for job, scale in (("api", 1.0), ("web", 3.0)):
        counts = np.zeros(4)
        rows: list[list[float | None]] = [[] for _ in range(4)]
        total: list[float | None] = []
        for k in range(MINUTES):
            if job == "web" and k == 30:
                counts[:] = 0
            counts += np.cumsum(rng.integers(0, 10, 4) * scale)
            for i in range(4):
                rows[i].append(float(counts[i]))
            total.append(float(counts[3]) * 0.37)
        for le, row in zip(("0.1", "0.5", "2.5", "+Inf"), rows, strict=True):
            data.append(("h_bucket", {"job": job, "le": le}, row))
        data.append(("h_count", {"job": job}, rows[3]))
        data.append(("h_sum", {"job": job}, total))
    return [(name, labels, [values[0]] * HISTORY + values) for name, labels, values in data]


def _om_value(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def write_openmetrics(path: Path) -> None:
    """The dataset as an OpenMetrics file (what promtool and promlab's importer both load)."""
    by_name: dict[str, list[tuple[dict[str, str], list[float | None]]]] = {}
    for name, labels, values in _dataset():
        by_name.setdefault(name, []).append((labels, values))
    lines: list[str] = []
    for name, series in by_name.items():
        lines.append(f"# TYPE {name} unknown")
        for labels, values in series:
            body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            for k, v in enumerate(values):
                if v is not None:
                    ts = T0_S + 60 * (k - HISTORY) + OFF_S
                    lines.append(f"{name}{{{body}}} {_om_value(v)} {ts}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


# --- the expression generator -----------------------------------------------------------------

SELECTORS = [
    "c_total", 'c_total{job="api"}', 'c_total{job=~"w.*"}', "g", 'g{kind!="special"}',
    'g{kind="special"}', "m", 'm{c=""}', 'm{c!=""}', "h_bucket", 'h_bucket{job="api"}',
    "h_count", "h_sum", '{__name__=~"dup_.*"}', "short", "info_metric", "nonexistent",
    '{__name__=~"c_total|g"}', 'g{kind=~"temp|flat"}',
]
MATH = ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "acos", "acosh",
        "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg",
        "rad"]
OVER_TIME = ["avg_over_time", "count_over_time", "last_over_time", "max_over_time",
             "min_over_time", "present_over_time", "stddev_over_time", "stdvar_over_time",
             "sum_over_time", "absent_over_time", "changes", "resets", "delta", "deriv",
             "idelta", "increase", "irate", "rate"]
DATE = ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute",
        "month", "year"]
ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]
COMPARE = ["==", "!=", ">", "<", ">=", "<="]
AGGS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
LABEL_NAMES = ["job", "instance", "kind", "host", "le", "a", "b", "c", "__name__", "version"]
RANGES = ["1m", "2m", "5m", "10m", "15m"]
NUMBERS = ["0", "1", "2", "0.5", "-1", "10", "1e3", "0.25", "3", "-0.5"]
# Selectors of one series each (a scalar() of them changes from step to step).
SINGLES = ['g{kind="frac"}', 'm{a="1"}', 'g{kind="special"}', "short", 'm{a="2"}',
           'g{kind="temp"}']
QUANTILES = ["0", "0.1", "0.5", "0.9", "0.99", "1", "-1", "2", "NaN"]
# Number spellings: hex, exponents, leading dot, Inf/NaN in any case, signs.
LITERALS = ["0x1f", "0X0A", "1e3", "1E-2", ".5", "5.", "Inf", "-Inf", "+Inf", "NaN", "nan",
            "iNf", "-0", "+2", "1e308", "4.9e-324", "0x0"]
# Ranges in several units and compound spellings (none puts a window edge on a sample at :07).
ODD_DURATIONS = ["1h", "1h30m", "90s", "30s", "5m30s", "1500ms", "2m15s", "1d", "300s", "1w"]
ABSENT_SELECTORS = ['nonexistent{job="x"}', 'nonexistent{job="x", job="y"}',
                    'nonexistent{job=~"x", kind="k"}', 'nonexistent{job!="x"}',
                    '{__name__="nonexistent", a="1"}', 'nonexistent{__name__=~"n.*", b="2"}',
                    'g{kind="none"}', 'short{job="api"}', 'g']
ABSENT_ARGS = [*ABSENT_SELECTORS, 'nonexistent{job="x"} offset 5m', 'nonexistent{job="x"} @ end()', 'sum(nonexistent{job="x"})', 'rate(nonexistent{a="b"}[5m])', 'nonexistent{job="x"} + 1', 'label_replace(nonexistent{a="b"}, ' '"c", "d", "", "")', 'short{job="api"} @ start()', 'vector(1) and nonexistent']


class Gen:
    """Random, well-typed (mostly) PromQL over :data:`SELECTORS`."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def pick(self, xs: list[str]) -> str:
        return self.r.choice(xs)

    def modifiers(self) -> str:
        out = ""
        roll = self.r.random()
        if roll < 0.12:
            out += f" offset {self.pick(['1m', '5m', '-2m', '90s'])}"
        elif roll < 0.2:
            out += f" @ {self.pick(['start()', 'end()', str(AT_S)])}"
        elif roll < 0.24:
            out += f" @ {self.pick(['start()', 'end()'])} offset 3m"
        return out

    def selector(self) -> str:
        return self.pick(SELECTORS) + self.modifiers()

    def matrix(self, depth: int) -> str:
        if depth > 0 and self.r.random() < 0.25:
            inner = self.vector(depth - 1)
            step = self.pick(["1m", "2m", "", "3m"])
            return f"({inner})[{self.pick(['5m', '10m', '7m'])}:{step}]" + self.modifiers()
        return f"{self.pick(SELECTORS)}[{self.pick(RANGES)}]" + self.modifiers()

    def scalar(self, depth: int) -> str:
        roll = self.r.random()
        if depth <= 0 or roll < 0.45:
            return self.pick(NUMBERS)
        if roll < 0.6:
            return f"scalar({self.vector(depth - 1)})"
        if roll < 0.68:
            return self.pick(["time()", "pi()"])
        if roll < 0.85:
            op = self.pick(ARITH + [c + " bool" for c in COMPARE])
            return f"({self.scalar(depth - 1)} {op} {self.scalar(depth - 1)})"
        return f"-{self.scalar(depth - 1)}"

    def grouping(self) -> str:
        if self.r.random() < 0.4:
            return ""
        names = self.r.sample(LABEL_NAMES, self.r.randint(0, 3))
        return f" {self.pick(['by', 'without'])} ({', '.join(names)})"

    def matching(self) -> str:
        roll = self.r.random()
        if roll < 0.45:
            return ""
        names = ", ".join(self.r.sample(LABEL_NAMES[:8], self.r.randint(0, 2)))
        kind = "on" if roll < 0.75 else "ignoring"
        out = f" {kind}({names})"
        if self.r.random() < 0.3:
            extra = ", ".join(self.r.sample(["version", "instance", "kind"], self.r.randint(0, 1)))
            out += f" {self.pick(['group_left', 'group_right'])}({extra})"
        return out

    def vector(self, depth: int) -> str:
        if depth <= 0:
            return self.selector()
        roll = self.r.randrange(32)
        d = depth - 1
        if roll >= 30:
            return more(self, d)
        if roll >= 28:
            return odd(self, d)
        if roll >= 26:
            return self.wide(d)
        if roll >= 23:
            return self.corner(d)
        if roll >= 20:
            return self.edge(d)
        if roll == 0:
            return self.selector()
        if roll == 1:
            return f"{self.pick(MATH)}({self.vector(d)})"
        if roll in (2, 3):
            return f"{self.pick(OVER_TIME)}({self.matrix(d)})"
        if roll == 4:
            fn = self.pick(["quantile_over_time", "predict_linear", "holt_winters"])
            if fn == "quantile_over_time":
                return f"quantile_over_time({self.pick(QUANTILES)}, {self.matrix(d)})"
            if fn == "predict_linear":
                return f"predict_linear({self.matrix(d)}, {self.pick(['0', '60', '-300', '3600'])})"
            return (f"holt_winters({self.matrix(d)}, {self.pick(['0.1', '0.5', '0.9'])}, "
                    f"{self.pick(['0.1', '0.5', '0.9'])})")
        if roll in (5, 6):
            agg = self.pick(AGGS)
            return f"{agg}{self.grouping()} ({self.vector(d)})"
        if roll == 7:
            agg = self.pick(["topk", "bottomk", "quantile", "count_values"])
            param = {"topk": self.pick(["1", "2", "0", "-1", "1.5", "100"]),
                     "bottomk": self.pick(["1", "2", "3"]),
                     "quantile": self.pick(QUANTILES),
                     "count_values": self.pick(['"value"', '"job"', '"le"'])}[agg]
            return f"{agg}{self.grouping()} ({param}, {self.vector(d)})"
        if roll in (8, 9):
            op = self.pick(ARITH)
            if self.r.random() < 0.5:
                return f"({self.vector(d)} {op} {self.scalar(d)})"
            return f"({self.scalar(d)} {op} {self.vector(d)})"
        if roll == 10:
            op = self.pick(COMPARE) + self.pick(["", " bool"])
            if self.r.random() < 0.6:
                return f"({self.vector(d)} {op} {self.scalar(d)})"
            return f"({self.scalar(d)} {op} {self.vector(d)})"
        if roll in (11, 12):
            op = self.pick(ARITH + COMPARE + [c + " bool" for c in COMPARE])
            return f"({self.vector(d)} {op}{self.matching()} {self.vector(d)})"
        if roll == 13:
            op = self.pick(["and", "or", "unless"])
            match = self.pick(["", "", " on(job)", " ignoring(instance)", " on()"])
            return f"({self.vector(d)} {op}{match} {self.vector(d)})"
        if roll == 14:
            return self.label_fn(d)
        if roll == 15:
            fn = self.pick(["sort", "sort_desc", "timestamp", "absent", "-", "round", "clamp"])
            if fn == "round":
                return f"round({self.vector(d)}, {self.pick(['0.1', '5', '-1', '0'])})"
            if fn == "clamp":
                return f"clamp({self.vector(d)}, {self.pick(['-1', '0', '5'])}, " \
                       f"{self.pick(['10', '0', '-5'])})"
            if fn == "-":
                return f"-{self.vector(d)}"
            return f"{fn}({self.vector(d)})"
        if roll == 16:
            fn = self.pick(["clamp_min", "clamp_max"])
            return f"{fn}({self.vector(d)}, {self.scalar(d)})"
        if roll == 17:
            return f"{self.pick(DATE)}({self.pick(['', self.vector(d)])})"
        if roll == 18:
            q = self.pick(QUANTILES)
            inner = self.pick(["rate(h_bucket[5m])", "h_bucket", "sum by (le) (rate(h_bucket[10m]))",
                               "sum by (le, job) (increase(h_bucket[5m] offset 5m))",
                               f"({self.vector(d)})"])
            return f"histogram_quantile({q}, {inner})"
        return f"vector({self.scalar(d)})"

    def edge(self, d: int) -> str:
        """Rarer corners: k beyond int64 or taken from a scalar, le labels Go's ParseFloat reads
        its own way, smoothing factors out of range or NaN, odd regexes and replacements."""
        roll = self.r.randrange(4)
        if roll == 0:
            k = self.pick(["Inf", "1e300", "0.9", "2^62", f"scalar({self.vector(d)})"])
            return f"{self.pick(['topk', 'bottomk'])}{self.grouping()} ({k}, {self.vector(d)})"
        if roll == 1:
            le = self.pick(["1_0", " 1", "0x1p1", "1e400", "+nan", "-Inf", "abc", "1e-3", "-1"])
            base = self.pick(["h_bucket", "rate(h_bucket[5m])", "h_bucket offset 5m"])
            src = self.pick(["0.1", "0.5", "2.5", ".*"])
            return f'histogram_quantile({self.pick(QUANTILES)}, ' \
                   f'label_replace({base}, "le", "{le}", "le", "{src}"))'
        if roll == 2:
            sf = self.pick(["0.5", "1", "0", "-0.1", "NaN", "1.5", f"scalar({self.vector(d)})"])
            tf = self.pick(["0.1", "0.9", "1", "0"])
            return f"holt_winters({self.matrix(d)}, {sf}, {tf})"
        src = self.pick(["job", "kind", "le", "c", "d", "e", "__name__"])
        regex = self.pick(["(?i)API", "t|", "\\\\w+", "(?P<n>.)(.*)", "(.*)?", "[a-z]+(.)", "x*",
                           "(a)|(b)", "ü(.*)"])
        repl = self.pick(["$0", "${n}", "$2", "$1$2", "$$1", "$n", "$", "${2}x"])
        dst = self.pick(["dst", "job", "le", "kind"])
        return f'label_replace({self.vector(d)}, "{dst}", "{repl}", "{src}", "{regex}")'

    def corner(self, d: int) -> str:
        """Language corners: literal spellings, odd durations, subquery modifiers, matching
        with several extra labels, absent's label derivation, label functions writing
        ``__name__`` or invalid names, timestamp over @/offset, count_values/quantile/topk with
        computed parameters."""
        roll = self.r.randrange(10)
        if roll == 0:
            lit = self.pick(LITERALS)
            return f"({self.vector(d)} {self.pick(ARITH + COMPARE)} {lit})"
        if roll == 1:
            fn = self.pick([*OVER_TIME, "quantile_over_time"])
            arg = "0.5, " if fn == "quantile_over_time" else ""
            rng = self.pick(ODD_DURATIONS)
            if self.r.random() < 0.5:
                return f"{fn}({arg}{self.pick(SELECTORS)}[{rng}]{self.modifiers()})"
            step = self.pick(["", "30s", "90s", "1m30s", "20m", "2m"])
            return f"{fn}({arg}({self.vector(d)})[{rng}:{step}]{self.sub_modifiers()})"
        if roll == 2:
            names = ", ".join(self.r.sample(LABEL_NAMES, self.r.randint(0, 3)))
            extra = ", ".join(self.r.sample(["version", "instance", "kind", "__name__", "le",
                                             "job", "missing"], self.r.randint(1, 3)))
            op = self.pick(ARITH + COMPARE + [c + " bool" for c in COMPARE])
            return f"({self.vector(d)} {op} {self.pick(['on', 'ignoring'])}({names}) " \
                   f"{self.pick(['group_left', 'group_right'])}({extra}) {self.vector(d)})"
        if roll == 3:
            inner = self.pick(ABSENT_ARGS)
            if self.r.random() < 0.3:
                inner = f"{self.pick(MATH)}({inner})"
            return f"absent({inner})"
        if roll == 4:
            inner = self.pick(ABSENT_ARGS)
            sub = self.pick(["", ":", ":1m"])
            if sub:
                return f"absent_over_time(({inner})[5m{sub}]{self.sub_modifiers()})"
            return f"absent_over_time({self.pick(ABSENT_SELECTORS)}[{self.pick(RANGES)}]" \
                   f"{self.modifiers()})"
        if roll == 5:
            dst = self.pick(["__name__", "dst", "1x", "a-b", "_ok", "le", "job", ""])
            repl = self.pick(["", "$1", "new_name", "9bad", "$0", "x$1"])
            src = self.pick(["__name__", "job", "kind", "missing", "le"])
            regex = self.pick(["", ".*", "(.*)", "c_(.*)", "(.+)", "^g$", "x?", "(?:)"])
            if self.r.random() < 0.5:
                return f'label_replace({self.vector(d)}, "{dst}", "{repl}", "{src}", "{regex}")'
            srcs = ", ".join(f'"{s}"' for s in self.r.sample(["__name__", "job", "kind",
                                                              "missing", ""], 2))
            return f'label_join({self.vector(d)}, "{dst}", "{self.pick(["", "-", "/"])}", {srcs})'
        if roll == 6:
            sel = self.pick(SELECTORS)
            mods = self.pick([" offset -3m", " offset 90s", " @ start()", " @ end()",
                              f" @ {AT_S} offset -1m", " offset 1h", " @ end() offset 1m30s",
                              f" @ {AT_S}.5", " offset -1h"])
            if self.r.random() < 0.5:
                return f"timestamp({sel}{mods})"
            return f"{self.pick(['last_over_time', 'count_over_time'])}({sel}[3m]{mods})"
        if roll == 7:
            agg = self.pick(["count_values", "quantile", "topk", "bottomk"])
            param = {"count_values": self.pick(['"kind"', '"host"', '"__name__"', '"dst"',
                                                '"instance"']),
                     "quantile": self.pick(["scalar(g{kind=\"frac\"})", "0.75", "Inf",
                                            "-Inf", "(0.2 + 0.1)"]),
                     "topk": self.pick(["scalar(short) - 37", "2.9", "0x2", "1e0", "NaN"]),
                     "bottomk": self.pick(["scalar(m{a=\"1\"})", "3", "-Inf"])}[agg]
            return f"{agg}{self.grouping()} ({param}, {self.vector(d)})"
        if roll == 8:
            fn = self.pick(["sort", "sort_desc", "vector", "scalar", "time", "pi"])
            if fn in ("time", "pi"):
                return f"({self.vector(d)} {self.pick(ARITH)} {fn}())"
            if fn == "vector":
                return f"vector({self.pick(LITERALS)})"
            if fn == "scalar":
                return f"vector(scalar({self.vector(d)}))"
            return f"{fn}({self.vector(d)})"
        op = self.pick(["and", "or", "unless"])
        match = self.pick([" on(__name__)", " ignoring(__name__)", " on(job, instance)",
                           " ignoring(kind, host)", " on(le)", " ignoring()"])
        return f"({self.vector(d)} {op}{match} {self.vector(d)})"

    def wide(self, d: int) -> str:
        """Forms the other branches never write: malformed classic histograms (see
        :meth:`buckets`), parameters that change from step to step, the classic-histogram
        functions 2.42 knows, label_join over many labels, bool comparisons of scalars inside
        vector(), date functions of computed values, count_values whose label is also a
        grouping label and @ times with fractions or exponents."""
        roll = self.r.randrange(8)
        if roll == 0:
            return f"histogram_quantile({self.pick(QUANTILES)}, {self.buckets()})"
        if roll == 1:
            p = f"scalar({self.pick(SINGLES)})"
            fn = self.pick(["round", "clamp_min", "clamp_max", "clamp", "quantile_over_time",
                            "predict_linear", "histogram_quantile", "quantile"])
            if fn == "clamp":
                return f"clamp({self.vector(d)}, {p}, scalar({self.pick(SINGLES)}))"
            if fn == "quantile_over_time":
                return f"quantile_over_time({p}, {self.matrix(d)})"
            if fn == "predict_linear":
                return f"predict_linear({self.matrix(d)}, {p} * 60)"
            if fn == "histogram_quantile":
                return f"histogram_quantile({p}, {self.buckets()})"
            if fn == "quantile":
                return f"quantile{self.grouping()} ({p}, {self.vector(d)})"
            return f"{fn}({self.vector(d)}, {p})"
        if roll == 2:
            fn = self.pick(["histogram_count", "histogram_sum"])
            if self.r.random() < 0.5:
                return f"{fn}({self.vector(d)})"
            return f"histogram_fraction({self.pick(NUMBERS)}, {self.pick(NUMBERS)}, " \
                   f"{self.buckets()})"
        if roll == 3:
            srcs = self.r.sample(["a", "b", "c", "d", "e", "f", "job", "__name__", "kind"],
                                 self.r.randint(2, 5))
            dst = self.pick(["a", "c", "x", srcs[0]])
            tail = ", ".join(f'"{x}"' for x in srcs)
            return f'label_join({self.vector(d)}, "{dst}", "{self.pick(["", ",", "é"])}", {tail})'
        if roll == 4:
            op = self.pick(COMPARE)
            return f"vector({self.scalar(d)} {op} bool {self.scalar(d)})"
        if roll == 5:
            scale = self.pick(["1e7", "1e9", "-1e8", "86400", "1e15", "0.5"])
            return f"{self.pick(DATE)}({self.vector(d)} * {scale})"
        if roll == 6:
            name = self.pick(["kind", "host", "job", "le", "instance"])
            mode = self.pick(["by", "without"])
            return f'count_values {mode} ({name}) ("{name}", {self.vector(d)})'
        at = self.pick([f"{AT_S}.25", f"{AT_S - 1}.999", f"{AT_S}e0", "1.7000012e9"])
        return f"{self.pick(OVER_TIME)}({self.pick(SELECTORS)}[{self.pick(RANGES)}] @ {at})"

    def buckets(self) -> str:
        """Classic buckets, some malformed: a bound spelt twice, no +Inf, a count scaled (so
        counts go down, or are NaN), negative or zero bounds."""
        base = self.pick(["h_bucket{%s}", "rate(h_bucket{%s}[5m])", 'h_bucket{job="web"%s}'])
        sep = "," if "job" in base else ""
        every = base % ""
        roll = self.r.randrange(5)
        if roll == 0:
            le, spell = self.pick([("2.5", "2.50"), ("2.5", "+2.5e0"), ("0.5", "5e-1"),
                                   ("+Inf", "+inf"), ("+Inf", "Inf"), ("0.1", "0.10")])
            esc = le.replace("+", "\\\\+")
            return f'({every} or label_replace({every}, "le", "{spell}", "le", "{esc}"))'
        if roll == 1:
            return base % f'{sep}le!="+Inf"'
        if roll == 2:  # one bucket's count scaled (names dropped on both sides of the or)
            le = self.pick(["0.1", "0.5", "2.5"])
            k = self.pick(["0", "2", "100", "-1", "NaN", "0.5"])
            one, rest = base % f'{sep}le="{le}"', base % f'{sep}le!="{le}"'
            return f"({one} * {k} or {rest} * 1)"
        if roll == 3:
            # (not NaN: Go's sort leaves a NaN bound where the input order put it)
            le = self.pick(["-1", "0", "-Inf", "1e-9"])
            src = self.pick(["0.1", "0.5"])
            return f'label_replace({every}, "le", "{le}", "le", "{src}")'
        return every

    def sub_modifiers(self) -> str:
        """A subquery's offset/@, negative offsets included."""
        return self.pick(["", "", " offset 5m", " offset -2m", " @ start()", " @ end()",
                          f" @ {AT_S}", " @ end() offset 4m", " offset 1m30s"])

    def label_fn(self, d: int) -> str:
        src = self.pick(["job", "instance", "kind", "__name__", "missing", "le", "c"])
        dst = self.pick(["job", "dst", "__name__", "c", "le"])
        repl = self.pick(["$1", "x-$1", "", "$1$1", "${1}_y", "$2"])
        regex = self.pick(["(.*)", "(.+)", "a(.*)", "", "(w)e(b)", "[", ".*"])
        if self.r.random() < 0.6:
            return f'label_replace({self.vector(d)}, "{dst}", "{repl}", "{src}", "{regex}")'
        srcs = ", ".join(f'"{s}"' for s in self.r.sample(["job", "instance", "kind", "le",
                                                           "__name__", "c"], self.r.randint(0, 3)))
        sep = self.pick(["-", "", ","])
        tail = f", {srcs}" if srcs else ""
        return f'label_join({self.vector(d)}, "{dst}", "{sep}"{tail})'

    def expression(self) -> str:
        roll = self.r.random()
        if roll < 0.1:
            return self.scalar(3)
        if roll < 0.14:
            return self.matrix(2)
        if roll < 0.2:  # a top-level sort, whose order is compared
            return f"{self.pick(['sort', 'sort_desc'])}({self.vector(self.r.randint(1, 3))})"
        return self.vector(self.r.randint(1, 4))
