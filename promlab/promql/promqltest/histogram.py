"""Native-histogram literals of the test DSL: ``{{schema:0 sum:5 count:4 buckets:[1 2 1]}}``.

:func:`to_float_histogram` turns a literal into the engine's histogram and
:func:`histograms_equal` implements the comparison Prometheus's runner uses.

Literals are read by the model's :func:`~promlab.model.histogram_text.parse_histogram_text`.
Buckets are kept as sorted ``(index, count)`` pairs with the zero counts left out: that is the
form Prometheus's ``Compact(0)`` reduces spans to before comparing, so two literals with
different but equivalent span layouts compare equal.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from promlab.model import Labels
from promlab.model.histogram import FloatHistogram, from_bucket_map
from promlab.model.histogram_text import HINT_NAMES, parse_histogram_text
from promlab.promql.promqltest.almost import almost_equal
from promlab.promql.promqltest.gonumber import parse_go_number

__all__ = [
    "CUSTOM_BUCKETS_SCHEMA",
    "HistogramLiteral",
    "histogram_series",
    "histograms_equal",
    "literal_of",
    "nhcb_from_classic",
    "parse_histogram",
    "to_float_histogram",
]

CUSTOM_BUCKETS_SCHEMA = -53
_NAME_OF = {v: k for k, v in HINT_NAMES.items()}
Buckets = tuple[tuple[int, float], ...]


@dataclass(frozen=True, slots=True)
class HistogramLiteral:
    """One native-histogram value of a series description (float histogram)."""

    text: str
    schema: int = 0
    count: float = 0.0
    sum: float = 0.0
    zero_count: float = 0.0
    zero_threshold: float = 0.0
    positive: Buckets = ()
    negative: Buckets = ()
    custom_values: tuple[float, ...] = ()
    counter_reset_hint: str | None = None   # None: not given (not compared)


def _num(text: str) -> float:
    sign = -1.0 if text[0] == "-" else 1.0
    return sign * parse_go_number(text.lstrip("+-"))


def _nonzero(h: FloatHistogram, positive: bool) -> Buckets:
    return tuple((i, c) for i, c in h.buckets(positive) if c != 0)


def parse_histogram(text: str) -> HistogramLiteral:
    """Parse ``{{key:value ...}}`` with the model's :func:`parse_histogram_text` (Go numbers).

    Raises ``ValueError`` on a malformed literal.

    Examples
    --------
    >>> h = parse_histogram("{{schema:1 count:3 sum:4 buckets:[1 0 2] offset:-1}}")
    >>> h.schema, h.count, h.positive
    (1, 3.0, ((-1, 1.0), (1, 2.0)))
    """
    h = parse_histogram_text(text, _num)
    return HistogramLiteral(
        text=text, schema=h.schema, count=h.count, sum=h.sum, zero_count=h.zero_count,
        zero_threshold=h.zero_threshold, positive=_nonzero(h, True), negative=_nonzero(h, False),
        custom_values=h.custom_values,
        # The parser validated the keys, so the key's name only occurs as a key.
        counter_reset_hint=(_NAME_OF[h.counter_reset_hint] if "counter_reset_hint:" in text else None))


def _reduce(buckets: Buckets, origin: int, target: int) -> dict[int, float]:
    """Bucket counts re-indexed from schema ``origin`` to the coarser ``target``."""
    out: dict[int, float] = {}
    delta = origin - target
    for idx, c in buckets:
        k = ((idx - 1) >> delta) + 1 if delta > 0 else idx
        out[k] = out.get(k, 0.0) + c
    return out


def _combine(a: HistogramLiteral, b: HistogramLiteral, sign: float) -> HistogramLiteral:
    if a.schema > b.schema:
        raise ValueError(f"cannot merge histograms from schema {b.schema} to {a.schema}")
    if (a.schema == CUSTOM_BUCKETS_SCHEMA) != (b.schema == CUSTOM_BUCKETS_SCHEMA):
        raise ValueError("cannot combine exponential and custom-bucket histograms")
    if a.schema == CUSTOM_BUCKETS_SCHEMA and a.custom_values != b.custom_values:
        raise ValueError("cannot combine histograms with different custom bucket bounds")
    if a.zero_threshold != b.zero_threshold:
        raise ValueError("cannot combine histograms with different zero bucket widths")

    def merged(x: Buckets, y: Buckets) -> Buckets:
        acc = _reduce(x, a.schema, a.schema)
        for k, c in _reduce(y, b.schema, a.schema).items():
            acc[k] = acc.get(k, 0.0) + sign * c
        return tuple(sorted((k, c) for k, c in acc.items() if c != 0))

    return dataclasses.replace(
        a, count=a.count + sign * b.count,
        sum=a.sum + sign * b.sum, zero_count=a.zero_count + sign * b.zero_count,
        positive=merged(a.positive, b.positive), negative=merged(a.negative, b.negative))


def histogram_series(base: HistogramLiteral, inc: HistogramLiteral, times: int,
                     sign: float = 1.0) -> list[HistogramLiteral]:
    """``base±inc x times``: ``times + 1`` histograms, each the previous one plus/minus ``inc``."""
    out = [base]
    cur = base
    op = "+" if sign > 0 else "-"
    for k in range(1, times + 1):
        cur = dataclasses.replace(_combine(cur, inc, sign), text=f"{base.text}{op}{k}*{inc.text}")
        out.append(cur)
    return out


def histograms_equal(exp: HistogramLiteral, got: HistogramLiteral) -> bool:
    """Prometheus's ``compareNativeHistogram`` (after ``Compact(0)`` on both sides)."""
    if exp.schema != got.schema or not almost_equal(exp.count, got.count) or not almost_equal(exp.sum, got.sum):
        return False
    if exp.schema == CUSTOM_BUCKETS_SCHEMA and exp.custom_values != got.custom_values:
        return False
    if exp.zero_threshold != got.zero_threshold or not almost_equal(exp.zero_count, got.zero_count):
        return False
    for e, g in ((exp.negative, got.negative), (exp.positive, got.positive)):
        if [k for k, _ in e] != [k for k, _ in g]:
            return False
        if not all(almost_equal(a, b) for (_, a), (_, b) in zip(e, g, strict=True)):
            return False
    return exp.counter_reset_hint is None or exp.counter_reset_hint == got.counter_reset_hint


