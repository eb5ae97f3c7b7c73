"""Binary operators over whole frames: scalar/scalar, vector/scalar and vector/vector.

Vector matching is done once per query, not per step: series get a join-signature id, the
(many-side, one-side) pairs that share a signature are enumerated over label sets, and every
check Prometheus does per step (duplicates on the one side, several matches in one-to-one
matching, non-unique group_left results) becomes a count over ``(group, step)`` arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from promlab.errors import QueryError
from promlab.model import Labels
from promlab.model.arrays import unique
from promlab.promql.eval import binmatch, histbinops, histops
from promlab.promql.eval.binmatch import ARITHMETIC
from promlab.promql.eval.functions._common import info
from promlab.promql.eval.functions.native import concat_vectors, histogram_cells, without_histograms
from promlab.promql.eval.gomath import go_pow
from promlab.promql.eval.gotrig import go_atan2
from promlab.promql.eval.histbinops import TRIM_OPS, trim_vector_scalar
from promlab.promql.eval.names import merge_same_labels
from promlab.promql.eval.state import EvalState
from promlab.promql.parser.ast import BinaryExpr, VectorMatching
from promlab.promql.values import F64, I64, B, EvalContext, Scalar, Value, Vector

__all__ = ["ARITHMETIC", "COMPARISON", "SET_OPS", "apply_arith", "apply_compare", "eval_binary",
           "unique_pairs"]

COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})
SET_OPS = frozenset({"and", "or", "unless"})


def _power(a: F64 | float, b: F64 | float) -> F64:
    return go_pow(a, b)


# Operator tables (Go float semantics: ``%`` is ``math.Mod`` = fmod, ``^`` is ``math.Pow``,
# ``atan2`` is ``math.Atan2``).
_ARITH: dict[str, Callable[[F64 | float, F64 | float], F64]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "%": np.fmod,
    "^": _power,
    "atan2": go_atan2,
}
_COMPARE: dict[str, Callable[[F64 | float, F64 | float], B]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}


def apply_arith(op: str, a: F64 | float, b: F64 | float) -> F64:
    """Element-wise arithmetic ``a op b``."""
    fn = _ARITH.get(op)
    if fn is None:
        raise QueryError(f"operator {op!r} not allowed for arithmetic")
    with np.errstate(all="ignore"):
        return fn(a, b)


def apply_compare(op: str, a: F64 | float, b: F64 | float) -> B:
    """Element-wise comparison ``a op b``."""
    fn = _COMPARE.get(op)
    if fn is None:
        raise QueryError(f"operator {op!r} is not a comparison")
    with np.errstate(all="ignore"):
        return fn(a, b)


def eval_binary(node: BinaryExpr, ev: EvalState, ctx: EvalContext) -> Value:
    lhs = ev.eval(node.lhs, ctx)
    rhs = ev.eval(node.rhs, ctx)
    op = node.op
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        return _scalar_scalar(op, lhs, rhs)
    if op in TRIM_OPS and isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        return trim_vector_scalar(node, ctx, lhs, rhs.values, swap=False)
    if op in TRIM_OPS and isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        return trim_vector_scalar(node, ctx, rhs, lhs.values, swap=True)
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        if lhs.histograms is not None:
            return _histogram_scalar(node, ctx, lhs, rhs.values, swap=False)
        return _vector_scalar(op, lhs, rhs.values, swap=False, return_bool=node.return_bool)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        if rhs.histograms is not None:
            return _histogram_scalar(node, ctx, rhs, lhs.values, swap=True)
        return _vector_scalar(op, rhs, lhs.values, swap=True, return_bool=node.return_bool)
    if isinstance(lhs, Vector) and isinstance(rhs, Vector):
        matching = node.matching or VectorMatching(
            card="many-to-many" if op in SET_OPS else "one-to-one")
        if op in SET_OPS:
            return _set_op(op, lhs, rhs, matching)
        hist = (node, ctx) if lhs.histograms is not None or rhs.histograms is not None else None
        return _vector_vector(op, lhs, rhs, matching, node.return_bool, hist,
                              drop_now=node.return_bool and not ctx.delayed_name_removal)
    raise QueryError(f"binary operator {op!r} not allowed between {type(lhs).__name__} "
                     f"and {type(rhs).__name__}")


def _incompatible(ctx: EvalContext, node: BinaryExpr, lt: str, rt: str) -> None:
    info(ctx, f'incompatible sample types encountered for binary operator "{node.op}": '
         f"{lt} {node.op} {rt}", node)


def _histogram_scalar(node: BinaryExpr, ctx: EvalContext, vec: Vector, scalar: F64, *,
                      swap: bool) -> Vector:
    """A vector holding histograms with a scalar: ``h * s``, ``s * h`` and ``h / s`` scale the
    histograms; any other operator ignores them (with Prometheus's info annotation)."""
    op = node.op
    floats = _vector_scalar(op, without_histograms(vec), scalar, swap=swap,
                            return_bool=node.return_bool)
    rows, steps, hs = histogram_cells(vec)
    if op == "*" or (op == "/" and not swap):
        out = np.full(vec.values.shape, None, object)
        present = np.zeros(vec.values.shape, bool)
        for r, c, h in zip(rows.tolist(), steps.tolist(), hs, strict=True):
            f = float(scalar[c])
            out[r, c] = histops.mul(h, f) if op == "*" else histops.div(h, f)
            present[r, c] = True
        hv = Vector(list(vec.labels), np.zeros(vec.values.shape), present,
                    np.ones(len(vec.labels), bool), None, out)
        return _merge_rows(floats, hv)
    lt, rt = ("float", "histogram") if swap else ("histogram", "float")
    if hs:
        _incompatible(ctx, node, lt, rt)
    return floats


def _merge_rows(a: Vector, b: Vector) -> Vector:
    """Cells of ``a`` and ``b`` (same label rows in ``b``'s order as a superset) combined."""
    pos = {ls: i for i, ls in enumerate(b.labels)}
    values = b.values.copy()
    present = b.present.copy()
    hists = b.histograms.copy() if b.histograms is not None else None
    drop = b.drop_name_mask().copy()
    extra: list[int] = []
    for i, ls in enumerate(a.labels):
        j = pos.get(ls)
        if j is None:
            extra.append(i)
            continue
        m = a.present[i]
        values[j, m] = a.values[i, m]
        present[j, m] = True
        if hists is not None:
            hists[j, m] = None
        drop[j] = a.drop_name_mask()[i]
    out = Vector(list(b.labels), values, present, drop, None, hists)
    if extra:
        k = np.asarray(extra, np.int64)
        rest = Vector([a.labels[i] for i in extra], a.values[k], a.present[k],
                      a.drop_name_mask()[k])
        out = concat_vectors(out, rest)
    return out


def _scalar_scalar(op: str, lhs: Scalar, rhs: Scalar) -> Scalar:
    if op in COMPARISON:
        return Scalar(apply_compare(op, lhs.values, rhs.values).astype(np.float64))
    return Scalar(np.asarray(apply_arith(op, lhs.values, rhs.values), np.float64))


def _vector_scalar(op: str, vec: Vector, scalar: F64, *, swap: bool, return_bool: bool) -> Vector:
    s = scalar[None, :]
    a, b = (s, vec.values) if swap else (vec.values, s)
    if op in COMPARISON:
        keep = apply_compare(op, a, b)
        if return_bool:
            return Vector(vec.labels, keep.astype(np.float64), vec.present.copy(),
                          np.ones(len(vec), bool))
        # The vector's own value survives a comparison, whichever side it is on.
        present = vec.present & keep
        return _drop_empty_rows(Vector(vec.labels, vec.values, present, vec.drop_name))
    if op in ARITHMETIC:
        values = np.asarray(apply_arith(op, a, b), np.float64)
        return Vector(vec.labels, values, vec.present, np.ones(len(vec), bool))
    raise QueryError(f"operator {op!r} not allowed for vector/scalar operations")


def _drop_empty_rows(vec: Vector) -> Vector:
    keep = vec.present.any(axis=1)
    if keep.all():
        return vec
    rows = np.flatnonzero(keep)
    return Vector([vec.labels[i] for i in rows.tolist()], vec.values[rows], vec.present[rows],
                  None if vec.drop_name is None else vec.drop_name[rows],
                  None if vec.timestamps_ms is None else vec.timestamps_ms[rows],
                  None if vec.histograms is None else vec.histograms[rows])


def _group_count(present: B, sig: I64, n_groups: int) -> I64:
    """``(G, T)``: how many series of each signature group are present at each step."""
    out = np.zeros((n_groups, present.shape[1]), np.int64)
    if not present.shape[0]:
        return out
    if _unique(sig, n_groups):  # every group has at most one series: a plain scatter
        out[sig] = present
        return out
    order = np.argsort(sig, kind="stable")
    sorted_ids = sig[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    if starts.shape[0] == sig.shape[0]:  # every group has one series: a plain scatter
        out[sig] = present
        return out
    out[sorted_ids[starts]] = np.add.reduceat(present[order].astype(np.int64), starts, axis=0)
    return out


def _unique(sig: I64, n_groups: int) -> bool:
    """Whether no two series share a signature group."""
    return sig.shape[0] <= 1 or int(np.bincount(sig, minlength=n_groups).max()) <= 1


def _group_any(present: B, sig: I64, n_groups: int) -> B:
    """``(G, T)``: whether any series of each signature group is present at each step."""
    return _group_count(present, sig, n_groups) > 0


def _set_op(op: str, lhs: Vector, rhs: Vector, matching: VectorMatching) -> Vector:
    sl, sr, n_groups = binmatch.signature_ids(lhs.labels, rhs.labels, matching)
    if op == "or":
        left_any = _group_any(lhs.present, sl, n_groups)
        rpresent = rhs.present & ~left_any[sr]
        labels = list(lhs.labels) + list(rhs.labels)
        values = np.concatenate([lhs.values, rhs.values])
        present = np.concatenate([lhs.present, rpresent])
        drop = np.concatenate([lhs.drop_name_mask(), rhs.drop_name_mask()])
        hists = None
        if lhs.histograms is not None or rhs.histograms is not None:
            hists = np.concatenate([_pair_histograms(lhs, np.arange(len(lhs))),
                                    _pair_histograms(rhs, np.arange(len(rhs)))])
        out = _drop_empty_rows(Vector(labels, values, present, drop, None, hists))
        return merge_same_labels(out)
    right_any = _group_any(rhs.present, sr, n_groups)
    matched = right_any[sl]
    present = lhs.present & (matched if op == "and" else ~matched)
    # Like every operator result, timestamp() of it is the step time, not the sample time.
    return _drop_empty_rows(Vector(lhs.labels, lhs.values, present, lhs.drop_name, None,
                                   lhs.histograms))


def _vector_vector(op: str, lhs: Vector, rhs: Vector, matching: VectorMatching,
                   return_bool: bool, hist: tuple[BinaryExpr, EvalContext] | None = None,
                   drop_now: bool = False) -> Vector:
    one_to_many = matching.card == "one-to-many"
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    s_many, s_one, n_groups = binmatch.signature_ids(many.labels, one.labels, matching)
    fill_many, fill_one = matching.fill_lhs, matching.fill_rhs
    # One series per signature on both sides (the usual one-to-one matching): each many row
    # has at most one partner, no duplicate or multiple-match check can fail.
    simple = matching.card == "one-to-one" and fill_many is None and fill_one is None \
        and not matching.include and _unique(s_one, n_groups) and _unique(s_many, n_groups)
    if simple:
        pair_many, pair_one = unique_pairs(s_many, s_one, n_groups)
    else:
        pair_many, pair_one = _checked_pairs(lhs, rhs, many, one, s_many, s_one, n_groups,
                                             matching)
    return _pair_result(op, many, one, s_many, s_one, n_groups, pair_many, pair_one,
                        matching, return_bool, hist, simple=simple, drop_now=drop_now)


def unique_pairs(s_many: I64, s_one: I64, n_groups: int) -> tuple[I64, I64]:
    """:func:`.binmatch.match_pairs` when no two series of a side share a signature."""
    one_of = np.full(n_groups, -1, np.int64)
    one_of[s_one] = np.arange(s_one.shape[0], dtype=np.int64)
    partner = one_of[s_many]
    pair_many = np.flatnonzero(partner >= 0)
    return pair_many, partner[pair_many]


def _checked_pairs(lhs: Vector, rhs: Vector, many: Vector, one: Vector, s_many: I64,
                   s_one: I64, n_groups: int, matching: VectorMatching) -> tuple[I64, I64]:
    """The (many, one) pairs sharing a signature, after Prometheus's duplicate checks on the
    one side."""
    one_to_many = matching.card == "one-to-many"
    # Steps where both sides have samples (Prometheus short-circuits the others).
    active: B = np.asarray(lhs.present.any(axis=0) & rhs.present.any(axis=0))
    one_count = _group_count(one.present, s_one, n_groups)
    bad = (one_count > 1) & active[None, :]
    if bad.any():
        if matching.card == "one-to-one":
            # Prometheus goes step by step: a many-to-one clash at an earlier step than the
            # first duplicate on the "one" side is the error it reports.
            first_dup = int(np.flatnonzero(bad.any(axis=0))[0])
            many_count = _group_count(many.present, s_many, n_groups)
            if ((many_count[:, :first_dup] > 1) & (one_count[:, :first_dup] >= 1)).any():
                raise QueryError("multiple matches for labels: many-to-one matching must be "
                                 "explicit (group_left/group_right)")
        # The first step with a duplicate, and there the first series (in input order) whose
        # match group was already seen: the one Prometheus stops at.
        t = int(np.flatnonzero(bad.any(axis=0))[0])
        rows_t = np.flatnonzero(one.present[:, t])
        sig_t = s_one[rows_t]
        _, first = np.unique(sig_t, return_index=True)
        p = int(np.setdiff1d(np.arange(sig_t.size), first).min())
        g = sig_t[p]
        dup = sorted([one.labels[int(rows_t[np.flatnonzero(sig_t == g)[0]])],
                      one.labels[int(rows_t[p])]])
        side = "left" if one_to_many else "right"
        group = binmatch.match_labels(dup[0], matching)
        raise QueryError(
            f"found duplicate series for the match group {_fmt(group)} on the {side} hand-side "
            f"of the operation: [{_fmt(dup[0])}, {_fmt(dup[1])}];many-to-many matching not "
            "allowed: matching labels must be unique on one side")
    # Enumerate (many, one) pairs sharing a signature.
    return binmatch.match_pairs(s_many, s_one, n_groups)


def _pair_result(op: str, many: Vector, one: Vector, s_many: I64, s_one: I64, n_groups: int,
                 pair_many: I64, pair_one: I64, matching: VectorMatching, return_bool: bool,
                 hist: tuple[BinaryExpr, EvalContext] | None, *, simple: bool,
                 drop_now: bool = False) -> Vector:
    """The result rows of the (many, one) pairs (``fill`` pairs added here); ``simple``: one
    series per signature on both sides, no ``fill`` and no ``group_x`` labels; ``drop_now``:
    the match checks see the results without ``__name__`` (eager name removal of ``bool``)."""
    n_steps = many.present.shape[1]
    one_to_many = matching.card == "one-to-many"
    # As in Prometheus, fill_left fills the many side and fill_right the one side, also for
    # group_right (where the many side is the right-hand one).
    fill_many, fill_one = matching.fill_lhs, matching.fill_rhs
    n_real = pair_many.shape[0]
    n_many, n_one = len(many), len(one)
    # fill modifiers: a pair with a filled side uses the extra last row of that side.
    if fill_one is not None:
        pair_many = np.concatenate([pair_many, np.arange(n_many, dtype=np.int64)])
        pair_one = np.concatenate([pair_one, np.full(n_many, n_one, np.int64)])
    if fill_many is not None:
        pair_many = np.concatenate([pair_many, np.full(n_one, n_many, np.int64)])
        pair_one = np.concatenate([pair_one, np.arange(n_one, dtype=np.int64)])
    if not pair_many.shape[0]:
        return Vector.empty(n_steps)
    if n_real == pair_many.shape[0]:
        pair_present = many.present[pair_many] & one.present[pair_one]
        pair_sig = s_many[pair_many]
        many_values, one_values = many.values, one.values
    else:
        many_values = np.vstack([many.values, np.full((1, n_steps), fill_many or 0.0)])
        one_values = np.vstack([one.values, np.full((1, n_steps), fill_one or 0.0)])
        pair_present, pair_sig = _fill_pairs(many, one, s_many, s_one, n_groups, pair_many,
                                             pair_one, n_real)
    # No fill and one series per group on both sides: one pair per group, nothing to check.
    if matching.card == "one-to-one" and not simple and not (
            n_real == pair_many.shape[0] and _unique(s_one, n_groups)
            and _unique(s_many, n_groups)) and \
            (_group_count(pair_present, pair_sig, n_groups) > 1).any():
        raise QueryError("multiple matches for labels: many-to-one matching must be explicit "
                         "(group_left/group_right)")
    # Result label set of each pair, deduplicated into output rows.
    bases = binmatch.result_bases(many.labels, op, matching)
    if matching.include or n_real < pair_many.shape[0]:
        pair_row, out_labels = binmatch.pair_rows(pair_many, pair_one, bases, many, one, op, matching)
    else:
        # The result depends on the many side only: rows are its distinct interned bases.
        used = np.flatnonzero(np.bincount(pair_many, minlength=n_many))
        kid = [id(bases[i]) for i in used.tolist()]
        seen = dict(zip(kid, (bases[i] for i in used.tolist()), strict=True))
        pos = {k: r for r, k in enumerate(seen)}
        out_labels = list(seen.values())
        row_of = np.zeros(n_many, np.int64)
        row_of[used] = np.fromiter(map(pos.__getitem__, kid), np.int64, len(kid))
        pair_row = row_of[pair_many]
    n_rows = len(out_labels)
    check_row, n_check = pair_row, n_rows
    if drop_now:
        row_map, n_check = binmatch.rows_without_schema(out_labels)
        check_row = row_map[pair_row]
    if n_check < pair_many.shape[0]:
        row_count = _group_count(pair_present, check_row, n_check)
        if (row_count > 1).any():
            # Same signature → the group_x labels were not enough; otherwise a plain clash.
            r, t = np.argwhere(row_count > 1)[0]
            sig_hits = unique(pair_sig[(check_row == r) & pair_present[:, t]])
            if sig_hits.shape[0] == 1 and matching.card != "one-to-one":
                raise QueryError("multiple matches for labels: grouping labels must ensure "
                                 "unique matches")
            raise QueryError("vector cannot contain metrics with the same labelset")
    lv = many_values[pair_many]
    rv = one_values[pair_one]
    if one_to_many:
        lv, rv = rv, lv
    if op in COMPARISON:
        keep = apply_compare(op, lv, rv)
        if return_bool:
            pair_values = keep.astype(np.float64)
            pair_keep = pair_present
        else:
            pair_values = lv
            pair_keep = pair_present & keep
    elif op in TRIM_OPS:
        pair_values = np.full(lv.shape, np.nan)
        pair_keep = np.zeros(lv.shape, bool)
    else:
        pair_values = np.asarray(apply_arith(op, lv, rv), np.float64)
        pair_keep = pair_present
    pair_hists = None
    if hist is not None:
        lh, rh = _pair_histograms(many, pair_many), _pair_histograms(one, pair_one)
        if one_to_many:
            lh, rh = rh, lh
        if op in TRIM_OPS and bool((pair_present & (lh == None) & (rh == None)).any()):  # noqa: E711
            histbinops.float_trim_info(hist[0], hist[1])
        pair_values, pair_keep, pair_hists = histbinops.pair_cells(
            hist[0], hist[1], lv, rv, lh, rh, pair_present, pair_values, pair_keep,
            return_bool=return_bool)
    values = np.zeros((n_rows, n_steps))
    present = np.zeros((n_rows, n_steps), bool)
    rows, cols = np.nonzero(pair_keep)
    values[pair_row[rows], cols] = pair_values[rows, cols]
    present[pair_row[rows], cols] = True
    hists = None
    if pair_hists is not None:
        hists = np.full((n_rows, n_steps), None, object)
        hists[pair_row[rows], cols] = pair_hists[rows, cols]
    drop = np.full(n_rows, bool(return_bool))
    if op in COMPARISON and not return_bool:
        # A filter keeps the many side's label set, so it keeps that side's pending name drop
        # too: ``rate(a[5m]) > ignoring(code) b`` loses ``__name__`` as it would have without
        # delayed removal. (Prometheus 3 with the flag on forgets the mark here; its default
        # eager removal and 2.x drop the name.)
        many_drop = many.drop_name_mask()
        if many_drop.any():
            np.logical_or.at(drop, pair_row, many_drop[pair_many])
    return _drop_empty_rows(Vector(out_labels, values, present, drop, None, hists))


def _pair_histograms(side: Vector, rows: I64) -> npt.NDArray[np.object_]:
    """The histogram cells of ``side``'s ``rows`` (a row past the end, a filled side: None)."""
    n_steps = side.present.shape[1]
    if side.histograms is None:
        return np.full((rows.shape[0], n_steps), None, object)
    padded = np.vstack([side.histograms, np.full((1, n_steps), None, object)])
    out: npt.NDArray[np.object_] = padded[rows]
    return out


def _fill_pairs(many: Vector, one: Vector, s_many: I64, s_one: I64, n_groups: int,
                pair_many: I64, pair_one: I64, n_real: int) -> tuple[B, I64]:
    """Presence and signature of each pair when ``fill`` modifiers add pairs past ``n_real``.

    A pair with a filled one side exists where its many-side series is present and no
    one-side series of its group is; a pair with a filled many side, the other way round.
    """
    n_many, n_one = len(many), len(one)
    many_any = _group_any(many.present, s_many, n_groups)
    one_any = _group_any(one.present, s_one, n_groups)
    pm, po = pair_many[:n_real], pair_one[:n_real]
    parts = [many.present[pm] & one.present[po]]
    sigs = [s_many[pm]]
    rest_m, rest_o = pair_many[n_real:], pair_one[n_real:]
    filled_one = rest_o == n_one
    if filled_one.any():
        i = rest_m[filled_one]
        parts.append(many.present[i] & ~one_any[s_many[i]])
        sigs.append(s_many[i])
    filled_many = rest_m == n_many
    if filled_many.any():
        j = rest_o[filled_many]
        parts.append(one.present[j] & ~many_any[s_one[j]])
        sigs.append(s_one[j])
    return np.concatenate(parts), np.concatenate(sigs)


def _fmt(ls: Labels) -> str:
    """A label set the way Prometheus prints it in errors: ``{__name__="x", a="b"}``."""
    from promlab.model import format_label_value

    return "{" + ", ".join(f"{k}={format_label_value(v)}" for k, v in ls.pairs) + "}"
