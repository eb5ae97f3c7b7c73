"""Go's ``time.Time.Format`` for templates (``{{ (toTime $value).Format "2006-01-02" }}``): the
reference-time layout, read chunk by chunk as Go's ``nextStdChunk`` reads it, for a time in UTC.

>>> format_layout(1_700_000_000_123, "2006-01-02T15:04:05.000Z07:00 Mon Jan _2 3PM MST")
'2023-11-14T22:13:20.123Z Tue Nov 14 10PM UTC'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["format_layout"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Layout chunks and what each prints, longest first where one is a prefix of another. Zones
# are all UTC here: the numeric ones print zero offsets, the Z forms a bare "Z".
_CHUNKS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("January", lambda t: t.strftime("%B")),
    ("Jan", lambda t: t.strftime("%b")),
    ("Monday", lambda t: t.strftime("%A")),
    ("Mon", lambda t: t.strftime("%a")),
    ("MST", lambda t: "UTC"),
    ("2006", lambda t: f"{t.year:04d}"),
    ("002", lambda t: f"{t.timetuple().tm_yday:03d}"),
    ("01", lambda t: f"{t.month:02d}"),
    ("02", lambda t: f"{t.day:02d}"),
    ("03", lambda t: f"{(t.hour % 12) or 12:02d}"),
    ("04", lambda t: f"{t.minute:02d}"),
    ("05", lambda t: f"{t.second:02d}"),
    ("06", lambda t: f"{t.year % 100:02d}"),
    ("15", lambda t: f"{t.hour:02d}"),
    ("1", lambda t: str(t.month)),
    ("2", lambda t: str(t.day)),
    ("3", lambda t: str((t.hour % 12) or 12)),
    ("4", lambda t: str(t.minute)),
    ("5", lambda t: str(t.second)),
    ("__2", lambda t: f"{t.timetuple().tm_yday:3d}"),
    ("_2", lambda t: f"{t.day:2d}"),
    ("PM", lambda t: "PM" if t.hour >= 12 else "AM"),
    ("pm", lambda t: "pm" if t.hour >= 12 else "am"),
    ("-07:00:00", lambda t: "+00:00:00"),
    ("-070000", lambda t: "+000000"),
    ("-07:00", lambda t: "+00:00"),
    ("-0700", lambda t: "+0000"),
    ("-07", lambda t: "+00"),
    ("Z07:00:00", lambda t: "Z"),
    ("Z070000", lambda t: "Z"),
    ("Z07:00", lambda t: "Z"),
    ("Z0700", lambda t: "Z"),
    ("Z07", lambda t: "Z"),
)


def _fraction(layout: str, i: int, nanos: int) -> tuple[str, int] | None:
    """A run of 0s or 9s after "." or "," at ``i`` that no other digit follows: the fraction
    of a second to that many digits (9s drop trailing zeros, and the point with them)."""
    if i + 1 >= len(layout) or layout[i + 1] not in "09":
        return None
    j = i + 1
    while j < len(layout) and layout[j] == layout[i + 1]:
        j += 1
    if j < len(layout) and layout[j].isdigit():
        return None
    digits = f"{nanos:09d}"[: min(j - i - 1, 9)]
    if layout[i + 1] == "9":
        digits = digits.rstrip("0")
        return (layout[i] + digits if digits else ""), j
    return layout[i] + digits, j


def format_layout(ms: int, layout: str) -> str:
    """``time.UnixMilli(ms).UTC().Format(layout)``."""
    t = _EPOCH + timedelta(milliseconds=ms)
    nanos = (ms % 1000) * 1_000_000
    out: list[str] = []
    i = 0
    while i < len(layout):
        c = layout[i]
        if c in ".,":
            frac = _fraction(layout, i, nanos)
            if frac is not None:
                out.append(frac[0])
                i = frac[1]
                continue
        # "_2006" is a literal "_" and the year (Go's own exception to "_2").
        if layout.startswith("_2006", i):
            out.append("_")
            i += 1
            continue
        # "Jan" and "Mon" are chunks only when no lower-case letter follows ("Month" is text).
        for chunk, fmt in _CHUNKS:
            if layout.startswith(chunk, i) and not (chunk in ("Jan", "Mon") and _word_goes_on(layout, i + 3)):
                out.append(fmt(t))
                i += len(chunk)
                break
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _word_goes_on(layout: str, j: int) -> bool:
    return j < len(layout) and "a" <= layout[j] <= "z"
