"""Where ``__name__`` survives a query and where it goes: one case per path of the rule.

promlab follows Prometheus 3 with delayed name removal: operations that would drop the metric
name only mark the series, and the name goes when the result leaves the engine, so
``label_replace``/``label_join`` can still read (and keep) it. Without label functions and
``by (__name__)`` the result is the one eager removal gives (Prometheus 2.x, and 3.x without
``--enable-feature=promql-delayed-name-removal``).

Every expected value below was checked once against a real Prometheus 2.42 (the ``realprom``
test loads the same data with promtool and asserts the same label sets and instant values).
Where 2.42 answers differently, because 3.x removes names late or 2.42 lacks the function, the
case says so in ``v2`` (what 2.42 returns) and ``note``; the 3.x answer is the target.

One deliberate difference from Prometheus 3 *with* the delayed-removal flag: its vector/vector
comparison (``VectorBinop``) marks results with ``DropName: returnBool`` and so forgets a pending
drop of the left side, keeping ``__name__`` in ``rate(a[5m]) > ignoring(code) b``. promlab keeps
the mark, which gives what 2.x and 3.x without the flag return (issue 13, item 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import realprom
from promlab.errors import BadData, QueryError
from promlab.model import Labels
from promlab.promql.engine import Engine
from promlab.promql.values import Matrix, Vector
from promlab.storage import MemoryStorage

M = 60_000
# Data starts at a whole hour so subquery steps (absolute multiples) line up the same way in
# promlab and Prometheus; samples every minute from T0 to T0 + 30m.
T0_S = 1_699_999_200
T0_MS = T0_S * 1000
STEPS = 31
INSTANT_MS = T0_MS + 30 * M
AT_10M = f"@ {T0_S + 600}"

# (labels, value at minute k); requests_total{job="old"} stops at minute 14, so it only shows in
# queries whose range starts before 20m.
_k = np.arange(STEPS, dtype=np.float64)
DATA: list[tuple[dict[str, str], np.ndarray]] = [
    ({"__name__": "errors_total", "job": "api", "code": "500"}, 30 * _k),
    ({"__name__": "errors_total", "job": "web", "code": "500"}, 3 * _k),
    ({"__name__": "requests_total", "job": "api"}, 600 * _k),
    ({"__name__": "requests_total", "job": "web"}, 300 * _k),
    ({"__name__": "requests_total", "job": "old"}, 60 * _k[:15]),
    ({"__name__": "build_info", "job": "api", "version": "1.0"}, np.ones(STEPS)),
    ({"__name__": "build_info", "job": "web", "version": "2.0"}, np.ones(STEPS)),
    ({"__name__": "latency_bucket", "job": "api", "le": "0.1"}, 6 * _k),
    ({"__name__": "latency_bucket", "job": "api", "le": "+Inf"}, 60 * _k),
]

FAILS = "fails"  # the query is an error (duplicate label sets, or unknown to 2.42's parser)
SAME = "same"    # 2.42 answers like 3.x


@dataclass(frozen=True)
class Case:
    """One path: the expression, its instant result at 30m (label set -> value) under 3.x
    semantics, and optionally a different range window or a different 2.42 answer."""

    expr: str
    want: dict[str, float] | str
    v2: dict[str, float] | str = SAME
    note: str = ""
    # Range query (start, end, step) in minutes after T0; the label sets it returns.
    range_m: tuple[int, int, int] = (20, 30, 5)
    range_labels: frozenset[str] | str | None = None
    v2_range_labels: frozenset[str] | None = None

    def expected_range_labels(self) -> frozenset[str] | str:
        if isinstance(self.want, str):
            return self.want
        return self.range_labels if self.range_labels is not None else frozenset(self.want)

    def expected_v2(self) -> dict[str, float] | str:
        return self.want if self.v2 == SAME else self.v2

    def expected_v2_range_labels(self) -> frozenset[str] | str:
        if self.v2_range_labels is not None:
            return self.v2_range_labels
        if self.v2 == SAME:
            return self.expected_range_labels()
        if isinstance(self.v2, str):
            return self.v2
        return frozenset(self.v2)


E_API = 'errors_total{code="500", job="api"}'
E_WEB = 'errors_total{code="500", job="web"}'
API = '{code="500", job="api"}'
WEB = '{code="500", job="web"}'
NOT_IN_2_42 = "2.42 has no such function/aggregation (parse error)"

CASES = [
    # --- selectors and modifiers -----------------------------------------------------------
    pytest.param(Case("errors_total", {E_API: 900, E_WEB: 90}), id="selector-keeps"),
    pytest.param(Case("errors_total offset 5m", {E_API: 750, E_WEB: 75}), id="offset-keeps"),
    pytest.param(Case(f"errors_total {AT_10M}", {E_API: 300, E_WEB: 30}), id="at-keeps"),
    pytest.param(Case("-errors_total", {API: -900, WEB: -90}), id="unary-minus-drops"),
    pytest.param(Case("+errors_total", {E_API: 900, E_WEB: 90}), id="unary-plus-keeps"),
    pytest.param(Case("(errors_total)", {E_API: 900, E_WEB: 90}), id="paren-keeps"),
    # An instant query may return a range vector (value: its last point); a range query fails.
    pytest.param(Case("errors_total[5m]", {E_API: 900, E_WEB: 90}, range_labels=FAILS),
                 id="range-vector-keeps"),
    pytest.param(Case("rate(errors_total[5m])[10m:1m]", {API: 0.5, WEB: 0.05},
                      range_labels=FAILS), id="subquery-result-drops"),
    # --- functions ---------------------------------------------------------------------------
    pytest.param(Case("rate(errors_total[5m])", {API: 0.5, WEB: 0.05}), id="rate-drops"),
    pytest.param(Case("rate(errors_total[5m] offset 5m)", {API: 0.5, WEB: 0.05}),
                 id="rate-offset-drops"),
    pytest.param(Case(f"rate(errors_total[5m] {AT_10M})", {API: 0.5, WEB: 0.05}),
                 id="rate-at-drops"),
    pytest.param(Case("abs(errors_total)", {API: 900, WEB: 90}), id="abs-drops"),
    pytest.param(Case("clamp_max(errors_total, 100)", {API: 100, WEB: 90}), id="clamp-drops"),
    pytest.param(Case("round(errors_total)", {API: 900, WEB: 90}), id="round-drops"),
    pytest.param(Case("timestamp(errors_total)", {API: T0_S + 1800, WEB: T0_S + 1800}),
                 id="timestamp-drops"),
    pytest.param(Case("histogram_quantile(0.5, rate(latency_bucket[5m]))",
                      {'{job="api"}': 0.1}),
                 id="histogram-quantile-drops"),
    pytest.param(Case("sort(errors_total)", {E_API: 900, E_WEB: 90}), id="sort-keeps"),
    pytest.param(Case("sort_desc(rate(errors_total[5m]))", {API: 0.5, WEB: 0.05}),
                 id="sort-passes-drop-on"),
    pytest.param(Case('sort_by_label(errors_total, "job")', {E_API: 900, E_WEB: 90},
                      v2=FAILS, note=NOT_IN_2_42), id="sort-by-label-keeps"),
    pytest.param(Case("last_over_time(errors_total[5m])", {E_API: 900, E_WEB: 90}),
                 id="last-over-time-keeps"),
    pytest.param(Case("first_over_time(errors_total[5m])", {E_API: 780, E_WEB: 78},
                      v2=FAILS, note=NOT_IN_2_42), id="first-over-time-keeps"),
    pytest.param(Case("max_over_time(errors_total[5m])", {API: 900, WEB: 90}),
                 id="max-over-time-drops"),
    pytest.param(Case("present_over_time(errors_total[5m])", {API: 1, WEB: 1}),
                 id="present-over-time-drops"),
    pytest.param(Case("changes(errors_total[5m])", {API: 4, WEB: 4}, v2={API: 5, WEB: 5},
                      note="2.x windows are closed on the left: 6 samples in [25m, 30m]"),
                 id="changes-drops"),
    pytest.param(Case('absent(nonexistent{job="x"})', {'{job="x"}': 1}), id="absent"),
    pytest.param(Case("vector(1)", {"{}": 1}), id="vector"),
    # --- subqueries --------------------------------------------------------------------------
    pytest.param(Case("last_over_time(errors_total[10m:1m])", {E_API: 900, E_WEB: 90}),
                 id="subquery-last-over-time-keeps"),
    pytest.param(Case("last_over_time(rate(errors_total[5m])[10m:1m])", {API: 0.5, WEB: 0.05}),
                 id="subquery-last-over-time-of-rate-drops"),
    pytest.param(Case("last_over_time(errors_total[10m:1m] offset 5m)", {E_API: 750, E_WEB: 75}),
                 id="subquery-offset-keeps"),
    pytest.param(Case("max_over_time(errors_total[10m:1m])", {API: 900, WEB: 90}),
                 id="subquery-max-over-time-drops"),
    pytest.param(Case("rate(errors_total[5m:1m])", {API: 0.5, WEB: 0.05}),
                 id="subquery-rate-drops"),
    # --- label_replace / label_join ----------------------------------------------------------
    pytest.param(Case('label_replace(rate(errors_total[5m]), "__name__", "rate_$1", "__name__", '
                      '"(.+)")',
                      {'rate_errors_total{code="500", job="api"}': 0.5,
                       'rate_errors_total{code="500", job="web"}': 0.05},
                      v2={API: 0.5, WEB: 0.05},
                      note="2.x dropped the name before label_replace sees it: no match"),
                 id="label-replace-keeps-name-of-rate"),
    pytest.param(Case('label_replace(rate(errors_total[5m]), "metric", "$1", "__name__", "(.+)")',
                      {'{code="500", job="api", metric="errors_total"}': 0.5,
                       '{code="500", job="web", metric="errors_total"}': 0.05},
                      v2={API: 0.5, WEB: 0.05},
                      note="2.x: the name is already gone, so no metric label"),
                 id="label-replace-reads-dropped-name"),
    pytest.param(Case('label_join(rate(errors_total[5m]), "__name__", "_", "__name__", "job")',
                      {'errors_total_api{code="500", job="api"}': 0.5,
                       'errors_total_web{code="500", job="web"}': 0.05},
                      v2={'_api{code="500", job="api"}': 0.5, '_web{code="500", job="web"}': 0.05},
                      note="2.x joins an empty __name__"),
                 id="label-join-keeps-name-of-rate"),
    pytest.param(Case('label_replace(errors_total, "job", "x-$1", "job", "(.*)")',
                      {'errors_total{code="500", job="x-api"}': 900,
                       'errors_total{code="500", job="x-web"}': 90}),
                 id="label-replace-other-label-keeps"),
    pytest.param(Case('label_replace(-errors_total, "__name__", "neg", "", "")',
                      {'neg{code="500", job="api"}': -900, 'neg{code="500", job="web"}': -90}),
                 id="label-replace-sets-name-after-drop"),
    # --- arithmetic --------------------------------------------------------------------------
    pytest.param(Case("errors_total * 2", {API: 1800, WEB: 180}), id="vector-scalar-arith-drops"),
    pytest.param(Case("2 * errors_total", {API: 1800, WEB: 180}), id="scalar-vector-arith-drops"),
    pytest.param(Case("errors_total + ignoring(code) requests_total",
                      {'{job="api"}': 18900, '{job="web"}': 9090}),
                 id="vector-arith-ignoring-drops"),
    pytest.param(Case("errors_total / on(job) group_left(version) build_info",
                      {'{code="500", job="api", version="1.0"}': 900,
                       '{code="500", job="web", version="2.0"}': 90}),
                 id="arith-group-left-drops"),
    pytest.param(Case("build_info * on(job) group_right errors_total", {API: 900, WEB: 90}),
                 id="arith-group-right-drops"),
    # --- comparisons -------------------------------------------------------------------------
    pytest.param(Case("errors_total > 100", {E_API: 900}), id="filter-scalar-keeps"),
    pytest.param(Case("100 < errors_total", {E_API: 900}), id="filter-scalar-left-keeps"),
    pytest.param(Case("errors_total > bool 100", {API: 1, WEB: 0}), id="bool-scalar-drops"),
    pytest.param(Case("rate(errors_total[5m]) > 0.1", {API: 0.5}),
                 id="filter-scalar-after-rate-drops"),
    pytest.param(Case("rate(errors_total[5m]) > ignoring(code) 0.01 * rate(requests_total[5m])",
                      {'{job="api"}': 0.5},
                      note="issue 13.5; Prometheus 3 main with the delayed-removal flag forgets "
                           "the mark here and keeps errors_total; 2.x and 3.x default drop it"),
                 id="filter-vector-after-rate-drops"),
    pytest.param(Case("rate(errors_total[5m]) > on(job) 0.01 * rate(requests_total[5m])",
                      {'{job="api"}': 0.5}), id="filter-vector-on-after-rate-drops"),
    pytest.param(Case("errors_total > ignoring(code) requests_total / 100",
                      {'errors_total{job="api"}': 900}), id="filter-vector-keeps"),
    pytest.param(Case("rate(errors_total[5m]) > bool ignoring(code) "
                      "0.01 * rate(requests_total[5m])", {'{job="api"}': 1, '{job="web"}': 0}),
                 id="bool-vector-after-rate-drops"),
    pytest.param(Case("errors_total > bool ignoring(code) requests_total / 100",
                      {'{job="api"}': 1, '{job="web"}': 0}), id="bool-vector-drops"),
    pytest.param(Case("rate(errors_total[5m]) > on(job) group_left(version) (0.01 * build_info)",
                      {'{code="500", job="api", version="1.0"}': 0.5,
                       '{code="500", job="web", version="2.0"}': 0.05},
                      note="3.x with the flag keeps errors_total here (see issue 13.5)"),
                 id="filter-group-left-after-rate-drops"),
    pytest.param(Case("errors_total > on(job) group_left(version) build_info",
                      {'errors_total{code="500", job="api", version="1.0"}': 900,
                       'errors_total{code="500", job="web", version="2.0"}': 90}),
                 id="filter-group-left-keeps"),
    pytest.param(Case("(0.01 * build_info) < on(job) group_right rate(errors_total[5m])",
                      {API: 0.01, WEB: 0.01},
                      note="labels from the many (right) side, value from the left"),
                 id="filter-group-right-after-rate-drops"),
    pytest.param(Case("build_info < on(job) group_right errors_total", {E_API: 1, E_WEB: 1}),
                 id="filter-group-right-keeps-right-name"),
    pytest.param(Case('label_replace(rate(errors_total[5m]) > ignoring(code) '
                      '0.01 * rate(requests_total[5m]), "__name__", "$1", "__name__", "(.+)")',
                      {'errors_total{job="api"}': 0.5}, v2={'{job="api"}': 0.5},
                      note="3.x: the filter passes the pending drop on, label_replace cancels it"),
                 id="label-replace-after-filter-keeps-name"),
    # --- set operators -----------------------------------------------------------------------
    pytest.param(Case("rate(errors_total[5m]) and errors_total", {API: 0.5, WEB: 0.05}),
                 id="and-left-drops"),
    pytest.param(Case("errors_total and rate(errors_total[5m])", {E_API: 900, E_WEB: 90}),
                 id="and-left-keeps"),
    pytest.param(Case("errors_total or rate(requests_total[5m])",
                      {E_API: 900, E_WEB: 90, '{job="api"}': 10, '{job="web"}': 5}),
                 id="or-mixed"),
    pytest.param(Case("-errors_total or errors_total", {API: -900, WEB: -90}),
                 id="or-right-same-signature-left-out"),
    pytest.param(Case('rate(errors_total[5m]) unless on(job) build_info{job="web"}', {API: 0.5}),
                 id="unless-left-drops"),
    # --- aggregations ------------------------------------------------------------------------
    pytest.param(Case("sum(errors_total)", {"{}": 990}), id="sum"),
    pytest.param(Case("sum by (__name__) (errors_total)", {"errors_total": 990}),
                 id="sum-by-name-keeps"),
    pytest.param(Case("max by (__name__, job) (errors_total)",
                      {'errors_total{job="api"}': 900, 'errors_total{job="web"}': 90}),
                 id="max-by-name-keeps"),
    pytest.param(Case("sum by (__name__) (rate(errors_total[5m]))", {"{}": 0.55}),
                 id="sum-by-name-of-rate-drops"),
    pytest.param(Case('sum by (__name__) (rate({__name__=~"errors_total|requests_total"}[5m]))',
                      FAILS, v2={"{}": 15.55},
                      note="3.x groups by the not yet removed names, then they collide"),
                 id="sum-by-name-collision"),
    pytest.param(Case('sum by (__name__) (requests_total{job="api"} or '
                      'rate(requests_total{job="old"}[5m]))',
                      {"requests_total": 18000}, range_m=(10, 30, 5),
                      range_labels=frozenset({"requests_total"}),
                      v2_range_labels=frozenset({"requests_total", "{}"}),
                      note="3.x: the group's last step (only job=api) decides its mark; "
                           "2.x splits the renamed rate into its own group"),
                 id="sum-by-name-mark-from-last-step"),
    pytest.param(Case("topk(1, errors_total)", {E_API: 900}), id="topk-keeps"),
    pytest.param(Case("topk(1, rate(errors_total[5m]))", {API: 0.5}), id="topk-drops"),
    pytest.param(Case("bottomk(1, abs(errors_total))", {WEB: 90}), id="bottomk-drops"),
    pytest.param(Case("topk(1, sum by (__name__) (rate(errors_total[5m])))", {"{}": 0.55}),
                 id="topk-passes-group-drop-on"),
    pytest.param(Case("limitk(5, errors_total)", {E_API: 900, E_WEB: 90}, v2=FAILS,
                      note=NOT_IN_2_42), id="limitk-keeps"),
    pytest.param(Case("limit_ratio(1, rate(errors_total[5m]))", {API: 0.5, WEB: 0.05}, v2=FAILS,
                      note=NOT_IN_2_42), id="limit-ratio-drops"),
    pytest.param(Case("quantile by (__name__) (0.5, errors_total)", {"errors_total": 495}),
                 id="quantile-by-name-keeps"),
    pytest.param(Case("quantile by (__name__) (0.5, rate(errors_total[5m]))", {"{}": 0.275}),
                 id="quantile-by-name-of-rate-drops"),
    pytest.param(Case('count_values("v", errors_total)', {'{v="900"}': 1, '{v="90"}': 1},
                      range_labels=frozenset({'{v="900"}', '{v="90"}', '{v="750"}',
                                              '{v="75"}', '{v="600"}', '{v="60"}'})),
                 id="count-values"),
    pytest.param(Case('count_values by (__name__) ("v", rate(errors_total[5m]))',
                      {'errors_total{v="0.5"}': 1, 'errors_total{v="0.05"}': 1},
                      v2={'{v="0.5"}': 1, '{v="0.05"}': 1},
                      note="3.x: count_values never marks its output, so the by(__name__) "
                           "label read before removal stays"),
                 id="count-values-by-name-of-rate"),
    pytest.param(Case("group by (__name__) (errors_total)", {"errors_total": 1}),
                 id="group-by-name-keeps"),
]


def _store() -> MemoryStorage:
    st = MemoryStorage()
    for labels, values in DATA:
        t = T0_MS + np.arange(values.shape[0], dtype=np.int64) * M
        st.add_series(Labels(labels), t, values.astype(np.float64))
    return st


@pytest.fixture(scope="module")
def store() -> MemoryStorage:
    return _store()


def _instant(store: MemoryStorage, expr: str) -> dict[str, float] | str:
    try:
        res = Engine(features="all").instant(store, expr, INSTANT_MS)
    except (QueryError, BadData):
        return FAILS
    v = res.value
    if isinstance(v, Matrix):
        return {str(ls): float(v.values[v.offsets[i + 1] - 1]) for i, ls in enumerate(v.labels)}
    assert isinstance(v, Vector)
    return {str(ls): float(v.values[i, 0]) for i, ls in enumerate(v.labels) if v.present[i, 0]}


def _range_labels(store: MemoryStorage, case: Case) -> frozenset[str] | str:
    a, b, step = case.range_m
    try:
        res = Engine(features="all").range(store, case.expr, T0_MS + a * M, T0_MS + b * M, step * M)
    except (QueryError, BadData):
        return FAILS
    v = res.value
    assert isinstance(v, Vector)
    return frozenset(str(ls) for ls in v.labels)


def _assert_same(got: dict[str, float] | str, want: dict[str, float] | str) -> None:
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
        return
    assert sorted(got) == sorted(want)
    for k, w in want.items():
        assert got[k] == pytest.approx(w, rel=1e-9), k


@pytest.mark.parametrize("case", CASES)
def test_name_dropping(store: MemoryStorage, case: Case) -> None:
    _assert_same(_instant(store, case.expr), case.want)
    assert _range_labels(store, case) == case.expected_range_labels()


def test_every_case_can_fail(store: MemoryStorage) -> None:
    """The table has teeth: a name kept where it is dropped (or the reverse) is caught."""
    case = Case("rate(errors_total[5m])", {E_API: 0.5, E_WEB: 0.05})
    with pytest.raises(AssertionError):
        _assert_same(_instant(store, case.expr), case.want)


# --- the same table against a real Prometheus 2.42 -----------------------------------------------

def _openmetrics(path: Path) -> None:
    lines: list[str] = []
    by_name: dict[str, list[tuple[dict[str, str], np.ndarray]]] = {}
    for labels, values in DATA:
        by_name.setdefault(labels["__name__"], []).append((labels, values))
    for name, series in by_name.items():
        lines.append(f"# TYPE {name} unknown")
        for labels, values in series:
            body = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
            for k, v in enumerate(values.tolist()):
                lines.append(f"{name}{{{body}}} {v!r} {T0_S + 60 * k}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def prometheus_2_42(tmp_path_factory: pytest.TempPathFactory) -> Any:
    realprom.require_binary("promtool")
    realprom.require_binary("prometheus")
    root = tmp_path_factory.mktemp("name_dropping")
    _openmetrics(root / "data.om")
    realprom.backfill(root / "data.om", root / "data", progress=False)
    with realprom.prometheus(data_dir=root / "data") as prom:
        yield prom


def _prom_labels(metric: dict[str, str]) -> str:
    return str(Labels(metric))


@pytest.mark.realprom
@pytest.mark.parametrize("case", CASES)
def test_name_dropping_agrees_with_prometheus_2_42(prometheus_2_42: Any, case: Case) -> None:
    prom = prometheus_2_42
    want = case.expected_v2()
    try:
        got_i = prom.query(case.expr, time=INSTANT_MS / 1000)
        got: dict[str, float] | str = {
            _prom_labels(r["metric"]): float((r["values"][-1] if "values" in r else r["value"])[1])
            for r in got_i["result"]}
    except realprom.PrometheusAPIError:
        got = FAILS
    _assert_same(got, want)
    a, b, step = case.range_m
    try:
        got_r = prom.query_range(case.expr, T0_S + 60 * a, T0_S + 60 * b, 60 * step)
        labels: frozenset[str] | str = frozenset(_prom_labels(r["metric"])
                                                 for r in got_r["result"])
    except realprom.PrometheusAPIError:
        labels = FAILS
    assert labels == case.expected_v2_range_labels()


def test_v2_notes_explain_differences() -> None:
    """Every case whose 2.42 answer differs says why."""
    for p in CASES:
        case = p.values[0]
        assert isinstance(case, Case)
        differs = case.v2 != SAME or case.v2_range_labels is not None
        assert not differs or case.note, p.id
