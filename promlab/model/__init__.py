"""The data model: label sets, matchers, sample values, times."""

from promlab.model.labels import (
    METRIC_NAME,
    Labels,
    Matcher,
    MatchType,
    format_label_value,
    is_valid_label_name,
)
from promlab.model.timeparse import (
    format_duration,
    now_ms,
    parse_duration,
    parse_time,
    to_timestamp,
)
from promlab.model.value import STALE_NAN, STALE_NAN_BITS, is_stale, stale_mask

__all__ = [
    "METRIC_NAME",
    "STALE_NAN",
    "STALE_NAN_BITS",
    "Labels",
    "MatchType",
    "Matcher",
    "format_duration",
    "format_label_value",
    "is_stale",
    "is_valid_label_name",
    "now_ms",
    "parse_duration",
    "parse_time",
    "stale_mask",
    "to_timestamp",
]
