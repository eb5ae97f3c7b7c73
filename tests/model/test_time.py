"""promlab.model.time: the one parser/formatter for durations, times and sizes."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from promlab.model.time import (
    format_duration,
    format_size,
    parse_duration,
    parse_go_duration,
    parse_size,
    parse_time,
)

D = 86_400_000


@pytest.mark.parametrize(("text", "ms"), [
    pytest.param("0", 0, id="zero-without-unit"),
    pytest.param("250ms", 250, id="ms"),
    pytest.param("1y2w3d4h5m6s7ms", 365 * D + 14 * D + 3 * D + 4 * 3_600_000 + 5 * 60_000 + 6007, id="all-units"),
    pytest.param("90m", 5_400_000, id="unnormalised"),
    pytest.param("0s", 0, id="zero-seconds"),
])
def test_go_duration(text: str, ms: int) -> None:
    assert parse_go_duration(text) == ms


@pytest.mark.parametrize(("text", "msg"), [
    pytest.param("", "empty duration string", id="empty"),
    pytest.param("1.5s", 'unknown unit "." in duration "1.5s"', id="fraction"),
    pytest.param("5", 'not a valid duration string: "5"', id="no-unit"),
    pytest.param("5x", 'unknown unit "x" in duration "5x"', id="bad-unit"),
    pytest.param("1s1m", 'not a valid duration string: "1s1m"', id="wrong-order"),
    pytest.param("1m1m", 'not a valid duration string: "1m1m"', id="repeated-unit"),
    pytest.param("-1m", 'not a valid duration string: "-1m"', id="negative"),
    pytest.param("300y", "duration out of range", id="overflow"),
])
def test_go_duration_rejects_with_prometheus_messages(text: str, msg: str) -> None:
    with pytest.raises(ValueError) as ei:
        parse_go_duration(text)
    assert str(ei.value) == msg


@pytest.mark.parametrize(("value", "ms"), [
    pytest.param(60, 60_000, id="int-is-seconds"),
    pytest.param(1.5, 1500, id="float-seconds"),
    pytest.param("15", 15_000, id="numeric-string-seconds"),
    pytest.param("0.25", 250, id="fractional-string-seconds"),
    pytest.param("5m", 300_000, id="duration-string"),
    pytest.param(timedelta(minutes=2), 120_000, id="timedelta"),
    pytest.param(pd.Timedelta("90s"), 90_000, id="pandas-timedelta"),
    pytest.param(np.timedelta64(3, "s"), 3000, id="numpy-timedelta"),
])
def test_public_durations_take_seconds(value: object, ms: int) -> None:
    assert parse_duration(value) == ms  # type: ignore[arg-type]


def test_duration_strings_only() -> None:
    with pytest.raises(ValueError):
        parse_duration(60, allow_float_seconds=False)
    assert parse_duration("1m", allow_float_seconds=False) == 60_000


@pytest.mark.parametrize(("ms", "text"), [
    pytest.param(0, "0s", id="zero"),
    pytest.param(90 * D, "90d", id="90d-not-12w6d"),
    pytest.param(84 * D, "12w", id="whole-weeks"),
    pytest.param(365 * D, "1y", id="year"),
    pytest.param(366 * D, "366d", id="year-plus-day"),
    pytest.param(5_400_000, "1h30m", id="hours-minutes"),
    pytest.param(1500, "1s500ms", id="ms"),
    pytest.param(-60_000, "-1m", id="negative"),
])
def test_format_duration_like_current_prometheus(ms: int, text: str) -> None:
    assert format_duration(ms) == text
    assert parse_go_duration(text.lstrip("-")) == abs(ms)


def test_one_formatter_for_printer_and_model() -> None:
    from promlab.promql.parser import printer

    assert printer.format_duration is format_duration


@pytest.mark.parametrize(("value", "n"), [
    pytest.param("1B", 1, id="bytes"),
    pytest.param("10KB", 10 << 10, id="KB-is-1024"),
    pytest.param("1KiB", 1 << 10, id="KiB"),
    pytest.param("512MB", 512 << 20, id="MB"),
    pytest.param("1GiB", 1 << 30, id="GiB"),
    pytest.param("1.5GB", 3 << 29, id="fraction"),
    pytest.param("1GiB512MiB", 3 << 29, id="sum"),
    pytest.param("0", 0, id="zero"),
    pytest.param(4096, 4096, id="int-is-bytes"),
])
def test_parse_size(value: str | int, n: int) -> None:
    assert parse_size(value) == n


@pytest.mark.parametrize(("text", "msg"), [
    pytest.param("10", "units: unknown unit  in 10", id="no-unit"),
    pytest.param("10kB", "units: unknown unit kB in 10kB", id="si-k"),
    pytest.param("1GiB512MB", "units: unknown unit GiB in 1GiB512MB", id="mixed-styles"),
    pytest.param("", "units: invalid ", id="empty"),
])
def test_parse_size_rejects(text: str, msg: str) -> None:
    with pytest.raises(ValueError) as ei:
        parse_size(text)
    assert str(ei.value) == msg


@pytest.mark.parametrize(("n", "text"), [
    pytest.param(0, "0B", id="zero"),
    pytest.param(10 << 20, "10MiB", id="whole"),
    pytest.param(1536, "1KiB512B", id="mixed"),
    pytest.param(1023, "1023B", id="bytes"),
])
def test_format_size_roundtrips(n: int, text: str) -> None:
    assert format_size(n) == text
    assert parse_size(text) == n


@pytest.mark.parametrize(("value", "ms"), [
    pytest.param(1_700_000_000, 1_700_000_000_000, id="int-unix-seconds"),
    pytest.param(1_700_000_000.5, 1_700_000_000_500, id="float-unix-seconds"),
    pytest.param("1700000000", 1_700_000_000_000, id="numeric-string"),
    pytest.param("2023-11-14T22:13:20Z", 1_700_000_000_000, id="rfc3339"),
    pytest.param(pd.Timestamp("2023-11-14T22:13:20Z"), 1_700_000_000_000, id="pandas"),
    pytest.param(np.datetime64("2023-11-14T22:13:20"), 1_700_000_000_000, id="numpy"),
    pytest.param("now-1h", 7_200_000 - 3_600_000, id="relative"),
    pytest.param("now-90", 7_200_000 - 90_000, id="relative-seconds"),
])
def test_parse_time(value: object, ms: int) -> None:
    assert parse_time(value, now=7_200_000) == ms  # type: ignore[arg-type]
