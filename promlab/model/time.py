"""Times, durations and sizes: the one place promlab parses and formats them.

Inside promlab, times are int milliseconds since the epoch and durations int milliseconds
(names end in ``_ms``); sizes are int bytes. At the public edge the convention is Prometheus's
HTTP API: **a bare number is seconds** (unix seconds for a time, seconds for a duration, floats
allowed); parameters whose name ends in ``_ms`` take int milliseconds instead.

- Durations (:data:`DurationLike`): Prometheus duration strings ``1y2w3d4h5m6s7ms`` (units in
  descending order, each at most once, no fractions, ``0`` without a unit), seconds as a number
  or a numeric string (``15``, ``"1.5"``), ``timedelta``/``pd.Timedelta``, ``np.timedelta64``.
  :func:`parse_go_duration` is the strict string-only form that ``prometheus.yml``, rule files,
  PromQL literals and promqltest scripts use (Go's ``model.ParseDuration``, same messages).
- Times (:data:`TimeLike`): ``datetime``/``pd.Timestamp`` (naive means UTC), ``np.datetime64``,
  unix seconds as a number or numeric string, RFC 3339 strings, ``"now"``, ``"now-1h"``.
- Sizes (:data:`SizeLike`): ``512MB``, ``1GiB``, ``1.5GB`` with powers of 1024 whether or not the
  unit has the ``i`` (Prometheus's ``units.Base2Bytes``; ``kB`` is rejected), or int bytes.

Formatting follows current Prometheus: :func:`format_duration` is ``model.Duration.String()``
(years and weeks only when they divide the rest exactly: ``90d``, not ``12w6d``) and
:func:`format_size` is ``units.Base2Bytes.String()`` (``1KiB512B``). Every parser here raises
:class:`~promlab.errors.BadData` (a ``ValueError``), the API's ``bad_data``.
"""

from __future__ import annotations

import math
import re
import time as _time
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

import numpy as np

from promlab.errors import BadData

__all__ = [
    "DURATION_UNITS_MS",
    "DurationLike",
    "SizeLike",
    "TimeLike",
    "format_duration",
    "format_size",
    "now_ms",
    "parse_duration",
    "parse_go_duration",
    "parse_size",
    "parse_time",
    "to_timestamp",
]

TimeLike: TypeAlias = datetime | np.datetime64 | str | float | int
"""A point in time as the public API takes it (numbers are unix seconds)."""
DurationLike: TypeAlias = str | float | int | timedelta | np.timedelta64
"""A duration as the public API takes it (numbers are seconds)."""
SizeLike: TypeAlias = str | int
"""A size as the public API takes it (ints are bytes)."""

DURATION_UNITS_MS: dict[str, int] = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}
_UNIT_RANK = {u: i for i, u in enumerate(DURATION_UNITS_MS)}
_MAX_INT64 = 2**63 - 1
_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")
_RELATIVE_RE = re.compile(r"now\s*(?:([+-])\s*(.+))?\Z")
_SIZE_PREFIXES = ("", "K", "M", "G", "T", "P", "E")
_SIZE_UNITS_IB = {"B": 1} | {f"{p}iB": 1 << (10 * i) for i, p in enumerate(_SIZE_PREFIXES) if p}
_SIZE_UNITS_B = {"B": 1} | {f"{p}B": 1 << (10 * i) for i, p in enumerate(_SIZE_PREFIXES) if p}
_SIZE_ELEMENT = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def now_ms() -> int:
    """The current time in int milliseconds since the epoch."""
    return int(_time.time() * 1000)


def parse_go_duration(text: str) -> int:
    """A Prometheus duration string in milliseconds, exactly as Go's ``model.ParseDuration``.

    Raises
    ------
    BadData
        With Prometheus's message: ``not a valid duration string: "1.5s"``,
        ``unknown unit "x" in duration "5x"``, ``empty duration string``,
        ``duration out of range``.

    Examples
    --------
    >>> parse_go_duration("1h30m")
    5400000
    >>> parse_go_duration("1y2w3d4h5m6s7ms")
    33019506007
    >>> parse_go_duration("0")
    0
    """
    if text == "0":
        return 0
    if text == "":
        raise BadData("empty duration string")
    i, n, total, last = 0, len(text), 0, -1
    while i < n:
        j = i
        while j < n and "0" <= text[j] <= "9":
            j += 1
        if j == i:
            raise BadData(f"not a valid duration string: {_go_quote(text)}")
        num = int(text[i:j])
        k = j
        while k < n and not "0" <= text[k] <= "9":
            k += 1
        unit = text[j:k]
        if unit == "":
            raise BadData(f"not a valid duration string: {_go_quote(text)}")
        if unit not in DURATION_UNITS_MS:
            raise BadData(f"unknown unit {_go_quote(unit)} in duration {_go_quote(text)}")
        rank = _UNIT_RANK[unit]
        if rank <= last:  # units must go from the biggest to the smallest
            raise BadData(f"not a valid duration string: {_go_quote(text)}")
        last = rank
        total += num * DURATION_UNITS_MS[unit]
        if total > _MAX_INT64 // 1_000_000:  # Go's time.Duration counts nanoseconds in an int64
            raise BadData("duration out of range")
        i = k
    return total


