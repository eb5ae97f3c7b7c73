"""Times and durations as Prometheus writes them, converted to int milliseconds.

Durations: ``1h30m``, ``5m``, ``90s``, ``250ms``, ``1d``, ``2w``, ``1y`` (units in descending
order, each once), and plain numbers of seconds (``"15"``, ``1.5``) where a float is allowed.
Times: ``datetime``/``pd.Timestamp``, unix seconds (int/float or numeric strings), RFC 3339
strings, ``"now"`` and ``"now-1h"`` / ``"now+5m"``.
"""

from __future__ import annotations

import math
import re
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DURATION_UNITS_MS",
    "format_duration",
    "now_ms",
    "parse_duration",
    "parse_time",
    "to_timestamp",
]

DURATION_UNITS_MS: dict[str, int] = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
_UNIT_ORDER = ["y", "w", "d", "h", "m", "s", "ms"]
_DURATION_RE = re.compile(r"(\d+)(ms|y|w|d|h|m|s)")
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_RELATIVE_RE = re.compile(r"^now\s*(?:([+-])\s*(.+))?$")


def now_ms() -> int:
    return int(_time.time() * 1000)


def parse_duration(text: str | int | float | timedelta, *, allow_float_seconds: bool = True) -> int:
    """Parse a Prometheus duration into int milliseconds.

    Examples
    --------
    >>> parse_duration("1h30m")
    5400000
    >>> parse_duration("250ms")
    250
    >>> parse_duration("1.5")
    1500
    """
    if isinstance(text, timedelta):
        return round(text.total_seconds() * 1000)
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"invalid duration {text!r}")
        return round(float(text) * 1000)
    s = text.strip()
    if allow_float_seconds and _NUMBER_RE.match(s):
        v = float(s)
        if not math.isfinite(v):
            raise ValueError(f"invalid duration {text!r}")
        return round(v * 1000)
    if s == "0":
        return 0
    pos = 0
    total = 0
    last_rank = -1
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        unit = m.group(2)
        rank = _UNIT_ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(f"not a valid duration string: {text!r}")
        last_rank = rank
        total += int(m.group(1)) * DURATION_UNITS_MS[unit]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise ValueError(f"not a valid duration string: {text!r}")
    return total


def format_duration(ms: int) -> str:
    """Format milliseconds as Prometheus does (``1h30m``, ``0s``).

    >>> format_duration(5400000)
    '1h30m'
    """
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    out = []
    for unit in _UNIT_ORDER:
        size = DURATION_UNITS_MS[unit]
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return sign + "".join(out)


def parse_time(value: Any, *, now: int | None = None) -> int:
    """Parse a point in time into int milliseconds since the epoch.

    Examples
    --------
    >>> parse_time(1700000000)
    1700000000000
    >>> parse_time("2023-11-14T22:13:20Z")
    1700000000000
    >>> parse_time("now-1h", now=7200000)
    3600000
    """
    if value is None:
        return now_ms() if now is None else now
    if isinstance(value, bool):
        raise ValueError(f"cannot parse {value!r} as a time")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"cannot parse {value!r} as a time")
        return round(float(value) * 1000)
    if isinstance(value, datetime):
        # pd.Timestamp is a datetime subclass.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return _datetime_ms(value)
    if hasattr(value, "to_pydatetime"):
        return parse_time(value.to_pydatetime(), now=now)
    if hasattr(value, "dtype") and str(getattr(value, "dtype", "")).startswith("datetime64"):
        import numpy as np

        return int(np.datetime64(value, "ms").astype("int64"))
    if isinstance(value, str):
        s = value.strip()
        m = _RELATIVE_RE.match(s)
        if m:
            base = now_ms() if now is None else now
            if m.group(1) is None:
                return base
            d = parse_duration(m.group(2))
            return base - d if m.group(1) == "-" else base + d
        if _NUMBER_RE.match(s):
            return parse_time(float(s))
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"cannot parse {value!r} to a valid timestamp") from None
        return parse_time(dt)
    raise ValueError(f"cannot parse {value!r} to a valid timestamp")


def _datetime_ms(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_timestamp(ms: int) -> datetime:
    """Int milliseconds to a tz-aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
