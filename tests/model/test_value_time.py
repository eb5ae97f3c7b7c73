import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from promlab.model import (
    STALE_NAN,
    format_duration,
    is_stale,
    parse_duration,
    parse_time,
    stale_mask,
    to_timestamp,
)


def test_stale_marker_is_a_distinct_nan():
    assert math.isnan(STALE_NAN)
    assert is_stale(STALE_NAN)
    assert not is_stale(float("nan"))
    assert not is_stale(1.0)
    arr = np.array([1.0, float("nan"), STALE_NAN, 0.0])
    assert stale_mask(arr).tolist() == [False, False, True, False]


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        pytest.param("1h30m", 5_400_000, id="h-m"),
        pytest.param("5m", 300_000, id="m"),
        pytest.param("250ms", 250, id="ms"),
        pytest.param("1d", 86_400_000, id="d"),
        pytest.param("2w", 14 * 86_400_000, id="w"),
        pytest.param("1y", 365 * 86_400_000, id="y"),
        pytest.param("1m30s500ms", 90_500, id="chain"),
        pytest.param("0", 0, id="zero"),
        pytest.param("15", 15_000, id="float-seconds"),
        pytest.param("1.5", 1_500, id="fraction"),
        pytest.param(timedelta(seconds=3), 3_000, id="timedelta"),
    ],
)
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("bad", ["", "5x", "1m1h", "m", "1h 2m", "-5m", "1m1m", "nan"])
def test_parse_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("ms", [0, 1, 999, 60_000, 5_400_000, 86_400_000 + 1])
def test_format_duration_roundtrip(ms):
    assert parse_duration(format_duration(ms), allow_float_seconds=False) == ms


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        pytest.param(1_700_000_000, 1_700_000_000_000, id="unix-int"),
        pytest.param(1_700_000_000.5, 1_700_000_000_500, id="unix-float"),
        pytest.param("1700000000.25", 1_700_000_000_250, id="unix-str"),
        pytest.param("2023-11-14T22:13:20Z", 1_700_000_000_000, id="rfc3339-z"),
        pytest.param("2023-11-14T23:13:20+01:00", 1_700_000_000_000, id="rfc3339-offset"),
        pytest.param("2023-11-14T22:13:20.123Z", 1_700_000_000_123, id="rfc3339-frac"),
        pytest.param(datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), 1_700_000_000_000, id="datetime"),
        pytest.param(datetime(2023, 11, 14, 22, 13, 20), 1_700_000_000_000, id="naive-is-utc"),
        pytest.param(pd.Timestamp("2023-11-14T22:13:20Z"), 1_700_000_000_000, id="pandas"),
    ],
)
def test_parse_time(value, ms):
    assert parse_time(value) == ms


def test_relative_times():
    assert parse_time("now", now=10_000) == 10_000
    assert parse_time("now-1h", now=7_200_000) == 3_600_000
    assert parse_time("now+5m", now=0) == 300_000


@pytest.mark.parametrize("bad", ["yesterday", "now-", "2023-13-45", float("nan")])
def test_parse_time_rejects(bad):
    with pytest.raises(ValueError):
        parse_time(bad)


def test_to_timestamp():
    assert to_timestamp(1_700_000_000_000) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
