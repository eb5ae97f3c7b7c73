"""PromQL functions over native histograms: ``histogram_count/sum/avg/stddev/stdvar`` and the
native halves of ``histogram_quantile`` and ``histogram_fraction``.

Histogram cells of a :class:`~promlab.promql.values.Vector` are few next to float cells; these
functions loop over the histogram cells only (:func:`histogram_cells`), never over floats.
"""

from __future__ import annotations

import math

import numpy as np

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, bucket_lower, bucket_upper
from promlab.promql.eval.calls import FunctionCall, FunctionTable
from promlab.promql.eval.functions._common import info, vector_out
from promlab.promql.eval.histops import kahan_inc
from promlab.promql.values import I64, Vector

__all__ = [
    "all_buckets",
    "concat_vectors",
    "drop_rows",
    "function",
    "histogram_cells",
    "native_fraction",
    "native_quantile",
    "quantile_infos",
    "without_histograms",
]

function = FunctionTable()

Bucket = tuple[float, float, float]  # (lower, upper, count)


def histogram_cells(v: Vector) -> tuple[I64, I64, list[FloatHistogram]]:
    """Rows, steps and histograms of every histogram cell of ``v`` (row-major order)."""
    if v.histograms is None:
        z = np.zeros(0, np.int64)
        return z, z, []
    mask = np.fromiter((h is not None for h in v.histograms.flat), bool, v.histograms.size)
    mask = mask.reshape(v.histograms.shape) & v.present
    rows, steps = np.nonzero(mask)
    return rows, steps, list(v.histograms[rows, steps])


def without_histograms(v: Vector) -> Vector:
    """``v`` with its histogram cells removed (what float-only functions see)."""
    if v.histograms is None:
        return v
    rows, steps, _ = histogram_cells(v)
    present = v.present.copy()
    present[rows, steps] = False
    return Vector(v.labels, v.values, present, v.drop_name, v.timestamps_ms, None)


def concat_vectors(a: Vector, b: Vector) -> Vector:
    """The rows of ``a`` then those of ``b`` (histogram columns merged)."""
    if not len(b):
        return a
    if not len(a):
        return b
    hists = None
    if a.histograms is not None or b.histograms is not None:
        hists = np.concatenate([x.histograms if x.histograms is not None
                                else np.full(x.values.shape, None, object) for x in (a, b)])
    return Vector(a.labels + b.labels, np.concatenate([a.values, b.values]),
                  np.concatenate([a.present, b.present]),
                  np.concatenate([a.drop_name_mask(), b.drop_name_mask()]), None, hists)


def drop_rows(v: Vector, labels: set[Labels]) -> Vector:
    """``v`` without the rows whose label sets are in ``labels``."""
    keep = [i for i, ls in enumerate(v.labels) if ls not in labels]
    if len(keep) == len(v.labels):
        return v
    k = np.asarray(keep, np.int64)
    return Vector([v.labels[i] for i in keep], v.values[k], v.present[k],
                  None if v.drop_name is None else v.drop_name[k], None,
                  None if v.histograms is None else v.histograms[k])


def _from_cells(call: FunctionCall, v: Vector, rows: I64, steps: I64, vals: list[float]) -> Vector:
    t = call.ctx.num_steps
    out = np.zeros((len(v.labels), t))
    present = np.zeros((len(v.labels), t), bool)
    out[rows, steps] = vals
    present[rows, steps] = True
    return vector_out(list(v.labels), out, present, True)


def _arg(call: FunctionCall, i: int = 0) -> Vector:
    v = call.args[i]
    assert isinstance(v, Vector)
    return v


def _stat(call: FunctionCall, fn) -> Vector:  # type: ignore[no-untyped-def]
    v = _arg(call)
    rows, steps, hs = histogram_cells(v)
    return _from_cells(call, v, rows, steps, [fn(h) for h in hs])


