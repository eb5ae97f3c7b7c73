"""Per-query fixed costs: the vectorised Kahan fold, memoised label derivations, name dropping."""

from __future__ import annotations

import numpy as np
import pytest

from promlab.errors import QueryError
from promlab.model import Labels
from promlab.promql import labelmemo
from promlab.promql.eval.functions._common import kahan_fold, kahan_inc
from promlab.promql.eval.names import finalize_names
from promlab.promql.values import Vector, group_labels

SPECIAL = [0.0, -0.0, 1.0, -1.0, 1e-16, 1e100, -1e100, 1.7e308, -1.7e308, np.inf, -np.inf,
           np.nan]


def _loop(block: np.ndarray) -> np.ndarray:
    s = np.zeros(block.shape[1:])
    c = np.zeros(block.shape[1:])
    for row in block:
        s, c = kahan_inc(row, s, c)
    with np.errstate(all="ignore"):
        out: np.ndarray = s + c
    return out


def _blocks() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    return [
        ("cancelling", np.array([[1e100], [1.0], [-1e100], [3.0]])),
        ("negative-zeros", np.array([[-0.0, -0.0], [-0.0, 1.0], [-0.0, -0.0]])),
        ("overflow-to-inf", np.array([[1.7e308], [1.7e308], [-1.0]])),
        ("inf-minus-inf", np.array([[np.inf], [-np.inf], [1.0]])),
        ("empty", np.zeros((0, 3))),
        ("wide-magnitudes", rng.normal(size=(40, 6)) * 10.0 ** rng.integers(-8, 20, (40, 6))),
        ("specials", rng.choice(SPECIAL, size=(25, 8))),
        ("three-d", rng.normal(size=(9, 3, 4)) * 1e15),
        # Rows of 64 cells and more take the row-loop path.
        ("wide-rows-specials", rng.choice(SPECIAL, size=(30, 80))),
        ("wide-rows-magnitudes", rng.normal(size=(50, 2, 70)) * 10.0 ** rng.integers(-8, 20, (50, 2, 70))),
        ("wide-single-row", np.array([[-0.0] * 64])),
    ]


@pytest.mark.parametrize(("name", "block"), _blocks(), ids=[n for n, _ in _blocks()])
def test_kahan_fold_is_the_sequential_fold_bit_for_bit(name: str, block: np.ndarray) -> None:
    total, comp = kahan_fold(block)
    with np.errstate(all="ignore"):
        got = total + comp
    want = _loop(block)
    same_bits = got.view(np.int64) == want.view(np.int64)
    assert (same_bits | (np.isnan(got) & np.isnan(want))).all()


def test_kahan_fold_compensates() -> None:
    # A plain sum loses the 1.0 entirely; the compensated one keeps it.
    total, comp = kahan_fold(np.array([[1e100], [1.0], [-1e100]]))
    assert total[0] == 0.0
    assert total[0] + comp[0] == 1.0


GROUP_CASES = [
    ("by-one", ["a"], False, [{"a": "1"}, {"a": "2"}, {"a": "1"}], [0, 1, 0]),
    ("by-missing", ["zz"], False, [{"a": "1"}, {"a": "2"}], [0, 0]),
    ("without-drops-name", ["b"], True, [{"a": "1", "b": "x"}, {"a": "1", "b": "y"},
                                         {"a": "2", "b": "x"}], [0, 0, 1]),
    ("by-two", ["a", "b"], False, [{"a": "1", "b": "x"}, {"a": "1"}, {"a": "1", "b": "x"}],
     [0, 1, 0]),
]


@pytest.mark.parametrize(("name", "names", "without", "sets", "want_ids"), GROUP_CASES,
                         ids=[c[0] for c in GROUP_CASES])