def to_float_histogram(lit: HistogramLiteral) -> FloatHistogram:
    """The engine's histogram for a script literal (hint ``unknown`` when not given)."""
    return from_bucket_map(
        lit.schema, dict(lit.positive), dict(lit.negative), count=lit.count, sum=lit.sum,
        zero_count=lit.zero_count, zero_threshold=lit.zero_threshold,
        custom_values=lit.custom_values,
        counter_reset_hint=HINT_NAMES[lit.counter_reset_hint or "unknown"])


def literal_of(h: FloatHistogram) -> HistogramLiteral:
    """A query result's histogram as a literal (empty buckets dropped, as ``Compact(0)``)."""
    return HistogramLiteral(
        text=str(h), schema=h.schema, count=h.count, sum=h.sum, zero_count=h.zero_count,
        zero_threshold=h.zero_threshold,
        positive=_nonzero(h, True), negative=_nonzero(h, False),
        custom_values=h.custom_values, counter_reset_hint=_NAME_OF[h.counter_reset_hint])


_CLASSIC = ("_bucket", "_count", "_sum")


def nhcb_from_classic(series: Iterable[Any]) -> dict[Labels, tuple[list[int], list[FloatHistogram]]]:
    """``load_with_nhcb``: every classic histogram (``X_bucket{le}``, ``X_count``, ``X_sum``
    series grouped by their labels minus ``le``) as custom-bucket native histograms ``X{...}``,
    one per timestamp (float samples only; NaN or non-numeric ``le`` ignored)."""
    groups: dict[Labels, dict[str, Any]] = {}
    for s in series:
        ls: Labels = s.labels
        name = ls.name
        suffix = next((x for x in _CLASSIC if name.endswith(x)), None)
        if suffix is None:
            continue
        base = ls.without(("le",)).set("__name__", name[: -len(suffix)])
        g = groups.setdefault(base, {"buckets": {}, "count": {}, "sum": {}})
        pts = dict(zip(s.ts_ms, s.values, strict=True))
        if suffix == "_bucket":
            try:
                le = float(ls.get("le") or "nan")
            except ValueError:
                continue
            if math.isnan(le):
                continue
            g["buckets"][le] = pts
        else:
            g[suffix[1:]] = pts
    out: dict[Labels, tuple[list[int], list[FloatHistogram]]] = {}
    for base, g in groups.items():
        bounds = sorted(g["buckets"])
        if not bounds:
            continue
        times = sorted({t for pts in g["buckets"].values() for t in pts})
        cv = tuple(b for b in bounds if not math.isinf(b))
        ts_out: list[int] = []
        hs: list[FloatHistogram] = []
        for t in times:
            cum = [g["buckets"][b].get(t) for b in bounds]
            if any(c is None for c in cum):
                continue
            counts = {i: c - (cum[i - 1] if i else 0.0) for i, c in enumerate(cum)}
            total = g["count"].get(t, cum[-1])
            hs.append(from_bucket_map(CUSTOM_BUCKETS_SCHEMA, counts, count=total,
                                      sum=g["sum"].get(t, 0.0), custom_values=cv))
            ts_out.append(t)
        if hs:
            out[base] = (ts_out, hs)
    return out
