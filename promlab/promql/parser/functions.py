"""PromQL function signatures: the parser's half of the function registry.

Each backend keeps its own implementations keyed by the same names; a test checks that the two
tables agree. ``variadic`` follows Prometheus's ``Function.Variadic``: 0 = exactly
``arg_types``; n > 0 = between ``len(arg_types) - 1`` and ``len(arg_types) - 1 + n`` arguments
(the last type repeats); -1 = at least ``len(arg_types) - 1``, the last type repeating.
``experimental`` marks functions Prometheus gates behind ``promql-experimental-functions``
(promlab accepts them all, like Prometheus's test runner). Checked against Prometheus 3.x
``promql/parser/functions.go`` and the 3.14 function docs.
"""

from __future__ import annotations

from dataclasses import dataclass

from promlab.promql.parser.types import ValueType

__all__ = ["FUNCTIONS", "Function", "get_function"]

S, V, M, STR = ValueType.SCALAR, ValueType.VECTOR, ValueType.MATRIX, ValueType.STRING


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    arg_types: tuple[ValueType, ...]
    return_type: ValueType
    variadic: int = 0
    experimental: bool = False

    def check_arity(self, n: int) -> bool:
        k = len(self.arg_types)
        if self.variadic == 0:
            return n == k
        if self.variadic < 0:
            return n >= k - 1
        return k - 1 <= n <= k - 1 + self.variadic

    def arg_type(self, i: int) -> ValueType:
        if i < len(self.arg_types):
            return self.arg_types[i]
        return self.arg_types[-1]


def _f(name: str, args: tuple[ValueType, ...], ret: ValueType, variadic: int = 0,
       experimental: bool = False) -> Function:
    return Function(name, args, ret, variadic, experimental)


_MATH = ["abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn",
         "acos", "acosh", "asin", "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh",
         "tan", "tanh", "deg", "rad"]
_OVER_TIME = ["avg_over_time", "count_over_time", "last_over_time", "max_over_time",
              "min_over_time", "present_over_time", "stddev_over_time", "stdvar_over_time",
              "sum_over_time", "absent_over_time", "changes", "resets", "delta", "deriv",
              "idelta", "increase", "irate", "rate", "first_over_time"]
_OVER_TIME_EXPERIMENTAL = ["mad_over_time", "ts_of_first_over_time",
                           "ts_of_last_over_time", "ts_of_max_over_time",
                           "ts_of_min_over_time"]
_DATE = ["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute",
         "month", "year"]

_TABLE: list[Function] = [
    *(_f(n, (V,), V) for n in _MATH),
    *(_f(n, (M,), V) for n in _OVER_TIME),
    *(_f(n, (M,), V, experimental=True) for n in _OVER_TIME_EXPERIMENTAL),
    *(_f(n, (V,), V, variadic=1) for n in _DATE),
    _f("absent", (V,), V),
    _f("clamp", (V, S, S), V),
    _f("clamp_max", (V, S), V),
    _f("clamp_min", (V, S), V),
    _f("double_exponential_smoothing", (M, S, S), V, experimental=True),
    _f("histogram_avg", (V,), V),
    _f("histogram_count", (V,), V),
    _f("histogram_fraction", (S, S, V), V),
    _f("histogram_quantile", (S, V), V),
    _f("histogram_quantiles", (V, STR, S, S), V, variadic=9, experimental=True),
    _f("histogram_stddev", (V,), V),
    _f("histogram_stdvar", (V,), V),
    _f("histogram_sum", (V,), V),
    _f("info", (V, V), V, variadic=1, experimental=True),
    _f("label_join", (V, STR, STR, STR), V, variadic=-1),
    _f("label_replace", (V, STR, STR, STR, STR), V),
    _f("max_of", (S, S), S, experimental=True),
    _f("min_of", (S, S), S, experimental=True),
    _f("pi", (), S),
    _f("predict_linear", (M, S), V),
    _f("quantile_over_time", (S, M), V),
    _f("round", (V, S), V, variadic=1),
    _f("scalar", (V,), S),
    _f("sort", (V,), V),
    _f("sort_desc", (V,), V),
    _f("sort_by_label", (V, STR), V, variadic=-1, experimental=True),
    _f("sort_by_label_desc", (V, STR), V, variadic=-1, experimental=True),
    _f("start", (), S, experimental=True),
    _f("end", (), S, experimental=True),
    _f("range", (), S, experimental=True),
    _f("step", (), S, experimental=True),
    _f("start_timestamp", (V,), V),
    _f("time", (), S),
    _f("timestamp", (V,), V),
    _f("vector", (S,), V),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}


def get_function(name: str) -> Function | None:
    return FUNCTIONS.get(name)
