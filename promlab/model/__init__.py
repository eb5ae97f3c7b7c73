"""The data model: label sets, matchers, sample values; times, durations and sizes."""

from promlab.model.labels import (
    METRIC_NAME,
    Labels,
    Matcher,
    MatchType,
    format_label_value,
    is_valid_label_name,
)
from promlab.model.time import (
    DurationLike,
    SizeLike,
    TimeLike,
    format_duration,
    format_size,
    now_ms,
    parse_duration,
    parse_go_duration,
    parse_size,
    parse_time,
    to_timestamp,
)
from promlab.model.value import (
    STALE_NAN,
    STALE_NAN_BITS,
    format_float,
    format_float_g,
    is_stale,
    stale_mask,
)

__all__ = [
    "METRIC_NAME",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "DurationLike",
    "Labels",
    "MatchType",
    "Matcher",
    "SizeLike",
    "TimeLike",
    "format_duration",
    "format_float",
    "format_float_g",
    "format_label_value",
    "format_size",
    "is_stale",
    "is_valid_label_name",
    "now_ms",
    "parse_duration",
    "parse_go_duration",
    "parse_size",
    "parse_time",
    "stale_mask",
    "to_timestamp",
]