def test_group_labels_first_appearance_order(name: str, names: list[str], without: bool,
                                             sets: list[dict[str, str]], want_ids: list[int],
                                             ) -> None:
    labels = [Labels({"__name__": "m", **s}) for s in sets]
    for _ in range(2):  # the second call answers from the memo
        ids, groups = group_labels(labels, names, without=without)
        assert ids.tolist() == want_ids
        for i, ls in enumerate(labels):
            keep = {k: v for k, v in ls.items()
                    if ((k not in names and k != "__name__") if without else k in names)}
            assert groups[int(ids[i])] == Labels(keep)


def test_memo_keyed_by_identity_not_reused_ids() -> None:
    # Entries keep their input alive: a new object never answers from another's entry.
    first = labelmemo.without_name_labels([Labels({"__name__": "m", "a": "1"})])
    again = labelmemo.without_name_labels([Labels({"__name__": "m", "a": "2"})])
    assert first == [Labels({"a": "1"})]
    assert again == [Labels({"a": "2"})]


def test_memo_results_are_interned() -> None:
    a = Labels({"__name__": "x", "job": "j"})
    b = Labels({"__name__": "y", "job": "j"})
    out = labelmemo.without_name_labels([a, b])
    assert out[0] is out[1]


def test_memo_table_starts_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labelmemo, "MAX_ENTRIES", 4)
    memo = labelmemo.LabelMemo(lambda ls: ls.without(("__name__",)))
    many = [Labels({"__name__": "m", "i": str(i)}) for i in range(10)]
    out = memo.map(many)
    assert out == [Labels({"i": str(i)}) for i in range(10)]
    assert memo.map(many[:3]) == out[:3]


NAME_CASES = [
    ("all-dropped-distinct", [True, True], [{"__name__": "a", "j": "1"},
                                            {"__name__": "a", "j": "2"}],
     [{"j": "1"}, {"j": "2"}]),
    ("some-dropped", [True, False], [{"__name__": "a", "j": "1"}, {"__name__": "b", "j": "1"}],
     [{"j": "1"}, {"__name__": "b", "j": "1"}]),
    ("type-unit-dropped", [True], [{"__name__": "a", "__type__": "gauge", "__unit__": "s",
                                    "j": "1"}], [{"j": "1"}]),
]


@pytest.mark.parametrize(("name", "drop", "sets", "want"), NAME_CASES,
                         ids=[c[0] for c in NAME_CASES])
def test_finalize_names(name: str, drop: list[bool], sets: list[dict[str, str]],
                        want: list[dict[str, str]]) -> None:
    n = len(sets)
    vec = Vector([Labels(s) for s in sets], np.ones((n, 1)), np.ones((n, 1), bool),
                 np.array(drop))
    out = finalize_names(vec)
    assert out.labels == [Labels(w) for w in want]
    assert out.drop_name is None


def test_finalize_names_merges_disjoint_collisions_and_refuses_overlaps() -> None:
    labels = [Labels({"__name__": "a", "j": "1"}), Labels({"__name__": "b", "j": "1"})]
    disjoint = Vector(labels, np.array([[1.0, 0.0], [0.0, 2.0]]),
                      np.array([[True, False], [False, True]]), np.array([True, True]))
    out = finalize_names(disjoint)
    assert isinstance(out, Vector)
    assert out.labels == [Labels({"j": "1"})]
    assert out.values.tolist() == [[1.0, 2.0]]
    overlapping = Vector(labels, np.ones((2, 2)), np.ones((2, 2), bool), np.array([True, True]))
    with pytest.raises(QueryError):
        finalize_names(overlapping)


NAME_OF_CASES = [
    ("named", [{"__name__": "a", "j": "1"}], ["a"]),
    ("unnamed", [{"j": "1"}], [""]),
    ("mixed", [{"__name__": "a"}, {"j": "2"}, {"__name__": "b", "j": "3"}], ["a", "", "b"]),
]