def parse_duration(value: DurationLike, *, allow_float_seconds: bool = True) -> int:
    """A public-API duration in int milliseconds; numbers (and numeric strings) are seconds.

    ``allow_float_seconds=False`` accepts only duration strings and timedeltas (no bare numbers).

    Raises
    ------
    BadData
        When ``value`` is not a duration.

    Examples
    --------
    >>> parse_duration("1h30m")
    5400000
    >>> parse_duration(1.5), parse_duration("15"), parse_duration(timedelta(minutes=2))
    (1500, 15000, 120000)
    """
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, np.timedelta64):
        if np.isnat(value):
            raise BadData(f"invalid duration {value!r}")
        return round(float(value / np.timedelta64(1, "us")) / 1000)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadData(f"cannot parse {value!r} to a valid duration")
    if isinstance(value, int | float):
        if not allow_float_seconds:
            raise BadData(f"not a valid duration string: {value!r} (give a unit, e.g. \"{value}s\")")
        return _seconds_to_ms(float(value), value)
    s = value.strip()
    if allow_float_seconds and _NUMBER_RE.match(s):
        return _seconds_to_ms(float(s), value)
    return parse_go_duration(s)


def _seconds_to_ms(seconds: float, orig: object) -> int:
    ms = seconds * 1000
    if not math.isfinite(ms) or abs(ms) > _MAX_INT64 // 1_000_000:
        raise BadData(f"cannot parse {orig!r} to a valid duration. It overflows int64")
    return round(ms)


def format_duration(ms: int) -> str:
    """Milliseconds as Prometheus's ``model.Duration.String()`` prints them.

    Years and weeks are used only when they divide what is left exactly.

    Examples
    --------
    >>> format_duration(5400000), format_duration(0), format_duration(90 * 86400_000)
    ('1h30m', '0s', '90d')
    >>> format_duration(14 * 86400_000), format_duration(14 * 86400_000 + 1)
    ('2w', '14d1ms')
    """
    ms = int(ms)
    if ms == 0:
        return "0s"
    if ms < 0:
        return "-" + format_duration(-ms)
    out = []
    for unit, size in DURATION_UNITS_MS.items():
        if unit in ("y", "w") and ms % size != 0:
            continue
        v = ms // size
        if v > 0:
            out.append(f"{v}{unit}")
            ms -= v * size
    return "".join(out)


def parse_time(value: TimeLike | None, *, now: int | None = None) -> int:
    """A public-API point in time in int milliseconds since the epoch (numbers are unix seconds).

    ``None`` and ``"now"`` mean ``now`` (int ms; the clock when not given).

    Raises
    ------
    BadData
        When ``value`` is not a time.

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
        raise BadData(f"cannot parse {value!r} to a valid timestamp")
    if isinstance(value, int | float):
        ms = float(value) * 1000
        if not math.isfinite(ms) or abs(ms) > _MAX_INT64:
            raise BadData(f"cannot parse {value!r} to a valid timestamp")
        return round(ms)
    if isinstance(value, datetime):  # pd.Timestamp is a datetime subclass
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return _datetime_ms(value)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise BadData(f"cannot parse {value!r} to a valid timestamp")
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, str):
        s = value.strip()
        m = _RELATIVE_RE.match(s)
        if m:
            base = now_ms() if now is None else now
            if m.group(1) is None:
                return base
            d = parse_duration(m.group(2).strip())
            return base - d if m.group(1) == "-" else base + d
        if _NUMBER_RE.match(s):
            return parse_time(float(s))
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise BadData(f"cannot parse {value!r} to a valid timestamp") from None
        return parse_time(dt)
    if hasattr(value, "to_pydatetime"):
        return parse_time(value.to_pydatetime(), now=now)
    raise BadData(f"cannot parse {value!r} to a valid timestamp")


def _datetime_ms(dt: datetime) -> int:
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def to_timestamp(ms: int) -> datetime:
    """Int milliseconds to a tz-aware UTC datetime.

    >>> to_timestamp(1700000000000).isoformat()
    '2023-11-14T22:13:20+00:00'
    """
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(ms))


def _parse_units(text: str, units: dict[str, int]) -> int:
    s = text
    neg = False
    if s[:1] in ("+", "-"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if s == "":
        raise BadData(f"units: invalid {text}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _SIZE_ELEMENT.match(s, pos)
        assert m is not None  # every group is optional
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise BadData(f"units: invalid {text}")
        if unit not in units:
            raise BadData(f"units: unknown unit {unit} in {text}")
        total += (int(whole or "0") + (int(frac) / 10 ** len(frac) if frac else 0.0)) * units[unit]
        pos = m.end()
    if total >= 2.0**63:
        raise BadData("units: overflow parsing unit")
    return -int(total) if neg else int(total)


def parse_size(value: SizeLike) -> int:
    """A size in int bytes: an int is bytes, a string is Prometheus's ``units.Base2Bytes``.

    ``KB`` and ``KiB`` are both 1024 (``kB`` is rejected), fractions and sums are allowed
    (``1.5GB``, ``1GiB512MiB``), a bare number other than ``0`` needs a unit.

    Raises
    ------
    BadData
        With the Go library's message (``units: unknown unit kB in 10kB``).

    Examples
    --------
    >>> parse_size("512MB"), parse_size("1GiB"), parse_size("1.5KB"), parse_size(4096)
    (536870912, 1073741824, 1536, 4096)
    """
    if isinstance(value, bool):
        raise BadData(f"cannot parse {value!r} as a size")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        return _parse_units(text, _SIZE_UNITS_IB)
    except ValueError:
        return _parse_units(text, _SIZE_UNITS_B)


def format_size(n: int) -> str:
    """Bytes as ``units.Base2Bytes.String()`` prints them (``1KiB512B``, ``10MiB``, ``0B``).

    >>> format_size(10 << 20), format_size(1536), format_size(0)
    ('10MiB', '1KiB512B', '0B')
    """
    n = int(n)
    if n < 0:
        return "-" + format_size(-n)
    if n == 0:
        return "0B"
    parts = []
    for prefix in _SIZE_PREFIXES:
        if n % 1024:
            parts.append(f"{n % 1024}{prefix}{'iB' if prefix else 'B'}")
        n //= 1024
        if n == 0:
            break
    return "".join(reversed(parts))