@function("histogram_count")
def func_histogram_count(call: FunctionCall) -> Vector:
    """``histogram_count(v)``: the observation count of each native histogram."""
    return _stat(call, lambda h: h.count)


@function("histogram_sum")
def func_histogram_sum(call: FunctionCall) -> Vector:
    """``histogram_sum(v)``: the sum of observations of each native histogram."""
    return _stat(call, lambda h: h.sum)


@function("histogram_avg")
def func_histogram_avg(call: FunctionCall) -> Vector:
    """``histogram_avg(v)``: sum / count of each native histogram."""
    def avg(h: FloatHistogram) -> float:
        return h.sum / h.count if h.count else (math.nan if h.sum == 0 or math.isnan(h.sum)
                                                  else math.copysign(math.inf, h.sum))
    return _stat(call, avg)


def _variance(h: FloatHistogram) -> float:
    """Prometheus's estimate: every observation at its bucket's (geometric) midpoint."""
    if h.count == 0:
        return math.nan
    mean = h.sum / h.count
    total = 0.0
    comp = 0.0
    for lower, upper, c in all_buckets(h):
        if c == 0:
            continue
        if h.is_custom or (lower <= 0 <= upper):
            if h.is_custom:
                if math.isinf(lower):
                    lower = 0.0 if upper > 0 else upper
                if math.isinf(upper):
                    upper = lower
            mid = (lower + upper) / 2 if not (lower <= 0 <= upper and not h.is_custom) else 0.0
        else:
            mid = math.copysign(math.sqrt(lower * upper), lower)
        d = mid - mean
        total, comp = kahan_inc(c * d * d, total, comp)
    return (total + comp) / h.count


@function("histogram_stdvar")
def func_histogram_stdvar(call: FunctionCall) -> Vector:
    """``histogram_stdvar(v)``: estimated variance of the observations."""
    return _stat(call, _variance)


@function("histogram_stddev")
def func_histogram_stddev(call: FunctionCall) -> Vector:
    """``histogram_stddev(v)``: estimated standard deviation of the observations."""
    return _stat(call, lambda h: math.sqrt(_variance(h)))


def all_buckets(h: FloatHistogram) -> list[Bucket]:
    """Every bucket ascending: negative buckets, the zero bucket, positive buckets."""
    s, cv = h.schema, h.custom_values
    out: list[Bucket] = []
    for i, c in reversed(list(h.buckets(False))):
        out.append((-bucket_upper(s, i), -bucket_lower(s, i), c))
    if not h.is_custom and (h.zero_count or h.zero_threshold):
        out.append((-h.zero_threshold, h.zero_threshold, h.zero_count))
    for i, c in h.buckets(True):
        out.append((bucket_lower(s, i, cv), bucket_upper(s, i, cv), c))
    return out


def native_quantile(q: float, h: FloatHistogram) -> tuple[float, str | None]:
    """Prometheus's ``HistogramQuantile`` for one native histogram; returns the value and the
    name of an info annotation to emit (``"nan"``/``"skew"``) or None."""
    if q < 0:
        return -math.inf, None
    if q > 1:
        return math.inf, None
    if h.count == 0 or math.isnan(q):
        return math.nan, None
    buckets = all_buckets(h)
    forward = math.isnan(h.sum) or q < 0.5
    seq = buckets if forward else list(reversed(buckets))
    rank = q * h.count if forward else (1 - q) * h.count
    count = 0.0
    lower = upper = bc = 0.0
    k = -1
    for pos, bucket in enumerate(seq):
        k = pos
        lower, upper, bc = bucket
        if bc == 0:
            continue
        count += bc
        if count >= rank:
            break
    has_neg, has_pos = bool(h.negative_buckets), bool(h.positive_buckets)
    if not h.is_custom and lower < 0 < upper:
        if not has_neg and has_pos:
            lower = 0.0
        elif not has_pos and has_neg:
            upper = 0.0
    elif h.is_custom:
        if lower == -math.inf:
            if upper <= 0:
                return upper, None
            lower = 0.0
        elif upper == math.inf:
            return lower, None
    count = min(count, h.count)
    note = None
    if count < rank:
        if math.isnan(h.sum):
            return math.nan, "nan"
        return upper, None
    rank = rank - (count - bc) if forward else count - rank
    if math.isnan(h.sum):
        total = count + sum(b[2] for b in seq[k + 1:])
        if total < h.count:
            note = "skew"
    fraction = rank / bc
    if h.is_custom or (lower <= 0 <= upper):
        return lower + (upper - lower) * fraction, note
    log_lo, log_up = math.log2(abs(lower)), math.log2(abs(upper))
    if lower > 0:
        return math.exp2(log_lo + (log_up - log_lo) * fraction), note
    return -math.exp2(log_up + (log_lo - log_up) * (1 - fraction)), note


