"""Native histograms in rule unit tests, as Prometheus 3's ``promtool test rules`` handles them.

``input_series`` values may be native-histogram literals in the promqltest notation
(``{{schema:0 sum:5 count:4 buckets:[1 2 1]}}``, with the ``+``/``-``/``x`` expansion, read by
:func:`~promlab.promql.promqltest.series.parse_series_desc`). :func:`input_samples` turns one
parsed series into what the test storage holds: histograms carry the counter-reset hints
Prometheus's TSDB reports when they are read back (``not_reset`` inside a chunk, ``unknown``
at a chunk's start, see :mod:`promlab.promql.promqltest.hints`).

An ``exp_samples`` entry with ``histogram:`` is compared as promtool compares it: both sides
are rendered with Go's ``FloatHistogram.TestExpression()`` (:func:`go_histogram_text`) and the
strings must be equal, so the counter-reset hint the query returns matters
(``counter_reset_hint:not_reset`` for a histogram after the first of its series, say).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from promlab.errors import ParseError
from promlab.model.histogram import CounterResetHint, FloatHistogram
from promlab.model.histogram_text import HINT_NAMES
from promlab.model.value import format_float_g
from promlab.promql.promqltest.hints import storage_hints
from promlab.promql.promqltest.histogram import to_float_histogram
from promlab.promql.promqltest.series import HistogramLiteral, Item, parse_series_desc

__all__ = ["InputSamples", "expected_histogram", "go_histogram_text", "input_samples"]

_HINT_TEXT = {v: k for k, v in HINT_NAMES.items()}

#: One input series as loaded: timestamps, and either float values or (with histograms among
#: them) a list of floats and histograms.
InputSamples = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64] | list[FloatHistogram | float]]


def input_samples(items: Sequence[Item], start_ms: int, interval_ms: int) -> InputSamples:
    """The samples of one expanded ``values`` string (``None`` items are gaps).

    Examples
    --------
    >>> _, items = parse_series_desc("x {{count:1 buckets:[1]}}+{{count:1 buckets:[1]}}x1 _ 3")
    >>> ts, vs = input_samples(items, 0, 60_000)
    >>> ts.tolist(), [go_histogram_text(v) if isinstance(v, FloatHistogram) else v for v in vs]
    ([0, 60000, 180000], ['{{count:1 buckets:[1]}}', '{{count:2 counter_reset_hint:not_reset buckets:[2]}}', 3.0])
    """
    present = [x for x in items if x is not None]
    if len(present) == len(items):  # no gaps (the usual input): the times in one go
        ts_a = start_ms + interval_ms * np.arange(len(items), dtype=np.int64)
    else:
        ts_a = np.array([start_ms + i * interval_ms for i, x in enumerate(items) if x is not None], np.int64)
    if not any(isinstance(x, HistogramLiteral) for x in present):
        return ts_a, np.asarray(present, np.float64)
    ts = ts_a.tolist()
    mixed: list[FloatHistogram | float] = [
        to_float_histogram(x) if isinstance(x, HistogramLiteral) else float(x) for x in present]
    return ts_a, storage_hints(ts, mixed)


def expected_histogram(text: str) -> FloatHistogram:
    """An ``exp_samples`` ``histogram:`` value, read as promtool reads it (``{} TEXT``).

    Raises ``ValueError`` with promtool's reason when it is not exactly one histogram.
    """
    try:
        _, values = parse_series_desc("{} " + text)
    except ParseError as e:
        raise ValueError(str(e)) from None
    if len(values) != 1:
        raise ValueError(f"expected 1 value, got {len(values)}")
    v = values[0]
    if not isinstance(v, HistogramLiteral):
        raise ValueError(f"expected histogram, got {_sequence_value(v)}")
    return to_float_histogram(v)


def _sequence_value(v: float | None) -> str:
    """A float sequence value as Go's ``SequenceValue.String()`` (``%f``, ``_`` when omitted)."""
    if v is None:
        return "_"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return f"{v:f}"


def _one_span(h: FloatHistogram, positive: bool) -> tuple[int, list[float]]:
    """The buckets from the first to the last populated one (``Compact(MaxInt)``)."""
    pairs = [(i, c) for i, c in h.buckets(positive) if c != 0]
    if not pairs:
        return 0, []
    first = pairs[0][0]
    dense = [0.0] * (pairs[-1][0] - first + 1)
    for i, c in pairs:
        dense[i - first] = c
    return first, dense


def go_histogram_text(h: FloatHistogram) -> str:
    """Go's ``FloatHistogram.TestExpression()``: non-zero fields only, one span per side, an
    offset only when not zero.

    Examples
    --------
    >>> from promlab.model.histogram import from_bucket_map
    >>> go_histogram_text(from_bucket_map(1, {-3: 5.0, -1: 7.0}, {0: 2.0}, count=14, sum=-0.5))
    '{{schema:1 count:14 sum:-0.5 offset:-3 buckets:[5 0 7] n_buckets:[2]}}'
    """
    g = format_float_g
    res: list[str] = []
    if h.schema != 0:
        res.append(f"schema:{h.schema}")
    for key, v in (("count", h.count), ("sum", h.sum), ("z_bucket", h.zero_count),
                   ("z_bucket_w", h.zero_threshold)):
        if v != 0:  # NaN too, as Go's `!= 0`
            res.append(f"{key}:{g(v)}")
    if h.is_custom:
        res.append("custom_values:[" + " ".join(g(v) for v in h.custom_values) + "]")
    if h.counter_reset_hint != CounterResetHint.UNKNOWN:
        res.append(f"counter_reset_hint:{_HINT_TEXT[h.counter_reset_hint]}")
    for positive, bkey, okey in ((True, "buckets", "offset"), (False, "n_buckets", "n_offset")):
        first, dense = _one_span(h, positive)
        if dense and first != 0:
            res.append(f"{okey}:{first}")
        if dense:
            res.append(f"{bkey}:[" + " ".join(g(c) for c in dense) + "]")
    return "{{" + " ".join(res) + "}}"