@pytest.mark.parametrize(("name", "sets", "want"), NAME_OF_CASES, ids=[c[0] for c in NAME_OF_CASES])
def test_metric_names(name: str, sets: list[dict[str, str]], want: list[str]) -> None:
    labels = [Labels(s) for s in sets]
    assert labelmemo.metric_names(labels) == want
    assert labelmemo.metric_names(labels) == want  # memoised


def test_parse_cache_returns_the_same_tree_and_does_not_cache_errors() -> None:
    from promlab.errors import ParseError
    from promlab.promql.engine import Engine
    from promlab.storage import MemoryStorage

    st = MemoryStorage()
    st.add_series(Labels({"__name__": "up", "job": "a"}), [0], [1.0])
    eng = Engine()
    a = eng.instant(st, "up + 1", 1000)
    b = eng.instant(st, "up + 1", 1000)
    assert a.expr is b.expr
    assert a.value.values.tolist() == [[2.0]]
    for _ in range(2):
        with pytest.raises(ParseError):
            eng.instant(st, "up +", 1000)


class _EstimatingQuerier:
    """A MemoryStorage querier that counts its selects and estimates a fixed sample count."""

    def __init__(self, inner: object, estimate: int, selects: list[int]) -> None:
        self._inner = inner
        self._estimate = estimate
        self._selects = selects

    def select(self, matchers: object, hints: object = None) -> object:
        self._selects.append(1)
        return self._inner.select(matchers, hints)  # type: ignore[attr-defined]

    def estimate_samples(self, matchers: object, mint_ms: int, maxt_ms: int) -> int:
        return self._estimate

    def label_names(self, matchers: object = ()) -> list[str]:
        return self._inner.label_names(matchers)  # type: ignore[attr-defined,no-any-return]

    def label_values(self, name: str, matchers: object = ()) -> list[str]:
        return self._inner.label_values(name, matchers)  # type: ignore[attr-defined,no-any-return]

    def series(self, matchers: object) -> list[Labels]:
        return self._inner.series(matchers)  # type: ignore[attr-defined,no-any-return]

    def close(self) -> None:
        self._inner.close()  # type: ignore[attr-defined]


class _EstimatingStore:
    def __init__(self, inner: object, estimate: int) -> None:
        self.inner = inner
        self.estimate = estimate
        self.selects: list[int] = []

    def querier(self, mint_ms: int, maxt_ms: int) -> _EstimatingQuerier:
        q = self.inner.querier(mint_ms, maxt_ms)  # type: ignore[attr-defined]
        return _EstimatingQuerier(q, self.estimate, self.selects)


_UNSLICED = 1 << 19  # limits.unsliced_samples with a 2 m timeout: SLICE_SAMPLES // 4


@pytest.mark.parametrize(("estimate", "timeout", "cancel", "query", "sliced"), [
    pytest.param(1_000, None, False, "g", False, id="few-samples-one-read"),
    pytest.param(1 << 30, None, False, "g", True, id="many-samples-sliced"),
    pytest.param(1_000, "2m", False, "g", False, id="timeout-few-samples-one-read"),
    pytest.param(_UNSLICED, "2m", False, "g", False, id="timeout-at-unsliced-bound-one-read"),
    pytest.param(_UNSLICED + 1, "2m", False, "g", True, id="timeout-over-unsliced-bound-sliced"),
    pytest.param(1_000, None, True, "g", False, id="cancel-few-samples-one-read"),
    pytest.param(1_000, "2m", False, "max_over_time(g[20m:1m])", True,
                 id="timeout-subquery-steps-still-sliced"),
])
def test_range_query_sliced_only_when_storage_estimates_many_samples(
        estimate: int, timeout: str | None, cancel: bool, query: str, sliced: bool) -> None:
    import threading

    from promlab.promql.engine import Engine
    from promlab.promql.eval import limits
    from promlab.storage import MemoryStorage

    assert limits.SLICE_SAMPLES // 4 == _UNSLICED
    st = MemoryStorage()
    ts = np.arange(0, 400 * 60_000, 60_000, dtype=np.int64)
    for i in range(3):
        st.add_series(Labels({"__name__": "g", "i": str(i)}), ts, np.arange(ts.size) * 1.0 + i)
    store = _EstimatingStore(st, estimate)
    got = Engine(timeout=timeout).range(  # type: ignore[arg-type]
        store, query, 0, ts[-1], 60_000, cancel=threading.Event() if cancel else None)
    want = Engine(timeout=None).range(st, query, 0, ts[-1], 60_000)
    assert (len(store.selects) > 1) is sliced
    assert got.value.labels == want.value.labels
    np.testing.assert_array_equal(got.value.present, want.value.present)
    np.testing.assert_array_equal(got.value.values, want.value.values)


