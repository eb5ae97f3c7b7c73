"""The options of ``%promql``/``%%promql`` and the ``{name}`` interpolation of Python values.

PromQL is full of quotes and braces, so the line is not split like a shell command: only the
leading ``--option value`` words are options, everything after them (or after ``--``) is the
expression, verbatim.

Examples
--------
>>> opts, expr = split_options('--range 1h --step 30s --wide rate(x{job="a"}[5m])')
>>> opts.range, opts.step, opts.wide, expr
('1h', '30s', True, 'rate(x{job="a"}[5m])')
>>> interpolate('rate(x{job="a"}[{win}])', {"win": "5m"})
'rate(x{job="a"}[5m])'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PromqlOptions", "interpolate", "split_options"]

_VALUED = {"--time": "time", "--range": "range", "--step": "step", "--start": "start",
           "--end": "end", "-o": "output", "--output": "output", "--kind": "kind",
           "--tz": "tz"}
_FLAGS = {"--wide": "wide", "--plot": "plot"}
_WORD = re.compile(r"""\s*("[^"]*"|'[^']*'|\S+)""")
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


@dataclass
class PromqlOptions:
    """Parsed ``%promql`` options (None: not given)."""

    time: str | None = None
    range: str | None = None
    step: str | None = None
    start: str | None = None
    end: str | None = None
    output: str | None = None
    kind: str = "line"
    tz: str = "UTC"
    wide: bool = False
    plot: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def query_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`Session.evaluate` for these options.

        ``--range D`` means "the last D until ``--end`` (default now)"; ``--step`` defaults to
        a 250th of the range (at least 1 s), like a Prometheus graph.

        Raises
        ------
        ValueError
            When options contradict each other.
        """
        from promlab.model import parse_duration, parse_time

        if self.time is not None and (self.range or self.start or self.end):
            raise ValueError("--time excludes --range, --start and --end")
        if self.range is not None and self.start is not None:
            raise ValueError("--range excludes --start (use --end to move the window)")
        if self.range is None and self.start is None:
            if self.step is not None:
                raise ValueError("--step needs --range or --start/--end")
            return {"time": self.time}
        end_ms = parse_time(self.end if self.end is not None else "now")
        if self.range is not None:
            start_ms = end_ms - parse_duration(self.range)
        else:
            start_ms = parse_time(self.start)
        step: Any = self.step if self.step is not None else \
            f"{max(1000, (end_ms - start_ms) // 250) // 1000}s"
        return {"start": start_ms / 1000, "end": end_ms / 1000, "step": step}


def split_options(line: str) -> tuple[PromqlOptions, str]:
    """Leading options of ``line`` and the rest (the expression, stripped).

    Raises
    ------
    ValueError
        When an option lacks its value.
    """
    opts = PromqlOptions()
    pos = 0
    while True:
        m = _WORD.match(line, pos)
        if m is None:
            break
        word = m.group(1)
        if word == "--":
            pos = m.end()
            break
        if word in _FLAGS:
            setattr(opts, _FLAGS[word], True)
            pos = m.end()
            continue
        if word not in _VALUED:
            break
        v = _WORD.match(line, m.end())
        if v is None:
            raise ValueError(f"option {word} needs a value")
        value = v.group(1)
        if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1:
            value = value[1:-1]
        setattr(opts, _VALUED[word], value)
        pos = v.end()
    return opts, line[pos:].strip()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` (and ``{name.attr}``) by the value of that Python variable.

    Braces holding anything but a dotted identifier (PromQL label matchers) are left alone, and
    so is a name the namespace does not have.
    """
    def repl(m: re.Match[str]) -> str:
        first, *rest = m.group(1).split(".")
        if first not in namespace:
            return m.group(0)
        value = namespace[first]
        for attr in rest:
            value = getattr(value, attr)
        return str(value)

    return _NAME.sub(repl, text)