def native_fraction(lo_v: float, up_v: float, h: FloatHistogram) -> tuple[float, bool]:
    """Prometheus's ``HistogramFraction`` for one native histogram; the flag asks for the
    "NaN observations" info annotation."""
    if h.count == 0 or math.isnan(lo_v) or math.isnan(up_v):
        return math.nan, False
    if lo_v >= up_v:
        return 0.0, False
    count = rank = lo_rank = up_rank = 0.0
    lo_set = up_set = False
    buckets = all_buckets(h)
    has_neg, has_pos = bool(h.negative_buckets), bool(h.positive_buckets)
    k = -1
    for pos, bucket in enumerate(buckets):
        k = pos
        lower, upper, bc = bucket
        count += bc
        zero = False
        if lower <= 0 <= upper:
            zero = True
            if not has_neg and has_pos:
                lower = 0.0
            elif not has_pos and has_neg:
                upper = 0.0
        linear = h.is_custom or zero

        def below(v: float, lower: float = lower, upper: float = upper, bc: float = bc,
                  linear: bool = linear, rank: float = rank) -> float:
            if linear:
                if lower == -math.inf:
                    return bc
                return rank + bc * (v - lower) / (upper - lower)
            ll, lu, lv = math.log2(abs(lower)), math.log2(abs(upper)), math.log2(abs(v))
            f = (lv - ll) / (lu - ll) if v > 0 else 1 - (lv - lu) / (ll - lu)
            return rank + bc * f

        if not lo_set and lower >= lo_v:
            lo_rank, lo_set = rank, True
        if not up_set and lower >= up_v:
            up_rank, up_set = rank, True
        if lo_set and up_set:
            break
        if not lo_set and lower < lo_v < upper:
            lo_rank, lo_set = below(lo_v), True
        if not up_set and lower < up_v < upper:
            up_rank, up_set = below(up_v), True
        if lo_set and up_set:
            break
        rank += bc
    nan_note = False
    if math.isnan(h.sum):
        count += sum(b[2] for b in buckets[k + 1:])
        nan_note = count < h.count
    else:
        count = h.count
    if not lo_set or lo_rank > count:
        lo_rank = count
    if not up_set or up_rank > count:
        up_rank = count
    return (up_rank - lo_rank) / h.count, nan_note


def quantile_infos(call: FunctionCall, notes: set[tuple[str, str]], arg: int) -> None:
    for kind, name in sorted(notes):
        if kind == "nan":
            info(call.ctx, "input to histogram_quantile has NaN observations, result is NaN for "
                 f'metric name "{name}"', call.node.args[arg])
        elif kind == "skew":
            info(call.ctx, "input to histogram_quantile has NaN observations, result is skewed "
                 f'higher for metric name "{name}"', call.node.args[arg])
        elif kind == "fraction":
            info(call.ctx, "input to histogram_fraction has NaN observations, which are excluded "
                 f'from all fractions for metric name "{name}"', call.node.args[arg])
