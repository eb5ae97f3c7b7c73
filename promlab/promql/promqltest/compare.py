"""Comparing query results with a script's expectations, as Prometheus's test runner does.

Results are first normalised into plain observations (:class:`Observed`): a scalar, a string, an
instant vector (ordered list of label set and value) or a matrix (per series, its timestamps and
values). :func:`compare` then applies ``compareResult``'s rules: exact label sets (``__name__``
included), floats by :func:`almost_equal` with relative tolerance 1e-6, stale markers only equal
stale markers, optional ordering, and label-sorted matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram
from promlab.promql.promqltest.almost import EPSILON, almost_equal, almost_equal_array, format_value
from promlab.promql.promqltest.dsl import EvalCmd
from promlab.promql.promqltest.histogram import histograms_equal, literal_of
from promlab.promql.promqltest.series import HistogramLiteral, Item

__all__ = [
    "EPSILON",
    "Observed",
    "almost_equal",
    "almost_equal_array",
    "compare",
    "format_value",
]

def _fmt_items(vals: list[Item]) -> str:
    out = []
    for v in vals:
        if v is None:
            out.append("_")
        elif isinstance(v, HistogramLiteral):
            out.append(v.text)
        else:
            out.append(format_value(v))
    return "[" + " ".join(out) + "]"


@dataclass(slots=True)
class Observed:
    """A query result reduced to what the comparison needs.

    ``kind`` is ``"scalar"`` (``scalar``), ``"string"`` (``string``), ``"vector"`` (``vector``:
    label sets and values in result order) or ``"matrix"`` (``matrix``: label sets with their
    timestamp and value arrays, in result order).
    """

    kind: str
    scalar: float = 0.0
    string: str = ""
    vector: list[tuple[Labels, float | FloatHistogram]] = field(default_factory=list)
    matrix: list[tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]] = field(default_factory=list)

    def describe(self, limit: int = 8) -> str:
        if self.kind == "scalar":
            return f"scalar {format_value(self.scalar)}"
        if self.kind == "string":
            return f"string {self.string!r}"
        if self.kind == "vector":
            parts = [f"{ls} {_fmt(v)}" for ls, v in self.vector[:limit]]
            more = f" ... ({len(self.vector)} series)" if len(self.vector) > limit else ""
            return "vector [" + ", ".join(parts) + more + "]"
        parts = [f"{ls} {_fmt_points(ts, vs)}" for ls, ts, vs in self.matrix[:limit]]
        more = f" ... ({len(self.matrix)} series)" if len(self.matrix) > limit else ""
        return "matrix [" + ", ".join(parts) + more + "]"


def _fmt(v: object) -> str:
    return f"{{{{{v}}}}}" if isinstance(v, FloatHistogram) else format_value(float(v))  # type: ignore[arg-type]


def _fmt_points(ts: npt.NDArray[np.int64], vs: npt.NDArray[np.float64], limit: int = 12) -> str:
    pts = [f"{_fmt(v)}@{int(t)}" for t, v in zip(ts[:limit], vs[:limit], strict=True)]
    more = " ..." if len(ts) > limit else ""
    return "[" + " ".join(pts) + more + "]"


def check_sorted(matrix: list[tuple[Labels, npt.NDArray[np.int64], npt.NDArray[np.float64]]]) -> str | None:
    """Prometheus's ``assertMatrixSorted``: an error text when the series are not label-sorted."""
    for i in range(len(matrix) - 1):
        if matrix[i + 1][0] < matrix[i][0]:
            return (f"matrix results should always be sorted by labels, but matrix is not sorted: "
                    f"series at index {i + 1} with labels {matrix[i + 1][0]} sorts before series at "
                    f"index {i} with labels {matrix[i][0]}")
    return None


