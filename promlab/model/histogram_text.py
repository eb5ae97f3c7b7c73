"""The test-script notation of native histograms: ``{{schema:0 count:3 sum:5 buckets:[1 2]}}``.

Keys (each at most once, any order, missing ones zero/empty): ``schema``, ``count``, ``sum``,
``z_bucket`` (zero count), ``z_bucket_w`` (zero threshold), ``buckets``/``offset`` (absolute
counts of consecutive positive buckets starting at index ``offset``), ``n_buckets``/``n_offset``
(the same for negative buckets), ``custom_values`` and ``counter_reset_hint``
(``unknown|reset|not_reset|gauge``). :func:`parse_histogram_text` reads it (zero buckets are
kept, as Prometheus's parser does); :func:`format_histogram_text` writes Prometheus's
``TestExpression()`` form (one span per side, empty buckets between spans as zeros).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from promlab.model.histogram import (
    CounterResetHint,
    FloatHistogram,
    Histogram,
    HistogramError,
)
from promlab.model.value import format_float_g

__all__ = ["HINT_NAMES", "format_histogram_text", "parse_histogram_text"]

HINT_NAMES = {"unknown": CounterResetHint.UNKNOWN, "reset": CounterResetHint.COUNTER_RESET,
              "not_reset": CounterResetHint.NOT_COUNTER_RESET, "gauge": CounterResetHint.GAUGE}
_HINT_TEXT = {v: k for k, v in HINT_NAMES.items()}
_NUM = r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?|[iI][nN][fF]|[nN][aA][nN])"
_ITEM = re.compile(rf"([a-z_]+):(\[[^\]]*\]|{_NUM}|[a-z_]+)")
_KEYS = frozenset({"schema", "sum", "count", "z_bucket", "z_bucket_w", "buckets", "offset",
                   "n_buckets", "n_offset", "custom_values", "counter_reset_hint"})


def parse_histogram_text(text: str, number: Callable[[str], float] = float) -> FloatHistogram:
    """Parse ``{{key:value ...}}``; raises :class:`HistogramError` when malformed.

    ``number`` parses one number (the test runner passes Go's number syntax).

    >>> h = parse_histogram_text("{{schema:1 count:3 sum:4 buckets:[1 0 2] offset:-1}}")
    >>> h.schema, h.count, h.positive_spans, h.positive_buckets
    (1, 3.0, ((-1, 3),), (1.0, 0.0, 2.0))
    """
    text = text.strip()
    if not (text.startswith("{{") and text.endswith("}}")):
        raise HistogramError(f"invalid histogram literal {text!r}")
    body = text[2:-2]
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(body):
        if body[pos] in " \t":
            pos += 1
            continue
        m = _ITEM.match(body, pos)
        if m is None:
            raise HistogramError(f"invalid histogram item at {body[pos:]!r}")
        key, value = m.group(1), m.group(2)
        if key in fields:
            raise HistogramError(f"duplicate key {key!r} in histogram literal")
        if key not in _KEYS:
            raise HistogramError(f"unknown histogram key {key!r}")
        fields[key] = value
        pos = m.end()

    def num(key: str) -> float:
        t = fields.get(key, "0")
        try:
            return number(t)
        except ValueError:
            raise HistogramError(f"histogram {key} must be a number, got {t!r}") from None

    def integer(key: str) -> int:
        t = fields.get(key, "0")
        if not re.fullmatch(r"[+-]?[0-9]+", t):
            raise HistogramError(f"histogram {key} must be an integer, got {t!r}")
        return int(t)

    def floats(key: str) -> tuple[float, ...]:
        t = fields.get(key, "[]")
        if not t.startswith("["):
            raise HistogramError(f"histogram {key} must be a [list], got {t!r}")
        try:
            return tuple(number(x) for x in t[1:-1].split())
        except ValueError:
            raise HistogramError(f"invalid number in histogram {key} {t!r}") from None

    hint_text = fields.get("counter_reset_hint", "unknown")
    if hint_text not in HINT_NAMES:
        raise HistogramError(f"invalid counter_reset_hint {hint_text!r}")
    pos_b, neg_b = floats("buckets"), floats("n_buckets")
    return FloatHistogram(
        schema=integer("schema"), count=num("count"), sum=num("sum"),
        zero_count=num("z_bucket"), zero_threshold=num("z_bucket_w"),
        positive_spans=((integer("offset"), len(pos_b)),) if pos_b else (),
        positive_buckets=pos_b,
        negative_spans=((integer("n_offset"), len(neg_b)),) if neg_b else (),
        negative_buckets=neg_b, custom_values=floats("custom_values"),
        counter_reset_hint=HINT_NAMES[hint_text])


def _dense(h: FloatHistogram, positive: bool) -> tuple[int, list[float]]:
    pairs = list(h.buckets(positive))
    if not pairs:
        return 0, []
    first = pairs[0][0]
    out = [0.0] * (pairs[-1][0] - first + 1)
    for i, c in pairs:
        out[i - first] = c
    return first, out


def format_histogram_text(h: FloatHistogram | Histogram) -> str:
    """Prometheus's ``TestExpression()``: only non-zero fields, one span per side.

    >>> format_histogram_text(parse_histogram_text("{{count:3 buckets:[1 0 2] offset:-1}}"))
    '{{count:3 offset:-1 buckets:[1 0 2]}}'
    """
    f = h.to_float()
    g = format_float_g
    res: list[str] = []
    if f.schema != 0:
        res.append(f"schema:{f.schema}")
    for key, v in (("count", f.count), ("sum", f.sum), ("z_bucket", f.zero_count),
                   ("z_bucket_w", f.zero_threshold)):
        if v != 0 or math.isnan(v):
            res.append(f"{key}:{g(v)}")
    if f.is_custom:
        res.append("custom_values:[" + " ".join(g(v) for v in f.custom_values) + "]")
    if f.counter_reset_hint != CounterResetHint.UNKNOWN:
        res.append(f"counter_reset_hint:{_HINT_TEXT[f.counter_reset_hint]}")
    for positive, bkey, okey in ((True, "buckets", "offset"), (False, "n_buckets", "n_offset")):
        first, dense = _dense(f, positive)
        if dense:
            res.append(f"{okey}:{first}")
            res.append(f"{bkey}:[" + " ".join(g(c) for c in dense) + "]")
    return "{{" + " ".join(res) + "}}"
