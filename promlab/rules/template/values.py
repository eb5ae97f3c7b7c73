"""The Go values a template works on, their Go type names, truth and default (``%v``) printing.

Python stands in for Go types as follows: ``str`` string, ``int`` int, ``float`` float64,
``complex`` complex128, ``bool``
bool, ``None`` nil (text/template's "no value"), ``dict`` ``map[string]string`` (label sets),
:class:`AnyMap` ``map[string]interface {}`` (what ``args`` builds), :class:`QueryResult` and
:class:`Sample` Prometheus's query results, :class:`GoTime` / :class:`GoDuration` what ``toTime``
and ``toDuration`` return, :class:`HTML` what ``safeHtml`` returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from promlab.rules.template.gotime import format_layout

__all__ = [
    "ALERT_DATA_TYPE",
    "HTML",
    "AlertData",
    "AnyMap",
    "GoDuration",
    "GoTime",
    "QueryResult",
    "Sample",
    "format_duration_go",
    "go_type",
    "truth",
]

ALERT_DATA_TYPE = (
    "struct { Labels map[string]string; ExternalLabels map[string]string; "
    "ExternalURL string; Value float64 }"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class AnyMap(dict[str, Any]):
    """A ``map[string]interface {}``: a missing key yields nil, not an empty string."""


class QueryResult(list["Sample"]):
    """Prometheus's ``queryResult``: the samples a ``query`` returned, in order."""


@dataclass(eq=False, slots=True)
class Sample:
    """One element of a query result (Go's ``*sample``)."""

    Labels: dict[str, str]
    Value: float


@dataclass(frozen=True, slots=True)
class HTML:
    """``html/template.HTML``: a string marked safe by ``safeHtml``."""

    text: str


@dataclass(frozen=True, slots=True)
class AlertData:
    """The data an alert's templates run on (``.Labels``, ``.ExternalLabels``, ...)."""

    Labels: dict[str, str]
    ExternalLabels: dict[str, str]
    ExternalURL: str
    Value: float


@dataclass(frozen=True, slots=True)
class GoTime:
    """A ``*time.Time`` in UTC with millisecond resolution (what ``toTime`` returns)."""

    ms: int

    def __str__(self) -> str:
        # Go's Time.String(): "2006-01-02 15:04:05.999999999 -0700 MST".
        secs, msec = divmod(self.ms, 1000)
        dt = _EPOCH + timedelta(seconds=secs)
        frac = f".{msec:03d}".rstrip("0") if msec else ""
        return f"{dt:%Y-%m-%d %H:%M:%S}{frac} +0000 UTC"

    def method_params(self, name: str) -> tuple[str, ...]:
        """Parameter types of the method ``name`` (``Format`` takes a layout string), or raise
        KeyError."""
        if name == "Format":
            return ("string",)
        self.method(name)  # KeyError for a method it does not have
        return ()

    def call(self, name: str, args: list[Any]) -> Any:
        """The method ``name`` applied to ``args`` (checked against :meth:`method_params`)."""
        return format_layout(self.ms, args[0]) if name == "Format" else self.method(name)

    def method(self, name: str) -> Any:
        """Value of the niladic method ``name`` (``Unix``, ``UnixMilli``, ...), or raise KeyError."""
        secs = self.ms // 1000
        table: dict[str, Any] = {
            "Unix": secs,
            "UnixMilli": self.ms,
            "UnixNano": self.ms * 1_000_000,
            "UTC": self,
            "String": str(self),
            "Nanosecond": self.ms % 1000 * 1_000_000,
            "IsZero": False,  # toTime's times lie within int64 nanoseconds of 1970, never year 1
            "Location": "UTC",  # a *time.Location prints as its name
        }
        if name in table:
            return table[name]
        dt = _EPOCH + timedelta(milliseconds=self.ms)
        # Month and Weekday are Go enums that print as their names.
        parts = {"Year": dt.year, "Day": dt.day, "Hour": dt.hour, "Minute": dt.minute,
                 "Second": dt.second, "YearDay": dt.timetuple().tm_yday,
                 "Month": dt.strftime("%B"), "Weekday": dt.strftime("%A")}
        return parts[name]


@dataclass(frozen=True, slots=True)
class GoDuration:
    """A ``*time.Duration`` in nanoseconds (what ``toDuration`` returns)."""

    ns: int

    def __str__(self) -> str:
        return format_duration_go(self.ns)

    def method_params(self, name: str) -> tuple[str, ...]:
        """Parameter types of the method ``name`` (none take any), or raise KeyError."""
        self.method(name)
        return ()

    def call(self, name: str, args: list[Any]) -> Any:
        """The method ``name`` (niladic)."""
        return self.method(name)

    def method(self, name: str) -> Any:
        """Value of the niladic method ``name`` (``Seconds``, ``Milliseconds``, ...), or raise KeyError."""
        table: dict[str, Any] = {
            "Seconds": self.ns / 1e9,
            "Minutes": self.ns / 6e10,
            "Hours": self.ns / 3.6e12,
            "Milliseconds": int(self.ns / 1_000_000),
            "Microseconds": int(self.ns / 1000),
            "Nanoseconds": self.ns,
            "String": str(self),
        }
        return table[name]


def _frac(v: int, prec: int) -> tuple[str, int]:
    """Go's fmtFrac: the fraction of ``v / 10**prec`` without trailing zeros, and the integer part."""
    q, r = divmod(v, 10**prec)
    digits = f"{r:0{prec}d}".rstrip("0")
    return ("." + digits if digits else ""), q


def format_duration_go(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``.

    >>> format_duration_go(3_723_500_000_000)
    '1h2m3.5s'
    """
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        if u < 1000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            f, q = _frac(u, 3)
            return f"{sign}{q}{f}µs"
        f, q = _frac(u, 6)
        return f"{sign}{q}{f}ms"
    f, secs = _frac(u, 9)
    out = f"{secs % 60}{f}s"
    mins = secs // 60
    if mins:
        out = f"{mins % 60}m" + out
        hours = mins // 60
        if hours:
            out = f"{hours}h" + out
    return sign + out


def go_type(v: Any) -> str:
    """The Go type name of ``v`` as fmt's ``%T`` and text/template's error messages print it."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, str):
        return "string"
    if isinstance(v, AnyMap):
        return "map[string]interface {}"
    if isinstance(v, dict):
        return "map[string]string"
    if isinstance(v, QueryResult):
        return "template.queryResult"
    if isinstance(v, list):
        return "[]interface {}"
    names = {Sample: "*template.sample", HTML: "template.HTML", GoTime: "*time.Time",
             GoDuration: "*time.Duration", AlertData: ALERT_DATA_TYPE}
    return names.get(type(v), type(v).__name__)


def truth(v: Any) -> bool:
    """text/template's truth: false, 0, nil and empty strings, maps and lists are false."""
    if v is None:
        return False
    if isinstance(v, bool | int | float | complex | str | dict | list):
        return bool(v)
    if isinstance(v, HTML):
        return bool(v.text)
    return True


def is_finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))