def compare(ev: EvalCmd, obs: Observed) -> str | None:
    """Compare ``obs`` with ``ev``'s expectations; ``None`` when they agree, else why not."""
    if obs.kind == "matrix":
        return _compare_matrix(ev, obs)
    if obs.kind == "vector":
        return _compare_vector(ev, obs)
    if obs.kind == "scalar":
        if not ev.expect_scalar:
            return f"expected vector or matrix result, but got scalar {format_value(obs.scalar)}"
        if not almost_equal(ev.expected_scalar, obs.scalar):
            return f"expected scalar {format_value(ev.expected_scalar)} but got {format_value(obs.scalar)}"
        return None
    if ev.expected_string is None:
        return f"expected a vector, matrix or scalar result, but got string {obs.string!r}"
    if ev.expected_string != obs.string:
        return f'expected string "{ev.expected_string}" but got "{obs.string}"'
    return None


def diff(ev: EvalCmd, obs: Observed, limit: int = 20) -> str:
    """A line diff of expected (``-``) against got (``+``); equal series are not shown."""
    exp: dict[str, str] = {}
    if ev.expect_scalar:
        exp["scalar"] = format_value(ev.expected_scalar)
    elif ev.expected_string is not None:
        exp["string"] = repr(ev.expected_string)
    else:
        for ls, (_, vals) in ev.expected.items():
            exp[str(ls)] = " ".join(_fmt_items(vals)[1:-1].split())
    got: dict[str, str] = {}
    if obs.kind == "scalar":
        got["scalar"] = format_value(obs.scalar)
    elif obs.kind == "string":
        got["string"] = repr(obs.string)
    elif obs.kind == "vector":
        for ls, v in obs.vector:
            got[str(ls)] = _fmt(v)
    else:
        step = ev.step_ms or 1
        for ls, ts, vs in obs.matrix:
            slots = ["_"] * (int((ts.max() - ev.start_ms) // step) + 1 if ts.size else 0)
            for t, v in zip(ts.tolist(), vs.tolist(), strict=True):
                k = (t - ev.start_ms) // step
                if 0 <= k < len(slots) and t == ev.start_ms + k * step:
                    slots[k] = _fmt(v)
                else:
                    slots.append(f"{_fmt(v)}@{t}")
            got[str(ls)] = " ".join(slots)
    lines = []
    for key in sorted(set(exp) | set(got)):
        e, g = exp.get(key), got.get(key)
        if e == g:
            continue
        if e is not None:
            lines.append(f"- {key} {e}")
        if g is not None:
            lines.append(f"+ {key} {g}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)


def _compare_vector(ev: EvalCmd, obs: Observed) -> str | None:
    if ev.expect_scalar:
        return f"expected scalar result, but got {obs.describe()}"
    seen: set[Labels] = set()
    ordered = ev.is_ordered
    for pos, (ls, v) in enumerate(obs.vector):
        if ls in seen:
            # Stricter than Prometheus's runner (its engine never returns this): a duplicate.
            return f"result contains the label set {ls} twice"
        exp = ev.expected.get(ls)
        if exp is None:
            return f"unexpected metric {ls} in result, has value {_fmt(v)}"
        if ordered and exp[0] != pos + 1:
            return f"expected metric {ls} with {_fmt_items(exp[1])} at position {exp[0]} but was at {pos + 1}"
        e0 = exp[1][0]
        if isinstance(v, FloatHistogram):
            if not isinstance(e0, HistogramLiteral):
                return f"expected float value {_fmt_items(exp[1])} for {ls} but got histogram {_fmt(v)}"
            if not histograms_equal(e0, literal_of(v)):
                return f"expected {e0.text} for {ls} but got {_fmt(v)}"
            seen.add(ls)
            continue
        if isinstance(e0, HistogramLiteral):
            return f"expected histogram {e0.text} for {ls} but got float value {format_value(v)}"
        if e0 is None:
            return f"expected no value (_) for {ls} but got {format_value(v)}"
        if not almost_equal(e0, v):
            return f"expected {format_value(e0)} for {ls} but got {format_value(v)}"
        seen.add(ls)
    for ls, (_, vals) in ev.expected.items():
        if ls not in seen:
            return f"expected metric {ls} with {_fmt_items(vals)} not found"
    return None


def _compare_matrix(ev: EvalCmd, obs: Observed) -> str | None:
    if ev.is_ordered:
        return "expected ordered result, but query returned a matrix"
    if ev.expect_scalar:
        return f"expected scalar result, but got {obs.describe()}"
    err = check_sorted(obs.matrix)
    if err:
        return err
    seen: set[Labels] = set()
    for ls, ts, vs in obs.matrix:
        if ls in seen:
            return f"result contains the label set {ls} twice"
        exp = ev.expected.get(ls)
        if exp is None:
            return f"unexpected metric {ls} in result, has {_fmt_points(ts, vs)}"
        seen.add(ls)
        vals = exp[1]
        if ev.step_ms > 0:
            last = ev.start_ms + (len(vals) - 1) * ev.step_ms
            if vals and last > ev.end_ms:
                return (f"expected {len(vals)} points for {ls}, but query time range cannot "
                        f"return this many points")
        elif len(vals) > 1:
            return f"expected {len(vals)} points for {ls}, but query time range cannot return this many points"
        if vs.dtype == object or any(isinstance(v, HistogramLiteral) for v in vals):
            err = _compare_mixed_points(ev, ls, vals, ts, vs)
            if err:
                return err
            continue
        exp_t: list[int] = []
        exp_v: list[float] = []
        for k, v in enumerate(vals):
            if v is None:
                continue
            assert not isinstance(v, HistogramLiteral)
            exp_t.append(ev.start_ms + k * ev.step_ms)
            exp_v.append(v)
        if len(exp_t) != len(ts):
            return (f"expected {len(exp_t)} float points and 0 histogram points for {ls}, but got "
                    f"{len(ts)} float point{'s' if len(ts) != 1 else ''} {_fmt_points(ts, vs)}")
        et = np.asarray(exp_t, np.int64)
        bad_t = np.flatnonzero(et != ts)
        if bad_t.size:
            k = int(bad_t[0])
            return (f"expected float value at index {k} for {ls} to have timestamp {exp_t[k]}, "
                    f"but it had timestamp {int(ts[k])} (result has {_fmt_points(ts, vs)})")
        ok = almost_equal_array(np.asarray(exp_v, np.float64), vs)
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            return (f"expected float value at index {k} (t={int(ts[k])}) for {ls} to be "
                    f"{format_value(exp_v[k])}, but got {format_value(float(vs[k]))} "
                    f"(result has {_fmt_points(ts, vs)})")
    for ls in ev.expected:
        if ls not in seen:
            return f"expected metric {ls} not found"
    return None


def _compare_mixed_points(ev: EvalCmd, ls: Labels, vals: list[Item], ts: npt.NDArray[np.int64],
                          vs: npt.NDArray[np.float64]) -> str | None:
    """Point-by-point comparison of a series holding histograms (expected or got)."""
    exp = [(ev.start_ms + k * ev.step_ms, v) for k, v in enumerate(vals) if v is not None]
    if len(exp) != len(ts):
        return f"expected {len(exp)} points for {ls}, but got {len(ts)}: {_fmt_points(ts, vs)}"
    for k, ((et, e), t, g) in enumerate(zip(exp, ts.tolist(), list(vs), strict=True)):
        if et != t:
            return (f"expected point {k} for {ls} at {et}, but it was at {t} "
                    f"(result has {_fmt_points(ts, vs)})")
        if isinstance(e, HistogramLiteral):
            if not isinstance(g, FloatHistogram) or not histograms_equal(e, literal_of(g)):
                return f"expected {e.text} at index {k} (t={t}) for {ls}, but got {_fmt(g)}"
        elif isinstance(g, FloatHistogram) or not almost_equal(e, float(g)):
            return f"expected {format_value(e)} at index {k} (t={t}) for {ls}, but got {_fmt(g)}"
    return None
