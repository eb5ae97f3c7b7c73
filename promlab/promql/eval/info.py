"""The experimental ``info(v, [data-label-selector])`` function.

``info()`` adds the data labels of "info" series (``target_info`` by default) to the series of
``v`` that share their identifying labels (``instance`` and ``job``). It needs the evaluator,
not just its arguments' values: the info series are looked up, with the usual lookback, at the
time the samples of ``v`` refer to, so an ``@`` or ``offset`` on ``v``'s selector (or subquery)
moves the lookup with it.

Rules (Prometheus 3's, as its tests pin them down):

* the selector's ``__name__`` matchers pick the info metrics (default ``target_info``; only
  negative ones are narrowed to ``.+_info``); its other matchers filter the info series and name
  the data labels to add (all non-identifying labels when there are none);
* a series of ``v`` that is itself matched by every ``__name__`` matcher passes through;
* of several info series of one metric matching at a step, the one with the latest sample
  wins; two metrics giving one label different values is an error;
* labels the series already has are kept; without a matching info series a sample is kept
  unchanged if every data matcher accepts the empty string, and dropped otherwise;
* an info series holding a native histogram sample is an error (info metrics are floats).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from promlab.errors import QueryError
from promlab.model import METRIC_NAME, Labels, Matcher, MatchType
from promlab.promql.eval.names import DUPLICATE_LABELSET
from promlab.promql.eval.state import EvalState
from promlab.promql.parser import ast
from promlab.promql.values import I64, EvalContext, Value, Vector

__all__ = ["IDENTIFYING_LABELS", "eval_info", "reference_times"]

IDENTIFYING_LABELS = ("instance", "job")
_POSITIVE = (MatchType.EQUAL, MatchType.REGEX)


def reference_times(node: ast.Expr, ctx: EvalContext) -> I64:
    """Per step, the time the samples of ``node`` refer to (``@`` and offsets applied).

    Follows the first selector or subquery found depth-first; the step times if none.
    """
    times = ctx.steps_ms.astype(np.int64)

    def pinned(at_ms: int | None, mod: str | None, cur: I64) -> I64:
        if at_ms is not None:
            return np.full_like(cur, at_ms)
        if mod == "start":
            return np.full_like(cur, ctx.start_ms)
        if mod == "end":
            return np.full_like(cur, ctx.end_ms)
        return cur

    cur: ast.Expr | None = node
    while cur is not None:
        if isinstance(cur, ast.VectorSelector):
            return pinned(cur.at_ms, cur.at_modifier, times) - cur.offset_ms
        if isinstance(cur, ast.MatrixSelector):
            cur = cur.vector_selector
            continue
        if isinstance(cur, ast.SubqueryExpr):
            times = pinned(cur.at_ms, cur.at_modifier, times) - cur.offset_ms
            cur = cur.expr
            continue
        kids = [c for c in ast.children(cur) if c.type in (ast.ValueType.VECTOR, ast.ValueType.MATRIX)]
        cur = kids[0] if kids else None
    return times


def _id_key(ls: Labels) -> tuple[str, ...]:
    return tuple(ls.get(n, "") for n in IDENTIFYING_LABELS)


def eval_info(node: ast.Call, ev: EvalState, ctx: EvalContext) -> Value:
    base = ev.eval(node.args[0], ctx)
    if not isinstance(base, Vector):  # pragma: no cover - the parser checks the type
        raise QueryError("info() expects an instant vector")
    sel = node.args[1] if len(node.args) > 1 else None
    matchers: list[Matcher] = list(sel.matchers) if isinstance(sel, ast.VectorSelector) else []
    name_ms = [m for m in matchers if m.name == METRIC_NAME]
    data_ms = [m for m in matchers if m.name != METRIC_NAME]
    select = list(matchers)
    if not name_ms:
        name_ms = [Matcher(MatchType.EQUAL, METRIC_NAME, "target_info")]
        select += name_ms
    elif not any(m.type in _POSITIVE for m in name_ms):
        name_ms.append(Matcher(MatchType.REGEX, METRIC_NAME, ".+_info"))
        select.append(name_ms[-1])
    n_steps = ctx.num_steps
    ref = reference_times(node.args[0], ctx)
    order = np.argsort(ref, kind="stable")
    info_ctx = dataclasses.replace(ctx, steps_ms=ref[order])
    info = ev.eval(ast.VectorSelector(name=None, matchers=tuple(select)), info_ctx)
    assert isinstance(info, Vector)
    inv = np.empty_like(order)
    inv[order] = np.arange(order.shape[0])
    info_present = info.present[:, inv]
    if info.histograms is not None and any(h is not None for h in info.histograms[info_present]):
        raise QueryError("info() series selector matched a series with native histogram samples; "
                         "info metrics must be floats")
    info_ts = (info.timestamps_ms[:, inv] if info.timestamps_ms is not None
               else np.zeros_like(info_present, np.int64))
    by_id: dict[tuple[str, ...], list[int]] = {}
    for j, ls in enumerate(info.labels):
        by_id.setdefault(_id_key(ls), []).append(j)
    wanted = {m.name for m in data_ms}
    empty_ok = all(m.matches("") for m in data_ms)

    rows: dict[Labels, int] = {}
    out_labels: list[Labels] = []
    cells: list[tuple[int, int, int]] = []   # (out row, base row, step)
    base_drop = base.drop_name_mask()
    for i, ls in enumerate(base.labels):
        steps = np.flatnonzero(base.present[i])
        if not steps.size:
            continue
        name = ls.get(METRIC_NAME)
        if name is not None and all(m.matches(name) for m in name_ms):
            _emit(rows, out_labels, cells, ls, i, steps.tolist())
            continue
        cands = by_id.get(_id_key(ls), [])
        for t in steps.tolist():
            chosen: dict[str, int] = {}
            for j in cands:
                if not info_present[j, t]:
                    continue
                metric = info.labels[j].get(METRIC_NAME, "")
                best = chosen.get(metric)
                if best is None or info_ts[j, t] > info_ts[best, t]:
                    chosen[metric] = j
            if not chosen:
                if empty_ok:
                    _emit(rows, out_labels, cells, ls, i, [t])
                continue
            add: dict[str, str] = {}
            for j in chosen.values():
                for k, v in info.labels[j].pairs:
                    if k == METRIC_NAME or k in IDENTIFYING_LABELS or (wanted and k not in wanted):
                        continue
                    if ls.get(k) is not None:
                        continue
                    prev = add.get(k)
                    if prev is not None and prev != v:
                        raise QueryError(f"conflicting label: {k!r} has values {prev!r} and {v!r} "
                                         "in different info series")
                    add[k] = v
            out = Labels({**dict(ls.pairs), **add}) if add else ls
            _emit(rows, out_labels, cells, out, i, [t])
    values = np.zeros((len(out_labels), n_steps))
    present = np.zeros((len(out_labels), n_steps), bool)
    drop = np.zeros(len(out_labels), bool)
    for r, i, t in cells:
        if present[r, t]:
            raise QueryError(DUPLICATE_LABELSET)
        present[r, t] = True
        values[r, t] = base.values[i, t]
        drop[r] |= bool(base_drop[i])
    return Vector(out_labels, values, present, drop)


def _emit(rows: dict[Labels, int], out_labels: list[Labels], cells: list[tuple[int, int, int]],
          ls: Labels, i: int, steps: list[int]) -> None:
    r = rows.get(ls)
    if r is None:
        r = rows[ls] = len(out_labels)
        out_labels.append(ls)
    cells.extend((r, i, t) for t in steps)
