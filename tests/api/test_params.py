"""Parameter parsing of the API: times, durations, match[] and limits, with Prometheus's
messages."""

from __future__ import annotations

import re

import pytest

from promlab.api.params import parse_api_duration, parse_api_time, parse_limit, parse_match
from promlab.api.server import parse_listen
from promlab.errors import BadData


@pytest.mark.parametrize(("text", "ms"), [
    pytest.param("1700000000", 1_700_000_000_000, id="unix"),
    pytest.param("1700000000.312", 1_700_000_000_312, id="unix-float"),
    pytest.param("2023-11-14T22:13:20Z", 1_700_000_000_000, id="rfc3339"),
    pytest.param("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123, id="rfc3339-nanos"),
    pytest.param("2023-11-14T23:13:20+01:00", 1_700_000_000_000, id="rfc3339-offset"),
    pytest.param("-1.5", -1500, id="negative"),
])
def test_time(text: str, ms: int) -> None:
    assert parse_api_time(text, "time") == ms


@pytest.mark.parametrize("text", [
    pytest.param("notatime", id="word"),
    pytest.param("2023-11-14", id="date-only"),
    pytest.param("2023-11-14T22:13:20", id="no-offset"),
    pytest.param("1e400", id="float-out-of-range"),  # "inf" itself is a time in Go's parsing
    pytest.param(" 100", id="leading-space"),
    pytest.param("2023-11-14T22:13:20.1234567891Z", id="ten-fraction-digits"),
    pytest.param("now-1h", id="relative"),
])
def test_bad_time(text: str) -> None:
    with pytest.raises(BadData) as e:
        parse_api_time(text, "time")
    assert str(e.value) == (f"invalid parameter \"time\": Invalid time value for 'time': cannot "
                            f'parse "{text}" to a valid timestamp')


@pytest.mark.parametrize(("text", "ms"), [
    pytest.param("15", 15_000, id="seconds"),
    pytest.param("0.25", 250, id="float"),
    pytest.param("5m", 300_000, id="minutes"),
    pytest.param("1h30m", 5_400_000, id="compound"),
    pytest.param("1d", 86_400_000, id="day"),
])
def test_duration(text: str, ms: int) -> None:
    assert parse_api_duration(text, "step") == ms


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("1ns", 'invalid parameter "timeout": cannot parse "1ns" to a valid duration',
                 id="ns"),
    pytest.param("", 'invalid parameter "timeout": cannot parse "" to a valid duration',
                 id="empty"),
    pytest.param("5x", 'invalid parameter "timeout": cannot parse "5x" to a valid duration',
                 id="unit"),
])
def test_bad_duration(text: str, message: str) -> None:
    with pytest.raises(BadData) as e:
        parse_api_duration(text, "timeout")
    assert str(e.value) == message


@pytest.mark.parametrize(("text", "error"), [
    pytest.param('up{job="a"}', None, id="ok"),
    pytest.param('{__name__=~"up|x"}', None, id="name-regex"),
    pytest.param('{job=~".*"}', "match[] must contain at least one non-empty matcher",
                 id="matches-empty"),
    pytest.param("{}", "match[] must contain at least one non-empty matcher", id="empty"),
    pytest.param("up{", "parse error", id="syntax"),
])
def test_match(text: str, error: str | None) -> None:
    if error is None:
        assert parse_match(text)
        return
    with pytest.raises(BadData, match=r'invalid parameter "match\[\]": .*' + re.escape(error)):
        parse_match(text)


@pytest.mark.parametrize(("text", "n", "ok"), [
    pytest.param(None, 0, True, id="absent"),
    pytest.param("3", 3, True, id="number"),
    pytest.param("-1", 0, False, id="negative"),
    pytest.param("x", 0, False, id="word"),
])
def test_limit(text: str | None, n: int, ok: bool) -> None:
    if ok:
        assert parse_limit(text) == n
    else:
        with pytest.raises(BadData, match='invalid parameter "limit"'):
            parse_limit(text)


@pytest.mark.parametrize(("listen", "want"), [
    pytest.param("127.0.0.1:9090", ("127.0.0.1", 9090), id="v4"),
    pytest.param("[::1]:0", ("::1", 0), id="v6"),
    pytest.param(":9090", ("0.0.0.0", 9090), id="all"),
])
def test_listen(listen: str, want: tuple[str, int]) -> None:
    assert parse_listen(listen) == want


def test_bad_listen() -> None:
    with pytest.raises(BadData):
        parse_listen("localhost")