DISTINCT_CASES = [
    ("empty", [], True),
    ("equal-values-distinct-objects", [{"a": "1"}, {"a": "1"}], False),
    ("different", [{"a": "1"}, {"a": "2"}], True),
    ("subset", [{"a": "1"}, {"a": "1", "b": "2"}], True),
]


@pytest.mark.parametrize(("name", "sets", "want"), DISTINCT_CASES,
                         ids=[c[0] for c in DISTINCT_CASES])
def test_distinct(name: str, sets: list[dict[str, str]], want: bool) -> None:
    labels = [Labels(s) for s in sets]
    assert labelmemo.distinct(labels) is want
    assert labelmemo.distinct(labels) is want  # memoised


def _grid_matrix_cases() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, int]]:
    rng = np.random.default_rng(11)
    steps = np.arange(60_000, 60_000 * 41, 60_000, dtype=np.int64)
    ref = np.arange(600_000, 2_400_001, 90_000, dtype=np.int64)
    return [
        ("dense", np.ones((3, steps.size), bool), steps, ref, 600_000),
        ("gaps", rng.random((4, steps.size)) < 0.6, steps, ref, 600_000),
        ("empty-row", np.vstack([np.zeros(steps.size, bool), np.ones(steps.size, bool)]),
         steps, ref, 300_000),
        ("window-on-grid-edges", rng.random((2, steps.size)) < 0.8, steps,
         np.arange(600_000, 2_400_001, 60_000, dtype=np.int64), 120_000),
    ]


@pytest.mark.parametrize(("name", "present", "steps", "ref", "range_ms"), _grid_matrix_cases(),
                         ids=[c[0] for c in _grid_matrix_cases()])
def test_subquery_matrix_bounds_match_searched_bounds(monkeypatch: pytest.MonkeyPatch, name: str,
                                                      present: np.ndarray, steps: np.ndarray,
                                                      ref: np.ndarray, range_ms: int) -> None:
    from promlab.promql.eval import serieschunks
    from promlab.promql.eval.serieschunks import series_blocks
    from promlab.promql.eval.subquery import vector_to_matrix
    from promlab.promql.values import Matrix

    n = present.shape[0]
    vec = Vector([Labels({"i": str(i)}) for i in range(n)], np.ones(present.shape), present)
    m = vector_to_matrix(vec, steps, ref - range_ms, ref, range_ms)
    assert m.bounds is not None
    searched = Matrix(m.labels, m.offsets, m.ts_ms, m.values, m.window_start_ms,
                      m.window_end_ms, m.range_ms)
    for got, want in zip(m.window_bounds(), searched.window_bounds(), strict=True):
        np.testing.assert_array_equal(got, want)
    monkeypatch.setattr(serieschunks, "BLOCK_CELLS", ref.size)  # a block per series
    blocks = list(series_blocks(m))
    assert len(blocks) == len(m.labels)
    for block in blocks:  # blocks carry their rows' bounds, rebased
        plain = Matrix(block.labels, block.offsets, block.ts_ms, block.values,
                       block.window_start_ms, block.window_end_ms, block.range_ms)
        for got, want in zip(block.window_bounds(), plain.window_bounds(), strict=True):
            np.testing.assert_array_equal(got, want)
