"""Engine core tests on hand-built ASTs: selectors, subqueries, binary operators, limits.

Independent of the parser and of the function implementations.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from promlab.errors import BadData, QueryCanceled, QueryError, QueryTimeout, TooManySamples
from promlab.model import STALE_NAN, Labels, Matcher, MatchType
from promlab.promql.engine import Engine, data_time_range
from promlab.promql.parser.ast import (
    BinaryExpr,
    MatrixSelector,
    NumberLiteral,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorMatching,
    VectorSelector,
)
from promlab.promql.values import Matrix, Scalar, String, Vector
from promlab.storage import MemoryStorage

M = 60_000


def sel(name: str | None = None, *, offset: int = 0, at: int | None = None,
        at_modifier: str | None = None, **labels: str) -> VectorSelector:
    ms = []
    if name is not None:
        ms.append(Matcher(MatchType.EQUAL, "__name__", name))
    for k, v in labels.items():
        if v.startswith("~"):
            ms.append(Matcher(MatchType.REGEX, k, v[1:]))
        else:
            ms.append(Matcher(MatchType.EQUAL, k, v))
    return VectorSelector(name=name, matchers=tuple(ms), offset_ms=offset, at_ms=at,
                          at_modifier=at_modifier)  # type: ignore[arg-type]


def rng(vs: VectorSelector, range_ms: int) -> MatrixSelector:
    return MatrixSelector(vector_selector=vs, range_ms=range_ms)


def subq(expr, range_ms: int, step_ms: int = 0, *, offset: int = 0,
         at: int | None = None) -> SubqueryExpr:
    return SubqueryExpr(expr=expr, range_ms=range_ms, step_ms=step_ms, offset_ms=offset,
                        at_ms=at)


def num(v: float) -> NumberLiteral:
    return NumberLiteral(value=v)


def string(v: str) -> StringLiteral:
    return StringLiteral(value=v)


def neg(e) -> UnaryExpr:
    return UnaryExpr(op="-", expr=e)


def bop(op: str, lhs, rhs, *, card: str | None = None, on: tuple[str, ...] | None = None,
        ignoring: tuple[str, ...] | None = None, include: tuple[str, ...] = (),
        bool_: bool = False) -> BinaryExpr:
    matching = None
    from promlab.promql.parser.ast import ValueType

    if lhs.type is ValueType.VECTOR and rhs.type is ValueType.VECTOR:
        default = "many-to-many" if op in ("and", "or", "unless") else "one-to-one"
        matching = VectorMatching(card=card or default,  # type: ignore[arg-type]
                                  matching_labels=on if on is not None else (ignoring or ()),
                                  on=on is not None, include=include)
    return BinaryExpr(op=op, lhs=lhs, rhs=rhs, matching=matching, return_bool=bool_)


def L(**kw: str) -> Labels:
    return Labels(kw)


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    st = MemoryStorage()
    t = np.arange(0, 11) * M  # 0..10m every minute
    st.add_series(L(__name__="a", job="x"), t, np.arange(11.0))
    st.add_series(L(__name__="a", job="y"), t, np.arange(11.0) * 10)
    st.add_series(L(__name__="b", job="x"), t, np.full(11, 2.0))
    st.add_series(L(__name__="b", job="y"), t, np.full(11, 4.0))
    st.add_series(L(__name__="c", job="x", grp="g"), t, np.full(11, 100.0))
    # A series that goes stale at 3m and comes back at 8m.
    st.add_series(L(__name__="s"), [0, M, 2 * M, 3 * M, 8 * M], [1, 2, 3, STALE_NAN, 9])
    # Sparse series: one sample at 1m.
    st.add_series(L(__name__="sparse"), [M], [7.0])
    st.add_series(L(__name__="dup", label="alpha"), [0], [1.0])
    st.add_series(L(__name__="dup", label="beta"), [0], [2.0])
    st.add_series(L(__name__="one"), [0], [3.0])
    return st


def instant(store, expr, t, **kw):
    return Engine(**kw).instant(store, expr, t)


def as_dict(vec: Vector, col: int = 0) -> dict[str, float]:
    return {str(ls): float(vec.values[i, col]) for i, ls in enumerate(vec.labels)
            if vec.present[i, col]}


# --- vector selectors ---------------------------------------------------------------------------
@pytest.mark.parametrize(("expr", "t", "want"), [
    pytest.param(sel("a", job="x"), 5 * M, {'a{job="x"}': 5.0}, id="exact-sample"),
    pytest.param(sel("a", job="x"), 5 * M + 30_000, {'a{job="x"}': 5.0}, id="between-samples"),
    pytest.param(sel("sparse"), 6 * M - 1, {"sparse": 7.0}, id="lookback-inside"),
    pytest.param(sel("sparse"), 6 * M, {}, id="lookback-left-open"),
    pytest.param(sel("sparse"), M - 1, {}, id="before-first-sample"),
    pytest.param(sel("s"), 2 * M, {"s": 3.0}, id="before-stale"),
    pytest.param(sel("s"), 3 * M, {}, id="stale-marker-latest"),
    pytest.param(sel("s"), 7 * M, {}, id="still-stale"),
    pytest.param(sel("s"), 8 * M, {"s": 9.0}, id="back-after-stale"),
    pytest.param(sel("a", job="x", offset=2 * M), 5 * M, {'a{job="x"}': 3.0}, id="offset"),
    pytest.param(sel("a", job="x", offset=-2 * M), 5 * M, {'a{job="x"}': 7.0}, id="neg-offset"),
    pytest.param(sel("a", job="x", at=4 * M), 9 * M, {'a{job="x"}': 4.0}, id="at"),
    pytest.param(sel("a", job="x", at=4 * M, offset=M), 9 * M, {'a{job="x"}': 3.0},
                 id="at-offset"),
    pytest.param(sel("a", job="x", at_modifier="start"), 9 * M, {'a{job="x"}': 9.0},
                 id="at-start-instant"),
    pytest.param(sel("a", job="~x|y"), 2 * M, {'a{job="x"}': 2.0, 'a{job="y"}': 20.0},
                 id="regex"),
])
def test_vector_selector_instant(store, expr, t, want):
    res = instant(store, expr, t)
    assert res.result_type == "vector"
    assert as_dict(res.value) == want


def test_vector_selector_timestamps(store):
    res = instant(store, sel("sparse"), 3 * M)
    assert res.value.timestamps_ms.tolist() == [[M]]


def test_range_query_selector_sorted_and_present(store):
    res = Engine().range(store, sel(None, job="x"), 0, 4 * M, M)
    assert res.result_type == "matrix"
    names = [str(ls) for ls in res.value.labels]
    assert names == sorted(names, key=lambda s: s) or names  # sorted by Labels order
    assert res.value.labels == sorted(res.value.labels)
    row = res.value.labels.index(L(__name__="a", job="x"))
    assert res.value.values[row].tolist() == [0, 1, 2, 3, 4]


def test_range_query_at_start_end(store):
    res = Engine().range(store, sel("a", job="x", at_modifier="end"), 2 * M, 4 * M, M)
    assert res.value.values.tolist() == [[4.0, 4.0, 4.0]]
    res = Engine().range(store, sel("a", job="x", at_modifier="start"), 2 * M, 4 * M, M)
    assert res.value.values.tolist() == [[2.0, 2.0, 2.0]]


def test_range_query_stale_gap(store):
    res = Engine().range(store, sel("s"), 0, 10 * M, M)
    assert res.value.present.tolist() == [[True, True, True] + [False] * 5 + [True] * 3]


def test_range_query_drops_series_never_present(store):
    res = Engine().range(store, sel("sparse"), 8 * M, 10 * M, M)
    assert len(res.value) == 0


# --- matrix selectors and subqueries ------------------------------------------------------------
def _points(res) -> dict[str, list[tuple[int, float]]]:
    m = res.value
    assert isinstance(m, Matrix)
    lo, hi = m.window_bounds()
    return {str(ls): list(zip(m.ts_ms[lo[i, 0]:hi[i, 0]].tolist(),
                              m.values[lo[i, 0]:hi[i, 0]].tolist(), strict=True))
            for i, ls in enumerate(m.labels) if hi[i, 0] > lo[i, 0]}


def test_matrix_selector_left_open(store):
    res = instant(store, rng(sel("a", job="x"), 3 * M), 5 * M)
    assert res.result_type == "matrix"
    assert _points(res) == {'a{job="x"}': [(3 * M, 3.0), (4 * M, 4.0), (5 * M, 5.0)]}


def test_matrix_selector_removes_stale(store):
    res = instant(store, rng(sel("s"), 10 * M), 9 * M)
    assert _points(res) == {"s": [(0, 1.0), (M, 2.0), (2 * M, 3.0), (8 * M, 9.0)]}


def test_matrix_selector_offset_at(store):
    res = instant(store, rng(sel("a", job="x", offset=M, at=6 * M), 2 * M), 0)
    assert _points(res) == {'a{job="x"}': [(4 * M, 4.0), (5 * M, 5.0)]}


@pytest.mark.parametrize(("expr", "t", "want"), [
    pytest.param(subq(sel("a", job="x"), 3 * M, M), 5 * M,
                 [(3 * M, 3.0), (4 * M, 4.0), (5 * M, 5.0)], id="aligned"),
    pytest.param(subq(sel("a", job="x"), 3 * M, 2 * M), 5 * M + 1,
                 [(4 * M, 4.0)], id="abs-aligned-steps"),
    pytest.param(subq(sel("a", job="x"), 2 * M), 5 * M,
                 [(4 * M, 4.0), (5 * M, 5.0)], id="default-step"),
    pytest.param(subq(sel("a", job="x"), 2 * M, M, offset=M), 5 * M,
                 [(3 * M, 3.0), (4 * M, 4.0)], id="offset"),
    pytest.param(subq(sel("a", job="x"), 2 * M, M, at=8 * M), 0,
                 [(7 * M, 7.0), (8 * M, 8.0)], id="at"),
    pytest.param(subq(bop("*", sel("a", job="x"), num(2)), 2 * M, M), 5 * M,
                 [(4 * M, 8.0), (5 * M, 10.0)], id="inner-binop"),
])
def test_subquery_points(store, expr, t, want):
    res = instant(store, expr, t)
    got = _points(res)
    assert list(got.values()) == [want]


def test_subquery_range_windows(store):
    eng = Engine()
    from promlab.promql.eval.evaluator import Evaluator
    from promlab.promql.values import EvalContext

    steps = np.array([3 * M, 4 * M, 5 * M])
    ctx = EvalContext(steps_ms=steps, start_ms=3 * M, end_ms=5 * M, step_ms=M)
    ev = Evaluator(store, mint_ms=0, maxt_ms=10 * M, max_samples=eng.max_samples)
    m = ev.eval(subq(sel("a", job="x"), 2 * M, M), ctx)
    lo, hi = m.window_bounds()
    counts = (hi - lo).tolist()
    assert counts == [[2, 2, 2]]
    assert m.window_end_ms.tolist() == steps.tolist()


# --- literals and unary -------------------------------------------------------------------------
def test_literals(store):
    r = instant(store, num(1.5), 0)
    assert r.result_type == "scalar" and r.value.values.tolist() == [1.5]
    r = instant(store, string("hi"), 0)
    assert r.result_type == "string" and r.value.value == "hi"
    r = Engine().range(store, num(2), 0, 2 * M, M)
    assert r.result_type == "matrix"
    assert r.value.labels == [Labels()] and r.value.values.tolist() == [[2, 2, 2]]


def test_unary_minus_drops_name(store):
    r = instant(store, neg(sel("a", job="x")), 3 * M)
    assert as_dict(r.value) == {'{job="x"}': -3.0}


# --- binary operators ---------------------------------------------------------------------------
@pytest.mark.parametrize(("op", "a", "b", "want"), [
    pytest.param("+", 1, 2, 3.0, id="add"),
    pytest.param("%", -7, 3, -1.0, id="mod-go-sign"),
    pytest.param("%", 7, 0, math.nan, id="mod-zero"),
    pytest.param("/", 1, 0, math.inf, id="div-zero"),
    pytest.param("^", 2, 10, 1024.0, id="pow"),
    pytest.param("^", math.nan, 0, 1.0, id="pow-nan-zero"),
    pytest.param("atan2", 1, 1, math.atan2(1, 1), id="atan2"),
])
def test_scalar_scalar(store, op, a, b, want):
    r = instant(store, bop(op, num(a), num(b)), 0)
    got = r.value.values[0]
    assert (math.isnan(want) and math.isnan(got)) or got == want


def test_scalar_comparison_bool(store):
    r = instant(store, bop(">", num(2), num(1), bool_=True), 0)
    assert r.value.values.tolist() == [1.0]


@pytest.mark.parametrize(("expr", "want"), [
    pytest.param(bop("*", sel("a"), num(2)), {'{job="x"}': 6.0, '{job="y"}': 60.0},
                 id="arith-drops-name"),
    pytest.param(bop("-", num(100), sel("a", job="x")), {'{job="x"}': 97.0}, id="scalar-lhs"),
    pytest.param(bop(">", sel("a"), num(5)), {'a{job="y"}': 30.0}, id="filter-keeps-name"),
    pytest.param(bop("<", num(5), sel("a")), {'a{job="y"}': 30.0}, id="filter-swapped"),
    pytest.param(bop(">", sel("a"), num(5), bool_=True), {'{job="x"}': 0.0, '{job="y"}': 1.0},
                 id="bool"),
    pytest.param(bop("+", sel("a"), sel("b")), {'{job="x"}': 5.0, '{job="y"}': 34.0},
                 id="one-to-one"),
    pytest.param(bop(">", sel("a"), sel("b")), {'a{job="x"}': 3.0, 'a{job="y"}': 30.0},
                 id="vv-filter"),
    pytest.param(bop("<", sel("a"), sel("b"), bool_=True), {'{job="x"}': 0.0, '{job="y"}': 0.0},
                 id="vv-bool"),
    pytest.param(bop("+", sel("a"), sel("b"), on=("job",)),
                 {'{job="x"}': 5.0, '{job="y"}': 34.0}, id="on"),
    pytest.param(bop("*", sel("c"), sel("b"), ignoring=("grp",)), {'{job="x"}': 200.0},
                 id="ignoring"),
    pytest.param(bop("*", sel("c"), sel("b"), on=("job",), card="many-to-one",
                     include=()), {'{grp="g", job="x"}': 200.0}, id="group-left"),
    pytest.param(bop("*", sel("b"), sel("c"), on=("job",), card="one-to-many",
                     include=("grp",)), {'{job="x"}': 200.0}, id="group-right-include-absent"),
    pytest.param(bop("+", sel("a", job="x"), sel("b", job="y"), on=("job",)), {}, id="no-match"),
    pytest.param(bop("and", sel("a"), sel("b", job="x")), {'a{job="x"}': 3.0}, id="and"),
    pytest.param(bop("unless", sel("a"), sel("b", job="x")), {'a{job="y"}': 30.0}, id="unless"),
    pytest.param(bop("or", sel("a", job="x"), sel("b")),
                 {'a{job="x"}': 3.0, 'b{job="y"}': 4.0}, id="or"),
    pytest.param(bop("or", sel("a", job="x"), sel("b"), on=("__name__",)),
                 {'a{job="x"}': 3.0, 'b{job="x"}': 2.0, 'b{job="y"}': 4.0}, id="or-on-name"),
])
def test_binary_vectors(store, expr, want):
    r = instant(store, expr, 3 * M)
    assert as_dict(r.value) == want


def test_group_left_include_from_one_side(store):
    expr = bop("*", sel("a", job="x"), sel("c"), on=("job",), card="many-to-one",
               include=("grp",))
    r = instant(store, expr, 3 * M)
    assert as_dict(r.value) == {'{grp="g", job="x"}': 300.0}


@pytest.mark.parametrize(("expr", "msg"), [
    pytest.param(bop(">", sel("one"), sel("dup"), on=()),
                 'found duplicate series for the match group {} on the right hand-side of the '
                 'operation: [{__name__="dup", label="alpha"}, {__name__="dup", label="beta"}];'
                 "many-to-many matching not allowed: matching labels must be unique on one side",
                 id="dup-right"),
    pytest.param(bop("+", sel("dup"), sel("one"), on=(), card="one-to-many"),
                 'found duplicate series for the match group {} on the left hand-side of the '
                 'operation: [{__name__="dup", label="alpha"}, {__name__="dup", label="beta"}];'
                 "many-to-many matching not allowed: matching labels must be unique on one side",
                 id="dup-left"),
    pytest.param(bop(">", sel("dup"), sel("one"), on=()),
                 "multiple matches for labels: many-to-one matching must be explicit "
                 "(group_left/group_right)", id="one-to-one-multi"),
    pytest.param(bop("+", sel(None, __name__="~a|b"), sel("c"), on=("job",), card="many-to-one"),
                 "multiple matches for labels: grouping labels must ensure unique matches",
                 id="group-left-not-unique"),
])
def test_binary_matching_errors(store, expr, msg):
    with pytest.raises(QueryError) as exc:
        instant(store, expr, 0)
    assert str(exc.value) == msg


def test_name_removal_merges_rows_range(store):
    # -s or -sparse: both become {} after the names go; they never overlap → one row.
    st = MemoryStorage()
    st.add_series(L(__name__="ma"), [0], [1.0])
    st.add_series(L(__name__="mb"), [0, 10 * M], [3.0, 4.0])
    r = Engine().range(st, bop("or", neg(sel("ma")), neg(sel("mb"))), 0, 20 * M, 10 * M)
    assert r.value.labels == [Labels()]
    assert r.value.values[0, :2].tolist() == [-1.0, -4.0]
    assert r.value.present.tolist() == [[True, True, False]]


def test_name_removal_collision_fails(store):
    expr = bop("or", neg(sel("a", job="x")), bop("*", sel("b", job="x"), num(1)), on=("__name__",))
    with pytest.raises(QueryError, match="vector cannot contain metrics with the same labelset"):
        instant(store, expr, 3 * M)


# --- engine: limits, errors, time range ---------------------------------------------------------
def test_too_many_samples(store):
    with pytest.raises(TooManySamples):
        Engine(max_samples=5).range(store, sel("a"), 0, 10 * M, M)


def test_canceled(store):
    ev = threading.Event()
    ev.set()
    with pytest.raises(QueryCanceled):
        Engine().instant(store, sel("a"), 0, cancel=ev)


def test_timeout(store):
    with pytest.raises(QueryTimeout):
        Engine(timeout=-1).instant(store, sel("a"), 0)


@pytest.mark.parametrize(("kw", "msg"), [
    pytest.param({"step_ms": 0}, "zero or negative", id="zero-step"),
    pytest.param({"end_ms": -1}, "end timestamp", id="end-before-start"),
])
def test_range_argument_errors(store, kw, msg):
    args = {"start_ms": 0, "end_ms": M, "step_ms": M} | kw
    with pytest.raises(BadData, match=msg):
        Engine().range(store, sel("a"), **args)


def test_range_query_rejects_range_vector(store):
    with pytest.raises(BadData, match='invalid expression type "range vector"'):
        Engine().range(store, rng(sel("a"), M), 0, M, M)


def test_data_time_range():
    expr = bop("+", sel("a", offset=M), sel("b", at=100 * M))
    assert data_time_range(expr, 50 * M, 60 * M, lookback_ms=5 * M) == (44 * M + 1, 100 * M)
    sq = subq(rng(sel("b"), 2 * M), 10 * M, M, offset=M)
    assert data_time_range(sq, 50 * M, 60 * M, lookback_ms=5 * M) == (37 * M + 1, 59 * M)


def test_failed_query_leaves_engine_usable(store):
    eng = Engine(max_samples=5)
    with pytest.raises(TooManySamples):
        eng.range(store, sel("a"), 0, 10 * M, M)
    assert as_dict(eng.instant(store, sel("a", job="x"), 0).value) == {'a{job="x"}': 0.0}


def test_result_value_types(store):
    assert isinstance(instant(store, num(1), 0).value, Scalar)
    assert isinstance(instant(store, string("s"), 0).value, String)


class _CancelAfterFirstSelect:
    """A Queryable that sets the cancel event once the first selector has read its data."""

    def __init__(self, inner: MemoryStorage, event: threading.Event) -> None:
        self.inner = inner
        self.event = event
        self.selects = 0

    def querier(self, mint_ms: int, maxt_ms: int):
        outer = self
        q = self.inner.querier(mint_ms, maxt_ms)

        class _Q:
            def select(self, matchers, hints=None):
                outer.selects += 1
                outer.event.set()
                return q.select(matchers, hints)

            def close(self) -> None:
                q.close()

        return _Q()


def test_cancel_between_nodes(store):
    ev = threading.Event()
    wrapped = _CancelAfterFirstSelect(store, ev)
    with pytest.raises(QueryCanceled):
        Engine().range(wrapped, bop("+", sel("a"), sel("b")), 0, 10 * M, M, cancel=ev)
    assert wrapped.selects == 1


@pytest.mark.parametrize(("t", "want"), [
    pytest.param(-10 * M, [], id="before-data"),
    pytest.param(0, [(0, 0.0)], id="at-zero"),
    pytest.param(3 * M + 1, [(2 * M, 2.0), (3 * M, 3.0)], id="unaligned-eval-time"),
])
def test_subquery_alignment_edges(store, t, want):
    res = instant(store, subq(sel("a", job="x"), 2 * M, M), t)
    got = _points(res)
    assert list(got.values()) == ([want] if want else [])


def test_result_repr(store):
    r = Engine().range(store, sel("a"), 0, 2 * M, M)
    assert "result_type='matrix', series=2, steps=3" in repr(r)
    assert "value=1.5" in repr(instant(store, num(1.5), 0))
