"""The differential fuzzer's comparison of answers: promlab's against Prometheus's, normalised
(labels sorted, values as the API writes them), with the tolerances the fuzzer allows (see
test_differential_fuzz.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["Answer", "diff", "is_ordered", "loosely_same", "normalise", "same_error",
           "sort_input_ordered", "without_names"]

Answer = tuple[str, Any]  # ("error", message) or (result type, normalised result)


def _norm_labels(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def normalise(data: dict[str, Any]) -> Answer:
    rtype = data["resultType"]
    res = data["result"]
    if rtype in ("scalar", "string"):
        return rtype, [(float(res[0]), res[1])]
    series = []
    for item in res:
        points = item.get("values") or [item["value"]] if "value" in item or "values" in item \
            else []
        series.append((_norm_labels(item["metric"]), [(float(t), v) for t, v in points]))
    return rtype, series


def _same_float(a: str, b: str) -> bool:
    if a == b:
        return True
    x, y = float(a), float(b)
    if x == y:
        return False  # the same number written differently ("-0" vs "0", "1e-07" vs "0.0000001")
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)


def diff(want: Answer, got: Answer, *, ordered: bool = False, ties: bool = False,
         ulp_labels: bool = False, allow: Callable[[str, str], bool] | None = None,
         ordered_labels: bool = False) -> str | None:
    """Why ``got`` (promlab) differs from ``want`` (Prometheus), or None.

    ``ties``: the series may differ where the values per step agree (``topk``/``bottomk``
    choose among equal values in an order neither engine defines); ``allow(want, got)``
    accepts a known difference of one sample value; ``ulp_labels``: label values that are
    numbers (``count_values``) may differ in their last bits (Go's math.Pow/Exp are not C's);
    ``ordered_labels``: with ``ordered``, the label sets must come in the same order too (a
    top-level sort whose input order Prometheus defines: NaNs and ties included, as Go's
    sort.Sort places them).
    """
    def same(a: str, b: str) -> bool:
        return _same_float(a, b) or (allow is not None and allow(a, b))

    if want[0] == "error" or got[0] == "error":
        if want[0] != got[0]:
            return f"prometheus {want[0]}: {str(want[1])[:200]!r}; promlab {got[0]}: " \
                   f"{str(got[1])[:200]!r}"
        return None
    if want[0] != got[0]:
        return f"result type {want[0]} != {got[0]}"
    if want[0] in ("scalar", "string"):
        (tw, vw), (tg, vg) = want[1][0], got[1][0]
        if tw != tg or (vw != vg and (want[0] == "string" or not same(vw, vg))):
            return f"{want[1]} != {got[1]}"
        return None
    w = dict(want[1])
    g = dict(got[1])
    if len(w) != len(want[1]) or len(g) != len(got[1]):
        return "duplicate label sets in a result"
    if ties and w != g and _values_by_step(w) == _values_by_step(g):
        return None
    if set(w) != set(g) and ulp_labels and _round_label_values(w) == _round_label_values(g):
        return None  # the counts may differ too where last bits split or merge values
    if set(w) != set(g):
        return f"series only in prometheus: {sorted(set(w) - set(g))[:4]}; only in promlab: " \
               f"{sorted(set(g) - set(w))[:4]}"
    for k, pw in w.items():
        pg = g[k]
        if [t for t, _ in pw] != [t for t, _ in pg]:
            return f"{k}: timestamps {[t for t, _ in pw][:8]} != {[t for t, _ in pg][:8]}"
        for (t, vw), (_, vg) in zip(pw, pg, strict=True):
            if not same(vw, vg):
                return f"{k} @ {t}: {vw} != {vg}"
    if ordered:
        vw = [pts[0][1] for _, pts in want[1]]
        vg = [pts[0][1] for _, pts in got[1]]
        if not all(same(a, b) for a, b in zip(vw, vg, strict=True)):
            return f"order: {vw} != {vg}"
        if ordered_labels and [k for k, _ in want[1]] != [k for k, _ in got[1]]:
            return f"label order: {[k for k, _ in want[1]][:6]} != {[k for k, _ in got[1]][:6]}"
    return None


# Error wording Prometheus 3 changed (promlab speaks 3.x): (2.42 pattern, 3.x pattern); a 2.42
# message matching the first may come back as any message matching the second.
ERROR_WORDING = [
    # 3.x reads numbers as durations and has duration expressions
    (r"missing unit character in duration", r"parse error: "),
    (r"expected duration$", r"expected number, duration, step\(\), or range\(\)$"),
    # newer prometheus/common duration parsing
    (r"not a valid duration string", r"(unknown unit|not a valid duration string)"),
    # experimental 3.x functions that 2.42 does not know at all
    (r'unknown function with name "(\w+)"', r"(is not enabled|are experimental)"),
]


def _error_text(msg: str) -> str:
    msg = msg.replace('invalid parameter "query": ', "")
    msg = re.sub(r"\bholt_winters\b", "double_exponential_smoothing", msg)  # see REWRITES
    # Which two duplicates are named depends on series order, which a range query leaves
    # undefined in Prometheus (and 3.x sorts the pair): the match group and side must agree.
    return re.sub(r"(found duplicate series .*?: )\[.*\];", r"\1[...];", msg)


def same_error(want: str, got: str, *, range_query: bool = False) -> str | None:
    """Why promlab's error ``got`` names another problem than Prometheus's ``want``, or None:
    the same text, or for parse errors the same position and a known 3.x rewording. In a range
    query Prometheus meets a computed operand's series in map order, so which match group a
    duplicate is reported for is not compared there."""
    w, g = _error_text(want), _error_text(got)
    if range_query:
        w, g = (re.sub(r"match group \{.*?\} on", "match group {...} on", x) for x in (w, g))
    if w == g:
        return None
    pos = re.match(r"(\d+:\d+): parse error", w)
    if pos and g.startswith(pos.group(1) + ": parse error") and \
            any(re.search(old, w) and re.search(new, g) for old, new in ERROR_WORDING):
        return None
    if "unknown function with name" in w and re.search(ERROR_WORDING[-1][1], g):
        return None
    return f"error text: prometheus {w!r}; promlab {g!r}"


def _values_by_step(series: dict[Any, list[tuple[float, str]]]) -> dict[float, list[str]]:
    """The values of each step, sorted, to 12 significant digits (a tie's members may carry
    Go's last bits of log2/exp in one engine and C's in the other)."""
    out: dict[float, list[str]] = {}
    for points in series.values():
        for t, v in points:
            out.setdefault(t, []).append(f"{float(v) + 0.0:.12g}")  # a tie of 0 and -0 too
    return {t: sorted(vs) for t, vs in out.items()}


def _round_label_values(series: dict[Any, list[tuple[float, str]]]) -> set[Any]:
    def rounded(v: str) -> str:
        try:
            return f"{float(v):.12g}"
        except ValueError:
            return v

    return {tuple((k, rounded(v)) for k, v in labels) for labels in series}


def without_names(want: Answer, got: Answer) -> Answer:
    """``want`` with ``__name__`` taken off the series that ``got`` has without it only."""
    if want[0] not in ("vector", "matrix"):
        return want
    have = {k for k, _ in got[1]}

    def fixed(k: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        bare = tuple(kv for kv in k if kv[0] != "__name__")
        return bare if k not in have and bare in have else k

    return want[0], [(fixed(k), pts) for k, pts in want[1]]


def loosely_same(a: str, b: str) -> bool:
    """Equal up to rounding residues: close, both tiny, or both huge with one sign."""
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return False
    if math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9):
        return True
    return abs(x) > 1e12 and abs(y) > 1e12 and (x > 0) == (y > 0)


def input_order_defined(expr: str) -> bool:
    """Whether Prometheus defines the order of the samples an instant query's operations
    meet (which decides where NaNs and ties go in a sort, which of 0 and -0 a min/max keeps):
    not when anything comes out of a Go map (histogram_quantile, count_values, a subquery's
    range evaluation) or a heap (topk)."""
    return re.search(r"histogram_quantile|count_values|topk|bottomk|\[\w+:\w*\]",
                     expr) is None


def sort_input_ordered(expr: str) -> bool:
    """Whether a top-level sort's input order is defined in Prometheus
    (:func:`input_order_defined`)."""
    return re.match(r"\s*(sort|sort_desc)\(", expr) is not None and input_order_defined(expr)


def is_ordered(expr: str) -> bool:
    """Whether Prometheus defines the order of the instant result: a top-level sort, or a
    topk/bottomk of one group (groups come in the order their first series reached the
    aggregation, which a subquery or binary operation leaves undefined)."""
    if re.match(r"\s*(sort|sort_desc)\(", expr):
        return True
    return re.match(r"\s*(topk|bottomk)\s*\(", expr) is not None and \
        re.search(r"\)\s*(by|without)\s*\([^()]*\)\s*$", expr) is None
