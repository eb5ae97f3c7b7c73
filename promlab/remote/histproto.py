"""Native histograms in remote-write messages: the ``Histogram`` message of 1.0
(``prometheus.Histogram``) and 2.0 (``io.prometheus.write.v2.Histogram``), which share their
field names, to and from :mod:`promlab.model.histogram`.

An integer histogram (``count_int``) carries its buckets as deltas, as
:class:`~promlab.model.histogram.Histogram` does; a float one (``count_float``) absolute counts.
"""

from __future__ import annotations

from typing import Any

from promlab.model.histogram import CounterResetHint, FloatHistogram, Histogram

__all__ = ["fill_histogram", "histogram_from_proto"]


def _spans(spans: Any) -> tuple[tuple[int, int], ...]:
    return tuple((int(s.offset), int(s.length)) for s in spans)


def histogram_from_proto(hp: Any) -> Histogram | FloatHistogram:
    """The histogram of a remote-write ``Histogram`` message (its timestamp apart)."""
    hint = CounterResetHint(hp.reset_hint) if 0 <= hp.reset_hint <= 3 else CounterResetHint.UNKNOWN
    pos, neg = _spans(hp.positive_spans), _spans(hp.negative_spans)
    cv = tuple(float(v) for v in hp.custom_values)
    if hp.WhichOneof("count") == "count_float":
        return FloatHistogram(schema=int(hp.schema), zero_threshold=float(hp.zero_threshold),
                              zero_count=float(hp.zero_count_float), count=float(hp.count_float),
                              sum=float(hp.sum), positive_spans=pos,
                              positive_buckets=tuple(float(v) for v in hp.positive_counts),
                              negative_spans=neg,
                              negative_buckets=tuple(float(v) for v in hp.negative_counts),
                              custom_values=cv, counter_reset_hint=hint)
    return Histogram(schema=int(hp.schema), zero_threshold=float(hp.zero_threshold),
                     zero_count=int(hp.zero_count_int), count=int(hp.count_int), sum=float(hp.sum),
                     positive_spans=pos, positive_buckets=tuple(int(v) for v in hp.positive_deltas),
                     negative_spans=neg, negative_buckets=tuple(int(v) for v in hp.negative_deltas),
                     custom_values=cv, counter_reset_hint=hint)


def fill_histogram(hp: Any, h: Histogram | FloatHistogram, ts_ms: int) -> None:
    """Write ``h`` at ``ts_ms`` into the (empty) remote-write ``Histogram`` message ``hp``."""
    hp.timestamp = int(ts_ms)
    hp.schema = h.schema
    hp.zero_threshold = h.zero_threshold
    hp.sum = h.sum
    hp.reset_hint = int(h.counter_reset_hint)
    for side, spans in (("positive", h.positive_spans), ("negative", h.negative_spans)):
        for off, length in spans:
            getattr(hp, f"{side}_spans").add(offset=off, length=length)
    hp.custom_values.extend(h.custom_values)
    if isinstance(h, FloatHistogram):
        hp.count_float = h.count
        hp.zero_count_float = h.zero_count
        hp.positive_counts.extend(h.positive_buckets)
        hp.negative_counts.extend(h.negative_buckets)
    else:
        hp.count_int = h.count
        hp.zero_count_int = h.zero_count
        hp.positive_deltas.extend(h.positive_buckets)
        hp.negative_deltas.extend(h.negative_buckets)
